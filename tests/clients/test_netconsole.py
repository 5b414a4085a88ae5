"""
Tests for serialgw.clients.netconsole: datagram sizes and the source allow-list.
"""

from __future__ import annotations

import warnings

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import DNSLookupError
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from serialgw.clients.netconsole import MAX_DATAGRAM, NetconsoleClient
from serialgw.config.listenerspecs import UDPSpec
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import RecordingDevice, observeLog
from tests.realio import heldUdpPort, ptyLine, startedPty, startGateway


class DatagramTransport(StringTransport):
    def __init__(self) -> None:
        StringTransport.__init__(self)
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        self.reading: list[bool] = []

    def stopReading(self) -> None:
        self.reading.append(False)

    def startReading(self) -> None:
        self.reading.append(True)

    def write(self, data: bytes, addr: tuple[str, int] | None = None) -> None:  # type: ignore[override]
        assert addr is not None
        self.datagrams.append((data, addr))


class NetconsoleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("ttyS0", self.device)
        self.client = NetconsoleClient(self.line, UDPSpec("127.0.0.1", 6666, "", 6665, ("127.0.0.0/8", "::1")))
        self.transport = DatagramTransport()
        self.client.transport = self.transport
        self.client.startProtocol()

    def test_interface(self) -> None:
        """A netconsole client is an IClient attached to its line while it listens."""
        verifyObject(IClient, self.client)
        self.assertEqual(self.line.clients, [self.client])
        self.client.stopProtocol()
        self.assertEqual(self.line.clients, [])

    def test_startAndStopQuiet(self) -> None:
        """The UDP port starting and stopping logs no Twisted "Starting protocol <...NetconsoleClient object at 0x...>" line: the line's own log says it."""
        client = NetconsoleClient(self.line, UDPSpec("127.0.0.1", 6668, "", 6667))
        client.transport = DatagramTransport()
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        client.doStart()
        client.doStop()
        self.assertEqual([e.get("log_namespace") for e in events], ["serialgw.line.hub", "serialgw.line.hub"])

    def test_peerNames(self) -> None:
        """A netconsole client is named udp:HOST:PORT, an IPv6 host in brackets (udp:[::1]:6666, not udp:::1:6666)."""
        self.assertEqual(self.client.peer, "udp:127.0.0.1:6666")
        self.assertEqual(NetconsoleClient(self.line, UDPSpec("::1", 6666, "", 6665)).peer, "udp:[::1]:6666")

    def test_datagramSizes(self) -> None:
        """Output is cut into datagrams of at most 1400 bytes, in order, to the remote."""
        data = bytes(range(256)) * 12
        self.line.deviceDataReceived(data)
        sizes = [len(d) for d, _ in self.transport.datagrams]
        self.assertEqual(sizes, [MAX_DATAGRAM, MAX_DATAGRAM, len(data) - 2 * MAX_DATAGRAM])
        self.assertEqual(b"".join(d for d, _ in self.transport.datagrams), data)
        self.assertEqual({a for _, a in self.transport.datagrams}, {("127.0.0.1", 6666)})

    def test_allowList(self) -> None:
        """Datagrams from allowed sources reach the device; others are refused and counted."""
        self.client.datagramReceived(b"ok", ("127.0.0.5", 1234))
        self.client.datagramReceived(b"v6", ("::1", 1234))
        self.client.datagramReceived(b"no", ("192.0.2.7", 1234))
        self.assertEqual(self.device.events, [("write", b"ok"), ("write", b"v6")])
        self.assertEqual(self.client.refused, 1)

    def test_refusedSendersNamedAndBounded(self) -> None:
        """Refused datagrams are said naming each sender, through the log limiter against the port's one budget: 30 senders one each, then 21000 from one more, 20 lines (the first 20 senders) and the other 21010 counted in one line (it said the 1st and every 1000th only: the 2nd to 30th senders never named, and a line per 1000 datagrams without a bound in time)."""
        from twisted.logger import Logger

        from serialgw.logflood import peerLimiter
        from tests.fakes import LogEvents

        clock = Clock()
        clock.advance(1000)
        self.patch(peerLimiter, "now", clock.seconds)
        for table in ("peers", "budgets", "listeners"):  # (other tests' budgets, on the wall's clock, left out)
            self.patch(peerLimiter, table, {})
        log = LogEvents(self)
        for n in range(30):
            self.client.datagramReceived(b"no", (f"192.0.2.{n + 1}", 1234))
        for _ in range(21000):
            self.client.datagramReceived(b"no", ("198.51.100.9", 1234))
        said = [formatEvent(e) for e in log.events if e.get("log_namespace") == "serialgw.clients.netconsole"]
        self.assertEqual(said[:2], ["ttyS0: datagram from 192.0.2.1 refused (1 so far): not in 127.0.0.0/8,::1",
                                    "ttyS0: datagram from 192.0.2.2 refused (2 so far): not in 127.0.0.0/8,::1"])
        self.assertEqual((len(said), said[-1]), (20, "ttyS0: datagram from 192.0.2.20 refused (20 so far): not in 127.0.0.0/8,::1"))
        clock.advance(60)
        Logger(observer=peerLimiter).info("tick", peer="someone else")
        self.assertEqual([formatEvent(e) for e in log.events if "left out" in e.get("log_format", "")],
                         ["21010 log messages about ttyS0's netconsole udp:127.0.0.1:6666 left out in the last minute "
                          "(over 20 a minute)"])
        self.assertEqual(self.client.refused, 21030)

    def test_allowListIPv4Mapped(self) -> None:
        """On an IPv6 port (a v6 remote), an IPv4 source arrives as ::ffff:a.b.c.d: it is matched as the IPv4 address allow= names (it was refused), as a TCP listener's allow= does."""
        client = NetconsoleClient(self.line, UDPSpec("::1", 6666, "", 6665, ("127.0.0.1", "::1")))
        client.transport = DatagramTransport()
        client.datagramReceived(b"v4", ("::ffff:127.0.0.1", 1234))
        client.datagramReceived(b"no", ("::ffff:192.0.2.7", 1234))
        self.assertEqual((self.device.events, client.refused), ([("write", b"v4")], 1))

    def test_sendFailuresSaid(self) -> None:
        """Datagrams the kernel refuses (a broadcast remote without SO_BROADCAST: EACCES; no route) are counted and said once at warning level, and when datagrams go again, how many did not (it was a debug line each: a netconsole that sent nothing said nothing)."""
        import errno

        failing = [OSError(errno.EACCES, "Permission denied")] * 3

        def write(data: bytes, addr: tuple[str, int] | None = None) -> None:
            if failing:
                raise failing.pop()
            DatagramTransport.write(self.transport, data, addr)

        self.transport.write = write  # type: ignore[method-assign]
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        self.line.deviceDataReceived(b"x" * (MAX_DATAGRAM + 1))
        self.line.deviceDataReceived(b"y")
        self.line.deviceDataReceived(b"z")
        self.assertEqual((self.client.unsent, [d for d, _ in self.transport.datagrams]), (3, [b"z"]))
        said = [(e["log_level"].name, formatEvent(e)) for e in events  # type: ignore[attr-defined]
                if e.get("log_namespace") == "serialgw.clients.netconsole"]
        self.assertEqual(said, [("warn", "ttyS0: datagrams to udp:127.0.0.1:6666 cannot be sent: [Errno 13] Permission "
                                         "denied (counted until they can)"),
                                ("info", "ttyS0: datagrams to udp:127.0.0.1:6666 are sent again (3 were not)")])

    def test_kernelDropsSaid(self) -> None:
        """Datagrams the kernel dropped (its count, with the next datagram read) are said at once, then at most once a minute with how many since, and kept in C{dropped}."""
        clock = Clock()
        client = NetconsoleClient(self.line, UDPSpec("127.0.0.1", 6666, "", 6665, ("127.0.0.0/8",)), reactor=clock)
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        client.kernelDropped(97)
        clock.advance(30)
        client.kernelDropped(100)
        client.kernelDropped(110)
        clock.advance(30)
        client.kernelDropped(150)
        clock.advance(59)
        client.kernelDropped(150)
        said = [formatEvent(e) for e in events if e.get("log_namespace") == "serialgw.clients.netconsole"]
        self.assertEqual(said, [f"ttyS0: {count} datagram(s) for the device dropped by the kernel ({total} in all): "
                                "they came faster than the device took them" for count, total in ((97, 97), (13, 110))])
        clock.advance(1)
        self.assertEqual(len(events), 3)
        self.assertIn("40 datagram(s) for the device dropped by the kernel (150 in all)", formatEvent(events[-1]))
        self.assertEqual((client.dropped, clock.getDelayedCalls()), (150, []))
        client.kernelDropped(160)
        client.stopProtocol()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_kernelDropsOfAReadOnlyNetconsole(self) -> None:
        """A read-only netconsole's kernel drops are not said as datagrams for the device that came faster than it took them (none of them was for the device: a ro one takes none; seen live: '829 datagram(s) for the device dropped ...')."""
        client = NetconsoleClient(self.line, UDPSpec("127.0.0.1", 6666, "", 6665, ("127.0.0.0/8",)), Role.READONLY,
                                  reactor=Clock())
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        client.kernelDropped(829)
        said = [formatEvent(e) for e in events if e.get("log_namespace") == "serialgw.clients.netconsole"]
        self.assertEqual(said, ["ttyS0: 829 datagram(s) for read-only netconsole udp:127.0.0.1:6666 dropped by the kernel (829 in "
                                "all): they came faster than they are read (each refused: it takes none)"])

    def test_pausedWhileDeviceBehind(self) -> None:
        """While the device is behind, the UDP port is not read (the kernel holds or drops datagrams, not us)."""
        self.line.deviceWritable(False)
        self.line.deviceWritable(True)
        self.assertEqual(self.transport.reading, [False, True])


