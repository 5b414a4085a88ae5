"""
twistd serialgw --check looks at paths (devices, logs, listeners' paths,
TLS files, the SSH host key) on a thread of its own, each look bounded
(check.LOOK_WAIT): one on a file system that does not answer stops the
check, named, where it held --check (a unit's ExecStartPre=) for ever.
"""

from __future__ import annotations

import io
import os
import threading
import types
from typing import Any, Optional

from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import check
from tests.app.test_shard import parse
from tests.hung import Held
from tests.shortpaths import shortTemp

# Seconds the check's wait waits for its look to reach the path that hangs: a guard against a look that never does (the test then fails), not a bound on a loaded machine's thread.
LATE = 120.0
# LOOK_WAIT where the looks answer: longer than any stall of a loaded machine's thread.
ANSWERS_WITHIN = 600.0


class HungStat(Held):
    """os.stat of C{path} waits until L{release} (a file system that does not answer); C{entered} once it does."""

    def __init__(self, case: SynchronousTestCase, path: str) -> None:
        super().__init__(case, f"os.stat of {path}")
        self.path = path
        self.real = os.stat
        case.patch(os, "stat", self.call)

    def call(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == self.path:
            self.hold()
        return self.real(path, *args, **kwargs)


class CheckLookTests(SynchronousTestCase):
    def report(self, text: str, hung: Optional[str] = None) -> tuple[int, str, str, Optional[HungStat]]:
        """--check of a file holding C{text}, os.stat of C{hung} made to hang: exit status, stdout, stderr."""
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(text)
        self.path = path
        options = parse("--check", "--config", path)
        stat = None
        if hung is not None:
            stat = HungStat(self, hung)
            reached = stat.entered

            class Done(threading.Event):
                """The wait for the looks begins once the look has reached the path that hangs (a loaded machine's thread may be late)."""

                def wait(self, timeout: Optional[float] = None) -> bool:
                    reached.wait(LATE)
                    return super().wait(timeout)

            self.patch(check, "threading", types.SimpleNamespace(Thread=threading.Thread, Event=Done,
                                                                 Lock=threading.Lock))
        out, err = io.StringIO(), io.StringIO()
        return options.report(out, err), out.getvalue(), err.getvalue(), stat

    def test_hungDeviceLookStopsTheCheck(self) -> None:
        """A line's device whose stat hangs: --check says so after LOOK_WAIT s, naming the line and the device, exit 2."""
        self.patch(check, "LOOK_WAIT", 0.3)
        device = shortTemp(self)
        code, out, err, stat = self.report(f'[lines.a]\ndevice = "{device}"\nlisten = "tcp:4001:interface=127.0.0.1"\n'
                                           "lock = false\n", hung=device)
        self.assertEqual((code, out), (2, ""))
        self.assertEqual(err, f"serialgw: error: {self.path}:1: line 'a': device {device!r}: a look at it has not "
                              "returned in 0.3 s (a file system that does not answer?); --check stops there\n"
                              f"serialgw: {self.path}: 1 error(s)\n")
        assert stat is not None
        self.assertFalse(stat.released.is_set())

    def test_hungLogLookNamesTheLog(self) -> None:
        """The line's device answers, its log's directory does not: the log is named."""
        self.patch(check, "LOOK_WAIT", 0.3)
        directory = shortTemp(self)
        code, _, err, _ = self.report(f'[lines.a]\ndevice = "/dev/null"\nlisten = "tcp:4001:interface=127.0.0.1"\n'
                                      f'lock = false\nlog = "{directory}/a.log"\n', hung=directory)
        self.assertEqual(code, 2)
        self.assertIn(f"line 'a': log '{directory}/a.log': a look at it has not returned in 0.3 s", err)

    def test_pathsThatAnswer(self) -> None:
        """Paths that answer (a missing device: a warning, as before) are looked at as before, on the thread."""
        # However late that thread is (a loaded machine's: 5-10 s stalled
        # it failed at LOOK_WAIT's 5 s): the bound is the hung tests' matter.
        self.patch(check, "LOOK_WAIT", ANSWERS_WITHIN)
        lookers: list[str] = []
        real = os.stat

        def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
            if path == "/nowhere/ttyS9":
                lookers.append(threading.current_thread().name)
            return real(path, *args, **kwargs)

        self.patch(os, "stat", stat)
        code, out, err, _ = self.report('[lines.a]\ndevice = "/nowhere/ttyS9"\nlisten = "tcp:4001:interface=127.0.0.1"\n'
                                        "lock = false\n")
        self.assertEqual((code, out), (0, f"serialgw: {self.path}: 1 line(s), 1 listener(s): OK, 1 warning(s)\n"))
        self.assertIn("line 'a': device '/nowhere/ttyS9' does not exist (now)", err)
        self.assertIn("serialgw --check's looks", lookers)
