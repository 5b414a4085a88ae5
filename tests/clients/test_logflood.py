"""
Logs a client cannot flood: ignored and malformed input counted into at
most one line a minute per client, every event about a client limited per
minute; under floods of every kind the log grows by less than 2 bytes per
byte received (counted as twistd renders it).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEventAsClassicLogText
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import IgnoredInput, ListenerKey, Peer, PeerLimiter
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import BRK, IAC, NOP, SB, SE, WILL
from tests.fakes import RecordingDevice, observeLog
from tests.telnetpeer import sb


class IgnoredInputTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        observeLog(self, self.events.append)

    def lines(self) -> list[str]:
        texts = [formatEventAsClassicLogText(e) for e in self.events if e.get("log_namespace") == "serialgw.logflood"]
        assert None not in texts
        return [t.split("] ", 1)[1].rstrip("\n") for t in texts if t is not None]

    def test_oneLineAMinute(self) -> None:
        """The first is said at once; the next 1199 in that minute and one after it make one line; the rest at the end."""
        clock = Clock()
        tally = IgnoredInput(lambda: ("ttyS0", "10.0.0.7:5000"), clock)
        for _ in range(1200):
            tally.add("ignored telnet command")
            clock.advance(0.04)
        self.assertEqual(len(self.lines()), 1)
        clock.advance(12.1)
        tally.add("ignored telnet command")
        tally.add("malformed subnegotiation")
        tally.flush()
        tally.flush()
        self.assertEqual(self.lines(), [
            "ttyS0: 1 ignored telnet command from 10.0.0.7:5000",
            "ttyS0: 1200 ignored telnet commands from 10.0.0.7:5000",
            "ttyS0: 1 malformed subnegotiation from 10.0.0.7:5000",
        ])
        self.assertEqual(tally.total, 1202)

    def test_pluralsOfEveryKind(self) -> None:
        """Each kind of ignored input the gateway counts reads as English in the plural (it was 'subnegotiation of an option not in effects')."""
        tally = IgnoredInput(lambda: ("a", "p"))
        for kind in ("subnegotiation of an option not in effect", "option turned on and off too often",
                     "urgent mark without a DM", "Synch discarding data", "Synch-discarded byte", "malformed PURGE-DATA"):
            tally.add(kind, 2)
        tally.flush()
        self.assertEqual(self.lines(), [
            "a: 2 subnegotiations of an option not in effect from p",
            "a: 2 options turned on and off too often, 2 urgent marks without a DM, 2 Synchs discarding data, "
            "2 Synch-discarded bytes, 2 malformed PURGE-DATAs from p"])


class PeerLimiterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.out: list[dict[str, Any]] = []
        self.limiter = PeerLimiter(self.out.append, burst=20, now=self.clock.seconds)

    def event(self, peer: Any, text: str = "x") -> None:
        self.limiter({"log_format": "{peer} " + text, "peer": peer, "log_level": LogLevel.info})

    def test_burstThenSummary(self) -> None:
        """20 events a minute about a peer pass; the other 80 are one line when its minute is over; events about nobody pass."""
        for _ in range(100):
            self.event("10.0.0.7:5000")
        self.limiter({"log_format": "device up", "log_level": LogLevel.info})
        self.assertEqual(len(self.out), 21)
        self.clock.advance(60)
        self.event("10.0.0.7:5000", "again")
        self.assertEqual([e["log_format"] for e in self.out[21:]], [
            "{count} log messages about {peer} left out in the last minute (over {burst} a minute)",
            "{peer} again",
        ])
        self.assertEqual((self.out[21]["count"], self.out[21]["peer"]), (80, "10.0.0.7:5000"))

    def test_summarySaidLateSaysWhichMinute(self) -> None:
        """A peer's minute summed up only by an event long after it (a quiet gateway) says which minute, not 'the last minute' (seen: 1359 left out at 11:25 said at 12:02 so); within the next minute it is the last one, as before."""
        self.clock.advance(1_800_000_000)  # 2027-01-15T08:00:00Z
        for _ in range(30):
            self.event("pty:/tmp/ttyV0")
        self.clock.advance(37 * 60)
        self.limiter({"log_format": "device up", "log_level": LogLevel.info})
        summary = self.out[20]
        self.assertEqual((summary["log_format"], summary["count"], summary["peer"], summary.get("began")),
                         ("{count} log messages about {peer} left out in the minute from {began} (over {burst} a minute)",
                          10, "pty:/tmp/ttyV0", "2027-01-15T08:00:00Z"))
        for _ in range(30):
            self.event("pty:/tmp/ttyV0")
        self.clock.advance(119)
        self.limiter({"log_format": "device down", "log_level": LogLevel.info})
        self.assertEqual((self.out[-2]["log_format"], self.out[-2]["count"]),
                         ("{count} log messages about {peer} left out in the last minute (over {burst} a minute)", 10))

    def test_summaryOfAClientThatLeft(self) -> None:
        """A connection that flooded and left is summed up once its minute is over, by the next event about anyone."""
        gone = Peer("10.0.0.7:5000")
        for _ in range(50):
            self.event(gone)
        self.clock.advance(59)
        self.event("10.0.0.8:6000", "other")
        self.limiter({"log_format": "device up", "log_level": LogLevel.info})
        self.assertEqual(len(self.out), 22)
        self.clock.advance(1)
        self.limiter({"log_format": "device down", "log_level": LogLevel.info})
        self.assertEqual([(e.get("count"), e.get("peer")) for e in self.out[22:]], [(30, "10.0.0.7:5000"), (None, None)])
        self.assertEqual(list(self.limiter.peers.values())[0].peer, "10.0.0.8:6000")

    def test_connectionsHaveTheirOwnBudget(self) -> None:
        """Two connections with the same name (one unix socket) each have their own budget."""
        first, second = Peer("unix:/run/x.sock"), Peer("unix:/run/x.sock")
        for _ in range(30):
            self.event(first)
        self.event(second)
        self.assertEqual(len(self.out), 21)

    def test_boundedMemory(self) -> None:
        """10000 distinct peers in a minute: at most keep (256) remembered; those let go with events left out are said."""
        for i in range(10000):
            peer = Peer(f"10.0.{i // 256}.{i % 256}:1")
            for _ in range(21):
                self.event(peer)
        self.assertLessEqual(len(self.limiter.peers), 256)
        summaries = [e for e in self.out if e.get("count") == 1]
        self.assertEqual(len(summaries), 10000 - len(self.limiter.peers))


    def test_listenerBudgetKeptThroughAFlood(self) -> None:
        """
        A listener's budget (its refusals, named by a ListenerKey) is not
        pushed out by a flood of connections each saying one thing as a new
        peer: it was let go with the oldest of 256, begun anew, and 20 more
        of its refusals passed for every 256 connections (live: 117 'at the
        prompt already' lines from one by-name listener in 15 s).  The
        listeners' keys are ListenerKeys.
        """
        listener = ListenerKey("by-name listener raw+7301")
        for i in range(2000):
            self.event(Peer(f"127.0.0.1:{40000 + i}"))
            self.event(listener, "refused")
        self.assertEqual(len([e for e in self.out if e["log_format"].endswith("refused")]), 20)
        self.clock.advance(60)
        self.event(Peer("127.0.0.1:1"))
        self.assertEqual([e["count"] for e in self.out if e.get("peer") == listener and "count" in e], [1980])
        from serialgw.clients.byname import ByNameFactory
        from serialgw.clients.factory import LineFactory

        line = Line("ttyS0", RecordingDevice(), clock=self.clock)
        keys = [LineFactory(line, parseListener("raw+4444")).refusalKey,
                ByNameFactory(parseListener("raw+4445"), ("*",), dict, self.clock).refusalKey]
        self.assertEqual([type(key) for key in keys], [ListenerKey, ListenerKey])


