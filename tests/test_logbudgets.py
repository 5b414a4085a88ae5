"""The tests' fixture: each test starts with fresh client log budgets (tests/__init__.py)."""

from twisted.logger import LogLevel
from twisted.trial.reporter import TestResult
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.logflood import ListenerKey, peerLimiter


class FreshBudgetsTests(SynchronousTestCase):
    def test_eachTestStartsWithNoBudgetSpent(self) -> None:
        """A name whose minute's budget an earlier test spent is forgotten when the next test (sync or async) starts: a peer's, a second budget's, a listener's own (left, its summary came in a later test's log once its minute was over)."""
        sent: list[dict] = []
        listener = ListenerKey("listener tcp:0")  # (one object: a Peer's budget is its own by identity)
        observer, peerLimiter.observer = peerLimiter.observer, sent.append
        try:
            for _ in range(25):
                peerLimiter({"peer": "pty:/dev/pts/99", "budget": "ops1", "log_level": LogLevel.warn, "log_time": 1e9})
                peerLimiter({"peer": listener, "log_level": LogLevel.info, "log_time": 1e9})
        finally:
            peerLimiter.observer = observer
        self.assertEqual(len(sent), 40)
        self.assertEqual((len(peerLimiter.peers), len(peerLimiter.budgets), len(peerLimiter.listeners)), (1, 1, 1))
        seen: list[int] = []

        def spent() -> int:
            return len(peerLimiter.peers) + len(peerLimiter.budgets) + len(peerLimiter.listeners)

        class Inner(SynchronousTestCase):
            def test_budget(self) -> None:
                seen.append(spent())

        class InnerAsync(TestCase):
            def test_budget(self) -> None:
                seen.append(spent())

        for case in (Inner, InnerAsync):
            result = TestResult()
            case("test_budget").run(result)
            self.assertTrue(result.wasSuccessful())
        self.assertEqual(seen, [0, 0])
