"""
Tests for serialgw.clients.netconsole: datagram sizes and the source allow-list.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from serialgw.clients.netconsole import MAX_DATAGRAM, NetconsoleClient
from serialgw.config.specs import UDPSpec
from serialgw.interfaces import IClient
from serialgw.line.hub import Line, Role
from tests.fakes import RecordingDevice, observeLog
from tests.realio import freePort, ptyLine, startedPty, startGateway


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

    def test_allowListIPv4Mapped(self) -> None:
        """On an IPv6 port (a v6 remote), an IPv4 source arrives as ::ffff:a.b.c.d: it is matched as the IPv4 address allow= names (it was refused), as a TCP listener's allow= does."""
        client = NetconsoleClient(self.line, UDPSpec("::1", 6666, "", 6665, ("127.0.0.1", "::1")))
        client.transport = DatagramTransport()
        client.datagramReceived(b"v4", ("::ffff:127.0.0.1", 1234))
        client.datagramReceived(b"no", ("::ffff:192.0.2.7", 1234))
        self.assertEqual((self.device.events, client.refused), ([("write", b"v4")], 1))

    def test_pausedWhileDeviceBehind(self) -> None:
        """While the device is behind, the UDP port is not read (the kernel holds or drops datagrams, not us)."""
        self.line.deviceWritable(False)
        self.line.deviceWritable(True)
        self.assertEqual(self.transport.reading, [False, True])


class ListenerTests(TestCase):
    async def test_readOnlyListener(self) -> None:
        """raw,ro+udp: makes a read-only netconsole: its datagrams are refused, counted, never the device's (it wrote)."""
        pty = startedPty(self)
        source = freePort(udp=True)
        service = startGateway(self, ptyLine(pty, f"raw,ro+udp:127.0.0.1:{freePort(udp=True)}@127.0.0.1:{source}"))
        line = service.lines["t"]
        [client] = line.clients
        self.assertEqual(client.role, Role.READONLY)
        assert isinstance(client, NetconsoleClient)
        client.datagramReceived(b"reboot\r", ("127.0.0.1", 40000))
        self.assertEqual((line.refused, line.bytesGiven), (7, 0))
        await service.stopService()
