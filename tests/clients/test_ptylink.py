"""
Client ptys (C{--listen pty:LINK}) driven as terminal programs drive them,
on real pseudo-terminals: they start at the line's settings, and every
termios change a program makes reaches the device, whatever the program does
to c_lflag (minicom sets it to 0, which clears EXTPROC).
"""

from __future__ import annotations

import os
import termios
from typing import Any

from twisted.internet import defer, reactor, threads
from twisted.logger import formatEvent
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from serialgw.clients.ptylink import PtyClient
from serialgw.clients.ptytermios import EXTPROC
from serialgw.config.specs import SerialSettings
from serialgw.devices.termio import fcntlBreak
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from tests.devices.test_termio import setSpeedAsPicocom, speedAsPicocomReadsIt
from tests.fakes import RecordingClient, RecordingDevice, observeLog


class WatchedDevice(RecordingDevice):
    """A device whose settings requests can be awaited, one by one."""

    def __init__(self, settings: SerialSettings) -> None:
        RecordingDevice.__init__(self, settings)
        self.requests: defer.DeferredQueue[SerialSettings] = defer.DeferredQueue()

    def apply(self, settings: SerialSettings) -> SerialSettings:
        effective = RecordingDevice.apply(self, settings)
        self.requests.put(settings)
        return effective


class ReceivingDevice(RecordingDevice):
    """A device whose written bytes can be awaited: C{endsWith(marker)} fires with all it had then."""

    def __init__(self) -> None:
        RecordingDevice.__init__(self)
        self.data = bytearray()
        self._waiting: list[tuple[bytes, defer.Deferred[bytes]]] = []

    def write(self, data: bytes, source: Any = None) -> None:
        RecordingDevice.write(self, data)
        self.data += data
        waiting, self._waiting = self._waiting, []
        for marker, d in waiting:
            if self.data.endswith(marker):
                d.callback(bytes(self.data))
            else:
                self._waiting.append((marker, d))

    def endsWith(self, marker: bytes) -> defer.Deferred[bytes]:
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiting.append((marker, d))
        return d


