"""
Tests for serialgw.clients.rfc2217: for each command and value, the exact reply
bytes; modem-state notifications and masks under a Clock; suspension,
purge, restore, malformed input.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from serialgw import __version__
from serialgw.clients.telnet import TelnetClient
from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import DO, DONT, IAC, SB, SE, WILL, WONT
from tests.fakes import LogEvents, PausableTransport, RecordingDevice
from tests.telnetpeer import sb


def pty_like(settings: SerialSettings) -> SerialSettings:
    """A device like a pty: keeps speed and stop bits, forces 8 bits and no parity."""
    import attrs

    return attrs.evolve(settings, bytesize=8, parity="N")


class Harness:
    def __init__(self, role: Role = Role.WRITER, settings: SerialSettings = SerialSettings(9600)) -> None:
        self.clock = Clock()
        self.device = RecordingDevice(settings)
        self.line = Line("ttyS0", self.device, clock=self.clock)
        self.client = TelnetClient(self.line, role)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)
        self.transport.clear()
        # The client takes the option: WILL COM-PORT-OPTION.
        self.client.dataReceived(bytes([IAC, WILL, CPO]))

    def send(self, data: bytes) -> bytes:
        self.transport.clear()
        self.client.dataReceived(data)
        return self.transport.value()


# (request payload, reply payload) on a device that takes every setting,
# starting at 9600 8N1, no flow control, DTR and RTS on.
CONFORMANCE: list[tuple[tuple[int, ...], tuple[int, ...]]] = [
    # SIGNATURE: empty asks for ours.
    ((0,), (100, *f"serialgw {__version__} ttyS0".encode())),
    # SET-BAUDRATE: query, set, a value with an IAC byte in it.
    ((1, 0, 0, 0, 0), (101, 0, 0, 0x25, 0x80)),
    ((1, 0, 1, 0xC2, 0x00), (101, 0, 1, 0xC2, 0x00)),
    ((1, 0, 0, 0xFF, 0x00), (101, 0, 0, 0xFF, 0x00)),
    # Cisco's one-byte index: 14 is 115200; 0 (not in the table) is a query.
    ((1, 14), (101, 14)),
    ((1, 0), (101, 14)),
    # SET-DATASIZE, -PARITY, -STOPSIZE: query, set, out of range (answered with the current value).
    ((2, 0), (102, 8)),
    ((2, 7), (102, 7)),
    ((2, 9), (102, 7)),
    ((3, 0), (103, 1)),
    ((3, 3), (103, 3)),
    ((3, 2), (103, 2)),
    ((3, 4), (103, 4)),
    ((3, 5), (103, 5)),
    ((3, 6), (103, 5)),
    ((4, 0), (104, 1)),
    ((4, 2), (104, 2)),
    ((4, 3), (104, 3)),
    ((4, 7), (104, 3)),
    # SET-CONTROL: outbound flow.
    ((5, 0), (105, 1)),
    ((5, 2), (105, 2)),
    ((5, 3), (105, 3)),
    ((5, 1), (105, 1)),
    # BREAK query, on, off.
    ((5, 4), (105, 6)),
    ((5, 5), (105, 5)),
    ((5, 6), (105, 6)),
    # DTR and RTS.
    ((5, 7), (105, 8)),
    ((5, 9), (105, 9)),
    ((5, 8), (105, 8)),
    ((5, 10), (105, 11)),
    ((5, 12), (105, 12)),
    ((5, 11), (105, 11)),
    # Inbound flow.
    ((5, 13), (105, 14)),
    ((5, 15), (105, 15)),
    ((5, 16), (105, 16)),
    ((5, 14), (105, 14)),
    # DCD / DTR / DSR flow: no such setting on Linux: the flow in effect.
    ((5, 17), (105, 1)),
    ((5, 18), (105, 14)),
    ((5, 19), (105, 1)),
    # Unknown SET-CONTROL value: the outbound flow in effect.
    ((5, 20), (105, 1)),
    # Polls of line and modem state (a device without modem lines: CTS, DSR, CD).
    ((6,), (106, 0)),
    ((7,), (107, 0xB0)),
    # Masks: acked with the value.
    ((10, 0x12), (110, 0x12)),
    ((11, 0x33), (111, 0x33)),
    ((11, 255), (111, 255)),
    # PURGE-DATA.
    ((12, 1), (112, 1)),
    ((12, 2), (112, 2)),
    ((12, 3), (112, 3)),
]


class ConformanceTests(SynchronousTestCase):
    def test_negotiation(self) -> None:
        """DO COM-PORT-OPTION at connect; the client's WILL gets the modem state at once."""
        clock = Clock()
        line = Line("ttyS0", RecordingDevice(), clock=clock)
        client = TelnetClient(line)
        transport = PausableTransport()
        client.makeConnection(transport)
        self.assertTrue(transport.value().endswith(bytes([IAC, DO, CPO])))
        transport.clear()
        client.dataReceived(bytes([IAC, WILL, CPO]))
        self.assertEqual(transport.value(), sb(107, 0xB0))
        self.assertEqual(line.controllers, [client])

    def test_offOnBothSidesEndsControl(self) -> None:
        """
        COM-PORT-OPTION turned off (WONT, answered DONT) ends RFC 2217: its
        subnegotiations are ignored and never answered, and what a SUSPEND
        held is written then (RFC 855: no subnegotiation of an option not in effect).
        """
        harness = Harness()
        harness.send(sb(8))
        harness.line.deviceDataReceived(b"held")
        self.assertEqual(harness.send(bytes([IAC, WONT, CPO])), bytes([IAC, DONT, CPO]) + b"held")
        self.assertEqual(harness.send(bytes([IAC, SB, CPO, 1, 0, 0, 0, 0, IAC, SE])), b"")
        self.assertEqual(harness.device.events, [])
        harness.line.deviceDataReceived(b"\xff")
        self.assertEqual(harness.transport.value(), b"\xff\xff")
        # Taken again: control again, the modem state told at once.
        self.assertEqual(harness.send(bytes([IAC, WILL, CPO])), bytes([IAC, DO, CPO]) + sb(107, 0xB0))

    def test_doAlsoStarts(self) -> None:
        """A client's DO COM-PORT-OPTION is accepted (WILL) and starts control too."""
        line = Line("ttyS0", RecordingDevice(), clock=Clock())
        client = TelnetClient(line)
        transport = PausableTransport()
        client.makeConnection(transport)
        transport.clear()
        client.dataReceived(bytes([IAC, DO, CPO]))
        self.assertEqual(transport.value(), bytes([IAC, WILL, CPO]) + sb(107, 0xB0))

    def test_offOnListener(self) -> None:
        """With RFC 2217 off, no DO 44 is offered, WILL 44 is refused and SB is ignored."""
        device = RecordingDevice()
        line = Line("ttyS0", device, clock=Clock())
        client = TelnetClient(line, rfc2217=False)
        transport = PausableTransport()
        client.makeConnection(transport)
        self.assertNotIn(bytes([IAC, DO, CPO]), transport.value())
        transport.clear()
        client.dataReceived(bytes([IAC, WILL, CPO]) + sb(1, 0, 0, 0x4B, 0))
        self.assertEqual(transport.value(), bytes([IAC, 254, CPO]))
        self.assertEqual(device.events, [])

    def test_table(self) -> None:
        """Each command and value gets exactly the reply in the table, at once."""
        h = Harness()
        for request, reply in CONFORMANCE:
            self.assertEqual(h.send(sb(*request)), sb(*reply), request)

    def test_commandsReachDevice(self) -> None:
        """Settings, DTR/RTS, break and purge reach the device as asked."""
        h = Harness()
        h.send(sb(1, 0, 1, 0xC2, 0x00) + sb(2, 7) + sb(3, 3) + sb(4, 2))
        self.assertEqual(h.device.settings, SerialSettings(115200, 7, "E", 2))
        h.send(sb(5, 9) + sb(5, 12) + sb(12, 3))
        self.assertEqual(
            [e for e in h.device.events if e[0] != "apply"],
            [("dtr", False), ("rts", False), ("purge", (True, True))],
        )
        h.send(sb(5, 5))
        self.assertEqual(h.device.events[-1], ("break", h.line.breakHoldLimit))

    def test_rejectedValueReported(self) -> None:
        """A device that forces 8N: the reply is what the device really has."""
        h = Harness()
        h.device.accept = pty_like
        self.assertEqual(h.send(sb(2, 7)), sb(102, 8))
        self.assertEqual(h.send(sb(3, 3)), sb(103, 1))
        self.assertEqual(h.send(sb(4, 2)), sb(104, 2))
        self.assertEqual(h.device.settings, SerialSettings(9600, 8, "N", 2))

    def test_invalidValuesLogged(self) -> None:
        """A setting no port takes (a speed past termios', 9 data bits, an unknown parity, stop-size or Cisco speed code): answered with the state in effect, and logged naming the setting, the value and why."""
        h = Harness()
        log = LogEvents(self)
        self.assertEqual(h.send(sb(1, 0xFF, 0xFF, 0xFF, 0xFF)), sb(101, 0, 0, 0x25, 0x80))
        self.assertEqual(h.send(sb(2, 9)), sb(102, 8))
        self.assertEqual(h.send(sb(3, 7)), sb(103, 1))
        self.assertEqual(h.send(sb(4, 5)), sb(104, 1))
        self.assertEqual(h.send(sb(1, 99)), sb(101, 8))
        refused = [e for e in log.events if "refused" in (e.get("log_format") or "")]
        self.assertEqual({e["log_format"] for e in refused},
                         {"{line}: settings from {peer} refused ({asked}): the value is invalid: {reason}"})
        self.assertEqual([(e["line"], e["setting"], e["value"], e["reason"]) for e in refused], [
            ("ttyS0", "baud rate", 2**32 - 1, "baud rate must be 1 to 2147483647, not 4294967295"),
            ("ttyS0", "data bits", 9, "must be 5 to 8"),
            ("ttyS0", "parity", 7, "no such SET-PARITY value (1 to 5)"),
            ("ttyS0", "stop bits", 5, "no such SET-STOPSIZE value (1 to 3)"),
            ("ttyS0", "baud rate", "index 99", "no such Cisco speed index (3 to 16)")])
        self.assertEqual({e["peer"] for e in refused}, {h.client.peer})
        self.assertEqual([e for e in h.device.events if e[0] == "apply"], [])

    def test_readOnlyChangesNothing(self) -> None:
        """A read-only client's settings, DTR, break, mask and purge are answered with the state in effect; nothing changes."""
        h = Harness(Role.READONLY)
        self.assertEqual(h.send(sb(1, 0, 1, 0xC2, 0x00)), sb(101, 0, 0, 0x25, 0x80))
        self.assertEqual(h.send(sb(5, 9)), sb(105, 8))
        self.assertEqual(h.send(sb(5, 5)), sb(105, 6))
        # PURGE: only its own buffers (see test_readOnlyPurgeOwnBuffersOnly).
        self.assertEqual(h.send(sb(12, 3)), sb(112, 3))
        # SET-LINESTATE-MASK would turn PARMRK on in the device's termios.
        self.assertEqual(h.send(sb(10, 0x1C)), sb(110, 0))
        self.assertFalse(h.device.watching)
        self.assertEqual(h.device.events, [])

    def test_readOnlyPurgeOwnBuffersOnly(self) -> None:
        """
        A read-only client's PURGE-DATA is answered with the value it sent
        (RFC 2217: what was purged): its own buffers are, the output held
        for it while suspended (receive) and none of its input (transmit:
        it is refused); the device's queues are not touched (pyserial
        purges at every open: a 0 made it refuse a read-only port).
        """
        h = Harness(Role.READONLY)
        h.send(sb(8))
        h.line.deviceDataReceived(b"dropped")
        self.assertEqual(h.send(sb(12, 1)), sb(112, 1))
        self.assertEqual(h.send(sb(12, 2)), sb(112, 2))
        self.assertEqual(h.send(sb(12, 3)), sb(112, 3))
        self.assertEqual(h.send(sb(9)), b"")
        h.line.deviceDataReceived(b"kept")
        self.assertEqual(h.transport.value(), b"kept")
        self.assertEqual(h.device.events, [])

    def test_refusedBreakOnLogged(self) -> None:
        """A read-only client's BREAK-ON is answered with the break off and logged with why, at most once a second (a stream of them is not a stream of log lines)."""
        events = LogEvents(self).events
        h = Harness(Role.READONLY)
        self.assertEqual(h.send(sb(5, 5) * 3), sb(105, 6) * 3)
        h.clock.advance(1)
        h.send(sb(5, 5))
        refused = [e for e in events if "BREAK on" in e.get("log_format", "")]
        self.assertEqual([(e["line"], e["peer"], e["reason"]) for e in refused],
                         [("ttyS0", h.client.peer, "the client is read-only")] * 2)
        self.assertEqual(h.device.events, [])

    def test_refusedModemLinesLogged(self) -> None:
        """A read-only client's DTR or RTS change is answered with the line in effect and logged, as a refused setting is; asking for what is in effect is not."""
        events = LogEvents(self).events
        h = Harness(Role.READONLY)
        self.assertEqual(h.send(sb(5, 9) + sb(5, 11) + sb(5, 12)), sb(105, 8) + sb(105, 11) + sb(105, 11))
        refused = [e for e in events if "refused" in e.get("log_format", "")]
        self.assertEqual([(e["line"], e["peer"], e["asked"], e["reason"], e["inEffect"]) for e in refused], [
            ("ttyS0", h.client.peer, "DTR off", "the client is read-only", "DTR stays on"),
            ("ttyS0", h.client.peer, "RTS off", "the client is read-only", "RTS stays on"),
        ])
        self.assertEqual(h.device.events, [])

    def test_readOnlyPollDoesNotClear(self) -> None:
        """A read-only client's NOTIFY-LINESTATE poll leaves the line state seen for the writer's poll."""
        writer = Harness()
        reader = TelnetClient(writer.line, Role.READONLY)
        readerTransport = PausableTransport()
        reader.makeConnection(readerTransport)
        reader.dataReceived(bytes([IAC, WILL, CPO]))
        writer.send(sb(10, 0x10))
        writer.line.deviceLineState(0x10)
        readerTransport.clear()
        reader.dataReceived(sb(6))
        self.assertEqual(readerTransport.value(), sb(106, 0))
        self.assertEqual(writer.send(sb(6)), sb(106, 0x10))
        self.assertEqual(writer.send(sb(6)), sb(106, 0))

    def test_malformed(self) -> None:
        """Truncated, oversized, unknown and empty commands never break the session."""
        h = Harness()
        self.assertEqual(h.send(sb(1, 0, 1)), sb(101, 0, 0, 0x25, 0x80))
        self.assertEqual(h.send(sb(2)), sb(102, 8))
        self.assertEqual(h.send(sb(5)), b"")
        self.assertEqual(h.send(sb(5, 1, 2)), b"")
        self.assertEqual(h.send(sb(99, 1)), b"")
        self.assertEqual(h.send(bytes([IAC, SB, CPO, IAC, SE])), b"")
        self.assertEqual(h.send(bytes([IAC, SB, CPO]) + b"\x01" * 3000 + bytes([IAC, SE])), b"")
        self.assertEqual(h.send(sb(12, 7)), b"")
        # Then it still works, and data flows.
        self.assertEqual(h.send(sb(2, 0) + b"data"), sb(102, 8))
        self.assertEqual(h.device.events[-1], ("write", b"data"))

    def test_closeInsideSubnegotiation(self) -> None:
        """A client that disconnects in the middle of SB leaves the line clean."""
        h = Harness()
        h.send(bytes([IAC, SB, CPO, 1, 0, 0]))
        h.client.connectionLost()
        self.assertEqual((h.line.clients, h.line.controllers), ([], []))
        self.assertEqual(h.device.events, [])

    def test_clientSignatureNoReply(self) -> None:
        """A SIGNATURE with text is the client's own: kept, not answered."""
        h = Harness()
        self.assertEqual(h.send(sb(0, *b"pyserial")), b"")
        self.assertEqual(h.client.comPort.clientSignature, b"pyserial")  # type: ignore[union-attr]


class NotificationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.device.modem = 0x10 | 0x20  # CTS, DSR
        self.line = Line("ttyS0", self.device, clock=self.clock)
        self.client = TelnetClient(self.line)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)
        self.transport.clear()

    def tearDown(self) -> None:
        self.client.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noPollingWithoutController(self) -> None:
        """Modem lines are not polled while no RFC 2217 client is connected."""
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_changesNotified(self) -> None:
        """Each change of modem lines is notified within 50 ms, with its delta bits."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]))
        self.assertEqual(self.transport.value(), sb(107, 0x30))
        self.transport.clear()
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), b"")
        self.device.modem = 0x10 | 0x20 | 0x80  # CD up
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), sb(107, 0xB0 | 0x08))
        self.transport.clear()
        self.device.modem = 0x20 | 0x80 | 0x40  # CTS down, RI up
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), sb(107, 0xE0 | 0x01))
        self.transport.clear()
        self.device.modem = 0x20 | 0x80  # RI down: trailing edge
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), sb(107, 0xA0 | 0x04))

    def test_mask(self) -> None:
        """The modem-state mask filters what is notified and what triggers it."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]) + sb(11, 0x88))
        self.transport.clear()
        self.device.modem = 0x20  # CTS down: masked out
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), b"")
        self.device.modem = 0x20 | 0x80  # CD up
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), sb(107, 0x88))

    def test_lineStateMasked(self) -> None:
        """Breaks and errors are notified only as the line-state mask (initially 0) lets them; a poll reports them."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]))
        self.transport.clear()
        self.line.deviceLineState(0x10)
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.device.watching)
        self.client.dataReceived(sb(10, 0x1C))
        self.assertTrue(self.device.watching)
        self.transport.clear()
        self.line.deviceLineState(0x10 | 0x02)
        self.assertEqual(self.transport.value(), sb(106, 0x10))
        self.transport.clear()
        self.client.dataReceived(sb(6))
        self.assertEqual(self.transport.value(), sb(106, 0x10))
        self.transport.clear()
        self.client.dataReceived(sb(6))
        self.assertEqual(self.transport.value(), sb(106, 0))

    def test_suspendHeldWithinOutbuf(self) -> None:
        """While suspended, a client keeps at most its listener's outbuf of device output (the newest), the rest counted."""
        from serialgw.config.listeners import parseListener

        client = TelnetClient(self.line, listener=parseListener("telnet,outbuf=4096+4444"), clock=self.clock)
        transport = PausableTransport()
        client.makeConnection(transport)
        client.dataReceived(bytes([IAC, WILL, CPO, IAC, DO, 0, IAC, WILL, 0]))
        client.dataReceived(sb(8))
        transport.clear()
        self.line.deviceDataReceived(b"a" * 6000 + b"b" * 4000)
        self.assertEqual(transport.value(), b"")
        assert client.comPort is not None
        self.assertEqual((len(client.comPort.held), client.comPort.dropped), (4096, 10000 - 4096))
        client.dataReceived(sb(9))
        self.assertEqual(transport.value(), b"a" * 96 + b"b" * 4000)
        client.connectionLost()

    def test_suspendDropsKeptWhenOff(self) -> None:
        """Output dropped while suspended stays counted (serialgw_client_dropped_bytes_total{policy="suspended"}) once the client turns COM-PORT-OPTION off; a held BREAK-ON ends then (no BREAK-OFF can come)."""
        from serialgw.config.listeners import parseListener

        client = TelnetClient(self.line, listener=parseListener("telnet,outbuf=4096+4444"), clock=self.clock)
        transport = PausableTransport()
        client.makeConnection(transport)
        client.dataReceived(bytes([IAC, WILL, CPO, IAC, DO, 0, IAC, WILL, 0]))
        client.dataReceived(sb(8) + sb(5, 5))
        self.line.deviceDataReceived(b"a" * 6000 + b"b" * 4000)
        client.dataReceived(bytes([IAC, WONT, CPO]))
        self.assertEqual((client.comPort, self.line.droppedGone), (None, {"suspended": 10000 - 4096}))
        self.assertEqual(self.device.events[-2:], [("break", 30.0), ("break-off", None)])
        client.connectionLost()
        self.assertEqual(self.line.droppedGone, {"suspended": 10000 - 4096})

    def test_suspendHeldAtMostOneMiB(self) -> None:
        """With an outbuf above 1 MiB, a suspended client keeps SUSPEND_LIMIT (1 MiB) of device output, the newest."""
        from serialgw.clients.rfc2217 import SUSPEND_LIMIT
        from serialgw.config.listeners import parseListener

        self.assertEqual(SUSPEND_LIMIT, 1 << 20)
        client = TelnetClient(self.line, listener=parseListener("telnet,outbuf=4194304+4444"), clock=self.clock)
        client.makeConnection(PausableTransport())
        client.dataReceived(bytes([IAC, WILL, CPO]) + sb(8))
        self.line.deviceDataReceived(b"a" * 1000 + b"b" * SUSPEND_LIMIT)
        assert client.comPort is not None
        self.assertEqual((bytes(client.comPort.held), client.comPort.dropped), (b"b" * SUSPEND_LIMIT, 1000))
        client.connectionLost()

    def test_documentedSuspendBound(self) -> None:
        """README and man page give the suspended client's hold as the code keeps it: min(1 MiB, outbuf), oldest dropped."""
        from tests.realio import REPO

        with open(f"{REPO}/README.md") as f:
            row = next(r for r in f if r.startswith("| `FLOWCONTROL-SUSPEND` (8)"))
        self.assertIn("the newest 1 MiB, or the client's `outbuf` if smaller, oldest dropped", row)
        with open(f"{REPO}/man/serialgw.8") as f:
            page = f.read().replace("\\-", "-").replace("\n", " ")
        self.assertIn("the newest 1 MiB of device output, or its outbuf if smaller", page)

    def test_suspendHoldsDataAndNotifications(self) -> None:
        """FLOWCONTROL-SUSPEND holds data and notifications; RESUME sends the data; flow control untouched."""
        self.client.dataReceived(bytes([IAC, WILL, CPO, IAC, DO, 0, IAC, WILL, 0]))
        self.client.dataReceived(sb(8))
        self.transport.clear()
        self.line.deviceDataReceived(b"held\xff")
        self.device.modem = 0x10
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), b"")
        self.client.dataReceived(sb(9))
        # The data, then the modem state as it is now, with DSR's delta.
        self.assertEqual(self.transport.value(), b"held\xff\xff" + sb(107, 0x10 | 0x02))
        self.assertEqual([e for e in self.device.events if e[0] == "apply"], [])

    def test_modemChangesToldOnceAfterResume(self) -> None:
        """Modem lines that changed while suspended are told once at RESUME: the state then, with the delta of every line that changed (DSR went and came back: its delta too)."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]) + sb(8))
        self.transport.clear()
        for state in (0x10, 0x30, 0x30 | 0x80):  # DSR off, DSR on, CD up
            self.device.modem = state
            self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), b"")
        self.client.dataReceived(sb(9))
        self.assertEqual(self.transport.value(), sb(107, 0xB0 | 0x02 | 0x08))
        self.transport.clear()
        self.clock.advance(0.05)
        self.client.dataReceived(sb(8) + sb(9))
        self.assertEqual(self.transport.value(), b"")
        # After the resume, changes are told as they happen again.
        self.device.modem = 0x30
        self.clock.advance(0.05)
        self.assertEqual(self.transport.value(), sb(107, 0x30 | 0x08))

    def test_modemChangesAfterResumeMasked(self) -> None:
        """At RESUME, the modem-state mask decides: a masked change alone is not told; an unmasked one is, masked."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]) + sb(11, 0x88) + sb(8))
        self.transport.clear()
        self.device.modem = 0x20  # CTS down: masked out
        self.clock.advance(0.05)
        self.client.dataReceived(sb(9))
        self.assertEqual(self.transport.value(), b"")
        self.client.dataReceived(sb(8))
        self.device.modem = 0x20 | 0x80  # CD up
        self.clock.advance(0.05)
        self.client.dataReceived(sb(9))
        self.assertEqual(self.transport.value(), sb(107, 0x88))

    def test_lineStateToldAfterResume(self) -> None:
        """Breaks and errors seen while suspended are told once at RESUME, masked, all bits together."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]) + sb(10, 0x10 | 0x08) + sb(8))
        self.transport.clear()
        self.line.deviceLineState(0x10)
        self.line.deviceLineState(0x08 | 0x02)
        self.assertEqual(self.transport.value(), b"")
        self.client.dataReceived(sb(9))
        self.assertEqual(self.transport.value(), sb(106, 0x18))
        self.transport.clear()
        self.client.dataReceived(sb(8) + sb(9))
        self.assertEqual(self.transport.value(), b"")

    def test_purgeReceiveDropsHeld(self) -> None:
        """PURGE-DATA receive also drops output held for a suspended client."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]) + sb(8))
        self.line.deviceDataReceived(b"stale")
        self.client.dataReceived(sb(12, 1) + sb(9))
        self.line.deviceDataReceived(b"new")
        self.assertTrue(self.transport.value().endswith(sb(112, 1) + b"new"))
        self.assertNotIn(b"stale", self.transport.value())

    def test_deviceBehindSuspendsClient(self) -> None:
        """When the device cannot keep up, RFC 2217 clients get SUSPEND, then RESUME."""
        self.client.dataReceived(bytes([IAC, WILL, CPO]))
        self.transport.clear()
        self.line.deviceWritable(False)
        self.line.deviceWritable(True)
        self.assertEqual(self.transport.value(), sb(108) + sb(109))
        self.assertEqual((self.transport.pauses, self.transport.resumes), (1, 1))


