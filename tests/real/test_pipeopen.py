"""
A C{pipe:} listener whose FIFO's open does not return (a FIFO on a
hard-mounted NFS server gone), or a C{pty:} listener whose link's making
does not, at the start or at a reload adding it: the real reactor, a pty
pair as each line's device, real TCP clients on loopback, and os.open (or
os.lstat) made to wait for that one path until the test lets it go.  Both
lines serve meanwhile; once the call returns the pipe carries bytes, the
link leads to the listener's pty.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.logger import LogEvent, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app import reloadlooks
from serialgw.clients import logfile
from tests.fakes import observeLog
from tests.hung import Held
from tests.real import test_logopen
from tests.realio import Clients, ptyLine, startedPty, startGateway

LISTEN = "raw+tcp:0:interface=127.0.0.1"


class HungAfter(Held):
    """os.NAME of C{path} waits, from its C{skip}+1th call on, until L{release} (the reload's look opens it first)."""

    def __init__(self, case: TestCase, path: str, skip: int = 0, name: str = "open") -> None:
        super().__init__(case, f"os.{name} of {path}")
        self.path = path
        self.skip = skip
        self.real = getattr(os, name)
        case.patch(os, name, self.call)

    def call(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == self.path:
            if self.skip > 0:
                self.skip -= 1
            else:
                self.hold()
        return self.real(path, *args, **kwargs)


class HungTests(TestCase):
    """What the tests of a pipe: and of a pty: share."""

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



class HungPipeTests(HungTests):
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
        # (The wait for it ended at its bound, whether or not its thread had got to the call by then.)
        await hung.whenEntered()
        self.assertEqual(self.said(), [f"line a: listener pipe:{self.fifo}: its open has not returned in 0.2 s (a "
                                       "file system that does not answer?); the line runs, its pipe joins it once "
                                       "the open returns"])
        await self.bothFlow(service, a, b, hung)
        hung.release()
        await self.pipeCarries(a)

    async def test_reloadWithHungPipe(self) -> None:
        """A reload adding a pipe: whose FIFO's open hangs (its look passed): the reload is done, both lines serve; once the open returns the pipe carries bytes to the device."""
        self.patch(reloadlooks, "CHECK_WAIT", 5.0)
        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), lineB)
        hung = HungAfter(self, self.fifo, skip=1)
        result = await service.reload([ptyLine(a, LISTEN, f"pipe:{self.fifo}", name="a"), lineB])
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await hung.whenEntered()
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