class Program:
    """A terminal program on the pty: opens the link and sets termios as it likes."""

    def __init__(self, case: TestCase, link: str) -> None:
        self.fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        case.addCleanup(self.close)

    def set(self, speed: int | None = None, lflag: int | None = None, stopbits: int | None = None) -> None:
        attributes = termios.tcgetattr(self.fd)
        if lflag is not None:
            attributes[3] = lflag
        if speed is not None:
            attributes[4] = attributes[5] = speed
        if stopbits is not None:
            attributes[2] = (attributes[2] | termios.CSTOPB) if stopbits == 2 else (attributes[2] & ~termios.CSTOPB)
        termios.tcsetattr(self.fd, termios.TCSANOW, attributes)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class PtyClientTests(TestCase):
    timeout = 30

    async def start(self, settings: SerialSettings) -> tuple[WatchedDevice, Line, str]:
        device = WatchedDevice(settings)
        line = Line("t", device)
        link = os.path.abspath(self.mktemp())
        client = PtyClient(line, link, reactor)
        self.addCleanup(client.close)
        self.assertIsNone(await client.whenLinked())  # (its link made by a thread of its own)
        return device, line, link

    async def test_startsAtLineSettings(self) -> None:
        """A line at 115200 8N2 with RTS/CTS: the program finds its pty at 115200, two stop bits, CRTSCTS; raw, EXTPROC on."""
        _, line, link = await self.start(SerialSettings(115200, stopbits=2, rtscts=True))
        verifyObject(IClient, line.clients[0])
        program = Program(self, link)
        iflag, _oflag, cflag, lflag, ispeed, ospeed, _cc = termios.tcgetattr(program.fd)
        self.assertEqual((ispeed, ospeed), (termios.B115200, termios.B115200))
        self.assertEqual(cflag & (termios.CSTOPB | termios.CRTSCTS), termios.CSTOPB | termios.CRTSCTS)
        self.assertEqual(lflag & (termios.ICANON | termios.ECHO | EXTPROC), EXTPROC)
        self.assertEqual(iflag & termios.IXON, 0)

    async def test_lflagZeroThenSpeed(self) -> None:
        """
        minicom's way: c_lflag = 0 and 57600, later 9600 (c_lflag still 0):
        the device follows both; then another program's 19200 too.  Only the
        speed changes: the 7E1 line stays 7E1 (a pty reports 8N).
        """
        device, _, link = await self.start(SerialSettings(115200, 7, "E"))
        program = Program(self, link)
        program.set(speed=termios.B57600, lflag=0)
        self.assertEqual(await device.requests.get(), SerialSettings(57600, 7, "E"))
        program.set(speed=termios.B9600, lflag=0)  # its own copy: c_lflag still 0
        self.assertEqual(await device.requests.get(), SerialSettings(9600, 7, "E"))
        program.close()
        later = Program(self, link)
        later.set(speed=termios.B19200, stopbits=2, lflag=0)
        self.assertEqual(await device.requests.get(), SerialSettings(19200, 7, "E", stopbits=2))
        self.assertEqual([settings for what, settings in device.events if what == "apply"],
                         [SerialSettings(57600, 7, "E"), SerialSettings(9600, 7, "E"),
                          SerialSettings(19200, 7, "E", stopbits=2)])


    async def test_followsTheLine(self) -> None:
        """
        Another client sets 9600: the pty follows (a program opening it
        finds 9600), and a program that puts back what it found when it
        leaves (picocom) puts back 9600, not the 115200 the pty started at.
        """
        device, line, link = await self.start(SerialSettings(115200))
        other = RecordingClient("rfc2217:1")
        line.attach(other)
        line.clientSettings(other, SerialSettings(9600))
        self.assertEqual(await device.requests.get(), SerialSettings(9600))
        program = Program(self, link)
        found = termios.tcgetattr(program.fd)
        self.assertEqual(found[4:6], [termios.B9600, termios.B9600])
        program.set(speed=termios.B57600)
        self.assertEqual(await device.requests.get(), SerialSettings(57600))
        program.set(speed=found[5])
        self.assertEqual(await device.requests.get(), SerialSettings(9600))
        self.assertEqual([settings for what, settings in device.events if what == "apply"],
                         [SerialSettings(9600), SerialSettings(57600), SerialSettings(9600)])


    async def test_otherSpeedReachesDevice(self) -> None:
        """
        picocom -b 250000 (a speed termios cannot name: termios2, BOTHER)
        reaches the device as 250000; it was read as no change (the device
        stayed at 115200, nothing logged).  Then picocom's 74880 too.
        """
        device, _, link = await self.start(SerialSettings(115200))
        program = Program(self, link)
        setSpeedAsPicocom(program.fd, 250000)
        self.assertEqual(await device.requests.get(), SerialSettings(250000))
        setSpeedAsPicocom(program.fd, 74880)
        self.assertEqual(await device.requests.get(), SerialSettings(74880))

    async def test_speedPastTheBoundSaid(self) -> None:
        """
        A program setting a speed no line may have (termios2, BOTHER,
        4294967295) is told in one warning naming it and not asked of the
        device (it was a traceback: readTermios raised ConfigError); its
        next change (9600) reaches the device.
        """
        device, _, link = await self.start(SerialSettings(115200))
        said: list[str] = []
        warned: defer.Deferred[None] = defer.Deferred()

        def observe(event: dict[str, object]) -> None:
            said.append(formatEvent(event))
            if "4294967295" in said[-1] and not warned.called:
                warned.callback(None)

        observeLog(self, observe)
        program = Program(self, link)
        setSpeedAsPicocom(program.fd, 2**32 - 1)
        await warned  # (else both changes may be read as one, the last)
        program.set(speed=termios.B9600)
        self.assertEqual(await device.requests.get(), SerialSettings(9600))
        self.assertEqual([settings for what, settings in device.events if what == "apply"], [SerialSettings(9600)])
        self.assertEqual([text for text in said if "4294967295" in text],
                         [f"t: the program on pty:{link} set what the line cannot take: baud rate must be 1 to "
                          "2147483647, not 4294967295; not asked of the device"])
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_followsTheLineAtOtherSpeed(self) -> None:
        """
        A line at 74880 (ESP8266's boot speed, no B constant), from the
        start and then set by another client: a program finds its pty at
        that speed (it kept 38400, then its old speed), and putting back
        what it found changes nothing on the device.
        """
        device, line, link = await self.start(SerialSettings(74880))
        program = Program(self, link)
        self.assertEqual(speedAsPicocomReadsIt(program.fd), (74880, 74880))
        program.close()
        other = RecordingClient("rfc2217:1")
        line.attach(other)
        line.clientSettings(other, SerialSettings(250000))
        self.assertEqual(await device.requests.get(), SerialSettings(250000))
        program = Program(self, link)
        self.assertEqual(speedAsPicocomReadsIt(program.fd), (250000, 250000))
        program.set(speed=termios.B9600)
        self.assertEqual(await device.requests.get(), SerialSettings(9600))
        setSpeedAsPicocom(program.fd, 250000)
        self.assertEqual(await device.requests.get(), SerialSettings(250000))
        self.assertEqual([settings for what, settings in device.events if what == "apply"],
                         [SerialSettings(250000), SerialSettings(9600), SerialSettings(250000)])

    async def test_breakKeepsData(self) -> None:
        """
        A program writes abc, sends a break (tcsendbreak, or TIOCSBRK and
        TIOCCBRK), writes def, 300 times, then "end", from its own thread
        while the reactor reads: the device gets every byte once and in order,
        and no break (a pty cannot carry one: README).
        """
        device = ReceivingDevice()
        line = Line("t", device)
        link = os.path.abspath(self.mktemp())
        client = PtyClient(line, link, reactor)
        self.addCleanup(client.close)
        self.assertIsNone(await client.whenLinked())  # (its link made by a thread of its own)
        program = Program(self, link)
        os.set_blocking(program.fd, True)
        rounds = [(b"abc%03d" % i, b"def%03d" % i) for i in range(300)]

        def run() -> None:
            for i, (before, after) in enumerate(rounds):
                os.write(program.fd, before)
                if i % 2:
                    termios.tcsendbreak(program.fd, 0)
                else:
                    fcntlBreak(program.fd, True)
                    fcntlBreak(program.fd, False)
                os.write(program.fd, after)
            os.write(program.fd, b"end")

        expected = b"".join(before + after for before, after in rounds) + b"end"
        arrived = device.endsWith(b"end")
        await threads.deferToThread(run)
        self.assertEqual(await arrived, expected)
        self.assertEqual([what for what, _ in device.events if what != "write"], [])


