"""
The guard against a test's own reactor left open (tests/reactors.py):
closed, each kind leaves no descriptor; and every test that makes one
hands it to ownReactor or closeReactor.
"""

from __future__ import annotations

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.oneshot import OneShotReactor, ThreadedOneShotReactor
from serialgw.app.reactor import GatewayReactor
from tests.reactors import closeReactor, ownReactor

TESTS = os.path.dirname(os.path.abspath(__file__))

# What makes a reactor in a test (serialgw's, Twisted's own pollers).
MAKERS = {"GatewayReactor", "OneShotReactor", "ThreadedOneShotReactor", "reactorFromEnvironment",
          "EPollReactor", "PollReactor", "SelectReactor"}
CLOSERS = {"ownReactor", "closeReactor"}

# Test functions that call a maker without closing what it makes, and why that is right.
KNOWN = {
    "app/test_oneshot.py:test_badReaderFailsTheStartSaid": "its environment is refused before a reactor is made",
}


def descriptors() -> list[str]:
    """What this process's descriptors are, as /proc/self/fd says (sorted)."""
    seen = []
    for name in os.listdir("/proc/self/fd"):
        try:
            seen.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            continue  # (the listing's own, closed meanwhile)
    return sorted(seen)


def unclosed(tree: ast.AST) -> list[tuple[str, int]]:
    """(function, line) of each maker's call whose outermost function names no closer."""
    found = []
    for top in ast.walk(tree):
        if not isinstance(top, ast.ClassDef) and not isinstance(top, ast.Module):
            continue
        for function in top.body:
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            names = {node.id if isinstance(node, ast.Name) else node.attr
                     for node in ast.walk(function) if isinstance(node, (ast.Name, ast.Attribute))}
            if names & CLOSERS:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                    if called in MAKERS:
                        found.append((function.name, node.lineno))
    return found


class CloseReactorTests(SynchronousTestCase):
    def test_eachKindLeavesNothing(self) -> None:
        """Each of serialgw's reactors, made then closed, leaves this process's descriptors as they were (only its epoll descriptor closed, its waker's pipe stayed: 2 a reactor)."""
        for kind in (GatewayReactor, OneShotReactor, ThreadedOneShotReactor):
            before = descriptors()
            reactor = kind()
            self.assertEqual(len(descriptors()), len(before) + 3, kind)  # (epoll, the waker's two ends)
            if isinstance(reactor, ThreadedOneShotReactor):
                reactor.stopHelper()
            closeReactor(reactor)
            self.assertEqual(descriptors(), before, kind)

    def test_ownReactorAtTheEnd(self) -> None:
        """ownReactor closes it when the test is done, not before."""
        case = SynchronousTestCase()
        before = descriptors()
        reactor = ownReactor(case, GatewayReactor())
        self.assertEqual(len(descriptors()), len(before) + 3)
        case.doCleanups()
        self.assertEqual((descriptors(), reactor._poller.closed), (before, True))


class EveryTestClosesTests(SynchronousTestCase):
    def test_madeThenClosed(self) -> None:
        """Every test function (or setUp) that makes a reactor of its own names ownReactor or closeReactor."""
        left = []
        for root, _, files in os.walk(TESTS):
            for f in sorted(files):
                path = os.path.join(root, f)
                if not f.endswith(".py") or path in (os.path.join(TESTS, "reactors.py"), os.path.abspath(__file__)):
                    continue
                with open(path) as source:
                    text = source.read()
                if not any(maker + "(" in text for maker in MAKERS):
                    continue
                for function, line in unclosed(ast.parse(text, path)):
                    where = f"{os.path.relpath(path, TESTS)}:{function}"
                    if where not in KNOWN:
                        left.append(f"tests/{os.path.relpath(path, TESTS)}:{line} in {function}")
        self.assertEqual(left, [], "a reactor a test makes is to be closed: ownReactor(self, ...) (tests/reactors.py)")

    def test_seesAnUnclosedOne(self) -> None:
        """The check finds a test that makes one and only closes its epoll descriptor (as 20 did)."""
        source = ("class T:\n"
                  "    def test_x(self):\n"
                  "        reactor = GatewayReactor()\n"
                  "        self.addCleanup(reactor._poller.close)\n"
                  "    def test_y(self):\n"
                  "        reactor = ownReactor(self, reactorFromEnvironment({}))\n")
        self.assertEqual(unclosed(ast.parse(source)), [("test_x", 3)])