class HungPtyLinkTests(HungTests):
    def setUp(self) -> None:
        HungTests.setUp(self)
        os.unlink(self.fifo)
        self.link = self.fifo  # (said() looks for it)

    def ptyOf(self, service: Any) -> Any:
        from serialgw.clients.ptylink import PtyClient

        return next(c for c in service.lines["a"].clients if isinstance(c, PtyClient))

    async def test_startWithHungLink(self) -> None:
        """A pty: whose link's making hangs at the start (lstat of a directory that does not answer): the start waits START_WAIT s at most, says so naming it; both lines serve; once it returns the link leads to the listener's pty."""
        self.patch(logfile, "START_WAIT", 0.2)
        hung = HungAfter(self, self.link, name="lstat")
        a, b = startedPty(self), startedPty(self)
        service = startGateway(self, ptyLine(a, LISTEN, f"pty:{self.link}", name="a"), ptyLine(b, LISTEN, name="b"))
        # (The wait for it ended at its bound, whether or not its thread had got to the call by then.)
        await hung.whenEntered()
        pty = self.ptyOf(service)
        self.assertEqual(self.said(), [f"line a: listener pty:{self.link}: its open has not returned in 0.2 s (a "
                                       "file system that does not answer?); the line runs, its pty is "
                                       f"{pty.slaveName}, its link made once that returns"])
        await self.bothFlow(service, a, b, hung)
        hung.release()
        self.assertIsNone(await pty.whenLinked())
        self.assertEqual(os.readlink(self.link), pty.slaveName)

    async def test_reloadWithHungLink(self) -> None:
        """A reload adding a pty: whose link's making hangs (its look passed): the reload is done, both lines serve; once it returns the link leads to the listener's pty."""
        a, b = startedPty(self), startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, ptyLine(a, LISTEN, name="a"), lineB)
        hung = HungAfter(self, self.link, skip=1, name="lstat")
        result = await service.reload([ptyLine(a, LISTEN, f"pty:{self.link}", name="a"), lineB])
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        hung.release()
        pty = self.ptyOf(service)
        self.assertIsNone(await pty.whenLinked())
        self.assertEqual(os.readlink(self.link), pty.slaveName)
        self.assertEqual(self.said(), [])

    async def test_failedLaterSaidAndTriedAgain(self) -> None:
        """A pty: whose link cannot be made once its line runs (a file put at its path while the start stopped waiting): said naming it, the listener leaves the line; a reload of the same configuration, the file gone, makes it again."""
        from tests.realio import until

        self.patch(logfile, "START_WAIT", 0.2)
        hung = HungAfter(self, self.link, name="lstat")
        a, b = startedPty(self), startedPty(self)
        lineA, lineB = ptyLine(a, LISTEN, f"pty:{self.link}", name="a"), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        with open(self.link, "w"):
            pass
        hung.release()
        await until(self, lambda: len(self.said()) == 2, "the failure said")
        self.assertEqual(self.said()[1], f"a: cannot open listener pty:{self.link}: exists and is not a symlink; the "
                                         "line runs without it")
        self.assertEqual(service.configs[0].listeners, lineA.listeners[:1])
        os.unlink(self.link)
        self.assertEqual(await service.reload([lineA, lineB]), {"added": [], "changed": ["a"], "removed": []})
        pty = self.ptyOf(service)
        self.assertIsNone(await pty.whenLinked())
        self.assertEqual(os.readlink(self.link), pty.slaveName)

    async def test_reloadRestoringAHungLink(self) -> None:
        """A reload's look at a pty: listener's link (made again if removed) that hangs (readlink): the reload answers after RESTORE_WAIT s, saying so, both lines serving meanwhile; once it returns the link is made again, said."""
        from serialgw.app import retuning
        from tests.realio import until

        self.patch(retuning, "RESTORE_WAIT", 0.5)
        a, b = startedPty(self), startedPty(self)
        lineA, lineB = ptyLine(a, LISTEN, f"pty:{self.link}", name="a"), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        pty = self.ptyOf(service)
        os.unlink(self.link)
        hung = HungAfter(self, self.link, name="readlink")
        reloaded = service.reload([lineA, lineB])
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        self.assertEqual(await reloaded, {"added": [], "changed": [], "removed": []})
        warned = [formatEvent(e) for e in self.events if "look at the ptys' links" in e.get("log_format", "")]
        self.assertEqual(warned, ["reload: the look at the ptys' links has not returned in 0.5 s (a file system that "
                                  "does not answer?); what it finds is said when it returns"])
        hung.release()
        await until(self, lambda: len(self.said()) == 1, "the link made again, said")
        self.assertEqual(self.said(), [f"a: pty:{self.link}: its link {self.link!r} was gone: made again"])
        self.assertEqual(os.readlink(self.link), pty.slaveName)


    async def test_laterReloadWinsOverAHungLook(self) -> None:
        """A reload's look at the ptys' links hangs (readlink of a pty: listener's link); a later reload removes a line on a pty: device and adds one with a pty: listener: once the look returns, the removed line's link is not made again (it would lead to a closed pty, whose number another program's may take), and the later reload's ptys are looked at (the added one's removed link made again), said."""
        from serialgw.app import retuning
        from serialgw.config.listeners import parseListener
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import until

        self.patch(retuning, "RESTORE_WAIT", 0.2)
        a, b, d = startedPty(self), startedPty(self), startedPty(self)
        other, third = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        lineA, lineB = ptyLine(a, LISTEN, f"pty:{self.link}", name="a"), ptyLine(b, LISTEN, name="b")
        lineC = LineConfig("c", DeviceSpec("pty", other), listeners=(parseListener(LISTEN),))
        lineD = ptyLine(d, LISTEN, f"pty:{third}", name="d")
        service = startGateway(self, lineA, lineB, lineC, waitForDevices=True)
        await until(self, lambda: service.lines["c"].device.up, "line c up")
        pty = self.ptyOf(service)
        self.assertIsNone(await pty.whenLinked())
        os.unlink(self.link)
        hung = HungAfter(self, self.link, name="readlink")
        self.assertEqual(await service.reload([lineA, lineB, lineC]), {"added": [], "changed": [], "removed": []})
        # (The wait for it ended at its bound, whether or not its thread had got to the call by then.)
        await hung.whenEntered()
        self.assertEqual(await service.reload([lineA, lineB, lineD]), {"added": ["d"], "changed": [], "removed": ["c"]})
        self.assertFalse(os.path.lexists(other))
        warned = [formatEvent(e) for e in self.events if "look at the ptys' links" in e.get("log_format", "")]
        self.assertEqual(warned[1:], ["reload: the look at the ptys' links begun by an earlier reload has not "
                                      "returned (a file system that does not answer?); this reload's is made by it "
                                      "once it does"])
        ptyD: Any = next(c for c in service.lines["d"].clients if hasattr(c, "restoreLink"))
        self.assertIsNone(await ptyD.whenLinked())
        os.unlink(third)
        hung.release()

        def made() -> list[str]:
            return [formatEvent(e) for e in self.events if "made again" in formatEvent(e)]

        await until(self, lambda: len(made()) == 2, "the links made again, said")
        self.assertEqual(made(), [f"a: pty:{self.link}: its link {self.link!r} was gone: made again",
                                  f"d: pty:{third}: its link {third!r} was gone: made again"])
        self.assertEqual((os.readlink(self.link), os.readlink(third)), (pty.slaveName, ptyD.slaveName))
        self.assertFalse(os.path.lexists(other))