class SttyTests(TestCase):
    """A real program (coreutils stty), a real device (a pty pair), the gateway's service."""

    timeout = 30

    def settingsApplied(self, text: str) -> defer.Deferred[str]:
        """Fires when the line logs settings now in effect that begin with C{text}."""
        applied: defer.Deferred[str] = defer.Deferred()

        def observer(event: dict[str, object]) -> None:
            settings = event.get("settings")
            if "wanted" in event and isinstance(settings, str) and settings.startswith(text) and not applied.called:
                applied.callback(settings)

        observeLog(self, observer)
        return applied

    async def stty(self, *args: str, extproc: bool = False) -> bytes:
        """
        Run stty.  C{extproc}: it clears EXTPROC, which the gateway sets
        again; when that lands between stty's set and its check, stty says
        so (exit status 1) though it did what it was asked.
        """
        from tests.realio import spawn

        proc = spawn(["/usr/bin/stty", *args])
        status = await proc.ended
        if not (extproc and status == 1 and proc.output.data.endswith(b": unable to perform all requested operations\n")):
            self.assertEqual(status, 0, proc.output.data)
        return proc.output.data

    async def test_sttyClearsExtprocThenSetsSpeed(self) -> None:
        """
        stty finds the pty at the line's 115200; stty -extproc -icanon ...
        57600 (c_lflag cleared as minicom does), then stty 9600: the device
        follows both.
        """
        from tests.realio import ptyLine, ptysLinked, startedPty, startGateway

        pty = startedPty(self)
        link = os.path.abspath(self.mktemp())
        await ptysLinked(startGateway(self, ptyLine(pty, f"pty:{link}", settings=SerialSettings(115200))))
        self.assertIn(b"speed 115200 baud", await self.stty("-F", link))
        applied = self.settingsApplied("57600,")
        await self.stty("-F", link, "-extproc", "-icanon", "-isig", "-iexten", "-echo", "57600", extproc=True)
        self.assertEqual(await applied, "57600,8N1")
        self.assertEqual(termios.tcgetattr(pty.master)[5], termios.B57600)
        applied = self.settingsApplied("9600,")
        await self.stty("-F", link, "9600")
        self.assertEqual(await applied, "9600,8N1")
        self.assertEqual(termios.tcgetattr(pty.master)[5], termios.B9600)


