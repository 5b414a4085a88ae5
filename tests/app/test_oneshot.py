"""
serialgw.app.oneshot: a tty that stays ready polled with EPOLLONESHOT and
armed again after the next turn's other descriptors, in the reactor's
thread or a helper thread.  Real epoll, pipes and ptys; the kernel's own
view of each registration (/proc/self/fdinfo of the epoll descriptor) is
checked after every turn: a descriptor disarmed in the kernel is always
one the reactor will arm again, and one-shot in the kernel exactly when
the reactor thinks so.
"""

from __future__ import annotations

import errno
import os
import platform
import re
import threading
import tty
from typing import Any, Optional

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.usage import UsageError
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from serialgw.app import oneshot, tap
from serialgw.app.oneshot import (
    DEFAULT_SLICE,
    ONESHOT_ENV,
    READER_ENV,
    SLICE_ENV,
    OneShotReactor,
    ThreadedOneShotReactor,
    modeFromEnvironment,
    moversFromEnvironment,
    reactorFromEnvironment,
    sliceFromEnvironment,
)
from serialgw.app.reactor import GatewayReactor
from serialgw.config.specs import SerialSettings
from serialgw.devices.device import SerialDevice
from serialgw.devices.ports import TtyPort
from tests.fakes import CallObserver
from tests.reactors import closeReactor, ownReactor

ONESHOT = 1 << 30


def ownSlice() -> Optional[int]:
    """The calling thread's time slice (ns) as Linux's scheduler says it, or None where it does not."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/sched") as f:
            for line in f:
                if line.startswith("se.slice"):
                    return int(line.split(":")[1])
    except OSError:
        pass
    return None


def slicesOfTheirOwn() -> bool:
    """Whether this kernel gives a thread the slice it asks for (EEVDF's custom slices: Linux 6.12 and later)."""
    if platform.system() != "Linux":
        return False
    found = re.match(r"(\d+)\.(\d+)", platform.release())
    return found is not None and (int(found[1]), int(found[2])) >= (6, 12) and ownSlice() is not None
# epoll's flags that are not events (EPOLLET, EPOLLONESHOT, EPOLLWAKEUP, EPOLLEXCLUSIVE).
PRIVATE = (1 << 31) | (1 << 30) | (1 << 29) | (1 << 28)
LEVEL = 0x19  # EPOLLIN, and EPOLLERR | EPOLLHUP (always added by the kernel)


def kernelMasks(reactor: Any) -> dict[int, int]:
    """Each registered descriptor's event mask, as the kernel holds it."""
    with open(f"/proc/self/fdinfo/{reactor._poller.fileno()}") as f:
        return {int(fd): int(mask, 16) for fd, mask in re.findall(r"tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)", f.read())}


class Reader:
    """A read-only selectable taking C{size} bytes a turn (a full pipe stays ready, as a flooding tty)."""

    oneShotWhileReady = True

    def __init__(self, fd: int, name: str, served: list[tuple[str, bytes]], size: int = 1) -> None:
        self.fd, self.name, self.served, self.size = fd, name, served, size
        self.then: Optional[Any] = None  # called after a read (once)

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        self.served.append((self.name, os.read(self.fd, self.size)))
        then, self.then = self.then, None
        if then is not None:
            then()

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return self.name


class Socketish(Reader):
    """A selectable that does not ask for one-shot polling (a socket)."""

    oneShotWhileReady = False


class Interrupted:
    """The reactor's epoll, whose next poll fails (EINTR) once armed."""

    def __init__(self, poller: Any, error: int = errno.EINTR) -> None:
        self.poller, self.interrupt, self.error = poller, False, error

    def poll(self, timeout: float, most: int) -> Any:
        if self.interrupt:
            self.interrupt = False
            raise OSError(self.error, os.strerror(self.error))
        return self.poller.poll(timeout, most)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.poller, name)


