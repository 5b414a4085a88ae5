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


def freshLogBudgets() -> None:
    """
    Every table of the limiter's budgets emptied, whatever it holds them
    in (the peers', the second budgets', the listeners' own): one left
    over is summed up ("N log messages about PEER left out in the last
    minute") by the first event about anyone once its minute is over, in
    a later test's log.
    """
    from serialgw.logflood import peerLimiter

    for value in vars(peerLimiter).values():
        if isinstance(value, dict):
            value.clear()


def _runWithFreshLogBudgets(self: SynchronousTestCase, result: Any) -> None:
    freshLogBudgets()
    _run(self, result)


SynchronousTestCase.run = _runWithFreshLogBudgets  # type: ignore[method-assign]
