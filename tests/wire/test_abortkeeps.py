"""
Telnet AO's Synch (serialgw.wire.telnetout) drops the console output
queued for the client, never our own telnet bytes queued among it (option
answers, RFC 2217 replies, which a client may wait for); its urgent mark
is on the DM, however the kernel takes the Synch.  Exact bytes on a TCP
transport over a scripted socket (each send takes what the script says),
and once over real loopback TCP.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import tcp
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.wire.telnetcodes import DM, IAC, SB, SE, WILL
from tests.telnetpeer import TelnetRecorder, cmd
from tests.wire import test_urgent

OOB = socket.MSG_OOB
RESYNC = cmd(0, IAC, SE)


class ScriptedSocket:
    """A socket whose sends take what C{takes} says in turn (-1: EAGAIN; past the script: all)."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.takes: list[int] = []
        self.sent: list[tuple[bytes, int]] = []

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def setsockopt(self, *args: object) -> None:
        pass

    def send(self, data: Any, flags: int = 0) -> int:
        take = self.takes.pop(0) if self.takes else len(data)
        if take < 0:
            raise BlockingIOError()
        take = min(take, len(data))
        self.sent.append((bytes(data[:take]), flags))
        return take

    def wire(self) -> bytes:
        return b"".join(data for data, _ in self.sent)

    def urgent(self) -> list[bytes]:
        return [data for data, flags in self.sent if flags & OOB]


class Codec(TelnetRecorder):
    def __init__(self) -> None:
        TelnetRecorder.__init__(self)
        self.aborted: list[int] = []

    def outputAborted(self, discarded: int) -> None:
        self.aborted.append(discarded)


def connected() -> tuple[Codec, Any, ScriptedSocket]:
    """A codec on a plain TCP transport whose socket is scripted; the kernel full until the script says."""
    sock = ScriptedSocket()
    codec = Codec()
    transport: Any = tcp.Connection(sock, codec, MemoryReactor())  # type: ignore[arg-type]
    transport.connected = 1
    codec.makeConnection(transport)
    return codec, transport, sock


def queued(transport: Any) -> bytes:
    return bytes(transport.dataBuffer[transport.offset:]) + b"".join(transport._tempDataBuffer)


def drain(transport: Any, sock: ScriptedSocket, *takes: int) -> None:
    """The kernel takes C{takes} bytes a send, a send a turn (Twisted's doWrite)."""
    sock.takes[:] = list(takes)
    for _ in takes:
        transport.doWrite()


