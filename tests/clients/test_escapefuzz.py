"""
The escape menu attacked with hypothesis: random keys (commands, digits,
Enter, cancels, UTF-8 pieces, the escape key itself) in random reads, over
a raw and a telnet connection; what reaches the device is what an
independent model of the menu says, byte for byte and break for break.
"""

from __future__ import annotations

from typing import Any, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escape import ARGUMENT_LIMIT, ROLE_CHANGES
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import RecordingDevice, oneTurn

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
ESC = 0x1D

KEYS = [ESC, *b"bkwrRsBto?hzax\r\n\x00 19\x7f\x08\x1b\x03", 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x80]
# Phrases people (and pastes) type: commands, arguments of any length with
# any end, Enter's CR LF / CR NUL, UTF-8 characters, plain text.
PHRASES = st.one_of(
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=4).map(bytes),
    st.tuples(st.sampled_from([b"\x1dR", b"\x1dB", b"R", b"B"]), st.text("0123456789 \x7f", max_size=16),
              st.sampled_from([b"\r", b"\r\n", b"\r\x00", b"\n", b"\x1b", b"\x03", b"\x1d", b"x", b"", b"\r\x1d"])).map(
        lambda t: t[0] + t[1].encode() + t[2]),
    st.sampled_from([b"\x1d\r\n", b"\x1d\r\x00", b"\x1d\r", b"\x1d\xc3\xa9", b"\x1d\xe2\x82\xac", b"\x1d\xf0\x9f\x98\x80",
                     b"\x1d\xc3", b"\x1d\x1d", b"\x1dk", b"\x1dk\x1d", b"\x1db", b"\x1do", b"\x1dt", b"\x1dw", b"\x1ds",
                     b"\x1dr", b"\x1d?", b"\x1dz", "\u00e9".encode()]),
    st.binary(max_size=8),
)
typing = st.lists(PHRASES, max_size=20).map(lambda phrases: list(b"".join(phrases)))


class AnyBreak(RecordingDevice):
    """A device that takes every break (none is ever under way)."""

    def sendBreak(self, duration: Optional[float] = None) -> bool:
        self.events.append(("break", None))
        return True


class Model:
    """The escape menu as its docstrings tell it, independently: what the device gets."""

    def __init__(self) -> None:
        self.state = "data"
        self.events: list[tuple[str, Any]] = []
        self.writer = True
        self.changes = 0
        self.digits = 0
        self.continuations = 0

    def send(self, byte: int) -> None:
        if not self.writer:
            return
        if self.events and self.events[-1][0] == "write":
            self.events[-1] = ("write", self.events[-1][1] + bytes((byte,)))
        else:
            self.events.append(("write", bytes((byte,))))

    def read(self, chunk: bytes) -> None:
        for byte in chunk:
            if self.key(byte):
                return  # an argument cancelled: the rest of this read is not sent

    def key(self, byte: int) -> bool:
        state, self.state = self.state, "data"
        if state == "data":
            if byte == ESC:
                self.state = "command"
            else:
                self.send(byte)
        elif state == "command":
            if byte == ESC:
                self.send(byte)
            elif byte == ord("b"):
                if self.writer:
                    self.events.append(("break", None))
            elif byte == ord("k"):
                self.state = "break-key"
            elif byte in b"RB":
                self.state, self.digits = "argument", 0
            elif byte == ord("o"):
                if self.writer and self.changes < ROLE_CHANGES:
                    self.writer, self.changes = False, self.changes + 1
            elif byte == ord("t"):
                if not self.writer and self.changes < ROLE_CHANGES:
                    self.writer, self.changes = True, self.changes + 1
            elif byte in b"wrs?h":
                pass
            elif byte == 0x0D:
                self.state = "after-enter"
            elif 0xC0 <= byte < 0xF8:
                self.continuations = 1 if byte < 0xE0 else 2 if byte < 0xF0 else 3
                self.state = "character"
        elif state == "break-key":
            if self.writer:
                self.events.append(("break", None))
                self.send(byte)
        elif state == "argument":
            if byte in (0x0D, 0x0A):
                if byte == 0x0D:
                    self.state = "after-enter"
            elif byte in (0x7F, 0x08):
                self.digits = max(0, self.digits - 1)
                self.state = "argument"
            elif byte == 0x20 or 0x30 <= byte <= 0x39:
                if self.digits >= ARGUMENT_LIMIT:
                    return True
                self.digits += 1
                self.state = "argument"
            else:
                return True
        elif state == "after-enter":
            if byte == ESC:
                self.state = "command"
            elif byte not in (0x0A, 0x00):
                self.send(byte)
        elif state == "character":
            if 0x80 <= byte < 0xC0:
                self.continuations -= 1
                if self.continuations:
                    self.state = "character"
            elif byte == ESC:
                self.state = "command"
            else:
                self.send(byte)
        return False


