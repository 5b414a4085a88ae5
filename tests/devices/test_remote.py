"""
Remote devices: a second gateway serving a pty over RFC 2217 as the device
of a first one; raw unix and TCP consoles.
"""

from __future__ import annotations

import os
import termios
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from serialgw.app.service import GatewayService
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.device import HIGH_WATER
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import RawLink, TelnetLink
from serialgw.interfaces import IDevice
from serialgw.line.hub import Line
from serialgw.wire.telnet import COMMANDS_PER_TURN
from serialgw.wire.telnetcodes import BINARY, BRK, DM, DO, DONT, IAC, NOP, SB, SE, WILL, WONT
from tests.fakes import BoundedTransport, RecordingClient, flap, observeLog, oneTurn
from tests.realio import (
    Collector,
    closeClients,
    connect,
    listenerPort,
    ptysLinked,
    socketPath,
    startedPty,
    startGateway,
    testLockDir,
)
from tests.telnetpeer import AGREE, WONT_COM_PORT, toggleAnswers


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


class RemoteWriteBoundTests(SynchronousTestCase):
    """
    Typing into a remote console that does not read is bounded like typing
    into a slow UART: past HIGH_WATER bytes in the link's transport (or while
    an RFC 2217 remote has suspended us) the writers are paused, and resumed
    once it has drained.
    """

    def connected(self, kind: str, link: type) -> tuple[RemoteDevice, Line, RecordingClient, BoundedTransport]:
        device = RemoteDevice(DeviceSpec(kind, host="127.0.0.1", port=1), Clock())
        line = Line("t", device, clock=Clock())
        device.sink = line
        writer = RecordingClient("writer:1")
        line.attach(writer)
        transport = BoundedTransport()
        link(device).makeConnection(transport)
        transport.clear()
        return device, line, writer, transport

    def test_writersPausedPastHighWater(self) -> None:
        """A raw or telnet console that never reads: writers paused once HIGH_WATER bytes wait, resumed when it drains."""
        for kind, link in (("tcp", RawLink), ("telnet", TelnetLink)):
            device, line, writer, transport = self.connected(kind, link)
            self.assertEqual(transport.bufferSize, HIGH_WATER)
            line.clientData(writer, b"x" * HIGH_WATER)
            self.assertEqual((writer.paused, writer.resumed), (0, 0))
            line.clientData(writer, b"y")
            self.assertEqual((writer.paused, writer.resumed), (1, 0))
            self.assertEqual(line.writable, False)
            # What a writer had read already still goes out, in order.
            line.clientData(writer, b"z")
            self.assertEqual(transport.drain(), b"x" * HIGH_WATER + b"yz")
            self.assertEqual((writer.paused, writer.resumed), (1, 1))
            self.assertEqual(line.writable, True)

    def test_negotiationFloodTakesTurns(self) -> None:
        """
        A telnet console sending nothing but negotiation: COMMANDS_PER_TURN
        commands are handled a turn, its link not read until the next turn
        (other lines get the reactor between); every toggle is answered (past
        MAX_OPTION_CHANGES, the DO refused).
        """
        device, line, writer, transport = self.connected("telnet", TelnetLink)
        link = device._link
        link.dataReceived(bytes((IAC, DO, BINARY, IAC, DONT, BINARY)) * COMMANDS_PER_TURN + b"up")
        # Our own request (WILL BINARY) was under way: the first DO is no news (a change all the same).
        enables = [True, False] * COMMANDS_PER_TURN
        self.assertEqual(transport.value(),
                         toggleAnswers(enables[1:COMMANDS_PER_TURN], WILL, WONT, BINARY, on=True, changes=1))
        self.assertEqual((transport.producerState, writer.received), ("paused", []))
        oneTurn(device.reactor)
        self.assertEqual(transport.value(), toggleAnswers(enables[1:], WILL, WONT, BINARY, on=True, changes=1))
        self.assertEqual((transport.producerState, writer.received), ("producing", [b"up"]))
        self.assertEqual(device.reactor.getDelayedCalls(), [])

    def test_synchFloodCountedNotLogged(self) -> None:
        """A telnet console sending Synch after Synch: the data before each DM is discarded (RFC 854), the Synchs counted in its ignored-input line (at most one a minute), not a log line each."""
        device, line, writer, transport = self.connected("telnet", TelnetLink)
        link = device._link
        urgent = [False]
        link._urgent = lambda: urgent[0]
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        for _ in range(100):
            urgent[0] = True
            link.dataReceived(b"x" + bytes((IAC,)))
            urgent[0] = False
            link.dataReceived(bytes((DM,)) + b"y")
        self.assertEqual(b"".join(writer.received), b"y" * 100)
        self.assertEqual(link.ignored.counts, {"Synch discarding data": 99})
        self.assertEqual(len(events), 1)

    def test_consoleThatNeverReadsAnswersBounded(self) -> None:
        """
        A telnet console that floods negotiation and never reads our
        answers: once LINK_LIMIT bytes wait for it, it is not read (nor
        its input parsed) until it has taken them; memory stays bounded.
        """
        from serialgw.devices.linkbase import LINK_LIMIT

        device, line, writer, transport = self.connected("telnet", TelnetLink)
        link = device._link
        chunk = bytes((IAC, DO, BINARY, IAC, DONT, BINARY)) * (65536 // 6)
        turns = 0
        while transport.producerState == "producing" or device.reactor.getDelayedCalls():
            if transport.producerState == "producing":
                link.dataReceived(chunk)
            oneTurn(device.reactor)
            turns += 1
            self.assertLess(turns, 10000)
        self.assertGreater(len(transport.value()), LINK_LIMIT)
        self.assertLessEqual(transport.most, LINK_LIMIT + 3 * COMMANDS_PER_TURN)
        # Held: more turns parse nothing, what arrives waits.
        waiting = len(transport.value())
        link.dataReceived(b"more")
        oneTurn(device.reactor)
        self.assertEqual((len(transport.value()), transport.producerState), (waiting, "paused"))
        # It reads: parsing and reading go on.
        transport.drain()
        self.assertGreater(len(transport.value()), 0)
        while device.reactor.getDelayedCalls():
            transport.drain()
            oneTurn(device.reactor)
        transport.drain()
        self.assertEqual((transport.producerState, writer.received[-1][-4:]), ("producing", b"more"))

    def test_garbageLoggedOncePerMinute(self) -> None:
        """
        A console answering garbage (subnegotiations without IAC SE, absurd
        RFC 2217 answers): counted, logged at once and then at most once a
        minute with the counts, not a log line each (76-189 a second seen).
        """
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        link = device._link
        bad = bytes((IAC, SB, 99, 1, 2, IAC, NOP))  # IAC NOP inside SB: the SE lost
        absurd = bytes((IAC, SB, 44, 101)) + b"\xff" * 8 + bytes((IAC, SE))  # baud 4294967295
        for _ in range(200):
            link.dataReceived(bad + absurd)
            oneTurn(device.reactor)
        texts = [formatEvent(e) for e in events if "console" in formatEvent(e) or "answer" in formatEvent(e)]
        self.assertEqual(texts, ["rfc2217://127.0.0.1:1: 1 malformed subnegotiation from the console",
                                 "rfc2217://127.0.0.1:1: RFC 2217 answer b'e\\xff\\xff\\xff\\xff' ignored: baud rate must "
                                 "be 1 to 2147483647, not 4294967295"])
        device.reactor.advance(60)
        link.dataReceived(bad + absurd)
        link.connectionLost(Failure(Exception("gone")))
        texts = [formatEvent(e) for e in events if "from the console" in formatEvent(e)]
        self.assertEqual(texts[1:], ["rfc2217://127.0.0.1:1: 200 bad RFC 2217 answers, 200 malformed subnegotiations "
                                     "from the console",
                                     "rfc2217://127.0.0.1:1: 1 bad RFC 2217 answer from the console"])

    def test_suspendPausesWriters(self) -> None:
        """FLOWCONTROL-SUSPEND from an RFC 2217 remote pauses the writers at once; typed bytes wait, bounded, until RESUME."""
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        link = device._link
        link.dataReceived(bytes((IAC, SB, 44, 108, IAC, SE)))  # FLOWCONTROL-SUSPEND
        self.assertEqual((writer.paused, writer.resumed), (1, 0))
        line.clientData(writer, b"abc")
        self.assertEqual(transport.value(), b"")
        self.assertEqual(device.queuedBytes(), 3)
        link.dataReceived(bytes((IAC, SB, 44, 109, IAC, SE)))  # FLOWCONTROL-RESUME
        self.assertEqual(transport.value(), b"abc")
        self.assertEqual((writer.paused, writer.resumed), (1, 1))

    def test_comPortTurnedOff(self) -> None:
        """
        An RFC 2217 remote that turns COM-PORT-OPTION off (DONT, answered
        WONT): no more subnegotiations to it (RFC 855), a break goes as IAC
        BRK, and what a SUSPEND held is sent after our answer.
        """
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        link = device._link
        link.dataReceived(bytes((IAC, DO, 44)))
        self.assertTrue(link.comPort)
        link.dataReceived(bytes((IAC, SB, 44, 108, IAC, SE)))  # FLOWCONTROL-SUSPEND
        line.clientData(writer, b"abc")
        transport.clear()
        link.dataReceived(bytes((IAC, DONT, 44)))
        self.assertEqual(transport.value(), bytes((IAC, WONT, 44)) + b"abc")
        self.assertEqual((writer.paused, writer.resumed), (1, 1))
        transport.clear()
        link.applySettings(SerialSettings(9600))
        self.assertTrue(link.sendBreak())
        self.assertEqual(transport.value(), bytes((IAC, BRK)))

    def test_longSuspendSaid(self) -> None:
        """A FLOWCONTROL-SUSPEND that lasts SUSPEND_WARN s is logged once (a short one is not), its end too; a link lost meanwhile is no resume and leaves no timer."""
        from serialgw.devices.comportlink import SUSPEND_WARN

        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        clock = device.reactor
        suspend, resume = bytes((IAC, SB, 44, 108, IAC, SE)), bytes((IAC, SB, 44, 109, IAC, SE))
        said = lambda: [e for e in events if "FLOWCONTROL" in str(e.get("log_format"))]  # noqa: E731
        device._link.dataReceived(suspend)
        clock.advance(SUSPEND_WARN - 1)
        device._link.dataReceived(resume)
        clock.advance(SUSPEND_WARN)
        self.assertEqual(said(), [])
        device._link.dataReceived(suspend + suspend)
        clock.advance(SUSPEND_WARN)
        self.assertEqual(len(said()), 1)
        self.assertEqual([e["seconds"] for e in events if "seconds" in e], [SUSPEND_WARN])
        clock.advance(100)
        device._link.dataReceived(resume)
        self.assertEqual(len(said()), 2)
        self.assertEqual([e["seconds"] for e in events if "seconds" in e], [SUSPEND_WARN, SUSPEND_WARN + 100])
        link = device._link
        link.dataReceived(suspend)
        clock.advance(SUSPEND_WARN)
        self.assertEqual(len(said()), 3)
        link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual(len(said()), 3)
        link.dataReceived(suspend)
        link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual([c for c in clock.getDelayedCalls() if c.func == link._suspendLasts], [])

    def test_suspendInStatus(self) -> None:
        """^]s says typing is paused while an RFC 2217 remote has us suspended, and not once it resumes."""
        from serialgw.clients.raw import RawClient
        from serialgw.config.listeners import parseListener
        from serialgw.line.role import Role

        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        client = RawClient(line, Role.WRITER, listener=parseListener("raw,escape=^]+4444"), clock=Clock())
        out = BoundedTransport()
        client.makeConnection(out)
        device._link.dataReceived(bytes((IAC, SB, 44, 108, IAC, SE)))
        out.clear()
        client.dataReceived(b"\x1ds")
        self.assertTrue(out.value().endswith(b"; typing paused: the device takes no input now]\r\n"), out.value())
        device._link.dataReceived(bytes((IAC, SB, 44, 109, IAC, SE)))
        out.clear()
        client.dataReceived(b"\x1ds")
        self.assertNotIn(b"paused", out.value())

    def test_linkLostReleasesWriters(self) -> None:
        """A link lost while suspended: writers go on (typing is dropped and counted while the device is down)."""
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        device._link.dataReceived(bytes((IAC, SB, 44, 108, IAC, SE)))
        line.clientData(writer, b"abcd")
        device._link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual((writer.paused, writer.resumed), (1, 1))
        self.assertEqual(device.dropped, 4)
        line.clientData(writer, b"ef")
        self.assertEqual(device.dropped, 6)

    def test_linkLostCountsWhatItHeld(self) -> None:
        """Typing held for a suspended RFC 2217 remote when its link goes: dropped and unsent (never in bytesToDevice), logged naming the line, with the count."""
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        device._link.dataReceived(bytes((IAC, SB, 44, 108, IAC, SE)))
        line.clientData(writer, b"abcd")
        self.assertEqual(line.bytesToDevice, 0)
        device._link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual((device.dropped, device.unsent, line.bytesToDevice), (4, 4, 0))
        self.assertEqual([(e["line"], e["count"]) for e in events if "lost with it" in str(e.get("log_format"))],
                         [("t", 4)])

    def test_answersLostAreNoTyping(self) -> None:
        """A telnet console that negotiates and never reads, then goes: our answers waiting for it are not typing lost (nobody typed: '768 byte(s) queued for the device were lost' was logged, and counted dropped); typing that waited behind them is, exactly."""
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        device, line, writer, transport = self.connected("telnet", TelnetLink)
        link = device._link
        link.dataReceived(bytes((IAC, WILL, 1, IAC, WONT, 1)) * 8)
        self.assertGreater(len(transport.value()), 0)  # (our answers, not taken)
        link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual((device.dropped, device.unsent), (0, 0))
        self.assertEqual([e for e in events if "lost with it" in str(e.get("log_format"))], [])
        device, line, writer, transport = self.connected("telnet", TelnetLink)
        link = device._link
        link.dataReceived(bytes((IAC, WILL, 1, IAC, WONT, 1)) * 8)
        line.clientData(writer, b"ab\xff")
        link.dataReceived(bytes((IAC, WILL, 1, IAC, WONT, 1)) * 8)
        link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual((device.dropped, device.unsent), (4, 4))  # (IAC doubled on the wire)

    def test_partlySentNotQueued(self) -> None:
        """What Twisted's transport has sent of its buffer (before C{offset}) is not queued, nor lost with the link: it was counted so (the status page's bytes to the device too low)."""
        device, line, writer, transport = self.connected("tcp", RawLink)
        line.clientData(writer, b"abcdef")
        transport.offset = 4  # type: ignore[attr-defined]  # (a partial send, as FileDescriptor.doWrite keeps it)
        self.assertEqual(device.queuedBytes(), 2)
        device._link.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual((device.dropped, device.unsent, line.bytesToDevice), (2, 2, 4))

    def test_closeThenLinkLostCountsOnce(self) -> None:
        """Typing held for a suspended remote when the line's device is closed: dropped once, not again when the aborted link goes."""
        device, line, writer, transport = self.connected("rfc2217", ComPortLink)
        link = device._link
        link.dataReceived(bytes((IAC, SB, 44, 108, IAC, SE)))
        line.clientData(writer, b"abcd")
        device.close()
        link.connectionLost(Failure(ConnectionError("aborted")))
        self.assertEqual((device.dropped, device.unsent, line.bytesToDevice), (4, 4, 0))


class RemoteDeviceTests(TestCase):
    timeout = 30

    def start(self, config: LineConfig) -> GatewayService:
        return startGateway(self, config, retryPolicy=lambda attempt: 0.05)

    async def test_rfc2217Chain(self) -> None:
        """A gateway whose device is rfc2217:// to another gateway: settings, data, break and DTR reach the far pty."""
        pty = startedPty(self)
        far = self.start(LineConfig("far", DeviceSpec("tty", pty.slaveName),
                                    listeners=(ListenerSpec("tcp:0:interface=127.0.0.1"),), lockDir=testLockDir()))
        farPort = listenerPort(far)
        near = self.start(LineConfig("near", DeviceSpec("rfc2217", host="127.0.0.1", port=farPort),
                                     settings=SerialSettings(57600, stopbits=2),
                                     listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),)))
        farLine = far.lines["far"]
        controlled = whenControlled(farLine)
        await controlled
        client = await connect(listenerPort(near))
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
                                    listeners=(ListenerSpec("tcp:0:interface=127.0.0.1"),), lockDir=testLockDir()))
        farLine = far.lines["far"]
        controlled = whenControlled(farLine)
        link = os.path.abspath(self.mktemp())
        from serialgw.config.listeners import parseListener

        near = self.start(LineConfig("near", DeviceSpec("rfc2217", host="127.0.0.1", port=listenerPort(far)),
                                     listeners=(parseListener(f"pty:{link}"),)))
        await controlled
        await ptysLinked(near)
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
        path = socketPath(self)
        accepted: list[defer.Deferred[Collector]] = [defer.Deferred(), defer.Deferred()]

        class Console(Collector):
            def connectionMade(self) -> None:
                next(d for d in accepted if not d.called).callback(self)

        factory = protocol.Factory.forProtocol(Console)
        listening = await UNIXServerEndpoint(reactor, path).listen(factory)
        gw = self.start(LineConfig("vm100", DeviceSpec("unix", path),
                                   listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),)))
        console = await accepted[0]
        user = await connect(listenerPort(gw))
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

    async def test_consoleThatNeverReads(self) -> None:
        """A unix: console that reads nothing: the typing client is paused past HIGH_WATER, and the gateway still stops."""
        path = socketPath(self)
        accepted: defer.Deferred[Collector] = defer.Deferred()

        class Console(Collector):
            def connectionMade(self) -> None:
                self.transport.pauseProducing()  # type: ignore[union-attr]
                accepted.callback(self)

        listening = await UNIXServerEndpoint(reactor, path).listen(protocol.Factory.forProtocol(Console))
        self.addCleanup(listening.stopListening)
        gw = GatewayService([LineConfig("vm", DeviceSpec("unix", path),
                                        listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),))],
                            retryPolicy=lambda attempt: 0.05)
        gw.startService()
        console = await accepted
        line = gw.lines["vm"]
        paused: defer.Deferred[None] = defer.Deferred()
        deviceWritable = line.deviceWritable

        def noteWritable(writable: bool) -> None:
            deviceWritable(writable)
            if not writable and not paused.called:
                paused.callback(None)

        line.deviceWritable = noteWritable  # type: ignore[method-assign]
        user = await connect(listenerPort(gw))
        user.transport.write(b"x" * (32 * 1024 * 1024))  # type: ignore[union-attr]
        await paused
        self.assertEqual(line.writable, False)
        # The gateway no longer reads the typing client.
        self.assertNotIn(line.clients[0].transport, reactor.getReaders())  # type: ignore[attr-defined]
        self.assertLessEqual(line.device.queuedBytes(), 64 * 1024 + 65536)  # type: ignore[attr-defined]
        await gw.stopService()
        self.assertGreater(line.device.dropped, 0)
        # A stop leaves its clients to go by themselves: the gateway's side
        # of the typing client, reading again, goes once it has read to the
        # end, maybe after the client has closed (up to megabytes still in
        # the kernel's buffers).  Waited for: left to trial's last turns,
        # it was once still there ('Reactor was unclean: <RawClient #0>',
        # run 722 of --until-failure at load ~15).
        gone: defer.Deferred[None] = defer.Deferred()
        detach = line.detach

        def detached(client: Any) -> None:
            detach(client)
            if not line.clients and not gone.called:
                gone.callback(None)

        line.detach = detached  # type: ignore[method-assign]
        await closeClients(console, user)
        if line.clients:
            await gone

    async def test_breakToUnixRawDevice(self) -> None:
        """^] b from a real TCP client to a unix: raw console: the client reads why not; the console gets nothing but data."""
        from serialgw.config.listeners import parseListener

        path = socketPath(self)
        accepted: defer.Deferred[Collector] = defer.Deferred()

        class Console(Collector):
            def connectionMade(self) -> None:
                accepted.callback(self)

        listening = await UNIXServerEndpoint(reactor, path).listen(protocol.Factory.forProtocol(Console))
        self.addCleanup(listening.stopListening)
        gw = self.start(LineConfig("vm100", DeviceSpec("unix", path),
                                   listeners=(parseListener("raw,escape=^]+tcp:0:interface=127.0.0.1"),)))
        console = await accepted
        user = await connect(listenerPort(gw))
        user.transport.write(b"\x1dbx")  # type: ignore[union-attr]
        notice = f"\r\n[serialgw: no break: unix:{path} is a raw socket: it cannot carry a break]\r\n".encode()
        self.assertEqual(await user.received.length(len(notice)), notice)
        self.assertEqual(await console.received.length(1), b"x")
        self.assertEqual(gw.lines["vm100"].device.breaks, 0)
        await closeClients(console, user)


