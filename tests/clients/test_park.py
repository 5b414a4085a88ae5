"""
Clients that are full and drop their output are taken out of the line's
fan-out (L{serialgw.line.hub.Line.park}): a chunk of device output costs them
nothing; what they missed is taken from the line's shared tail when they
need it.  They must get exactly the bytes, and show exactly the counts,
they did when every chunk was held for each of them one by one (a guard
with no C{fanOut}, as before parking).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.fakes import BoundedTransport, RecordingDevice
from tests.line.test_tail import stream

# Listeners of the clients in each world: bounds that differ (the line's
# tail keeps the largest), notices (text held between device output), and
# telnet (IAC doubled after the hold).
LISTENERS = (
    "raw,notices,outbuf=1024+4444",
    "raw,outbuf=3000+4444",
    "raw,notices,outbuf=5000+4444",
    "telnet,outbuf=1500+4444",
)
DROPPED = b"bytes dropped: this session fell behind"


class World:
    """A line and its clients; C{parking} False: their guards hold every chunk (as before parking)."""

    def __init__(self, parking: bool) -> None:
        self.parking = parking
        self.line = Line("t", RecordingDevice(), clock=Clock())
        self.clients: list[Any] = []
        self.transports: list[BoundedTransport] = []
        self.output: list[bytes] = []

    def connect(self, listener: str, kind: Any = None) -> None:
        spec = parseListener(listener)
        if kind is None:
            kind = TelnetClient if spec.protocol.value == "telnet" else RawClient
        client = kind(self.line, listener=spec)
        transport = BoundedTransport()
        client.makeConnection(transport)
        if kind is TelnetClient:
            client.dataReceived(b"\xff\xfd\x00\xff\xfc\x2c")  # DO BINARY, WONT COM-PORT
        assert client.guard is not None
        if not self.parking:
            client.guard.fanOut = None
        self.clients.append(client)
        self.transports.append(transport)
        self.output.append(transport.drain())

    def read(self, i: int) -> None:
        """Client i's peer reads all that waits (it may fill again with what was held)."""
        self.output[i] += self.transports[i].drain()

    def leave(self, i: int) -> None:
        self.clients[i].connectionLost()

    def state(self) -> list[tuple[bytes, bytes, int, int, bool]]:
        """Per client: read so far, waiting in its transport, dropped, held, full."""
        return [(self.output[i], self.transports[i].value(), c.guard.dropped, c.guard.heldBytes, c.guard.full)
                for i, c in enumerate(self.clients)]


class Looked(RawClient):
    """A raw client that counts how often a set or dict of clients looks it up (its hash)."""

    looks = 0

    def __hash__(self) -> int:
        Looked.looks += 1
        return id(self)


