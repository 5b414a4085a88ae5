"""
RFC 2217's server side attacked with hypothesis: COM-PORT-OPTION requests of
every command with every length 0..8 and odd values, interleaved with data
and IAC IAC, split at any byte; checked against a model of the answers
RFC 2217 asks for, the bytes the device gets, and what is counted as
malformed.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from serialgw import __version__
from serialgw.clients.telnet import TelnetClient
from serialgw.config.specs import MAX_BAUD, SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.rfc2217 import (
    CISCO_BAUD,
    CISCO_INDEX,
    COM_PORT_OPTION,
    PARITY_CODES,
    PARITY_VALUES,
    STOPSIZE_CODES,
    STOPSIZE_VALUES,
)
from serialgw.wire.telnet import MAX_SUBNEGOTIATION
from serialgw.wire.telnetcodes import BINARY, DO, IAC, SB, SE, SGA, WILL
from tests.fakes import CallObserver, RecordingDevice, observeLog, oneTurn
from tests.telnetpeer import TelnetRecorder

PROPERTY = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def escaped(data: bytes) -> bytes:
    return data.replace(b"\xff", b"\xff\xff")


def request(payload: bytes) -> bytes:
    return bytes((IAC, SB, COM_PORT_OPTION)) + escaped(payload) + bytes((IAC, SE))


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    out, last = [], 0
    for mark in marks:
        out.append(data[last:mark])
        last = mark
    out.append(data[last:])
    return out


class Model:
    """What RFC 2217 says a server answers, on a device that takes every setting (a writer's requests)."""

    def __init__(self, writer: bool = True) -> None:
        self.writer = writer
        self.settings = SerialSettings(9600)
        self.linestateMask = 0
        self.modemstateMask = 255
        self.breaking = False
        self.lines = {"dtr": True, "rts": True}

    def change(self, **changes: Any) -> SerialSettings:
        """The settings in effect after a request for C{changes} (a client that may not write changes nothing)."""
        if self.writer:
            self.settings = attrs.evolve(self.settings, **changes)
        return self.settings

    def flow(self, inbound: bool) -> int:
        base = 13 if inbound else 0
        return base + (3 if self.settings.rtscts else 2 if self.settings.xonxoff else 1)

    def answer(self, payload: bytes) -> tuple[Optional[bytes], bool]:
        """The answer's payload (None: none) and whether the request is malformed."""
        command, value = payload[0], payload[1:]
        s = self.settings
        one = value[0] if len(value) == 1 else None

        def reply(body: bytes) -> bytes:
            return bytes((command + 100,)) + body

        if command == 0:
            if value:
                return None, False
            return reply(f"serialgw {__version__} t".encode()), False
        if command == 1:
            if len(value) == 1:
                if one in CISCO_BAUD:
                    s = self.change(baudrate=CISCO_BAUD[one])
                    return reply(bytes((CISCO_INDEX.get(s.baudrate, 0),))), False
                return reply(bytes((CISCO_INDEX.get(s.baudrate, 0),))), bool(one)
            if len(value) == 4:
                baud = int.from_bytes(value, "big")
                if 0 < baud <= MAX_BAUD:
                    s = self.change(baudrate=baud)
                return reply(s.baudrate.to_bytes(4, "big")), baud > MAX_BAUD
            return reply(s.baudrate.to_bytes(4, "big")), True
        if command == 2:
            if one is not None and 5 <= one <= 8:
                s = self.change(bytesize=one)
            return reply(bytes((s.bytesize,))), one is None or not (one == 0 or 5 <= one <= 8)
        if command == 3:
            if one in PARITY_CODES:
                s = self.change(parity=PARITY_CODES[one])
            return reply(bytes((PARITY_VALUES[s.parity],))), one is None or not (one == 0 or one in PARITY_CODES)
        if command == 4:
            if one in STOPSIZE_CODES:
                s = self.change(stopbits=STOPSIZE_CODES[one])
            return reply(bytes((STOPSIZE_VALUES[s.stopbits],))), one is None or not (one == 0 or one in STOPSIZE_CODES)
        if command == 5:
            if one is None:
                return None, True
            if one in (1, 2, 3, 14, 15, 16):
                kind = one % 13 if one >= 13 else one
                s = self.change(xonxoff=kind == 2, rtscts=kind == 3)
            if one <= 3 or 13 <= one <= 16:
                return reply(bytes((self.flow(one >= 13),))), False
            if 4 <= one <= 6:
                if one != 4 and self.writer:
                    self.breaking = one == 5
                return reply(bytes((5 if self.breaking else 6,))), False
            if 7 <= one <= 12:
                name, base = ("dtr", 7) if one <= 9 else ("rts", 10)
                if one != base and self.writer:
                    self.lines[name] = one == base + 1
                return reply(bytes((base + 1 if self.lines[name] else base + 2,))), False
            if 17 <= one <= 19:
                return reply(bytes((self.flow(one == 18),))), False
            return reply(bytes((self.flow(False),))), True
        if command == 6:
            return reply(bytes((0,))), False
        if command == 7:
            # No modem lines (a pty): CTS, DSR and CD on.
            return reply(bytes((0xB0 & self.modemstateMask,))), False
        if command in (8, 9):
            return None, False
        if command == 10:
            if one is not None and self.writer:
                self.linestateMask = one
            return reply(bytes((self.linestateMask,))), one is None
        if command == 11:
            if one is not None:
                self.modemstateMask = one
            return reply(bytes((self.modemstateMask,))), one is None
        if command == 12:
            if one in (1, 2, 3):
                return reply(bytes((one,))), False
            return None, True
        return None, True


values = st.one_of(
    st.binary(max_size=8),
    st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 19, 20, 0x7F, 0x80, 0xFE, 0xFF]),
             max_size=8).map(bytes),
)
requests = st.tuples(st.one_of(st.integers(0, 12), st.sampled_from([13, 99, 100, 101, 112, 255])), values).map(
    lambda cv: bytes((cv[0],)) + cv[1])
