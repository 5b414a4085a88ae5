"""
A device that vanishes and returns behind the same path (a USB adapter
unplugged and plugged in), simulated with pty pairs behind a symlink.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from serialgw.config import DeviceSpec, LineConfig, ListenerSpec, Protocol
from serialgw.service import GatewayService
from tests.ptyflood import FLOOD, MARKER
from tests.realio import Collector, ProcessOutput, PtyPair, closeClients, connect, spawn, startedPty

OFFER_END = bytes([255, 253, 44])


class HotplugTests(TestCase):
    timeout = 30

    async def test_unplugAndReturn(self) -> None:
        """Clients stay connected through an unplug; telnet hears it, raw does not; the line works again after."""
        link = os.path.abspath(self.mktemp())
        first = PtyPair()
        os.symlink(first.slaveName, link)
        config = LineConfig(
            "usb0",
            DeviceSpec("tty", link),
            listeners=(
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
            ),
        )
        service = GatewayService([config], reopenPolicy=lambda attempt: 0.05)
        service.startService()
        self.addCleanup(service.stopService)
        first.startReading()
        telnet: Collector = await connect(service.ports[0][1].getHost().port)
        raw: Collector = await connect(service.ports[1][1].getHost().port)
        await telnet.received.contains(OFFER_END)
        raw.transport.write(b"before")  # type: ignore[union-attr]
        self.assertEqual(await first.received.length(6), b"before")

        first.close()
        down = b"\r\n[serialgw: usb0 is down: "
        await telnet.received.contains(down)
        raw.transport.write(b"into the void")  # type: ignore[union-attr]

        second = startedPty(self)
        os.unlink(link)
        os.symlink(second.slaveName, link)
        await telnet.received.contains(b"\r\n[serialgw: usb0 is back]\r\n")
        raw.transport.write(b"after")  # type: ignore[union-attr]
        self.assertEqual(await second.received.length(5), b"after")
        second.write(b"hello again")
        self.assertEqual(await raw.received.length(11), b"hello again")
        self.assertNotIn(b"serialgw", raw.received.data)
        self.assertEqual(len(service.lines["usb0"].clients), 2)
        self.assertEqual(service.lines["usb0"].device.dropped, 13)
        await closeClients(telnet, raw)


class FloodReader(protocol.Protocol):
    """
    A raw client taking a flood: what came since the last marker it was
    asked for, without keeping the whole stream.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._waiting: Optional[tuple[bytes, int, defer.Deferred[bytes]]] = None

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        self._check()

    def afterMarker(self, marker: bytes, count: int) -> defer.Deferred[bytes]:
        """
        Fires, once C{marker} and C{count} bytes after it have come, with what
        came before the marker; the buffer then holds what came after it.
        """
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiting = (marker, count, d)
        self._check()
        return d

    def _check(self) -> None:
        if self._waiting is None:
            return
        marker, count, d = self._waiting
        at = self.buffer.find(marker)
        if at < 0 or len(self.buffer) - at - len(marker) < count:
            return
        self._waiting = None
        before = bytes(self.buffer[:at])
        del self.buffer[: at + len(marker)]
        d.callback(before)


class NoticeCounter(protocol.Protocol):
    """A telnet client that counts the down and up notices in what it gets (a flood around them)."""

    NEEDLES = (b"[serialgw: flood is down: ", b"[serialgw: flood is back]")

    def __init__(self) -> None:
        self.counts = [0, 0]
        self._tail = b""

    def dataReceived(self, data: bytes) -> None:
        window = self._tail + data
        for i, needle in enumerate(self.NEEDLES):
            self.counts[i] += window.count(needle)
        keep = max(len(n) for n in self.NEEDLES) - 1
        # What might start a needle cut by this chunk; never a whole one.
        self._tail = window[-keep:]
        for needle in self.NEEDLES:
            if needle in self._tail:
                self._tail = self._tail[self._tail.index(needle) + len(needle):]


class EventCounter:
    """Log events whose format contains a text, counted; a Deferred for the n-th."""

    def __init__(self, case: TestCase, text: str) -> None:
        self.text = text
        self.events: list[dict[str, Any]] = []
        self._waiters: list[tuple[int, defer.Deferred[dict[str, Any]]]] = []
        globalLogPublisher.addObserver(self)
        case.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event: dict[str, Any]) -> None:
        if self.text not in (event.get("log_format") or ""):
            return
        self.events.append(event)
        waiters, self._waiters = self._waiters, []
        for n, d in waiters:
            if len(self.events) >= n:
                d.callback(self.events[n - 1])
            else:
                self._waiters.append((n, d))

    def nth(self, n: int) -> defer.Deferred[dict[str, Any]]:
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()
        if len(self.events) >= n:
            d.callback(self.events[n - 1])
        else:
            self._waiters.append((n, d))
        return d


