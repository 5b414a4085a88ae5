"""
One view of all consoles: the watch-all listener, its prefixed whole lines,
its filter, its bounds, and its configuration.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from serialgw.app import tap
from serialgw.clients.linetap import PARTIAL_HOLD, PARTIAL_LIMIT
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.watchall import WatchAllClient, WatchAllFactory
from serialgw.config.file import loadFile
from serialgw.config.gatewaylisteners import parseWatchAll
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import ConfigError, DeviceSpec, LineConfig, quote
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog
from tests.realio import closeClients, connect, startedPty, startGateway, startProcess, writeTemp

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class WatchAllTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.lines: dict[str, Line] = {}
        for name in ("l0", "l1"):
            self.lines[name] = Line(name, RecordingDevice(), clock=self.clock)

    def tearDown(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def watcher(self, text: str = "tcp:0", patterns: tuple[str, ...] = ("*",),
                **kw: Any) -> tuple[WatchAllClient, StringTransport]:
        factory = WatchAllFactory(parseListener(text), patterns, lambda: self.lines, self.clock, **kw)
        self.factory = factory
        client = factory.buildProtocol(PEER)
        assert client is not None
        transport = StringTransport(peerAddress=PEER)
        client.makeConnection(transport)
        return client, transport

    def test_prefixedWholeLines(self) -> None:
        """Output of two lines interleaved in time comes out as whole lines, each prefixed with its line's name."""
        client, transport = self.watcher()
        l0, l1 = self.lines["l0"], self.lines["l1"]
        l0.deviceDataReceived(b"hel")
        l1.deviceDataReceived(b"wor")
        l0.deviceDataReceived(b"lo\r\nnext")
        l1.deviceDataReceived(b"ld\r\na\r\nb\r\n")
        self.assertEqual(transport.value(), b"l0: hello\r\nl1: world\r\nl1: a\r\nl1: b\r\n")
        transport.clear()
        self.clock.advance(PARTIAL_HOLD)
        self.assertEqual(transport.value(), b"l0: next\r\n")
        client.connectionLost(Failure(Exception("bye")))

    def test_countedOnceAsOneWatcher(self) -> None:
        """A watcher is one client in STATUS= however many lines it watches (it was one a line), and watch-all on the status page."""
        from serialgw.app.lines import linesStatus
        from serialgw.app.status import clientStatus

        lines = list(self.lines.values())
        self.assertEqual(linesStatus(lines), "2 line(s), 2 up, 0 down; 0 client(s)")
        client, _ = self.watcher()
        self.assertEqual(linesStatus(lines), "2 line(s), 2 up, 0 down; 1 client(s)")
        other, _ = self.watcher()
        self.assertEqual(linesStatus(lines), "2 line(s), 2 up, 0 down; 2 client(s)")
        tap = self.lines["l0"].clients[0]
        self.assertEqual(clientStatus(tap), {"peer": "watch-all 127.0.0.1:40000", "user": None, "role": "read-only",
                                             "protocol": "watch-all", "rfc2217": False, "dropped": 0})
        client.connectionLost(Failure(Exception("bye")))
        other.connectionLost(Failure(Exception("bye")))
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(linesStatus(lines), "2 line(s), 2 up, 0 down; 0 client(s)")

    def test_listedByWhoAndBanner(self) -> None:
        """A watcher, nobody on its lines otherwise, is listed where people see who is on (w, the banner), as on the status page."""
        client, _ = self.watcher()
        self.assertEqual([line.who() for line in self.lines.values()],
                         ["watch-all 127.0.0.1:40000 (read-only)"] * 2)
        client.connectionLost(Failure(Exception("bye")))
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(self.lines["l0"].who(), "nobody")

    def test_partialLineBounded(self) -> None:
        """A line longer than PARTIAL_LIMIT without a newline is sent, cut, with a line break added."""
        client, transport = self.watcher()
        self.lines["l0"].deviceDataReceived(b"x" * (PARTIAL_LIMIT + 1))
        self.assertEqual(transport.value(), b"l0: " + b"x" * (PARTIAL_LIMIT + 1) + b"\r\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        client.connectionLost(Failure(Exception("bye")))

    def test_partialCutKeepsAnUnfinishedCharacter(self) -> None:
        """
        A partial line sent for its length keeps back what its end leaves
        unfinished, a UTF-8 character or an escape sequence: it starts the
        next piece, whole (the watcher's terminal drew an e-acute as two bad
        bytes, and ESC [ 3 then 'l0: ' as ESC [ 3 a, cursor up three).
        """
        client, transport = self.watcher()
        l0 = self.lines["l0"]
        l0.deviceDataReceived(b"x" * PARTIAL_LIMIT + b"\xc3")
        self.assertEqual(transport.value(), b"l0: " + b"x" * PARTIAL_LIMIT + b"\r\n")
        transport.clear()
        l0.deviceDataReceived(b"\xa9" + b"y" * PARTIAL_LIMIT + b"\x1b[3")
        self.assertEqual(transport.value(), b"l0: \xc3\xa9" + b"y" * PARTIAL_LIMIT + b"\r\n")
        transport.clear()
        l0.deviceDataReceived(b"1mred\r\n")
        self.assertEqual(transport.value(), b"l0: \x1b[31mred\r\n")
        client.connectionLost(Failure(Exception("bye")))

    def test_filter(self) -> None:
        """Only lines whose names match a pattern are watched."""
        self.lines = {n: Line(n, RecordingDevice(), clock=self.clock) for n in ("rack4-a", "rack4-b", "vm1")}
        client, transport = self.watcher(patterns=("rack4-*",))
        self.assertEqual(sorted(client.taps), ["rack4-a", "rack4-b"])
        self.lines["vm1"].deviceDataReceived(b"vm\n")
        self.lines["rack4-b"].deviceDataReceived(b"b\n")
        self.assertEqual(transport.value(), b"rack4-b: b\n")
        self.assertEqual(self.lines["vm1"].clients, [])
        client.connectionLost(Failure(Exception("bye")))

    def test_readOnlyAndNotAPerson(self) -> None:
        """What a watcher sends reaches no device; it sends no open-string and counts as nobody on the line."""
        l0 = self.lines["l0"]
        l0.openString = (b"hello",)
        client, transport = self.watcher()
        verifyObject(IClient, l0.clients[0])
        client.dataReceived(b"reboot\r")
        self.assertEqual(l0.device.events, [])  # type: ignore[attr-defined]
        self.assertEqual((l0.people, client.ignored), (0, 7))
        client.connectionLost(Failure(Exception("bye")))
        self.assertEqual(l0.clients, [])

    def test_oneLogLineEachWay(self) -> None:
        """A watcher's coming and going is one log line each, not one per line it watches (a reconnecting client cannot multiply the log by the farm's size)."""
        self.lines.update({f"x{i}": Line(f"x{i}", RecordingDevice(), clock=self.clock) for i in range(20)})
        events: list[dict[str, Any]] = []
        observeLog(self, events.append)
        client, transport = self.watcher()
        self.assertEqual(len(client.taps), 22)
        client.connectionLost(Failure(Exception("bye")))
        self.assertEqual([e["log_format"] for e in events],
                         ["watch-all: {peer} watches {count} line(s)", "watch-all: {peer} left"])

    def test_reconnectingLoopBounded(self) -> None:
        """30 watchers that come and go (a client reconnecting in a loop, each connection a new peer): their 59 lines (one leaves before its taps are all put: no "watches" line) count against the listener's budget, 20 logged and the other 39 counted in one line (they were all logged, two a connection, without bound)."""
        from twisted.logger import Logger, formatEvent

        from serialgw.logflood import peerLimiter
        from tests.fakes import LogEvents

        self.patch(peerLimiter, "now", self.clock.seconds)
        self.clock.advance(1000)
        log = LogEvents(self)
        factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: self.lines, self.clock)
        for n in range(30):
            address = IPv4Address("TCP", "192.0.2.1", 40000 + n)
            client = factory.buildProtocol(address)
            assert client is not None
            client.makeConnection(StringTransport(peerAddress=address))
            client.connectionLost(Failure(Exception("bye")))
            self.clock.advance(0)
        said = [formatEvent(e) for e in log.events if "watch-all" in formatEvent(e)]
        self.assertEqual(said[:2], ["watch-all: 192.0.2.1:40000 watches 2 line(s)", "watch-all: 192.0.2.1:40000 left"])
        self.assertEqual(len(said), 20)
        self.clock.advance(60)
        Logger(observer=peerLimiter).info("tick", peer="someone else")
        self.assertEqual([formatEvent(e) for e in log.events if "left out" in e.get("log_format", "")],
                         ["39 log messages about watch-all listener tcp:0 left out in the last minute (over 20 a minute)"])

    def test_reloadCutsCountAgainstTheListener(self) -> None:
        """A reload whose allow= no longer admits 30 watchers (each a new peer: a client may hold max-clients of them) says each cut against the listener's budget as their coming and going: 20 lines of the 90 (30 "watches", 30 "disconnected", 30 "left"), the other 70 counted in one line (the 30 "disconnected" were all logged, past the limiter)."""
        from twisted.logger import Logger, formatEvent

        from serialgw.logflood import peerLimiter
        from tests.fakes import LogEvents

        self.patch(peerLimiter, "now", self.clock.seconds)
        for table in ("peers", "budgets", "listeners"):  # (other tests' budgets, on the wall's clock, left out)
            self.patch(peerLimiter, table, {})
        self.clock.advance(1000)
        log = LogEvents(self)
        factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: self.lines, self.clock)
        watchers = []
        for n in range(30):
            address = IPv4Address("TCP", f"192.0.2.{n + 1}", 40000)
            client = factory.buildProtocol(address)
            assert client is not None
            client.makeConnection(StringTransport(peerAddress=address))
            watchers.append(client)
        factory.retune(parseListener("raw,allow=10.0.0.0/8+tcp:0"), ("*",))
        self.assertEqual([w.transport.disconnecting for w in watchers], [True] * 30)
        for client in watchers:
            client.connectionLost(Failure(Exception("cut")))
        self.clock.advance(0)
        self.assertEqual(factory.clients, [])
        said = [formatEvent(e) for e in log.events if "watch-all" in formatEvent(e)]
        self.assertEqual((len(said), said[0]), (20, "watch-all: 192.0.2.1:40000 watches 2 line(s)"))
        self.clock.advance(60)
        Logger(observer=peerLimiter).info("tick", peer="someone else")
        self.assertEqual([formatEvent(e) for e in log.events if "left out" in e.get("log_format", "")],
                         ["70 log messages about watch-all listener tcp:0 left out in the last minute (over 20 a minute)"])

    def test_noLineMatches(self) -> None:
        """A watcher whose lines filter matches no line is told so (naming the patterns), and the log says so, naming no line."""
        self.lines.update({f"x{i}": Line(f"x{i}", RecordingDevice(), clock=self.clock) for i in range(20)})
        events: list[dict[str, Any]] = []
        observeLog(self, events.append)
        client, transport = self.watcher(patterns=("rack5-*", "rack6-?"))
        self.assertEqual(client.taps, {})
        self.assertEqual(transport.value(), b"[serialgw: watch-all: no line matches rack5-* rack6-? (a line added that does is shown)]\r\n")
        self.assertEqual([(e["log_format"], e.get("patterns")) for e in events],
                         [("watch-all: {peer}: no line matches {patterns}", "rack5-* rack6-?")])
        self.lines["rack5-a"] = Line("rack5-a", RecordingDevice(), clock=self.clock)
        self.factory.lineOpened(self.lines["rack5-a"])
        self.lines["rack5-a"].deviceDataReceived(b"up\r\n")
        self.assertEqual(transport.value().splitlines()[-1], b"rack5-a: up")
        client.connectionLost(Failure(Exception("bye")))

    def test_linesComeAndGo(self) -> None:
        """A line added by a reload is watched at once; a removed one is let go, its partial line sent."""
        client, transport = self.watcher()
        new = Line("l2", RecordingDevice(), clock=self.clock)
        self.lines["l2"] = new
        self.factory.lineOpened(new)
        new.deviceDataReceived(b"up\n")
        new.deviceDataReceived(b"bye")
        self.factory.lineClosed(new)
        self.assertEqual(transport.value(), b"l2: up\nl2: bye\r\n")
        self.assertEqual(new.clients, [])
        client.connectionLost(Failure(Exception("bye")))

    def test_deviceDownNotice(self) -> None:
        """A line's device going down shows as a line of its own."""
        client, transport = self.watcher()
        self.lines["l1"].deviceDataReceived(b"half")
        self.lines["l1"].deviceLost(Failure(OSError(5, "hung up")))
        self.assertEqual(transport.value(), b"l1: half\r\nl1: [serialgw: l1 is down: [Errno 5] hung up; waiting for it]\r\n")
        client.connectionLost(Failure(Exception("bye")))

    def test_dropPolicy(self) -> None:
        """policy=drop: while full, output is held (bounded) and counted; on resume the held output goes from its first whole line."""
        client, transport = self.watcher("raw,outbuf=1024,policy=drop+tcp:0")
        guard = client.guard
        assert guard is not None
        guard.pauseProducing()
        for i in range(100):
            self.lines["l0"].deviceDataReceived(b"line %03d\r\n" % i)
        guard.resumeProducing()
        text = transport.value()
        self.assertTrue(text.startswith(b"[serialgw: watch-all: "), text[:80])
        body = text.split(b"]\r\n", 1)[1]
        self.assertTrue(body.startswith(b"l0: line "), body[:40])
        self.assertTrue(body.endswith(b"l0: line 099\r\n"))
        self.assertLessEqual(len(body), 1024)
        self.assertGreater(guard.dropped, 0)
        client.connectionLost(Failure(Exception("bye")))

    def test_fullThenCaughtUpLosesNothing(self) -> None:
        """policy=drop: output held while full and never trimmed is delivered whole on resume, its first line included."""
        client, transport = self.watcher("raw,outbuf=1024,policy=drop+tcp:0")
        guard = client.guard
        assert guard is not None
        guard.pauseProducing()
        self.lines["l0"].deviceDataReceived(b"first\r\n")
        self.lines["l1"].deviceDataReceived(b"second\r\n")
        guard.resumeProducing()
        self.assertEqual(transport.value(), b"l0: first\r\nl1: second\r\n")
        self.assertEqual(guard.dropped, 0)
        client.connectionLost(Failure(Exception("bye")))

    def test_blockPolicyLineAdded(self) -> None:
        """policy=block: a line put on while the watcher is full stops reading too (its output went on into the watcher's buffer, unbounded), and reads again with the others."""
        client, transport = self.watcher("raw,outbuf=1024,policy=block+tcp:0")
        guard = client.guard
        assert guard is not None
        guard.pauseProducing()
        new = Line("l2", RecordingDevice(), clock=self.clock)
        self.lines["l2"] = new
        self.factory.lineOpened(new)
        self.assertEqual([self.lines[n].device.events for n in ("l0", "l1", "l2")],  # type: ignore[attr-defined]
                         [[("pause", None)]] * 3)
        guard.resumeProducing()
        self.assertEqual([self.lines[n].device.events for n in ("l0", "l1", "l2")],  # type: ignore[attr-defined]
                         [[("pause", None), ("resume", None)]] * 3)
        guard.pauseProducing()
        client.connectionLost(Failure(Exception("bye")))
        self.clock.advance(0)
        self.assertEqual([self.lines[n].device.events[-1] for n in ("l0", "l1", "l2")],  # type: ignore[attr-defined]
                         [("resume", None)] * 3)
        self.assertEqual([self.lines[n].clients for n in ("l0", "l1", "l2")], [[], [], []])

    def test_reloadedPolicyReachesWatchers(self) -> None:
        """A reload making the watch-all listener policy=drop lets go of the lines a stuck policy=block watcher held (their devices read again), as for a line's clients."""
        client, transport = self.watcher("raw,outbuf=1024,policy=block+tcp:0")
        guard = client.guard
        assert guard is not None
        guard.pauseProducing()
        self.assertEqual([self.lines[n].device.events for n in ("l0", "l1")],  # type: ignore[attr-defined]
                         [[("pause", None)]] * 2)
        self.factory.retune(parseListener("raw,outbuf=2048,policy=drop+tcp:0"), ("*",))
        self.clock.advance(0)
        self.assertEqual([self.lines[n].device.events for n in ("l0", "l1")],  # type: ignore[attr-defined]
                         [[("pause", None), ("resume", None)]] * 2)
        self.assertEqual((guard.policy, guard.bound), ("drop", 2048))
        client.connectionLost(Failure(Exception("bye")))
        self.clock.advance(0)

    def test_reloadNarrowingTakesTapsOffInTurns(self) -> None:
        """A reload narrowing the lines filter takes a watcher off the lines it no longer matches TAPS_PER_TURN a turn, as leaving does (all at once held every line: 2000 taps of each watcher in one turn)."""
        from serialgw.clients.watchall import TAPS_PER_TURN

        for i in range(2 * TAPS_PER_TURN):
            self.lines[f"x{i}"] = Line(f"x{i}", RecordingDevice(), clock=self.clock)
        client, transport = self.watcher()
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(len(client.taps), 2 + 2 * TAPS_PER_TURN)
        self.factory.retune(self.factory.spec, ("l*",))
        self.assertGreaterEqual(len(client.taps), 2 + TAPS_PER_TURN)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(sorted(client.taps), ["l0", "l1"])
        client.connectionLost(Failure(Exception("bye")))
        self.clock.advance(CLOSE_GRACE)

    def test_bounds(self) -> None:
        """At most maxClients watchers; allow= refuses other addresses."""
        client, _ = self.watcher(maxClients=1)
        self.assertIsNone(self.factory.buildProtocol(PEER))
        client.connectionLost(Failure(Exception("bye")))
        factory = WatchAllFactory(parseListener("raw,allow=10.0.0.0/8+tcp:0"), ("*",), lambda: self.lines)
        self.assertIsNone(factory.buildProtocol(PEER))

    def test_idle(self) -> None:
        """idle=: a watcher that sees no output for that long is disconnected."""
        client, transport = self.watcher("raw,idle=30+tcp:0")
        self.clock.advance(20)
        self.lines["l0"].deviceDataReceived(b"x\n")
        self.clock.advance(20)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(10)
        self.assertTrue(transport.disconnecting)
        client.connectionLost(Failure(Exception("bye")))

    def test_idleNonReaderCut(self) -> None:
        """idle=: a watcher that does not take what waits for it is cut CLOSE_GRACE s later (closing waited for ever), and sees no more output meanwhile."""
        from serialgw.clients.sessionend import CLOSE_GRACE

        client, transport = self.watcher("raw,idle=30+tcp:0")
        self.clock.advance(30)
        self.assertEqual((transport.disconnecting, transport.disconnected), (True, False))
        transport.clear()
        self.lines["l0"].deviceDataReceived(b"secret\n")
        self.assertEqual(transport.value(), b"")
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)
        client.connectionLost(Failure(Exception("bye")))


class ConfigTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        return writeTemp(self, text)

    def test_table(self) -> None:
        """[watch-all] with listen and lines; lines left out: every line."""
        base = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
        spec = loadFile(self.write(base + '[watch-all]\nlisten = ["tcp:4400:interface=127.0.0.1", "raw,policy=disconnect+4401"]\n'
                                   'lines = ["rack4-*", "vm?"]\n')).watchAll
        assert spec is not None
        self.assertEqual([(s.endpoint, s.policy) for s in spec.listeners],
                         [("tcp:4400:interface=127.0.0.1", "drop"), ("tcp:4401", "disconnect")])
        self.assertEqual(spec.lines, ("rack4-*", "vm?"))
        spec = loadFile(self.write(base + '[watch-all]\nlisten = "4400"\n')).watchAll
        assert spec is not None
        self.assertEqual(spec.lines, ("*",))
        self.assertIsNone(loadFile(self.write(base)).watchAll)

    def test_errors(self) -> None:
        """Unknown keys, a missing listen, a dial-out or a bad pattern: errors naming the file's line and key."""
        base = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n[watch-all]\n'
        for body, message in [
            ('listen = "4400"\nfilter = "x"\n', ":6: unknown key 'filter' in [watch-all]"),
            ('lines = ["*"]\n', ":4: [watch-all] listen: missing"),
            ('listen = "tcp:10.0.0.1:4444"\n', ":5: [watch-all] listen: watch-all listener 'tcp:10.0.0.1:4444': expected a server endpoint"),
            ('listen = "4400"\nlines = [""]\n', ":6: [watch-all] lines: watch-all lines: expected shell patterns"),
            ('listen = "4400"\nlines = [true]\n', ":6: [watch-all] lines: expected a string or a list of them"),
        ]:
            path = self.write(base + body)
            self.assertIn(path + message, str(self.assertRaises(ConfigError, loadFile, path)))

    def test_options(self) -> None:
        """--watch-all, repeatable, for a single line too."""
        options = tap.Options()
        options.exitOnError = False
        options.parseOptions(["--device", "/dev/ttyS0", "--watch-all", "tcp:4400:interface=127.0.0.1",
                              "--watch-all", "4401"])
        self.assertEqual([s.endpoint for s in options["watchAllSpec"].listeners],
                         ["tcp:4400:interface=127.0.0.1", "tcp:4401"])
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--watch-all", "file:/tmp/x"])
        self.assertIn("watch-all listener 'file:/tmp/x'", str(e))

    def test_parse(self) -> None:
        """parseWatchAll: every pattern kept, none means all."""
        self.assertEqual(parseWatchAll(["4400"], []).lines, ("*",))

    def test_patternWithControlCharactersRefused(self) -> None:
        """A [watch-all] lines pattern holding a control character (a newline, an escape sequence) is refused naming it: it can match no line name, and it reached the log and each watcher's notice as it was."""
        for pattern, written in (("rack4-*\n", "rack4-*\\n"), ("\x1b[2Jrack*", "\\u001b[2Jrack*"), ("a\tb", "a\\tb")):
            path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4444"\n[watch-all]\nlisten = "4400"\n'
                                   f'lines = ["ok-*", "{written}"]\n')
            e = self.assertRaises(ConfigError, loadFile, path)
            self.assertTrue(str(e).endswith(f"[watch-all] lines: pattern {quote(pattern)} holds a control character: "
                                            "it can match no line name (letters, digits, '.', '_' and '-')"), str(e))
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4444"\n[watch-all]\nlisten = "4400"\nlines = ["rack[0-9]-?"]\n')
        watchAll = loadFile(path).watchAll
        assert watchAll is not None
        self.assertEqual(watchAll.lines, ("rack[0-9]-?",))

    def test_personOptionsRefused(self) -> None:
        """escape=, mon:, banner, replay, notices and no-rfc2217 on a watch-all listener (a plain stream): refused naming the listener, not ignored."""
        for text, option in (("telnet,escape=^]+4400", "escape="), ("mon:tcp::4400,server,nowait", "escape="),
                             ("raw,banner+4400", "banner"), ("raw,replay+4400", "replay"),
                             ("raw,no-notices+4400", "no-notices"), ("telnet,no-rfc2217+4400", "no-rfc2217")):
            e = self.assertRaises(ConfigError, parseWatchAll, [text], [])
            self.assertEqual(str(e), f"watch-all listener {text!r}: {option} does not apply there (a plain stream "
                                     "of every line's output: no telnet, escape menu, banner, replay or notices)")
        self.assertEqual(parseWatchAll(["raw,allow=10.0.0.0/8,outbuf=65536,policy=disconnect,idle=60+4400"], []).lines,
                         ("*",))


