"""
RFC 1143's Q method attacked with hypothesis: L{Side} against the RFC's
own tables, and a telnet client of a line in storms of DO, DONT, WILL and
WONT from both ends (a peer that keeps the Q method, and raw commands
from one that does not): the exchange goes quiet, answers are bounded by
what was received, and a well-behaved peer agrees on every option.
"""

from __future__ import annotations

from typing import Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.line.hub import Line
from serialgw.wire.qmethod import Q, Side
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnetcodes import BINARY, DO, DONT, ECHO, IAC, NAWS, SB, SE, SGA, TTYPE, WILL, WONT
from serialgw.wire.telnetoptions import MAX_OPTION_CHANGES
from tests.fakes import RecordingDevice, observeLog, oneTurn
from tests.telnetpeer import TelnetRecorder

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# RFC 1143 section 7, for "him" (WILL/WONT received, DO/DONT sent); "us" is
# the same with the words swapped.  (state, queued) -> (state, queued, send)
# where send is "yes", "no" or None.  The RFC's errors leave the state as
# the text says.
ON_ENABLE_ACCEPT = {
    (Q.NO, False): (Q.YES, False, "yes"),
    (Q.YES, False): (Q.YES, False, None),
    (Q.WANTNO, False): (Q.NO, False, None),  # error: DONT answered by WILL
    (Q.WANTNO, True): (Q.YES, False, None),  # error: DONT answered by WILL
    (Q.WANTYES, False): (Q.YES, False, None),
    (Q.WANTYES, True): (Q.WANTNO, False, "no"),
}
ON_DISABLE = {
    (Q.NO, False): (Q.NO, False, None),
    (Q.YES, False): (Q.NO, False, "no"),
    (Q.WANTNO, False): (Q.NO, False, None),
    (Q.WANTNO, True): (Q.WANTYES, False, "yes"),
    (Q.WANTYES, False): (Q.NO, False, None),
    (Q.WANTYES, True): (Q.NO, False, None),
}
ASK_ENABLE = {
    (Q.NO, False): (Q.WANTYES, False, "yes"),
    (Q.YES, False): (Q.YES, False, None),  # error: already enabled
    (Q.WANTNO, False): (Q.WANTNO, True, None),
    (Q.WANTNO, True): (Q.WANTNO, True, None),  # error: already queued
    (Q.WANTYES, False): (Q.WANTYES, False, None),  # error: already negotiating
    (Q.WANTYES, True): (Q.WANTYES, False, None),
}
ASK_DISABLE = {
    (Q.NO, False): (Q.NO, False, None),
    (Q.YES, False): (Q.WANTNO, False, "no"),
    (Q.WANTNO, False): (Q.WANTNO, False, None),
    (Q.WANTNO, True): (Q.WANTNO, False, None),
    (Q.WANTYES, False): (Q.WANTYES, True, None),
    (Q.WANTYES, True): (Q.WANTYES, True, None),
}


def reference(state: Q, queued: bool, event: str, accept: bool) -> tuple[Q, bool, Optional[str]]:
    key = (state, queued)
    if event == "enable":
        if state is Q.NO and not accept:
            return Q.NO, False, "no"
        return ON_ENABLE_ACCEPT[key]
    if event == "disable":
        return ON_DISABLE[key]
    return (ASK_ENABLE if event == "ask-yes" else ASK_DISABLE)[key]


def negotiations(wire: bytes) -> list[tuple[int, int]]:
    """The (command, option) negotiations in what a codec wrote (data, IAC IAC and subnegotiations skipped)."""
    out, i = [], 0
    while i < len(wire):
        if wire[i] != IAC:
            i += 1
        elif wire[i + 1] == SB:
            i = wire.index(bytes((IAC, SE)), i) + 2
        elif WILL <= wire[i + 1] <= DONT:
            out.append((wire[i + 1], wire[i + 2]))
            i += 3
        else:
            i += 2
    return out


class SideTests(SynchronousTestCase):
    @PROPERTY
    @given(st.lists(st.tuples(st.sampled_from(["enable", "disable", "ask-yes", "ask-no"]), st.booleans()),
                    max_size=60))
    def test_asTheRFCTables(self, events: list[tuple[str, bool]]) -> None:
        """Any sequence of asks and of the peer's enables (accepted or not) and disables: L{Side} goes through RFC 1143's states and sends what its tables say, nothing more."""
        side = Side(DO, DONT)
        state, queued = Q.NO, False
        for event, accept in events:
            state, queued, send = reference(state, queued, event, accept)
            if event == "enable":
                got, _ = side.enable(accept if side.state is Q.NO else True)
            elif event == "disable":
                got, _ = side.disable()
            else:
                got = side.ask(event == "ask-yes")
            self.assertEqual((side.state, side.queued, got),
                             (state, queued, {"yes": DO, "no": DONT, None: None}[send]))