class HungPtyDeviceTests(HungTests):
    def setUp(self) -> None:
        HungTests.setUp(self)
        os.unlink(self.fifo)
        self.link = self.fifo  # (said() looks for it)

    async def otherFlows(self, service: Any, b: Any, hung: Any, index: int = 1) -> None:
        """Line b's client (of the gateway's listener C{index}) and device exchange their bytes, the link still hung."""
        from tests.realio import listenerPort

        onB = await self.clients.connect(listenerPort(service, index))
        onB.transport.write(b"to b")  # type: ignore[union-attr]
        self.assertEqual(await b.received.length(4), b"to b")
        b.write(b"from b")
        self.assertEqual(await onB.received.length(6), b"from b")
        self.assertFalse(hung.released.is_set())

    async def test_startWithHungDeviceLink(self) -> None:
        """A pty: device whose link's making hangs at the start (its directory does not answer): the start waits START_WAIT s at most, the line starts down; the other line serves; once it returns the line is up, its link leads to its pty."""
        from serialgw.config.listeners import parseListener
        from serialgw.config.specs import DeviceSpec, LineConfig
        from serialgw.devices import reopenpool
        from tests.realio import until

        self.patch(reopenpool, "START_WAIT", 0.2)
        hung = HungAfter(self, self.link, name="lstat")
        b = startedPty(self)
        lineA = LineConfig("a", DeviceSpec("pty", self.link), listeners=(parseListener(LISTEN),))
        service = startGateway(self, lineA, ptyLine(b, LISTEN, name="b"), waitForDevices=True)
        # (The wait for it ended at its bound, whether or not its thread had got to the call by then.)
        await hung.whenEntered()
        self.assertFalse(service.lines["a"].device.up)
        await self.otherFlows(service, b, hung)
        hung.release()
        await until(self, lambda: service.lines["a"].device.up, "line a up")
        self.assertEqual(os.readlink(self.link), service.lines["a"].device.port.slaveName)  # type: ignore[attr-defined]

    async def test_reloadWithHungDeviceLink(self) -> None:
        """A reload adding a line on a pty: device whose link's making hangs (its look passed): the reload is done, the other line serves; once it returns the line is up, its link leads to its pty."""
        from serialgw.config.listeners import parseListener
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import until

        b = startedPty(self)
        lineB = ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineB, waitForDevices=True)
        hung = HungAfter(self, self.link, name="lstat")
        lineA = LineConfig("a", DeviceSpec("pty", self.link), listeners=(parseListener(LISTEN),))
        result = await service.reload([lineB, lineA])
        self.assertEqual(result, {"added": ["a"], "changed": [], "removed": []})
        await hung.whenEntered()
        await self.otherFlows(service, b, hung, 0)
        hung.release()
        await until(self, lambda: service.lines["a"].device.up, "line a up")
        self.assertEqual(os.readlink(self.link), service.lines["a"].device.port.slaveName)  # type: ignore[attr-defined]
