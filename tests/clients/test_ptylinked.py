"""
A pty: listener's link is made by a thread of its own (PtyClient): its
C{opening} is set by that thread as the making returns, for the start's
wait (awaitOpens, on the reactor's thread); what came of it reaches the
reactor's thread later.  C{whenLinked()} fires once it has: what a test waits for
before it looks at the gateway.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.trial.unittest import TestCase
from zope.interface import directlyProvides, providedBy

from serialgw.clients.ptylink import PtyClient
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog
from tests.realio import until


class HandOverHeld:
    """The real reactor, but a thread's C{callFromThread} waits for C{release} first: a thread preempted just before it hands its outcome over."""

    def __init__(self, real: Any = reactor) -> None:
        self._real = real
        self.release = threading.Event()
        directlyProvides(self, providedBy(real))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.release.wait()  # (no margin: set by the test, or its cleanup)
        self._real.callFromThread(f, *args, **kwargs)


class LinkedTests(TestCase):
    timeout = 30

    async def test_failureTakenInWhenLinkedFires(self) -> None:
        """A link that cannot be made (a file at its path): with C{opening} set the client is still on its line, nothing said; once C{whenLinked()} fires (with the error) it is off the line, said, its C{gone} called."""
        events: list[dict[str, Any]] = []
        observeLog(self, events.append)
        line = Line("t", RecordingDevice())
        link = os.path.abspath(self.mktemp())
        with open(link, "w") as f:
            f.write("someone's")
        held = HandOverHeld()
        self.addCleanup(held.release.set)
        client = PtyClient(line, link, held)
        self.addCleanup(client.close)
        gone: list[bool] = []
        client.gone = lambda: gone.append(True)
        linked = client.whenLinked()
        await until(self, client.opening.is_set, "the link's making returned")  # (however late its thread)
        self.assertIsNotNone(client.openError)
        # The making has returned; the reactor's thread has not heard of it.
        self.assertEqual((client in line.clients, gone, linked.called), (True, [], False))
        held.release.set()
        error = await linked
        self.assertIs(error, client.openError)
        self.assertEqual((client in line.clients, gone), (False, [True]))
        said = [e for e in events if "cannot open listener" in e.get("log_format", "")]
        self.assertEqual(len(said), 1)

    async def test_linkMadeWhenLinkedFires(self) -> None:
        """A link made: C{whenLinked()} fires with None, for each caller, the link leading to the pty, the client on its line."""
        line = Line("t", RecordingDevice())
        link = os.path.abspath(self.mktemp())
        client = PtyClient(line, link, reactor)
        self.addCleanup(client.close)
        self.assertEqual(await DeferredList([client.whenLinked(), client.whenLinked()]), [(True, None), (True, None)])
        self.assertIsNone(await client.whenLinked())
        self.assertEqual((os.readlink(link), client in line.clients), (client.slaveName, True))
