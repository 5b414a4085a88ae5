"""
A C{pipe:} listener whose FIFO's open does not return (a FIFO on a
hard-mounted NFS server gone) at the start or at a reload adding it: the
real reactor, a pty pair as each line's device, real TCP clients on
loopback, and os.open made to wait for that one FIFO until the test lets
it go.  Both lines serve meanwhile; once the open returns the pipe carries
bytes both ways.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app import applying
from serialgw.clients import logfile
from tests.fakes import observeLog
from tests.real import test_logopen
from tests.realio import Clients, ptyLine, startedPty, startGateway

LISTEN = "raw+tcp:0:interface=127.0.0.1"


class HungAfter:
    """os.open of C{path} waits, from its C{skip}+1th call on, until L{release} (the reload's look opens it first)."""

    def __init__(self, case: TestCase, path: str, skip: int = 0) -> None:
        self.path = path
        self.skip = skip
        self.real = os.open
        self.entered = threading.Event()
        self.released = threading.Event()
        self._rescue = threading.Timer(test_logopen.RESCUE, self.release)
        self._rescue.daemon = True
        self._rescue.start()
        case.addCleanup(self.release)
        case.patch(os, "open", self.call)

    def call(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == self.path:
            if self.skip > 0:
                self.skip -= 1
            else:
                self.entered.set()
                self.released.wait()
        return self.real(path, *args, **kwargs)

    def release(self) -> None:
        self.released.set()
        self._rescue.cancel()


class HungPipeTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.events: list[LogEvent] = []
        observeLog(self, self.events.append)
        self.fifo = os.path.abspath(self.mktemp())
        os.mkfifo(self.fifo)
        self.clients = Clients()
        self.addCleanup(lambda: defer.ensureDeferred(self.clients.close()))

    def said(self) -> list[str]:
        said = [formatEvent(e) for e in self.events if e.get("log_level") is not None
                and e["log_level"].name in ("warn", "error")]
        return [text for text in said if self.fifo in text]

    async def bothFlow(self, service: Any, a: Any, b: Any, hung: Any) -> None:
        await test_logopen.HungOpenTests.bothFlow(self, service, a, b, hung)  # type: ignore[arg-type]

    async def pipeCarries(self, a: Any) -> None:
        """The pipe (the FIFO both ways: what is written into it is read back by the gateway) reaches line a's device."""
        fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        os.write(fd, b"via the pipe")
        await a.received.contains(b"via the pipe")

    async def test_startWithHungPipe(self) -> None:
        """A pipe: whose FIFO's open hangs at the start: the start waits START_WAIT s at most, says so naming it; both lines serve; once the open returns the pipe carries bytes to the device."""
        self.patch(logfile, "START_WAIT", 0.2)
        hung = HungAfter(self, self.fifo)
        a, b = startedPty(self), startedPty(self)
        service = startGateway(self, ptyLine(a, LISTEN, f"pipe:{self.fifo}", name="a"), ptyLine(b, LISTEN, name="b"))
        self.assertTrue(hung.entered.is_set())
        self.assertEqual(self.said(), [f"line a: listener pipe:{self.fifo}: its open has not returned in 0.2 s (a "
                                       "file system that does not answer?); the line runs, its pipe joins it once "
                                       "the open returns"])
        await self.bothFlow(service, a, b, hung)
        hung.release()
        await self.pipeCarries(a)

    async def test_reloadWithHungPipe(self) -> None:
        """A reload adding a pipe: whose FIFO's open hangs (its look passed): the reload is done, both lines serve; once the open returns the pipe carries bytes to the device."""
        self.patch(applying, "CHECK_WAIT", 5.0)
        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), lineB)
        hung = HungAfter(self, self.fifo, skip=1)
        result = await service.reload([ptyLine(a, LISTEN, f"pipe:{self.fifo}", name="a"), lineB])
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertTrue(await deferToThread(hung.entered.wait, 10))
        await self.bothFlow(service, a, b, hung)
        hung.release()
        await self.pipeCarries(a)
        self.assertEqual(self.said(), [])

    async def test_failedLaterSaidAndTriedAgain(self) -> None:
        """A pipe: whose open fails once its line runs (the start stopped waiting for it): said naming it, the line runs without it; a reload of the same configuration opens it again."""
        from tests.realio import until

        self.patch(logfile, "START_WAIT", 0.2)
        hung = HungAfter(self, self.fifo)
        a, b = startedPty(self), startedPty(self)
        lineA, lineB = ptyLine(a, LISTEN, f"pipe:{self.fifo}", name="a"), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        os.unlink(self.fifo)
        hung.release()
        await until(self, lambda: len(self.said()) == 2, "the failure said")
        self.assertEqual(self.said()[1], f"a: cannot open listener pipe:{self.fifo}: No such file or directory; the "
                                         "line runs without it")
        self.assertEqual(service.configs[0].listeners, lineA.listeners[:1])
        os.mkfifo(self.fifo)
        self.assertEqual(await service.reload([lineA, lineB]), {"added": [], "changed": ["a"], "removed": []})
        await self.pipeCarries(a)
