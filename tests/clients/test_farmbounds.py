"""
What one client of a farm can make the reactor do in one turn, bounded:
escape-menu commands pasted by the thousand, RFC 2217 settings changes,
the log lines a device's refusals make.  Work is counted (answers, device
calls, log events), never timed.
"""

from __future__ import annotations

from typing import Any, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escapecommands import lastLines
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import RecordingDevice, oneTurn
from tests.telnetpeer import AGREE, WONT_COM_PORT

# The escape menu's keys a read (escape.KEYS_PER_TURN), as the README says.
KEYS_PER_TURN = 32
WHO = b"\r\n[serialgw: rack4: 192.0.2.9:1000 (writer)]\r\n"


class EscapeTurnTests(SynchronousTestCase):
    """A paste of escape commands is handled KEYS_PER_TURN keys a turn, the client not read in between."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice(SerialSettings(115200))
        self.line = Line("rack4", self.device, clock=self.clock)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))

    def raw(self) -> RawClient:
        client = RawClient(self.line, Role.WRITER, listener=parseListener("raw,escape=^]+4444"))
        client.makeConnection(self.transport)
        self.transport.clear()
        return client

    def telnet(self) -> TelnetClient:
        client = TelnetClient(self.line, Role.WRITER, listener=parseListener("telnet,escape=^]+4444"))
        client.makeConnection(self.transport)
        client.dataReceived(AGREE + WONT_COM_PORT)
        self.transport.clear()
        return client

    def turns(self, commands: int) -> list[int]:
        """Answers to ^] w after the read, then after each later turn, until the client is read again."""
        counts = [self.transport.value().count(WHO)]
        while self.transport.producerState == "paused":
            oneTurn(self.clock)
            counts.append(self.transport.value().count(WHO))
        self.assertEqual(counts[-1], commands)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        return counts

    def test_rawPasteOfCommands(self) -> None:
        """100 ^] w in one read of a raw client: 32 answered a turn, the rest on later turns in order, data after them last."""
        self.raw().dataReceived(b"\x1dw" * 100 + b"ls\r")
        per = KEYS_PER_TURN
        self.assertEqual(self.turns(100), [per, 2 * per, 3 * per, 100])
        self.assertEqual(self.device.events, [("write", b"ls\r")])

    def test_telnetCommandsBetween(self) -> None:
        """Telnet commands between the escape commands (IAC NOP) do not give each piece of a read a budget of its own."""
        self.telnet().dataReceived(b"\x1dw\xff\xf1" * 40)
        self.assertEqual(self.turns(40), [32, 40])

    def test_baudChangesPerTurn(self) -> None:
        """^] B N Enter pasted 1000 times: at most 32 keys of them a turn reach the device (4 rates: B, 4 digits, Enter, and the escape key that follows it, 7 keys each), not 1000 in one read."""
        client = self.telnet()
        client.dataReceived(b"\x1dB9600\r\x1dB1200\r" * 500)
        applied = [e for e in self.device.events if e[0] == "apply"]
        self.assertEqual(len(applied), 4)
        while self.transport.producerState == "paused":
            oneTurn(self.clock)
        self.assertEqual(len([e for e in self.device.events if e[0] == "apply"]), 1000)
        self.assertEqual(self.device.settings.baudrate, 1200)

    def test_typingNotHeld(self) -> None:
        """A person's reads, each a few keys, are never held: each read has its own turn."""
        client = self.raw()
        for _ in range(100):
            client.dataReceived(b"\x1dw")
        self.assertEqual((self.transport.value().count(WHO), self.transport.producerState), (100, "producing"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_leavingMidPaste(self) -> None:
        """A client that goes while its paste waits for the next turn leaves no call on the reactor, and the rest is not handled."""
        client = self.raw()
        client.dataReceived(b"\x1dw" * 100)
        client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.transport.value().count(WHO), KEYS_PER_TURN)


class ComPortTurnTests(SynchronousTestCase):
    """RFC 2217 commands count 16 each against a read's 256 telnet commands: 16 settings changes a turn."""

    def test_settingsFlood(self) -> None:
        """100 SET-BAUDRATE in one read: 16 reach the device a turn, the client not read in between; all answered, in order."""
        from tests.fakes import PausableTransport

        clock = Clock()
        device = RecordingDevice(SerialSettings(115200))
        line = Line("rack4", device, clock=clock)
        client = TelnetClient(line, Role.WRITER)
        transport = PausableTransport()
        client.makeConnection(transport)
        client.dataReceived(bytes([255, 251, 44]))
        transport.clear()
        rates = [2400 + i for i in range(100)]  # no 0xff byte to double
        client.dataReceived(b"".join(bytes([255, 250, 44, 1]) + r.to_bytes(4, "big") + bytes([255, 240]) for r in rates))
        applied = []
        while True:
            applied.append(len([e for e in device.events if e[0] == "apply"]))
            if transport.producerState != "paused":
                break
            oneTurn(clock)
        self.assertEqual(applied, [16, 32, 48, 64, 80, 96, 100])
        answers = [bytes([255, 250, 44, 101]) + r.to_bytes(4, "big") + bytes([255, 240]) for r in rates]
        self.assertEqual(transport.value(), b"".join(answers))
        self.assertEqual(clock.getDelayedCalls(), [])


class BacklogCase(SynchronousTestCase):
    """A line with a 1 MB backlog (of 64 MiB) whose copies are counted."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("rack4", RecordingDevice(SerialSettings(115200)), clock=self.clock)
        self.line.backlogSize = 64 * 1024 * 1024
        self.line.deviceDataReceived(b"x" * 79 + b"\n")
        self.line.deviceDataReceived(b"boot line\n" * 100000)
        # The size of each copy of the backlog made.
        self.asked: list[int] = []
        backlog = self.line.backlog

        def spy(limit: Optional[int] = None) -> bytes:
            data = backlog(limit)
            self.asked.append(len(data))
            return data

        self.line.backlog = spy  # type: ignore[method-assign]

    def connect(self, listener: str) -> tuple[RawClient, StringTransport]:
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client = RawClient(self.line, Role.WRITER, listener=parseListener(listener), clock=self.clock)
        client.makeConnection(transport)
        return client, transport


class ReplayCopyTests(BacklogCase):
    """Replays (on connect, the early output, ^] r) copy no more of the backlog than the client may have waiting."""

    def test_replayOnConnect(self) -> None:
        """A replay client with outbuf=4096 on a 1 MB backlog (of 64 MiB): 4096 bytes copied (the early output, the replay), not 1 MB, and those are the newest."""
        _, transport = self.connect("raw,replay,outbuf=4096+4444")
        self.assertEqual(self.asked, [4096, 4096])
        self.assertEqual(transport.value(), (b"boot line\n" * 410)[-4096:])

    def test_earlyOutputToHealthChecks(self) -> None:
        """Connections that come and go without a word each take the early output back and forth: each copies its outbuf, not the backlog."""
        for _ in range(3):
            client, _ = self.connect("raw,outbuf=2048+4444")
            client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.asked, [2048] * 3)

    def test_escapeReplay(self) -> None:
        """^] r and ^] R 999999 Enter copy at most the client's outbuf (1024: its newest whole lines cut there)."""
        client, transport = self.connect("raw,escape=^],outbuf=1024+4444")
        self.asked.clear()
        transport.clear()
        client.dataReceived(b"\x1dr")
        self.assertEqual(transport.value(), b"\r\n[serialgw: last 20 lines of rack4:]\r\n" + b"boot line\n" * 20)
        transport.clear()
        client.dataReceived(b"\x1dR999999\r")
        self.assertTrue(transport.value().endswith(b"lines of rack4:]\r\n" + (b"boot line\n" * 103)[-1024:]))
        self.assertEqual(self.asked, [1024, 1024])


