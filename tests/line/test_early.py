"""
What the device said before the gateway opened it is kept: the tty's input
queue is not flushed at open, and the first person to attach gets it.
"""

from __future__ import annotations

import os
import tty

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.devices.ports import TtyPort
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_sessions import Harness
from tests.fakes import RecordingClient, RecordingDevice
from tests.realio import PtyPair, closeClients, connect, listenerPort, startGateway, testLockDir

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

    def test_healthCheckLeavesItForThePerson(self) -> None:
        """A connection that comes and goes within a second without a word (a health check) leaves the early output to the first real person."""
        h = Harness()
        h.line.deviceDataReceived(BOOT)
        check, checkT = h.telnet("raw+4444", port=2, agree=b"")
        h.line.clock.advance(0.9)
        check.connectionLost()
        person = TelnetClient(h.line, Role.WRITER, listener=parseListener("raw+4444"))
        personT = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 3))
        person.makeConnection(personT)
        self.assertEqual(personT.value()[-len(BOOT):], BOOT)  # after its telnet negotiation
        h.line.clock.advance(1)  # it stays: announced, a person who had it
        person.connectionLost()
        self.assertEqual(h.line.takeEarlyOutput(), b"")
        self.assertEqual(h.line.clock.getDelayedCalls(), [])


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
            lockDir=testLockDir(),
        )
        service = startGateway(self, config)
        pty.startReading()
        line = service.lines["vm"]
        port = listenerPort(service)
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
