"""
The netconsole listener's datagrams attacked with hypothesis: any payload
(empty, binary, large) from any source (allowed and not, IPv4-mapped, with
a zone, not an address at all), in any order: the device gets exactly the
allowed ones' bytes, in order; the others are refused and counted; nothing
raised.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.netconsole import NetconsoleClient
from serialgw.config.listenerspecs import UDPSpec
from serialgw.line.hub import Line
from tests.clients.test_netconsole import DatagramTransport
from tests.fakes import RecordingDevice

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# (source address, allowed by allow=127.0.0.0/8,::1,fe80::/10)
SOURCES = st.sampled_from([
    ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("::ffff:127.0.0.2", True), ("fe80::1%eth0", True),
    ("fe80::1%", True), ("192.0.2.7", False), ("::ffff:192.0.2.7", False), ("::2", False), ("0.0.0.0", False),
    ("", False), ("localhost", False), ("127.0.0.1.1", False), ("%", False), ("::ffff:", False),
    ("2001:db8::1%lo", False), ("\x00", False), ("1" * 300, False),
])


class DatagramTests(SynchronousTestCase):
    @PROPERTY
    @given(st.lists(st.tuples(SOURCES, st.one_of(st.binary(max_size=64), st.binary(min_size=1400, max_size=1500))),
                    max_size=30))
    def test_anyDatagramAnySource(self, datagrams: list[tuple[tuple[str, bool], bytes]]) -> None:
        """Any datagrams from any sources: the allowed ones' bytes reach the device exactly, in order; the rest are refused and counted; nothing raised."""
        device = RecordingDevice()
        line = Line("ttyS0", device)
        client = NetconsoleClient(line, UDPSpec("127.0.0.1", 6666, "", 6665, ("127.0.0.0/8", "::1", "fe80::/10")))
        client.transport = DatagramTransport()
        client.startProtocol()
        for (source, _), payload in datagrams:
            client.datagramReceived(payload, (source, 1234))
        self.assertEqual(b"".join(data for kind, data in device.events if kind == "write"),
                         b"".join(payload for (_, allowed), payload in datagrams if allowed))
        self.assertEqual(client.refused, sum(1 for (_, allowed), _ in datagrams if not allowed))
        client.stopProtocol()
