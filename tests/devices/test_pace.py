"""
Pacing for slow devices: at least C{pace} between bytes written to the
device, at least C{paceLine} after a CR; timers on the injected clock.
"""

from __future__ import annotations

import time

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.config.file import loadConfig
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.devices.device import HIGH_WATER, LOW_WATER, SerialDevice
from serialgw.line.hub import Line
from tests.fakes import RecordingClient, RecordingPort
from tests.realio import closeClients, connect, listenerPort, ptyLine, startedPty, startGateway


class PaceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.port = RecordingPort(self.clock)
        self.device = SerialDevice(self.port, self.clock, 0.25)

    def tearDown(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def writes(self) -> list[tuple[float, bytes]]:
        return [(round(t, 6), v) for t, what, v in self.port.events if what == "write"]

    def drain(self, step: float = 0.001, limit: int = 100000) -> None:
        for _ in range(limit):
            if not self.clock.getDelayedCalls():
                return
            self.clock.advance(step)

    def test_everyGapAtLeastPace(self) -> None:
        """pace 10 ms: one byte a write, every gap >= 10 ms, the exact bytes in order."""
        self.device.setPace(0.010)
        data = b"root\r\nls -l\r\n"
        self.device.write(data)
        self.device.write(b"!")
        self.drain(0.003)
        writes = self.writes()
        self.assertEqual(b"".join(v for _, v in writes), data + b"!")
        self.assertEqual({len(v) for _, v in writes}, {1})
        gaps = [b[0] - a[0] for a, b in zip(writes, writes[1:], strict=False)]
        self.assertGreaterEqual(min(gaps), 0.010 - 1e-9)

    def test_paceChangedWhileWaiting(self) -> None:
        """A reload that turns pacing off, or shortens it, while a long gap is under way: the rest goes at the new pace, not after the old gap."""
        self.device.setPace(10.0)
        self.device.write(b"abc")
        self.device.setPace(0.5)
        self.clock.advance(0.5)
        self.assertEqual(self.writes(), [(0, b"a"), (0.5, b"b")])
        self.device.setPace(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIn(self.device, self.clock.getWriters())
        self.device.doWrite()
        self.assertEqual(self.writes(), [(0, b"a"), (0.5, b"b"), (0.5, b"c")])

    def test_paceLineOnly(self) -> None:
        """pace-line alone: everything up to a CR in one write, then at least pace-line before the rest."""
        self.device.setPace(0, 0.1)
        self.device.write(b"ls\rpwd\rx")
        self.drain(0.05)
        self.assertEqual(self.writes(), [(0, b"ls\r"), (0.1, b"pwd\r"), (0.2, b"x")])

    def test_paceAndPaceLine(self) -> None:
        """With both, the gap after a CR is the larger one."""
        self.device.setPace(0.01, 0.05)
        self.device.write(b"a\rb")
        self.drain(0.01)
        self.assertEqual(self.writes(), [(0, b"a"), (0.01, b"\r"), (0.06, b"b")])

    def test_idleDeviceWritesAtOnce(self) -> None:
        """After a quiet spell the next byte goes at once; the one after waits its turn."""
        self.device.setPace(0.01)
        self.device.write(b"a")
        self.clock.advance(1)
        self.device.write(b"bc")
        self.drain(0.01)
        self.assertEqual(self.writes(), [(0, b"a"), (1, b"b"), (1.01, b"c")])

    def test_breakAfterPacedOutput(self) -> None:
        """A break waits for the paced bytes before it; what is written during the break follows it, paced."""
        self.device.setPace(0.01)
        self.device.write(b"ab")
        self.assertTrue(self.device.sendBreak())
        self.device.write(b"cd")
        self.drain(0.01)
        events = [(round(t, 6), what, v) for t, what, v in self.port.events]
        self.assertEqual(events, [(0, "write", b"a"), (0.01, "write", b"b"), (0.01, "break", True),
                                  (0.26, "break", False), (0.26, "write", b"c"), (0.27, "write", b"d")])

    def test_deviceTakesNothing(self) -> None:
        """A device that takes nothing (EAGAIN) is watched for writing; the byte goes when it is writable."""
        self.device.setPace(0.01)
        self.port.accept = 0
        self.device.write(b"xy")
        self.assertIn(self.device, self.clock.getWriters())
        self.port.accept = None
        self.device.doWrite()
        self.assertNotIn(self.device, self.clock.getWriters())
        self.drain(0.01)
        self.assertEqual(self.writes(), [(0, b"x"), (0.01, b"y")])

    def test_purgeAndCloseStopTimers(self) -> None:
        """A transmit purge drops paced output and its timer; so does closing the device."""
        self.device.setPace(0.01)
        self.device.write(b"abc")
        self.device.purge(False, True)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.device.write(b"def")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # "d" waits its 10 ms after "a"
        self.device.close()
        self.assertEqual(self.writes(), [(0, b"a")])

    def test_writersPausedBehindPacedOutput(self) -> None:
        """Paced output queued past the high-water mark pauses the writers; they resume below the low-water mark."""
        line = Line("l", self.device, clock=self.clock)
        self.device.sink = line
        writer = RecordingClient()
        line.attach(writer)
        self.device.setPace(0, 0.001)
        line.clientData(writer, b"x\r" * (HIGH_WATER // 2 + 1))
        self.assertEqual((writer.paused, writer.resumed), (1, 0))
        steps = (HIGH_WATER - LOW_WATER) // 2 + 2
        self.clock.pump([0.001] * steps)
        self.assertEqual((writer.paused, writer.resumed), (1, 1))
        self.assertLess(self.device.queuedBytes(), LOW_WATER)
        self.device.close()

    def test_clientOutputNotPaced(self) -> None:
        """Device output reaches clients at once while paced input waits."""
        line = Line("l", self.device, clock=self.clock)
        self.device.sink = line
        reader = RecordingClient()
        line.attach(reader)
        self.device.setPace(1.0)
        self.device.write(b"slow")
        self.port.incoming.append(b"fast output")
        self.device.doRead()
        self.assertEqual(reader.received, [b"fast output"])
        self.device.close()

    def test_config(self) -> None:
        """pace and pace-line in milliseconds in the TOML file; a negative one is refused, named."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\npace = 5\npace-line = 100.5\n')
        (line,) = loadConfig(path)
        self.assertEqual((line.pace, line.paceLine), (0.005, 0.1005))
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\npace = -1\n')
        from serialgw.config.specs import ConfigError

        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertEqual(str(e), f"{path}:4: [lines.a] pace: pace must be 0 to 10000 milliseconds, not -1")


class RealPaceTests(TestCase):
    timeout = 30

    async def test_pacedToPty(self) -> None:
        """On a pty device, 5 bytes paced at 40 ms take at least 160 ms to arrive, intact."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW), pace=0.04))
        client = await connect(listenerPort(service))
        start = time.monotonic()
        client.transport.write(b"abcde")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(5), b"abcde")
        self.assertGreaterEqual(time.monotonic() - start, 0.16)
        await closeClients(client)
