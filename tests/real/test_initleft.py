"""
serialgw.line.initleft: what an init-command's session still runs, ended
by pidfd once nobody in it can be asked to (real processes, each in a
session of its own as a run's are).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from typing import Any

from twisted.trial.unittest import TestCase

from serialgw.line.initleft import endSession, exited, pinChildren
from tests.real.test_initcommand import _gone
from tests.realio import until


class EndSessionTests(TestCase):
    timeout = 30

    def session(self, script: str) -> Any:
        """A shell running C{script} in a session of its own (its pid the session's id), killed by the test's end."""
        process = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True, stdout=subprocess.PIPE)

        def over() -> None:
            try:
                os.killpg(process.pid, 9)  # (the test's own child, not reaped yet: the group is its)
            except OSError:
                pass
            process.wait()
            assert process.stdout is not None
            process.stdout.close()

        self.addCleanup(over)
        return process

    async def test_whatTheSessionRunsKilled(self) -> None:
        """
        A pinned process of the session still running: it, and what /proc
        says is in its session (a child it started, not pinned), are sent
        SIGKILL; their pids are said.
        """
        process = self.session("sleep 1000 & echo $!; exec sleep 1000")
        assert process.stdout is not None
        started = int(process.stdout.readline())
        pins = {process.pid: os.pidfd_open(process.pid)}
        self.assertEqual(endSession(process.pid, pins), sorted([process.pid, started]))
        await until(self, lambda: _gone(started), f"process {started} gone")
        self.assertEqual(process.wait(), -9)

    def test_nothingPinnedRunsNothingSignalled(self) -> None:
        """
        None of the pinned processes runs any more (the keeper's reader
        ended the session as asked): nothing is signalled, not even what
        /proc says is in a session of that number, which may be another's
        by then; the pidfds are closed.
        """
        other = self.session("sleep 1000 & echo $!; exec sleep 1000")
        assert other.stdout is not None
        started = int(other.stdout.readline())
        ended = subprocess.Popen(["/bin/true"])
        pin = os.pidfd_open(ended.pid)  # (before its reaping: a zombie's is had too)
        ended.wait()
        self.assertEqual(endSession(other.pid, {ended.pid: pin}), [])
        self.assertEqual((_gone(other.pid), _gone(started)), (False, False))
        self.assertRaises(OSError, os.fstat, pin)

    async def test_pinnedOneLeftTheSession(self) -> None:
        """
        The one pinned process still running has left the session (the
        command's own C{exec setsid ...}): it no longer holds the session's
        id, which may be another's by then; it alone is sent SIGKILL, not
        what /proc says is in a session of that number.
        """
        other = self.session("sleep 1000 & echo $!; exec sleep 1000")
        assert other.stdout is not None
        started = int(other.stdout.readline())
        left = self.session("exec sleep 1000")  # (its own session: as the run's shell after setsid)
        self.assertEqual(endSession(other.pid, {left.pid: os.pidfd_open(left.pid)}), [left.pid])
        self.assertEqual(left.wait(), -9)
        self.assertEqual((_gone(other.pid), _gone(started)), (False, False))

    def test_exitedPastSelectsBound(self) -> None:
        """
        Whether a pidfd's process has exited is told for a descriptor past
        1023 too (a gateway with many clients has such numbers): select()
        refused it ('filedescriptor out of range in select()'), raised
        inside a run's end.
        """
        process = self.session("exec sleep 1000")
        fd = os.pidfd_open(process.pid)
        self.addCleanup(os.close, fd)
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1500)
        self.addCleanup(os.close, high)
        self.assertEqual(exited(high), False)
        process.kill()
        process.wait()
        self.assertEqual(exited(high), True)

    def test_childrenPinned(self) -> None:
        """A process's children, each by a pidfd: the pids /proc/PID/task/PID/children says."""
        process = self.session("sleep 1000 & echo $!; exec sleep 1000")
        assert process.stdout is not None
        started = int(process.stdout.readline())
        pins = pinChildren(process.pid)
        for fd in pins.values():
            self.addCleanup(os.close, fd)
        self.assertEqual(sorted(pins), [started])
