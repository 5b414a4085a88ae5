"""
Tests for a device opened on demand (serialgw.line.ondemand,
serialgw.devices.ondemand): a real SerialDevice on recording ports and a
line, driven by a clock; the open made in line (no threads) or held by a
Deferred (an open that has not returned).
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.factory import LineFactory
from serialgw.clients.logmarks import EVENT_WINDOW, EVENTS_TOLD
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import SerialSettings
from serialgw.devices.absent import AbsentPort
from serialgw.devices.device import SerialDevice
from serialgw.devices.errors import DeviceError
from serialgw.interfaces import RESTING, IRestingDevice
from serialgw.line.hub import Line
from serialgw.line.strings import LET_GO_LIMIT, STRING_BREAK_POLL
from tests.fakes import LogEvents, RecordingClient, RecordingPort

CLOSED = b"\r\n[serialgw: web1's device is closed (on demand): opened when a client connects]\r\n"
MISSING = "cannot open device '/dev/ttyUSB0': No such file or directory"


class OnDemandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        # What each open does: an exception raised, a Deferred returned (an open under way), else a port.
        self.outcomes: list[Any] = []
        self.device = SerialDevice(AbsentPort("/dev/ttyUSB0", SerialSettings()), self.reactor, 0.25,
                                   opener=self.opener, reopenPolicy=lambda n: 1.0, downReason=RESTING)
        self.line = Line("web1", self.device, clock=self.reactor)
        self.device.sink = self.line
        self.line.setOnDemand(True)
        self.device.start()
        self.log = LogEvents(self)

    def opener(self) -> Any:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, Deferred):
            return outcome
        return self.newPort()

    def newPort(self) -> RecordingPort:
        port = RecordingPort(self.reactor)
        port.name = "/dev/ttyUSB0"
        self.ports.append(port)
        return port

    def person(self, peer: str, wakes: bool = True) -> RecordingClient:
        client = RecordingClient(peer)
        client.person = wakes
        client.wakesLine = wakes
        return client

    def openPorts(self) -> list[RecordingPort]:
        return [port for port in self.ports if not port.closed]

    def test_closedUntilAClientComes(self) -> None:
        """Made on demand, nothing is opened: down, 'closed (on demand)', read by nobody; the first client opens it, and hears nothing of it."""
        self.assertVerifies()
        self.assertEqual((self.ports, self.device.up, self.device.downReason), ([], False, "closed (on demand)"))
        self.assertEqual((self.line.closedOnDemand, self.reactor.readers), (True, set()))
        client = self.person("192.0.2.1:5000")
        self.line.attach(client)
        self.assertEqual(len(self.ports), 1)
        self.assertEqual((self.device.up, self.line.up, self.line.closedOnDemand), (True, True, False))
        self.assertEqual(self.reactor.readers, {self.device})
        self.assertEqual(client.deviceStates, [(True, b"")])  # (no notice: an RFC 2217 client's carrier rises)
        self.assertEqual(self.line.reopens, 0)
        self.assertIn("web1: device opened (on demand)", self.texts())

    def assertVerifies(self) -> None:
        from zope.interface.verify import verifyObject

        self.assertTrue(verifyObject(IRestingDevice, self.device))

    def test_closedWhenTheLastLeaves(self) -> None:
        """Two clients: the first leaving keeps the device open; the last one's leaving closes it (its descriptor let go), and nothing is tried again."""
        a, b = self.person("192.0.2.1:1"), self.person("192.0.2.2:2")
        self.line.attach(a)
        self.line.attach(b)
        self.assertEqual(len(self.ports), 1)
        self.line.detach(a)
        self.assertEqual(self.openPorts(), self.ports)
        self.line.detach(b)
        self.assertEqual(self.openPorts(), [])
        self.assertEqual((self.device.up, self.device.resting, self.device.downReason), (False, True, RESTING))
        self.assertEqual((self.line.up, self.reactor.readers, self.reactor.getDelayedCalls()), (False, set(), []))
        self.assertIn("web1: device closed (on demand): no client wants it", self.texts())

    def test_watchersDoNotKeepItOpen(self) -> None:
        """A client that does not wake the line (a watch-all view, a console log) opens nothing and is told the device is closed on demand; it sees a person's session open and close it."""
        view = self.person("watch-all 192.0.2.9:7", wakes=False)
        self.line.attach(view)
        self.assertEqual((self.ports, view.deviceStates), ([], [(False, CLOSED)]))
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        self.device.port.incoming.append(b"login: ")
        self.device.doRead()
        self.line.detach(person)
        self.assertEqual(view.received, [b"login: "])
        self.assertEqual(view.deviceStates, [(False, CLOSED), (True, b""), (False, CLOSED)])
        self.assertEqual(self.openPorts(), [])

    def test_typingFromANonWakerWhileClosedLogged(self) -> None:
        """A pty: or udp: client typing while the device is closed on demand cannot be told: each drop is logged with its byte count, against its peer's log budget (20 a minute, the rest counted); nothing reaches a device."""
        from serialgw.logflood import PeerLimiter

        program = self.person("pty:/run/web1", wakes=False)
        self.line.attach(program)
        self.assertTrue(self.line.clientData(program, b"root\r"))
        self.assertEqual(self.ports, [])
        said = [e for e in self.log.events if "closed on demand and" in (e.get("log_format") or "")]
        self.assertEqual([(e["line"], e["peer"], e["count"]) for e in said], [("web1", "pty:/run/web1", 5)])
        # Bounded by the peer's budget: a flood of 100 writes, 20 said, the rest counted in one line.
        passed: list[dict[str, Any]] = []
        limiter = PeerLimiter(passed.append, now=lambda: 0.0)
        for e in said * 100:
            limiter(dict(e))
        self.assertEqual(len(passed), 20)
        # (Once open for a network client, typing goes to the device and nothing more is said.)
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        self.line.clientData(program, b"x")
        self.assertEqual(self.ports[0].written(), b"x")
        self.assertEqual(len([e for e in self.log.events if "closed on demand and" in (e.get("log_format") or "")]), 1)

    def test_closeStringTakenBeforeTheClose(self) -> None:
        """The last person leaves: the close-string is written, and the device closed only once its driver has sent it (polled), then the idle DTR/RTS set."""
        self.line.closeString = (b"exit\r",)
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        port = self.ports[0]
        port.modem = 0
        port.pending = 5
        self.line.detach(person)
        self.assertEqual((port.written(), port.closed), (b"exit\r", False))
        self.reactor.advance(STRING_BREAK_POLL)
        self.assertFalse(port.closed)
        port.pending = 0
        self.reactor.advance(STRING_BREAK_POLL)
        self.assertTrue(port.closed)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_closedAnywayAfterTheLimit(self) -> None:
        """A device that does not take the close-string (held by flow control) is closed after LET_GO_LIMIT s; what its driver held is purged, counted unsent."""
        self.line.closeString = (b"exit\r",)
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        port = self.ports[0]
        port.pending = 5
        self.line.detach(person)
        self.reactor.pump([STRING_BREAK_POLL] * int(LET_GO_LIMIT / STRING_BREAK_POLL + 2))
        self.assertTrue(port.closed)
        self.assertEqual((self.device.unsent, [e[2] for e in port.events if e[1] == "purge"]), (5, [(False, True)]))
        self.assertIn("did not take what was queued for it within 2.0 s", " ".join(self.texts()))

    def test_clientComingBackBeforeTheCloseKeepsItOpen(self) -> None:
        """A client arriving while the close waits for the close-string finds the device open: no close, no second open."""
        self.line.closeString = (b"exit\r",)
        first = self.person("192.0.2.1:1")
        self.line.attach(first)
        self.ports[0].pending = 5
        self.line.detach(first)
        again = self.person("192.0.2.1:2")
        self.line.attach(again)
        self.reactor.advance(LET_GO_LIMIT + 1)
        self.assertEqual((len(self.ports), self.ports[0].closed, self.device.up), (1, False, True))
        self.assertEqual(again.deviceStates, [])

    def test_openFailsTellsAndRetries(self) -> None:
        """An open that fails is told to the client at once (a device down), tried again with backoff while it stays, and told back; the open-string goes then."""
        self.line.openString = (b"\r",)
        self.outcomes.append(DeviceError(MISSING))
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        self.assertEqual(person.deviceStates, [
            (False, f"\r\n[serialgw: web1 is down: {MISSING}; waiting for it]\r\n".encode())])
        self.assertEqual(self.device.downReason, MISSING)
        self.reactor.advance(1.0)
        self.assertEqual(person.deviceStates[1:], [(True, b"\r\n[serialgw: web1 is back]\r\n")])
        self.assertEqual(self.ports[0].written(), b"\r")
        warned = [e for e in self.log.at(LogLevel.warn) if "on demand" in e.get("log_format", "")]
        self.assertEqual(len(warned), 1)

    def test_leavingWhileDownStopsTrying(self) -> None:
        """The client leaves while the open keeps failing: no attempt follows, the device rests."""
        self.outcomes += [DeviceError(MISSING)] * 3
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        self.reactor.advance(1.0)
        self.line.detach(person)
        self.assertEqual((self.reactor.getDelayedCalls(), self.device.resting, len(self.outcomes)), ([], True, 1))

    def test_comingAndGoingAtOnce(self) -> None:
        """A client that connects and leaves at once, 200 times: an open and a close each, never two descriptors open, no call left."""
        for n in range(200):
            client = self.person(f"192.0.2.1:{n}")
            client.person = False  # (a health check: never announced)
            self.line.attach(client)
            self.assertEqual(len(self.openPorts()), 1)
            self.line.detach(client)
            self.assertEqual(self.openPorts(), [])
        self.assertEqual((len(self.ports), self.reactor.getDelayedCalls(), self.reactor.readers), (200, [], set()))

    def test_consoleLogBoundedByItsOwnWindow(self) -> None:
        """A raw client connecting and leaving 100 times a second for a minute: the line's real console log writes the opens and closes within its own bound for every event (EVENTS_TOLD in EVENT_WINDOW s), each window's rest counted in one line when it is over."""
        path = self.mktemp()
        consoleLog = ConsoleLog(self.line, LogSpec(path, format=""), self.reactor)
        factory = LineFactory(self.line, parseListener("raw+4000"), clock=self.reactor)
        for _second in range(60):
            for n in range(100):
                address = IPv4Address("TCP", "192.0.2.1", 1000 + n)
                protocol = factory.buildProtocol(address)
                assert protocol is not None
                protocol.makeConnection(StringTransport(peerAddress=address))
                protocol.connectionLost(None)  # type: ignore[arg-type]
            self.reactor.advance(1)
        self.assertEqual((len(self.ports), self.openPorts()), (6000, []))
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        told = [b"[serialgw: device opened (on demand)]", b"[serialgw: device closed (on demand)]"] * (EVENTS_TOLD // 2)
        # Each window: its first 30 of 2000 written (the window starts with a second's 200), the other 1970 counted.
        count = b"[serialgw: 1970 more event(s) not written (more than 30 in 10 s)]"
        self.assertEqual((EVENTS_TOLD, EVENT_WINDOW), (30, 10.0))
        self.assertEqual(lines, (told + [count]) * 6)
        consoleLog.close()

    def test_hungOpenIsTheNextOnesOpen(self) -> None:
        """While an open has not returned, clients coming and going start no other (one open under way, however many come); when it returns with nobody there, what it opened is closed at once."""
        hung: Deferred[RecordingPort] = Deferred()
        self.outcomes.append(hung)
        for n in range(50):
            client = self.person(f"192.0.2.1:{n}")
            self.line.attach(client)
            self.assertEqual(client.deviceStates, [])  # (quiet: it is opening)
            self.line.detach(client)
        self.assertEqual(self.outcomes, [])
        self.assertEqual(self.ports, [])
        hung.callback(self.newPort())
        self.assertEqual((self.ports[0].closed, self.device.resting, self.device.up), (True, True, False))
        client = self.person("192.0.2.1:99")
        self.line.attach(client)
        self.assertEqual((len(self.ports), self.device.up), (2, True))

    def test_hungOpenReturnsToTheClientThere(self) -> None:
        """An open under way when its client left and another came: it returns to the one there (up, quiet), typing meanwhile held and written."""
        hung: Deferred[RecordingPort] = Deferred()
        self.outcomes.append(hung)
        first = self.person("192.0.2.1:1")
        self.line.attach(first)
        self.line.detach(first)
        second = self.person("192.0.2.1:2")
        self.line.attach(second)
        self.line.clientData(second, b"root\r")
        hung.callback(self.newPort())
        self.assertEqual((self.device.up, self.ports[0].closed, self.ports[0].written()), (True, False, b"root\r"))
        self.assertEqual(second.deviceStates, [(True, b"")])

    def test_outputReadBeforeTheCloseIsDelivered(self) -> None:
        """Device output held to coalesce when the last client leaves goes to those still attached (a console log) before the close."""
        self.line.coalesce(0.05, 0.5)
        consoleLog = self.person("log:/var/log/web1.log", wakes=False)
        self.line.attach(consoleLog)
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        self.device.port.incoming.append(b"Power down.\r\n")
        self.device.doRead()
        self.assertEqual(consoleLog.received, [])
        self.line.detach(person)
        self.assertEqual(consoleLog.received, [b"Power down.\r\n"])
        self.assertTrue(self.ports[0].closed)

    def test_offByReloadOpensAndKeeps(self) -> None:
        """on-demand turned off (a reload) while closed: opened now and kept open when clients leave; on again with nobody there: closed."""
        self.line.setOnDemand(False)
        self.assertEqual((len(self.ports), self.device.up, self.line.onDemand), (1, True, False))
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.assertEqual(self.openPorts(), self.ports)
        self.line.setOnDemand(True)
        self.assertEqual((self.openPorts(), self.line.closedOnDemand), ([], True))

    def test_offByReloadOpenFails(self) -> None:
        """on-demand turned off while the device is not there: the failure is told (and logged once), and its coming back too."""
        view = self.person("watch-all 192.0.2.9:7", wakes=False)
        self.line.attach(view)
        self.outcomes.append(DeviceError(MISSING))
        self.line.setOnDemand(False)
        self.reactor.advance(1.0)
        self.assertEqual(view.deviceStates, [(False, CLOSED), (False, f"\r\n[serialgw: web1 is down: {MISSING}; waiting "
                                                                     "for it]\r\n".encode()),
                                             (True, b"\r\n[serialgw: web1 is back]\r\n")])
        self.assertEqual(len([e for e in self.log.at(LogLevel.warn) if "on demand" in e.get("log_format", "")]), 1)

    def test_lostWhileOpenReopensWhileWanted(self) -> None:
        """The device goes while a client is there: reopened with backoff as any device; the client leaving then stops that."""
        person = self.person("192.0.2.1:1")
        self.line.attach(person)
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)
        self.line.detach(person)
        self.assertEqual((self.reactor.getDelayedCalls(), self.device.resting), ([], True))

    def test_statusPageAndMetrics(self) -> None:
        """The status page says on_demand and 'closed (on demand)', the metrics serialgw_device_closed_on_demand 1 (0 while open), systemd's status line counts it apart from lines down."""
        from serialgw.app.lines import linesStatus
        from serialgw.app.status import MetricsCollector, lineStatus
        from tests.fakes import Lines

        def metric(name: str) -> float:
            families = MetricsCollector(Lines(self.line)).families([self.line])
            return next(f.samples[0].value for f in families if f.name == name)

        status = lineStatus(self.line)
        self.assertEqual((status["up"], status["on_demand"], status["down_reason"]), (False, True, "closed (on demand)"))
        self.assertEqual((metric("serialgw_device_up"), metric("serialgw_device_closed_on_demand")), (0, 1))
        self.assertEqual(linesStatus([self.line]), "1 line(s), 0 up, 0 down, 1 closed (on demand); 0 client(s)")
        self.line.attach(self.person("192.0.2.1:1"))
        status = lineStatus(self.line)
        self.assertEqual((status["up"], status["on_demand"], status["down_reason"]), (True, True, None))
        self.assertEqual((metric("serialgw_device_up"), metric("serialgw_device_closed_on_demand")), (1, 0))
        self.assertEqual(linesStatus([self.line]), "1 line(s), 1 up, 0 down; 1 client(s)")

    def test_kickOldUserKeepsItOpen(self) -> None:
        """kick-old-user at max-clients 1: the newcomer takes the oldest one's place on the device still open, no close and open between (its DTR would drop, its lock go, another program take the port), nothing said of it; a newcomer that never attaches lets it close a turn later."""
        self.line.maxClients, self.line.kickOld = 1, True
        first = self.person("192.0.2.1:1")
        self.line.attach(first)
        newcomer = self.person("192.0.2.2:2")
        self.assertTrue(self.line.makeRoom(newcomer.peer))
        self.line.attach(newcomer)
        self.assertEqual((len(self.ports), self.openPorts(), self.device.up), (1, self.ports, True))
        self.assertEqual(self.line.clients, [newcomer])
        self.assertEqual(newcomer.deviceStates, [])
        self.assertNotIn("web1: device closed (on demand): no client wants it", self.texts())
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        # One admitted and gone before it attached (its connection failed): closed once the turn is over.
        self.assertTrue(self.line.makeRoom("192.0.2.3:3"))
        self.assertEqual(self.openPorts(), self.ports)
        self.reactor.advance(0)
        self.assertEqual((self.openPorts(), self.device.resting), ([], True))

    def test_lockHolderSaidOnce(self) -> None:
        """A client coming and going while another program holds the lock: the holder is logged once, not once a connection (seen live: 300 connections, 300 lines naming it); the status page names it meanwhile."""
        from serialgw.devices.errors import DeviceLocked

        self.outcomes = [DeviceLocked("/dev/ttyUSB0 is locked by process 1234 (picocom)", 1234)] * 5
        for i in range(5):
            client = self.person(f"192.0.2.1:{i}")
            self.line.attach(client)
            self.line.detach(client)
        said = [text for text in self.texts() if "is locked by process 1234" in text and "tries again" in text]
        self.assertEqual(len(said), 1, said)
        self.assertEqual((self.device.resting, self.device.lockedBy, self.ports), (True, 1234, []))

    def test_hungOpenSaidStuckToTheNextClient(self) -> None:
        """An open that hangs, its client gone (the rest lets it run) and another come: that one is told it has not returned after STUCK_AFTER s from its start, as the first would have been (it waited in silence for good, its typing held), and so is each later one at once; the log says it once."""
        from serialgw.devices.reopen import STUCK_AFTER

        hung: Deferred[RecordingPort] = Deferred()
        self.outcomes.append(hung)
        first = self.person("192.0.2.1:1")
        self.line.attach(first)
        self.reactor.advance(10)
        self.line.detach(first)
        second = self.person("192.0.2.1:2")
        self.line.attach(second)
        self.line.clientData(second, b"root\r")
        self.reactor.advance(STUCK_AFTER - 10 - 1)
        self.assertEqual(second.deviceStates, [])
        self.reactor.advance(1)
        stuck = b"\r\n[serialgw: web1 is down: opening the device has not returned in 30 s; waiting for it]\r\n"
        self.assertEqual(second.deviceStates, [(False, stuck)])
        self.assertEqual((self.device.downReason, self.device.unsent), ("opening the device has not returned in 30 s", 5))
        self.line.detach(second)
        for n in range(3):
            later = self.person(f"192.0.2.1:{3 + n}")
            self.line.attach(later)
            self.reactor.advance(0)
            self.assertEqual(later.deviceStates, [(False, stuck)])
            self.line.detach(later)
        said = [text for text in self.texts() if "has not returned in 30 s (a hung adapter" in text]
        self.assertEqual(len(said), 1, said)
        hung.callback(self.newPort())
        self.assertEqual((self.ports[0].closed, self.device.resting, self.reactor.getDelayedCalls()), (True, True, []))

    def texts(self) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.log.events]


class NotOnDemandTests(SynchronousTestCase):
    def test_remoteDeviceStaysOpen(self) -> None:
        """A device that cannot rest (a console elsewhere; here a recording one) is never opened on demand: setOnDemand leaves the line as it was."""
        from tests.fakes import RecordingDevice

        line = Line("l", RecordingDevice())
        line.setOnDemand(True)
        self.assertEqual((line.onDemand, line.closedOnDemand), (False, False))

