"""
pyserial's own rfc2217:// client (in a thread) against the gateway serving
a pty pair: settings reach the pty's termios, data passes intact, control
commands are answered at once.  And the other way round: pyserial's RFC 2217
server (its PortManager, in threads) on a pty as the far end of the
gateway's rfc2217:// device (the client side of serialgw.wire).
"""

from __future__ import annotations

import socket
import termios
import threading
from typing import Any, Callable

import serial
from serial import rfc2217
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from tests.realio import PtyPair, closeClients, connect, heldTimers, listenerPort, startGateway, testLockDir

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
            lockDir=testLockDir(),
        )
        self.service = startGateway(self, config)
        self.pty.startReading()
        # pyserial waits 3 s for each answer (and the open's negotiation),
        # then raises: a loaded machine is not a missing answer (30 s).
        self.url = f"rfc2217://127.0.0.1:{listenerPort(self.service)}?timeout=30"

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
            port = serial.serial_for_url(self.url, baudrate=115200, timeout=30)
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
        """send_break, purges, DTR/RTS toggles and modem reads are answered without waiting for a timer (the gateway's are held)."""
        # The gateway's timers do not fire while pyserial asks (TimersHeld):
        # an answer that waited for one would never come, and pyserial
        # would raise its own "timeout while waiting" (after 30 s: its
        # network timeout, long, so that a loaded machine is not taken for
        # a missing answer).  Nothing here reads the wall clock.
        timers = heldTimers(self)
        pty = PtyPair()
        self.addCleanup(pty.close)
        pty.startReading()
        config = LineConfig("t", DeviceSpec("tty", pty.slaveName),
                            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),),
                            lockDir=testLockDir())
        service = startGateway(self, config, reactor=timers, waitForDevices=True)
        url = f"rfc2217://127.0.0.1:{listenerPort(service)}?timeout=30"

        def run() -> dict[str, Any]:
            results: dict[str, Any] = {}
            port = serial.serial_for_url(url, baudrate=115200, timeout=3)
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
                    results[name] = action()
                port.write(b"after")
            finally:
                port.close()
            return results

        timers.holding = True
        try:
            results = await self.inThread(run)
            self.assertEqual(await pty.received.length(5), b"after")
        finally:
            timers.holding = False
        self.assertEqual(results["cts"], True)
        self.assertEqual(results["cd"], True)
        device = service.lines["t"].device
        self.assertEqual(device.breaks, 1)
        self.assertEqual(device.modemLines, {"dtr": True, "rts": True})

    async def test_readOnlyPortOpensAndRefuses(self) -> None:
        """
        pyserial opens a read-only listener's port (it purges at every
        open: the purge, of that client's own buffers only, is answered as
        done) and its purges pass; a setting or DTR change is refused, the
        answer (what is in effect) not what it asked, so it raises "remote
        rejected value" at once; nothing reaches the pty.
        """
        pty = PtyPair()
        self.addCleanup(pty.close)
        config = LineConfig(name="ro", device=DeviceSpec("tty", pty.slaveName), listeners=(
            ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET, readOnly=True),), lockDir=testLockDir())
        service = startGateway(self, config)
        url = f"rfc2217://127.0.0.1:{listenerPort(service)}?timeout=30"
        before = termios.tcgetattr(pty.master)

        def run() -> dict[str, str]:
            said = {}
            port = serial.serial_for_url(url, baudrate=115200, timeout=3)
            try:
                for name, action in [("reset_input_buffer", port.reset_input_buffer),
                                     ("reset_output_buffer", port.reset_output_buffer),
                                     ("dtr off", lambda: setattr(port, "dtr", False)),
                                     ("baudrate", lambda: setattr(port, "baudrate", 9600))]:
                    try:
                        action()
                        said[name] = "done"
                    except ValueError as e:
                        said[name] = str(e)
            finally:
                port.close()
            return said

        said = await self.inThread(run)
        self.assertEqual(said, {"reset_input_buffer": "done", "reset_output_buffer": "done",
                                "dtr off": "remote rejected value for option 'control'",
                                "baudrate": "remote rejected value for option 'baudrate'"})
        self.assertEqual(termios.tcgetattr(pty.master), before)

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


