"""
The by-name prompt attacked with hypothesis: random bytes (names, line
ends, telnet commands and negotiation, control keys, long runs) in random
reads, over a raw and a telnet listener; whatever comes, nothing raises,
what the prompt holds and writes stays bounded, and the client ends on the
line it named, closed, or still at the prompt, its place counted right.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.byname import ByNameFactory
from serialgw.clients.bynameprompt import ANSWERS_MOST, LIST_MOST, NAME_MOST, PROMPT
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
PEER = IPv4Address("TCP", "192.0.2.7", 40000)
PHRASES = st.one_of(
    st.sampled_from([b"web1", b"db2", b"secret", b"?", b"", b"web", b"1", b"\r", b"\n", b"\r\n", b"\r\x00", b"\x7f",
                     b"\x08", b"\x03", b"\x04", b"\x1b[A", b"\xff\xff", b"\xff\xfd\x01", b"\xff\xfb\x1f",
                     b"\xff\xfa\x1f\x00\x50", b"\xff\xf0", b"\xff\xf1", b"\xff", b"\xc3\xa9"]),
    st.binary(max_size=12),
    st.integers(min_value=1, max_value=300).map(lambda n: b"a" * n),
)
reads = st.lists(st.lists(PHRASES, max_size=8).map(b"".join), max_size=12)


class PromptFuzzTests(SynchronousTestCase):
    @PROPERTY
    @given(reads=reads, telnet=st.booleans())
    def test_anyBytesAnySplit(self, reads: list[bytes], telnet: bool) -> None:
        """Any bytes in any reads: no exception, the name held at most NAME_MOST+1 bytes, output bounded, the place given back."""
        clock = Clock()
        lines = {name: Line(name, RecordingDevice(), clock=clock) for name in ("web1", "db2", "secret")}
        lines["secret"].rights = Rights(write=("alice",))
        factory = ByNameFactory(parseListener("telnet+tcp:0" if telnet else "raw+tcp:0"), ("*",), lambda: lines, clock)
        prompt = factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        prompt.makeConnection(transport)
        for data in reads:
            prompt.dataReceived(data)
            self.assertLessEqual(len(prompt._typed), NAME_MOST + 1)
        chosen = [name for name, line in lines.items() if line.clients]
        self.assertNotIn("secret", chosen)
        self.assertLessEqual(len(chosen), 1)
        if prompt.inner is None:
            # Still at the prompt or closed: only prompts, lists, refusals and telnet answers were written.
            self.assertLessEqual(len(transport.value()), (ANSWERS_MOST + 1) * (LIST_MOST + 200) + 2 * 256 * 3)
            self.assertEqual(factory.pending.total, 0 if prompt.closed else 1)
        else:
            self.assertEqual(chosen, [prompt.inner.line.name])
            self.assertEqual(factory.pending.total, 0)
            self.assertTrue(transport.value().startswith(PROMPT))
        prompt.connectionLost(Failure(Exception("gone")))
        self.assertEqual((factory.pending.total, factory.prompts), (0, set()))
        for line in lines.values():
            self.assertEqual(line.clients, [])
        clock.advance(3600)
        self.assertEqual(clock.getDelayedCalls(), [])
