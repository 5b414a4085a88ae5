"""
A console log's path (its LOG.typed's too: the same open) and a reload's
look at it (loglock.lockedElsewhere) never make a tty there the gateway's
controlling terminal (O_NOCTTY): a path swapped for a tty between a check
and the open would have made a ^C typed on it stop the gateway.  A child
process leading a session with no terminal, as under systemd; real ptys.
(Linux 6.x gives a controlling terminal only to an open for reading: these
write-only opens took none here even without O_NOCTTY; the flags are
checked too, for kernels that do.)
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import loglock
from serialgw.clients.consolelog import ConsoleLog
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice

CHILD = """\
import os, sys
from twisted.internet.task import Clock
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.loglock import lockedElsewhere
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice
which, path = sys.argv[1:]
if which == "log":
    clock = Clock()
    try:
        ConsoleLog(Line("web1", RecordingDevice(), clock=clock), LogSpec(path, format=""), clock)
    except OSError as e:
        print(e.strerror)
else:
    print(lockedElsewhere(path))
try:
    os.close(os.open("/dev/tty", os.O_RDONLY))
    print("a controlling terminal")
except OSError:
    print("no controlling terminal")
"""


class NoControllingTerminalTests(SynchronousTestCase):
    def tty(self) -> str:
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        return os.ttyname(slave)

    def child(self, which: str, path: str) -> str:
        done = subprocess.run([sys.executable, "-c", CHILD, which, path], start_new_session=True,
                              capture_output=True, stdin=subprocess.DEVNULL, cwd=os.getcwd(), text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        self.assertEqual(done.stderr, "")
        return done.stdout

    def test_logOpenTakesNoTerminal(self) -> None:
        """A tty at a console log's path is refused as no regular file, and the gateway has no controlling terminal after."""
        from serialgw.clients.logfile import NOT_A_FILE

        self.assertEqual(self.child("log", self.tty()), f"{NOT_A_FILE}\nno controlling terminal\n")

    def test_lockLookTakesNoTerminal(self) -> None:
        """A reload's look at a log's lock (lockedElsewhere) finding a tty there takes no controlling terminal."""
        self.assertEqual(self.child("lock", self.tty()), "None\nno controlling terminal\n")


class FlagsTests(SynchronousTestCase):
    def opens(self, paths: list[str]) -> list[int]:
        """The flags of each os.open from now on of one of C{paths}, or through /proc/self/fd (an O_PATH look's open), but the looks."""
        flags: list[int] = []
        real = os.open

        def recording(name: str, how: int, *args: int, **kwargs: int) -> int:
            if (name in paths or name.startswith("/proc/self/fd/")) and not how & getattr(os, "O_PATH", 0):
                flags.append(how)
            return real(name, how, *args, **kwargs)

        self.patch(os, "open", recording)
        return flags

    def test_logAndTypedOpenedNoCtty(self) -> None:
        """A console log (there already) and its LOG.typed (made) are opened with O_NOCTTY and O_NONBLOCK."""
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "web1.log")
        open(path, "w").close()
        flags = self.opens([path, path + ".typed"])
        clock = Clock()
        log = ConsoleLog(Line("web1", RecordingDevice(), clock=clock), LogSpec(path, format="", typed="text"), clock)
        self.addCleanup(log.close)
        self.assertEqual(len(flags), 2)
        wanted = os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
        for how in flags:
            self.assertEqual(how & wanted, wanted)

    def test_lockLookNoCtty(self) -> None:
        """A reload's look at a log's lock opens the path with O_NOCTTY and O_NONBLOCK."""
        path = self.mktemp()
        open(path, "w").close()
        flags = self.opens([path])
        self.assertIsNone(loglock.lockedElsewhere(path))
        self.assertEqual(len(flags), 1)
        wanted = os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
        self.assertEqual(flags[0] & wanted, wanted)


class NotOpenedTests(SynchronousTestCase):
    def tty(self) -> str:
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        return os.ttyname(slave)

    def test_ttyAtALogNeverOpened(self) -> None:
        """A tty at a console log's path is refused as no regular file without being opened (a serial port's open raises DTR)."""
        from serialgw.clients.logfile import NOT_A_FILE
        from tests.config.test_sshkeysfile import Opens

        tty = self.tty()
        opens = Opens(self, tty)
        clock = Clock()
        error = self.assertRaises(OSError, ConsoleLog, Line("web1", RecordingDevice(), clock=clock),
                                  LogSpec(tty, format=""), clock)
        self.assertEqual(error.strerror, NOT_A_FILE)
        self.assertEqual(opens.count(), 0)

    def test_ttyAtALockLookNeverOpened(self) -> None:
        """A reload's look at a log's lock finding a tty there does not open it."""
        from tests.config.test_sshkeysfile import Opens

        tty = self.tty()
        opens = Opens(self, tty)
        self.assertIsNone(loglock.lockedElsewhere(tty))
        self.assertEqual(opens.count(), 0)
