"""
Tests for serialgw.devices.device.SerialDevice's layout: its attributes
are slots, but for those its bases have a default for.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices.device import SerialDevice
from tests.fakes import RecordingPort
from tests.layout import SHARED_KEYS, ownNames


class LayoutTests(SynchronousTestCase):
    def test_dictHoldsOnlyDefaultedNames(self) -> None:
        """
        A device that read and wrote keeps in its __dict__ only names a
        base has a default for, fewer than Python 3.11 keeps inline: the
        rest are SerialDevice.__slots__.
        """
        reactor = MemoryReactorClock()
        port = RecordingPort(reactor)
        device = SerialDevice(port, reactor, 0.25)
        device.start()
        port.incoming.append(b"out")
        device.doRead()
        device.write(b"in")
        notDefaulted, defaulted = ownNames(device)
        self.assertEqual(notDefaulted, set())
        self.assertLessEqual(len(defaulted), SHARED_KEYS)
        self.assertEqual(port.written(), b"in")
        self.assertEqual(device.bytesRead, 3)
