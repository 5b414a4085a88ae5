"""
Tests for serialgw.line.hub: fan-out, roles and back-pressure.
"""

from __future__ import annotations

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from serialgw.clients.transports import describeAddress
from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IClient, IDevice, IDeviceSink
from serialgw.line.control import settingsAsked
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingClient, RecordingDevice


class LineTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("ttyS0", self.device)

    def test_fakes(self) -> None:
        """The fakes provide the interfaces they stand for."""
        verifyObject(IClient, RecordingClient())
        verifyObject(IDevice, self.device)

    def test_lineIsTheDeviceSink(self) -> None:
        """A line provides IDeviceSink, the seam its device knows it by: declared on the class and complete."""
        self.assertTrue(IDeviceSink.implementedBy(Line))
        verifyObject(IDeviceSink, self.line)

    def test_fanOut(self) -> None:
        """Device output reaches every attached client, in order."""
        a, b = RecordingClient("a"), RecordingClient("b")
        self.line.attach(a)
        self.line.attach(b)
        self.line.deviceDataReceived(b"one")
        self.line.detach(a)
        self.line.deviceDataReceived(b"two")
        self.assertEqual(a.received, [b"one"])
        self.assertEqual(b.received, [b"one", b"two"])
        self.assertEqual(self.line.bytesFromDevice, 6)

    def test_backlogKeepsTheNewestBytes(self) -> None:
        """
        The replay backlog is exactly the newest backlogSize bytes, whatever
        the chunk sizes, and it never holds more than backlogSize.
        """
        self.line.backlogSize = 100
        stream = bytes(range(256)) * 100
        largest = 0
        for i in range(0, len(stream), 3):
            self.line.deviceDataReceived(stream[i:i + 3])
            largest = max(largest, len(self.line._backlog))
        self.assertEqual(self.line.backlog(), stream[-100:])
        self.assertEqual(largest, 100)
        self.line.deviceDataReceived(b"x" * 10000)
        self.assertEqual(self.line.backlog(), b"x" * 100)
        self.line.backlogSize = 0
        self.assertEqual(self.line.backlog(), b"")

    def test_anyWriterWrites(self) -> None:
        """Input from any writer goes to the device; watchers and read-only clients are refused."""
        writers = [RecordingClient("w1"), RecordingClient("w2")]
        watcher = RecordingClient("v", Role.WATCHER)
        readonly = RecordingClient("r", Role.READONLY)
        for c in writers + [watcher, readonly]:
            self.line.attach(c)
        self.line.clientData(writers[0], b"a")
        self.line.clientData(watcher, b"b")
        self.line.clientData(readonly, b"c")
        self.line.clientData(writers[1], b"d")
        self.assertEqual(self.device.events, [("write", b"a"), ("write", b"d")])
        self.assertEqual((self.line.bytesToDevice, self.line.refused), (2, 2))

    def test_break(self) -> None:
        """Breaks from writers reach the device; a refused one reports False."""
        w, r = RecordingClient("w"), RecordingClient("r", Role.READONLY)
        self.assertTrue(self.line.clientBreak(w))
        self.assertFalse(self.line.clientBreak(r))
        self.device.busy = True
        self.assertFalse(self.line.clientBreak(w))
        self.assertEqual(self.device.events, [("break", None)])

    def test_backpressureWritersOnly(self) -> None:
        """A full device pauses writers only, and clients attaching meanwhile."""
        w, r = RecordingClient("w"), RecordingClient("r", Role.READONLY)
        self.line.attach(w)
        self.line.attach(r)
        self.line.deviceWritable(False)
        late = RecordingClient("late")
        self.line.attach(late)
        self.line.deviceWritable(True)
        self.assertEqual((w.paused, w.resumed), (1, 1))
        self.assertEqual((late.paused, late.resumed), (1, 1))
        self.assertEqual((r.paused, r.resumed), (0, 0))

    def test_roleChangesMoveTheDevicePause(self) -> None:
        """While the device is behind, a role change moves the pause with write: the writer that only watches now (take-over, made read-only) is read again, the one that takes write (^] t, made shared) is paused until the device catches up."""
        self.line.mode = "exclusive"
        w, v, r = RecordingClient("w"), RecordingClient("v"), RecordingClient("r")
        for client in (w, v, r):
            client.person = True  # type: ignore[attr-defined]
            self.line.attach(client)
        self.line.deviceWritable(False)
        self.assertEqual([(c.role, c.paused, c.resumed) for c in (w, v, r)],
                         [(Role.WRITER, 1, 0), (Role.WATCHER, 0, 0), (Role.WATCHER, 0, 0)])
        self.line.takeWrite(v)
        self.assertEqual([(c.paused, c.resumed) for c in (w, v)], [(1, 1), (1, 0)])
        self.line.setMode("shared")
        self.assertEqual([(c.paused, c.resumed) for c in (w, v, r)], [(2, 1), (1, 0), (1, 0)])
        self.line.makeReadOnly(r, "a reload made it so")
        self.line.dropWrite(w)
        self.assertEqual([(c.paused, c.resumed) for c in (w, v, r)], [(2, 2), (1, 0), (1, 1)])
        self.line.deviceWritable(True)
        self.assertEqual([(c.role, c.paused, c.resumed) for c in (w, v, r)],
                         [(Role.WATCHER, 2, 2), (Role.WRITER, 1, 1), (Role.READONLY, 1, 1)])
        self.line.takeWrite(w)
        self.assertEqual([(c.paused, c.resumed) for c in (w, v)], [(2, 2), (1, 1)])

    def test_exclusiveProgramWritesBesideTheWriter(self) -> None:
        """Exclusive mode is between people: a program's client (a pty:, pipe: or udp: one: no person, no escape menu to take write) attached after the writer still writes beside it, and a take-over leaves it writing; one made ro only reads (README)."""
        self.line.mode = "exclusive"
        person, other = RecordingClient("alice"), RecordingClient("bob")
        program, watching = RecordingClient("pty:/tmp/ttyV0"), RecordingClient("pty:/tmp/ttyV1", Role.READONLY)
        for client in (person, other):
            client.person = True  # type: ignore[attr-defined]
        for client in (person, other, program, watching):
            self.line.attach(client)
        self.assertEqual([c.role for c in (person, other, program, watching)],
                         [Role.WRITER, Role.WATCHER, Role.WRITER, Role.READONLY])
        self.line.takeWrite(other)
        self.assertEqual([c.role for c in (person, other, program)], [Role.WATCHER, Role.WRITER, Role.WRITER])
        self.assertEqual(self.line.writer, other)
        for client in (person, other, program, watching):
            self.line.clientData(client, client.peer.encode()[:5])
        self.assertEqual(self.device.events, [("write", b"bob"), ("write", b"pty:/")])

    def test_readOnlyControllerEndsTheLineErrorWatch(self) -> None:
        """The device watches for line errors only while a client that can change the port (RFC 2217, not read-only) asks for them: one made read-only by a reload ends the watch, another that still asks keeps it."""
        a, b = RecordingClient("a"), RecordingClient("b")
        for client in (a, b):
            self.line.attach(client)
            client.wantsLineErrors = True  # type: ignore[attr-defined]
            self.line.addController(client)
        self.line.updateLineWatch()
        self.assertIs(self.device.watching, True)
        self.line.makeReadOnly(a, "a reload made it so")
        self.assertIs(self.device.watching, True)
        self.line.makeReadOnly(b, "a reload made it so")
        self.assertIs(self.device.watching, False)

    def test_heldBreakEndsWithWrite(self) -> None:
        """A break an RFC 2217 BREAK-ON holds ends when its client loses write (a take-over, made read-only by a reload): it could not send BREAK-OFF any more, and the break held the line 30 s; said in the log. Another's break is left alone."""
        log = LogEvents(self)
        self.line.mode = "exclusive"
        w, v = RecordingClient("w"), RecordingClient("v")
        for client in (w, v):
            client.person = True  # type: ignore[attr-defined]
            self.line.attach(client)
        self.line.clientBreakHold(w, True)
        self.line.takeWrite(v)
        self.assertEqual(self.device.events, [("break", 30.0), ("break-off", None)])
        self.line.clientBreakHold(v, True)
        self.line.makeReadOnly(v, "a reload made it so")
        self.line.takeWrite(w)
        self.line.clientBreakHold(w, True)
        self.line.clientBreakHold(w, False)
        self.assertTrue(self.line.clientBreak(w))
        self.line.dropWrite(w)
        self.assertEqual(self.device.events, [("break", 30.0), ("break-off", None)] * 3 + [("break", None)])
        self.assertEqual([e["why"] for e in log.events if "which held it" in e.get("log_format", "")],
                         ["is watcher now", "is read-only now"])

    def test_heldBreakEndsWhenItsClientLeaves(self) -> None:
        """A break an RFC 2217 BREAK-ON holds ends when its client leaves while another writer stays (it held the line up to 30 s after its client had gone); said in the log."""
        log = LogEvents(self)
        w, v = RecordingClient("w"), RecordingClient("v")
        for client in (w, v):
            self.line.attach(client)
        self.line.clientBreakHold(w, True)
        self.line.detach(w)
        self.assertEqual(self.device.events, [("break", 30.0), ("break-off", None)])
        self.assertEqual([e["why"] for e in log.events if "which held it" in e.get("log_format", "")], ["left"])

    def test_settingsRefusedSayWhy(self) -> None:
        """A refused settings change is logged with the setting, the value asked for and why (read-only, another client is the writer, only watching, the line closing), not the client's role alone; nothing reaches the device."""
        log = LogEvents(self)
        self.line.mode = "exclusive"
        writer, watcher, readonly = RecordingClient("w"), RecordingClient("v"), RecordingClient("r", Role.READONLY)
        for client in (writer, watcher):
            client.person = True  # type: ignore[attr-defined]
        for client in (writer, watcher, readonly):
            self.line.attach(client)
        self.assertEqual(watcher.role, Role.WATCHER)
        self.line.clientSettings(watcher, SerialSettings(9600))
        self.line.clientSettings(readonly, SerialSettings(parity="E", stopbits=2))
        self.line.detach(writer)
        self.line.clientSettings(watcher, SerialSettings(rtscts=True))
        self.line.takeWrite(watcher)
        self.line.letGo()
        self.line.clientSettings(watcher, SerialSettings())
        refused = [e for e in log.events if "refused" in (e.get("log_format") or "")]
        self.assertEqual({e["log_format"] for e in refused},
                         {"{line}: settings from {peer} refused ({asked}): {reason}; {line} stays at {settings}"})
        self.assertEqual([(e["line"], e["peer"], e["setting"], e["value"], e["reason"], e["settings"]) for e in refused], [
            ("ttyS0", "v", "baud rate", "9600", "another client is the writer (w; this one only watches)", "115200,8N1"),
            ("ttyS0", "r", "parity, stop bits", "E, 2", "the client is read-only", "115200,8N1"),
            ("ttyS0", "v", "rtscts", "on", "the client only watches (it has not taken write)", "115200,8N1"),
            ("ttyS0", "v", "settings", "115200,8N1", "ttyS0 is closing", "115200,8N1")])
        self.assertEqual(refused[1]["asked"], "parity E, stop bits 2")
        self.assertEqual([e for e in self.device.events if e[0] == "apply"], [])

    def test_settingsRefusedSharedWatcher(self) -> None:
        """In shared mode a person who chose to only watch (o) is told apart from one another writer keeps out: the log does not blame the writers."""
        log = LogEvents(self)
        writer, watcher = RecordingClient("w"), RecordingClient("v")
        for client in (writer, watcher):
            client.person = True  # type: ignore[attr-defined]
            self.line.attach(client)
        self.line.dropWrite(watcher)
        self.line.clientSettings(watcher, SerialSettings(9600))
        (event,) = [e for e in log.events if "refused" in (e.get("log_format") or "")]
        self.assertEqual((event["peer"], event["reason"]), ("v", "the client only watches (it has not taken write)"))

    def test_settingsRepeatedLogQuietly(self) -> None:
        """A writer's settings are logged at info when they change what is in effect, or the device takes less than asked; a request for what is already in effect (pyserial sends each setting on its own) is a debug line."""
        log = LogEvents(self)
        writer = RecordingClient("w")
        self.line.attach(writer)
        self.line.clientSettings(writer, SerialSettings(9600))
        self.line.clientSettings(writer, SerialSettings(9600))
        self.line.clientSettings(writer, SerialSettings(9600))
        self.device.apply = lambda settings: SerialSettings(9600)  # type: ignore[method-assign]
        self.line.clientSettings(writer, SerialSettings(9600, rtscts=True))
        said = [(e["log_level"], e["wanted"], e["settings"]) for e in log.events if "wanted" in e]
        self.assertEqual(said, [(LogLevel.info, "9600,8N1", "9600,8N1"), (LogLevel.debug, "9600,8N1", "9600,8N1"),
                                (LogLevel.debug, "9600,8N1", "9600,8N1"),
                                (LogLevel.info, "9600,8N1,rtscts", "9600,8N1")])

    def test_settingsRefusedRepeatedLogQuietly(self) -> None:
        """A read-only client asking for the settings in effect (pyserial's open sends each one) changes nothing and is refused at debug; asking for another value is refused at info."""
        log = LogEvents(self)
        readonly = RecordingClient("r", Role.READONLY)
        self.line.attach(readonly)
        self.line.clientSettings(readonly, SerialSettings(115200))
        self.line.clientSettings(readonly, SerialSettings(9600))
        said = [(e["log_level"], e["asked"]) for e in log.events if "refused" in (e.get("log_format") or "")]
        self.assertEqual(said, [(LogLevel.debug, "settings 115200,8N1"), (LogLevel.info, "baud rate 9600")])

    def test_settingsAsked(self) -> None:
        """What a settings request changes, named for people: each differing setting with its value; none: the settings as a whole."""
        current = SerialSettings(9600)
        self.assertEqual(settingsAsked(current, SerialSettings(9600, stopbits=1.5, xonxoff=True)),
                         ("stop bits, xonxoff", "1.5, on", "stop bits 1.5, xonxoff on"))
        self.assertEqual(settingsAsked(current, SerialSettings(9600, bytesize=7)), ("data bits", "7", "data bits 7"))
        self.assertEqual(settingsAsked(current, current), ("settings", "9600,8N1", "settings 9600,8N1"))

    def test_describeAddress(self) -> None:
        """Addresses print as host:port, [v6]:port, unix:path."""
        from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

        self.assertEqual(describeAddress(IPv4Address("TCP", "127.0.0.1", 5)), "127.0.0.1:5")
        self.assertEqual(describeAddress(IPv6Address("TCP", "::1", 5)), "[::1]:5")
        self.assertEqual(describeAddress(UNIXAddress(b"/run/x")), "unix:/run/x")
        self.assertEqual(describeAddress(UNIXAddress("\0rack4")), "unix:@rack4")

    def test_unixPeerName(self) -> None:
        """A unix socket client (no name of its own) is the listener's name with the peer's pid and uid."""
        import os
        import socket

        from twisted.internet.address import UNIXAddress

        from serialgw.clients.transports import peerName

        ours, theirs = socket.socketpair(socket.AF_UNIX)
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)

        class Transport:
            socket = ours

            def getPeer(self) -> UNIXAddress:
                return UNIXAddress(None)

            def getHost(self) -> UNIXAddress:
                return UNIXAddress("\0rack4")

        self.assertEqual(peerName(Transport()), f"unix:@rack4 (pid {os.getpid()}, uid {os.getuid()})")