class RealWatchAllTests(TestCase):
    timeout = 60

    async def test_twoLinesAtOnce(self) -> None:
        """Two pty devices written at once, lines cut across writes: the watcher gets every line whole, prefixed, in order per line."""
        ptys = [startedPty(self), startedPty(self)]
        configs = [LineConfig(f"l{i}", DeviceSpec("tty", pty.slaveName), lock=False,
                              listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))
                   for i, pty in enumerate(ptys)]
        service = startGateway(self, *configs, watchAll=parseWatchAll(["tcp:0:interface=127.0.0.1"], ["l*"]))
        watcher = await connect(service.watchAllPorts[0].getHost().port)
        # Attached when the first line shows: one marker line from each.
        for i, pty in enumerate(ptys):
            pty.write(b"start %d\r\n" % i)
            await watcher.received.contains(b"l%d: start %d\r\n" % (i, i))
        count = 300
        texts = [b"".join(b"line %d of console %d: %s\r\n" % (n, i, b"=" * (n % 37)) for n in range(count))
                 for i in range(2)]
        # Written in pieces of 7 bytes, alternating, with a turn of the
        # reactor every 20 pieces: the gateway reads lines cut anywhere.
        for piece, start in enumerate(range(0, max(len(t) for t in texts), 7)):
            for pty, text in zip(ptys, texts, strict=True):
                if start < len(text):
                    pty.write(text[start:start + 7])
            if piece % 20 == 0:
                await task.deferLater(reactor, 0, lambda: None)
        data = await watcher.received.when(lambda d: d.count(b"\n") >= 2 + 2 * count)
        lines = data.split(b"\r\n")[2:-1]
        for i in range(2):
            prefix = b"l%d: " % i
            mine = [line[len(prefix):] for line in lines if line.startswith(prefix)]
            self.assertEqual(mine, texts[i].split(b"\r\n")[:-1])
        self.assertEqual(len(lines), 2 * count)
        await closeClients(watcher)

    def test_filterMatchingNothing(self) -> None:
        """A lines filter that matches no line (a typo) is warned about at start, naming the patterns."""
        pty = startedPty(self)
        events: list[dict[str, Any]] = []
        observeLog(self, events.append)
        config = LineConfig("vm1", DeviceSpec("tty", pty.slaveName), lock=False,
                            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))
        startGateway(self, config, watchAll=parseWatchAll(["tcp:0:interface=127.0.0.1"], ["rack5-*"]))
        warned = [e for e in events if "match no line" in str(e.get("log_format", ""))]
        # The names: a few, then a count (it listed every line: 2000 made a line of 16 KB).
        self.assertEqual([(e["log_level"].name, e["patterns"], e["names"]) for e in warned], [("warn", "rack5-*", "['vm1']")])

    async def test_reloadAddsAndRemoves(self) -> None:
        """A line a reload adds is watched at once; one it removes is let go by the watcher."""
        ptys = [startedPty(self), startedPty(self)]
        configs = [LineConfig(f"l{i}", DeviceSpec("tty", pty.slaveName), lock=False,
                              listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))
                   for i, pty in enumerate(ptys)]
        service = startGateway(self, *configs[:1], watchAll=parseWatchAll(["tcp:0:interface=127.0.0.1"], []))
        watcher = await connect(service.watchAllPorts[0].getHost().port)
        ptys[0].write(b"first\r\n")
        await watcher.received.contains(b"l0: first\r\n")
        await service.reload(configs[1:])
        ptys[1].write(b"second\r\n")
        await watcher.received.contains(b"l1: second\r\n")
        (client,) = service.watchers[0].clients
        self.assertEqual(sorted(client.taps), ["l1"])
        await closeClients(watcher)

    async def test_reloadNarrowsWhatWatchersSee(self) -> None:
        """A reload's [watch-all] lines filter and allow= reach the watchers already there: taken off a line the filter no longer matches (its partial line sent), put on one it now does; told and cut when allow= no longer admits them (the listener stays where it is until a restart)."""
        from serialgw.app.process import TwistdGatewayService

        ptys = [startedPty(self), startedPty(self)]
        configs = [LineConfig(f"l{i}", DeviceSpec("tty", pty.slaveName), lock=False,
                              listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))
                   for i, pty in enumerate(ptys)]
        first = parseWatchAll(["raw+tcp:0:interface=127.0.0.1"], ["l0"])
        service = TwistdGatewayService(configs, watchAll=first)
        service.watchAllInFile = first
        service.startService()
        self.addCleanup(service.stopService)
        watcher = await connect(service.watchAllPorts[0].getHost().port)
        ptys[0].write(b"first\r\nhalf")
        await watcher.received.contains(b"l0: first\r\n")
        await service._applyFile((configs, None, parseWatchAll(["raw+tcp:0:interface=127.0.0.1"], ["l1"])))
        await watcher.received.contains(b"l0: half\r\n")
        ptys[0].write(b"hidden\r\n")
        ptys[1].write(b"second\r\n")
        await watcher.received.contains(b"l1: second\r\n")
        self.assertNotIn(b"hidden", watcher.received.data)
        (client,) = service.watchers[0].clients
        self.assertEqual(sorted(client.taps), ["l1"])
        await service._applyFile((configs, None, parseWatchAll(["raw,allow=10.0.0.0/8+tcp:0:interface=127.0.0.1"], ["l1"])))
        await watcher.closed
        self.assertIn(b"[serialgw: watch-all: your address is no longer allowed (a reload changed [watch-all]): "
                      b"disconnected]\r\n", watcher.received.data)
        self.assertEqual((service.watchers[0].clients, service.lines["l1"].clients), ([], []))

    async def test_reloadRemovingWatchAllCutsItsWatchers(self) -> None:
        """A reload whose file has no [watch-all] left: its watchers are told and cut, and its listener takes nobody until a restart closes it (they watched on, and more could connect)."""
        from serialgw.app.process import TwistdGatewayService

        pty = startedPty(self)
        config = LineConfig("l0", DeviceSpec("tty", pty.slaveName), lock=False,
                            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))
        spec = parseWatchAll(["raw+tcp:0:interface=127.0.0.1"], [])
        service = TwistdGatewayService([config], watchAll=spec)
        service.watchAllInFile = spec
        service.startService()
        self.addCleanup(service.stopService)
        port = service.watchAllPorts[0].getHost().port
        watcher = await connect(port)
        pty.write(b"first\r\n")
        await watcher.received.contains(b"l0: first\r\n")
        await service._applyFile(([config], None, None))
        await watcher.closed
        self.assertIn(b"[serialgw: watch-all: this view was removed from the configuration: disconnected]\r\n",
                      watcher.received.data)
        late = await connect(port)
        await late.closed
        self.assertEqual((late.received.data, service.watchers[0].clients, service.lines["l0"].clients), (b"", [], []))


