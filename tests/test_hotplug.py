"""
A device that vanishes and returns behind the same path (a USB adapter
unplugged and plugged in), simulated with pty pairs behind a symlink.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from serialgw.config import DeviceSpec, LineConfig, ListenerSpec, Protocol
from serialgw.service import GatewayService
from tests.realio import Collector, PtyPair, closeClients, connect, startedPty

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