class Hooked:
    """The reactor's epoll, calling C{after(name, args)} after each call of modify (raising what C{raises} says first)."""

    def __init__(self, poller: Any) -> None:
        self.poller = poller
        self.after: Any = lambda name, args: None
        self.raises: Any = lambda name, args: None

    def modify(self, fd: int, mask: int) -> None:
        error = self.raises("modify", (fd, mask))
        if error is not None:
            raise error
        self.poller.modify(fd, mask)
        self.after("modify", (fd, mask))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.poller, name)


class OneShotCase(SynchronousTestCase):
    """A one-shot reactor (inline, or threaded), its turns driven by the test, the kernel's view checked after each."""

    threaded = False

    def setUp(self) -> None:
        self.reactor = ThreadedOneShotReactor() if self.threaded else OneShotReactor()
        # (Timed calls, the safety net's, on this clock.)
        self.clock = Clock()
        self.reactor.seconds = self.clock.seconds  # type: ignore[method-assign]
        self.addCleanup(closeReactor, self.reactor)
        self.addCleanup(self.reactor.stopHelper)  # (before the close: last in, first out)
        self.served: list[tuple[str, bytes]] = []

    def pipe(self, name: str, kind: type[Reader] = Reader, size: int = 1) -> tuple[Reader, int]:
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        self.addCleanup(lambda: os.close(r) if r in self._open() else None)
        reader = kind(r, name, self.served, size)
        self.reactor.addReader(reader)
        return reader, w

    def _open(self) -> set[int]:
        return {int(fd) for fd in os.listdir("/proc/self/fd")}

    def settle(self) -> None:
        """Threaded: wait until the helper armed again what it was given (no sleeping: it says so)."""
        if self.threaded and self.reactor._work is not None:
            done = threading.Event()
            self.reactor.helperStep(done.set)
            self.assertTrue(done.wait(10))

    def turn(self, timeout: float = 0) -> list[str]:
        """One turn of the reactor; the names served in it; the invariants checked."""
        before = len(self.served)
        self.reactor.doPoll(timeout)
        self.settle()
        self.assertConsistent()
        return sorted(name for name, _ in self.served[before:])

    def assertConsistent(self) -> None:
        reactor = self.reactor
        masks = kernelMasks(reactor)
        self.assertEqual(set(masks), reactor._reads | reactor._writes)
        self.assertEqual({fd for fd, mask in masks.items() if mask & ONESHOT}, reactor._oneShot)
        disarmed = {fd for fd, mask in masks.items() if not mask & ~PRIVATE}
        # Inline: the ones that fired this turn, armed again at the end of
        # the next; threaded: the helper armed them all (settled).
        self.assertEqual(disarmed, set() if self.threaded else reactor._fired)

    def flood(self, name: str = "flood", size: int = 1) -> tuple[Reader, int]:
        reader, w = self.pipe(name, size=size)
        os.write(w, b"f" * 1000)
        return reader, w

    def disarmedFlood(self) -> tuple[Reader, int]:
        """A flood one-shot and (inline) disarmed: it fired this turn."""
        flood, w = self.flood()
        self.turn()
        self.turn()
        self.turn()
        if not self.threaded:
            self.assertEqual(self.reactor._fired, {flood.fd})
        return flood, w

    def hook(self) -> Hooked:
        """The reactor's epoll hooked (L{Hooked}) for this test."""
        poller = self.reactor._poller
        hooked = Hooked(poller)
        self.reactor._poller = hooked
        self.addCleanup(setattr, self.reactor, "_poller", poller)
        return hooked

    def warnings(self) -> list[dict[str, Any]]:
        """The events logged from now on (for the rest of the test)."""
        events: list[dict[str, Any]] = []
        observer = CallObserver(events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return events

class InlineTests(OneShotCase):
    """Armed again in the reactor's thread, at the end of the turn after it fired."""

    def test_staysReadyBecomesOneShot(self) -> None:
        """A tty ready two turns running becomes one-shot; a socket that stays ready never does."""
        flood, _ = self.flood()
        sock, w = self.pipe("socket", Socketish)
        os.write(w, b"s" * 100)
        self.turn()
        self.assertEqual(kernelMasks(self.reactor)[flood.fd], LEVEL)
        self.turn()
        self.assertEqual(self.reactor._oneShot, {flood.fd})
        self.assertEqual(kernelMasks(self.reactor)[sock.fd], LEVEL)

    def test_floodEveryOtherTurnOthersEveryTurn(self) -> None:
        """
        A one-shot flood is served once a turn, polled after the others (inline:
        armed again after a first poll without it, then polled again), a ready
        socket at every poll.
        """
        self.flood()
        _, w = self.pipe("socket", Socketish)
        os.write(w, b"s" * 100)
        turns = [self.turn() for _ in range(8)]
        every = [["flood", "socket"]] * 8
        # (Inline: polled once more in the turn it becomes one-shot, then
        # in every turn, the socket at both polls.)
        inline = every[:1] + [["flood", "flood", "socket", "socket"]] + [["flood", "socket", "socket"]] * 6
        self.assertEqual(turns, every if self.threaded else inline)

    def test_twoFloodsBothKeepBeingRead(self) -> None:
        """Two one-shot floods firing in the same turns are both armed again, turn after turn: neither stalls."""
        self.flood("a")
        self.flood("b")
        turns = [self.turn() for _ in range(12)]
        for name in "ab":
            self.assertGreaterEqual(sum(name in t for t in turns), 6, turns)
        self.assertEqual(sum(name in t for t in turns[-4:] for name in "ab"), 8, turns)

    def test_floodStartingWhileAnotherIsDisarmed(self) -> None:
        """A second flood becoming one-shot in the turn the first is disarmed is armed again too."""
        a, _ = self.flood("a")
        self.turn()
        self.turn()
        b, w = self.pipe("b")
        os.write(w, b"f" * 1000)
        turns = [self.turn() for _ in range(10)]
        self.assertEqual(self.reactor._oneShot, {a.fd, b.fd})
        self.assertGreaterEqual(sum("b" in t for t in turns[-4:]), 2, turns)
        self.assertGreaterEqual(sum("a" in t for t in turns[-4:]), 2, turns)

    def test_redundantCallsWhileDisarmed(self) -> None:
        """startReading, stopWriting again while a flood is disarmed change nothing: it is armed again and read."""
        flood, _ = self.disarmedFlood()
        self.reactor.addReader(flood)
        self.reactor.removeWriter(flood)
        self.assertConsistent()
        turns = [self.turn() for _ in range(4)]
        self.assertEqual(self.reactor._oneShot, {flood.fd})
        self.assertGreaterEqual(sum("flood" in t for t in turns), 2, turns)

    def test_stopAndStartReadingWhileDisarmed(self) -> None:
        """A disarmed flood stopped and started again is level-triggered, forgotten, and read at the next turn."""
        flood, _ = self.disarmedFlood()
        self.reactor.removeReader(flood)
        self.reactor.addReader(flood)
        self.assertEqual(kernelMasks(self.reactor)[flood.fd], LEVEL)
        self.assertEqual((self.reactor._oneShot, self.reactor._fired, self.reactor._pending), (set(), set(), set()))
        self.assertIn("flood", self.turn())

    def test_writingWhileDisarmed(self) -> None:
        """A disarmed flood that starts writing is registered for both, level-triggered, and read at the next turn."""
        flood, _ = self.disarmedFlood()
        self.reactor.addWriter(flood)
        self.assertEqual(kernelMasks(self.reactor)[flood.fd], LEVEL | 0x4)  # EPOLLOUT too
        self.assertEqual(self.reactor._oneShot, set())
        self.reactor.removeWriter(flood)
        self.assertIn("flood", self.turn())

    def test_closedSelectableFoundByIdentity(self) -> None:
        """A disarmed flood whose fileno() is already -1 is removed by identity, as Twisted does: nothing left."""
        flood, _ = self.disarmedFlood()
        fd, flood.fd = flood.fd, -1
        self.reactor.removeReader(flood)
        self.assertNotIn(fd, kernelMasks(self.reactor))
        self.assertEqual((self.reactor._oneShot, self.reactor._fired, self.reactor._rearming), (set(), set(), set()))
        flood.fd = fd
        self.turn()
        self.turn()

    def test_sameNumberReusedMidFlood(self) -> None:
        """
        A flood closed in the turn it fired, and another file opened on the
        same number and read: the new one is level-triggered (never armed
        as the old one), and read.
        """
        flood, _ = self.flood()
        self.turn()
        self.turn()
        self.turn()  # (inline: fired here)
        other, w = self.pipe("other", Socketish)
        os.write(w, b"x")
        number = flood.fd
        replacement: list[Reader] = []

        def swap() -> None:
            self.reactor.removeReader(flood)
            r, w2 = os.pipe()
            self.addCleanup(os.close, w2)
            os.dup2(r, number)
            os.close(r)
            os.write(w2, b"new")
            replacement.append(Reader(number, "new", self.served))
            self.reactor.addReader(replacement[0])

        other.then = swap
        if not self.threaded:
            self.assertEqual(self.reactor._fired, {number})
        self.assertIn("other", self.turn())
        self.assertEqual(kernelMasks(self.reactor)[number], LEVEL)
        self.assertEqual(self.turn(), ["new"])
        # (Threaded, the old one's event of that turn went to the new one,
        # as Twisted hands an event to whatever has the number by then.)
        self.assertIn(b"".join(data for name, data in self.served if name == "new"), (b"n", b"ne"))

    def test_interruptedPollKeepsWhatFired(self) -> None:
        """A poll interrupted (EINTR) while a flood waits to be armed again loses nothing: it is armed and read later."""
        flood, _ = self.disarmedFlood()
        poller = self.reactor._poller
        interrupted = Interrupted(poller)
        self.reactor._poller = interrupted
        self.addCleanup(setattr, self.reactor, "_poller", poller)
        interrupted.interrupt = True
        self.assertEqual(self.turn(), [])
        turns = [self.turn() for _ in range(4)]
        self.assertGreaterEqual(sum("flood" in t for t in turns), 2, turns)

    def test_quietReturnsToLevel(self) -> None:
        """A one-shot tty that has nothing when armed again is level-triggered again, and then read at once."""
        flood, w = self.pipe("flood", size=100)
        os.write(w, b"f" * 300)
        for _ in range(6):
            self.turn()
        self.assertEqual(b"".join(data for _, data in self.served), b"f" * 300)
        self.turn()
        self.turn()
        self.assertEqual(self.reactor._oneShot, set())
        self.assertEqual(kernelMasks(self.reactor)[flood.fd], LEVEL)
        os.write(w, b"k")
        self.assertEqual(self.turn(), ["flood"])

    def test_failedPollKeepsWhatFired(self) -> None:
        """A poll failing otherwise (raised out of the turn) loses nothing either: armed and read at later turns."""
        flood, _ = self.disarmedFlood()
        poller = self.reactor._poller
        interrupted = Interrupted(poller, errno.EBADF)
        self.reactor._poller = interrupted
        self.addCleanup(setattr, self.reactor, "_poller", poller)
        interrupted.interrupt = True
        self.assertRaises(OSError, self.reactor.doPoll, 0)
        self.settle()
        self.assertConsistent()
        turns = [self.turn() for _ in range(4)]
        self.assertGreaterEqual(sum("flood" in t for t in turns), 2, turns)

    def test_escapingTurnArmsAgain(self) -> None:
        """A turn that an exception escapes (a KeyboardInterrupt landing while a connectionLost's failure is logged) still arms again what fired."""
        self.disarmedFlood()

        class Breaks(Socketish):
            def doRead(self) -> None:
                raise RuntimeError("read failed")

            def connectionLost(self, reason: Any) -> None:
                raise RuntimeError("and lost")

        def interrupted(*args: Any) -> None:
            raise KeyboardInterrupt()

        # (A KeyboardInterrupt out of the connectionLost itself no longer escapes: it stops the gateway.)
        self.patch(oneshot, "failed", interrupted)
        breaks, w = self.pipe("breaks", Breaks)
        os.write(w, b"x")
        self.assertRaises(KeyboardInterrupt, self.reactor.doPoll, 0)
        self.flushLoggedErrors(RuntimeError)
        self.settle()
        self.assertNotIn(breaks.fd, self.reactor._reads)  # (Twisted unregistered it before connectionLost)
        self.assertConsistent()
        turns = [self.turn() for _ in range(4)]
        self.assertGreaterEqual(sum("flood" in t for t in turns), 2, turns)

    def test_exactBytesThroughAPty(self) -> None:
        """
        A device on a real pty flooded (256 KiB) while a quiet pipe gets a
        byte every third turn: every byte of both arrives, in order, and the
        device was polled one-shot.
        """
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        tty.setraw(slave)
        name = os.ttyname(slave)
        got = bytearray()

        class Sink:
            def deviceDataReceived(self, data: bytes) -> None:
                got.extend(data)

            def __getattr__(self, name: str) -> Any:
                return lambda *args: None

        device = SerialDevice(TtyPort(name, SerialSettings()), self.reactor, 0.25, Sink())  # type: ignore[arg-type]
        os.close(slave)
        self.addCleanup(device.close)
        device.start()
        quiet, w = self.pipe("quiet", Socketish)
        os.set_blocking(master, False)
        sent = bytes(range(256)) * 1024
        view, oneShot, turns = memoryview(sent), 0, 0
        keys = bytes(range(65, 91)) * 4
        while (len(got) < len(sent) or len(self.served) < len(keys)) and turns < 10_000:
            turns += 1
            if view:
                try:
                    view = view[os.write(master, view[:4096]):]
                except BlockingIOError:
                    pass
            if turns % 3 == 0 and turns // 3 <= len(keys):
                os.write(w, keys[turns // 3 - 1:turns // 3])
            self.turn()
            oneShot += device.fileno() in self.reactor._oneShot
        self.assertEqual(bytes(got), sent)
        self.assertEqual(b"".join(data for _, data in self.served), keys)
        self.assertGreater(oneShot, 0)


class ThreadedTests(InlineTests):
    """Armed again by the helper thread."""

    threaded = True

    def test_helperSkipsWhatWasForgotten(self) -> None:
        """
        A flood handed to the helper, then unregistered and its number
        given to a new file before the helper gets to it: the helper leaves
        the new one alone (level-triggered).
        """
        flood, _ = self.flood()
        self.turn()
        self.turn()
        gate, reached = threading.Event(), threading.Event()

        def hold() -> None:
            reached.set()
            gate.wait(10)

        self.reactor.helperStep(hold)
        self.assertTrue(reached.wait(10))
        self.reactor.doPoll(0)  # fired and handed over, behind the held step
        number = flood.fd
        self.assertEqual(self.reactor._pending, {number})
        self.reactor.removeReader(flood)
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        os.dup2(r, number)
        os.close(r)
        self.reactor.addReader(Reader(number, "new", self.served))
        gate.set()
        self.settle()
        self.assertEqual(kernelMasks(self.reactor)[number], LEVEL)
        self.assertConsistent()


class ModeTests(SynchronousTestCase):
    def test_fromEnvironment(self) -> None:
        """SERIALGW_ONESHOT: unset or 0 is off, 1 inline, thread the helper; anything else a clear error."""
        self.assertEqual([modeFromEnvironment({ONESHOT_ENV: v} if v is not None else {})
                          for v in (None, "", "0", "1", "inline", "thread")],
                         [None, None, None, "inline", "inline", "thread"])
        error = self.assertRaises(ValueError, modeFromEnvironment, {ONESHOT_ENV: "yes please"})
        self.assertEqual(str(error), "SERIALGW_ONESHOT='yes please': expected 0 (off), 1 (inline) or thread")

    def test_reactorChosen(self) -> None:
        """The reactor installed is the plain one unless SERIALGW_ONESHOT asks for a one-shot one."""
        for environ, kind in (({}, GatewayReactor), ({ONESHOT_ENV: "1"}, OneShotReactor),
                              ({ONESHOT_ENV: "thread"}, ThreadedOneShotReactor)):
            reactor = ownReactor(self, reactorFromEnvironment(environ))
            self.assertIs(type(reactor), kind)

    def test_moversFromEnvironment(self) -> None:
        """SERIALGW_READER: unset or empty for a process (the default); 0, off or reactor for none; thread or process; anything else refused, naming it; the reactor is told."""
        self.assertEqual([moversFromEnvironment({READER_ENV: v} if v is not None else {})
                          for v in (None, "", "0", "off", "reactor", "thread", "Process")],
                         ["process", "process", None, None, None, "thread", "process"])
        error = self.assertRaises(ValueError, moversFromEnvironment, {READER_ENV: "fork"})
        self.assertEqual(str(error), "SERIALGW_READER='fork': expected process (the default), thread or reactor (none)")
        for environ, movers in (({}, "process"), ({READER_ENV: "reactor"}, None),
                                ({READER_ENV: "thread", ONESHOT_ENV: "1"}, "thread")):
            reactor = ownReactor(self, reactorFromEnvironment(environ))
            self.assertEqual(reactor.movers, movers)

    def test_sliceFromEnvironment(self) -> None:
        """SERIALGW_SLICE: unset is DEFAULT_SLICE, 0 the kernel's, 100-100000 microseconds; anything else refused, naming it."""
        self.assertEqual([sliceFromEnvironment({SLICE_ENV: v} if v is not None else {})
                          for v in (None, "", "0", "100", " 2500 ", "100000")],
                         [DEFAULT_SLICE, DEFAULT_SLICE, 0.0, 100e-6, 2500e-6, 0.1])
        for value in ("99", "100001", "-5", "1.5", "fast"):
            error = self.assertRaises(ValueError, sliceFromEnvironment, {SLICE_ENV: value})
            self.assertEqual(str(error), f"SERIALGW_SLICE={value!r}: expected microseconds, 100 to 100000 "
                                         "(0: the kernel's slice)")

    def test_reactorsOwnThreadOnceRunning(self) -> None:
        """
        Once the reactor runs, its thread (not the one that made it: twistd
        forks in between) has SERIALGW_SLICE's slice (100 us unset; 0: the
        kernel's).
        """
        seen = []

        def running(environ: dict[str, str]) -> None:
            reactor = reactorFromEnvironment(environ)
            made = ownSlice()
            reactor.callWhenRunning(reactor.stop)
            reactor.run(installSignalHandlers=False)
            closeReactor(reactor)
            seen.append((made, ownSlice()))

        for environ in ({SLICE_ENV: "0"}, {SLICE_ENV: "2500"}, {}):
            thread = threading.Thread(target=running, args=(environ,))
            thread.start()
            thread.join()
        kernels = seen[0][1]
        self.assertEqual([made for made, _ in seen], [kernels] * 3)
        if not slicesOfTheirOwn():
            raise SkipTest(f"Linux {platform.release()} takes no slice of a thread's own (6.12 and later do)")
        self.assertEqual([after for _, after in seen], [kernels, 2500000, 100000])

    def test_badReaderFailsTheStartSaid(self) -> None:
        """A SERIALGW_READER serialgw's reactor does not know fails the start as a configuration error naming it (no traceback)."""
        self.patch(tap, "installIfNoneChosen", lambda: reactorFromEnvironment({READER_ENV: "fork"}))
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        error = self.assertRaises(UsageError, options.parseOptions, ["--device", "/dev/ttyS0"])
        self.assertEqual(str(error), "SERIALGW_READER='fork': expected process (the default), thread or reactor (none)")

    def test_devicesAsk(self) -> None:
        """serialgw's devices (ttys) ask for one-shot polling while they stay ready."""
        self.assertIs(SerialDevice.oneShotWhileReady, True)

