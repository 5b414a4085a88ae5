"""
Tests for serialgw.app.tap and the twistd plugin: options, errors, start-up.
"""

from __future__ import annotations

import os
import shlex

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from serialgw.app import optiontable, tap
from serialgw.app.binding import StartupError
from serialgw.app.service import GatewayService
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings, quote
from tests.config.test_check import checked
from tests.reactors import ownReactor
from tests.realio import PtyPair, testLockDir


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.exitOnError = False
    options.parseOptions(list(args))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """With no options: a pty at /tmp/serialgw0 and telnet on 127.0.0.1:4444."""
        line = parse()["line"]
        self.assertEqual(line.device, DeviceSpec("pty", "/tmp/serialgw0"))
        self.assertEqual(line.listeners, (ListenerSpec("tcp:4444:interface=127.0.0.1", Protocol.TELNET, "tcp:4444:interface=127.0.0.1",
                                                          host="127.0.0.1", port=4444),))
        self.assertEqual(line.settings, SerialSettings())
        self.assertEqual(line.breakDuration, 0.25)
        self.assertEqual(line.name, "serialgw0")

    def test_issueExample(self) -> None:
        """--port 4444 --device /dev/ttyS0 --baud 115200: TCP on all interfaces."""
        line = parse("--port", "4444", "--device", "/dev/ttyS0", "--baud", "115200")["line"]
        self.assertEqual(line.listeners[0].endpoint, "tcp:4444")
        self.assertEqual(line.device, DeviceSpec("tty", "/dev/ttyS0"))
        self.assertEqual(line.name, "ttyS0")

    def test_emptyValuesRefused(self) -> None:
        """An empty --device, --name, --pace or --pace-line (a shell variable left unset) is refused, not taken for the default."""
        for option, message in (("--device", "--device: device is empty: expected a tty path, pty:LINK, telnet:HOST:PORT, "
                                              "rfc2217://HOST:PORT, tcp:HOST:PORT or unix:PATH"),
                                ("--name", "--name is empty: give the line a name, or leave --name out for the device's"),
                                ("--pace", "--pace must be 0 to 10000 milliseconds, not ''"),
                                ("--pace-line", "--pace-line must be 0 to 10000 milliseconds, not ''")):
            self.assertEqual(str(self.assertRaises(UsageError, parse, option, "")), message)

    def test_ownPtyAsDeviceRefused(self) -> None:
        """--device PATH with --listen pty:PATH (the line's device its own pty client): refused, not a byte looping for ever."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--device", "/tmp/ttyV0", "--listen", "pty:/tmp//ttyV0",
                                               "--wait-for-device")),
                         "--device '/tmp/ttyV0' is the link of its own pty: listener: what is written to it would come "
                         "back to it for ever (a loop)")

    def test_nameByTheFileRule(self) -> None:
        """--name follows the rule of a [lines.NAME] (letters, digits, '.', '_', '-'), with the file's wording, at start and in --check."""
        from tests.config.test_check import checked

        for name in ("a b", "a\n", "rack4/web1", "-x", "caf\u00e9", "x;rm"):
            message = (f"--name: line name {name!r}: starts with '-': the first character is a letter or a digit "
                       "(then letters, digits, '.', '_' and '-')" if name == "-x" else
                       f"--name: line name {name!r}: letters, digits, '.', '_' and '-' only")
            self.assertEqual(str(self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--name", name)), message)
            self.assertEqual(str(self.assertRaises(UsageError, checked, "--device", "/dev/ttyS0", "--name", name)),
                             message)
        for name in ("rack4-web1", "a.b_c", "9"):
            self.assertEqual(parse("--device", "/dev/ttyS0", "--name", name)["line"].name, name)

    def test_nameFromTheDeviceByTheFileRule(self) -> None:
        """A name taken from the device (no --name) follows the rule of a [lines.NAME] too: what else the path holds ('/', ':', a space) becomes '-' (a newline or an escape sequence is refused); it reached logs, the status page and SSH user names as it was.  An rfc2217:// device's keeps its scheme, as telnet:'s and tcp:'s do (it was 'h.example-7000')."""
        from serialgw.config import thishost
        from serialgw.config.linetable import nameProblem

        # (telnet:host:4444 dials the default listener's port: not this machine's /etc/hosts or host name, where
        # 'host' at a loopback address made it a loop, refused.)
        self.patch(thishost, "HOSTS_FILE", os.devnull)
        self.patch(thishost, "hostName", lambda: "serialgw-test.invalid")
        for device, name in (("/dev/ttyS0", "ttyS0"), ("/dev/serial/by-id/usb-FTDI_FT232R-if00-port0",
                                                          "serial-by-id-usb-FTDI_FT232R-if00-port0"),
                             ("/dev/pts/3", "pts-3"), ("pty:/tmp/ttyV0", "ttyV0"), ("telnet:host:4444", "telnet-host-4444"),
                             ("rfc2217://h.example:7000", "rfc2217-h.example-7000"),
                             ("rfc2217://[::1]:2217", "rfc2217-1-2217"), ("tcp:10.0.0.1:5000", "tcp-10.0.0.1-5000"),
                             ("unix:/var/run/qemu-server/100.serial0", "100.serial0"), ("/tmp/a b", "a-b"),
                             ("/tmp/.hidden", "hidden"), ("/tmp/caf\u00e9", "caf"),
                             ("telnet:[::1]:23", "telnet-1-23"), ("/tmp/\u00e9\u00e9", "line"), ("pty:/tmp/..", "pty")):
            line = parse("--device", device, "--wait-for-device")["line"]
            self.assertEqual((device, line.name), (device, name))
            self.assertIsNone(nameProblem(line.name))
        # A device's long name is cut to a name's 128 characters, not refused.
        line = parse("--device", "/dev/serial/by-id/" + "x" * 300, "--wait-for-device")["line"]
        self.assertEqual((line.name, nameProblem(line.name)), ("serial-by-id-" + "x" * 115, None))
        # (A newline or an escape sequence in the path: refused, as in a file.)
        error = self.assertRaises(UsageError, parse, "--device", "/tmp/x\n\x1b[2J")
        self.assertIn("a file name with a control character (\\n)", str(error))

    def test_helpWrapsWhole(self) -> None:
        """--help wraps each option's text as one paragraph: no docstring indentation left inside a line (--watch-all's "read-only         clients")."""
        text = tap.Options().getUsage(width=80).split("\n\nBridge a serial line")[0]
        docColumn = next(line.index("OpenSSH") for line in text.splitlines() if "OpenSSH public keys" in line)
        lines = [line[docColumn:] for line in text.splitlines() if len(line) > docColumn]
        self.assertIn("One view of all consoles: a listener (repeatable) whose",
                      " ".join(line.strip() for line in lines))
        self.assertEqual([line for line in lines if "  " in line.strip()], [])

    def test_compactThenSingles(self) -> None:
        """--serial sets everything; single options override it."""
        line = parse("-d", "/dev/ttyS0", "-s", "9600,7E2,rtscts", "--parity", "odd", "--xonxoff")["line"]
        self.assertEqual(line.settings, SerialSettings(9600, 7, "O", 2, xonxoff=True, rtscts=True))

    def test_listeners(self) -> None:
        """--port and repeated --listen add listeners in order."""
        line = parse("--port", "raw+5000", "--listen", "unix:/tmp/x.sock", "--listen", "4445")["line"]
        self.assertEqual(
            [(spec.protocol, spec.endpoint) for spec in line.listeners],
            [(Protocol.RAW, "tcp:5000"), (Protocol.TELNET, "unix:/tmp/x.sock:mode=600"), (Protocol.TELNET, "tcp:4445")],
        )

    def test_rfc2217Options(self) -> None:
        """--signature, --no-restore and a listener without RFC 2217."""
        line = parse("--signature", "rack 4 port 2", "--no-restore", "--port", "telnet,no-rfc2217+4444")["line"]
        self.assertEqual((line.signature, line.restoreSettings), ("rack 4 port 2", False))
        self.assertFalse(line.listeners[0].rfc2217)
        self.assertTrue(parse()["line"].restoreSettings)
        self.assertTrue(parse()["line"].listeners[0].rfc2217)

    def test_maxClients(self) -> None:
        """--max-clients: 64 a line unless given; 0 is no limit; anything else but a number from 0 to 65536 is refused, quoted."""
        self.assertEqual(parse()["line"].maxClients, 64)
        self.assertEqual(parse("--max-clients", "0")["line"].maxClients, 0)
        self.assertEqual(parse("--max-clients", "500")["line"].maxClients, 500)
        for bad in ("-1", "many", ""):
            e = self.assertRaises(UsageError, parse, "--max-clients", bad)
            self.assertEqual(str(e), f"--max-clients must be 0 (no limit) to 65536, not {bad!r}")

    def test_configFile(self) -> None:
        """--config reads many lines; it does not mix with the single-line options; --status is checked."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n')
        options = parse("--config", path, "--status", "tcp:8440:interface=127.0.0.1")
        self.assertEqual([line.name for line in options["lines"]], ["a", "b"])
        e = self.assertRaises(UsageError, parse, "--config", path, "--device", "/dev/ttyS3")
        self.assertEqual(str(e), "--config and --device do not go together: put the line in the file")
        self.assertRaises(UsageError, parse, "--status", "tcp:8440:backlog=x")

    def test_configRefusesEveryLineOption(self) -> None:
        """With --config, each option of the single line is an error naming it: none is taken and silently ignored."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n')
        values = {"break-duration": "500", "coalesce": "2,20", "dtr": "on", "rts": "on", "idle-dtr": "on", "idle-rts": "on"}
        for name in optiontable.LINE_OPTIONS:
            e = self.assertRaises(UsageError, parse, "--config", path, f"--{name}", values.get(name, "1"))
            self.assertEqual(str(e), f"--config and --{name} do not go together: put the line in the file")
        for name in optiontable.LINE_FLAGS:
            e = self.assertRaises(UsageError, parse, "--config", path, f"--{name}")
            self.assertEqual(str(e), f"--config and --{name} do not go together: put the line in the file")
        # A new option is the line's (refused with --config) or the process's (named here).
        process = {"config", "shard", "status", "ssh", "ssh-host-key", "authorized-keys", "readonly-keys", "busy-poll",
                   "wait-for-device", "check"}
        self.assertEqual({o[0] for o in tap.Options.optParameters + tap.Options.optFlags} - process,
                         set(optiontable.LINE_OPTIONS + optiontable.LINE_FLAGS))
        # What is not the line's goes with it.
        options = parse("--config", path, "--wait-for-device", "--busy-poll", "0", "--status", "tcp:0")
        self.assertEqual([line.name for line in options["lines"]], ["a"])

    def test_badValues(self) -> None:
        """Bad values are usage errors naming the option and quoting the value."""
        cases = [
            (["--parity", "X"], "--parity: parity must be one of N, E, O, M, S, not 'X'"),
            (["--baud", "0"], "--baud: baud rate must be 1 to 2147483647, not '0'"),
            (["--baud", "fast"], "--baud: baud rate must be 1 to 2147483647, not 'fast'"),
            (["--bytesize", "9"], "--bytesize: byte size must be 5, 6, 7 or 8, not '9'"),
            (["--stopbits", "3"], "--stopbits: stop bits must be 1, 1.5 or 2, not '3'"),
            (["--break-duration", "0"], "--break-duration: break duration must be 1 to 10000 milliseconds, not '0'"),
            # Half a second meant as seconds: half a millisecond is no break a UART would see.
            (["--break-duration", "0.5"], "--break-duration: break duration must be 1 to 10000 milliseconds, not '0.5'"),
            (["--port", "tcp:4444:backlog=x"], "--port: backlog='x' in listener 'tcp:4444:backlog=x': expected a number, 0 "
             "to 65535 (the kernel takes at most net.core.somaxconn)"),
            (["--busy-poll", "1001"], "--busy-poll must be 0 to 1000 microseconds, not '1001'"),
            (["--busy-poll", "-1"], "--busy-poll must be 0 to 1000 microseconds, not '-1'"),
            (["--busy-poll", "5e1"], "--busy-poll must be 0 to 1000 microseconds, not '5e1'"),
            (["--port", "nope"], "--port: cannot read listener 'nope': expected a port number, an endpoint string such as "
             "tcp:4444:interface=127.0.0.1, or a QEMU chardev such as telnet::4444,server,nowait"),
        ]
        for args, message in cases:
            e = self.assertRaises(UsageError, parse, *args)
            self.assertEqual(str(e), message)

    def test_numbersAsWritten(self) -> None:
        """A time written with Arabic-Indic digits or underscores is refused as typed, as max-clients and idle= refused digits: float() read '١' as 1 and '1_000' as 1000."""
        cases = [
            (["--pace", "١"], "--pace must be 0 to 10000 milliseconds, not '١'"),
            (["--pace-line", "1_000"], "--pace-line must be 0 to 10000 milliseconds, not '1_000'"),
            (["--break-duration", "١٠٠"], "--break-duration: break duration must be 1 to 10000 milliseconds, not '١٠٠'"),
            (["--coalesce", "١,٥"], "--coalesce: coalesce '١,٥': expected MIN_MS,MAX_MS[,STRING], e.g. 2,20 or 5,50,\\n"),
            (["--port", "telnet,idle=1_0+4444"], "--port: idle='1_0' in listener 'telnet,idle=1_0+4444': "
             "expected 0 < seconds <= 31536000.0"),
            (["--port", "tls:4443:cert=/c.pem:key=/k.pem:handshake=١"], "--port: handshake='١' in listener "
             "'tls:4443:cert=/c.pem:key=/k.pem:handshake=١': expected seconds, 0 (no limit) to 3600"),
        ]
        for args, message in cases:
            e = self.assertRaises(UsageError, parse, *args)
            self.assertEqual(str(e), message)
        # As ASCII they are read.
        self.assertEqual(parse("--pace", "1", "--coalesce", "10,50")["lines"][0].pace, 0.001)

    def test_numbersPastIntLimit(self) -> None:
        """A number of more than 4300 digits (int()'s limit) is a usage error quoting it, not int()'s ValueError."""
        big = "9" * 4301
        cases = [
            (["--busy-poll", big], f"--busy-poll must be 0 to 1000 microseconds, not {quote(big)}"),
            (["--baud", big], f"--baud: baud rate must be 1 to 2147483647, not {quote(big)}"),
            (["--serial", big + ",8N1"], f"--serial: cannot read {quote(big)} in serial settings {quote(big + ',8N1')}: expected "
             "BAUD[,DATABITS PARITY STOPBITS][,rtscts|xonxoff], e.g. 115200,8N1"),
            (["--max-clients", big], f"--max-clients must be 0 (no limit) to 65536, not {quote(big)}"),
            (["--shard", "1/" + big], f"--shard {quote('1/' + big)}: expected I/N, this process's number (from 0) of N "
             "processes, e.g. 0/2"),
        ]
        for args, message in cases:
            e = self.assertRaises(UsageError, parse, *args)
            self.assertEqual(str(e), message)
        # As many digits as int() reads are still read (and then range-checked).
        self.assertEqual(parse("--busy-poll", "0" * 4296 + "1000")["busyPoll"], 1000e-6)

    def test_listenerErrorsNameTheOption(self) -> None:
        """A listener the command line gives that cannot be read is refused naming its option, as --serial's is (it said only the value: which of --port, --listen, --status, --watch-all?)."""
        expected = "cannot read listener 'bogus': expected a port number, an endpoint string such as " \
                   "tcp:4444:interface=127.0.0.1, or a QEMU chardev such as telnet::4444,server,nowait"
        for option in ("--port", "--listen", "--status", "--watch-all"):
            e = self.assertRaises(UsageError, parse, option, "bogus")
            self.assertEqual(str(e), f"{option}: {expected}")
        e = self.assertRaises(UsageError, parse, "--port", "4001", "--listen", "raw+4002", "--listen",
                              "tcp,localhost,4003")
        self.assertEqual(str(e), "--listen: cannot read listener 'tcp,localhost,4003': ser2net's accepter form; "
                                 "serialgw writes it 'raw+tcp:4003:interface=127.0.0.1'")

    def test_deviceAndCoalesceErrorsNameTheOption(self) -> None:
        """--device's and --coalesce's errors begin with their option, as the listeners' and --serial's (a ser2net connector too)."""
        e = self.assertRaises(UsageError, parse, "--device", "bogus:x")
        self.assertEqual(str(e), "--device: unknown device 'bogus:x': expected a tty path, pty:LINK, telnet:HOST:PORT, "
                                 "rfc2217://HOST:PORT, tcp:HOST:PORT or unix:PATH")
        e = self.assertRaises(UsageError, parse, "--device", "telnet(rfc2217),tcp,kvm1,7007")
        self.assertEqual(str(e), "--device: cannot read device 'telnet(rfc2217),tcp,kvm1,7007': ser2net's connector "
                                 "form; serialgw writes it device = \"rfc2217://kvm1:7007\"")
        e = self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--coalesce", "1,nan")
        self.assertEqual(str(e), "--coalesce: coalesce '1,nan': expected 0 < MIN_MS <= MAX_MS <= 10000")

    def test_busyPoll(self) -> None:
        """--busy-poll sets the limit of serialgw's reactor, in microseconds; left out, the default; 0 turns it off."""
        from serialgw.app.reactor import DEFAULT_BUSY_POLL, GatewayReactor

        for args, limit in ((["--busy-poll", "0"], 0.0), (["--busy-poll", " 120 "], 120e-6), ([], DEFAULT_BUSY_POLL)):
            reactor = ownReactor(self, GatewayReactor())
            reactor.busyPoll.configure(7e-6)
            reactor.busyPoll.window = 7e-6
            tap.makeService(parse("--device", "/dev/null", *args), reactor=reactor)
            self.assertEqual((reactor.busyPoll.limit, reactor.busyPoll.window), (limit, 0.0))

    def test_helpHasExamples(self) -> None:
        """--help shows every option and the usage examples."""
        text = str(tap.Options())
        for option in ("--device", "--port", "--listen", "--serial", "--baud", "--bytesize", "--parity",
                       "--stopbits", "--xonxoff", "--rtscts", "--break-duration", "--name", "--signature",
                       "--no-restore", "--config", "--status"):
            self.assertIn(option, text)
        self.assertIn("twistd -n serialgw --port 4444 --device /dev/ttyS0 --baud 115200", text)

    def test_helpExamplesCheck(self) -> None:
        """Every twistd serialgw command among --help's examples passes --check as printed (an IPv6 interface's colons escaped)."""
        commands = [shlex.split(line.strip()) for line in tap.Options.examples.splitlines()
                    if line.strip().startswith("twistd ")]
        self.assertGreaterEqual(len(commands), 3, commands)
        for words in commands:
            args = words[words.index("serialgw") + 1:]
            code, _, err = checked(*args)
            self.assertEqual(code, 0, f"{args}: {err}")

    def test_plugin(self) -> None:
        """twistd finds the serialgw plugin, and it names serialgw.app.tap."""
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("serialgw", makers)
        self.assertEqual(makers["serialgw"].module, "serialgw.app.tap")  # type: ignore[attr-defined]
        self.assertIs(makers["serialgw"].options, tap.Options)


class StartupTests(TestCase):
    def test_deviceError(self) -> None:
        """A device that cannot open is a StartupError naming the line and the device."""
        config = LineConfig("x", DeviceSpec("tty", "/dev/nonexistent-tty"), listeners=(ListenerSpec("tcp:0"),),
                            lockDir=testLockDir())
        service = GatewayService([config], reactor=MemoryReactorClock())
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(e), "line 'x': cannot open device '/dev/nonexistent-tty': No such file or directory (not "
                                 "there now: --wait-for-device starts the line down and opens it once it is there)")

    def test_twistdExitsWithOneLine(self) -> None:
        """Under twistd a start-up error is a SystemExit with one line, and nothing stays open."""
        import socket

        pty = PtyPair()
        self.addCleanup(pty.close)
        # (A port another program holds; a host name as the interface is refused when read.)
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = f"tcp:{busy.getsockname()[1]}:interface=127.0.0.1"
        options = parse("--device", pty.slaveName, "--lock-dir", testLockDir(), "--port", "tcp:0:interface=127.0.0.1",
                        "--listen", taken)
        service = tap.makeService(options)
        e = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertTrue(str(e.code).startswith(
            "serialgw: error: line '" + pty.slaveName[len("/dev/"):].replace("/", "-") + f"': cannot listen on '{taken}': "
        ), e.code)
        self.assertEqual(service.ports, [])
        self.assertEqual(service.lines, {})


    def test_netconsolePortBusyExitsWithOneLine(self) -> None:
        """A netconsole whose UDP port another program holds: one line naming the listener, as for TCP, not a traceback; nothing stays open."""
        import socket

        pty = PtyPair()
        self.addCleanup(pty.close)
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(busy.close)
        busy.bind(("0.0.0.0", 0))
        port = busy.getsockname()[1]
        options = parse("--device", pty.slaveName, "--lock-dir", testLockDir(), "--port", "tcp:0:interface=127.0.0.1",
                        "--listen", f"udp::4555@{port}")
        service = tap.makeService(options)
        e = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(str(e.code), "serialgw: error: line '" + pty.slaveName[len("/dev/"):].replace("/", "-") + f"': cannot listen on "
                         f"'udp::4555@{port}': Couldn't listen on any:{port}: [Errno 98] Address already in use.")
        self.assertEqual(service.ports, [])
        self.assertEqual(service.lines, {})

class FileLimitTests(SynchronousTestCase):
    def test_softLimitRaisedHardLimitKept(self) -> None:
        """A low soft RLIMIT_NOFILE is raised to the hard limit; the hard limit stays what it was."""
        import resource
        import subprocess
        import sys

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard <= 256:
            raise SkipTest(f"needs a finite hard limit above 256, not {hard}")

        def low() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

        code = ("import resource; from serialgw.app.process import raiseFileLimit; raiseFileLimit(); "
                "print(*resource.getrlimit(resource.RLIMIT_NOFILE))")
        out = subprocess.run([sys.executable, "-c", code], preexec_fn=low, capture_output=True, text=True,
                             check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        self.assertEqual(out.stdout.split(), [str(hard), str(hard)])
