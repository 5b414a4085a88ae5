"""
Remote devices: a second gateway serving a pty over RFC 2217 as the device
of a first one; raw unix and TCP consoles.
"""

from __future__ import annotations

import os
import termios

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.config import DeviceSpec, LineConfig, ListenerSpec, Protocol, SerialSettings
from serialgw.service import GatewayService
from tests.realio import Collector, closeClients, connect, startedPty

IAC, SB, SE, WILL = 255, 250, 240, 251


def whenControlled(line: object) -> defer.Deferred[None]:
    """Fires when an RFC 2217 client first takes control of the line."""
    controlled: defer.Deferred[None] = defer.Deferred()
    addController = line.addController  # type: ignore[attr-defined]

    def added(client: object) -> None:
        addController(client)
        if not controlled.called:
            controlled.callback(None)

    line.addController = added  # type: ignore[attr-defined]
    return controlled


class RemoteDeviceTests(TestCase):
    timeout = 30

    def start(self, config: LineConfig) -> GatewayService:
        service = GatewayService([config], retryPolicy=lambda attempt: 0.05)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    async def test_rfc2217Chain(self) -> None:
        """A gateway whose device is rfc2217:// to another gateway: settings, data, break and DTR reach the far pty."""
        pty = startedPty(self)
        far = self.start(LineConfig("far", DeviceSpec("tty", pty.slaveName),
                                    listeners=(ListenerSpec("tcp:0:interface=127.0.0.1"),)))
        farPort = far.ports[0][1].getHost().port
        near = self.start(LineConfig("near", DeviceSpec("rfc2217", host="127.0.0.1", port=farPort),
                                     settings=SerialSettings(57600, stopbits=2),
                                     listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),)))
        farLine = far.lines["far"]
        controlled = whenControlled(farLine)
        await controlled
        client = await connect(near.ports[0][1].getHost().port)
        # Data both ways proves the chain is up (and the settings sent before it).
        client.transport.write(b"\x00\xff\r\n")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(4), b"\x00\xff\r\n")
        attrs = termios.tcgetattr(pty.master)
        self.assertEqual(attrs[5], termios.B57600)
        self.assertTrue(attrs[2] & termios.CSTOPB)
        pty.write(b"\xff back")
        self.assertEqual(await client.received.length(6), b"\xff back")

        nearLine = near.lines["near"]
        self.assertTrue(nearLine.device.sendBreak(0.1))
        nearLine.device.setModemLine("dtr", False)
        nearLine.device.apply(SerialSettings(9600))
        client.transport.write(b"sync")  # type: ignore[union-attr]
        await pty.received.contains(b"sync")
        self.assertEqual(farLine.device.breaks, 1)
        self.assertEqual(farLine.device.modemLines["dtr"], False)
        self.assertEqual(termios.tcgetattr(pty.master)[5], termios.B9600)
        await closeClients(client)

    async def test_ptyProgramSetsRemoteBaud(self) -> None:
        """A program on a pty: listener sets 9600 with tcsetattr; the remote RFC 2217 port follows (remserial -l cannot)."""
        pty = startedPty(self)
        far = self.start(LineConfig("far", DeviceSpec("tty", pty.slaveName),
                                    listeners=(ListenerSpec("tcp:0:interface=127.0.0.1"),)))
        farLine = far.lines["far"]
        controlled = whenControlled(farLine)
        link = os.path.abspath(self.mktemp())
        from serialgw.endpoints import parseListener

        self.start(LineConfig("near", DeviceSpec("rfc2217", host="127.0.0.1", port=far.ports[0][1].getHost().port),
                              listeners=(parseListener(f"pty:{link}"),)))
        await controlled
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B9600
        attrs[2] |= termios.CSTOPB
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        os.write(fd, b"program says hi")
        self.assertEqual(await pty.received.length(15), b"program says hi")
        farAttrs = termios.tcgetattr(pty.master)
        self.assertEqual(farAttrs[5], termios.B9600)
        self.assertTrue(farAttrs[2] & termios.CSTOPB)

    async def test_unixRawDevice(self) -> None:
        """unix:PATH as a device (a Proxmox VM's serial socket): bytes both ways, reconnect after the far end restarts."""
        path = os.path.abspath(self.mktemp())
        accepted: list[defer.Deferred[Collector]] = [defer.Deferred(), defer.Deferred()]

        class Console(Collector):
            def connectionMade(self) -> None:
                next(d for d in accepted if not d.called).callback(self)

        factory = protocol.Factory.forProtocol(Console)
        listening = await UNIXServerEndpoint(reactor, path).listen(factory)
        gw = self.start(LineConfig("vm100", DeviceSpec("unix", path),
                                   listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),)))
        console = await accepted[0]
        user = await connect(gw.ports[0][1].getHost().port)
        console.transport.write(b"login: ")  # type: ignore[union-attr]
        self.assertEqual(await user.received.length(7), b"login: ")
        user.transport.write(b"root\r")  # type: ignore[union-attr]
        self.assertEqual(await console.received.length(5), b"root\r")

        await listening.stopListening()
        await closeClients(console)
        listening = await UNIXServerEndpoint(reactor, path).listen(factory)
        self.addCleanup(listening.stopListening)
        console = await accepted[1]
        console.transport.write(b"again")  # type: ignore[union-attr]
        self.assertEqual(await user.received.length(12), b"login: again")
        await closeClients(console, user)


class RemotePauseTests(SynchronousTestCase):
    def test_linkMadeWhilePausedStartsPaused(self) -> None:
        """A lossless client paused the line while the link was down: the new link does not read until resumed."""
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        from serialgw.remote import RemoteDevice

        device = RemoteDevice(DeviceSpec("tcp", host="127.0.0.1", port=1), MemoryReactorClock())
        device.pauseReading()
        link = protocol.Protocol()
        link.makeConnection(StringTransport())
        device._linkUp(link)
        self.assertEqual(link.transport.producerState, "paused")  # type: ignore[attr-defined]
        device.resumeReading()
        self.assertEqual(link.transport.producerState, "producing")  # type: ignore[attr-defined]


class RemoteStateTests(SynchronousTestCase):
    def test_downUntilFirstConnection(self) -> None:
        """
        A remote console is down (with a reason) until the first connection,
        and that connection tells the line (which started down), as every
        reconnection does; a loss gives its reason.
        """
        from twisted.internet.testing import MemoryReactorClock, StringTransport
        from twisted.python.failure import Failure

        from serialgw.line import Line
        from serialgw.remote import RemoteDevice

        device = RemoteDevice(DeviceSpec("tcp", host="127.0.0.1", port=1), MemoryReactorClock())
        line = Line("vm", device)
        device.sink = line
        self.assertEqual((device.up, device.downReason, line.up), (False, "not connected yet", False))
        link = protocol.Protocol()
        link.makeConnection(StringTransport())
        device._linkUp(link)
        self.assertEqual((device.up, device.downReason, line.up), (True, None, True))
        device._linkDown(link, Failure(ConnectionRefusedError("Connection refused")))
        self.assertEqual((device.up, device.downReason, line.up), (False, "Connection refused", False))
