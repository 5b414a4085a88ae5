"""
What a reload logs stays bounded however many lines it touches: a
[defaults] change retunes every line, and the log names the first few.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.reload import REPORTED_NAMES, namesBrief
from serialgw.app.service import GatewayService
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.fakes import LogEvents, RecordingPort


class ReloadLogTests(SynchronousTestCase):
    def test_namesBrief(self) -> None:
        """Up to REPORTED_NAMES names are listed as they were; past it, the count, the first few and how many more."""
        self.assertEqual((REPORTED_NAMES, namesBrief([]), namesBrief(["a"]), namesBrief(["a", "b"])),
                         (5, "none", "['a']", "['a', 'b']"))
        names = [f"l{i}" for i in range(2000)]
        self.assertEqual(namesBrief(names[:5]), "['l0', 'l1', 'l2', 'l3', 'l4']")
        self.assertEqual(namesBrief(names[:6]), "6 lines: ['l0', 'l1', 'l2', 'l3', 'l4'] and 1 more")
        self.assertEqual(namesBrief(names), "2000 lines: ['l0', 'l1', 'l2', 'l3', 'l4'] and 1995 more")

    def test_defaultsChangeLogsBounded(self) -> None:
        """A change every line takes (a [defaults] signature) over 500 lines: one reload line under 200 bytes, with the count and the first names."""
        clock = MemoryReactorClock()
        log = LogEvents(self)

        def openPort(*args: Any) -> RecordingPort:
            return RecordingPort(clock)

        configs = [LineConfig(f"rack{i:04d}-web", DeviceSpec("tty", f"/dev/fake{i}"), lock=False) for i in range(500)]
        service = GatewayService(configs, reactor=clock, openPort=openPort)
        service.startService()
        self.addCleanup(service.stopService)
        reloaded = service.reload([attrs.evolve(c, signature="new") for c in configs])
        clock.advance(0)  # (retuned CHANGES_PER_TURN a turn)
        result = self.successResultOf(reloaded)
        self.assertEqual(len(result["changed"]), 500)
        (event,) = [e for e in log.events if (e.get("log_format") or "").startswith("reload: added")]
        text = formatEvent(event)
        self.assertEqual(text, "reload: added none, changed 500 lines: ['rack0000-web', 'rack0001-web', 'rack0002-web', "
                               "'rack0003-web', 'rack0004-web'] and 495 more, removed none, 0 unchanged")
        self.assertLess(len(text), 200)
        self.assertEqual((event["changedCount"], event["addedCount"], event["removedCount"]), (500, 0, 0))