async def statusPage(port: int) -> dict[str, Any]:
    """The status page over HTTP, as JSON."""
    client = await connect(port)
    client.transport.write(b"GET / HTTP/1.0\r\n\r\n")  # type: ignore[union-attr]
    await client.closed
    return json.loads(client.received.data.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


class HangupFloodTests(TestCase):
    timeout = 600
    CYCLES = 50
    # How much of each cycle's flood the client gets before the master closes.
    MIDFLOOD = 256 * 1024
    WAIT = 20.0

    async def within(self, d: defer.Deferred[Any], what: str) -> Any:
        """What C{d} fires with, or a failure naming what did not happen in time."""
        try:
            return await d.addTimeout(self.WAIT, reactor)
        except defer.TimeoutError:
            self.fail(f"{what}: not within {self.WAIT} s")

    def flooder(self, link: str, cycle: int) -> ProcessOutput:
        proc = spawn([sys.executable, "-m", "tests.ptyflood", link, str(cycle)])
        self.addCleanup(proc.stop)
        return proc

    async def test_masterClosedMidFlood(self) -> None:
        """
        50 cycles of: a pty behind a symlink floods a reading client, its
        master is closed mid-flood (the program killed), a new pty is put
        behind the link.  The line comes back every time with the flood
        intact (a prefix of what was sent), each loss logged once, notices
        down and up, and the status page says up: false while it is down.
        """
        link = os.path.abspath(self.mktemp())
        lost = EventCounter(self, "device lost")
        back = EventCounter(self, "device back at")
        proc = self.flooder(link, 0)
        await proc.output.contains(b"pty /dev/")
        config = LineConfig(
            "flood",
            DeviceSpec("tty", link),
            listeners=(
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET, notices=True),
            ),
        )
        service = GatewayService([config], reopenPolicy=lambda attempt: 0.02, status="tcp:0:interface=127.0.0.1")
        service.startService()
        self.addCleanup(service.stopService)
        line = service.lines["flood"]
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", service.ports[0][1].getHost().port)
        reader: FloodReader = await endpoint.connect(protocol.Factory.forProtocol(FloodReader))
        self.addCleanup(reader.transport.loseConnection)  # type: ignore[union-attr]
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", service.ports[1][1].getHost().port)
        notices: NoticeCounter = await endpoint.connect(protocol.Factory.forProtocol(NoticeCounter))
        self.addCleanup(notices.transport.loseConnection)  # type: ignore[union-attr]
        statusPort = service.statusPort.getHost().port

        cyclesBack = 0
        for cycle in range(self.CYCLES):
            if cycle:
                proc = self.flooder(link, cycle)
                await self.within(back.nth(cycle), f"cycle {cycle}: line back ({cyclesBack} cycles back so far)")
                cyclesBack += 1
            proc.write(b"go\n")
            before = await self.within(reader.afterMarker(MARKER % cycle, self.MIDFLOOD), f"cycle {cycle}: flood")
            self.assertEqual(before, FLOOD[: len(before)], f"cycle {cycle}")
            if cycle:
                self.assertGreaterEqual(len(before), self.MIDFLOOD)
            # The link goes first, so that nothing else (a pty numbered
            # alike) is opened through it; then the master closes mid-flood.
            os.unlink(link)
            proc.transport.signalProcess("KILL")  # type: ignore[union-attr]
            event = await self.within(lost.nth(cycle + 1), f"cycle {cycle}: 'device lost' logged")
            self.assertEqual(event["device"], link)
            status = (await statusPage(statusPort))["lines"][0]
            self.assertEqual((status["up"], line.up, line.device.closed), (False, False, False),
                             f"cycle {cycle}, {cyclesBack} cycles back")
            self.assertIn(status["down_reason"], ("hung up", "Input/output error",
                                                  f"cannot open device {link!r}: No such file or directory"))
            await proc.ended

        self.assertEqual((len(lost.events), cyclesBack), (self.CYCLES, self.CYCLES - 1))
        self.assertEqual(bytes(reader.buffer), FLOOD[: len(reader.buffer)])
        self.assertEqual(notices.counts, [self.CYCLES, self.CYCLES - 1])
        self.assertEqual(len(line.clients), 2)