class KeptAnswersTests(SynchronousTestCase):
    def test_ourAnswersQueuedAmongOutputKept(self) -> None:
        """Console output queued with our negotiation answer and an RFC 2217 reply among it: AO drops the output only; the answer and the reply go before the DM, in order, the DM alone urgent."""
        codec, transport, sock = connected()
        sock.takes[:] = [-1]
        codec.writeData(b"a" * 10)
        codec.sendCommand(0xF1)  # a NOP: one of ours
        codec.writeData(b"b" * 10)
        codec.sendSubnegotiation(44, b"\x66\x07")
        codec.writeData(b"c\xff")
        self.assertEqual(sock.wire(), b"")
        codec.sendSynch()
        self.assertEqual(codec.aborted, [10 + 10 + 3])
        self.assertEqual(sock.wire(), RESYNC + cmd(IAC, 0xF1, IAC, SB, 44, 0x66, 0x07, IAC, SE, IAC, DM))
        self.assertEqual(sock.urgent(), [cmd(DM)])
        self.assertEqual(queued(transport), b"")

    def test_answerCutByTheKernelFinished(self) -> None:
        """The kernel took the first bytes of our RFC 2217 reply and none of the rest: its remainder goes first (the peer is inside it), then the NUL IAC SE and the DM; the output after it is dropped."""
        codec, transport, sock = connected()
        sock.takes[:] = [-1]
        codec.writeData(b"abc")
        codec.sendSubnegotiation(44, b"\x65\x00\x00\x25\x80")
        codec.writeData(b"x" * 100)
        drain(transport, sock, 6)
        self.assertEqual(sock.wire(), b"abc" + cmd(IAC, SB, 44))
        codec.sendSynch()
        self.assertEqual(sock.wire()[6:], cmd(0x65, 0, 0, 0x25, 0x80, IAC, SE) + RESYNC + cmd(IAC, DM))
        self.assertEqual(codec.aborted, [100])

    def test_keptAnswersOfAWaitingSynchKeptAgain(self) -> None:
        """The kernel full: the first Synch (with our answer) waits; a second AO drops it and what follows, keeping the answer once, one DM urgent."""
        codec, transport, sock = connected()
        sock.takes[:] = [-1]
        codec.writeData(b"a" * 10)
        codec.sendCommand(0xF1)
        sock.takes[:] = [-1, -1]
        codec.sendSynch()
        codec.writeData(b"between")
        sock.takes[:] = [-1, -1]
        codec.sendSynch()
        # (The waiting Synch's NUL IAC SE and IAC DM counted with the output, as before.)
        self.assertEqual(codec.aborted, [10, len(RESYNC) + 2 + len(b"between")])
        self.assertEqual(sock.wire(), b"")
        drain(transport, sock, 100, 100, 100)
        self.assertEqual(sock.wire(), RESYNC + cmd(IAC, 0xF1, IAC, DM))
        self.assertEqual(sock.urgent(), [cmd(DM)])

    def test_nothingButOursQueued(self) -> None:
        """Only our answers queued: nothing is dropped (no NUL IAC SE), they go first, then IAC DM."""
        codec, transport, sock = connected()
        codec.sendCommand(0xF1)
        self.assertEqual(queued(transport), cmd(IAC, 0xF1))
        codec.sendSynch()
        self.assertEqual((sock.wire(), codec.aborted), (cmd(IAC, 0xF1, IAC, DM), []))
        self.assertEqual(sock.urgent(), [cmd(DM)])

    def test_keptOfQueued(self) -> None:
        """The split itself: spans of ours wholly or partly queued are kept (a cut one's remainder apart), the rest counted dropped."""
        from serialgw.wire.telnetout import keptOfQueued

        tail = b"Xcd" + b"dataIAC" + b"ours" + b"more"
        # Stream positions: the kernel has 100 bytes; ours at 98..103 (cut), 110..114; one at 90..95 sent already.
        self.assertEqual(keptOfQueued(tail, 100, [(90, 95), (98, 103), (110, 114)]), (b"Xcd", b"ours", 11))
        self.assertEqual(keptOfQueued(b"plain", 7, []), (b"", b"", 5))


class UrgentMarkTests(SynchronousTestCase):
    def test_partialSendMarksTheDM(self) -> None:
        """The kernel has room for part of the Synch only: the urgent mark is never put before the DM (a partial send with MSG_OOB marks its own last byte): the DM goes alone, urgent, when its turn comes."""
        codec, transport, sock = connected()
        sock.takes[:] = [-1]
        codec.writeData(b"q" * 50)
        sock.takes[:] = [2]
        codec.sendSynch()
        drain(transport, sock, 1, 10, 10)
        self.assertEqual(sock.wire(), RESYNC + cmd(IAC, DM))
        self.assertEqual(sock.urgent(), [cmd(DM)])

    def test_nothingQueuedKernelTakesPart(self) -> None:
        """Nothing queued, the kernel takes one byte of IAC DM: the DM still goes alone as the urgent byte."""
        codec, transport, sock = connected()
        sock.takes[:] = [1, -1]
        codec.sendSynch()
        drain(transport, sock, 5)
        self.assertEqual(sock.wire(), cmd(IAC, DM))
        self.assertEqual(sock.urgent(), [cmd(DM)])


class RealKeptAnswersTests(TestCase):
    timeout = 30

    async def test_answerBehindFloodKept(self) -> None:
        """Over loopback TCP, 200 KB behind a client that reads nothing, then our WILL answer, then more output: AO drops the output, the client reads the WILL before the urgent DM."""
        proto, peer, queuedBefore = await test_urgent.AbortOutputTests.flooded(self)  # type: ignore[arg-type]
        proto.sendCommand(0xF1)
        proto._answer(cmd(IAC, WILL, 3))
        proto.writeData(b"z" * 1000)
        proto.sendSynch()
        before = await test_urgent.AbortOutputTests.toTheMark(self, peer)  # type: ignore[arg-type]
        self.assertEqual(before[-len(RESYNC) - 6:], RESYNC + cmd(IAC, 0xF1, IAC, WILL, 3, IAC))
        self.assertEqual(before[:-len(RESYNC) - 6], b"x" * (200_000 - queuedBefore))
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))