class RemoteBreakTests(SynchronousTestCase):
    """A break asked of a remote device that cannot carry one: the person is told, the log says why."""

    def setUp(self) -> None:
        from twisted.internet.testing import MemoryReactorClock

        self.events: list[dict[str, object]] = []
        observeLog(self, self.events.append)
        self.clock = MemoryReactorClock()

    def gateway(self, spec: DeviceSpec, linked: bool = True) -> tuple[object, object]:
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import StringTransport

        from serialgw.clients.telnet import TelnetClient
        from serialgw.config.listeners import parseListener
        from serialgw.devices.remote import RemoteDevice
        from serialgw.devices.remotelinks import RawLink, TelnetLink
        from serialgw.line.hub import Line

        device = RemoteDevice(spec, self.clock)
        line = Line("vm100", device, clock=self.clock)
        device.sink = line
        self.farEnd = StringTransport()
        if linked:
            (RawLink if spec.kind in ("tcp", "unix") else TelnetLink)(device).makeConnection(self.farEnd)
        self.farEnd.clear()
        client = TelnetClient(line, listener=parseListener("telnet,escape=^]+4444"), clock=self.clock)
        self.user = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(self.user)
        self.user.clear()
        return device, client

    def refusals(self) -> list[object]:
        return [e["reason"] for e in self.events if str(e.get("log_format", "")).startswith("{line}: break from")]

    def test_rawUnixDevice(self) -> None:
        """IAC BRK and ^] b to a unix: raw console: a notice each, nothing to the far end, the log names the reason."""
        device, client = self.gateway(DeviceSpec("unix", "/run/qemu-server/100.serial0"))
        reason = "unix:/run/qemu-server/100.serial0 is a raw socket: it cannot carry a break"
        self.assertEqual(device.noBreak, reason)  # type: ignore[attr-defined]
        client.dataReceived(b"\xff\xf3")  # type: ignore[attr-defined]
        self.assertEqual(self.user.value(), b"\r\n[serialgw: no break: " + reason.encode() + b"]\r\n")
        self.user.clear()
        self.clock.advance(1)
        client.dataReceived(b"\x1db")  # type: ignore[attr-defined]
        self.assertEqual(self.user.value(), b"\r\n[serialgw: no break: " + reason.encode() + b"]\r\n")
        self.assertEqual((self.farEnd.value(), device.breaks, device.breaking), (b"", 0, False))  # type: ignore[attr-defined]
        self.assertEqual(self.refusals(), [reason, reason])
        self.assertFalse([e for e in self.events if "under way" in str(e.get("log_format", ""))])

    def test_refusalsBounded(self) -> None:
        """10000 IAC BRK in one second: one notice and one log line, not 10000; a second later, one more."""
        _, client = self.gateway(DeviceSpec("unix", "/run/vm.serial0"))
        notice = b"\r\n[serialgw: no break: unix:/run/vm.serial0 is a raw socket: it cannot carry a break]\r\n"
        client.dataReceived(b"\xff\xf3" * 5000)  # type: ignore[attr-defined]
        self.clock.advance(0.99)
        client.dataReceived(b"\xff\xf3" * 5000)  # type: ignore[attr-defined]
        self.assertEqual((self.user.value(), len(self.refusals())), (notice, 1))
        self.clock.advance(0.01)
        client.dataReceived(b"\xff\xf3")  # type: ignore[attr-defined]
        self.assertEqual((self.user.value(), len(self.refusals())), (notice * 2, 2))

    def test_rawTcpDevice(self) -> None:
        """tcp:HOST:PORT is raw too: the same notice, naming it."""
        device, client = self.gateway(DeviceSpec("tcp", host="10.0.0.5", port=7000))
        client.dataReceived(b"\x1db")  # type: ignore[attr-defined]
        self.assertEqual(self.user.value(),
                         b"\r\n[serialgw: no break: tcp:10.0.0.5:7000 is a raw socket: it cannot carry a break]\r\n")

    def test_telnetDeviceCarriesBreak(self) -> None:
        """A telnet: console takes the break as IAC BRK; the person is told nothing, the console log records it."""
        device, client = self.gateway(DeviceSpec("telnet", host="127.0.0.1", port=5555))
        self.assertEqual(device.noBreak, "")  # type: ignore[attr-defined]
        client.dataReceived(b"\x1db")  # type: ignore[attr-defined]
        self.assertEqual((self.farEnd.value(), self.user.value()), (b"\xff\xf3", b""))
        client.dataReceived(b"\x1db")  # type: ignore[attr-defined]
        self.assertEqual(self.user.value(), b"\r\n[serialgw: no break: one is under way]\r\n")
        self.assertEqual(self.refusals(), ["one is under way"])

    def test_deviceDown(self) -> None:
        """A telnet: console not connected (yet): the person is told the device is down, not that a break is under way."""
        device, client = self.gateway(DeviceSpec("telnet", host="127.0.0.1", port=5555), linked=False)
        verifyObject(IDevice, device)
        client.dataReceived(b"\xff\xf3")  # type: ignore[attr-defined]
        self.assertEqual(self.user.value(), b"\r\n[serialgw: no break: the device is down]\r\n")
        self.assertEqual(self.refusals(), ["the device is down"])


