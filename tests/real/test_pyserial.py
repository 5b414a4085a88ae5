"""
pyserial's own rfc2217:// client (in a thread) against the gateway serving
a pty pair: settings reach the pty's termios, data passes intact, control
commands are answered at once.
"""

from __future__ import annotations

import termios
import time
from typing import Any, Callable

import serial
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from serialgw.app.service import GatewayService
from serialgw.config.specs import DeviceSpec, LineConfig, ListenerSpec, Protocol
from tests.realio import PtyPair

ALL = bytes(range(256))


class PyserialTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.pty = PtyPair()
        self.addCleanup(self.pty.close)
        config = LineConfig(
            name="t",
            device=DeviceSpec("tty", self.pty.slaveName),
            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),),
        )
        self.service = GatewayService([config])
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.pty.startReading()
        self.url = f"rfc2217://127.0.0.1:{self.service.ports[0][1].getHost().port}"

    def termios(self) -> tuple[int, int]:
        """The pty's (speed, cflag) as the kernel has them now."""
        attrs = termios.tcgetattr(self.pty.master)
        return attrs[5], attrs[2]

    def inThread(self, f: Callable[[], Any]) -> Any:
        return deferToThread(f)

    async def test_settingsReachTermios(self) -> None:
        """Open at 57600 8N2, then 9600 8N1 at run time: the pty's termios follow."""

        def run() -> list[tuple[int, int]]:
            seen = []
            port = serial.serial_for_url(self.url, baudrate=57600, stopbits=2, timeout=3)
            try:
                seen.append(self.termios())
                port.baudrate = 9600
                port.stopbits = 1
                seen.append(self.termios())
            finally:
                port.close()
            return seen

        (speed1, cflag1), (speed2, cflag2) = await self.inThread(run)
        self.assertEqual(speed1, termios.B57600)
        self.assertTrue(cflag1 & termios.CSTOPB)
        self.assertEqual(speed2, termios.B9600)
        self.assertFalse(cflag2 & termios.CSTOPB)
        self.assertEqual(cflag2 & termios.CSIZE, termios.CS8)

    async def test_dataBothWays(self) -> None:
        """Every byte value passes both ways through pyserial's client."""

        def run() -> bytes:
            port = serial.serial_for_url(self.url, baudrate=115200, timeout=5)
            try:
                port.write(ALL * 4)
                return port.read(1024)
            finally:
                port.close()

        d = self.inThread(run)
        self.assertEqual(await self.pty.received.length(1024), ALL * 4)
        self.pty.write(ALL * 4)
        self.assertEqual(await d, ALL * 4)

    async def test_controlAnsweredAtOnce(self) -> None:
        """send_break, purges, DTR/RTS toggles and modem reads are all answered well under a second."""

        def run() -> dict[str, Any]:
            timings: dict[str, Any] = {}
            port = serial.serial_for_url(self.url, baudrate=115200, timeout=3)
            try:
                for name, action in [
                    ("dtr off", lambda: setattr(port, "dtr", False)),
                    ("dtr on", lambda: setattr(port, "dtr", True)),
                    ("rts off", lambda: setattr(port, "rts", False)),
                    ("rts on", lambda: setattr(port, "rts", True)),
                    ("reset_input_buffer", port.reset_input_buffer),
                    ("reset_output_buffer", port.reset_output_buffer),
                    ("send_break", lambda: port.send_break(0.25)),
                    ("cts", lambda: port.cts),
                    ("cd", lambda: port.cd),
                ]:
                    start = time.monotonic()
                    result = action()
                    timings[name] = (time.monotonic() - start, result)
                port.write(b"after")
            finally:
                port.close()
            return timings

        timings = await self.inThread(run)
        self.assertEqual(await self.pty.received.length(5), b"after")
        for name, (elapsed, _) in timings.items():
            limit = 0.8 if name == "send_break" else 0.5
            self.assertLess(elapsed, limit, name)
        self.assertEqual(timings["cts"][1], True)
        self.assertEqual(timings["cd"][1], True)
        device = self.service.lines["t"].device
        self.assertEqual(device.breaks, 1)
        self.assertEqual(device.modemLines, {"dtr": True, "rts": True})

    async def test_settingsRestored(self) -> None:
        """When the RFC 2217 client leaves, the configured 115200 8N1 comes back."""
        line = self.service.lines["t"]
        gone: defer.Deferred[None] = defer.Deferred()
        detach = line.detach

        def detached(client: Any) -> None:
            detach(client)
            if not line.clients and not gone.called:
                gone.callback(None)

        line.detach = detached  # type: ignore[method-assign]

        def run() -> int:
            port = serial.serial_for_url(self.url, baudrate=1200, timeout=3)
            speed = self.termios()[0]
            port.close()
            return speed

        self.assertEqual(await self.inThread(run), termios.B1200)
        await gone
        self.assertEqual(self.termios()[0], termios.B115200)
