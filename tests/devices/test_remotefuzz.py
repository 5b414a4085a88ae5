"""
A remote RFC 2217 port's answers attacked with hypothesis: any server
answer (every command plus 100, every length 0..8, odd values) and
notification among console data and IAC IAC, split anywhere: the line's
clients get the data once and in order, nothing is raised or logged as a
failure, the settings the device reports stay valid.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.remote import RemoteDevice
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnetcodes import BINARY, DO, IAC, SB, SE, WILL
from tests.fakes import BoundedTransport, CallObserver, RecordingClient

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

answers = st.tuples(st.integers(100, 113), st.one_of(st.binary(max_size=8), st.lists(
    st.sampled_from([0, 1, 2, 3, 5, 8, 9, 0x10, 0x1E, 0xFF]), max_size=8).map(bytes))).map(
    lambda a: bytes((a[0],)) + a[1])
stream = st.lists(st.one_of(answers.map(lambda a: ("sb", a)), st.binary(min_size=1, max_size=16).map(lambda d: ("data", d))),
                  max_size=30)


class AnswerTests(SynchronousTestCase):
    @PROPERTY
    @given(stream, st.lists(st.integers(min_value=0), max_size=8))
    def test_anyAnswerAnySplit(self, items: list[tuple[str, bytes]], points: list[int]) -> None:
        """Any answers and notifications from the remote port among its data, in any reads: the clients get the data once, in order; nothing raised or logged as a failure; the device's settings stay valid."""
        failures: list[object] = []

        def failed(event: LogEvent) -> None:
            if "log_failure" in event:
                failures.append(event["log_failure"])

        clock = Clock()
        device = RemoteDevice(DeviceSpec("rfc2217", host="127.0.0.1", port=1), clock)
        line = Line("t", device, clock=clock)
        device.sink = line
        reader = RecordingClient("writer:1")
        line.attach(reader)
        link = ComPortLink(device)
        link.makeConnection(BoundedTransport())
        link.dataReceived(bytes((IAC, DO, COM_PORT_OPTION, IAC, WILL, BINARY, IAC, DO, BINARY)))
        wire = b"".join(bytes((IAC, SB, COM_PORT_OPTION)) + p.replace(b"\xff", b"\xff\xff") + bytes((IAC, SE))
                        if kind == "sb" else p.replace(b"\xff", b"\xff\xff") for kind, p in items)
        marks = sorted({p % (len(wire) + 1) for p in points} | {len(wire)})
        observer = CallObserver(failed)
        globalLogPublisher.addObserver(observer)
        try:
            last = 0
            for mark in marks:
                link.dataReceived(wire[last:mark])
                last = mark
                while link._wireHeld:
                    clock.advance(0)
        finally:
            globalLogPublisher.removeObserver(observer)
        self.assertEqual(failures, [])
        self.assertEqual(b"".join(reader.received), b"".join(p for kind, p in items if kind == "data"))
        self.assertIsInstance(device.settings, SerialSettings)
        link.connectionLost()
