"""
A line's first device open off the reactor thread: a reload adding a line
whose open hangs (a hung USB adapter, a tty waiting for carrier) leaves
every other line served, and a start waits for it a few seconds only; the
line is down ("opening the device") until the open returns.  On the real reactor and threads (the hang is real), and
on a memory reactor with opens in line (what the other tests rely on).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.service import GatewayService
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices.errors import DeviceError
from serialgw.devices.ports import openPort
from serialgw.devices.reopen import OPENING
from serialgw.interfaces import IPort
from tests.fakes import RecordingPort
from tests.realio import EventCounter, closeClients, connect, listenerPort, ptyLine, startedPty, startGateway, until

# How long the hung open waits for the test to let it return: without the
# fix it blocks the reactor that long, and the test sees it did.  Well
# under the tests' timeout, well over what a loaded machine takes to get
# from the hang to the release.
HANG = 20.0


class SettlingPool:
    """
    A thread pool for the device opens (see DeviceOpens) whose each call
    returns once the call has returned or said it hangs (L{hangs}): which
    opens the start's wait sees returned does not depend on how soon a
    loaded machine runs their threads.
    """

    def __init__(self) -> None:
        self._settled = threading.Event()

    def hangs(self) -> None:
        """(On the open's thread.)  This open is about to hang: its caller goes on."""
        self._settled.set()

    def callInThreadWithCallback(self, onResult: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        settled = self._settled = threading.Event()

        def run() -> None:
            try:
                result, ok = f(*args, **kwargs), True
            except BaseException:
                result, ok = Failure(), False
            onResult(ok, result)
            settled.set()

        threading.Thread(target=run, daemon=True).start()
        settled.wait(HANG)


class ReloadFirstOpenTests(TestCase):
    timeout = 30

    async def test_opensAtOnceQuietly(self) -> None:
        """
        The common case, on real threads: a reload adding a line whose tty
        opens at once has it up a turn or so later, said once (as at start:
        no "device back", no "device up"), and carrying data.
        """
        here, far = startedPty(self), startedPty(self)
        kept = ptyLine(here, "raw+tcp:0:interface=127.0.0.1", name="here")
        service = startGateway(self, kept, waitForDevices=True)
        added = ptyLine(far, "raw+tcp:0:interface=127.0.0.1", name="added")
        opened = EventCounter(self, "line {line}: device {device} at {settings}")
        with capturedLogs() as events:
            self.assertEqual(await service.reload([kept, added]), {"added": ["added"], "changed": [], "removed": []})
            await opened.nth(1)
        self.assertTrue(service.lines["added"].up)
        texts = [formatEvent(e) for e in events]
        self.assertEqual([t for t in texts if "device" in t], [f"line added: device {far.slaveName} at 115200,8N1"])
        client = await connect(listenerPort(service, 1))
        client.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await far.received.length(5), b"typed")
        await closeClients(client)

    async def test_reloadAddingAHungLineServesTheOthers(self) -> None:
        """
        A reload adding a line whose device open blocks: the reload is done
        and the other line carries data both ways while the open hangs; the
        new line is down ("opening the device", told to a client who comes,
        whose typing is held for it) and comes up, carrying data, once the
        open returns.
        """
        here, far = startedPty(self), startedPty(self)
        hungPath = os.path.abspath(self.mktemp())
        release = threading.Event()
        self.addCleanup(release.set)
        began: defer.Deferred[None] = defer.Deferred()
        returnedInTime: list[bool] = []

        def fakeOpen(spec: DeviceSpec, settings: Any, lockDir: Any, again: bool = False) -> IPort:
            if spec.path != hungPath:
                return openPort(spec, settings, lockDir, again)
            reactor.callFromThread(began.callback, None)  # type: ignore[attr-defined]
            returnedInTime.append(release.wait(HANG))
            return openPort(DeviceSpec("tty", far.slaveName), settings, None)

        kept = ptyLine(here, "raw+tcp:0:interface=127.0.0.1", name="here")
        service = startGateway(self, kept, waitForDevices=True, openPort=fakeOpen)
        hung = ptyLine(hungPath, "telnet+tcp:0:interface=127.0.0.1", name="hung")
        opened = EventCounter(self, "line {line}: device {device} at {settings}")
        reloaded = service.reload([kept, hung])
        await began
        # The open hangs on its thread; the reactor serves everything else.
        client = await connect(listenerPort(service, 0))
        client.transport.write(b"served")  # type: ignore[union-attr]
        self.assertEqual(await here.received.length(6), b"served")
        here.write(b"back")
        await client.received.contains(b"back")
        self.assertEqual(await reloaded, {"added": ["hung"], "changed": [], "removed": []})
        line = service.lines["hung"]
        self.assertEqual((line.up, line.device.downReason, opened.events), (False, OPENING, []))  # type: ignore[attr-defined]
        person = await connect(listenerPort(service, 1))
        await person.received.contains(b"[serialgw: hung is down: opening the device; waiting for it]")
        # Typed while it opens: held for it (not dropped as for a device that is down).
        person.transport.write(b"early ")  # type: ignore[union-attr]
        await until(self, lambda: line.device.queuedBytes() >= 6, "the 6 bytes typed to be queued for the opening device")

        release.set()
        event = await opened.nth(1)
        self.assertEqual((event["line"], returnedInTime), ("hung", [True]))
        await person.received.contains(b"[serialgw: hung is back]\r\n")
        self.assertEqual((line.up, line.device.downReason), (True, None))  # type: ignore[attr-defined]
        person.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await far.received.length(11), b"early typed")
        self.assertEqual(line.device.dropped, 0)
        await closeClients(client, person)


