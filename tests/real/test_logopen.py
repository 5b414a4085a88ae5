"""
A console log whose first open, or a reload's look at its path, does not
return (a hard-mounted NFS server gone when the gateway starts or a
reload adds the log): the real reactor, a pty pair as each line's
device, real TCP clients on loopback, and os.open (or os.lstat) made to
wait, for that one path only, until the test lets it go.  The other
line, and the log's own line, go on; the log, once its open returns,
holds exactly what its line said meanwhile (its bound permitting).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.internet import defer
from twisted.logger import LogEvent, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app import reloadlooks
from serialgw.clients import logfile
from serialgw.clients.local import FileClient
from serialgw.clients.logwriter import written
from serialgw.config.logspec import LogSpec
from tests.fakes import observeLog
from tests.hung import Held
from tests.realio import Clients, FdReader, PtyPair, listenerPort, ptyLine, startedPty, startGateway, until

ALL = bytes(range(256))

LISTEN = "raw+tcp:0:interface=127.0.0.1"


class Hung(Held):
    """
    C{os.NAME} waits, for C{path} only (and, for os.open, only an open
    that may create it: the log's, not a look at it), until L{release}.
    """

    def __init__(self, case: TestCase, name: str, path: str, creating: bool = False) -> None:
        super().__init__(case, f"os.{name} of {path}")
        self.path = path
        self.creating = creating
        self.real = getattr(os, name)
        case.patch(os, name, self.call)

    def call(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == self.path and (not self.creating or args[0] & os.O_CREAT):
            self.hold()
        return self.real(path, *args, **kwargs)


class BetweenLooks:
    """
    A reload's look at files (reloadlooks.LookingAside.lookAside's thread) held as it goes
    on to its second item, its first answered: the third time it takes the
    look's lock (the first item begun, then answered, then the second begun).
    """

    def __init__(self, case: TestCase) -> None:
        self.real = reloadlooks._looking
        self.held = Held(case, "the reload's look at files")
        self.reached, self.released = self.held.entered, self.held.released
        self._taken = 0
        case.patch(reloadlooks, "_looking", self)

    def __enter__(self) -> Any:
        if threading.current_thread().name == "serialgw reload's look at files":
            self._taken += 1
            if self._taken == 3:
                self.held.hold()
        return self.real.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.real.__exit__(*exc)


class HungOpenTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.events: list[LogEvent] = []
        observeLog(self, self.events.append)
        self.path = os.path.abspath(self.mktemp())
        self.clients = Clients()
        self.addCleanup(lambda: defer.ensureDeferred(self.clients.close()))

    def said(self) -> list[str]:
        said = [formatEvent(e) for e in self.events if e.get("log_level") is not None
                and e["log_level"].name in ("warn", "error")]
        return [text for text in said if self.path in text]  # (not an earlier test's writer's, ending now)

    async def bothFlow(self, service: Any, a: PtyPair, b: PtyPair, hung: Any, before: bytes = b"") -> None:
        """Each line's client and device exchange their bytes, the open (or look, or write) still hung; C{before}: line a's output a client is given first (its recent output)."""
        onA = await self.clients.connect(listenerPort(service, 0))
        onB = await self.clients.connect(listenerPort(service, 1))
        onB.transport.write(ALL * 16)  # type: ignore[union-attr]
        self.assertEqual(await b.received.length(4096), ALL * 16)
        b.write(ALL * 16)
        self.assertEqual(await onB.received.length(4096), ALL * 16)
        onA.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await a.received.length(5), b"typed")
        a.write(b"first\nsecond ")
        self.assertEqual(await onA.received.length(len(before) + 13), before + b"first\nsecond ")
        self.assertFalse(hung.released.is_set())

    async def test_startWithHungOpen(self) -> None:
        """A log whose open hangs at the start: the start waits LOG_START_WAIT s at most, says so naming the path; both lines serve; once the open returns the log holds exactly what its line said meanwhile."""
        self.patch(logfile, "START_WAIT", 0.2)
        hung = Hung(self, "open", self.path, creating=True)
        a, b = startedPty(self), startedPty(self)
        service = startGateway(self, ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off")),
                               ptyLine(b, LISTEN, name="b"))
        # (The wait for it ended at its bound, whether or not its thread had got to the call by then.)
        await hung.whenEntered()
        self.assertFalse(hung.released.is_set())
        self.assertEqual(self.said(), [f"line a: log {self.path}: its open has not returned in 0.2 s (a file system "
                                       "that does not answer?); the line runs, its output waits for it (at most "
                                       "1048576 bytes), written once the open returns"])
        await self.bothFlow(service, a, b, hung)
        hung.release()
        await written()
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"first\nsecond ")
        self.assertEqual(service.lines["a"].logs[0].dropped, 0)  # type: ignore[attr-defined]

    async def test_startWithHungFileOutput(self) -> None:
        """A file: output whose open hangs at the start: the same as a log's (said, both lines serving, then exactly the bytes its line said meanwhile in the file)."""
        self.patch(logfile, "START_WAIT", 0.2)
        hung = Hung(self, "open", self.path, creating=True)
        a, b = startedPty(self), startedPty(self)
        service = startGateway(self, ptyLine(a, LISTEN, f"file:{self.path}", name="a"), ptyLine(b, LISTEN, name="b"))
        # (The wait for it ended at its bound, whether or not its thread had got to the call by then.)
        await hung.whenEntered()
        self.assertFalse(hung.released.is_set())
        self.assertEqual(self.said(), [f"line a: file: output {self.path}: its open has not returned in 0.2 s (a file "
                                       "system that does not answer?); the line runs, its output waits for it (at "
                                       "most 1048576 bytes), written once the open returns"])
        await self.bothFlow(service, a, b, hung)
        hung.release()
        output = next(c for c in service.lines["a"].clients if isinstance(c, FileClient))
        await until(self, lambda: output._early is None, "the file opened")
        await output.written()
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"first\nsecond ")

    async def test_reloadWithHungFifoOutput(self) -> None:
        """A reload adding a file: output on a FIFO whose open hangs: both lines serve; once it returns, the FIFO's reader gets exactly what the line said meanwhile, then what follows, in order."""
        os.mkfifo(self.path)
        reader = FdReader(os.open(self.path, os.O_RDWR | os.O_NONBLOCK), "the FIFO's reader")  # (a writer too: no end read)
        self.addCleanup(reader.close)
        reader.startReading()
        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), lineB)
        hung = Hung(self, "open", self.path, creating=True)
        result = await service.reload([ptyLine(a, LISTEN, f"file:{self.path}", name="a"), lineB])
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        hung.release()
        self.assertEqual(await reader.received.length(13), b"first\nsecond ")
        a.write(b"third\n")
        self.assertEqual(await reader.received.length(19), b"first\nsecond third\n")
        self.assertEqual(self.said(), [])

    async def test_reloadWithHungOpen(self) -> None:
        """A reload giving a line a log whose open hangs: the reload is done at once, both lines serve; once the open returns the log holds exactly what its line said meanwhile."""
        a, b = startedPty(self), startedPty(self)
        lineA, lineB = ptyLine(a, LISTEN, name="a"), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        hung = Hung(self, "open", self.path, creating=True)
        result = await service.reload([ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off")),
                                       lineB])
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        hung.release()
        await written()
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"first\nsecond ")
        self.assertEqual(self.said(), [])

    async def test_reloadWithHungLook(self) -> None:
        """A reload whose look at a new log's path hangs: refused after CHECK_WAIT s naming the path, both lines serving meanwhile; nothing changed; a second reload meanwhile is refused at once, naming it too."""
        self.patch(reloadlooks, "CHECK_WAIT", 0.5)
        a, b = startedPty(self), startedPty(self)
        lineA, lineB = ptyLine(a, LISTEN, name="a"), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        hung = Hung(self, "lstat", self.path)
        reloaded = service.reload([ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off")),
                                   lineB])
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        why = (f"line 'a': cannot open log {self.path!r}: a look at it (lstat, access, its lock) has not returned in "
               "0.5 s (a file system that does not answer?)")
        self.assertEqual(await reloaded, {"refused": [why]})
        self.assertEqual(service.lines["a"].logs, [])
        again = await service.reload([ptyLine(a, LISTEN, name="a", log=LogSpec(self.path)), lineB])
        self.assertEqual(again, {"refused": [f"line 'a': cannot open log {self.path!r}: a look at it (lstat, access, "
                                             "its lock) begun before has not returned yet"]})
        self.assertFalse(hung.released.is_set())
        hung.release()

    async def test_reloadSlowBetweenTwoLooksNamesTheNext(self) -> None:
        """A reload's look at two new logs, its thread not yet at the second when CHECK_WAIT s are up (the first answered): refused naming the second, not the first, already read."""
        from twisted.internet import reactor

        self.patch(reloadlooks, "CHECK_WAIT", 60.0)
        a, b = startedPty(self), startedPty(self)
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), ptyLine(b, LISTEN, name="b"))
        second = os.path.abspath(self.mktemp())
        held = BetweenLooks(self)
        reloaded = service.reload([ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off")),
                                   ptyLine(b, LISTEN, name="b", log=LogSpec(second, format="", events="off"))])
        await held.held.whenEntered()
        # CHECK_WAIT s are up now, the thread held between the two.
        next(c for c in reactor.getDelayedCalls() if getattr(getattr(c, "func", None), "__name__", "") == "late").reset(0)
        why = (f"line 'b': cannot open log {second!r}: a look at it (lstat, access, its lock) has not returned in "
               "60 s (a file system that does not answer?)")
        self.assertEqual(await reloaded, {"refused": [why]})
        held.released.set()

    async def test_reloadLookDoneAsItsWaitEndsIsAnswered(self) -> None:
        """A reload's look at one new log, done (the log answered) when CHECK_WAIT s are up, its answer not on the reactor yet: the reload is answered by it; it was never answered (the wait's timer, run already, cancelled again: AlreadyCalled)."""
        from twisted.internet import reactor

        self.patch(reloadlooks, "CHECK_WAIT", 60.0)
        a, b = startedPty(self), startedPty(self)
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), ptyLine(b, LISTEN, name="b"))
        # (One item: the look's third take of its lock is its last, once that item has answered.)
        held = BetweenLooks(self)
        reloaded = service.reload([ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off")),
                                   ptyLine(b, LISTEN, name="b")])
        await held.held.whenEntered()
        late = next(c for c in reactor.getDelayedCalls() if getattr(getattr(c, "func", None), "__name__", "") == "late")
        late.reset(0)
        await until(self, lambda: not late.active(), "the wait's end run")
        held.released.set()
        await until(self, lambda: reloaded.called, "the reload answered")
        self.assertEqual(await reloaded, {"added": [], "changed": ["a"], "removed": []})

    async def test_reloadWithHungLockDirLook(self) -> None:
        """A reload whose look at a line's new lock-dir hangs (stat on a mount that does not answer): refused after CHECK_WAIT s naming the directory, both lines serving meanwhile; nothing changed; a second reload meanwhile is refused at once, naming it too."""
        self.patch(reloadlooks, "CHECK_WAIT", 0.5)
        a, b = startedPty(self), startedPty(self)
        lockDir = os.path.abspath(self.mktemp())
        os.mkdir(lockDir)
        lineA, lineB = ptyLine(a, LISTEN, name="a", lock=False), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        hung = Hung(self, "stat", lockDir)
        reloaded = service.reload([ptyLine(a, LISTEN, name="a", lockDir=lockDir), lineB])
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        why = (f"line 'a': lock-dir {lockDir!r}: a look at it (stat, access) has not returned in 0.5 s (a file "
               "system that does not answer?)")
        self.assertEqual(await reloaded, {"refused": [why]})
        self.assertEqual(service.configs[0], lineA)
        again = await service.reload([ptyLine(a, LISTEN, name="a", lockDir=lockDir), lineB])
        self.assertEqual(again, {"refused": [f"line 'a': lock-dir {lockDir!r}: a look at it (stat, access) begun "
                                             "before has not returned yet"]})
        self.assertFalse(hung.released.is_set())
        hung.release()

    async def test_reloadClosingAStuckLog(self) -> None:
        """A reload closing a log stuck in a write waits for it (CLOSE_WAIT s at most) on a timer, not on the reactor's thread: both lines serve while it waits; it is done once the write returns."""
        from tests.real.test_loghang import StuckPipe

        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off")),
                               lineB)
        stuck = StuckPipe(self)
        self.addCleanup(stuck.close)
        service.lines["a"].logs[0]._osWrite = stuck.write  # type: ignore[attr-defined]
        a.write(b"held\n")
        await stuck.whenEntered()
        reloaded = service.reload([ptyLine(a, LISTEN, name="a"), lineB])
        await self.bothFlow(service, a, b, stuck, before=b"held\n")
        self.assertNoResult(reloaded)
        stuck.release()
        self.assertEqual(await reloaded, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(service.lines["a"].logs, [])
        self.assertEqual(self.said(), [])

    async def test_failedLaterTriedAgain(self) -> None:
        """A reload's log and file: output whose opens fail once the reload is done (its checks passed): each said, naming it, the line running without it; a reload of the same configuration opens them again."""
        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), lineB)
        out = self.path + ".out"
        real = os.open
        refusing = [True]

        def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if refusing[0] and path in (self.path, out) and flags & os.O_CREAT:
                raise PermissionError(13, "Permission denied", path)
            return real(path, flags, *args, **kwargs)

        self.patch(os, "open", refuse)
        wanted = ptyLine(a, LISTEN, f"file:{out}", name="a", log=LogSpec(self.path, format="", events="off"))
        changed = {"added": [], "changed": ["a"], "removed": []}
        self.assertEqual(await service.reload([wanted, lineB]), changed)
        await until(self, lambda: len(self.said()) == 2, "both failures said")
        self.assertEqual(sorted(self.said()), [
            f"a: cannot open listener file:{out}: Permission denied; the line runs without it",
            f"a: cannot open log {self.path}: Permission denied; the line runs without it"])
        line = service.lines["a"]
        self.assertEqual((line.logs, [c for c in line.clients if isinstance(c, FileClient)]), ([], []))
        refusing[0] = False
        self.assertEqual(await service.reload([wanted, lineB]), changed)
        output = next(c for c in line.clients if isinstance(c, FileClient))
        await until(self, lambda: output._early is None and len(line.logs) == 1, "both opened")
        a.write(b"x\n")
        await until(self, lambda: os.path.exists(out) and os.path.getsize(out) == 2, "the output written")
        await written()
        with open(self.path, "rb") as f, open(out, "rb") as g:
            self.assertEqual((f.read(), g.read()), (b"x\n", b"x\n"))

    async def test_typedFailedLaterTriedAgain(self) -> None:
        """A reload's log whose LOG.typed alone fails to open once the reload is done: said, its log runs on; a reload of the same configuration opens LOG.typed again, and what is typed then is in it."""
        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), lineB)
        typed = self.path + ".typed"
        real = os.open
        refusing = [True]

        def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if refusing[0] and path == typed and flags & os.O_CREAT:
                raise PermissionError(13, "Permission denied", path)
            return real(path, flags, *args, **kwargs)

        self.patch(os, "open", refuse)
        wanted = ptyLine(a, LISTEN, name="a", log=LogSpec(self.path, format="", events="off", typed="text"))
        changed = {"added": [], "changed": ["a"], "removed": []}
        self.assertEqual(await service.reload([wanted, lineB]), changed)
        await until(self, lambda: len(self.said()) == 1, "the failure said")
        self.assertEqual(self.said(), [f"a: cannot open log {typed}: Permission denied; its log runs on without it: "
                                       "what is typed is not logged"])
        line = service.lines["a"]
        self.assertEqual([log.spec.typed for log in line.logs], ["text"])
        self.assertIsNone(line.logs[0]._typed)  # type: ignore[attr-defined]
        refusing[0] = False
        self.assertEqual(await service.reload([wanted, lineB]), changed)
        await until(self, lambda: len(line.logs) == 1 and line.logs[0]._typed is not None  # type: ignore[attr-defined]
                    and line.logs[0]._typed._fd >= 0, "LOG.typed opened")  # type: ignore[attr-defined]
        self.assertEqual(service.configs[0], wanted)
        onA = await self.clients.connect(listenerPort(service, 0))
        onA.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await a.received.length(5), b"typed")
        await until(self, lambda: os.path.exists(typed) and os.path.getsize(typed) > 0, "LOG.typed written")
        await written()
        with open(typed, "rb") as f:
            self.assertTrue(f.read().endswith(b": typed\n"))
        self.assertEqual(len(self.said()), 1)
