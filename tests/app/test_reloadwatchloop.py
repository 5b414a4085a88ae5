"""
A reload's lines against the watch-all listeners that run: --watch-all's,
and the file's where they run (one the file moves keeps its place until a
restart), not only the file's [watch-all] as it is read again.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from tests.app.test_shard import parse

LINE_A = """\
[defaults]
lock = false

[lines.a]
device = "/dev/null"
listen = "tcp:4001:interface=127.0.0.1"
"""

# Dials the watch-all listener on 4400, which watches every line (itself too).
DIALS_4400 = '\n[lines.b]\ndevice = "telnet:127.0.0.1:4400"\nlisten = "tcp:4002:interface=127.0.0.1"\n'


class ReloadWatchAllLoopTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        self.applied: list[list[str]] = []

    def service(self, text: str, *args: str) -> Any:
        """The service twistd serialgw --config FILE ARGS makes, its reloads recorded (not applied)."""
        with open(self.path, "w") as f:
            f.write(text)
        service = tap.makeService(parse("--config", self.path, *args), reactor=MemoryReactorClock())

        def reload(lines: list[Any]) -> defer.Deferred[dict[str, list[str]]]:
            self.applied.append([line.name for line in lines])
            return defer.succeed({"added": [], "changed": [], "removed": []})

        self.patch(service, "_reload", reload)
        return service

    def reloaded(self, service: Any, text: str) -> list[str]:
        """The file rewritten as C{text} and reloaded: the refusals logged."""
        with open(self.path, "w") as f:
            f.write(text)
        with capturedLogs() as events:
            self.successResultOf(service.reloadFile())
        return [formatEvent(e) for e in events if "reload refused" in formatEvent(e)]

    def test_watchAllOption(self) -> None:
        """A reload adding a line that dials --watch-all's listener (which watches it) is refused, naming the loop."""
        service = self.service(LINE_A, "--watch-all", "tcp:4400:interface=127.0.0.1")
        refused = self.reloaded(service, LINE_A + DIALS_4400)
        self.assertEqual(self.applied, [])
        self.assertEqual(refused, [
            f"reload refused, the running configuration stays: {self.path}:9: [lines.b] device: "
            "'telnet:127.0.0.1:4400' is the watch-all listener 'tcp:4400:interface=127.0.0.1', which watches line "
            "'b': each line of its output would come back to it from there, prefixed, for ever (a loop)"])

    def test_movedListenerStillRuns(self) -> None:
        """A reload moving the file's watch-all listener (it stays where it is until a restart) and adding a line that dials where it runs is refused."""
        table = '\n[watch-all]\nlisten = "tcp:{}:interface=127.0.0.1"\n'
        service = self.service(LINE_A + table.format(4400))
        refused = self.reloaded(service, LINE_A + table.format(4500) + DIALS_4400)
        self.assertEqual(self.applied, [])
        self.assertEqual(refused, [
            f"reload refused, the running configuration stays: {self.path}:12: [lines.b] device: "
            "'telnet:127.0.0.1:4400' is the watch-all listener 'tcp:4400:interface=127.0.0.1', which watches line "
            "'b': each line of its output would come back to it from there, prefixed, for ever (a loop)"])

    def test_filterAsTheReloadLeavesIt(self) -> None:
        """--watch-all's listener takes the file's new lines filter at the reload: a line it no longer watches may dial it; one it now watches may not."""
        table = '\n[watch-all]\nlisten = "tcp:4500:interface=127.0.0.1"\nlines = ["{}"]\n'
        service = self.service(LINE_A + table.format("a"), "--watch-all", "tcp:4400:interface=127.0.0.1")
        self.assertEqual(self.reloaded(service, LINE_A + table.format("a") + DIALS_4400), [])
        self.assertEqual(self.applied, [["a", "b"]])
        refused = self.reloaded(service, LINE_A + table.format("*") + DIALS_4400)
        self.assertEqual(len(self.applied), 1)
        self.assertEqual(len(refused), 1)
        self.assertIn("is the watch-all listener 'tcp:4400:interface=127.0.0.1', which watches line 'b'", refused[0])

    def test_watchAllOptionThroughALink(self) -> None:
        """A reload adding a line whose unix: device reaches --watch-all's unix listener through a linked directory is refused, as the same path is."""
        from tests.realio import socketPath

        top = os.path.dirname(socketPath(self))
        os.mkdir(os.path.join(top, "run"))
        os.symlink(os.path.join(top, "run"), os.path.join(top, "var-run"))
        service = self.service(LINE_A, "--watch-all", f"raw+unix:{top}/run/w.sock")
        refused = self.reloaded(service, LINE_A + f'\n[lines.b]\ndevice = "unix:{top}/var-run/w.sock"\nlisten = "4002"\n')
        self.assertEqual(self.applied, [])
        self.assertEqual([said.replace(top, "D") for said in refused], [
            f"reload refused, the running configuration stays: {self.path}:9: [lines.b] device: "
            "'unix:D/var-run/w.sock' is the watch-all listener 'raw+unix:D/run/w.sock', which watches line "
            "'b': each line of its output would come back to it from there, prefixed, for ever (a loop)"])