class LastLinesTests(SynchronousTestCase):
    # No deadline nor speed check: on a loaded machine (CI's two cores shared) it failed as "Input generation is slow".
    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.sampled_from([b"a", b"\n", b"bc"]), max_size=40), st.integers(min_value=1, max_value=30))
    def test_asLineByLine(self, pieces: list[bytes], count: int) -> None:
        """lastLines finds where the last N lines start as a search back one newline at a time does."""
        data = b"".join(pieces)
        start = len(data) - 1 if data.endswith(b"\n") else len(data)
        for _ in range(count):
            start = data.rfind(b"\n", 0, start)
            if start < 0:
                break
        self.assertEqual(lastLines(data, count), start + 1)


class ReplayWindowTests(BacklogCase):
    """^] r copies the newest 4 KiB, 16 KiB, ... of the backlog until they hold the lines asked for."""

    def test_fewLinesFewBytes(self) -> None:
        """^] r (20 lines of 10 bytes) with the default outbuf: 4 KiB copied, not 256 KiB; R 1000 Enter: 4, then 16 KiB."""
        client, transport = self.connect("raw,escape=^]+4444")
        self.asked.clear()
        client.dataReceived(b"\x1dr")
        self.assertEqual(self.asked, [4096])
        client.dataReceived(b"\x1dR1000\r")
        self.assertEqual(self.asked, [4096, 4096, 16384])
        self.assertTrue(transport.value().endswith(b"lines of rack4:]\r\n" + b"boot line\n" * 1000))

    def test_longLine(self) -> None:
        """The lines asked for begin before the newest 256 KiB (outbuf): those 256 KiB are replayed, copied in 4 steps."""
        self.line.deviceDataReceived(b"y" * 300000)
        client, transport = self.connect("raw,escape=^]+4444")
        self.asked.clear()
        transport.clear()
        client.dataReceived(b"\x1dr")
        self.assertEqual(self.asked, [4096, 16384, 65536, 262144])
        self.assertEqual(transport.value(), b"\r\n[serialgw: last 20 lines of rack4:]\r\n" + b"y" * 262144)