OPTIONS = [BINARY, ECHO, SGA, TTYPE, NAWS, COM_PORT_OPTION, 5, 200]


class Polite(TelnetRecorder):
    """A peer that keeps the Q method and accepts what is in C{yes}."""

    def __init__(self, yes: frozenset[int]) -> None:
        TelnetRecorder.__init__(self)
        self.yes = yes

    def acceptLocal(self, option: int) -> bool:
        return option in self.yes

    def acceptRemote(self, option: int) -> bool:
        return option in self.yes


asks = st.lists(st.tuples(st.booleans(), st.sampled_from(OPTIONS), st.booleans(), st.booleans()), max_size=30)
raw = st.lists(st.tuples(st.integers(WILL, DONT), st.sampled_from(OPTIONS)), max_size=200)


class Gateway:
    """A telnet client of a line (RFC 2217 on) under a Clock that runs the turns a busy read leaves."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(), clock=self.clock)
        self.client = TelnetClient(self.line, clock=self.clock)
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)

    def feed(self, data: bytes) -> None:
        self.client.dataReceived(data)
        while self.client._wireHeld:
            oneTurn(self.clock)

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data


class StormTests(SynchronousTestCase):
    @PROPERTY
    @given(asks, st.frozensets(st.sampled_from(OPTIONS)))
    def test_politeStormsConverge(self, steps: list[tuple[bool, int, bool, bool]], yes: frozenset[int]) -> None:
        """The gateway and a peer that keeps the Q method asking each other anything in any order (options the gateway takes, COM-PORT-OPTION, ones it refuses): each exchange goes quiet, costs at most a request and an answer each way, and both agree on every option."""
        gateway, peer = Gateway(), Polite(yes)
        toGateway = StringTransport()
        peer.makeConnection(toGateway)
        sent = 0

        def settle() -> None:
            nonlocal sent
            for _ in range(50):
                fromGateway, fromPeer = gateway.take(), toGateway.value()
                toGateway.clear()
                if not fromGateway and not fromPeer:
                    return
                sent += len(negotiations(fromGateway)) + len(negotiations(fromPeer))
                peer.dataReceived(fromGateway)
                gateway.feed(fromPeer)
            self.fail("negotiation did not end")

        settle()
        start = sent
        for byPeer, option, local, enable in steps:
            asker = peer if byPeer else gateway.client
            (asker.requestLocal if local else asker.requestRemote)(option, enable)
            settle()
        self.assertLessEqual(sent - start, 3 * len(steps))
        for option in OPTIONS:
            self.assertEqual((option, peer.localEnabled(option), peer.remoteEnabled(option)),
                             (option, gateway.client.remoteEnabled(option), gateway.client.localEnabled(option)))
            self.assertEqual(gateway.client.comPort is not None,
                             gateway.client.localEnabled(COM_PORT_OPTION) or gateway.client.remoteEnabled(COM_PORT_OPTION))
        self.assertFalse(gateway.transport.disconnecting)
        gateway.client.connectionLost()

    @PROPERTY
    @given(raw, st.lists(st.integers(min_value=0), max_size=8))
    def test_rawStormsAnsweredOnceAtMost(self, commands: list[tuple[int, int]], points: list[int]) -> None:
        """Any DO/DONT/WILL/WONT from a peer that keeps no state, in any chunks: the gateway answers each at most once, only to change its state (RFC 1143: a command that confirms the state is not answered), and what it says matches its state."""
        gateway = Gateway()
        gateway.take()
        wire = b"".join(bytes((IAC, command, option)) for command, option in commands)
        marks = sorted({p % (len(wire) + 1) for p in points} | {len(wire)})
        last = 0
        for mark in marks:
            gateway.feed(wire[last:mark])
            last = mark
        answers = negotiations(gateway.take())
        self.assertLessEqual(len(answers), len(commands))
        # Replayed one command at a time on a fresh gateway: each one's answer is what its state says.
        gateway = Gateway()
        gateway.take()
        for command, option in commands:
            local = command >= DO
            before = gateway.client.side(option, local).state
            gateway.feed(bytes((IAC, command, option)))
            said = negotiations(gateway.take())
            self.assertLessEqual(len(said), 1)
            after = gateway.client.side(option, local).state
            if said:
                answer, about = said[0]
                self.assertEqual(about, option)
                yes = answer in (WILL, DO)
                self.assertEqual(after, Q.YES if yes and before is Q.NO else Q.WANTYES if yes else
                                 Q.NO if before in (Q.NO, Q.YES) else Q.WANTNO)
            else:
                # Nothing said: the command agreed with the state (or answered an ask of ours).
                self.assertTrue(before is not Q.NO or command in (WONT, DONT) or after is Q.NO)
        gateway.client.connectionLost()


class NaivePeer:
    """
    A telnet peer of RFC 854 alone (no RFC 1143): it agrees to everything and
    answers a request only when it changes its state ("don't acknowledge a
    request to enter a mode you're already in").
    """

    def __init__(self) -> None:
        self.local: dict[int, bool] = {}
        self.remote: dict[int, bool] = {}

    def receive(self, data: bytes) -> bytes:
        out = b""
        for command, option in negotiations(data):
            if command == DO and not self.local.get(option):
                self.local[option] = True
                out += bytes((IAC, WILL, option))
            elif command == DONT and self.local.get(option):
                self.local[option] = False
                out += bytes((IAC, WONT, option))
            elif command == WILL and not self.remote.get(option):
                self.remote[option] = True
                out += bytes((IAC, DO, option))
            elif command == WONT and self.remote.get(option):
                self.remote[option] = False
                out += bytes((IAC, DONT, option))
        return out


class LoopTests(SynchronousTestCase):
    def test_naivePeerTogglingAtConnectEnds(self) -> None:
        """A peer of RFC 854 alone that turns BINARY on and off in its first flight (WILL BINARY, WONT BINARY) crossing the gateway's DO BINARY: it was an endless loop (the gateway DONT / DO, the peer WONT / WILL, one each way a round trip, for ever); once BINARY has changed MAX_OPTION_CHANGES times the gateway refuses it, the exchange ends, and the loop is counted and logged."""
        gateway = Gateway()
        peer = NaivePeer()
        fromPeer = bytes((IAC, WILL, BINARY, IAC, WONT, BINARY))
        logged: list[str] = []
        observeLog(self, lambda event: logged.append(formatEvent(event)))
        rounds, said = 0, []
        while fromPeer or gateway.transport.value():
            rounds += 1
            self.assertLess(rounds, 1000, "negotiation did not end")
            said.append(gateway.take())
            toPeer = peer.receive(said[-1])
            gateway.feed(fromPeer)
            fromPeer = toPeer
        # Each round trip changed BINARY once; the change past the bound refused (DONT), its WONT the last word.
        self.assertEqual(rounds, MAX_OPTION_CHANGES + 1)
        self.assertEqual(said[-3:], [bytes((IAC, DO, BINARY)), bytes((IAC, DONT, BINARY)), bytes((IAC, DONT, BINARY))])
        self.assertFalse(gateway.client.remoteEnabled(BINARY))
        self.assertEqual(peer.local.get(BINARY), False)
        self.assertEqual(gateway.client.ignored.total, 1)
        self.assertEqual(logged, ["t: 1 option turned on and off too often from 192.168.1.1:54321"])
        gateway.client.connectionLost()

    @PROPERTY
    @given(st.lists(st.lists(st.tuples(st.booleans(), st.sampled_from(OPTIONS), st.booleans(), st.booleans()),
                             min_size=1, max_size=4), max_size=12))
    def test_naiveStormsEnd(self, bursts: list[list[tuple[bool, int, bool, bool]]]) -> None:
        """A peer of RFC 854 alone changing options whenever it likes and the gateway asking too, a burst of both at a time (their requests crossing): every exchange ends, within the rounds MAX_OPTION_CHANGES allows."""
        gateway = Gateway()
        peer = NaivePeer()
        fromPeer = b""
        for byPeer, option, local, enable in (step for burst in bursts for step in burst + [(False, -1, False, False)]):
            if option < 0:
                pass  # the end of a burst: the exchange runs to its end
            elif byPeer:
                # Its own change, sent at once (RFC 854: state first, then the request).
                states = peer.local if local else peer.remote
                if states.get(option, False) != enable:
                    states[option] = enable
                    fromPeer += bytes((IAC, (WILL if enable else WONT) if local else (DO if enable else DONT), option))
            else:
                (gateway.client.requestLocal if local else gateway.client.requestRemote)(option, enable)
            if option >= 0:
                continue
            rounds = 0
            while fromPeer or gateway.transport.value():
                rounds += 1
                self.assertLess(rounds, 2 * MAX_OPTION_CHANGES + 10, "negotiation did not end")
                toPeer = peer.receive(gateway.take())
                gateway.feed(fromPeer)
                fromPeer = toPeer
        gateway.client.connectionLost()