class RemotePauseTests(SynchronousTestCase):
    def test_linkMadeWhilePausedStartsPaused(self) -> None:
        """A lossless client paused the line while the link was down: the new link does not read until resumed."""
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        from serialgw.devices.remote import RemoteDevice

        device = RemoteDevice(DeviceSpec("tcp", host="127.0.0.1", port=1), MemoryReactorClock())
        device.pauseReading()
        link = protocol.Protocol()
        transport = StringTransport()
        link.makeConnection(transport)
        device._linkUp(link)
        self.assertEqual(transport.producerState, "paused")
        device.resumeReading()
        self.assertEqual(transport.producerState, "producing")


class RemoteStateTests(SynchronousTestCase):
    def test_downUntilFirstConnection(self) -> None:
        """
        A remote console is down (with a reason) until the first connection,
        and that connection tells the line (which started down), as every
        reconnection does; a loss gives its reason.
        """
        from twisted.internet.testing import MemoryReactorClock, StringTransport
        from twisted.python.failure import Failure

        from serialgw.devices.remote import RemoteDevice
        from serialgw.line.hub import Line

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


    def test_downOnceClosed(self) -> None:
        """A remote console closed is down ("closed") at once, its link not gone yet: what it is given then is dropped and counted."""
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        from serialgw.devices.remote import RemoteDevice

        device = RemoteDevice(DeviceSpec("tcp", host="127.0.0.1", port=1), MemoryReactorClock())
        link = protocol.Protocol()
        transport = StringTransport()
        link.makeConnection(transport)
        device._linkUp(link)
        device.close()
        device.write(b"exit\r")
        self.assertEqual((device.up, device.downReason, device.dropped, transport.value()), (False, "closed", 5, b""))