class ResolvingReactor(Clock):
    """A clock whose C{resolve} answers with Deferreds the test fires."""

    def __init__(self) -> None:
        Clock.__init__(self)
        self.lookups: list[tuple[str, Deferred[str]]] = []

    def resolve(self, name: str) -> Deferred[str]:
        d: Deferred[str] = Deferred()
        self.lookups.append((name, d))
        return d


class ResolveTests(SynchronousTestCase):
    def test_nameResolvedAgainUntilItIs(self) -> None:
        """A remote host name that does not resolve (DNS not up yet at boot) is looked up again with backoff (1 s doubling to 30 s), said once, until it resolves; then output goes there (it was looked up once: the netconsole sent nothing until a restart)."""
        reactor = ResolvingReactor()
        line = Line("ttyS0", RecordingDevice())
        client = NetconsoleClient(line, UDPSpec("console.example", 6666, "", 6665, ("192.0.2.7",)), reactor=reactor)
        transport = DatagramTransport()
        client.transport = transport
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        client.startProtocol()
        delays = []
        for _ in range(7):
            name, d = reactor.lookups[-1]
            self.assertEqual(name, "console.example")
            d.errback(DNSLookupError("no results"))
            [call] = reactor.getDelayedCalls()
            delays.append(call.getTime() - reactor.seconds())
            reactor.advance(delays[-1])
        self.assertEqual(delays, [1, 2, 4, 8, 16, 30, 30])
        line.deviceDataReceived(b"lost")
        self.assertEqual(transport.datagrams, [])
        reactor.lookups[-1][1].callback("192.0.2.7")
        line.deviceDataReceived(b"found")
        self.assertEqual(transport.datagrams, [(b"found", ("192.0.2.7", 6666))])
        self.assertEqual(reactor.getDelayedCalls(), [])
        said = [formatEvent(e) for e in events if e.get("log_namespace") == "serialgw.clients.netconsole"]
        self.assertEqual(said, ["ttyS0: cannot resolve console.example: DNS lookup failed: no results; trying again "
                                "with backoff (its output is dropped until it resolves)",
                                "ttyS0: console.example resolved to 192.0.2.7 after 8 attempts"])

    def test_outputBeforeResolvedCounted(self) -> None:
        """Output that comes before the remote name resolves is dropped and counted in the client's unsent bytes (the status page's "dropped"); not after it resolves."""
        reactor = ResolvingReactor()
        line = Line("ttyS0", RecordingDevice())
        client = NetconsoleClient(line, UDPSpec("console.example", 6666, "", 6665, ("192.0.2.7",)), reactor=reactor)
        client.transport = DatagramTransport()
        client.startProtocol()
        line.deviceDataReceived(b"lost")
        reactor.lookups[0][1].callback("192.0.2.7")
        line.deviceDataReceived(b"found")
        self.assertEqual((client.unsentBytes, client.unsent), (4, 0))

    def test_stoppedWhileResolving(self) -> None:
        """A netconsole whose port stops (a reload, the stop) looks its name up no more, and a lookup answered after that changes nothing."""
        reactor = ResolvingReactor()
        line = Line("ttyS0", RecordingDevice())
        client = NetconsoleClient(line, UDPSpec("console.example", 6666, "", 6665, ("192.0.2.7",)), reactor=reactor)
        client.transport = DatagramTransport()
        client.startProtocol()
        reactor.lookups[0][1].errback(DNSLookupError("no results"))
        client.stopProtocol()
        self.assertEqual(reactor.getDelayedCalls(), [])
        client.startProtocol()
        client.stopProtocol()
        reactor.lookups[1][1].callback("192.0.2.7")
        self.assertEqual((client.remote, reactor.getDelayedCalls()), (None, []))


