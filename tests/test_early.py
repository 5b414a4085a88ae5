"""
What the device said before the gateway opened it is kept: the tty's input
queue is not flushed at open, and the first person to attach gets it.
"""

from __future__ import annotations

import os
import tty

from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.config import DeviceSpec, LineConfig, ListenerSpec, Protocol, SerialSettings
from serialgw.device import TtyPort
from serialgw.line import Line
from serialgw.service import GatewayService
from tests.fakes import RecordingClient, RecordingDevice
from tests.realio import PtyPair, closeClients, connect

BOOT = b"[    0.000000] Linux version 6.1\r\nbooting...\r\n"


class PendingInputTests(SynchronousTestCase):
    def test_openKeepsPendingInput(self) -> None:
        """Bytes waiting in a tty's input queue when it is opened are read, not flushed (no TCIFLUSH)."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        os.write(master, BOOT)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        self.addCleanup(port.close)
        self.assertEqual(port.read(), BOOT)


class EarlyOutputTests(SynchronousTestCase):
    def test_firstPersonOnly(self) -> None:
        """takeEarlyOutput gives the output so far once (the first person), then nothing."""
        line = Line("l", RecordingDevice())
        line.deviceDataReceived(b"one ")
        line.deviceDataReceived(b"two")
        self.assertEqual(line.takeEarlyOutput(), b"one two")
        line.deviceDataReceived(b"three")
        self.assertEqual(line.takeEarlyOutput(), b"")

    def test_bounded(self) -> None:
        """Early output is the backlog: the newest backlogSize bytes, none with no backlog."""
        line = Line("l", RecordingDevice())
        line.backlogSize = 4
        line.deviceDataReceived(b"0123456789")
        self.assertEqual(line.takeEarlyOutput(), b"6789")
        quiet = Line("q", RecordingDevice())
        quiet.backlogSize = 0
        quiet.deviceDataReceived(b"0123456789")
        self.assertEqual(quiet.takeEarlyOutput(), b"")

    def test_notForOtherClients(self) -> None:
        """Attaching a client that is not a person (a file, a log) leaves the early output for the first person."""
        line = Line("l", RecordingDevice())
        line.attach(RecordingClient("file:x"))
        line.deviceDataReceived(b"boot")
        self.assertEqual(line.takeEarlyOutput(), b"boot")


class BootMessagesTests(TestCase):
    timeout = 30

    async def test_bootMessagesReachFirstClient(self) -> None:
        """Bytes written to the pty master before the gateway opened the slave reach the first client and the backlog; a second client does not get them again."""
        pty = PtyPair()
        self.addCleanup(pty.close)
        pty.write(BOOT)
        config = LineConfig(
            name="vm",
            device=DeviceSpec("tty", pty.slaveName),
            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),),
        )
        service = GatewayService([config])
        service.startService()
        self.addCleanup(service.stopService)
        pty.startReading()
        line = service.lines["vm"]
        port = service.ports[0][1].getHost().port
        first = await connect(port)
        self.assertEqual(await first.received.length(len(BOOT)), BOOT)
        self.assertEqual(line.backlog(), BOOT)
        second = await connect(port)
        second.transport.write(b"x")  # type: ignore[union-attr]
        await pty.received.contains(b"x")
        pty.write(b"later")
        self.assertEqual(await second.received.length(5), b"later")
        self.assertEqual(await first.received.length(len(BOOT) + 5), BOOT + b"later")
        await closeClients(first, second)
