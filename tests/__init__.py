"""
serialgw's tests.

Every test starts with the client log limiter's budgets as a fresh
process has them (L{serialgw.logflood.peerLimiter}: 20 lines a minute a
name).  Tests share names within a minute (a pty client's
C{pty:/dev/pts/N}, the pty numbers reused at once; addresses; the tests'
people), so a test asserting a line named by one, captured by Twisted's
C{capturedLogs} or an observer of its own, found it left out or not
depending on which tests ran in the last minute (race25: test_ptylink's
test_lostLeavesTheLine, in a random order).
"""

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

_run = SynchronousTestCase.run


def _runWithFreshLogBudgets(self: SynchronousTestCase, result: Any) -> None:
    from serialgw.logflood import peerLimiter

    peerLimiter.peers.clear()
    peerLimiter.budgets.clear()
    _run(self, result)


SynchronousTestCase.run = _runWithFreshLogBudgets  # type: ignore[method-assign]