class WatchAllTurnTests(SynchronousTestCase):
    """Watchers of a large farm are put on their lines, and taken off them, 64 lines a turn for all of them."""

    def setUp(self) -> None:
        from serialgw.clients.watchall import WatchAllFactory

        self.clock = Clock()
        self.lines = {f"l{i}": Line(f"l{i}", RecordingDevice(), clock=self.clock) for i in range(200)}
        self.factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: self.lines, self.clock)

    def watcher(self) -> Any:
        client = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        assert client is not None
        return client

    def watching(self) -> int:
        return sum(1 for line in self.lines.values() for client in line.clients if client.peer.startswith("watch-all"))

    def test_putOnInTurns(self) -> None:
        """200 lines: 64 watched in the connection's turn, 64 more each turn; a line removed meanwhile is not watched, one added is at once."""
        from twisted.logger import LogLevel

        from tests.fakes import LogEvents

        log = LogEvents(self)
        client = self.watcher()
        transport = StringTransport()
        client.makeConnection(transport)
        self.assertEqual(self.watching(), 64)
        del self.lines["l150"]
        added = self.lines["new"] = Line("new", RecordingDevice(), clock=self.clock)
        self.factory.lineOpened(added)
        counts = []
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)
            counts.append(self.watching())
        self.assertEqual(counts, [129, 192, 200])
        self.assertEqual((len(client.taps), "l150" in client.taps), (200, False))
        self.assertEqual([e["count"] for e in log.at(LogLevel.info) if "watches" in e["log_format"]], [200])
        self.lines["l199"].deviceDataReceived(b"up\n")
        self.assertEqual(transport.value(), b"l199: up\n")
        client.connectionLost(Failure(ConnectionDone()))
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)

    def test_takenOffInTurns(self) -> None:
        """A watcher of 200 lines leaves: off 56 of them at once (what its last turn of putting on left of the share of 64), the others 64 a turn, sent nothing meanwhile; nothing left on the reactor."""
        client = self.watcher()
        transport = StringTransport()
        client.makeConnection(transport)
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)
        client.connectionLost(Failure(ConnectionDone()))
        counts = [self.watching()]
        transport.clear()
        self.lines["l199"].deviceDataReceived(b"late\n")
        self.lines["l199"].deviceDataReceived(b"partial")
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)
            counts.append(self.watching())
        self.assertEqual(counts, [144, 80, 16, 0])
        self.assertEqual((transport.value(), self.factory.clients), (b"", []))

    def test_leavesMidWay(self) -> None:
        """A watcher that leaves before it is on every line is put on no more of them."""
        client = self.watcher()
        client.makeConnection(StringTransport())
        client.connectionLost(Failure(ConnectionDone()))
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)
        self.assertEqual(self.watching(), 0)

    def test_shareForAll(self) -> None:
        """Three watchers connecting in one turn share the 64 lines a turn: 64 in that turn, not 192."""
        clients = [self.watcher() for _ in range(3)]
        for client in clients:
            client.makeConnection(StringTransport())
        counts = [self.watching()]
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)
            counts.append(self.watching())
        self.assertEqual(counts, [64 * n for n in range(1, 10)] + [600])
        for client in clients:
            client.connectionLost(Failure(ConnectionDone()))
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)
        self.assertEqual(self.watching(), 0)