class FloodTests(SynchronousTestCase):
    """Floods of every kind, each from a new client: the log grows by less than 2 bytes per byte received."""

    def setUp(self) -> None:
        self.logged = 0
        self.clock = Clock()
        self.device = RecordingDevice(SerialSettings(9600))
        self.line = Line("ttyS0", self.device, clock=self.clock)

        def count(event: dict[str, Any]) -> None:
            text = formatEventAsClassicLogText(event)
            self.logged += len((text or "").encode("utf-8"))

        observeLog(self, count)

    def flood(self, role: Role, unit: bytes, size: int = 64 * 1024, prefix: bytes = b"",
              listener: str = "telnet+4444", each: Callable[[], None] = lambda: None) -> tuple[int, int]:
        """Send C{unit} repeated to C{size} bytes (in 4 KiB reads) from a new client; return (bytes sent, log bytes)."""
        client = TelnetClient(self.line, role, listener=parseListener(listener), clock=self.clock)
        transport = StringTransport()
        client.makeConnection(transport)
        client.dataReceived(prefix)
        before = self.logged
        sent = len(prefix)
        chunk = unit * max(1, 4096 // len(unit))
        while sent < size:
            client.dataReceived(chunk)
            sent += len(chunk)
            transport.clear()
            each()
            self.clock.advance(0.01)
        client.connectionLost()
        return sent, self.logged - before

    def test_floods(self) -> None:
        """IAC NOP, malformed and oversized subnegotiations, nonsense COM-PORT-OPTIONs, settings, breaks, take/give write."""
        rfc2217 = bytes([IAC, WILL, CPO])
        floods: dict[str, tuple[Role, bytes, bytes, str]] = {
            "IAC NOP, read-only": (Role.READONLY, bytes([IAC, NOP]), b"", "telnet+4444"),
            "IAC NOP, writer": (Role.WRITER, bytes([IAC, NOP]), b"", "telnet+4444"),
            "SB without SE": (Role.READONLY, bytes([IAC, SB, CPO, 1, 0, IAC, NOP]), b"", "telnet+4444"),
            "oversized SB": (Role.READONLY, bytes([IAC, SB, CPO]) + b"\x01" * 1100 + bytes([IAC, SE]), b"", "telnet+4444"),
            "unknown COM-PORT-OPTION": (Role.WRITER, sb(99, 1) + sb() + sb(1, 0, 1) + sb(5, 1, 2) + sb(5, 77) + sb(12, 7),
                                        rfc2217, "telnet+4444"),
            "settings, read-only": (Role.READONLY, sb(1, 0, 1, 0xC2, 0) + sb(2, 7) + sb(5, 9) + sb(12, 3) + sb(10, 0x1C),
                                    rfc2217, "telnet+4444"),
            "settings, writer": (Role.WRITER, sb(1, 0, 1, 0xC2, 0) + sb(1, 0, 0, 0x25, 0x80) + sb(5, 2) + sb(5, 1),
                                 rfc2217, "telnet+4444"),
            "signatures": (Role.WRITER, sb(0, *b"x" * 200), rfc2217, "telnet+4444"),
            "IAC BRK, read-only": (Role.READONLY, bytes([IAC, BRK]), b"", "telnet+4444"),
            "IAC BRK, writer": (Role.WRITER, bytes([IAC, BRK]), b"", "telnet+4444"),
            "take and give write": (Role.WRITER, b"\x1dt\x1do", b"", "telnet,escape=^]+4444"),
        }
        figures = {}
        for name, (role, unit, prefix, listener) in floods.items():
            self.device.breaking = False
            sent, logged = self.flood(role, unit, prefix=prefix, listener=listener,
                                      each=lambda: setattr(self.device, "breaking", False))
            figures[name] = (sent, logged)
        ratios = {name: round(logged / sent, 4) for name, (sent, logged) in figures.items()}
        self.assertEqual({name: ratio for name, ratio in ratios.items() if ratio >= 2}, {}, ratios)
        # The worst is far below the bound: a few lines a client, whatever it sends.
        self.assertLess(max(logged for _, logged in figures.values()), 16 * 1024, figures)


class ConnectFloodTests(SynchronousTestCase):
    def test_refusalsLimitedPerListener(self) -> None:
        """1000 connections refused by allow= (each from a new port): 20 log lines, all counted; another listener has its own budget."""
        from twisted.internet.address import IPv4Address
        from twisted.logger import capturedLogs

        from serialgw.clients.factory import LineFactory

        line = Line("ttyS0", RecordingDevice(), clock=Clock())
        factories = [LineFactory(line, parseListener(f"raw,allow=10.0.0.0/8+{port}")) for port in (4444, 4445)]
        with capturedLogs() as events:
            for port in range(1000):
                self.assertIsNone(factories[0].buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000 + port)))
            self.assertIsNone(factories[1].buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000)))
        refused = [e for e in events if "refused" in e.get("log_format", "")]
        self.assertEqual(len(refused), 21)
        self.assertEqual([e["address"] for e in refused],
                         [f"127.0.0.1:{40000 + port}" for port in range(20)] + ["127.0.0.1:50000"])
        self.assertEqual([f.refused for f in factories], [1000, 1])

    def test_comingsLimitedPerListener(self) -> None:
        """1000 connections taken by a listener that come and go (a client reconnecting in a loop; over TLS, 318 a second from one process): 20 lines about their coming and going in the minute, the rest counted in one line, not a line or two each; another listener has its own budget."""
        from twisted.internet.address import IPv4Address
        from twisted.internet.error import ConnectionDone
        from twisted.logger import capturedLogs
        from twisted.python.failure import Failure

        from serialgw.clients.factory import LineFactory

        events: list[dict[str, Any]] = []
        clock = Clock()
        limiter = PeerLimiter(observer=events.append, now=clock.seconds)
        from twisted.logger import Logger

        import serialgw.line.members as members

        self.patch(members, "log", Logger(namespace="serialgw.line.hub", observer=limiter))
        line = Line("ttyS0", RecordingDevice(), clock=clock)
        factories = [LineFactory(line, parseListener(f"raw+{port}"), clock=clock) for port in (4444, 4445)]
        with capturedLogs():
            for n in range(1001):
                client = factories[n // 1000].buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000 + n))
                client.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000 + n)))
                client.connectionLost(Failure(ConnectionDone()))
            clock.advance(60)
            limiter({"log_format": "tick", "log_level": LogLevel.info})
        said = [e["log_format"] for e in events if e.get("log_namespace") == "serialgw.line.hub"]
        self.assertLessEqual(len(said), 21)
        summaries = [e for e in events if "left out" in e.get("log_format", "")]
        self.assertEqual(len(summaries), 1)
        self.assertGreaterEqual(summaries[0]["count"], 1000 - 20)

    def test_logBudgetIsDeclaredByEveryClient(self) -> None:
        """IClient declares logBudget, the line's and a session's log calls read it as such (no getattr probe): every client class of serialgw has it, None unless given; a listener's client has its listener's key."""
        from serialgw.clients.factory import LineFactory
        from serialgw.interfaces import IClient
        from tests.clients.test_lefttyping import clientClasses

        self.assertIn("logBudget", IClient)
        classes = clientClasses()
        self.assertEqual({cls.__name__: getattr(cls, "logBudget", "none") for cls in classes},
                         {cls.__name__: None for cls in classes})
        factory = LineFactory(Line("ttyS0", RecordingDevice(), clock=Clock()), parseListener("raw+4444"))
        self.assertEqual(factory.buildProtocol(None).logBudget, "ttyS0 listener raw+4444")