class RemoteAnswerTests(SynchronousTestCase):
    def test_absurdBaudAnswerIgnored(self) -> None:
        """A remote RFC 2217 server answering SET-BAUDRATE 0 or 2^32 - 1: the first a warning, the second counted; the settings stay."""
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        from serialgw.devices.comportlink import ComPortLink
        from serialgw.devices.remote import RemoteDevice

        device = RemoteDevice(DeviceSpec("rfc2217", host="127.0.0.1", port=1), MemoryReactorClock(),
                              settings=SerialSettings(9600))
        link = ComPortLink(device)
        link.makeConnection(StringTransport())
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        for value in (0, 2**32 - 1):
            link.telnetSubnegotiation(44, bytes([101]) + value.to_bytes(4, "big"))
        link.telnetSubnegotiation(44, bytes([101]) + (57600).to_bytes(4, "big"))
        self.assertEqual(device.settings, SerialSettings(57600))
        # The first said in full, the second counted (logged with the garbage at most once a minute).
        warnings = [e for e in events if e.get("log_level") is LogLevel.warn]
        self.assertEqual([str(e["reason"]).split(",")[0] for e in warnings], ["baud rate must be 1 to 2147483647"])
        self.assertEqual(link.ignored.counts, {"bad RFC 2217 answer": 1})
        self.assertEqual(self.flushLoggedErrors(), [])