class CoalesceTests(SynchronousTestCase):
    def setUp(self) -> None:
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.line = Line("ttyS0", RecordingDevice(), clock=self.clock)
        self.client = RecordingClient("c")
        self.line.attach(self.client)

    def tearDown(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_offByDefault(self) -> None:
        """Without coalescing, every read goes out at once."""
        self.line.deviceDataReceived(b"a")
        self.line.deviceDataReceived(b"b")
        self.assertEqual(self.client.received, [b"a", b"b"])

    def test_minAfterLastMaxAfterFirst(self) -> None:
        """Output waits MIN after the last byte, never more than MAX after the first."""
        self.line.coalesce(0.002, 0.005)
        self.line.deviceDataReceived(b"a")
        self.clock.advance(0.0015)
        self.line.deviceDataReceived(b"b")
        self.clock.advance(0.0015)
        self.assertEqual(self.client.received, [])
        self.clock.advance(0.0005)
        self.assertEqual(self.client.received, [b"ab"])
        for _ in range(4):
            self.line.deviceDataReceived(b"x")
            self.clock.advance(0.0015)
        self.assertEqual(self.client.received, [b"ab", b"xxxx"])
        self.clock.advance(0.01)

    def test_sendOnString(self) -> None:
        """The send-on string flushes at once."""
        self.line.coalesce(0.002, 0.02, b"\n")
        self.line.deviceDataReceived(b"login")
        self.line.deviceDataReceived(b": ok\n")
        self.assertEqual(self.client.received, [b"login: ok\n"])

    def test_heldOutputBounded(self) -> None:
        """
        A flood held for MAX (10 s) is sent every HOLD_LIMIT bytes, in order: it was all held (1.6 GB of
        RSS measured from a pty flood with coalesce 10000,10000) and handed over in one piece past every
        client's outbuf.
        """
        from serialgw.line.coalesce import HOLD_LIMIT

        self.line.coalesce(10.0, 10.0)
        chunk = bytes(range(256)) * 16
        count = 3 * HOLD_LIMIT // len(chunk) + 5
        for _ in range(count):
            self.line.deviceDataReceived(chunk)
        self.assertEqual([len(c) for c in self.client.received], [HOLD_LIMIT] * 3)
        self.clock.advance(10.0)
        self.assertEqual(b"".join(self.client.received), chunk * count)
        self.assertEqual(len(self.client.received[-1]), 5 * len(chunk))

    def test_sendOnStringAcrossReads(self) -> None:
        """A send-on string cut between two reads flushes at the second: it waited for MAX."""
        self.line.coalesce(0.002, 0.02, b"\r\n")
        self.line.deviceDataReceived(b"login:\r")
        self.line.deviceDataReceived(b"\n")
        self.assertEqual(self.client.received, [b"login:\r\n"])
        self.line.deviceDataReceived(b"\r")
        self.line.deviceDataReceived(b"x\n")
        self.assertEqual(self.client.received, [b"login:\r\n"])
        self.clock.advance(0.002)
        self.assertEqual(self.client.received, [b"login:\r\n", b"\rx\n"])
        self.line.coalesce(0.002, 0.02, b"# ")
        for byte in b"ok#":
            self.line.deviceDataReceived(bytes([byte]))
        self.line.deviceDataReceived(b" ")
        self.assertEqual(self.client.received[2:], [b"ok# "])

    def test_heldOutputBeforeTheDownNotice(self) -> None:
        """
        The device lost while output is held: what it said before it went reaches the clients (and the
        console log) before the down notice; it came after it, MIN to MAX ms later.
        """
        from twisted.python.failure import Failure

        order: list[object] = []
        self.client.deliver = lambda data: order.append(data)  # type: ignore[method-assign]
        self.client.deviceStateChanged = lambda up, notice: order.append(up)  # type: ignore[method-assign]
        self.line.coalesce(0.002, 0.02)
        self.line.deviceDataReceived(b"kernel panic")
        self.line.deviceLost(Failure(OSError(5, "hung up")))
        self.assertEqual(order, [b"kernel panic", False])
        self.clock.advance(0.02)
        self.assertEqual(order, [b"kernel panic", False])

    def test_heldOutputGoesWhenLetGo(self) -> None:
        """
        The gateway stops (or a reload removes the line) while output is held: it goes at once, before
        the stop notice and before the device and the console logs close; it waited for a timer that
        came after them (lost at a stop), and the timer outlived the line.
        """
        self.line.people = 1
        self.line.coalesce(0.002, 0.02)
        self.line.deviceDataReceived(b"last words")
        done = self.line.letGo()
        self.assertEqual(self.client.received, [b"last words"])
        self.assertTrue(done.called)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_answerToTheCloseStringGoesBeforeTheClose(self) -> None:
        """What the device answers to the close-string while the line is let go reaches the clients before the device closes."""
        from serialgw.line.strings import LET_GO_POLL

        self.line.people = 1
        self.line.closeString = (b"exit\r",)
        self.line.coalesce(0.5, 1.0)
        device = self.line.device
        device.queued = 5  # type: ignore[attr-defined]
        done = self.line.letGo()
        self.line.deviceDataReceived(b"logout")
        self.assertFalse(done.called)
        device.queued = 0  # type: ignore[attr-defined]
        self.clock.pump([LET_GO_POLL] * 2)
        self.assertTrue(done.called)
        self.assertEqual(self.client.received, [b"logout"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_turnedOffWhileHolding(self) -> None:
        """Coalescing turned off (a reload) while output is held: the held output goes first, nothing reordered."""
        self.line.coalesce(0.002, 0.02)
        self.line.deviceDataReceived(b"held")
        self.line.coalesce(0, 0)
        self.line.deviceDataReceived(b" after")
        self.assertEqual(self.client.received, [b"held", b" after"])

    def test_parse(self) -> None:
        """MIN_MS,MAX_MS[,STRING] and off."""
        from serialgw.config.parsers import parseCoalesce
        from serialgw.config.specs import ConfigError

        self.assertEqual(parseCoalesce("2,20"), (0.002, 0.02, b""))
        self.assertEqual(parseCoalesce("5,50,\\r\\n"), (0.005, 0.05, b"\r\n"))
        self.assertEqual(parseCoalesce("off"), (0.0, 0.0, b""))
        self.assertRaises(ConfigError, parseCoalesce, "20,2")
        self.assertRaises(ConfigError, parseCoalesce, "fast")


class FailingClientTests(SynchronousTestCase):
    def test_oneClientFailsOthersGoOn(self) -> None:
        """A client whose deliver raises is cut off; the others still get the output."""
        line = Line("ttyS0", RecordingDevice())
        bad, good = RecordingClient("bad"), RecordingClient("good")

        def explode(data: bytes) -> None:
            raise RuntimeError("bug")

        bad.deliver = explode  # type: ignore[method-assign]
        line.attach(bad)
        line.attach(good)
        line.deviceDataReceived(b"x")
        self.assertEqual(good.received, [b"x"])
        # Aborted (a fake has no connection: the line detaches it).
        self.assertEqual((bad.aborted, line.clients), (1, [good]))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failingLogDoesNotHideTheNextClient(self) -> None:
        """
        A failing client without a transport (a console log) is detached
        after the fan-out: the client after it still gets the same bytes, and
        the log leaves the line's logs.
        """
        line = Line("ttyS0", RecordingDevice())
        bad, good = RecordingClient("log"), RecordingClient("good")

        def explode(data: bytes) -> None:
            raise OSError("disk gone")

        bad.deliver = explode  # type: ignore[method-assign]
        line.attach(bad)
        line.logs.append(bad)  # type: ignore[arg-type]
        line.attach(good)
        line.deviceDataReceived(b"more\n")
        self.assertEqual(good.received, [b"more\n"])
        self.assertEqual((line.clients, line.logs), ([good], []))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)


class DownLineTests(SynchronousTestCase):
    def test_startsDownWithItsDevice(self) -> None:
        """A line whose device starts down is down; a client arriving hears why; up comes with deviceUp."""
        device = RecordingDevice()
        device.up, device.downReason = False, "cannot open device '/dev/ttyUSB3': No such file or directory"
        line = Line("usb3", device)
        self.assertFalse(line.up)
        client = RecordingClient("a")
        line.attach(client)
        self.assertEqual(client.deviceStates, [(False, b"\r\n[serialgw: usb3 is down: cannot open device "
                                                       b"'/dev/ttyUSB3': No such file or directory; waiting for it]\r\n")])
        device.up, device.downReason = True, None
        line.deviceUp()
        self.assertTrue(line.up)
        self.assertEqual(client.deviceStates[1:], [(True, b"\r\n[serialgw: usb3 is back]\r\n")])

    def test_arrivingWhileDown(self) -> None:
        """A client that attaches after the device went down is told, as those there were; with notices off, silently."""
        device = RecordingDevice()
        line = Line("ttyS0", device)
        line.attach(RecordingClient("before"))
        device.up, device.downReason = False, "hung up"
        from twisted.python.failure import Failure

        line.deviceLost(Failure(OSError(5, "hung up")))
        late = RecordingClient("late")
        line.attach(late)
        self.assertEqual(late.deviceStates, [(False, b"\r\n[serialgw: ttyS0 is down: hung up; waiting for it]\r\n")])
        line.notices = False
        quiet = RecordingClient("quiet")
        line.attach(quiet)
        self.assertEqual(quiet.deviceStates, [(False, b"")])

    def test_upDeviceNoNotice(self) -> None:
        """While the device is up, attaching tells the client nothing about it."""
        line = Line("ttyS0", RecordingDevice())
        client = RecordingClient("a")
        line.attach(client)
        self.assertEqual(client.deviceStates, [])
