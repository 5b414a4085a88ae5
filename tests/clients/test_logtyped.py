"""
log-typed: what clients typed, as it went to the device, in the console
log's LOG.typed (ser2net's trace-write): text or hexdump, stamped, made
0600, rotated and reopened with the log.
"""

from __future__ import annotations

import os
import stat

from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from serialgw.app.reload import checkFiles
from serialgw.clients.raw import RawClient
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import ConfigError
from serialgw.line.role import Role
from tests.clients.test_logevents import _LogCase
from tests.config.test_check import write


class LogTypedTests(_LogCase):
    def typist(self, role: Role = Role.WRITER) -> RawClient:
        client = RawClient(self.line, role, listener=parseListener("raw+4444" if role is Role.WRITER else "raw,ro+4444"))
        client.makeConnection(StringTransport())
        return client

    def typed(self) -> bytes:
        with open(self.path + ".typed", "rb") as f:
            return f.read()

    def test_text(self) -> None:
        """Each read of a client a stamped line naming it, control keys and non-ASCII escaped, a backslash doubled; the file 0600."""
        log = self.log(typed="text")
        client = self.typist()
        client.dataReceived(b"root\r")
        self.clock.advance(2)
        client.dataReceived(b"s3cr\\t\x7f\x03\xc3\xa9\r\n")
        log.close()
        self.assertEqual(self.typed(), b"08:00:00 192.168.1.1:54321: root\\r\n"
                                       b"08:00:02 192.168.1.1:54321: s3cr\\\\t\\x7f\\x03\\xc3\\xa9\\r\\n\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.path + ".typed").st_mode), 0o600)
        self.assertNotIn(b"root", self.read())

    def test_hexdump(self) -> None:
        """log-typed = hexdump: a line naming who typed how much, then 16 bytes a line."""
        log = self.log(typed="hexdump", format="")
        self.typist().dataReceived(b"0123456789abcdef\x00\x1b[A")
        log.close()
        self.assertEqual(self.typed(), b"192.168.1.1:54321: 20 byte(s)\n"
                                       b"  0000  30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66  |0123456789abcdef|\n"
                                       b"  0010  00 1b 5b 41" + b" " * 38 + b"|..[A|\n")

    def test_refusedNotTraced(self) -> None:
        """What a read-only client types never reaches the device, nor the trace; off, no file is made."""
        log = self.log(typed="text")
        self.typist(Role.READONLY).dataReceived(b"reboot\r")
        log.close()
        self.assertEqual(self.typed(), b"")
        os.unlink(self.path)
        os.unlink(self.path + ".typed")
        log = self.log()
        self.typist().dataReceived(b"x")
        log.close()
        self.assertFalse(os.path.exists(self.path + ".typed"))

    def test_droppedWhileDownNotTraced(self) -> None:
        """Typing while the device is down is dropped (and counted there), not traced as if the device had it."""
        log = self.log(typed="text", format="")
        client = self.typist()
        client.dataReceived(b"a")
        self.line.deviceLost(Failure(OSError(5, "hung up")))
        client.dataReceived(b"b")
        log.close()
        self.assertEqual(self.typed(), b"192.168.1.1:54321: a\n")

    def test_failingTraceCutOffNotTheClient(self) -> None:
        """A console log whose trace raises (a bug) is cut off, as one whose output does; the typing reaches the device, the client stays."""
        log = self.log(typed="text", format="")

        def broken(peer: str, data: bytes) -> None:
            raise RuntimeError("a bug")

        log.typed = broken  # type: ignore[method-assign]
        client = self.typist()
        client.dataReceived(b"reboot\r")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn(("write", b"reboot\r"), self.line.device.events)  # type: ignore[attr-defined]
        self.assertNotIn(log, self.line.logs)
        self.assertIn(client, self.line.clients)
        self.assertFalse(client.transport.disconnecting)
        log.close()

    def test_rotatedAndReopenedWithTheLog(self) -> None:
        """LOG.typed rotates by log-max-size on its own (LOG.typed.1), and SIGUSR1's reopen opens it again."""
        log = self.log(typed="text", format="", maxSize=40, daily=False, keep=1)
        client = self.typist()
        client.dataReceived(b"a" * 10)
        client.dataReceived(b"b" * 10)
        with open(self.path + ".typed.1", "rb") as f:
            self.assertEqual(f.read(), b"192.168.1.1:54321: " + b"a" * 10 + b"\n")
        os.rename(self.path + ".typed", self.path + ".typed.moved")
        self.assertEqual(self.successResultOf(log.reopen()), 2)  # (the log and LOG.typed)
        client.dataReceived(b"c")
        log.close()
        self.assertEqual(self.typed(), b"192.168.1.1:54321: c\n")

    def test_typedReopenedWhenTheLogIsNot(self) -> None:
        """SIGUSR1 after logrotate moved both files, the log's path not openable (a directory put there): LOG.typed is opened again all the same."""
        log = self.log(typed="text", format="")
        client = self.typist()
        os.rename(self.path, self.path + ".1")
        os.rename(self.path + ".typed", self.path + ".typed.1")
        os.mkdir(self.path)
        self.assertEqual(self.successResultOf(log.reopen()), 1)  # (LOG.typed alone)
        client.dataReceived(b"c")
        log.close()
        self.assertEqual(self.typed(), b"192.168.1.1:54321: c\n")

    def test_notAFileRefused(self) -> None:
        """A directory at LOG.typed: the log does not open (the start names the path), and a reload is refused."""
        os.mkdir(self.path + ".typed")
        with self.assertRaises(OSError) as e:
            self.log(typed="text")
        self.assertEqual(e.exception.filename, self.path + ".typed")
        self.assertEqual(self.line.logs, [])
        self.assertEqual(checkFiles([], [("a", LogSpec(self.path, typed="hexdump"))]),
                         f"line 'a': cannot open log {self.path + '.typed'!r}: it is not a regular file")

    def test_config(self) -> None:
        """log-typed's values, a bad one refused with FILE:LINE; LOG.typed is the line's: another's log there is refused."""
        line = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/var/log/a.log"\n'
        (a,) = loadConfig(write(self, line + "log-typed = true\n"))
        self.assertEqual(a.log and a.log.typed, "text")
        path = write(self, line + 'log-typed = "raw"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:5: [lines.a] log-typed: log-typed must be one of 'off', 'text', 'hexdump' (or "
                         "true/false), not 'raw'")
        path = write(self, line + 'log-typed = "text"\n[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n'
                                  'log = "/var/log/a.log.typed"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:9: [lines.b] log: '/var/log/a.log.typed' is line 'a''s log-typed file too: two "
                         "writers would interleave in one file")
        path = write(self, line + 'log-typed = "text"\n[lines.b]\ndevice = "/dev/ttyS1"\n'
                                  'listen = "file:/var/log/a.log.typed"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:8: [lines.b] listen: 'file:/var/log/a.log.typed' writes '/var/log/a.log.typed', as "
                         "line 'a''s log-typed file does: two writers would interleave in one file")