# Data: any bytes but the ones a command may take (as typed; an IAC doubled on the wire).
data = st.binary(min_size=1, max_size=16)
pieces = st.lists(st.one_of(requests.map(lambda p: ("sb", p)), data.map(lambda d: ("data", d))), max_size=40)


class Harness:
    def __init__(self, role: Role = Role.WRITER) -> None:
        self.clock = Clock()
        self.device = RecordingDevice(SerialSettings(9600))
        self.line = Line("t", self.device, clock=self.clock)
        self.client = TelnetClient(self.line, role, clock=self.clock)
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(bytes((IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO, SGA, IAC, WILL, SGA,
                                        IAC, WILL, COM_PORT_OPTION)))
        self.transport.clear()

    def feed(self, chunk: bytes) -> None:
        self.client.dataReceived(chunk)
        # The rest of a busy read waits for the next turns.
        for _ in range(10000):
            if not self.clock.getDelayedCalls() or not self.client._wireHeld:
                break
            oneTurn(self.clock)
        while self.client._wireHeld and self.clock.getDelayedCalls():
            oneTurn(self.clock)

    def answers(self) -> list[bytes]:
        peer = TelnetRecorder()
        peer.makeConnection(StringTransport())
        peer.dataReceived(self.transport.value())
        out: list[bytes] = []
        for kind, value in peer.events:
            if kind == "sb":
                assert isinstance(value, tuple) and value[0] == COM_PORT_OPTION, value
                out.append(bytes(value[1]))
        return out

    def written(self) -> bytes:
        return b"".join(v for k, v in self.device.events if k == "write")


class ModelTests(SynchronousTestCase):
    @PROPERTY
    @given(pieces, st.lists(st.integers(min_value=0), max_size=10))
    def test_answersAsRFC2217Says(self, stream: list[tuple[str, bytes]], points: list[int]) -> None:
        """Requests of every command and length, with data and IAC IAC between, in any chunks: the device gets the data once and in order, each request the answer RFC 2217 gives (or none), malformed ones counted, nothing raised."""
        self.check(stream, points, Role.WRITER)

    @PROPERTY
    @given(pieces, st.lists(st.integers(min_value=0), max_size=10))
    def test_watcherChangesNothing(self, stream: list[tuple[str, bytes]], points: list[int]) -> None:
        """The same from a client that only watches: each request answered with the state in effect, nothing of the port changed, none of its data written, malformed ones counted."""
        self.check(stream, points, Role.WATCHER)

    def check(self, stream: list[tuple[str, bytes]], points: list[int], role: Role) -> None:
        h = Harness(role)
        model = Model(role is Role.WRITER)
        wire = b"".join(request(p) if kind == "sb" else escaped(p) for kind, p in stream)
        expected, malformed = [], 0
        for kind, p in stream:
            if kind == "sb":
                answer, bad = model.answer(p)
                if answer is not None:
                    expected.append(answer)
                malformed += bad
        failures: list[object] = []

        def failed(event: LogEvent) -> None:
            if "log_failure" in event:
                failures.append(event["log_failure"])

        observe = CallObserver(failed)
        globalLogPublisher.addObserver(observe)
        try:
            for chunk in cut(wire, points):
                h.feed(chunk)
        finally:
            globalLogPublisher.removeObserver(observe)
        self.assertEqual(failures, [])
        self.assertEqual(h.written(), b"".join(p for kind, p in stream if kind == "data") if model.writer else b"")
        self.assertEqual(h.answers(), expected)
        self.assertEqual(h.line.settings, model.settings)
        self.assertEqual(h.client.ignored.total, malformed)
        self.assertFalse(h.transport.disconnecting)
        h.client.connectionLost()