def reads(keys: list[int], points: list[int]) -> list[bytes]:
    data = bytes(keys)
    marks = sorted({p % (len(data) + 1) for p in points} | {len(data)})
    out, last = [], 0
    for mark in marks:
        if mark > last:
            out.append(data[last:mark])
        last = mark
    return out


def merged(events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for kind, value in events:
        if kind == "write" and out and out[-1][0] == "write":
            out[-1] = ("write", out[-1][1] + value)
        elif kind in ("write", "break"):
            out.append((kind, value))
    return out


class MenuTests(SynchronousTestCase):
    def check(self, keys: list[int], points: list[int], telnet: bool, binary: bool = True) -> None:
        clock = Clock()
        device = AnyBreak()
        line = Line("t", device, clock=clock)
        client: Any
        if telnet:
            client = TelnetClient(line, Role.WRITER, rfc2217=False, listener=parseListener("telnet,escape=^]+4444"),
                                  clock=clock)
        else:
            client = RawClient(line, Role.WRITER, listener=parseListener("raw,escape=^]+4444"), clock=clock)
        transport = StringTransport()
        client.makeConnection(transport)
        if telnet:
            # DO BINARY, WILL BINARY; or DONT, WONT: NVT text, CR as CR NUL (or CR LF).
            client.dataReceived(b"\xff\xfd\x00\xff\xfb\x00" if binary else b"\xff\xfe\x00\xff\xfc\x00")
        model = Model()
        for chunk in reads(keys, points):
            model.read(chunk)
            wire = chunk if binary else chunk.replace(b"\r", b"\r\0").replace(b"\r\0\n", b"\r\n")
            client.dataReceived(wire.replace(b"\xff", b"\xff\xff") if telnet else wire)
            # The rest of a busy read waits for later turns (the client is not read meanwhile).
            for _ in range(1000):
                if not clock.getDelayedCalls():
                    break
                oneTurn(clock)
        self.assertEqual(merged(device.events), model.events)
        self.assertFalse(transport.disconnecting)
        client.connectionLost()

    @PROPERTY
    @given(typing, st.lists(st.integers(min_value=0), max_size=10))
    def test_rawAsModelled(self, keys: list[int], points: list[int]) -> None:
        """Random keys in random reads on a raw connection: the device gets exactly the typed bytes and breaks the menu's rules give (escape twice, ^] k KEY, Enter's LF, UTF-8 after an unknown command, a cancelled argument's rest of read)."""
        self.check(keys, points, telnet=False)

    @PROPERTY
    @given(typing, st.lists(st.integers(min_value=0), max_size=10))
    def test_telnetAsModelled(self, keys: list[int], points: list[int]) -> None:
        """The same over telnet in BINARY, IAC doubled: the device gets what the model says."""
        self.check(keys, points, telnet=True)

    @PROPERTY
    @given(typing, st.lists(st.integers(min_value=0), max_size=10))
    def test_telnetTextAsModelled(self, keys: list[int], points: list[int]) -> None:
        """The same over telnet outside BINARY (each CR sent as CR NUL or CR LF, as NVT says): the device gets what the model says."""
        self.check(keys, points, telnet=True, binary=False)