class ListenerOptionsTests(TestCase):
    """The gateway gives a pty: listener's options to its client."""

    timeout = 30

    def test_gatewayPassesOptions(self) -> None:
        """raw,ro,outbuf=4096,policy=block+pty:LINK: the line's pty client is read-only with that bound and policy."""
        from tests.realio import ptyLine, startedPty, startGateway

        link = os.path.abspath(self.mktemp())
        service = startGateway(self, ptyLine(startedPty(self), f"raw,ro,outbuf=4096,policy=block+pty:{link}"))
        client = service.lines["t"].clients[0]
        assert isinstance(client, PtyClient)
        self.assertEqual((client.peer, client.role.value, client.guard.bound, client.guard.policy),
                         (f"pty:{link}", "read-only", 4096, "block"))


class SettingsLogTests(TestCase):
    """What a program's termios changes cost the log."""

    timeout = 30

    def test_settingsLoopCannotFloodTheLog(self) -> None:
        """
        A program that flips the speed in a loop (each change seen): at most
        the log's per-peer burst of lines a minute about it (logflood), the
        rest counted; measured before, about 100 lines a second from one
        tcsetattr loop.
        """
        from twisted.logger import LogLevel

        from serialgw.logflood import peerLimiter
        from tests.fakes import LogEvents

        events = LogEvents(self)
        line = Line("t", RecordingDevice(SerialSettings(115200)))
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        program = Program(self, client.slaveName)
        for i in range(peerLimiter.burst + 30):
            program.set(speed=termios.B9600 if i % 2 else termios.B19200)
            client.doRead()
        mine = [e for e in events.at(LogLevel.info) if e.get("peer") == client.peer]
        self.assertEqual(len(mine), peerLimiter.burst)
        self.assertEqual(line.settings, SerialSettings(9600))

    def test_refusedSettingsLoopCannotFloodTheLog(self) -> None:
        """
        The same loop on a line whose device carries no settings (a tcp:
        console): each change is refused and said (the program's change and
        the refusal), at most the per-peer burst of lines a minute, the rest
        counted in the summary; nothing reaches the far end.
        """
        from twisted.internet.testing import MemoryReactorClock
        from twisted.logger import LogLevel

        from serialgw.config.specs import DeviceSpec
        from serialgw.devices.remote import RemoteDevice
        from serialgw.logflood import peerLimiter
        from tests.fakes import LogEvents

        events = LogEvents(self)
        device = RemoteDevice(DeviceSpec("tcp", host="10.0.0.5", port=7000), MemoryReactorClock())
        line = Line("vm", device)
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        program = Program(self, client.slaveName)
        for i in range(peerLimiter.burst * 5):
            program.set(speed=termios.B9600 if i % 2 else termios.B19200)
            client.doRead()
        mine = [e for e in events.at(LogLevel.info) if e.get("peer") == client.peer]
        self.assertEqual(len(mine), peerLimiter.burst)
        # (Its attach, then the program's change and the refusal, each time.)
        self.assertIn("refused", mine[2]["log_format"])
        self.assertEqual(peerLimiter.peers[client.peer].left, 1 + peerLimiter.burst * 2 * 5 - peerLimiter.burst)
        self.assertEqual((line.settings, device.settings), (SerialSettings(), SerialSettings()))