class MalformedTests(SynchronousTestCase):
    def test_wrongLengthCounted(self) -> None:
        """SET-DATASIZE, -PARITY, -STOPSIZE, -LINESTATE-MASK and -MODEMSTATE-MASK without their one value byte (none, or two) are answered with the value in effect and counted as malformed, named, as a wrong-length SET-BAUDRATE is."""
        h = Harness()
        logged: list[str] = []
        observeLog(self, lambda event: logged.append(formatEvent(event)))
        h.feed(b"\xff\xfa\x2c\x02\xff\xf0\xff\xfa\x2c\x02\x07\x07\xff\xf0"
               b"\xff\xfa\x2c\x03\xff\xf0\xff\xfa\x2c\x04\x01\x01\xff\xf0"
               b"\xff\xfa\x2c\x0a\xff\xf0\xff\xfa\x2c\x0b\x00\x00\xff\xf0"
               b"\xff\xfa\x2c\x01\x00\x00\xff\xf0")
        self.assertEqual(
            h.transport.value(),
            b"\xff\xfa\x2c\x66\x08\xff\xf0\xff\xfa\x2c\x66\x08\xff\xf0"
            b"\xff\xfa\x2c\x67\x01\xff\xf0\xff\xfa\x2c\x68\x01\xff\xf0"
            b"\xff\xfa\x2c\x6e\x00\xff\xf0\xff\xfa\x2c\x6f\xff\xff\xff\xf0"
            b"\xff\xfa\x2c\x65\x00\x00\x25\x80\xff\xf0",
        )
        self.assertEqual(h.line.settings, SerialSettings(9600))
        h.client.connectionLost()
        self.assertEqual(
            [text for text in logged if "malformed" in text],
            ["t: 1 malformed SET-DATASIZE from 192.168.1.1:54321",
             "t: 1 malformed SET-DATASIZE, 1 malformed SET-PARITY, 1 malformed SET-STOPSIZE, "
             "1 malformed SET-LINESTATE-MASK, 1 malformed SET-MODEMSTATE-MASK, 1 malformed SET-BAUDRATE from 192.168.1.1:54321"],
        )

    def test_requestWithOptionOffCounted(self) -> None:
        """A subnegotiation of an option in effect on neither side (COM-PORT-OPTION before the client's WILL, an option never negotiated) is ignored, as RFC 855 says, but counted and logged, named; it was dropped without a word."""
        clock = Clock()
        device = RecordingDevice(SerialSettings(9600))
        line = Line("t", device, clock=clock)
        client = TelnetClient(line, clock=clock)
        transport = StringTransport()
        client.makeConnection(transport)
        transport.clear()
        logged: list[str] = []
        observeLog(self, lambda event: logged.append(formatEvent(event)))
        client.dataReceived(b"\xff\xfa\x2c\x01\x00\x00\x4b\x00\xff\xf0\xff\xfa\x63\x01\xff\xf0")
        self.assertEqual(transport.value(), b"")
        self.assertEqual(line.settings, SerialSettings(9600))
        client.connectionLost()
        self.assertEqual([text for text in logged if "not in effect" in text],
                         ["t: 1 subnegotiation of an option not in effect from 192.168.1.1:54321",
                          "t: 1 subnegotiation of an option not in effect from 192.168.1.1:54321"])


flowOp = st.one_of(
    st.tuples(st.just("sb"), st.sampled_from([b"\x08", b"\x09", b"\x0c\x01", b"\x0c\x02", b"\x0c\x03", b"\x0c",
                                               b"\x08\x00", b"\x09\x01", b"\x07", b"\x0c\x04"])),
    st.tuples(st.just("device"), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("data"), st.binary(min_size=1, max_size=8)),
)
# A suspension: SUSPEND, anything, RESUME.
suspension = st.lists(flowOp, max_size=6).map(lambda middle: [("sb", b"\x08"), *middle, ("sb", b"\x09")])
flowOps = st.lists(st.one_of(flowOp.map(lambda op: [op]), suspension), max_size=12).map(
    lambda groups: [op for group in groups for op in group])


