"""
A line whose device is a console elsewhere that carries no serial settings,
DTR or RTS (C{tcp:}, C{unix:}, C{telnet:}; an C{rfc2217://} port does):
a serial-only key in its own table is refused, naming the file's line, the
key and why (it was kept and ignored, and the line looked configured); the
same keys from C{[defaults]}, meant for the farm's ttys, are left to the
lines that take them.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config.file import loadConfig
from serialgw.config.specs import SerialSettings
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp

SERIAL_ONLY = ("serial", "baud", "bytesize", "parity", "stopbits", "xonxoff", "rtscts", "dtr", "rts", "idle-dtr",
               "idle-rts")
VALUES = {"serial": '"9600,8N1"', "baud": "9600", "bytesize": "7", "parity": '"E"', "stopbits": "2",
          "xonxoff": "true", "rtscts": "true", "dtr": '"off"', "rts": '"off"', "idle-dtr": '"off"', "idle-rts": '"off"'}


class RemoteKeysTests(ConfigFileCase):
    def test_rawTcpRefusesEachKey(self) -> None:
        """Each serial-only key in a tcp: line's own table is refused, FILE:LINE and the key named, with why and what carries it."""
        for key in SERIAL_ONLY:
            said = self.refused(f'[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4001"\n{key} = {VALUES[key]}\n')
            self.assertEqual(said, f"FILE:4: [lines.vm] {key}: means nothing on device 'tcp:10.0.0.5:7000': a raw "
                                   "socket carries no serial settings, DTR or RTS (the far end's port has its own; an "
                                   "rfc2217:// device carries them): take it out")

    def test_telnetAndUnix(self) -> None:
        """A telnet: console and a unix: socket are refused the same way, saying what each is."""
        said = self.refused('[lines.vm]\ndevice = "telnet:10.0.0.5:23"\nlisten = "4001"\ndtr = "off"\n')
        self.assertEqual(said, "FILE:4: [lines.vm] dtr: means nothing on device 'telnet:10.0.0.5:23': a telnet console "
                               "carries no serial settings, DTR or RTS (the far end's port has its own; an rfc2217:// "
                               "device carries them): take it out")
        said = self.refused('[lines.vm]\nrts = false\ndevice = "unix:/run/vm.serial0"\nlisten = "4001"\n')
        self.assertTrue(said.startswith("FILE:2: [lines.vm] rts: means nothing on device 'unix:/run/vm.serial0': a raw "
                                        "socket carries"), said)

    def test_defaultsOnlyUnaffected(self) -> None:
        """A remote line with defaults only, or serial keys from [defaults] (for the farm's ttys), loads as before."""
        (line,) = loadConfig(writeTemp(self, '[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4001"\n'))
        self.assertEqual((line.settings, line.dtr, line.rts), (SerialSettings(), None, None))
        text = ('[defaults]\nserial = "9600,8N1"\ndtr = "off"\n'
                '[lines.tty]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                '[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4002"\n')
        tty, vm = loadConfig(writeTemp(self, text))
        self.assertEqual((tty.settings.baudrate, tty.dtr), (9600, False))
        self.assertEqual(vm.device.kind, "tcp")

    def test_rfc2217Takes(self) -> None:
        """An rfc2217:// device carries settings, DTR and RTS: every key is taken."""
        text = '[lines.vm]\ndevice = "rfc2217://10.0.0.5:2217"\nlisten = "4001"\n' + "".join(
            f"{key} = {VALUES[key]}\n" for key in SERIAL_ONLY if key != "serial")
        (line,) = loadConfig(writeTemp(self, text))
        self.assertEqual((line.settings, line.dtr, line.idleRts),
                         (SerialSettings(9600, 7, "E", 2, True, True), False, False))

    def test_commandLine(self) -> None:
        """--baud, --dtr, --rtscts, ... with a remote --device that carries none: refused naming the option; none given: taken."""
        for option in (["--baud", "9600"], ["--dtr", "off"], ["--idle-rts", "on"], ["--rtscts"], ["-s", "9600"]):
            options = tap.Options()
            options.exitOnError = False  # type: ignore[attr-defined]
            e = self.assertRaises(UsageError, options.parseOptions, ["--device", "unix:/run/vm.serial0", *option])
            name = "serial" if option[0] == "-s" else option[0][2:]
            self.assertEqual(str(e), f"--{name}: means nothing on device 'unix:/run/vm.serial0': a raw socket carries "
                                     "no serial settings, DTR or RTS (the far end's port has its own; an rfc2217:// "
                                     "device carries them): take it out")
        options = tap.Options()
        options.parseOptions(["--device", "telnet:10.0.0.5:23"])
        self.assertEqual(options["line"].device.kind, "telnet")
        options = tap.Options()
        options.parseOptions(["--device", "rfc2217://10.0.0.5:2217", "--baud", "9600", "--dtr", "off"])
        self.assertEqual((options["line"].settings.baudrate, options["line"].dtr), (9600, False))


REMOTES = {"tcp": "tcp:10.0.0.5:7000", "unix": "unix:/run/vm.serial0", "telnet": "telnet:10.0.0.5:23",
           "rfc2217": "rfc2217://10.0.0.5:2217"}
NO_LOCK = ("a console elsewhere takes no lock (the UUCP lock and flock are for a local tty; the far end locks its "
           "own port): take it out")


class RemoteLineKeysTests(SynchronousTestCase):
    """lock, lock-dir, restore and break-duration in a remote line's own table: refused where they mean nothing, taken where they do."""

    def refused(self, device: str, key: str, value: str) -> str:
        return RemoteKeysTests.refused(self, f'[lines.vm]\ndevice = "{device}"\nlisten = "4001"\n{key} = {value}\n')  # type: ignore[arg-type]

    def test_lockKeysOnEveryRemote(self) -> None:
        """lock and lock-dir on any remote device (rfc2217:// too): refused naming FILE:LINE and why (they were ignored silently)."""
        for device in REMOTES.values():
            for key, value in (("lock", "false"), ("lock", "true"), ("lock-dir", '"/run/lock"')):
                self.assertEqual(self.refused(device, key, value),
                                 f"FILE:4: [lines.vm] {key}: means nothing on device {device!r}: {NO_LOCK}")

    def test_restoreWithoutSettings(self) -> None:
        """restore on tcp:, unix:, telnet: (nothing an RFC 2217 client changes there to put back): refused as the serial keys are."""
        for kind in ("tcp", "unix", "telnet"):
            said = self.refused(REMOTES[kind], "restore", "false")
            what = "telnet console" if kind == "telnet" else "raw socket"
            self.assertEqual(said, f"FILE:4: [lines.vm] restore: means nothing on device {REMOTES[kind]!r}: a {what} "
                                   "carries no serial settings, DTR or RTS (the far end's port has its own; an "
                                   "rfc2217:// device carries them): take it out")

    def test_breakDurationWithoutDuration(self) -> None:
        """break-duration on tcp:/unix: (no break at all) and telnet: (IAC BRK has no duration): refused, saying which."""
        for kind in ("tcp", "unix"):
            self.assertEqual(self.refused(REMOTES[kind], "break-duration", "500"),
                             f"FILE:4: [lines.vm] break-duration: means nothing on device {REMOTES[kind]!r}: a raw "
                             "socket cannot carry a break: take it out")
        self.assertEqual(self.refused(REMOTES["telnet"], "break-duration", "500"),
                         "FILE:4: [lines.vm] break-duration: means nothing on device 'telnet:10.0.0.5:23': a telnet "
                         "console's break is IAC BRK, which has no duration (the far end's break lasts as long as it "
                         "makes it; an rfc2217:// device's lasts break-duration): take it out")

    def test_rfc2217TakesRestoreAndBreakDuration(self) -> None:
        """An rfc2217:// line takes restore and break-duration (its BREAK-ON lasts that long, then BREAK-OFF)."""
        (line,) = loadConfig(writeTemp(self, '[lines.vm]\ndevice = "rfc2217://10.0.0.5:2217"\nlisten = "4001"\n'
                                             'restore = false\nbreak-duration = 500\n'))
        self.assertEqual((line.restoreSettings, line.breakDuration), (False, 0.5))

    def test_fromDefaultsSilent(self) -> None:
        """The four keys from [defaults] (for the farm's ttys) leave remote lines alone, and still reach the ttys."""
        text = ('[defaults]\nlock = false\nlock-dir = "/run/lock"\nrestore = false\nbreak-duration = 500\n'
                '[lines.tty]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                + "".join(f'[lines.{kind}]\ndevice = "{device}"\nlisten = "{4002 + i}"\n'
                          for i, (kind, device) in enumerate(REMOTES.items())))
        tty, *remotes = loadConfig(writeTemp(self, text))
        self.assertEqual((tty.lock, tty.lockDir, tty.restoreSettings, tty.breakDuration),
                         (False, "/run/lock", False, 0.5))
        self.assertEqual([line.device.kind for line in remotes], list(REMOTES))

    def test_commandLineOptions(self) -> None:
        """--no-lock, --lock-dir, --no-restore and --break-duration with a remote --device where they mean nothing: refused naming the option; --break-duration and --no-restore with rfc2217:// taken."""
        for device, option, why in (
                ("rfc2217://10.0.0.5:2217", ["--no-lock"], NO_LOCK),
                ("unix:/run/vm.serial0", ["--lock-dir", "/run/lock"], NO_LOCK),
                ("tcp:10.0.0.5:7000", ["--no-restore"], "a raw socket carries no serial settings, DTR or RTS (the far "
                                                        "end's port has its own; an rfc2217:// device carries them): "
                                                        "take it out"),
                ("tcp:10.0.0.5:7000", ["--break-duration", "500"], "a raw socket cannot carry a break: take it out")):
            options = tap.Options()
            options.exitOnError = False  # type: ignore[attr-defined]
            e = self.assertRaises(UsageError, options.parseOptions, ["--device", device, *option])
            self.assertEqual(str(e), f"{option[0]}: means nothing on device {device!r}: {why}")
        options = tap.Options()
        options.parseOptions(["--device", "rfc2217://10.0.0.5:2217", "--break-duration", "500", "--no-restore"])
        self.assertEqual((options["line"].breakDuration, options["line"].restoreSettings), (0.5, False))


NO_PTY_LOCK = ("a pty the gateway makes takes no lock (the UUCP lock and flock are for a local tty; no other "
               "program opens its master): take it out")
NO_PTY_MODEM = "a pty has no modem lines (DTR and RTS are a serial port's): take it out"
NO_PTY_FLOW = "a pty has no RTS/CTS lines (hardware flow control is a serial port's): take it out"
NO_PTY_BREAK = ("a pty cannot carry a break (the kernel takes one on a pty and does nothing; the program on it is "
                "never told): take it out")


class PtyDeviceKeysTests(SynchronousTestCase):
    """A pty: device (a pseudo-tty the gateway makes): the keys that mean nothing for it in its own table are refused, naming FILE:LINE and the key; the rest, and all from [defaults], are taken."""

    def refused(self, key: str, value: str) -> str:
        return RemoteKeysTests.refused(self, f'[lines.vm]\ndevice = "pty:/run/vm0"\nlisten = "4001"\n{key} = {value}\n')  # type: ignore[arg-type]

    def test_lockKeys(self) -> None:
        """lock and lock-dir on a pty: device: refused (they were taken and ignored, the line looking locked)."""
        for key, value in (("lock", "false"), ("lock", "true"), ("lock-dir", '"/run/lock"')):
            self.assertEqual(self.refused(key, value),
                             f"FILE:4: [lines.vm] {key}: means nothing on device 'pty:/run/vm0': {NO_PTY_LOCK}")

    def test_modemLineKeys(self) -> None:
        """dtr, rts, idle-dtr and idle-rts on a pty: device: refused (a pty has none; they were kept and ignored)."""
        for key in ("dtr", "rts", "idle-dtr", "idle-rts"):
            self.assertEqual(self.refused(key, '"off"'),
                             f"FILE:4: [lines.vm] {key}: means nothing on device 'pty:/run/vm0': {NO_PTY_MODEM}")

    def test_flowAndBreakKeys(self) -> None:
        """rtscts (true or false, or in serial) and break-duration on a pty: device: refused (a pty has no RTS/CTS lines and no break; they were taken, answered as in effect)."""
        for key, value in (("rtscts", "true"), ("rtscts", "false")):
            self.assertEqual(self.refused(key, value),
                             f"FILE:4: [lines.vm] {key}: means nothing on device 'pty:/run/vm0': {NO_PTY_FLOW}")
        self.assertEqual(self.refused("serial", '"9600,8N1,rtscts"'),
                         "FILE:4: [lines.vm] serial: 'rtscts' in '9600,8N1,rtscts' means nothing on device "
                         f"'pty:/run/vm0': {NO_PTY_FLOW}")
        self.assertEqual(self.refused("break-duration", "500"),
                         f"FILE:4: [lines.vm] break-duration: means nothing on device 'pty:/run/vm0': {NO_PTY_BREAK}")

    def test_stringBreaks(self) -> None:
        """An open-string or close-string with a break (\\b) in a pty: or raw socket line's own table, or with such a --device: refused (the break was logged as not sent at each person); on a telnet: line, without a break, or from [defaults]: taken."""
        self.assertEqual(self.refused("open-string", "'\\r\\b'"),
                         "FILE:4: [lines.vm] open-string: its \\b (a break) means nothing on device 'pty:/run/vm0': a pty "
                         "cannot carry a break (the kernel takes one on a pty and does nothing): take it out")
        said = RemoteKeysTests.refused(self, '[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4001"\n'  # type: ignore[arg-type]
                                             "close-string = 'bye\\b'\n")
        self.assertEqual(said, "FILE:4: [lines.vm] close-string: its \\b (a break) means nothing on device "
                               "'tcp:10.0.0.5:7000': a raw socket cannot carry a break: take it out")
        text = ("[defaults]\nopen-string = '\\r\\b'\n"
                '[lines.vm]\ndevice = "pty:/run/vm0"\nlisten = "4002"\nclose-string = "bye\\r"\n'
                '[lines.kvm]\ndevice = "telnet:10.0.0.5:23"\nlisten = "4003"\nclose-string = \'\\b\'\n')
        vm, kvm = loadConfig(writeTemp(self, text))
        self.assertEqual((vm.openString, vm.closeString, kvm.closeString), ((b"\r", b""), (b"bye\r",), (b"", b"")))
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions, ["--open-string", "\\r\\b"])
        self.assertEqual(str(e), "--open-string: its \\b (a break) means nothing on device 'pty:/tmp/serialgw0': a pty "
                                 "cannot carry a break (the kernel takes one on a pty and does nothing): take it out")

    def test_settingsTakenAndDefaultsSilent(self) -> None:
        """The serial settings (xonxoff too) and restore are taken on a pty: device (a program on it sees them); every key from [defaults] leaves it alone, its rtscts not applied to the pty."""
        (line,) = loadConfig(writeTemp(self, '[lines.vm]\ndevice = "pty:/run/vm0"\nlisten = "4001"\n'
                                             'serial = "9600,8N1"\nxonxoff = true\nrestore = false\n'))
        self.assertEqual((line.settings.baudrate, line.settings.xonxoff, line.restoreSettings), (9600, True, False))
        text = ('[defaults]\nlock = false\nlock-dir = "/run/lock"\ndtr = "off"\nidle-rts = "off"\nrtscts = true\n'
                'break-duration = 500\n'
                '[lines.tty]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                '[lines.vm]\ndevice = "pty:/run/vm0"\nlisten = "4002"\n')
        tty, vm = loadConfig(writeTemp(self, text))
        self.assertEqual((tty.lock, tty.lockDir, tty.dtr, tty.settings.rtscts, tty.breakDuration),
                         (False, "/run/lock", False, True, 0.5))
        self.assertEqual((vm.device.kind, vm.settings.rtscts), ("pty", False))

    def test_commandLineOptions(self) -> None:
        """--no-lock, --lock-dir, --dtr, --rts, --idle-dtr, --idle-rts, --rtscts, --break-duration with a pty: --device (the default's too): refused naming the option; rtscts in --serial too."""
        for device, option, why in (
                (["--device", "pty:/run/vm0"], ["--no-lock"], NO_PTY_LOCK),
                ([], ["--lock-dir", "/run/lock"], NO_PTY_LOCK),
                (["--device", "pty:/run/vm0"], ["--dtr", "off"], NO_PTY_MODEM),
                (["--device", "pty:/run/vm0"], ["--idle-rts", "on"], NO_PTY_MODEM),
                (["--device", "pty:/run/vm0"], ["--rtscts"], NO_PTY_FLOW),
                ([], ["--break-duration", "500"], NO_PTY_BREAK)):
            options = tap.Options()
            options.exitOnError = False  # type: ignore[attr-defined]
            e = self.assertRaises(UsageError, options.parseOptions, [*device, *option])
            shown = device[1] if device else "pty:/tmp/serialgw0"
            self.assertEqual(str(e), f"{option[0]}: means nothing on device {shown!r}: {why}")
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions, ["--serial", "9600,8N1,rtscts"])
        self.assertEqual(str(e), f"--serial: 'rtscts' in '9600,8N1,rtscts' means nothing on device "
                                 f"'pty:/tmp/serialgw0': {NO_PTY_FLOW}")
        options = tap.Options()
        options.parseOptions(["--device", "pty:/run/vm0", "--baud", "9600", "--xonxoff"])
        self.assertEqual((options["line"].settings.baudrate, options["line"].settings.xonxoff), (9600, True))
