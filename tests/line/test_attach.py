"""
What a line does to its device when people come and go: open-string and
close-string (ser2net's openstr/closestr), and DTR/RTS while attached and
idle.
"""

from __future__ import annotations

import errno
from typing import Any

from prometheus_client import generate_latest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import tap
from serialgw.config.file import loadConfig
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.parsers import parseOnOff, parseSendString
from serialgw.config.specs import ConfigError
from serialgw.devices.device import SerialDevice
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_sessions import Harness
from tests.fakes import LogEvents, RecordingClient, RecordingDevice, RecordingPort, observeLog
from tests.realio import PtyPair, closeClients, connect, listenerPort, ptyLine, startedPty, startGateway


def person(peer: str = "p:1") -> RecordingClient:
    client = RecordingClient(peer)
    client.person = True  # type: ignore[attr-defined]
    return client


class SendStringTests(SynchronousTestCase):
    def test_escapes(self) -> None:
        """\\r \\n \\t \\\\ \\xNN become bytes; \\b splits the data where a break goes."""
        self.assertEqual(parseSendString(r"AT\r\n\bATZ\x0d\t\\"), (b"AT\r\n", b"ATZ\r\t\\"))
        self.assertEqual(parseSendString(r"\b"), (b"", b""))
        self.assertEqual(parseSendString(r"\bx\b"), (b"", b"x", b""))
        self.assertEqual(parseSendString("é"), (b"\xc3\xa9",))
        self.assertEqual(parseSendString(""), ())

    def test_badEscape(self) -> None:
        """An unknown escape, a short \\x or a trailing backslash is an error quoting the string."""
        expected = "expected \\r \\n \\t \\e \\0 \\\\ \\xNN or \\b (a break)"
        for text, message in ((r"a\q", r"close-string 'a\q': unknown escape '\q': "),
                              ("a\\", r"close-string 'a\': unknown escape '\': "),
                              (r"\x4", r"close-string '\x4': unknown escape '\x': ")):
            e = self.assertRaises(ConfigError, parseSendString, text, "close-string")
            self.assertEqual(str(e), message + expected)

    def test_quotedAsTyped(self) -> None:
        """--open-string '\\q' is quoted as typed, one backslash (repr showed two), and a control character escaped."""
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--device", "/dev/ttyS0", "--open-string", r"\q"])
        self.assertEqual(str(e), r"--open-string '\q': unknown escape '\q': expected \r \n \t \e \0 \\ \xNN or \b "
                                 "(a break)")
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--device", "/dev/ttyS0", "--close-string", "it's\x1b\\z"])
        self.assertEqual(str(e), r"--close-string 'it's\x1b\z': unknown escape '\z': expected \r \n \t \e \0 \\ \xNN "
                                 "or \\b (a break)")

    def test_bounded(self) -> None:
        """A string longer than 4096 bytes, or with more than 16 breaks, is refused."""
        e = self.assertRaises(ConfigError, parseSendString, "x" * 4097)
        self.assertIn("4097 bytes, at most 4096", str(e))
        # Breaks too: each holds the line (a million held it for days at every attach).
        self.assertEqual(len(parseSendString(r"\r\b" * 16)), 17)
        e = self.assertRaises(ConfigError, parseSendString, r"\r\b" * 17, "open-string")
        self.assertTrue(str(e).startswith("open-string '\\r\\b\\r"), str(e))
        self.assertTrue(str(e).endswith("'...: 17 breaks (\\b), at most 16"), str(e))

    def test_onOff(self) -> None:
        """on/off and their synonyms; anything else names the setting."""
        self.assertEqual([parseOnOff(t, "dtr") for t in ("on", "OFF", "true", "0")], [True, False, True, False])
        self.assertEqual(str(self.assertRaises(ConfigError, parseOnOff, "maybe", "idle-rts")),
                         "idle-rts must be on or off, not 'maybe'")


class OpenCloseStringTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("l", self.device)
        self.line.openString = (b"hello\r", b"x")
        self.line.closeString = (b"bye\r",)

    def test_firstAndLast(self) -> None:
        """The open-string goes at the first person's attach, the close-string at the last one's detach, once each."""
        a, b = person("a"), person("b")
        self.line.attach(a)
        self.assertEqual(self.device.events, [("write", b"hello\r"), ("break", None), ("write", b"x")])
        self.device.breaking = False
        self.line.attach(b)
        self.line.detach(a)
        self.assertEqual(len(self.device.events), 3)
        self.line.detach(b)
        self.assertEqual(self.device.events[3:], [("write", b"bye\r")])
        self.line.attach(a)
        self.assertEqual(self.device.events[4:], [("write", b"hello\r"), ("break", None), ("write", b"x")])

    def test_notForFilesAndLogs(self) -> None:
        """Clients that are not people (files, logs, ptys) send neither string."""
        client = RecordingClient("file:x")
        self.line.attach(client)
        self.line.detach(client)
        self.assertEqual(self.device.events, [])

    def queued(self, openString: str) -> tuple[Clock, RecordingPort, SerialDevice, Line]:
        """A line on a real device queue (breaks of 0.25 s) over a recording port, with C{openString}."""
        clock = MemoryReactorClock()
        port = RecordingPort(clock)
        device = SerialDevice(port, clock, 0.25)
        line = Line("l", device, clock=clock)
        device.sink = line
        line.openString = parseSendString(openString)
        return clock, port, device, line

    def test_breakKeepsOrderOnDevice(self) -> None:
        """On a real device queue, the data before \\b goes, then the break, then the data after it."""
        clock, port, _, line = self.queued(r"a\bb")
        line.attach(person())
        self.assertEqual([(t, w, v) for t, w, v in port.events], [(0, "write", b"a"), (0, "break", True)])
        clock.advance(0.25)
        self.assertEqual(port.events[2:], [(0.25, "break", False), (0.25, "write", b"b")])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_exclusiveWatcherFirst(self) -> None:
        """Exclusive mode, a writer attached quietly (a pipe) then a watcher: the open-string reaches the port at the watcher's attach, once, before the writer's data."""
        clock, port, _, line = self.queued(r"OPEN\r")
        line.mode = "exclusive"
        pipe, watcher = person("pipe:guest"), person("127.0.0.1:1")
        line.attach(pipe, quiet=True)
        self.assertEqual(port.events, [])
        line.attach(watcher)
        self.assertIs(watcher.role, Role.WATCHER)
        self.assertEqual(port.events, [(0, "write", b"OPEN\r")])
        line.introduce(pipe)
        self.assertEqual((line.clientData(pipe, b"pipe types\r"), line.clientData(watcher, b"a types\r")), (True, False))
        self.assertEqual(port.events, [(0, "write", b"OPEN\r"), (0, "write", b"pipe types\r")])
        self.assertEqual((line.bytesToDevice, line.refused, line.people), (16, 8, 2))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_everyBreakSent(self) -> None:
        """An open-string with two \\b sends both breaks, each with its data around it in order (the second waits for the first to end)."""
        clock, port, device, line = self.queued(r"a\bb\bc")
        line.attach(person())
        clock.advance(0.25)
        clock.advance(0.05)
        clock.advance(0.25)
        self.assertEqual([(w, v) for _, w, v in port.events], [
            ("write", b"a"), ("break", True), ("break", False), ("write", b"b"),
            ("break", True), ("break", False), ("write", b"c")])
        self.assertEqual(device.breaks, 2)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_breakNoDeviceCanCarry(self) -> None:
        """A string's break on a device that cannot carry one (a raw socket): the data around it goes, and the log gives the device's reason, not a break under way."""
        device = RecordingDevice()
        device.noBreak = "tcp:h:1 is a raw socket: it cannot carry a break"
        line = Line("l", device, clock=Clock())
        line.openString = parseSendString(r"a\bb")
        log = LogEvents(self)
        line.attach(person())
        self.assertEqual(device.events, [("write", b"a"), ("write", b"b")])
        (event,) = [e for e in log.events if "break not sent" in e["log_format"]]
        self.assertEqual((event["line"], event["what"], event["reason"]),
                         ("l", "open-string", "tcp:h:1 is a raw socket: it cannot carry a break"))

    def test_stringsLeftSaidApart(self) -> None:
        """An open-string still in its breaks when the line is let go, then the device lost: what is not sent is logged string by string, each with its own count."""
        clock, port, device, line = self.queued(r"a\b\bb")
        line.closeString = parseSendString(r"exit\r")
        log = LogEvents(self)
        line.attach(person())
        line.letGo()
        port.error = OSError(errno.EIO, "hung up")
        device.doRead()
        clock.advance(0.05)
        self.assertEqual([(e["what"], e["left"], e["reason"]) for e in log.events if "{left} not sent" in e["log_format"]],
                         [("open-string", "1 byte(s) and 1 break(s)", "hung up"), ("close-string", "5 byte(s) and 0 break(s)", "hung up")])
        self.assertEqual((port.written(), line.bytesToDevice), (b"a", 1))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closedDeviceSendsNothing(self) -> None:
        """A close-string due after the device was closed: not sent, not counted in bytesToDevice, nothing dropped; the log says why."""
        clock, port, device, line = self.queued(r"hi\r")
        line.closeString = parseSendString(r"exit\r")
        log = LogEvents(self)
        client = person()
        line.attach(client)
        device.close()
        line.detach(client)
        self.assertEqual((port.written(), line.bytesToDevice, device.dropped), (b"hi\r", 3, 0))
        (event,) = [e for e in log.events if "{what} not sent" in e["log_format"]]
        self.assertEqual((event["what"], event["reason"]), ("close-string", "closed"))
        self.assertEqual([e["what"] for e in log.events if "{what} sent" in e["log_format"]], ["open-string"])

    def test_lostOnItsWriteNotCounted(self) -> None:
        """A device found gone by the close-string's own write: not counted, not logged as sent; the log says it was not sent."""
        clock, port, device, line = self.queued("")
        line.closeString = parseSendString(r"exit\r")
        log = LogEvents(self)
        client = person()
        line.attach(client)
        port.error = OSError(errno.EIO, "Input/output error")
        line.detach(client)
        self.assertEqual((line.bytesToDevice, device.up), (0, False))
        self.assertEqual([e["log_format"] for e in log.events if "sent" in e["log_format"]],
                         ["{line}: {what}: {left} not sent: the device is down ({reason}){later}"])

    def test_typingWhileDownNotCounted(self) -> None:
        """What a writer types while the device is down is dropped (counted there), not counted as sent to the device."""
        clock, port, device, line = self.queued("")
        client = person()
        line.attach(client)
        self.assertTrue(line.clientData(client, b"ab"))
        port.error = OSError(errno.EIO, "hung up")
        device.doRead()
        self.assertTrue(line.clientData(client, b"cde"))
        self.assertEqual((port.written(), line.bytesToDevice, device.dropped, line.up), (b"ab", 2, 3, False))

    def test_queuedAtHangUpCountedDropped(self) -> None:
        """Typing the device had not taken when it hung up (our queue, behind a break too) is counted dropped, not in bytesToDevice (status and metrics), and logged naming the line, with the count and why."""
        from serialgw.app.status import lineStatus, metricsRegistry
        from tests.app.test_status import samples
        from tests.fakes import Lines

        clock, port, device, line = self.queued("")
        log = LogEvents(self)
        client = person()
        line.attach(client)
        port.accept = 2
        self.assertTrue(line.clientData(client, b"hello"))
        self.assertTrue(line.clientBreak(client))
        self.assertTrue(line.clientData(client, b"\r"))
        self.assertEqual((port.written(), line.bytesToDevice), (b"he", 2))
        port.error = OSError(errno.EIO, "hung up")
        device.doRead()
        self.assertEqual((line.bytesToDevice, device.dropped, device.unsent, line.up), (2, 4, 4, False))
        status = lineStatus(line)
        self.assertEqual((status["bytes_to_device"], status["dropped_while_down"]), (2, 4))
        metrics = samples(generate_latest(metricsRegistry(Lines(line))).decode())
        self.assertEqual((metrics[("serialgw_device_written_bytes_total", (("line", "l"),))],
                          metrics[("serialgw_device_down_dropped_bytes_total", (("line", "l"),))]), (2, 4))
        (event,) = [e for e in log.events if "lost with it" in e["log_format"]]
        self.assertEqual((event["log_level"], event["line"], event["count"], event["reason"]),
                         (LogLevel.warn, "l", 4, "hung up"))
        # Typed while it is down: dropped there too, never counted sent; nothing more logged as lost.
        self.assertTrue(line.clientData(client, b"x"))
        self.assertEqual((line.bytesToDevice, device.dropped), (2, 5))
        self.assertEqual(len([e for e in log.events if "lost with it" in e["log_format"]]), 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_bytesToDeviceIsWhatTheDeviceTook(self) -> None:
        """bytesToDevice counts bytes as the device takes them (ours and the tty driver's queue emptied), never more, and never goes back (a counter)."""
        clock, port, device, line = self.queued("")
        client = person()
        line.attach(client)
        port.accept, port.pending = 0, 3
        line.clientData(client, b"abcdef")
        self.assertEqual(line.bytesToDevice, 0)
        port.accept = 4
        device.doWrite()
        self.assertEqual(line.bytesToDevice, 1)  # 4 written, 3 of them still in the driver
        port.pending = 0
        device.doWrite()
        self.assertEqual((port.written(), line.bytesToDevice), (b"abcdef", 6))

    def test_purgedNotCounted(self) -> None:
        """A writer's transmit purge: what our queue and the driver held is not counted sent, nor later as lost with the device."""
        clock, port, device, line = self.queued("")
        log = LogEvents(self)
        client = person()
        line.attach(client)
        port.accept, port.pending = 3, 2
        line.clientData(client, b"abcd")  # a sent, bc in the driver, d in our queue
        self.assertTrue(line.clientPurge(client, False, True))
        port.pending = 0
        self.assertEqual((line.bytesToDevice, device.unsent, device.dropped), (1, 3, 0))
        port.error = OSError(errno.EIO, "hung up")
        device.doRead()
        self.assertEqual([e for e in log.events if "lost with it" in e["log_format"]], [])

    def test_lostBetweenBreaksNotCounted(self) -> None:
        """The device lost during a close-string's first break: the rest (the second break and its data) is not sent nor counted."""
        clock, port, device, line = self.queued("")
        line.closeString = parseSendString(r"x\b\bz")
        log = LogEvents(self)
        client = person()
        line.attach(client)
        line.detach(client)
        port.error = OSError(errno.EIO, "hung up")
        device.doRead()
        clock.advance(0.05)
        self.assertEqual((port.written(), line.bytesToDevice, device.dropped), (b"x", 1, 0))
        (event,) = [e for e in log.events if "{left} not sent" in e["log_format"]]
        self.assertEqual((event["what"], event["left"], event["reason"]), ("close-string", "1 byte(s) and 1 break(s)", "hung up"))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_openStringWaitsForTheDevice(self) -> None:
        """An open-string due while the device is down is sent when it is back; not again at a later reopen; not at all if everyone left meanwhile."""
        clock = Clock()
        ports = [RecordingPort(clock) for _ in range(4)]
        opened = list(ports[1:])
        device = SerialDevice(ports[0], clock, 0.25, opener=lambda: opened.pop(0), reopenPolicy=lambda n: 1.0)
        line = Line("l", device, clock=clock)
        device.sink = line
        line.openString = parseSendString(r"wake\r")

        def lose(port: RecordingPort) -> None:
            port.error = OSError(errno.EIO, "hung up")
            device.doRead()

        def written(port: RecordingPort) -> list[Any]:
            return [value for _, what, value in port.events if what == "write"]

        lose(ports[0])
        first = person("a")
        line.attach(first)
        clock.advance(1.0)
        self.assertEqual(written(ports[1]), [b"wake\r"])
        lose(ports[1])
        clock.advance(1.0)
        line.detach(first)
        lose(ports[2])
        second = person("b")
        line.attach(second)
        line.detach(second)
        clock.advance(1.0)
        self.assertEqual((written(ports[2]), written(ports[3])), ([], []))
        self.assertEqual(clock.getDelayedCalls(), [])


class ModemLineTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.port = RecordingPort(self.clock)
        self.port.modem = 0  # a device with modem lines
        self.device = SerialDevice(self.port, self.clock, 0.25)

    def line(self, attached: dict[str, Any], idle: dict[str, Any], opening: tuple[bytes, ...] = ()) -> Line:
        line = Line("l", self.device, clock=self.clock)
        self.device.sink = line
        line.modemAttached = {"dtr": None, "rts": None, **attached}
        line.modemIdle = {"dtr": None, "rts": None, **idle}
        line.openString = opening
        line.closeString = (b"bye",)
        line.applyModemLines()
        return line

    def calls(self) -> list[tuple[str, Any]]:
        return [(what, value) for _, what, value in self.port.events]

    def test_idleThenAttached(self) -> None:
        """idle-rts off: dropped at open; raised before the open-string at the first attach; dropped after the close-string."""
        line = self.line({"rts": True}, {"rts": False}, (b"hi",))
        self.assertEqual(self.calls(), [("rts", False)])
        client = person()
        line.attach(client)
        self.assertEqual(self.calls()[1:], [("rts", True), ("write", b"hi")])
        line.detach(client)
        self.assertEqual(self.calls()[3:], [("write", b"bye"), ("rts", False)])
        self.assertEqual(self.device.modemLines, {"dtr": True, "rts": False})

    def test_idleOnly(self) -> None:
        """idle-dtr off with dtr left out: off while nobody is attached, on (as the device opens, the documented default) while someone is."""
        line = self.line({}, {"dtr": False})
        client = person()
        line.attach(client)
        self.assertEqual(self.device.modemLines["dtr"], True)
        line.detach(client)
        self.assertEqual(self.calls(), [("dtr", False), ("dtr", True), ("write", b"bye"), ("dtr", False)])

    def test_neverPulsed(self) -> None:
        """A line the settings do not change is never touched: DTR on both ways, RTS not configured."""
        line = self.line({"dtr": True}, {"dtr": True})
        client = person()
        line.attach(client)
        line.detach(client)
        self.assertEqual(self.calls(), [("write", b"bye")])

    def test_offAlways(self) -> None:
        """dtr off (no idle value): dropped once at open, left off through attach and detach."""
        line = self.line({"dtr": False}, {})
        client = person()
        line.attach(client)
        line.detach(client)
        self.assertEqual(self.calls(), [("dtr", False), ("write", b"bye")])

    def test_reopenKeepsIdleState(self) -> None:
        """After an unplug, the reopened port gets the idle state again, before it is read."""
        self.line({}, {"dtr": False})
        self.device.reopener.opener = lambda: self.port
        self.device.reopener.policy = lambda attempt: 1.0
        self.device.start()
        self.port.error = OSError(5, "gone")
        self.device.doRead()
        self.port.error = None
        self.clock.advance(1.0)
        self.assertEqual(self.calls(), [("dtr", False), ("close", None), ("apply", self.port.settings),
                                        ("dtr", False)])

    def test_idleAfterCloseStringSent(self) -> None:
        """idle-dtr off: DTR drops once the driver has sent the close-string, not while it still holds it (a modem hung up, a board reset before it got the string)."""
        line = self.line({}, {"dtr": False})
        client = person()
        line.attach(client)
        self.port.pending = 3
        line.detach(client)
        self.clock.advance(0.05)
        self.assertEqual(self.calls()[-1], ("write", b"bye"))
        self.port.pending = 0
        self.clock.advance(0.05)
        self.assertEqual(self.calls()[-2:], [("write", b"bye"), ("dtr", False)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_idleAfterCloseStringBreak(self) -> None:
        """idle-dtr off and a close-string with a break: DTR drops after the data behind the break, not during the break."""
        line = self.line({}, {"dtr": False})
        line.closeString = (b"bye", b"z")
        client = person()
        line.attach(client)
        line.detach(client)
        self.clock.advance(0.25)
        self.clock.advance(0.05)
        self.assertEqual([(t, what, value) for t, what, value in self.port.events][-5:], [
            (0, "write", b"bye"), (0, "break", True), (0.25, "break", False), (0.25, "write", b"z"), (0.3, "dtr", False)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_idleNotAfterSomeoneCame(self) -> None:
        """Someone attaching while the close-string is still on its way: DTR is never dropped (no pulse), and nothing is left waiting."""
        line = self.line({}, {"dtr": False})
        client = person()
        line.attach(client)
        self.port.pending = 3
        line.detach(client)
        line.attach(person("b"))
        self.port.pending = 0
        self.clock.advance(1.0)
        self.assertEqual(self.calls()[-1], ("write", b"bye"))
        self.assertEqual(self.device.modemLines["dtr"], True)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_idleWhenNeverSent(self) -> None:
        """A driver that never sends the close-string (flow control): the idle DTR is set after LET_GO_LIMIT s all the same."""
        from serialgw.line.strings import LET_GO_LIMIT

        line = self.line({}, {"dtr": False})
        client = person()
        line.attach(client)
        self.port.pending = 3
        line.detach(client)
        self.clock.advance(LET_GO_LIMIT - 0.05)
        self.assertEqual(self.calls()[-1], ("write", b"bye"))
        self.clock.advance(0.05)
        self.assertEqual(self.calls()[-1], ("dtr", False))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lastRfc2217ClientRestoresIdle(self) -> None:
        """The last RFC 2217 client leaving restores the configured state (idle when nobody stays), not plain on."""
        line = self.line({"dtr": True}, {"dtr": False})
        client = person()
        line.attach(client)
        line.addController(client)
        line.clientModemLine(client, "dtr", False)
        line.clientModemLine(client, "dtr", True)
        del self.port.events[:]
        line.detach(client)
        self.assertEqual([c for c in self.calls() if c[0] != "watch"], [("write", b"bye"), ("dtr", False)])


class QuietConnectionTests(SynchronousTestCase):
    """
    A connection from a listener counts for the open-string and DTR/RTS
    only once it is announced (a byte, or a second): a health check that
    comes and goes touches neither.
    """

    def harness(self) -> Harness:
        h = Harness()
        h.line.modemAttached = {"dtr": True, "rts": True}
        h.line.modemIdle = {"dtr": False, "rts": False}
        h.line.openString = (b"hello\r",)
        h.line.closeString = (b"bye\r",)
        h.line.applyModemLines()
        del h.device.events[:]
        return h

    def test_healthCheckTouchesNothing(self) -> None:
        """A quiet connection that leaves within a second without a byte: no open- or close-string, DTR/RTS stay idle."""
        h = self.harness()
        check, _ = h.telnet("raw+4444", agree=b"")
        h.line.clock.advance(0.9)
        check.connectionLost()
        h.line.clock.advance(1)
        self.assertEqual((h.device.events, h.device.modemLines, h.line.people), ([], {"dtr": False, "rts": False}, 0))
        self.assertEqual(h.line.clock.getDelayedCalls(), [])

    def test_stayingASecondCounts(self) -> None:
        """A quiet connection that stays a second: DTR/RTS raised and the open-string sent then, once; its leaving sends the close-string and drops them."""
        h = self.harness()
        client, _ = h.telnet("raw+4444", agree=b"")
        h.line.clock.advance(0.9)
        self.assertEqual(h.device.events, [])
        h.line.clock.advance(0.1)
        self.assertEqual(h.device.events, [("dtr", True), ("rts", True), ("write", b"hello\r")])
        h.line.clock.advance(5)
        client.connectionLost()
        self.assertEqual(h.device.events[3:], [("write", b"bye\r"), ("dtr", False), ("rts", False)])
        self.assertEqual(h.line.clock.getDelayedCalls(), [])

    def test_aByteCounts(self) -> None:
        """A quiet connection's first byte: DTR/RTS raised and the open-string sent before that byte reaches the device, once."""
        h = self.harness()
        client, _ = h.telnet("raw+4444", agree=b"")
        client.dataReceived(b"a")
        client.dataReceived(b"b")
        h.line.clock.advance(1)
        self.assertEqual(h.device.events, [("dtr", True), ("rts", True), ("write", b"hello\r"),
                                           ("write", b"a"), ("write", b"b")])
        self.assertEqual(h.line.people, 1)
        client.connectionLost()
        self.assertEqual(h.line.people, 0)


class ConfigTests(SynchronousTestCase):
    def test_file(self) -> None:
        """open-string, close-string, dtr, rts, idle-dtr, idle-rts in the TOML file (strings or booleans)."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[defaults]\nidle-rts = "off"\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                    'open-string = "\\\\r\\\\b"\nclose-string = "exit\\\\r"\ndtr = true\nrts = "on"\n')
        (line,) = loadConfig(path)
        self.assertEqual((line.openString, line.closeString), ((b"\r", b""), (b"exit\r",)))
        self.assertEqual((line.dtr, line.rts, line.idleDtr, line.idleRts), (True, True, None, False))

    def test_fileErrors(self) -> None:
        """A bad value names the file, its line and the key."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nidle-dtr = "sometimes"\n')
        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertEqual(str(e), f"{path}:4: [lines.a] idle-dtr: idle-dtr must be on or off, not 'sometimes'")
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n\nclose-string = "\\\\q"\n')
        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertEqual(str(e), f"{path}:5: [lines.a] close-string: close-string '\\q': unknown escape '\\q': "
                         "expected \\r \\n \\t \\e \\0 \\\\ \\xNN or \\b (a break)")

    def test_options(self) -> None:
        """--open-string, --close-string, --dtr, --rts, --idle-dtr, --idle-rts for a single line."""
        options = tap.Options()
        options.exitOnError = False
        options.parseOptions(["--device", "/dev/ttyS0", "--open-string", r"\bx", "--close-string", "q",
                              "--dtr", "on", "--idle-dtr", "off", "--rts", "off"])
        line = options["line"]
        self.assertEqual((line.openString, line.closeString), ((b"", b"x"), (b"q",)))
        self.assertEqual((line.dtr, line.rts, line.idleDtr, line.idleRts), (True, False, False, None))
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--idle-rts", "2"])
        self.assertEqual(str(e), "--idle-rts must be on or off, not '2'")


class RealDeviceTests(TestCase):
    timeout = 30

    async def test_stringsReachPty(self) -> None:
        """On a real pty device: the open-string arrives when the first client speaks, before its byte; the close-string at the last detach."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
                                             openString=parseSendString(r"login\r"), closeString=parseSendString(r"exit\r")))
        port = listenerPort(service)
        first = await connect(port)
        # A connection counts once it says something (or stays a second).
        first.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(7), b"login\ra")
        second = await connect(port)
        second.transport.write(b"!")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(8), b"login\ra!")
        await closeClients(first)
        second.transport.write(b"?")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(9), b"login\ra!?")
        await closeClients(second)
        self.assertEqual(await pty.received.length(14), b"login\ra!?exit\r")

    async def test_hangUpWithTypingQueued(self) -> None:
        """On a real pty whose far end reads nothing and then closes (a hang-up): what was queued for it then is dropped, logged as lost naming the line, and never in bytesToDevice, which is what the pty took."""
        pty = PtyPair()  # (its master not read)

        def hangUp() -> None:
            if pty.fd >= 0:
                pty.close()
                pty.fd = -1

        self.addCleanup(hangUp)
        service = startGateway(self, ptyLine(pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW)))
        line = service.lines["t"]
        device: Any = line.device
        lost: defer.Deferred[dict[str, Any]] = defer.Deferred()
        observeLog(self, lambda e: lost.callback(e) if "lost with it" in str(e.get("log_format")) else None)
        client = await connect(listenerPort(service))
        typed = 48 * 1024
        given: defer.Deferred[None] = defer.Deferred()
        receive = line.clientData

        def counted(who: Any, data: bytes) -> bool:
            taken = receive(who, data)
            if line.bytesGiven == typed and not given.called:
                given.callback(None)
            return taken

        line.clientData = counted  # type: ignore[method-assign, assignment]
        client.transport.write(b"x" * typed)  # type: ignore[union-attr]
        await given
        self.assertGreater(device.queuedBytes(), 0)
        hangUp()  # the far end goes
        event = await lost
        self.assertEqual(line.up, False)
        self.assertGreater(device.unsent, 0)
        self.assertEqual((event["line"], event["count"]), ("t", device.unsent))
        self.assertEqual((line.bytesToDevice, device.dropped), (device.bytesWritten, device.unsent))
        self.assertEqual(line.bytesToDevice + device.dropped, typed)
        await closeClients(client)

    async def test_stopSendsCloseString(self) -> None:
        """On a real pty device: the gateway stopped with a person attached writes the close-string before closing the device; the connection dropped afterwards sends nothing more."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
                                             openString=parseSendString(r"login\r"), closeString=parseSendString(r"exit\r")))
        client = await connect(listenerPort(service))
        client.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(7), b"login\ra")
        line = service.lines["t"]
        left: defer.Deferred[None] = defer.Deferred()

        def detached(event: dict[str, Any]) -> None:
            if str(event.get("text", "")).endswith(" detached") and not left.called:
                left.callback(None)

        observeLog(self, detached)
        await service.stopService()
        await closeClients(client)
        await left
        self.assertEqual(await pty.fence(b"!"), b"login\raexit\r!")
        self.assertEqual((line.people, line.bytesToDevice, line.device.dropped, line.device.bytesWritten),  # type: ignore[attr-defined]
                         (0, 12, 0, 12))