class FlowTests(SynchronousTestCase):
    @PROPERTY
    @given(flowOps, st.lists(st.integers(min_value=0), max_size=6))
    def test_suspendResumePurge(self, ops: list[tuple[str, bytes]], points: list[int]) -> None:
        """FLOWCONTROL-SUSPEND, -RESUME and PURGE-DATA among device output and typed data, each read split anywhere: the client gets the device's output once, in order, less what a receive purge dropped while suspended; the device gets the typed data once, in order; each request its answer."""
        h = Harness()
        model = Model()
        suspended, held, toClient, answers = False, b"", b"", []
        for kind, value in ops:
            if kind == "device":
                h.line.deviceDataReceived(value)
                if suspended:
                    held += value
                else:
                    toClient += value
                continue
            if kind == "sb":
                answer, _ = model.answer(value)
                if answer is not None:
                    answers.append(answer)
                if value == b"\x08" or value[:1] == b"\x08":
                    suspended = True
                elif value[:1] == b"\x09":
                    suspended, toClient, held = False, toClient + held, b""
                elif value in (b"\x0c\x01", b"\x0c\x03"):
                    held = b""
                wire = request(value)
            else:
                wire = escaped(value)
            for chunk in cut(wire, points):
                h.feed(chunk)
        peer = TelnetRecorder()
        peer.makeConnection(StringTransport())
        peer.dataReceived(b"\xff\xfb\x00" + h.transport.value())  # (the gateway's WILL BINARY, sent first)
        self.assertEqual(b"".join(v for k, v in peer.events if k == "data"), toClient)  # type: ignore[misc]
        self.assertEqual([bytes(v[1]) for k, v in peer.events if k == "sb"], answers)  # type: ignore[index]
        self.assertEqual(h.written(), b"".join(v for k, v in ops if k == "data"))
        h.client.connectionLost()


def nvt(data: bytes) -> bytes:
    """Data as an NVT client sends it outside BINARY: a CR not followed by LF as CR NUL, IAC doubled."""
    return escaped(data.replace(b"\r", b"\r\0").replace(b"\r\0\n", b"\r\n"))


class NVTTests(SynchronousTestCase):
    @PROPERTY
    @given(st.lists(st.one_of(requests.map(lambda p: ("sb", p)),
                              st.lists(st.sampled_from([b"\r", b"\n", b"\0", b"\r\n", b"a", b"\xff"]), min_size=1,
                                       max_size=6).map(lambda parts: ("data", b"".join(parts)))), max_size=30),
           st.lists(st.integers(min_value=0), max_size=10))
    def test_textModeData(self, stream: list[tuple[str, bytes]], points: list[int]) -> None:
        """Outside BINARY (the client refused it), CR NUL, CR LF, bare LF, NUL and IAC among RFC 2217 requests, each piece NVT-encoded on its own, split anywhere: the device gets the client's data exactly, the requests their answers."""
        h = Harness.__new__(Harness)
        h.clock = Clock()
        h.device = RecordingDevice(SerialSettings(9600))
        h.line = Line("t", h.device, clock=h.clock)
        h.client = TelnetClient(h.line, clock=h.clock)
        h.transport = StringTransport()
        h.client.makeConnection(h.transport)
        h.client.dataReceived(bytes((IAC, 254, BINARY, IAC, 252, BINARY, IAC, WILL, COM_PORT_OPTION)))
        h.transport.clear()
        model = Model()
        expected = []
        for kind, p in stream:
            if kind == "sb":
                answer, _ = model.answer(p)
                if answer is not None:
                    expected.append(answer)
        wire = b"".join(request(p) if kind == "sb" else nvt(p) for kind, p in stream)
        for chunk in cut(wire, points):
            h.feed(chunk)
        self.assertEqual(h.written(), b"".join(p for kind, p in stream if kind == "data"))
        self.assertEqual(h.answers(), expected)
        h.client.connectionLost()


class EveryBoundaryTests(SynchronousTestCase):
    def test_everyCommandEveryLengthEverySplit(self) -> None:
        """Every command 0..12 (and 13, 255) with every length 0..8 of odd values (IAC among them), between data and IAC IAC: split at each byte boundary, and fed a byte at a time, it gives the same answer as whole, the one the model says, and the device the data once."""
        cases = 0
        for command in [*range(13), 13, 255]:
            for length in range(9):
                for fill in (0x00, 0x03, 0xFF):
                    payload = bytes((command,)) + bytes((fill,) * length)
                    wire = b"ab\xff\xff" + request(payload) + b"\xff\xffcd"
                    answer, bad = Model().answer(payload)
                    expected = [answer] if answer is not None else []
                    for reads in [[wire], [bytes((b,)) for b in wire],
                                  *([wire[:i], wire[i:]] for i in range(1, len(wire)))]:
                        h = Harness()
                        for chunk in reads:
                            h.feed(chunk)
                        self.assertEqual((payload, h.answers(), h.written(), h.client.ignored.total),
                                         (payload, expected, b"ab\xff\xffcd", int(bad)))
                        self.assertLessEqual(len(h.client._sb), MAX_SUBNEGOTIATION)
                        h.client.connectionLost()
                        cases += 1
        self.assertEqual(cases, 8262)