class ListenerTests(TestCase):
    async def test_readOnlyListener(self) -> None:
        """raw,ro+udp: makes a read-only netconsole: its datagrams are refused, counted, never the device's (it wrote)."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, f"raw,ro+udp:127.0.0.1:{heldUdpPort(self)}@127.0.0.1:0"))
        line = service.lines["t"]
        [client] = line.clients
        self.assertEqual(client.role, Role.READONLY)
        assert isinstance(client, NetconsoleClient)
        client.datagramReceived(b"reboot\r", ("127.0.0.1", 40000))
        self.assertEqual((line.refused, line.bytesGiven), (7, 0))
        await service.stopService()

    async def test_lineRemovedClosesThePortOnce(self) -> None:
        """A line removed (a reload) closes its netconsole's UDP port once, and its close is waited for: it was stopped twice (the client's disconnect and the line's closer), the second close a logged AssertionError from Twisted's doStop."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, f"raw+udp:127.0.0.1:{heldUdpPort(self)}@127.0.0.1:0"))
        [client] = service.lines["t"].clients
        assert isinstance(client, NetconsoleClient)
        port = client.transport
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            waits = service.closeLine("t")
        await gatherResults([w for w in waits if isinstance(w, Deferred)])
        closedWhenWaited = not port.connected
        # (A second close, if any, runs in the next turn: let it.)
        await deferLater(reactor, 0, lambda: None)
        self.assertEqual(([e for e in events if e.get("log_level") in (LogLevel.error, LogLevel.critical)],
                          [str(w.message) for w in caught], closedWhenWaited), ([], [], True))