class DeviceDownTests(SynchronousTestCase):
    def test_carrierDrops(self) -> None:
        """An RFC 2217 client sees CD drop (with its delta) when the device goes, and come back; no text."""
        h = Harness()
        h.transport.clear()
        from twisted.python.failure import Failure

        h.line.deviceLost(Failure(OSError(5, "Input/output error")))
        self.assertEqual(h.transport.value(), sb(107, 0x30 | 0x08))
        h.transport.clear()
        self.assertEqual(h.send(sb(7)), sb(107, 0x30))
        h.transport.clear()
        h.line.deviceUp()
        self.assertEqual(h.transport.value(), sb(107, 0xB0 | 0x08))

    def test_telnetNotice(self) -> None:
        """A plain telnet client gets one short notice each way; none with notices off; raw gets nothing."""
        from twisted.python.failure import Failure

        from serialgw.clients.raw import RawClient

        device = RecordingDevice()
        line = Line("ttyUSB0", device, clock=Clock())
        telnet = TelnetClient(line)
        telnetTransport = PausableTransport()
        telnet.makeConnection(telnetTransport)
        raw = RawClient(line)
        rawTransport = PausableTransport()
        raw.makeConnection(rawTransport)
        verifyObject(IClient, raw)
        telnet.dataReceived(bytes([IAC, DO, 0]))
        telnetTransport.clear()
        line.deviceLost(Failure(OSError(5, "Input/output error")))
        line.deviceUp()
        self.assertEqual(
            telnetTransport.value(),
            b"\r\n[serialgw: ttyUSB0 is down: [Errno 5] Input/output error; waiting for it]\r\n"
            b"\r\n[serialgw: ttyUSB0 is back]\r\n",
        )
        self.assertEqual(rawTransport.value(), b"")
        line.notices = False
        telnetTransport.clear()
        line.deviceLost(Failure(OSError(5, "Input/output error")))
        self.assertEqual(telnetTransport.value(), b"")