class PtyControlShareTests(TestCase):
    """A program's settings changes share the line's port control time a turn (Line.controlReady) with other ptys and RFC 2217 clients."""

    timeout = 30

    def threePtys(self, clock: Any, accept: Any) -> tuple[RecordingDevice, list[PtyClient], list[Program]]:
        """Three ptys on one line whose device takes settings with C{accept}; their programs set 1200, 2400 and 4800 in one turn (the first read at once, the others then)."""
        device = RecordingDevice(SerialSettings(115200))
        device.accept = accept
        line = Line("t", device, clock=clock)
        clients = [PtyClient(line, "", reactor) for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
        programs = [Program(self, client.slaveName) for client in clients]
        programs[0].set(speed=termios.B1200)
        clients[0].doRead()
        # (The others follow the line: their programs change it after that.)
        for program, speed in zip(programs[1:], (termios.B2400, termios.B4800), strict=True):
            program.set(speed=speed)
        for client in clients[1:]:
            client.doRead()  # one read each, in the same turn of the reactor
        return device, clients, programs

    def test_ptysTakeTurnsAtTheDevice(self) -> None:
        """Three ptys' programs each change the speed in one turn, 3 ms at the device: one a turn (not three), the others not read meanwhile, then in order, not overwritten by the line's change meanwhile; the newest speed each had is asked for."""
        from twisted.internet.task import Clock

        from tests.fakes import oneTurn

        clock = Clock()

        def slow(settings: SerialSettings) -> SerialSettings:
            clock.rightNow += 0.003  # (a USB adapter's tcsetattr: no call runs meanwhile)
            return settings

        device, clients, programs = self.threePtys(clock, slow)
        applied = lambda: [e[1].baudrate for e in device.events if e[0] == "apply"]  # noqa: E731
        self.assertEqual(applied(), [1200])
        readers = reactor.getReaders()  # type: ignore[attr-defined]
        self.assertEqual([c in readers for c in clients], [True, False, False])
        programs[2].set(speed=termios.B9600)  # changed again while waiting: the newest is asked for
        oneTurn(clock)
        self.assertEqual(applied(), [1200, 2400])
        oneTurn(clock)
        self.assertEqual(applied(), [1200, 2400, 9600])
        readers = reactor.getReaders()  # type: ignore[attr-defined]
        self.assertEqual([c in readers for c in clients], [True, True, True])
        oneTurn(clock)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_failingDeferredChangeKeepsReading(self) -> None:
        """A program's change that waited its turn and whose handling raises: logged, that pty is read again (not deaf), and the ptys waiting after it still get their turn."""
        from twisted.internet.task import Clock

        from tests.fakes import oneTurn

        clock = Clock()
        calls = []

        def slowOrBroken(settings: SerialSettings) -> SerialSettings:
            calls.append(settings.baudrate)
            if settings.baudrate == 2400:
                raise RuntimeError("bug above")
            clock.rightNow += 0.003  # (a USB adapter's tcsetattr: no call runs meanwhile)
            return settings

        device, clients, programs = self.threePtys(clock, slowOrBroken)
        self.assertEqual(calls, [1200])
        oneTurn(clock)
        oneTurn(clock)
        self.assertEqual(calls, [1200, 2400, 4800])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        readers = reactor.getReaders()  # type: ignore[attr-defined]
        self.assertEqual([c in readers for c in clients], [True, True, True])

class PtyClientFailureTests(TestCase):
    timeout = 30

    def test_failingLineKeepsReading(self) -> None:
        """Whatever handling the program's input raises, the reactor keeps reading the pty (logged, not deaf)."""
        line = Line("l", RecordingDevice())

        def boom(client: object, data: bytes) -> bool:
            raise RuntimeError("bug above")

        line.clientData = boom  # type: ignore[method-assign]
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        program = Program(self, client.slaveName)
        os.write(program.fd, b"typed")
        # One read, as the reactor would do it.
        self.assertIsNone(client.doRead())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn(client, reactor.getReaders())  # type: ignore[attr-defined]
        self.assertIn(client, line.clients)

    def test_lostLeavesTheLine(self) -> None:
        """If the reactor gives up on the pty anyway, the client leaves the line (never on it deaf), logged."""
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        from tests.fakes import LogEvents

        line = Line("l", RecordingDevice())
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        # (LogEvents: as in a fresh process, no earlier test has spent the log budget of this pty's name,
        # pty:/dev/pts/N, a number given again at once; capturedLogs saw nothing once one had.)
        events = LogEvents(self).events
        client.connectionLost(Failure(ConnectionLost()))
        self.assertNotIn(client, line.clients)
        self.assertEqual([e["log_level"].name for e in events if "lost:" in e["log_format"]], ["error"])
