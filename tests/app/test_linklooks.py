"""
The reload's look at the ptys' links (L{serialgw.app.retuning.restoreLinks})
and its thread: a reload let through once the look before it has answered
finds that look over, whatever the thread was doing when the reactor ran
its answer.
"""

from __future__ import annotations

import queue
import threading
from types import SimpleNamespace
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import directlyProvides

from serialgw.app import retuning
from tests.fakes import observeLog

LOOK = "serialgw reload's look at pty links"


class HeldReactor(Clock):
    """
    A reactor whose C{callFromThread} hands the call to the test and holds
    the calling thread until the test has run it: a thread preempted just
    after it handed its result over.
    """

    def __init__(self) -> None:
        super().__init__()
        directlyProvides(self, IReactorThreads)  # (only callFromThread is used)
        self.handed: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], threading.Event]] = queue.Queue()

    def callFromThread(self, callable: Callable[..., Any], *args: object, **kwargs: object) -> None:
        ran = threading.Event()
        self.handed.put((callable, args, ran))
        ran.wait(30)


class GoneLink:
    """A pty whose link someone removed: each look makes it again."""

    link = "/run/t/link"

    def __init__(self) -> None:
        self.looks = 0

    def restoreLink(self) -> Optional[str]:
        self.looks += 1
        return "was gone: made again"


class LookThreadTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        observeLog(self, self.events.append)
        self.reactor = HeldReactor()
        self.port = GoneLink()
        line = SimpleNamespace(name="t", device=SimpleNamespace(port=self.port), clients=[])
        self.service: Any = SimpleNamespace(lines={"t": line}, reactor=self.reactor, linkLooks=retuning.LinkLooks())
        self.held: list[threading.Event] = []
        self.addCleanup(self.letGo)

    def letGo(self) -> None:
        """Every look thread let go (what each still hands over run) and ended; the looks' state as at the start."""
        while any(t.name == LOOK for t in threading.enumerate()):
            for ran in self.held:
                ran.set()
            try:
                f, args, ran = self.reactor.handed.get(timeout=0.05)
            except queue.Empty:
                continue
            self.held.append(ran)
            f(*args)
        for ran in self.held:
            ran.set()
        self.assertFalse(self.service.linkLooks.running)
        self.assertIsNone(self.service.linkLooks.waiting)

    def answer(self) -> None:
        """Run on the 'reactor' what a look thread handed over; the thread stays held where it handed it."""
        try:
            f, args, ran = self.reactor.handed.get(timeout=30)
        except queue.Empty:
            self.fail("the look's thread handed nothing to the reactor in 30 s (a hang, not a slow machine)")
        self.held.append(ran)
        f(*args)

    def test_nextReloadLooksAgainOnceTheFirstAnswered(self) -> None:
        """The look's thread, held just after handing its answer over: a second reload, let through by that answer, starts a look of its own (the link made again, said) rather than leaving its ptys to a thread that had nothing left to do."""
        first = retuning.restoreLinks(self.service, "first")
        self.assertIsInstance(first, Deferred)
        self.answer()
        self.assertEqual(self.successResultOf(first), "first")
        second = retuning.restoreLinks(self.service, "second")
        self.assertIsInstance(second, Deferred)
        self.answer()
        self.assertEqual(self.successResultOf(second), "second")
        self.assertEqual(self.port.looks, 2)
        self.assertEqual([formatEvent(e) for e in self.events],
                         ["t: its pty's link '/run/t/link' was gone: made again"] * 2)

    def test_anotherGatewaysHungLookHoldsNotThis(self) -> None:
        """A look at links left hung by another gateway in the process (a failed test's, its thread still in a file system call) does not hold this gateway's reload: it looks at its own links at once."""
        entered, release = threading.Event(), threading.Event()
        self.addCleanup(release.set)  # (before letGo: cleanups run last first)

        class HungLink:
            link = "/run/o/link"

            def restoreLink(self) -> Optional[str]:
                entered.set()
                release.wait(30)
                return None

        otherReactor = Clock()
        directlyProvides(otherReactor, IReactorThreads)
        otherReactor.callFromThread = lambda f, *args, **kwargs: None  # type: ignore[attr-defined]
        other: Any = SimpleNamespace(lines={"o": SimpleNamespace(name="o", device=SimpleNamespace(port=HungLink()),
                                                                  clients=[])}, reactor=otherReactor,
                                linkLooks=retuning.LinkLooks())
        self.assertIsInstance(retuning.restoreLinks(other, "other"), Deferred)
        self.assertTrue(entered.wait(30))
        mine = retuning.restoreLinks(self.service, "mine")
        self.assertIsInstance(mine, Deferred)
        self.answer()
        self.assertEqual((self.successResultOf(mine), self.port.looks), ("mine", 1))
        self.assertEqual([formatEvent(e) for e in self.events], ["t: its pty's link '/run/t/link' was gone: made again"])