class RestoreTests(SynchronousTestCase):
    def make(self, restore: bool = True) -> tuple[Line, RecordingDevice, list[TelnetClient]]:
        device = RecordingDevice(SerialSettings(115200))
        line = Line("ttyS0", device, clock=Clock(), restoreSettings=restore)
        clients = []
        for _ in range(2):
            client = TelnetClient(line)
            client.makeConnection(PausableTransport())
            client.dataReceived(bytes([IAC, WILL, CPO]))
            clients.append(client)
        clients[0].dataReceived(sb(1, 0, 0, 0x25, 0x80) + sb(5, 9))
        return line, device, clients

    def test_restoredAfterLast(self) -> None:
        """Configured settings and DTR come back when the last RFC 2217 client leaves, not before."""
        line, device, clients = self.make()
        clients[0].connectionLost()
        self.assertEqual(device.settings.baudrate, 9600)
        clients[1].connectionLost()
        self.assertEqual(device.settings, SerialSettings(115200))
        self.assertEqual(device.modemLines, {"dtr": True, "rts": True})

    def test_readOnlyLeavingRestoresNothing(self) -> None:
        """Only writers count: a read-only RFC 2217 client leaving keeps the writer's settings; staying, it does not hold back the restore."""
        device = RecordingDevice(SerialSettings(115200))
        line = Line("ttyS0", device, clock=Clock())
        writer = TelnetClient(line)
        writer.makeConnection(PausableTransport())
        writer.dataReceived(bytes([IAC, WILL, CPO]) + sb(1, 0, 0, 0x25, 0x80))
        readers = []
        for _ in range(2):
            reader = TelnetClient(line, Role.READONLY)
            reader.makeConnection(PausableTransport())
            reader.dataReceived(bytes([IAC, WILL, CPO]))
            readers.append(reader)
        readers[0].connectionLost()
        self.assertEqual(device.settings, SerialSettings(9600))
        writer.connectionLost()
        self.assertEqual(device.settings, SerialSettings(115200))
        self.assertEqual(line.controllers, [readers[1]])
        applied = len(device.events)
        readers[1].connectionLost()
        self.assertEqual(len(device.events), applied)

    def test_watcherLeavingRestoresNothing(self) -> None:
        """Exclusive mode: an RFC 2217 client that only watches (it may change nothing) leaving keeps the writer's baud rate (set from the escape menu)."""
        device = RecordingDevice(SerialSettings(115200))
        line = Line("ttyS0", device, clock=Clock())
        line.setMode("exclusive")
        writer = TelnetClient(line)
        writer.makeConnection(PausableTransport())
        line.clientSettings(writer, SerialSettings(9600))
        watcher = TelnetClient(line)
        watcher.makeConnection(PausableTransport())
        watcher.dataReceived(bytes([IAC, WILL, CPO]) + sb(1, 0, 0, 0x4B, 0x00))
        self.assertEqual((watcher.role, device.settings), (Role.WATCHER, SerialSettings(9600)))
        watcher.connectionLost()
        self.assertEqual(device.settings, SerialSettings(9600))

    def test_restoreOff(self) -> None:
        """With restore off, the last client's settings stay."""
        line, device, clients = self.make(restore=False)
        for client in clients:
            client.connectionLost()
        self.assertEqual(device.settings.baudrate, 9600)