class StartHungOpenTests(TestCase):
    timeout = 30

    async def test_startWithAHungLine(self) -> None:
        """
        A gateway started (waiting for devices) with a line whose open
        blocks: the start waits START_WAIT s at most, the line that opens is
        up when startService returns (opened before privileges would drop),
        the hung one starts down ("opening the device", so in STATUS=, said
        once) while the other serves, and comes up when its open returns.
        """
        from serialgw.devices import reopenpool

        self.patch(reopenpool, "START_WAIT", 1.0)
        pool = SettlingPool()
        self.patch(reopenpool.deviceOpens, "_pool", pool)
        here, far = startedPty(self), startedPty(self)
        hungPath = os.path.abspath(self.mktemp())
        release = threading.Event()
        self.addCleanup(release.set)
        returnedInTime: list[bool] = []

        def fakeOpen(spec: DeviceSpec, settings: Any, lockDir: Any, again: bool = False) -> IPort:
            if spec.path != hungPath:
                return openPort(spec, settings, lockDir, again)
            pool.hangs()
            returnedInTime.append(release.wait(HANG))
            return openPort(DeviceSpec("tty", far.slaveName), settings, None)

        kept = ptyLine(here, "raw+tcp:0:interface=127.0.0.1", name="here")
        hung = ptyLine(hungPath, "telnet+tcp:0:interface=127.0.0.1", name="hung")
        opened = EventCounter(self, "line {line}: device {device} at {settings}")
        with capturedLogs() as events:
            service = startGateway(self, kept, hung, waitForDevices=True, openPort=fakeOpen)
        line = service.lines["hung"]
        self.assertEqual((service.lines["here"].up, line.up, line.device.downReason, service.statusText()),  # type: ignore[attr-defined]
                         (True, False, OPENING, "2 line(s), 1 up, 0 down, 1 opening (hung); 0 client(s)"))
        texts = [formatEvent(e) for e in events]
        self.assertEqual([t for t in texts if "hung" in t and "listener" not in t and "connect" not in t],
                         [f"line hung: opening the device {hungPath} has not returned in 1 s; the line starts down and comes up "
                          "when it does"])
        client = await connect(listenerPort(service, 0))
        client.transport.write(b"served")  # type: ignore[union-attr]
        self.assertEqual(await here.received.length(6), b"served")
        person = await connect(listenerPort(service, 1))
        await person.received.contains(b"[serialgw: hung is down: opening the device; waiting for it]")

        release.set()
        event = await opened.nth(2)
        self.assertEqual((event["line"], returnedInTime), ("hung", [True]))
        await person.received.contains(b"[serialgw: hung is back]\r\n")
        self.assertEqual(service.statusText(), "2 line(s), 2 up, 0 down; 2 client(s)")
        person.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await far.received.length(5), b"typed")
        await closeClients(client, person)

    async def test_hungOpenFailsAStartThatDoesNotWait(self) -> None:
        """
        Without waiting for devices, a line whose open has not returned in
        START_WAIT s fails the start as a device that cannot open does,
        naming it; what the other lines' opens made is closed, and what the
        hung one opens later too.
        """
        from serialgw.app.binding import StartupError
        from serialgw.devices import reopenpool

        self.patch(reopenpool, "START_WAIT", 1.0)
        pool = SettlingPool()
        self.patch(reopenpool.deviceOpens, "_pool", pool)
        hungPath, otherPath = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        release = threading.Event()
        self.addCleanup(release.set)
        ports: dict[str, RecordingPort] = {}
        lateClosed: defer.Deferred[None] = defer.Deferred()

        def fakeOpen(spec: DeviceSpec, settings: Any, lockDir: Any, again: bool = False) -> IPort:
            port = ports[spec.path] = RecordingPort(reactor)
            if spec.path == hungPath:
                pool.hangs()
                release.wait(HANG)
                close = port.close

                def closing() -> None:
                    close()
                    lateClosed.callback(None)

                port.close = closing  # type: ignore[method-assign]
            return port

        service = GatewayService([LineConfig("hung", DeviceSpec("tty", hungPath)),
                                  LineConfig("other", DeviceSpec("tty", otherPath))], openPort=fakeOpen)
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(error), f"line 'hung': cannot open device {hungPath!r}: the open has not returned in "
                                     "1 s (a hung adapter or driver?)")
        self.assertEqual((ports[hungPath].closed, ports[otherPath].closed, service.lines), (False, True, {}))
        release.set()
        await lateClosed