class WhoTurnTests(SynchronousTestCase):
    def test_whoOnACrowdedLine(self) -> None:
        """^] w pasted on a line of 1000 clients: one a turn (each counts a key for every 16 clients), not 32."""
        clock = Clock()
        line = Line("rack4", RecordingDevice(SerialSettings(115200)), clock=clock)
        for i in range(999):
            watcher = RawClient(line, Role.READONLY, listener=parseListener("raw,ro+4444"), clock=clock)
            watcher.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 1000 + i)))
        client = RawClient(line, Role.WRITER, listener=parseListener("raw,escape=^]+4444"), clock=clock)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(transport)
        transport.clear()
        client.dataReceived(b"\x1dw" * 3)
        answered = [transport.value().count(b"[serialgw: rack4: ")]
        while transport.producerState == "paused":
            oneTurn(clock)
            answered.append(transport.value().count(b"[serialgw: rack4: "))
        self.assertEqual(answered, [1, 2, 3])


class WatchAllPerAddressTests(SynchronousTestCase):
    """One address holds at most 8 of the watch-all listener's 64 places; refusals are a bounded log."""

    def setUp(self) -> None:
        from serialgw.clients.watchall import WatchAllFactory
        from serialgw.logflood import peerLimiter

        peerLimiter.peers.clear()
        self.clock = Clock()
        self.lines = {"l0": Line("l0", RecordingDevice(), clock=self.clock)}
        self.factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: self.lines, self.clock)

    def connect(self, host: str, port: int) -> Any:
        client = self.factory.buildProtocol(IPv4Address("TCP", host, port))
        if client is not None:
            client.makeConnection(StringTransport())
        return client

    def test_eightFromOneAddress(self) -> None:
        """8 watchers from 192.0.2.1, the 9th refused at accept; another address gets in; one leaving makes room."""
        mine = [self.connect("192.0.2.1", port) for port in range(1, 9)]
        self.assertNotIn(None, mine)
        self.assertIsNone(self.connect("192.0.2.1", 9))
        other = self.connect("192.0.2.2", 1)
        self.assertIsNotNone(other)
        mine[0].connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(self.connect("192.0.2.1", 10))
        self.assertEqual(self.factory.sources.bySource, {"192.0.2.1": 8, "192.0.2.2": 1})
        for client in mine[1:] + [other]:
            client.connectionLost(Failure(ConnectionDone()))

    def test_refusalsLogBounded(self) -> None:
        """1000 refused connections (each from a new port) make 20 log lines, not 1000."""
        from twisted.logger import LogLevel

        from tests.fakes import LogEvents

        log = LogEvents(self)
        clients = [self.connect("192.0.2.1", port) for port in range(1, 9)]
        for port in range(100, 1100):
            self.assertIsNone(self.connect("192.0.2.1", port))
        refused = [e for e in log.at(LogLevel.warn) if "refused" in e["log_format"]]
        self.assertEqual(len(refused), 20)
        for client in clients:
            client.connectionLost(Failure(ConnectionDone()))
