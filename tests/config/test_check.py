"""
twistd serialgw --check: a configuration checked without opening, binding
or creating anything; exit 0 (usable, perhaps with warnings) or 2.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import tap
from serialgw.app.check import checkLines
from serialgw.app.startchecks import listenerKey
from serialgw.app.systemdsockets import systemdProblem
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from tests.realio import REPO, TWISTD, gatewayArgv, socketPath, spawn
from tests.shortpaths import shortDirectory, shortTemp


def write(case: SynchronousTestCase, text: str) -> str:
    path = shortTemp(case)
    with open(path, "w") as f:
        f.write(text)
    return path


def checked(*args: str) -> tuple[int, str, str]:
    """Parse options in --check mode's way; the exit status, stdout and stderr of report()."""
    options = tap.Options()
    options.exitOnError = False
    options.parseOptions(["--check", *args])
    out, err = io.StringIO(), io.StringIO()
    return options.report(out, err), out.getvalue(), err.getvalue()


class CheckTests(SynchronousTestCase):
    def test_listenerKeys(self) -> None:
        """Every way of writing a TCP port, a UDP port or a path comes down to what it takes."""
        cases = {
            "4001": ("tcp", "", "4001"),
            "raw+tcp:5001:interface=127.0.0.1": ("tcp", "127.0.0.1", "5001"),
            "telnet::4002,server,nowait": ("tcp", "", "4002"),
            "telnet:127.0.0.1:4003,server": ("tcp", "127.0.0.1", "4003"),
            "tcp6:port=4004:interface=\\:\\:1": ("tcp", "::1", "4004"),
            "udp::4555@4556": ("udp", "", "4556"),
            "unix:/run/a.sock": ("path", "/run/a.sock", ""),
            "unix:/run/b.sock,server,nowait": ("path", "/run/b.sock", ""),
            "pty:/dev/ttyVM0": ("path", "/dev/ttyVM0", ""),
            "tcp:0:interface=127.0.0.1": None,
            "telnet:host:4005": None,
            "systemd:domain=INET:index=0": None,
            # Twisted's keyword and positional forms: what Twisted binds.
            "unix:address=/run/c.sock:mode=660": ("path", "/run/c.sock", ""),
            "unix:/run/d\\:e.sock": ("path", "/run/d:e.sock", ""),
            "raw+tcp:port=4006": ("tcp", "", "4006"),
            "tcp:4007:127.0.0.1": ("tcp", "127.0.0.1", "4007"),
            "tcp:interface=127.0.0.1:port=4008": ("tcp", "127.0.0.1", "4008"),
            "tcp6:4009": ("tcp", "::", "4009"),
            "tcp:port=0": None,
        }
        for text, key in cases.items():
            self.assertEqual(listenerKey(parseListener(text)), key, text)

    def test_clean(self) -> None:
        """A farm file with distinct ports and existing devices: exit 0 and one line on stdout."""
        # (The pty's link in a directory of the test's own: a /tmp/x that
        # someone else made would be said, rightly, as a warning.)
        link = os.path.join(os.path.abspath(self.mktemp()), "x")
        os.makedirs(os.path.dirname(link))
        path = write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = ["4001", "raw+tcp:4101:interface=127.0.0.1"]\n'
                           f'[lines.b]\ndevice = "pty:{link}"\nlisten = "telnet:127.0.0.1:4002,server,nowait"\n')
        self.assertEqual(checked("--config", path),
                         (0, f"serialgw: {path}: 2 line(s), 3 listener(s): OK\n", ""))

    def test_listenerPastTheLinesRights(self) -> None:
        """A line whose write / read name people, with a writable TCP listener that asks no certificate (telnet, raw, TLS without ca=): warned, naming it (whoever connects there types, whatever write / read say); ro, a ca=, a unix socket, or a line without write / read: no warning."""
        from tests.clients.test_ssh import newKey, publicLine

        users = (f'[ssh]\nlisten = "tcp:2222:interface=127.0.0.1"\nhost-key = "{self.mktemp()}"\n[users.ops1]\n'
                 f'keys = ["{publicLine(newKey())}"]\n')
        path = write(self, users + '[lines.a]\ndevice = "/dev/null"\nwrite = ["ops1"]\nlisten = ["4001", '
                                   '"raw,ro+4101", "unix:/tmp/a.sock", "raw+tls:4201:cert=/dev/null:key=/dev/null"]\n'
                                   '[lines.b]\ndevice = "/dev/zero"\nlisten = "4002"\n')
        status, _, err = checked("--config", path)
        why = ("knows no person: whoever connects there types, whatever the line's write / read say (they name "
               "the people of SSH keys and TLS client certificates); give it ro, or TLS with ca=")
        self.assertEqual([e for e in err.splitlines() if "knows no person" in e],
                         [f"serialgw: warning: {path}:6: line 'a': listener '4001' {why}",
                          f"serialgw: warning: {path}:6: line 'a': listener 'raw+tls:4201:cert=/dev/null:key=/dev/null' "
                          f"{why}"])

    def test_duplicatePorts(self) -> None:
        """The same port on the same or a wildcard interface, across lines or with --status: errors, exit 2."""
        path = write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = ["4001", "raw+tcp:4101:interface=127.0.0.1"]\n'
                           '[lines.b]\ndevice = "/dev/zero"\nlisten = ["telnet:127.0.0.1:4001,server", "tcp:4101:interface=127.0.0.2"]\n')
        self.assertEqual(checked("--config", path, "--status", "tcp:4101:interface=127.0.0.1"), (2, "", (
            f"serialgw: error: {path}:4: line 'b': listener 'telnet:127.0.0.1:4001,server' takes TCP port 4001, "
            "as line 'a', listener '4001' already does\n"
            "serialgw: error: the status endpoint: listener 'tcp:4101:interface=127.0.0.1' takes TCP port 4101, "
            "as line 'a', listener 'raw+tcp:4101:interface=127.0.0.1' already does\n"
            f"serialgw: {path}: 2 error(s)\n")))

    def test_watchAllPorts(self) -> None:
        """A watch-all listener (in the file or --watch-all) on a line's port: an error, as start-up would fail to bind."""
        here = os.path.dirname(os.path.abspath(self.mktemp()))  # (a pty: link's directory that is there)
        path = write(self, '[watch-all]\nlisten = "tcp:4901:interface=127.0.0.1"\n'
                           f'[lines.a]\ndevice = "pty:{here}/a"\nlisten = "tcp:4901:interface=127.0.0.1"\n')
        self.assertEqual(checked("--config", path), (2, "", (
            "serialgw: error: watch-all: listener 'tcp:4901:interface=127.0.0.1' takes TCP port 4901, "
            "as line 'a', listener 'tcp:4901:interface=127.0.0.1' already does\n"
            f"serialgw: {path}: 1 error(s)\n")))
        self.assertEqual(checked("--device", f"pty:{here}/a", "--port", "4902", "--watch-all", "4902")[0], 2)

    def test_ptyDeviceAndListenerLink(self) -> None:
        """A pty: device's link and another line's pty: listener on one path: an error (the second link fails at start)."""
        path = write(self, '[lines.a]\ndevice = "pty:/tmp/x/link"\nlisten = "4001"\n'
                           '[lines.b]\ndevice = "pty:/tmp/x/other"\nlisten = ["4002", "pty:/tmp/x/link"]\n')
        self.assertEqual(str(self.assertRaises(usage.UsageError, checked, "--config", path)),
                         f"{path}:6: [lines.b] listen: 'pty:/tmp/x/link' makes '/tmp/x/link', which line 'a' makes "
                         "with 'pty:/tmp/x/link'")
        # The status endpoint's or an SSH listener's unix socket is not in the file: checked here.
        here = os.path.dirname(os.path.abspath(self.mktemp()))
        self.assertEqual(checked("--device", f"pty:{here}/a", "--port", "unix:/tmp/s", "--status", "unix:/tmp//s")[2],
                         "serialgw: error: the status endpoint: listener 'unix:/tmp//s' takes path '/tmp/s', as line "
                         "'a', listener 'unix:/tmp/s' already does\nserialgw: options: 1 error(s)\n")

    def test_listenerPathsNow(self) -> None:
        """
        What is at a file:, pipe:, pty: or unix listener's path now: a
        missing directory warns; a directory for a file:, a non-socket for
        a unix socket, a link not to a pty for a pty: are errors (the start
        fails on each); a socket, a dangling link are fine.  A pty: device's
        link taken so warns (its line would start down).
        """
        here = os.path.dirname(socketPath(self))
        for name in ("dir", "dir2", "dir3"):
            os.mkdir(os.path.join(here, name))
        for name in ("file", "file2", "file3"):
            open(os.path.join(here, name), "w").close()
        for name in ("null", "null2"):
            os.symlink("/dev/null", os.path.join(here, name))
        os.symlink(os.path.join(here, "gone"), os.path.join(here, "dangling"))
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(here, "sock"))
        listeners = ["file:/nowhere/x", "pipe:/nowhere/p", "pty:/nowhere/t", "unix:/nowhere/s", f"file:{here}/dir",
                     f"unix:{here}/file", f"raw+unix:{here}/dir2,server,nowait", f"pty:{here}/file2", f"pty:{here}/null",
                     f"unix:{here}/sock", f"pty:{here}/dangling", f"file:{here}/file3", f"pipe:{here}/pipe"]
        lines = loadConfig(write(self, f'[lines.a]\ndevice = "pty:{here}/null2"\nlisten = {json.dumps(listeners)}\n'
                                       f'[lines.b]\ndevice = "pty:{here}/dir3"\nlisten = "4001"\n'))
        self.assertEqual(checkLines(lines), ([
            f"line 'a': listener 'file:{here}/dir': '{here}/dir' is a directory",
            f"line 'a': listener 'unix:{here}/file': '{here}/file' exists and is not a socket",
            f"line 'a': listener 'raw+unix:{here}/dir2,server,nowait': '{here}/dir2' exists and is not a socket",
            f"line 'a': listener 'pty:{here}/file2': '{here}/file2' exists and is not a symlink",
            f"line 'a': listener 'pty:{here}/null': '{here}/null' is a symlink to '/dev/null', which is not a pty",
        ], [
            f"line 'a': device 'pty:{here}/null2': '{here}/null2' is a symlink to '/dev/null', which is not a pty: "
            "the line would start down (tried again with backoff)",
            "line 'a': listener 'file:/nowhere/x': directory '/nowhere' does not exist (now)",
            "line 'a': listener 'pipe:/nowhere/p': directory '/nowhere' does not exist (now)",
            "line 'a': listener 'pty:/nowhere/t': directory '/nowhere' does not exist (now)",
            "line 'a': listener 'unix:/nowhere/s': directory '/nowhere' does not exist (now)",
            f"line 'b': device 'pty:{here}/dir3': '{here}/dir3' exists and is not a symlink: the line would start down "
            "(tried again with backoff)",
        ]))

    def test_pathsQuotedAsTyped(self) -> None:
        """--check quotes a path as it was typed: a backslash in it is one backslash, not repr's two."""
        lines = loadConfig(write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = "file:/nowhere\\\\q/x"\nlock = false\n'))
        self.assertEqual(checkLines(lines)[1], ["line 'a': listener 'file:/nowhere\\q/x': directory '/nowhere\\q' does not exist (now)"])

    def test_sameDeviceSameLog(self) -> None:
        """Two lines on one device, or one console log: an error from reading the file, as at start and at a reload."""
        path = write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nlog = "/tmp/same.log"\n'
                           '[lines.b]\ndevice = "/dev/../dev/null"\nlisten = "4002"\nlog = "/tmp/same.log"\n')
        self.assertEqual(str(self.assertRaises(usage.UsageError, checked, "--config", path)),
                         f"{path}:6: [lines.b] device: '/dev/../dev/null' is line 'a''s device too")

    def test_expiredCertificateWarns(self) -> None:
        """A TLS listener's certificate that has expired: a warning naming it and its date, exit 0 (every handshake would fail)."""
        from tests.certs import Authority

        ca = Authority(shortDirectory(self))
        cert, key = ca.issue("old", days=-3)
        listener = f"tls:4443:cert={cert}:key={key}"
        code, out, err = checked("--device", "/dev/null", "--port", listener)
        self.assertEqual((code, out), (0, "serialgw: options: 1 line(s), 1 listener(s): OK, 1 warning(s)\n"))
        self.assertTrue(err.startswith(f"serialgw: warning: line 'null': listener '{listener}': certificate '{cert}' "
                                       "(CN 'old') expired on "), err)
        self.assertTrue(err.endswith(" UTC: TLS peers will refuse it (certificate expired) (now)\n"), err)

    def test_tlsFileNotAFile(self) -> None:
        """A TLS cert, key or ca that is a FIFO, a device or over MAX_PEM_FILE now: a warning (the start refuses it), not silence."""
        from serialgw.clients.tlsfiles import MAX_PEM_FILE

        directory = shortDirectory(self)
        fifo, big = os.path.join(directory, "fifo"), os.path.join(directory, "big.pem")
        os.mkfifo(fifo)
        with open(big, "wb") as f:
            f.truncate(MAX_PEM_FILE + 1)
        listener = f"tls:4443:cert={fifo}:key=/dev/zero:ca={big}"
        code, out, err = checked("--device", "/dev/null", "--port", listener)
        self.assertEqual((code, out), (0, "serialgw: options: 1 line(s), 1 listener(s): OK, 3 warning(s)\n"))
        self.assertEqual(err, (
            f"serialgw: warning: line 'null': listener '{listener}': cert file '{fifo}' is not a regular file (now): "
            "the start would refuse it\n"
            f"serialgw: warning: line 'null': listener '{listener}': key file '/dev/zero' is not a regular file (now): "
            "the start would refuse it\n"
            f"serialgw: warning: line 'null': listener '{listener}': ca file '{big}' is larger than 4 MiB (now): "
            "the start would refuse it\n"))

    def test_tlsFilesThatDoNotLoad(self) -> None:
        """TLS files that can be read but not loaded (cert and key swapped, a key that is not the certificate's, a CA file holding a key; a listener's and a dial-out's): a warning each with the start's reason, not OK (the start refused them)."""
        from tests.certs import Authority

        ca = Authority(shortDirectory(self))
        cert, key = ca.issue("gw")
        other = ca.issue("other")[1]
        listeners = [f"tls:4443:cert={key}:key={cert}", f"tls:4444:cert={cert}:key={other}",
                     f"tls:gw.example:4445:ca={key}"]
        code, out, err = checked("--device", "/dev/null", "--port", listeners[0], "--listen", listeners[1],
                                 "--listen", listeners[2])
        self.assertEqual((code, out), (0, "serialgw: options: 1 line(s), 3 listener(s): OK, 3 warning(s)\n"))
        self.assertEqual(err.splitlines(), [
            f"serialgw: warning: line 'null': listener '{listeners[0]}': certificate '{key}' holds no PEM certificate "
            f"but a private key, and key '{cert}' a certificate: are cert= and key= swapped? (now): the start would "
            "refuse it",
            f"serialgw: warning: line 'null': listener '{listeners[1]}': key '{other}' is not the key of certificate "
            f"'{cert}' (now): the start would refuse it",
            f"serialgw: warning: line 'null': listener '{listeners[2]}': CA file '{key}' holds no PEM certificate but "
            "a private key (now): the start would refuse it",
        ])

    def test_missingThingsWarn(self) -> None:
        """A device, socket, log directory or TLS file that is not there now: warnings, exit 0."""
        code, out, err = checked("--device", "/dev/ttyUSB-nowhere", "--port",
                                 "tls:4443:cert=/nowhere/c.pem:key=/nowhere/k.pem")
        self.assertEqual((code, out), (0, "serialgw: options: 1 line(s), 1 listener(s): OK, 3 warning(s)\n"))
        self.assertEqual(err, (
            "serialgw: warning: line 'ttyUSB-nowhere': device '/dev/ttyUSB-nowhere' does not exist (now)\n"
            "serialgw: warning: line 'ttyUSB-nowhere': listener 'tls:4443:cert=/nowhere/c.pem:key=/nowhere/k.pem': "
            "cert file '/nowhere/c.pem' cannot be read (now)\n"
            "serialgw: warning: line 'ttyUSB-nowhere': listener 'tls:4443:cert=/nowhere/c.pem:key=/nowhere/k.pem': "
            "key file '/nowhere/k.pem' cannot be read (now)\n"))
        lines = loadConfig(write(self, '[lines.vm]\ndevice = "unix:/nowhere/100.serial0"\nlisten = "4001"\n'
                                       'log = "/nowhere/vm.log"\n'))
        self.assertEqual(checkLines(lines), ([], [
            "line 'vm': socket '/nowhere/100.serial0' does not exist (now)",
            "line 'vm': the directory of log '/nowhere/vm.log' does not exist (now)",
        ]))

    def test_deviceNotADevice(self) -> None:
        """A tty device path that is a directory, a regular file, a FIFO or a unix socket now: a warning saying what it is (the line would stay down), a socket's with its unix: form."""
        directory = shortDirectory(self)
        os.mkfifo(os.path.join(directory, "fifo"))
        open(os.path.join(directory, "file"), "w").close()
        path = socketPath(self, "vm.serial0")
        listening = socket.socket(socket.AF_UNIX)
        self.addCleanup(listening.close)
        listening.bind(path)
        for device, what in ((directory, "a directory"), (os.path.join(directory, "file"), "a regular file"),
                             (os.path.join(directory, "fifo"), "a FIFO"), (path, "a unix socket")):
            lines = loadConfig(write(self, f'[lines.a]\ndevice = "{device}"\nlisten = "4001"\nlock = false\n'))
            hint = f" (a socket is device = \"unix:{device}\")" if what == "a unix socket" else ""
            self.assertEqual(checkLines(lines), ([], [f"line 'a': device '{device}' is {what} now, not a serial "
                                                      f"device: the line would stay down{hint}"]))

    def test_deviceThePtyMultiplexer(self) -> None:
        """A tty device path that is the pty multiplexer (/dev/ptmx, a link to it): a warning saying so and what to use, as the start refuses it (--check said OK)."""
        link = shortTemp(self)
        os.symlink("/dev/ptmx", link)
        for device in ("/dev/ptmx", link):
            lines = loadConfig(write(self, f'[lines.a]\ndevice = "{device}"\nlisten = "4001"\nlock = false\n'))
            self.assertEqual(checkLines(lines), ([], [f"line 'a': device '{device}' is the pty multiplexer (/dev/ptmx), "
                                                      "not a serial device: each open makes a new pty that no program "
                                                      "is on; the line would stay down (for a pty a program plays the "
                                                      "device on, use pty:LINK)"]))

    def test_logNotAFile(self) -> None:
        """A console log path that is a directory, a FIFO, a symlink or a unix socket now: an error (the gateway would refuse it) naming what is there (a socket was said to be 'a directory, FIFO, device or symbolic link')."""
        import socket

        # (Short: its socket's path fits AF_UNIX's 108 bytes wherever the tests run; under mktemp() it failed past a 28-byte checkout path.)
        directory = os.path.dirname(socketPath(self))
        os.mkfifo(os.path.join(directory, "fifo"))
        os.symlink("/tmp/x", os.path.join(directory, "link"))
        listening = socket.socket(socket.AF_UNIX)
        self.addCleanup(listening.close)
        listening.bind(os.path.join(directory, "sock"))
        for name, what in (("", "a directory"), ("fifo", "a FIFO"), ("link", "a symbolic link"), ("sock", "a socket")):
            path = os.path.join(directory, name) if name else directory
            lines = loadConfig(write(self, f'[lines.a]\ndevice = "pty:{directory}/a"\nlisten = "4001"\nlog = "{path}"\n'))
            self.assertEqual(checkLines(lines), ([f"line 'a': log {path!r} is not a regular file: it is {what}"], []))

    def test_refusedByParsing(self) -> None:
        """What bind() or open() would refuse only at start is refused by --check too: one line, exit status 2."""
        deep = write(self, '[lines.a]\ndevice = "pty:/nowhere/a"\nlisten = ' + "[" * 3000 + "]" * 3000 + "\n")
        cases = [
            (["--device", "pty:/nowhere/a", "--port", "tcp:99999"], "--port: bad port '99999' in listener 'tcp:99999': "
             "expected a port number, 0 to 65535"),
            (["--device", "pty:/nowhere/a", "--port", "tcp6:70000"], "--port: bad port '70000' in listener 'tcp6:70000': "
             "expected a port number, 0 to 65535"),
            (["--device", "pty:/nowhere/a", "--port", "unix:"], "--port: unix: needs a path in listener 'unix:'"),
            (["--config", deep], f"{deep}: arrays or tables nested too deep"),
        ]
        for args, message in cases:
            with self.assertRaises(usage.UsageError) as caught:
                checked(*args)
            self.assertEqual(str(caught.exception), message)

    def test_sameSocketTwoSpellings(self) -> None:
        """unix:PATH and unix:address=PATH, tcp:N and tcp:port=N take the same thing: taken twice."""
        path = write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = ["unix:/run/a.sock", "tcp:port=4001"]\n'
                           '[lines.b]\ndevice = "/dev/zero"\nlisten = ["raw+unix:address=/run/a.sock", "4001"]\n')
        self.assertEqual(checked("--config", path), (2, "", (
            f"serialgw: error: {path}:4: line 'b': listener 'raw+unix:address=/run/a.sock' takes path '/run/a.sock', "
            "as line 'a', listener 'unix:/run/a.sock' already does\n"
            f"serialgw: error: {path}:4: line 'b': listener '4001' takes TCP port 4001, "
            "as line 'a', listener 'tcp:port=4001' already does\n"
            f"serialgw: {path}: 2 error(s)\n")))

    def test_watchAllMatchingNoLine(self) -> None:
        """[watch-all] lines that match no line of the file: a warning, as at start (its watchers would see nothing); one that matches: none."""
        lines = '[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\n'
        path = write(self, lines + '[watch-all]\nlisten = "tcp:4400:interface=127.0.0.1"\nlines = ["zz*", "b?"]\n')
        self.assertEqual(checked("--config", path), (0, f"serialgw: {path}: 1 line(s), 1 listener(s): OK, 1 warning(s)\n",
                         "serialgw: warning: watch-all: lines zz* b? match no line of the file (a): its watchers "
                         "would see nothing until a line that matches is added\n"))
        path = write(self, lines + '[watch-all]\nlisten = "tcp:4400:interface=127.0.0.1"\nlines = ["zz*", "a"]\n')
        self.assertEqual(checked("--config", path), (0, f"serialgw: {path}: 1 line(s), 1 listener(s): OK\n", ""))

    def test_byNameMatchingNoLine(self) -> None:
        """
        [by-name] lines that match no line served (a pattern of none, or a
        line with enable = false): a warning, as the start gives it (--check
        said OK, the start 'by-name: lines b match no line (of ['a'])'; seen
        live, probe30); one that matches: none.
        """
        lines = ('[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\n'
                 '[lines.b]\ndevice = "/dev/zero"\nlisten = "4002"\nenable = false\n')
        for patterns in ('["b"]', '["zz*", "c?"]'):
            path = write(self, lines + f'[by-name]\nlisten = "tcp:4400:interface=127.0.0.1"\nlines = {patterns}\n')
            shown = " ".join(patterns.strip("[]").replace('"', "").split(", "))
            self.assertEqual(checked("--config", path), (0, f"serialgw: {path}: 1 line(s), 1 listener(s): OK, 1 "
                                                            "warning(s)\n",
                             f"serialgw: warning: by-name: lines {shown} match no line of the file (a): its clients "
                             "would find no console until a line that matches is added\n"))
        path = write(self, lines + '[by-name]\nlisten = "tcp:4400:interface=127.0.0.1"\nlines = ["b", "a*"]\n')
        self.assertEqual(checked("--config", path), (0, f"serialgw: {path}: 1 line(s), 1 listener(s): OK\n", ""))

    def test_linesOfTheFileNamed(self) -> None:
        """--config: what --check finds about a line on disk or across lines begins with the file's line of its table ([lines."q"] quoted too); other messages as they are."""
        directory = shortDirectory(self)
        path = write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\n\n'
                           f'[lines."q"]\ndevice = "/dev/zero"\nlisten = "tcp:4001"\nlog = "{directory}"\n')
        self.assertEqual(checked("--config", path, "--status", "tcp:4001"), (2, "", (
            f"serialgw: error: {path}:5: line 'q': log {directory!r} is not a regular file: it is a directory\n"
            f"serialgw: error: {path}:5: line 'q': listener 'tcp:4001' takes TCP port 4001, as line 'a', listener "
            "'4001' already does\n"
            "serialgw: error: the status endpoint: listener 'tcp:4001' takes TCP port 4001, as line 'a', listener "
            "'4001' already does\n"
            f"serialgw: {path}: 3 error(s)\n")))

    def test_byNameTLSFiles(self) -> None:
        """A [by-name] TLS listener's files are looked at as a line's are (--check said OK of missing ones; the start refused them)."""
        directory = shortDirectory(self)
        path = write(self, f'[by-name]\nlisten = "tls:4003:cert={directory}/gw.pem:key={directory}/gw.key"\n'
                           '[lines.a]\ndevice = "pty:/nowhere/a"\nlisten = "tcp:4001:interface=127.0.0.1"\n')
        status, out, err = checked("--config", path)
        listener = f"listener 'tls:4003:cert={directory}/gw.pem:key={directory}/gw.key'"
        self.assertEqual((status, [line for line in err.splitlines() if "by-name" in line]), (0, [
            f"serialgw: warning: by-name: {listener}: cert file '{directory}/gw.pem' cannot be read (now)",
            f"serialgw: warning: by-name: {listener}: key file '{directory}/gw.key' cannot be read (now)"]))

    def test_systemdPositionalIndex(self) -> None:
        """systemd:DOMAIN:INDEX, Twisted's positional form, names the socket as index= does."""
        environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a"}
        self.assertIsNone(systemdProblem("systemd:INET:0", environ))
        self.assertEqual(systemdProblem("systemd:INET:1", environ),
                         "index=1: systemd passed 1 socket(s), index=0 to index=0")

    def test_systemdIndexGarbage(self) -> None:
        """index=\u00b2 with sockets passed: a problem named, not a ValueError."""
        environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a"}
        self.assertEqual(systemdProblem("systemd:domain=INET:index=\u00b2", environ),
                         "index=\u00b2: systemd passed 1 socket(s), index=0 to index=0")

    def test_abstractUnixNames(self) -> None:
        """An abstract unix device or listener ("\\u0000NAME") has no file to look for: no warning."""
        lines = loadConfig(write(self, '[lines.vm]\ndevice = "unix:\\u0000vm100"\nlisten = "unix:\\u0000rack4"\n'))
        self.assertEqual(checkLines(lines), ([], []))

    def test_unixNamesTooLong(self) -> None:
        """A unix socket path past sun_path (107 bytes and a NUL) for a device, a line's listener or dial-out, the
        status, watch-all or SSH listener: an error each, naming it and its length, exit 2; 107 bytes pass."""
        fits, long = "/tmp/" + "a" * 102, "/tmp/" + "b" * 103
        keys = write(self, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk2gGl2+Rk3Jqf3A1h8sZk6e2n2hY2xk8Uj0Zl7m9Zq ann\n")
        code, out, err = checked("--name", "n", "--device", f"unix:{long}", "--port", f"unix:{fits}",
                                 "--listen", f"raw+unix:{long[:-1]}s,server", "--listen", f"raw+unix:{long[:-1]}d",
                                 "--status", f"unix:{long[:-1]}t", "--watch-all", f"unix:{long[:-1]}w",
                                 "--ssh", f"unix:{long[:-1]}h", "--authorized-keys", keys,
                                 "--ssh-host-key", os.path.abspath(self.mktemp()))
        past = "bytes, past the 107 of a unix socket name: give a shorter path"
        self.assertEqual((code, out), (2, ""))
        self.assertEqual(err.splitlines(), [
            f"serialgw: warning: line 'n': socket {long!r} does not exist (now)",
            f"serialgw: error: line 'n': device 'unix:{long}': unix socket {long!r} is 108 {past}",
            f"serialgw: error: line 'n': listener 'raw+unix:{long[:-1]}s,server': unix socket '{long[:-1]}s' is 108 {past}",
            f"serialgw: error: line 'n': listener 'raw+unix:{long[:-1]}d': unix socket '{long[:-1]}d' is 108 {past}",
            f"serialgw: error: the status endpoint: listener 'unix:{long[:-1]}t': unix socket '{long[:-1]}t' is 108 {past}",
            f"serialgw: error: watch-all: listener 'unix:{long[:-1]}w': unix socket '{long[:-1]}w' is 108 {past}",
            f"serialgw: error: the SSH listener: listener 'unix:{long[:-1]}h': unix socket '{long[:-1]}h' is 108 {past}",
            "serialgw: options: 6 error(s)",
        ])

    def test_abstractUnixNamesTooLong(self) -> None:
        """An abstract unix name may take all 108 bytes of sun_path (no NUL after it); one more is an error."""
        fits, long = "\\u0000" + "a" * 107, "\\u0000" + "b" * 108
        lines = loadConfig(write(self, f'[lines.vm]\ndevice = "unix:{fits}"\nlisten = ["unix:{fits}x", "unix:{long}"]\n'))
        self.assertEqual(checkLines(lines), ([
            f"line 'vm': listener 'unix:\\x00{'a' * 107}x': unix socket '@{'a' * 107}x' is 109 bytes, past the 108 "
            "of a unix socket name: give a shorter path",
            f"line 'vm': listener 'unix:\\x00{'b' * 108}': unix socket '@{'b' * 108}' is 109 bytes, past the 108 "
            "of a unix socket name: give a shorter path",
        ], []))

    def test_statusOverTLSRefused(self) -> None:
        """--status tls:...: refused when parsed (--check and start alike), naming the option and the value."""
        with self.assertRaises(usage.UsageError) as caught:
            checked("--device", "pty:/nowhere/a", "--status", "tls:8443:interface=127.0.0.1:cert=/c.pem:key=/k.pem")
        self.assertEqual(str(caught.exception), STATUS_TLS)


    def test_statusListenerOptionsRefused(self) -> None:
        """--status with listener options (allow=, ro, raw+, ...): refused naming the value, not served with allow= ignored."""
        for text in ("telnet,allow=10.0.0.0/8+tcp:8440:interface=127.0.0.1", "raw+8440", "telnet,ro+tcp:8440"):
            with self.assertRaises(usage.UsageError) as caught:
                checked("--device", "pty:/nowhere/a", "--status", text)
            self.assertEqual(str(caught.exception), f"--status {text!r}: listener options do not apply to the status "
                             "endpoint (it serves HTTP to whoever reaches it): bind it to an interface "
                             "(tcp:8440:interface=127.0.0.1) or a unix socket, and filter in front of it")
        self.assertEqual(checked("--device", "pty:/nowhere/a", "--status", "tcp:8440:interface=127.0.0.1")[0], 0)

STATUS_TLS = ("--status 'tls:8443:interface=127.0.0.1:cert=/c.pem:key=/k.pem': expected a server endpoint for plain "
              "HTTP such as tcp:8440:interface=127.0.0.1 or unix:/run/serialgw/status.sock (no dial-out, file, pipe, "
              "netconsole or TLS: for HTTPS, put a TLS proxy in front of it)")


class TwistdTests(TestCase):
    timeout = 30

    async def check(self, *args: str) -> tuple[int, bytes]:
        proc = spawn(TWISTD + ["serialgw", "--check", *args])
        code = await proc.ended
        return code, proc.output.data

    async def test_exitCodes(self) -> None:
        """The real twistd: 0 and the OK line; 2 and one error line for a bad key; nothing created, nothing daemonized."""
        here = os.path.dirname(os.path.abspath(self.mktemp()))
        good = write(self, f'[lines.a]\ndevice = "pty:{here}/link"\nlisten = "tcp:4001:interface=127.0.0.1"\n')
        code, output = await self.check("--config", good)
        self.assertEqual((code, output), (0, f"serialgw: {good}: 1 line(s), 1 listener(s): OK\n".encode()))
        bad = write(self, '[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nspeed = 9600\n')
        code, output = await self.check("--config", bad)
        self.assertEqual(code, 2)
        self.assertTrue(output.startswith(f"serialgw: error: {bad}:4: unknown key 'speed' in [lines.a]".encode()),
                        output)
        self.assertEqual(output.count(b"\n"), 1)
        code, output = await self.check("--device", "/dev/null", "--port", "4001", "--listen", "raw+4001")
        self.assertEqual(code, 2)
        self.assertFalse(os.path.exists(os.path.join(REPO, "twistd.pid")))
        self.assertFalse(os.path.exists("/nowhere/link"))

    async def test_statusOverTLSRefusedAtStart(self) -> None:
        """twistd -n serialgw --status tls:...: exit 2 and the --check error, before anything listens (no port 443)."""
        proc = spawn(gatewayArgv("--device", "pty:/nowhere/link", "--port", "tcp:0:interface=127.0.0.1",
                                 "--status", "tls:8443:interface=127.0.0.1:cert=/c.pem:key=/k.pem"))
        self.assertEqual((await proc.ended, proc.output.data), (2, f"serialgw: error: {STATUS_TLS}\n".encode()))
        self.assertFalse(os.path.exists("/nowhere/link"))


class FarmSizeTests(SynchronousTestCase):
    def test_listenersComparedWithTheirOwnKind(self) -> None:
        """--check of a large farm compares each listener only with those on its path or port: linear, not quadratic."""
        from serialgw.app import startchecks

        calls = []
        clash = startchecks._clash

        def counted(a: tuple[str, str, str], b: tuple[str, str, str]) -> bool:
            calls.append((a, b))
            return clash(a, b)

        self.patch(startchecks, "_clash", counted)
        text = "".join(f'[lines.l{i}]\ndevice = "pty:"\nlisten = ["raw+tcp:{10000 + i}:interface=127.0.0.1", '
                       f'"unix:/nowhere/l{i}.sock", "4{i % 10}00"]\n' for i in range(1000))
        errors, _ = checkLines(loadConfig(write(self, text)))
        # The same port 4N00 on every tenth line: 99 errors for each of the 10 ports, each found by one comparison.
        self.assertEqual(len(errors), 990)
        self.assertEqual(errors[0], "line 'l10': listener '4000' takes TCP port 4000, as line 'l0', listener '4000' "
                                    "already does")
        self.assertLessEqual(len(calls), 1000)


class NotWritableTests(SynchronousTestCase):
    def test_directoriesNotWritableWarn(self) -> None:
        """
        A log's, a listener's or a pty: device's directory that this user
        cannot write: a warning naming it and the uid (the start fails, or
        the line starts down; --check may run as another user, so no error).
        """
        from serialgw.app import check

        here = os.path.dirname(socketPath(self))
        self.patch(check, "_writable", lambda directory: directory != here)
        lines = loadConfig(write(self, f'[lines.a]\ndevice = "pty:{here}/a"\nlog = "{here}/a.log"\n'
                                       f'listen = ["file:{here}/out", "pty:{here}/t", "unix:{here}/s"]\n'))
        uid = os.getuid()
        self.assertEqual(checkLines(lines), ([], [
            f"line 'a': the directory of log '{here}/a.log' is not writable (now, by uid {uid})",
            f"line 'a': device 'pty:{here}/a': directory {here!r} is not writable (now, by uid {uid}): the line "
            "would start down (tried again with backoff)",
            f"line 'a': listener 'file:{here}/out': directory {here!r} is not writable (now, by uid {uid})",
            f"line 'a': listener 'pty:{here}/t': directory {here!r} is not writable (now, by uid {uid})",
            f"line 'a': listener 'unix:{here}/s': directory {here!r} is not writable (now, by uid {uid})",
        ]))


class DeviceNowTests(SynchronousTestCase):
    """
    A tty line whose device the start could not have now: --check said OK,
    the start then kept the line down (tried again) or refused it.
    """

    def setUp(self) -> None:
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.device = os.ttyname(slave)
        self.lockDir = os.path.abspath(self.mktemp())
        os.mkdir(self.lockDir)
        self.lines = loadConfig(write(self, f'[lines.a]\ndevice = "{self.device}"\nlisten = "4001"\n'
                                            f'lock-dir = "{self.lockDir}"\n'))

    def test_lockHeldWarns(self) -> None:
        """Another program's live UUCP lock on it: a warning naming the process and the lock; a stale one, nothing."""
        holder = subprocess.Popen(["sleep", "600"])
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        lock = os.path.join(self.lockDir, "LCK.." + os.path.basename(self.device))
        with open(lock, "w") as f:
            f.write(f"{holder.pid:10d}\n")
        self.assertEqual(checkLines(self.lines), ([], [
            f"line 'a': {self.device} is locked by process {holder.pid} (sleep) ({lock}) (now): the line would stay "
            "down, tried again, until that program closes the port"]))
        holder.kill()
        holder.wait()
        self.assertEqual(checkLines(self.lines), ([], []))  # (its holder gone: the start takes it over)

    def test_lockHeldByAGatewaySaysNothing(self) -> None:
        """The lock held by a process running serialgw (the gateway, --check run beside it on its file): no warning."""
        # (Running once it says so: Popen returns at the exec's close of its descriptors, before
        # the kernel writes the new command line, which /proc shows empty meanwhile.)
        gateway = subprocess.Popen([sys.executable, "-c", "print(1, flush=True); import sys; sys.stdin.read()",
                                    "serialgw", "--config", "x"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(gateway.communicate)
        assert gateway.stdout is not None
        self.assertEqual(gateway.stdout.readline(), b"1\n")
        with open(os.path.join(self.lockDir, "LCK.." + os.path.basename(self.device)), "w") as f:
            f.write(f"{gateway.pid:10d}\n")
        self.assertEqual(checkLines(self.lines), ([], []))

    def test_notOpenableWarns(self) -> None:
        """A device this user may not open read-write: a warning naming it and the uid (as the log directory's)."""
        from serialgw.app import check

        self.patch(check, "_openable", lambda path: path != self.device)
        self.assertEqual(checkLines(self.lines), ([], [
            f"line 'a': device '{self.device}' cannot be opened read-write (now, by uid {os.getuid()})"]))

    def test_relativePathMeantInDev(self) -> None:
        """device = "ttyS0", not there beside the file, /dev/ttyS0 there: the warning asks for it, as the start's error does."""
        from serialgw.devices import errors

        dev = shortDirectory(self)
        open(os.path.join(dev, "ttyQ9"), "w").close()
        self.patch(errors, "DEV", dev)
        path = write(self, '[lines.a]\ndevice = "ttyQ9"\nlisten = "4001"\nlock = false\n')
        self.assertEqual(checkLines(loadConfig(path)), ([], [
            f"line 'a': device '{os.path.dirname(path)}/ttyQ9' does not exist (now) (did you mean {dev}/ttyQ9? a "
            "relative device path is read from the directory the gateway started in, or the configuration file's)"]))
