"""
Integration tests in one process: a pty pair as the serial device, the
gateway's service, and real TCP clients on loopback port 0.
"""

from __future__ import annotations

import time

from twisted.trial.unittest import TestCase

from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.realio import Clients, Collector, PtyPair, listenerPort, startGateway, testLockDir
from tests.telnetpeer import AGREE, OFFER

ALL = bytes(range(256))


class GatewayTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.pty = PtyPair()
        self.addCleanup(self.pty.close)
        config = LineConfig(
            name="t",
            device=DeviceSpec("tty", self.pty.slaveName),
            listeners=(
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
            ),
            lockDir=testLockDir(),
        )
        self.service = startGateway(self, config)
        self.pty.startReading()
        self.telnetPort = listenerPort(self.service)
        self.rawPort = listenerPort(self.service, 1)
        self.clients = Clients()

    async def rawReady(self, client: Collector, tag: bytes) -> None:
        """Prove a raw client is attached: its tag reaches the device."""
        client.transport.write(tag)  # type: ignore[union-attr]
        await self.pty.received.contains(tag)

    # trial waits for an awaitable tearDown; unittest's stub says it returns None.
    async def tearDown(self) -> None:  # type: ignore[override]
        await self.clients.close()

    async def test_rawAllBytesBothWays(self) -> None:
        """Every byte value passes a raw listener intact, both ways."""
        client = await self.clients.connect(self.rawPort)
        await self.rawReady(client, b"ready")
        self.pty.write(ALL * 4)
        self.assertEqual(await client.received.length(1024), ALL * 4)
        client.transport.write(ALL * 4)  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(5 + 1024), b"ready" + ALL * 4)

    async def test_telnetAllBytesBothWays(self) -> None:
        """Through telnet in BINARY, every byte value passes; IAC is doubled on the wire only."""
        client = await self.clients.connect(self.telnetPort)
        self.assertEqual(await client.received.length(len(OFFER)), OFFER)
        client.transport.write(AGREE + b"ping")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(4), b"ping")
        self.pty.write(ALL)
        expected = OFFER + ALL.replace(b"\xff", b"\xff\xff")
        self.assertEqual(await client.received.length(len(expected)), expected)
        client.transport.write(ALL.replace(b"\xff", b"\xff\xff"))  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(4 + 256), b"ping" + ALL)

    async def test_severalClients(self) -> None:
        """Device output reaches every client; input from each reaches the device."""
        raw1 = await self.clients.connect(self.rawPort)
        raw2 = await self.clients.connect(self.rawPort)
        # Raw clients that talk are announced: before the telnet client is there.
        await self.rawReady(raw1, b"one ")
        await self.rawReady(raw2, b"two")
        telnet = await self.clients.connect(self.telnetPort)
        await telnet.received.length(len(OFFER))
        self.assertEqual(self.pty.received.data, b"one two")
        self.pty.write(b"login: ")
        for client in (raw1, raw2):
            self.assertEqual(await client.received.length(7), b"login: ")
        self.assertEqual(await telnet.received.length(len(OFFER) + 7), OFFER + b"login: ")

    async def test_breakOrdersData(self) -> None:
        """IAC BRK between bytes: the byte after it reaches the device only after the break ends."""
        client = await self.clients.connect(self.telnetPort)
        await client.received.length(len(OFFER))
        # Timed from before it is sent: the break (0.25 s) begins after
        # that, so 'h' comes at least that long after however slow the
        # machine.  (Timed from 'a' seen, a process kept waiting between
        # the break's start and the test's read of 'a' shortened what was
        # measured: 0.15 s with 0.1 s of that.)
        sent = time.monotonic()
        client.transport.write(AGREE + b"a\xff\xf3h")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(2), b"ah")
        self.assertGreaterEqual(time.monotonic() - sent, 0.2)
        self.assertEqual(self.service.lines["t"].device.breaks, 1)

    async def test_clientLeavesLineStays(self) -> None:
        """A client leaving does not disturb the others."""
        a = await self.clients.connect(self.rawPort)
        b = await self.clients.connect(self.rawPort)
        await self.rawReady(a, b"a")
        await self.rawReady(b, b"b")
        a.transport.loseConnection()  # type: ignore[union-attr]
        await a.closed
        self.clients.remove(a)
        self.pty.write(b"still here")
        self.assertEqual(await b.received.length(10), b"still here")