class AbsurdRateTests(SynchronousTestCase):
    """
    Rates no UART has, on a real pty device (where termios refuses them with
    OverflowError past 2^31 - 1): answered with the rate in effect, the
    session goes on.
    """

    def setUp(self) -> None:
        from twisted.internet.address import IPv4Address
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        from serialgw.config.listeners import parseListener
        from serialgw.devices.device import SerialDevice
        from serialgw.devices.ports import PtyPort

        self.port = PtyPort("", SerialSettings(9600))
        self.device = SerialDevice(self.port, MemoryReactorClock())
        self.addCleanup(self.device.close)
        self.line = Line("ttyS0", self.device, clock=Clock())
        self.client = TelnetClient(self.line, listener=parseListener("telnet,escape=^]+4444"))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        self.client.makeConnection(self.transport)

    def send(self, data: bytes) -> bytes:
        self.transport.clear()
        self.client.dataReceived(data)
        return self.transport.value()

    def test_setBaudrateAnsweredWithRateInEffect(self) -> None:
        """SET-BAUDRATE of 2^31, 3e9 and 2^32 - 1: the reply is 9600, the device stays at 9600."""
        self.send(bytes([IAC, WILL, CPO]))
        for rate in (2**31, 3_000_000_000, 2**32 - 1):
            self.assertEqual(self.send(sb(1, *rate.to_bytes(4, "big"))), sb(101, 0, 0, 0x25, 0x80), rate)
        self.assertEqual((self.device.settings.baudrate, self.port.apply(self.device.settings).baudrate), (9600, 9600))
        self.assertFalse(self.transport.disconnecting)

    def test_escapeMenuSaysRateNotValid(self) -> None:
        """^]B 3000000000 Enter: the menu says the rate is not valid; the connection and the rate stay."""
        self.send(bytes([IAC, DO, 1, IAC, DO, 3, IAC, WILL, 3]))
        self.assertEqual(
            self.send(b"\x1dB3000000000\r"),
            b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
            b"\r\n[serialgw: baud rate must be 1 to 2147483647, not '3000000000']\r\n",
        )
        self.assertEqual(self.device.settings.baudrate, 9600)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.send(b"\x1dB57600\r"), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                         b"\r\n[serialgw: ttyS0 now at 57600,8N1]\r\n")

    def test_escapeMenuInvalidRateLogged(self) -> None:
        """^]B with a rate no port takes: the log names the line, the client, the setting, the value typed and why."""
        log = LogEvents(self)
        self.send(bytes([IAC, DO, 1, IAC, DO, 3, IAC, WILL, 3]))
        self.send(b"\x1dB3000000000\r")
        (event,) = [e for e in log.events if "refused" in (e.get("log_format") or "")]
        self.assertEqual((event["line"], event["peer"], event["setting"], event["value"], event["asked"], event["reason"]),
                         ("ttyS0", "192.0.2.9:1000", "baud rate", "3000000000", "baud rate 3000000000",
                          "baud rate must be 1 to 2147483647, not '3000000000'"))


class RefusedSettingsCountTests(SynchronousTestCase):
    def test_countReadsAsEnglish(self) -> None:
        """Refused settings are counted as "N refused COM-PORT-OPTION settings" (it read "5 COM-PORT-OPTION setting refuseds")."""
        events = LogEvents(self).events
        h = Harness()
        h.send(sb(2, 4))
        h.clock.advance(61)
        h.send(sb(2, 9) + sb(4, 4))
        h.client.connectionLost()
        counts = [e["summary"] for e in events if "summary" in e]
        self.assertEqual(counts, ["1 refused COM-PORT-OPTION setting", "2 refused COM-PORT-OPTION settings"])
