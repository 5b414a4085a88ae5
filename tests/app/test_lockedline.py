"""
A line whose device another program's UUCP lock holds (or that cannot be
opened again) is logged with the line's name, a named field, beside the
device's: a farm's log said only C{/dev/ttyS0: /dev/ttyS0 is locked by ...}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.lines import makeDevice
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices.errors import DeviceError, DeviceLocked
from serialgw.interfaces import IPort
from tests.fakes import LogEvents, RecordingPort


class LockedLineTests(SynchronousTestCase):
    def test_lineNamed(self) -> None:
        """Locked at start, by another holder at a reopen, then another reason: each said 'line web1: ...', the field line 'web1', the device its own field; then opened."""
        clock = Clock()
        logged = LogEvents(self)
        outcomes: list[Exception] = [
            DeviceLocked("/dev/ttyS0 is locked by process 1234 (cu) (/var/lock/LCK..ttyS0)", 1234),
            DeviceLocked("/dev/ttyS0 is locked by process 5678 (minicom) (/var/lock/LCK..ttyS0)", 5678),
            DeviceError("cannot open device '/dev/ttyS0': Permission denied"),
        ]

        def openPort(*args: Any) -> IPort:
            if outcomes:
                raise outcomes.pop(0)
            return RecordingPort(clock)

        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyS0"))
        device = makeDevice(config, clock, openPort, lambda n: 1.0, lambda n: 1.0, True)
        self.addCleanup(device.close)
        clock.advance(1.0)
        clock.advance(1.0)
        self.assertEqual([(formatEvent(e), e["line"], e["device"]) for e in logged.at(LogLevel.warn)], [
            ("line web1: /dev/ttyS0 is locked by process 1234 (cu) (/var/lock/LCK..ttyS0); the line stays down and "
             "tries again", "web1", "/dev/ttyS0"),
            ("line web1: /dev/ttyS0 is locked by process 5678 (minicom) (/var/lock/LCK..ttyS0); the line stays down "
             "and tries again", "web1", "/dev/ttyS0"),
            ("line web1: /dev/ttyS0: still down: cannot open device '/dev/ttyS0': Permission denied; trying again "
             "with backoff", "web1", "/dev/ttyS0"),
        ])
        clock.advance(1.0)
        self.assertTrue(device.up)