class PtyPort(serial.Serial):  # type: ignore[misc]
    """pyserial on a pty's slave, which has no modem lines (TIOCMGET fails): DTR, RTS and breaks it is told are kept."""

    def __init__(self, path: str) -> None:
        self.told: list[tuple[str, object]] = []
        # Set once the port has been set to 2 stop bits (SET-STOPSIZE comes after the baud rate).
        self.twoStopBits = threading.Event()
        super().__init__(path, timeout=0.1)

    def _reconfigure_port(self, force_update: bool = False) -> None:
        super()._reconfigure_port(force_update)
        if self._stopbits == 2:
            self.twoStopBits.set()

    cts = dsr = cd = property(lambda self: True)
    ri = property(lambda self: False)

    def _update_dtr_state(self) -> None:
        self.told.append(("dtr", self._dtr_state))

    def _update_rts_state(self) -> None:
        self.told.append(("rts", self._rts_state))

    def _update_break_state(self) -> None:
        self.told.append(("break", self._break_state))


class _Writer:
    """What PortManager writes to: a socket."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection

    def write(self, data: bytes) -> None:
        self.connection.sendall(data)


class PyserialServerTests(TestCase):
    """The gateway's rfc2217:// device against pyserial's RFC 2217 server (rfc2217.PortManager) on a pty."""

    timeout = 60

    def serve(self, listener: socket.socket, port: PtyPort) -> None:
        """One connection, as pyserial's examples/rfc2217_server.py serves it (two threads)."""
        connection, _ = listener.accept()
        manager = rfc2217.PortManager(port, _Writer(connection))
        done = threading.Event()

        def toGateway() -> None:
            while not done.is_set():
                data = port.read(port.in_waiting or 1)
                if data:
                    connection.sendall(b"".join(manager.escape(data)))

        reader = threading.Thread(target=toGateway, daemon=True)
        reader.start()
        try:
            while data := connection.recv(4096):
                port.write(b"".join(manager.filter(data)))
        except OSError:
            pass
        finally:
            done.set()
            reader.join()
            connection.close()
            port.close()

    async def test_remoteDeviceDrivesPyserialServer(self) -> None:
        """Settings (57600 8N2), data with 0xFF both ways, a break and DTR from the gateway's rfc2217:// device reach pyserial's server and its pty."""
        pty = PtyPair()
        self.addCleanup(pty.close)
        pty.startReading()
        port = PtyPort(pty.slaveName)
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        server = threading.Thread(target=self.serve, args=(listener, port), daemon=True)
        server.start()
        self.addCleanup(deferToThread, server.join)
        config = LineConfig("t", DeviceSpec("rfc2217", host="127.0.0.1", port=listener.getsockname()[1]),
                            settings=SerialSettings(57600, stopbits=2),
                            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))
        service = startGateway(self, config)
        # The settings go as soon as COM-PORT-OPTION is agreed.
        self.assertTrue(await deferToThread(port.twoStopBits.wait, 30))
        client = await connect(listenerPort(service))

        client.transport.write(b"ping\xff")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(5), b"ping\xff")
        speed, cflag = termios.tcgetattr(pty.master)[5], termios.tcgetattr(pty.master)[2]
        self.assertEqual((speed, bool(cflag & termios.CSTOPB), cflag & termios.CSIZE),
                         (termios.B57600, True, termios.CS8))
        pty.write(b"\xffpong")
        self.assertEqual(await client.received.length(5), b"\xffpong")

        device = service.lines["t"].device
        del port.told[:]
        self.assertTrue(device.sendBreak(10.0))
        device.stopBreak()
        device.setModemLine("dtr", False)
        client.transport.write(b"sync")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(9), b"ping\xffsync")
        self.assertEqual(port.told, [("break", True), ("break", False), ("dtr", False)])
        await closeClients(client)