class RemoteDownReasonTests(TestCase):
    timeout = 30

    async def test_reasonWhileNotConnected(self) -> None:
        """
        A console that refuses connections is down with that reason (the
        status page's down_reason), up once it listens, and after it goes
        away the failed attempts again say why.
        """
        import socket

        from tests.realio import EventCounter

        # A port bound, not listening: refused, and no other socket can
        # have it; listened on later by the same socket, handed to the
        # reactor (no port found free, closed, then bound again).
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        refused = EventCounter(self, "not connected: {reason}")
        device = RemoteDevice(DeviceSpec("tcp", host="127.0.0.1", port=port), reactor,
                              retryPolicy=lambda attempt: 0.05)
        self.addCleanup(device.close)
        device.start()
        event = await refused.nth(1)
        self.assertEqual((device.up, device.downReason), (False, event["reason"]))
        self.assertIn("refused", device.downReason)

        accepted: defer.Deferred[protocol.Protocol] = defer.Deferred()

        class Console(protocol.Protocol):
            def connectionMade(self) -> None:
                accepted.callback(self)

        held.listen(5)
        held.setblocking(False)  # as the reactor's own ports are: it accepts until EAGAIN
        listening = reactor.adoptStreamPort(  # type: ignore[attr-defined]
            held.fileno(), socket.AF_INET, protocol.Factory.forProtocol(Console))
        held.close()  # the reactor's port has its own descriptor of it
        console = await accepted
        await listening.stopListening()
        self.assertEqual((device.up, device.downReason), (True, None))
        console.transport.loseConnection()  # type: ignore[union-attr]
        event = await refused.nth(2)
        self.assertEqual((device.up, device.downReason), (False, event["reason"]))
        self.assertIn("refused", device.downReason)


