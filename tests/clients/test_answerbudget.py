"""
A client past its output bound (a console flooding faster than it reads)
is read on: its typing, telnet's IAC IP, reaches the device at once, and
what it is owed in answer (telnet negotiation, AYT, RFC 2217 replies, the
escape menu's) goes out of a small answer budget at once, ahead of its held
output; once the budget is spent its input is held until it has taken its
output, so one that sends and never reads holds no more than its bound,
its held output, the budget and one read.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.guard import ANSWER_BUDGET
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.telnetout import ANSWER_BATCH
from tests.fakes import BoundedTransport, RecordingDevice, oneTurn

AYT = b"\xff\xf6"
AYT_ANSWER = b"\r\n[serialgw: yes]\r\n"
IP = b"\xff\xf4"
ESC = b"\x1d"


class AnswerBudgetTests(SynchronousTestCase):
    """Telnet and escape-menu clients past their output bound."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)

    def telnet(self, listener: str = "telnet,outbuf=1024+4444") -> tuple[TelnetClient, BoundedTransport]:
        client = TelnetClient(self.line, listener=parseListener(listener), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        client.dataReceived(b"\xff\xfd\x00\xff\xfc\x2c")  # DO BINARY, WONT COM-PORT
        transport.drain()
        return client, transport

    def behind(self, client: TelnetClient | RawClient, bound: int) -> bytes:
        """The device floods past the client's bound, and more is held for it: what its transport holds."""
        self.line.deviceDataReceived(b"y" * (bound + 1))
        self.line.deviceDataReceived(b"z" * 500)
        guard = client.guard
        assert guard is not None
        self.assertEqual((guard.full, guard.heldBytes), (True, 500))
        return bytes(client.transport.value())

    def test_interruptReachesTheDeviceWhileBehind(self) -> None:
        """Past its bound, a telnet client's IAC IP (Debian telnet's ^C) and a typed ^C reach the device at once; it is still read."""
        client, transport = self.telnet()
        before = self.behind(client, 1024)
        client.dataReceived(IP)
        client.dataReceived(b"\x03")
        self.assertEqual(self.device.events, [("write", b"\x03"), ("write", b"\x03")])
        self.assertEqual((client.inputHeld, transport.producerState), (False, "producing"))
        # Nothing was owed: what it holds is unchanged, the held output follows once it drains.
        self.assertEqual(transport.drain(), before)
        self.assertEqual(transport.drain(), b"z" * 500)

    def test_negotiationAndAytAnsweredAheadOfHeldOutput(self) -> None:
        """Past its bound, AYT and a DO of an unknown option are answered at once, ahead of the output held for it."""
        client, transport = self.telnet()
        before = self.behind(client, 1024)
        client.dataReceived(AYT + b"\xff\xfd\x63")
        self.assertEqual(transport.drain(), before + AYT_ANSWER + b"\xff\xfc\x63")
        self.assertEqual(transport.drain(), b"z" * 500)

    def test_escapeMenuAnsweredAtOnce(self) -> None:
        """Past its bound, ^] s is answered at once, ahead of the held output; the ^C typed after it reaches the device."""
        client, transport = self.telnet("telnet,escape=^],outbuf=1024+4444")
        before = self.behind(client, 1024)
        client.dataReceived(ESC + b"s" + b"\x03")
        self.assertEqual(self.device.events, [("write", b"\x03")])
        self.assertEqual(
            transport.drain(),
            before + b"\r\n[serialgw: t:  up, 115200,8N1, 1525 bytes in, 0 out, 0 breaks, 0 dropped while down, "
            b"mode shared]\r\n")
        self.assertEqual(transport.drain(), b"z" * 500)
        self.assertEqual(transport.producerState, "producing")

    def test_rawEscapeMenuReadOnAndAnswered(self) -> None:
        """A raw client with an escape menu past its bound: ^C reaches the device, ^] w is answered at once."""
        client = RawClient(self.line, listener=parseListener("raw,escape=^],outbuf=1024+4444"), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        before = self.behind(client, 1024)
        client.dataReceived(b"\x03" + ESC + b"w")
        self.assertEqual(self.device.events, [("write", b"\x03")])
        self.assertEqual(transport.drain(), before + b"\r\n[serialgw: t: " + client.peer.encode() + b" (writer)]\r\n")
        self.assertEqual(transport.drain(), b"z" * 500)

    def test_budgetBoundsWhatANonReaderGets(self) -> None:
        """
        AYT without end from a client that never reads, past its bound:
        answers stop once the budget (and the batch that spent it) is out,
        the rest waits unparsed, it is not read; what it holds stays under
        its bound, its held output, the budget and one batch; once it reads,
        every AYT is answered.
        """
        client, transport = self.telnet("telnet,outbuf=65536+4444")
        self.assertEqual(ANSWER_BUDGET, 4096)
        before = self.behind(client, 65536)
        client.dataReceived(AYT * 1000)
        # Answers go in pieces of ANSWER_BATCH bytes or more: the first, 216 answers, spends the budget.
        perBatch = -(-ANSWER_BATCH // len(AYT_ANSWER))
        self.assertEqual(transport.value(), before + AYT_ANSWER * perBatch)
        self.assertEqual((client.inputHeld, transport.producerState), (True, "paused"))
        self.assertEqual(client._wireHeld, b"\xf6" + AYT * (1000 - perBatch - 1))
        client.dataReceived(AYT)  # (what a read brings meanwhile: a TLS record already decrypted)
        self.assertEqual(self.device.events, [])
        guard = client.guard
        assert guard is not None
        self.assertLessEqual(transport.most + guard.heldBytes, 65536 + 1 + 500 + ANSWER_BUDGET + ANSWER_BATCH + len(AYT_ANSWER))
        out = b""
        while client.inputHeld or self.clock.getDelayedCalls():
            if client.inputHeld:
                out += transport.drain()
            else:
                oneTurn(self.clock)  # (COMMANDS_PER_TURN a turn)
        out += transport.drain()
        self.assertEqual(out.count(AYT_ANSWER), 1001)
        self.assertEqual((client._wireHeld, transport.producerState), (b"", "producing"))

    def test_watcherNotSentBounded(self) -> None:
        """A telnet watcher typing without end past its bound: refused, its "not sent" notice at most once, its typing never held."""
        client = TelnetClient(self.line, Role.WATCHER, listener=parseListener("telnet,outbuf=1024+4444"), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        client.dataReceived(b"\xff\xfd\x00\xff\xfc\x2c")
        transport.drain()
        before = self.behind(client, 1024)
        for _ in range(100):
            client.dataReceived(b"x" * 4096)
        notSent = b"\r\n[serialgw: you only watch: what you type is not sent to t; nobody writes now (no escape menu " \
                  b"here to take write: connect again to write)]\r\n"
        self.assertEqual(transport.value(), before + notSent)
        self.assertEqual((client.inputHeld, transport.producerState), (False, "producing"))
        self.assertEqual(self.line.refused, 100 * 4096)

    def test_rfc2217ReplyAtOnceNotificationsOwed(self) -> None:
        """An RFC 2217 client past its bound: its SET-BAUDRATE is done and answered at once; what the device causes waits until it drains."""
        self.device.modem = 0x30
        client = TelnetClient(self.line, listener=parseListener("telnet,outbuf=1024+4444"), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        client.dataReceived(b"\xff\xfb\x2c")  # WILL COM-PORT-OPTION
        transport.drain()
        self.line.deviceDataReceived(b"a" * 1100)
        before = transport.value()
        client.dataReceived(b"\xff\xfa\x2c\x01\x00\x00\x25\x80\xff\xf0")  # SET-BAUDRATE 9600
        self.assertEqual(self.line.settings.baudrate, 9600)
        self.assertEqual(transport.value(), before + b"\xff\xfa\x2c\x65\x00\x00\x25\x80\xff\xf0")
        self.device.modem = 0xB0
        self.clock.advance(0.05)
        self.assertEqual(transport.value(), before + b"\xff\xfa\x2c\x65\x00\x00\x25\x80\xff\xf0")
        transport.drain()
        self.assertEqual(transport.value(), b"\xff\xfa\x2c\x6b\xb8\xff\xf0")  # NOTIFY-MODEMSTATE: CD DSR CTS, CD changed

    def test_replayFloodWithBlockBounded(self) -> None:
        """
        policy=block past its bound (its output is written, the device held):
        ^] r over and over from a client that never reads is an answer each,
        out of the budget: what it holds stays under its bound, the budget
        and one replay, the rest of its input waits.
        """
        client, transport = self.telnet("telnet,escape=^],policy=block,outbuf=4096+4444")
        self.line.deviceDataReceived(b"line of output\r\n" * 300)
        guard = client.guard
        assert guard is not None
        self.assertTrue(guard.full)
        client.dataReceived((ESC + b"r") * 1000)
        while self.clock.getDelayedCalls():
            oneTurn(self.clock)  # (KEYS_PER_TURN keys of commands a turn)
        self.assertEqual((client.inputHeld, transport.producerState), (True, "paused"))
        # The device's output past the bound (the line's 4800-byte chunk), the budget's 4096 and the replay that spent it.
        self.assertLessEqual(transport.most, 4800 + 4096 + 4096 + 64)
        self.assertEqual(self.device.events, [("pause", None)])

    def test_replayWhileBehindWaitsWithTheOutput(self) -> None:
        """Past its bound with policy=drop, ^] R 200 (twice) waits with the output held for it (bounded) and spends no budget: the ^C typed after it reaches the device."""
        client, transport = self.telnet("telnet,escape=^],outbuf=4096+4444")
        self.line.deviceDataReceived(b"line of output\r\n" * 300)
        guard = client.guard
        assert guard is not None
        self.assertTrue(guard.full)
        client.dataReceived(ESC + b"R200\r" + ESC + b"R200\r")
        client.dataReceived(b"\x03")
        self.assertEqual(self.device.events, [("write", b"\x03")])
        self.assertEqual((client.inputHeld, guard.answered <= 200), (False, True))
        self.assertLessEqual(guard.heldBytes, 4096)
