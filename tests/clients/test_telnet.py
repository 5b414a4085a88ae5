"""
Tests for serialgw.clients.telnet: the telnet session of a line (the offer,
data and breaks to the device, device output to the client), exact bytes.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from serialgw.clients.telnet import COM_PORT_COMMAND_COST, TelnetClient
from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnet import COMMANDS_PER_TURN
from serialgw.wire.telnetcodes import (
    AO,
    AYT,
    BINARY,
    BRK,
    DM,
    DO,
    DONT,
    ECHO,
    IAC,
    IP,
    NAWS,
    SB,
    SE,
    SGA,
    TTYPE,
    WILL,
    WONT,
)
from tests.fakes import PausableTransport, RecordingDevice, oneTurn
from tests.telnetpeer import AGREE, OFFER, cmd, sb, toggleAnswers


class TelnetClientTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("test", self.device)
        self.client = TelnetClient(self.line)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)

    def test_interface(self) -> None:
        """A telnet client is an IClient."""
        verifyObject(IClient, self.client)

    def test_offer(self) -> None:
        """At connect: WILL ECHO, WILL SGA, WILL BINARY, DO SGA, DO BINARY, DO COM-PORT-OPTION, nothing else."""
        self.assertEqual(self.transport.value(), OFFER)
        self.assertEqual(self.line.clients, [self.client])

    def test_agreementSilent(self) -> None:
        """A client agreeing to all of it gets no further negotiation."""
        self.transport.clear()
        self.client.dataReceived(AGREE)
        self.assertEqual(self.transport.value(), b"")
        for option in (ECHO, SGA, BINARY):
            self.assertTrue(self.client.localEnabled(option))
        for option in (SGA, BINARY):
            self.assertTrue(self.client.remoteEnabled(option))

    def test_nawsTtypeAccepted(self) -> None:
        """WILL NAWS / WILL TTYPE are accepted and their subnegotiations ignored."""
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, WILL, NAWS, IAC, WILL, TTYPE, IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE))
        self.assertEqual(self.transport.value(), cmd(IAC, DO, NAWS, IAC, DO, TTYPE))
        self.assertEqual(self.device.events, [])

    def test_dataToDevice(self) -> None:
        """Client data reaches the device unescaped."""
        self.client.dataReceived(AGREE + b"ls\r\n\xff\xff")
        self.assertEqual(self.device.events, [("write", b"ls\r\n\xff")])

    def test_brk(self) -> None:
        """IAC BRK sends a break, between the data around it."""
        self.client.dataReceived(b"a" + cmd(IAC, BRK) + b"h")
        self.assertEqual(self.device.events, [("write", b"a"), ("break", None), ("write", b"h")])

    def test_otherCommandsIgnored(self) -> None:
        """NOP, DM (no Synch), EC, EL, GA, 239 reach neither device nor wire; the connection stays."""
        self.transport.clear()
        for command in (241, 242, 247, 248, 249, 239):
            self.client.dataReceived(cmd(IAC, command))
        self.client.dataReceived(b"k")
        self.assertEqual(self.device.events, [("write", b"k")])
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.transport.disconnecting)

    def test_interruptProcessIsCtrlC(self) -> None:
        """IAC IP (Debian telnet's Ctrl-C in line mode) reaches the device as ^C, in its place between the data around it (it was dropped)."""
        self.client.dataReceived(AGREE + b"sleep 100\r" + cmd(IAC, IP) + b"ls\r")
        self.assertEqual(self.device.events, [("write", b"sleep 100\r"), ("write", b"\x03"), ("write", b"ls\r")])

    def test_eofSuspendAbortAsTyped(self) -> None:
        """RFC 1184's IAC EOF, SUSP, ABORT ('send eof', 'send susp', 'send abort') reach the device as ^D, ^Z, ^\\ (a terminal's VEOF, VSUSP, VQUIT), in their places (they were dropped)."""
        self.client.dataReceived(AGREE + b"cat\r" + cmd(IAC, 236) + b"a" + cmd(IAC, 237) + b"b" + cmd(IAC, 238))
        self.assertEqual(self.device.events, [("write", b"cat\r"), ("write", b"\x04"), ("write", b"a"),
                                              ("write", b"\x1a"), ("write", b"b"), ("write", b"\x1c")])

    def test_interruptProcessReadOnly(self) -> None:
        """A read-only client's IAC IP reaches nothing, refused as its typing is."""
        client = TelnetClient(self.line, Role.READONLY)
        client.makeConnection(StringTransport())
        client.dataReceived(cmd(IAC, IP))
        self.assertEqual(self.device.events, [])
        self.assertEqual(self.line.refused, 1)

    def test_abortOutputAnsweredWithSynch(self) -> None:
        """IAC AO is answered with a Synch (IAC DM; the DM urgent on TCP), nothing reaching the device."""
        self.client.dataReceived(AGREE)
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, AO))
        self.assertEqual(self.transport.value(), cmd(IAC, DM))
        self.assertEqual(self.device.events, [])

    def test_abortOutputDropCounted(self) -> None:
        """Output a Synch dropped for the client (plain TCP: tests.wire.test_urgent) is counted with its ignored input, said once a minute at most."""
        self.client.outputAborted(193858)
        self.client.outputAborted(5)
        self.assertEqual((self.client.ignored.total, self.client.ignored.counts),
                         (193863, {"byte of its output dropped by AO": 5}))

    def test_abortOutputAnswersFollowTheSynch(self) -> None:
        """AYT and AO in one read: the Synch first (what was queued before the AO is dropped), then the AYT's answer, shown."""
        self.client.dataReceived(AGREE)
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, AYT, IAC, AO))
        self.assertEqual(self.transport.value(), cmd(IAC, DM) + b"\r\n[serialgw: yes]\r\n")

    def test_abortOutputFlood(self) -> None:
        """A read of 1000 IAC AO is answered with one Synch, not 1000."""
        self.client.dataReceived(AGREE)
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, AO) * 1000)
        self.assertEqual(self.transport.value(), cmd(IAC, DM))

    def test_synchDiscardsTypedAhead(self) -> None:
        """A Synch (urgent data waiting when read): what the client typed before its DM is discarded, its IP still ^C, what follows the DM typed; counted."""
        urgent = [True]
        self.client._urgent = lambda: urgent[0]
        self.client.dataReceived(AGREE + b"yes\ryes\ryes\r" + cmd(IAC, IP, IAC))
        urgent[0] = False
        self.client.dataReceived(cmd(DM) + b"q")
        self.assertEqual(self.device.events, [("write", b"\x03"), ("write", b"q")])
        self.assertEqual(self.client.ignored.total, 12)

    def test_ayt(self) -> None:
        """AYT is answered with visible text."""
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, AYT))
        self.assertEqual(self.transport.value(), b"\r\n[serialgw: yes]\r\n")

    def test_deliverEscapes(self) -> None:
        """Device output is IAC-escaped for this client; 8-bit clean in BINARY."""
        self.client.dataReceived(AGREE)
        self.transport.clear()
        self.line.deviceDataReceived(bytes(range(256)))
        self.assertEqual(self.transport.value(), bytes(range(255)) + b"\xff\xff")

    def test_deviceCrLfSplitOutsideBinary(self) -> None:
        """A client refusing BINARY: the device's CR LF split across two reads reaches it as CR LF (it came as CR NUL LF); a lone CR as CR NUL."""
        self.client.dataReceived(cmd(IAC, DONT, BINARY, IAC, WONT, BINARY))
        self.transport.clear()
        self.line.deviceDataReceived(b"login: root\r")
        self.line.deviceDataReceived(b"\nPassword: \r")
        self.line.deviceDataReceived(b"x")
        self.assertEqual(self.transport.value(), b"login: root\r\nPassword: \r\0x")

    def test_pauseResume(self) -> None:
        """A device behind pauses the client's input; caught up resumes it."""
        self.line.deviceWritable(False)
        self.line.deviceWritable(True)
        self.assertEqual((self.transport.pauses, self.transport.resumes), (1, 1))

    def test_readOnlyCannotWriteOrBreak(self) -> None:
        """A read-only telnet client's data and breaks are refused."""
        client = TelnetClient(self.line, Role.READONLY)
        client.makeConnection(StringTransport())
        client.dataReceived(b"x" + cmd(IAC, BRK))
        self.assertEqual(self.device.events, [])
        self.assertEqual(self.line.refused, 1)

    def test_detach(self) -> None:
        """Losing the connection detaches the client from its line."""
        self.client.connectionLost()
        self.assertEqual(self.line.clients, [])


class BusyClientTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("test", self.device, clock=self.clock)
        self.client = TelnetClient(self.line)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(AGREE)
        self.transport.clear()

    def test_negotiationFloodTakesTurns(self) -> None:
        """
        A client sending nothing but negotiation (DONT/DO BINARY, again and
        again) gets COMMANDS_PER_TURN of it handled a turn, and is not read
        until the next turn; every toggle is answered, in order (past
        MAX_OPTION_CHANGES, the DO refused), and the data after it reaches
        the device last.
        """
        toggles = 2 * COMMANDS_PER_TURN
        self.client.dataReceived(cmd(IAC, DONT, BINARY, IAC, DO, BINARY) * toggles + b"end")
        enables = [False, True] * toggles

        def answers(handled: int) -> bytes:
            # BINARY on, changed once (the handshake's WILL agreed).
            return toggleAnswers(enables[:handled], WILL, WONT, BINARY, on=True, changes=1)

        self.assertEqual(self.transport.value(), answers(COMMANDS_PER_TURN))
        self.assertEqual((self.transport.producerState, self.device.events), ("paused", []))
        oneTurn(self.clock)
        self.assertEqual(self.transport.value(), answers(2 * COMMANDS_PER_TURN))
        self.assertEqual(self.transport.producerState, "paused")
        oneTurn(self.clock)
        self.assertEqual(self.transport.value(), answers(3 * COMMANDS_PER_TURN))
        self.assertEqual(self.device.events, [])
        oneTurn(self.clock)
        self.assertEqual(self.transport.value(), answers(2 * toggles))
        self.assertEqual((self.device.events, self.transport.producerState), ([("write", b"end")], "producing"))
        self.assertEqual((self.transport.pauses, self.transport.resumes, self.clock.getDelayedCalls()), (1, 1, []))

    def test_subnegotiationRestartFloodTakesTurns(self) -> None:
        """
        IAC SB again and again with no SE (each IAC SB inside a subnegotiation a malformed one, dropped): each counts
        as a command, COMMANDS_PER_TURN a turn, the client not read meanwhile (a 64 KiB read of it held every line
        55 ms); the data before it reaches the device first, the data after it last, each malformed one counted.
        """
        restarts = 2 * COMMANDS_PER_TURN
        self.client.dataReceived(b"before" + cmd(IAC, SB) * (restarts + 1) + cmd(NAWS, 0, 80, 0, 24, IAC, SE) + b"end")
        self.assertEqual((self.device.events, self.transport.producerState), ([("write", b"before")], "paused"))
        self.assertEqual(self.client.ignored.total, COMMANDS_PER_TURN)
        oneTurn(self.clock)
        self.assertEqual((self.client.ignored.total, self.device.events), (restarts, [("write", b"before")]))
        self.assertEqual(self.transport.producerState, "paused")
        oneTurn(self.clock)
        self.assertEqual(self.device.events, [("write", b"before"), ("write", b"end")])
        # (+ 1: the NAWS subnegotiation that ends it, never agreed.)
        self.assertEqual((self.client.ignored.total, self.transport.producerState), (restarts + 1, "producing"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lostWhileBusy(self) -> None:
        """A client gone while the rest of its read waits leaves no call behind, and nothing more is parsed."""
        self.client.dataReceived(cmd(IAC, AYT) * (COMMANDS_PER_TURN + 1))
        self.client.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.transport.value(), b"\r\n[serialgw: yes]\r\n" * COMMANDS_PER_TURN)

    def test_interruptFloodTakesTurns(self) -> None:
        """A read of nothing but IAC IP: each reaches the device as ^C, COMMANDS_PER_TURN / 16 a turn (as many as RFC 2217 commands), the client not read meanwhile."""
        share = COMMANDS_PER_TURN // COM_PORT_COMMAND_COST
        self.client.dataReceived(cmd(IAC, IP) * (2 * share) + b"end")
        self.assertEqual(b"".join(e[1] for e in self.device.events), b"\x03" * share)  # type: ignore[misc]
        self.assertEqual(self.transport.producerState, "paused")
        oneTurn(self.clock)
        oneTurn(self.clock)
        self.assertEqual(b"".join(e[1] for e in self.device.events), b"\x03" * (2 * share) + b"end")  # type: ignore[misc]
        self.assertEqual((self.transport.producerState, self.clock.getDelayedCalls()), ("producing", []))

    def test_slowDeviceCommandsTakeTurns(self) -> None:
        """COM-PORT-OPTION commands the device takes 3 ms each to apply (a USB adapter's tcsetattr): one a turn, not 16 (48 ms of every line's time a read)."""
        self.client.dataReceived(cmd(IAC, WILL, COM_PORT_OPTION))
        self.transport.clear()

        def slow(settings: SerialSettings) -> SerialSettings:
            self.clock.rightNow += 0.003  # (the time passes inside the ioctl: no call runs meanwhile)
            return settings

        self.device.accept = slow
        speeds = (1200, 2400, 4800, 9600)
        self.client.dataReceived(b"".join(sb(1, *speed.to_bytes(4, "big")) for speed in speeds)
                                 + b"end")
        applied = [e[1].baudrate for e in self.device.events if e[0] == "apply"]  # type: ignore[union-attr]
        self.assertEqual((applied, self.transport.producerState), ([1200], "paused"))
        for turn in range(1, 4):
            oneTurn(self.clock)
            applied = [e[1].baudrate for e in self.device.events if e[0] == "apply"]  # type: ignore[union-attr]
            self.assertEqual(applied, list(speeds[: turn + 1]))
        self.assertEqual(self.device.events[-1], ("write", b"end"))
        self.assertEqual(self.transport.value(), b"".join(sb(101, *speed.to_bytes(4, "big"))
                                                          for speed in speeds))
        oneTurn(self.clock)  # (the line's port control starts a turn afresh)
        self.assertEqual((self.transport.producerState, self.clock.getDelayedCalls()), ("producing", []))

    def test_fastDeviceCommandsShareTheTurn(self) -> None:
        """COM-PORT-OPTION commands a device applies at once (a pty): COMMANDS_PER_TURN / 16 of them a read, as before."""
        self.client.dataReceived(cmd(IAC, WILL, COM_PORT_OPTION))
        share = COMMANDS_PER_TURN // COM_PORT_COMMAND_COST
        self.client.dataReceived(sb(1, 0, 0, 0x25, 0x80) * (share + 1))
        self.assertEqual(sum(1 for e in self.device.events if e[0] == "apply"), share)
        oneTurn(self.clock)
        self.assertEqual(sum(1 for e in self.device.events if e[0] == "apply"), share + 1)


class LineControlShareTests(SynchronousTestCase):
    """Clients' port control takes at most CONTROL_PER_TURN of a turn for one line (and one request), however many ask."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("test", self.device, clock=self.clock)

        def slow(settings: SerialSettings) -> SerialSettings:
            self.clock.rightNow += 0.003  # (a USB adapter's tcsetattr: no call runs meanwhile)
            return settings

        self.device.accept = slow

    def connect(self) -> tuple[TelnetClient, PausableTransport]:
        client = TelnetClient(self.line)
        transport = PausableTransport()
        client.makeConnection(transport)
        client.dataReceived(cmd(IAC, WILL, COM_PORT_OPTION))
        transport.clear()
        return client, transport

    def applied(self) -> list[int]:
        return [e[1].baudrate for e in self.device.events if e[0] == "apply"]  # type: ignore[union-attr]

    def test_clientsTakeTurnsAtTheDevice(self) -> None:
        """Four clients each asking for two speeds at once, 3 ms each at the device: one a turn, in the order asked (not 4 in the first turn), no timer."""
        clients = [self.connect() for _ in range(4)]
        speeds = [(1200 * (2 * i + 1), 1200 * (2 * i + 2)) for i in range(4)]
        for (client, _), pair in zip(clients, speeds, strict=True):
            client.dataReceived(b"".join(sb(1, *speed.to_bytes(4, "big")) for speed in pair))
        self.assertEqual(self.applied(), [1200])
        self.assertEqual([t.producerState for _, t in clients], ["paused"] * 4)
        order = [pair[0] for pair in speeds] + [pair[1] for pair in speeds]
        for turn in range(2, 9):
            oneTurn(self.clock)
            self.assertEqual(self.applied(), order[:turn])
        for (_client, transport), pair in zip(clients, speeds, strict=True):
            self.assertEqual(transport.value(), b"".join(sb(101, *speed.to_bytes(4, "big")) for speed in pair))
        oneTurn(self.clock)
        self.assertEqual([t.producerState for _, t in clients], ["producing"] * 4)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_leavingWhileWaiting(self) -> None:
        """A client gone while its command waits for the line is forgotten: its command never reaches the device."""
        (first, _), (second, _) = self.connect(), self.connect()
        first.dataReceived(sb(1, 0, 0, 0x4B, 0))
        second.dataReceived(sb(1, 0, 0, 0x96, 0))
        second.connectionLost()
        oneTurn(self.clock)
        self.assertEqual((self.applied(), self.clock.getDelayedCalls()), ([0x4B00], []))
