"""
Tests for serialgw.line.hub.Line's layout: its attributes are slots, but
for those its bases have a default for.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.line.hub import Line
from tests.fakes import RecordingClient, RecordingDevice
from tests.layout import SHARED_KEYS, ownNames


class LayoutTests(SynchronousTestCase):
    def test_dictHoldsOnlyDefaultedNames(self) -> None:
        """
        A line in use keeps in its __dict__ only names a base has a
        default for, fewer than Python 3.11 keeps inline: the rest are
        Line.__slots__.
        """
        line = Line("l", RecordingDevice(), clock=Clock())
        client = RecordingClient("a")
        line.attach(client)
        line.deviceDataReceived(b"out")
        line.clientData(client, b"in")
        line.detach(client)
        notDefaulted, defaulted = ownNames(line)
        self.assertEqual(notDefaulted, set())
        self.assertLessEqual(len(defaulted), SHARED_KEYS)
        self.assertEqual(client.received, [b"out"])