class FlappingRemoteTests(SynchronousTestCase):
    """A remote console whose far end accepts and closes at once, in a loop: redialled, and announced, ever more rarely."""

    def setUp(self) -> None:
        from twisted.application.internet import backoffPolicy
        from twisted.internet.testing import MemoryReactorClock

        from serialgw.clients.telnet import TelnetClient
        from serialgw.config.listeners import parseListener

        self.clock = MemoryReactorClock()
        # The gateway's policy (0.5 s doubling to 30 s), without jitter.
        policy = backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0, jitter=lambda: 0)
        self.device = RemoteDevice(DeviceSpec("unix", "/run/vm.serial0"), self.clock, retryPolicy=policy)
        self.line = Line("vm", self.device, clock=self.clock)
        self.device.sink = self.line
        self.client = TelnetClient(self.line, listener=parseListener("telnet+4444"), clock=self.clock)
        self.person = BoundedTransport()
        self.client.makeConnection(self.person)
        # A person's telnet: it refuses COM-PORT-OPTION (and is told the line is down then).
        self.client.dataReceived(AGREE + WONT_COM_PORT)
        self.device.start()
        self.addCleanup(self.device.close)
        self.person.clear()

    def link(self, upFor: float) -> float:
        """The far end takes the pending dial, keeps it C{upFor} s, closes it; the seconds until the next dial."""
        return flap(self.clock, upFor)

    def test_flappingPeerBacksOff(self) -> None:
        """Links that last 0.1 s: the next dial waits 1, 2, 4, 8, 16, then 30 s (not 1 s each time); each wait has one down and one back notice."""
        waits = [self.link(0.1) for _ in range(8)]
        self.assertEqual(waits, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])
        cycle = b"\r\n[serialgw: vm is back]\r\n\r\n[serialgw: vm is down: Connection was closed cleanly; waiting for it]\r\n"
        self.assertEqual(self.person.value(), cycle * 8)

    def test_stableLinkResetsBackoff(self) -> None:
        """A link that stayed up STABLE_LINK s starts the backoff again (1 s); one just short of it does not."""
        from serialgw.devices.backoff import STABLE_LINK

        self.assertEqual([self.link(0.1) for _ in range(4)], [1.0, 2.0, 4.0, 8.0])
        self.assertEqual(self.link(STABLE_LINK - 0.5), 16.0)
        self.assertEqual(self.link(STABLE_LINK), 1.0)
        self.assertEqual(self.link(0.1), 2.0)

    def test_retryCountCarried(self) -> None:
        """The log's 'retry N' for a remote console counts the attempts since its link last stayed up STABLE_LINK s, as the backoff does (retry 1, 2, 3, ...), and says the link was closed, not 'cannot connect'."""
        from twisted.logger import formatEvent

        from serialgw.app.logs import tidy
        from serialgw.devices.backoff import STABLE_LINK
        from tests.fakes import observeLog

        said: list[str] = []
        # Tidied as it is logged, as the gateway's observer does.
        observeLog(self, lambda e: said.extend(formatEvent(t) for t in [tidy(e)] if t is not None)
                   if e.get("log_format", "").startswith("Scheduling retry") else None)
        waits = [self.link(0.1) for _ in range(3)] + [self.link(STABLE_LINK), self.link(0.1)]
        self.assertEqual(waits, [1.0, 2.0, 4.0, 1.0, 2.0])
        self.assertEqual(said, [
            f"/run/vm.serial0: connection closed; retry {n} in {delay:.1f} s"
            for n, delay in [(1, 1.0), (2, 2.0), (3, 4.0), (1, 1.0), (2, 2.0)]
        ])