class FirstOpenInLineTests(SynchronousTestCase):
    """A reactor without threads (a test's memory reactor) opens in line: the line a reload adds is up at once, said as before."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.outcomes: dict[str, Exception] = {}
        # Each open's path and whether it was the reopener's (again).
        self.opens: list[tuple[str, bool]] = []

    def openPort(self, spec: DeviceSpec, settings: Any, lockDir: Any, again: bool = False) -> IPort:
        self.opens.append((spec.path, again))
        if spec.path in self.outcomes:
            raise self.outcomes[spec.path]
        port = RecordingPort(self.clock)
        port.name = spec.path
        return port

    def gateway(self) -> GatewayService:
        service = GatewayService([], reactor=self.clock, openPort=self.openPort, waitForDevices=True,
                                 reopenPolicy=lambda n: 1.0)
        service.startService()
        return service

    def test_upAtOnceAndSaidOnce(self) -> None:
        """The line a reload adds is up when the reload is done: its device logged once, as a line opened at start is, no "device back" nor "device up"."""
        service = self.gateway()
        with capturedLogs() as events:
            self.successResultOf(service.reload([LineConfig("a", DeviceSpec("tty", "/dev/ttyFAKE0"))]))
        self.assertEqual((service.lines["a"].up, self.opens), (True, [("/dev/ttyFAKE0", False)]))
        texts = [formatEvent(e) for e in events]
        self.assertEqual([t for t in texts if "device" in t],
                         ["line a: device /dev/ttyFAKE0 at 115200,8N1"])
        self.successResultOf(service.stopService())

    def test_failureSaidAsAtStart(self) -> None:
        """A device a reload cannot open: the line is added down, why said once as at start; tried again with the backoff; up when it opens."""
        service = self.gateway()
        self.outcomes["/dev/ttyFAKE0"] = DeviceError("cannot open device '/dev/ttyFAKE0': No such file or directory")
        with capturedLogs() as events:
            self.successResultOf(service.reload([LineConfig("a", DeviceSpec("tty", "/dev/ttyFAKE0"))]))
        line = service.lines["a"]
        self.assertEqual((line.up, line.device.downReason),  # type: ignore[attr-defined]
                         (False, "cannot open device '/dev/ttyFAKE0': No such file or directory"))
        texts = [formatEvent(e) for e in events]
        self.assertEqual([t for t in texts if "device" in t],
                         ["line a: cannot open device '/dev/ttyFAKE0': No such file or directory; the line starts "
                          "down and the device is tried again with backoff"])
        del self.outcomes["/dev/ttyFAKE0"]
        self.clock.advance(1.0)
        self.assertTrue(line.up)
        # The first open as at start; the next one the reopener's (a pty slave held as a terminal refused).
        self.assertEqual(self.opens, [("/dev/ttyFAKE0", False), ("/dev/ttyFAKE0", True)])
        self.successResultOf(service.stopService())


class LateFailureTests(SynchronousTestCase):
    """A first open that fails late is said once: not "starts down" again after the line was said to start down, nor twice after it was said stuck."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.config = LineConfig("late", DeviceSpec("tty", "/dev/ttyLATE0"))
        self.gone = DeviceError("cannot open device '/dev/ttyLATE0': No such file or directory")

    def texts(self, events: Any) -> list[str]:
        return [formatEvent(e) for e in events if "ttyLATE0" in formatEvent(e) or "late" in formatEvent(e)]

    def test_startOpenFailsLate(self) -> None:
        """An open begun at start that had not returned in START_WAIT s (the line said to start down) and then fails: why said once, not "starts down" again."""
        from serialgw.app.lines import makeDevice
        from serialgw.devices.reopenpool import FirstOpen

        begun = FirstOpen(self.clock.seconds())
        with capturedLogs() as events:
            device = makeDevice(self.config, self.clock, openPort, lambda n: 1.0, lambda n: 1.0, True, begun=begun)
            self.clock.advance(7.0)
            begun.deferred.errback(self.gone)
        self.assertEqual(self.texts(events), [
            "line late: opening the device /dev/ttyLATE0 has not returned in 5 s; the line starts down and comes up "
            "when it does",
            "line late: the open returned after 7 s: cannot open device '/dev/ttyLATE0': No such file or directory; "
            "the device is tried again with backoff"])
        self.assertEqual(sum("starts down" in text for text in self.texts(events)), 1)
        self.assertEqual(device.downReason, str(self.gone))
        device.close()

    def test_stuckThenFails(self) -> None:
        """A reload's first open said stuck after STUCK_AFTER s, then failing: its failure said once (it was said by the line and the reopener both)."""
        from serialgw.app.lines import makeDevice
        from serialgw.devices import reopen

        opening: defer.Deferred[IPort] = defer.Deferred()

        class Opens:
            inFlight: dict[str, float] = {}

            def busy(self, name: str) -> bool:
                return False

            def open(self, reactor: Any, name: str, opener: Any) -> defer.Deferred[IPort]:
                return opening

            def withdraw(self, d: Any) -> bool:
                return False

        self.patch(reopen, "deviceOpens", Opens())
        self.patch(reopen.IReactorThreads, "providedBy", lambda reactor: True)
        with capturedLogs() as events:
            device = makeDevice(self.config, self.clock, openPort, lambda n: 1.0, lambda n: 1.0, True, offThread=True)
            self.clock.advance(reopen.STUCK_AFTER)
            opening.errback(self.gone)
        texts = self.texts(events)
        self.assertEqual(len([t for t in texts if "No such file or directory" in t]), 1, texts)
        device.close()
