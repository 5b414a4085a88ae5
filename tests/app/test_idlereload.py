"""
idle-timeout, idle-string and on-demand-linger from a line's configuration
to its line (serialgw.app.lines.makeLine) and through a reload
(retuneLine): each applied, said in the log, and taken out.
"""

from __future__ import annotations

import attrs
from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.lines import makeLine, retuneLine
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.fakes import LogEvents, RecordingDevice


class IdleReloadTests(SynchronousTestCase):
    def test_startAndReload(self) -> None:
        """Made with idle-timeout 60 and '\\r': written at 60 s; a reload to 30 s and 'x' (30 s past already) writes at once, then every 30 s; 0 takes it out, nothing left on the clock; each change logged."""
        log = LogEvents(self)
        clock = Clock()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), idleTimeout=60.0, idleString=(b"\r",))
        device = RecordingDevice(config.settings)
        line = makeLine(config, device, clock)
        clock.advance(60)
        self.assertEqual(device.events, [("write", b"\r")])
        clock.advance(40)
        shorter = attrs.evolve(config, idleTimeout=30.0, idleString=(b"x",))
        retuneLine(line, config, shorter)
        clock.advance(0)
        clock.advance(30)
        self.assertEqual(device.events, [("write", b"\r"), ("write", b"x"), ("write", b"x")])
        retuneLine(line, shorter, config)
        retuneLine(line, config, attrs.evolve(config, idleTimeout=0.0))
        self.assertEqual((line.idle, clock.getDelayedCalls()), (None, []))
        said = [formatEvent(e) for e in log.events if "(reload)" in formatEvent(e)]
        self.assertEqual(said, ["line web1: idle-timeout 30 s (reload)", "line web1: idle-timeout 60 s (reload)",
                                "line web1: idle-timeout off (reload)"])

    def test_lingerReload(self) -> None:
        """on-demand-linger reaches the line at its making and through a reload (logged); left out, 0."""
        log = LogEvents(self)
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), onDemand=True, onDemandLinger=30.0)
        line = makeLine(config, RecordingDevice(config.settings), Clock())
        self.assertEqual(line.linger, 30.0)
        retuneLine(line, config, attrs.evolve(config, onDemandLinger=0.0))
        self.assertEqual(line.linger, 0.0)
        self.assertIn("line web1: on-demand-linger off (reload)", [formatEvent(e) for e in log.events])
        plain = makeLine(LineConfig("b", DeviceSpec("tty", "/dev/ttyS1")), RecordingDevice(), Clock())
        self.assertEqual((plain.linger, plain.idle), (0.0, None))