class TwistdWatchAllTests(TestCase):
    timeout = 60

    async def test_twistdWatchAll(self) -> None:
        """twistd serialgw --watch-all: the watcher sees the line's output prefixed; the tty's lock is there while it runs and gone after."""
        import os
        import re

        from serialgw.devices import uucplock
        from tests.realio import gatewayArgv

        pty = startedPty(self)
        lockDir = os.path.abspath(self.mktemp())
        os.mkdir(lockDir)
        proc = startProcess(self, gatewayArgv("--device", pty.slaveName, "--name", "rack4-a", "--lock-dir", lockDir,
                                              "--port", "tcp:0:interface=127.0.0.1",
                                              "--watch-all", "tcp:0:interface=127.0.0.1"))
        pattern = re.compile(rb"watch-all listener ready on 127\.0\.0\.1:(\d+)")
        data = await proc.output.when(lambda d: pattern.search(d) is not None)
        match = pattern.search(data)
        assert match is not None
        lock = uucplock.lockPath(pty.slaveName, lockDir)
        self.assertEqual(uucplock.readPid(lock), proc.transport.pid)  # type: ignore[union-attr]
        watcher = await connect(int(match.group(1)))
        await proc.output.contains(b"watch-all: 127.0.0.1:")
        pty.write(b"Booting\r\nlogin: ")
        self.assertEqual(await watcher.received.length(len(b"rack4-a: Booting\r\nrack4-a: login: \r\n")),
                         b"rack4-a: Booting\r\nrack4-a: login: \r\n")
        await closeClients(watcher)
        # SIGTERM: twistd stops the service (the process ends by the signal).
        await proc.stop()
        self.assertEqual(os.listdir(lockDir), [])