class ParkTests(SynchronousTestCase):
    """Parked and resumed: exactly the bytes and counts of holding each chunk."""

    def worlds(self) -> tuple[World, World]:
        worlds = World(parking=True), World(parking=False)
        for world in worlds:
            for listener in LISTENERS:
                world.connect(listener)
        return worlds

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.one_of(
        st.tuples(st.just("device"), st.sampled_from([1, 7, 99, 1023, 1024, 1500, 4095, 6000, 9000])),
        st.tuples(st.just("announce"), st.integers(0, 99)),
        st.tuples(st.just("read"), st.integers(0, len(LISTENERS) - 1)),
        st.tuples(st.just("leave"), st.integers(0, len(LISTENERS) - 1)),
        st.tuples(st.just("go"), st.integers(0, len(LISTENERS) - 1)),
    ), max_size=60))
    def test_sameAsHoldingEachChunk(self, steps: list[tuple[str, int]]) -> None:
        """Device chunks of any size, notices, peers reading, told to go and leaving: every client's bytes, dropped and held counts, after each step, as when each chunk was held."""
        parked, reference = self.worlds()
        left: set[int] = set()
        offset = 0
        for step, value in steps:
            for world in (parked, reference):
                if step == "device":
                    world.line.deviceDataReceived(stream(offset + value)[offset:])
                elif step == "announce":
                    world.line.announce(f"client {value} attached")
                elif value not in left:
                    if step == "read":
                        world.read(value)
                    elif step == "go":
                        world.clients[value].disconnect()
                    else:
                        world.leave(value)
            if step == "device":
                offset += value
            elif step == "leave":
                left.add(value)
            self.assertEqual(parked.state(), reference.state())
            self.assertEqual(parked.line.droppedGone, reference.line.droppedGone)
        for i in range(len(LISTENERS)):
            if i not in left:
                for world in (parked, reference):
                    world.read(i)
        self.assertEqual(parked.state(), reference.state())

    def test_resumedGetsExactBytes(self) -> None:
        """A raw client parked across device output and a notice: on draining, the drop notice, the newest 1024 bytes with the notice in place, nothing twice."""
        world = World(parking=True)
        world.connect("raw,notices,outbuf=1024+4444")
        world.connect("raw+4444")
        client, transport = world.clients[0], world.transports[0]
        line = world.line
        line.deviceDataReceived(b"a" * 1100)  # past 1024: full, parked
        self.assertEqual((client.guard.full, client in line._parked), (True, True))
        self.assertEqual(transport.value(), b"a" * 1100)
        line.deviceDataReceived(b"b" * 600)
        line.deviceDataReceived(b"c" * 300)
        self.assertEqual((client.guard.dropped, client.guard.heldBytes), (0, 900))
        line.announce("x")  # "\r\n[serialgw: x]\r\n": 17 bytes
        line.deviceDataReceived(b"d" * 200)
        self.assertEqual((client.guard.dropped, client.guard.heldBytes), (93, 1024))
        world.read(0)  # takes what waited; what was held fills it again
        self.assertEqual(client.guard.full, True)
        world.read(0)
        self.assertEqual(world.output[0], b"a" * 1100 + b"\r\n[serialgw: 93 " + DROPPED + b"]\r\n"
                         + b"b" * 507 + b"c" * 300 + b"\r\n[serialgw: x]\r\n" + b"d" * 200)
        self.assertNotIn(client, line._parked)
        line.deviceDataReceived(b"e")
        self.assertEqual(transport.value(), b"e")
        # The other client, never full, got it all as it came.
        self.assertEqual(world.transports[1].value(), b"a" * 1100 + b"b" * 600 + b"c" * 300 + b"d" * 200 + b"e")

    def test_parkedCostNothingPerChunk(self) -> None:
        """500 full clients that drop: a chunk of device output calls the one that reads, not them."""
        world = World(parking=True)
        for _ in range(500):
            world.connect("raw,outbuf=1024+4444")
        world.connect("raw+4444")
        world.line.deviceDataReceived(b"x" * 1025)
        calls: list[Any] = []

        def counting(client: Any) -> None:
            deliver = client.deliver

            def counted(data: bytes) -> None:
                calls.append(client)
                deliver(data)

            client.deliver = counted

        for client in world.clients:
            counting(client)
        for _ in range(10):
            world.line.deviceDataReceived(b"y" * 4095)
        self.assertEqual(calls, [world.clients[-1]] * 10)
        self.assertEqual([c.guard.heldBytes for c in world.clients[:500]], [1024] * 500)
        self.assertEqual(world.clients[0].guard.dropped, 10 * 4095 - 1024)
        # The line keeps the newest 1024 bytes for them, whatever came.
        self.assertEqual(len(world.line.parkedTail), 1024)

    def test_parkedNotLookedAtWhenAnotherFlaps(self) -> None:
        """A client that parks and is resumed on every chunk (it reads at once, its outbuf under a chunk) does not make each chunk look at the 500 parked ones."""
        world = World(parking=True)
        for _ in range(500):
            world.connect("raw,outbuf=1024+4444", kind=Looked)
        world.connect("raw+4444")
        world.connect("raw,outbuf=1024+4444")
        world.line.deviceDataReceived(b"x" * 1025)
        world.read(501)
        Looked.looks = 0
        for _ in range(100):
            world.line.deviceDataReceived(b"y" * 4095)
            self.assertEqual(world.clients[501].guard.full, True)
            world.read(500)
            world.read(501)
        self.assertEqual(world.output[501], b"x" * 1025 + b"y" * 4095 * 100)
        self.assertEqual(world.clients[0].guard.dropped, 100 * 4095 - 1024)
        self.assertLess(Looked.looks, 500)

    def test_leavingParkedCountsDrops(self) -> None:
        """A parked client that leaves: what it missed past its bound is counted in the line's dropped-for-gone-clients."""
        world = World(parking=True)
        world.connect("raw,outbuf=1024+4444")
        world.line.deviceDataReceived(b"x" * 1025)
        world.line.deviceDataReceived(b"y" * 2500)
        world.leave(0)
        self.assertEqual(world.line.droppedGone, {"drop": 2500 - 1024})
        self.assertEqual((world.line._parked, len(world.line.parkedTail)), ({}, 0))

    def test_toldToGoWhileParked(self) -> None:
        """A parked client told to go (idle, escape d) gets what came until then, nothing after, once it reads."""
        world = World(parking=True)
        world.connect("raw,outbuf=1024+4444")
        world.line.deviceDataReceived(b"x" * 1025)
        world.line.deviceDataReceived(b"y" * 10)
        world.clients[0].disconnect()
        world.line.deviceDataReceived(b"z" * 10)
        world.read(0)
        world.read(0)
        self.assertEqual(world.output[0], b"x" * 1025 + b"y" * 10)
        self.assertEqual((world.line._parked, len(world.line.parkedTail)), ({}, 0))
        world.leave(0)
        self.assertEqual(world.line.droppedGone, {})
