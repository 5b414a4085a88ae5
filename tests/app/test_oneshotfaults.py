"""
serialgw.app.oneshot's faults: a one-shot tty must never be left disarmed.
What fired is noted before anything can fail; a failing epoll_ctl leaves a
tty one-shot rather than forgotten; a safety net, while anything is
one-shot, finds in the kernel's own view a tty left disarmed and arms it
again.  Real epoll and pipes, as tests.app.test_oneshot.
"""

from __future__ import annotations

import errno
import os

from twisted.trial.unittest import SkipTest

from serialgw.app.oneshot import ARMED, SAFETY_NET
from tests.app.test_oneshot import OneShotCase, Socketish


class InlineFaultTests(OneShotCase):
    """Armed again in the reactor's thread."""

    def test_escapingBackToLevelKeepsWhatFired(self) -> None:
        """
        A turn that an exception escapes while it puts a quiet one-shot tty
        back to level-triggered still arms again the flood its poll handed
        over (disarmed by the kernel): it is read at later turns.
        """
        flood, _ = self.disarmedFlood()
        quiet, _ = self.pipe("quiet")
        hooked = self.hook()
        if self.threaded:
            self.reactor._makeOneShot(quiet.fd)  # (checked at the poll that hands the flood over)
        else:
            # (Made one-shot as the flood is armed again: both checked at the turn's second poll.)
            hooked.after = lambda name, args: self.reactor._makeOneShot(quiet.fd) if args == (flood.fd, ARMED) else None
        hooked.raises = lambda name, args: ValueError("closed") if args == (quiet.fd, 1) else None
        self.assertRaises(ValueError, self.reactor.doPoll, 0)
        self.settle()
        hooked.raises = hooked.after = lambda name, args: None
        self.assertConsistent()
        turns = [self.turn() for _ in range(4)]
        self.assertGreaterEqual(sum("flood" in t for t in turns), 2, turns)

    def test_backToLevelFailingKeepsItOneShot(self) -> None:
        """
        A quiet one-shot tty that cannot be made level-triggered again
        (ENOMEM) stays one-shot and armed, not forgotten: when it has input
        it is read, and armed again after.
        """
        flood, _ = self.flood()
        self.turn()
        self.turn()
        quiet, w = self.pipe("quiet")
        self.reactor._makeOneShot(quiet.fd)
        hooked = self.hook()
        hooked.raises = lambda name, args: OSError(errno.ENOMEM, "no memory") if args == (quiet.fd, 1) else None
        self.reactor.doPoll(0)
        self.settle()
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        hooked.raises = lambda name, args: None
        self.assertConsistent()
        self.assertIn(quiet.fd, self.reactor._oneShot)
        os.write(w, b"ab")
        for _ in range(6):
            self.turn()
        self.assertEqual(b"".join(data for name, data in self.served if name == "quiet"), b"ab")

    def test_safetyNetArmsALostOne(self) -> None:
        """
        A flood disarmed with its record lost (a path missed) is never read
        again, until the safety net, a second later, finds a one-shot
        descriptor that nothing will arm again, says so, and arms it; the
        net touches nothing while the records are right.
        """
        flood, _ = self.flood()
        self.turn()
        self.turn()
        logged = self.warnings()
        for _ in range(3):
            self.turn()
            self.clock.advance(SAFETY_NET)
            self.reactor.runUntilCurrent()
            self.assertConsistent()
        self.assertEqual(logged, [])
        # The record lost: the kernel handed it over, disarmed, and the
        # reactor does not know (inline: it forgets it fired).
        if self.threaded:
            self.reactor._armed.clear()
            self.assertEqual(self.reactor._poller.poll(0, 10), [(flood.fd, 1)])
        else:
            self.reactor._fired.discard(flood.fd)
        served = len(self.served)
        for _ in range(3):
            self.reactor.doPoll(0)
        self.assertEqual(len(self.served), served)
        self.clock.advance(SAFETY_NET)
        self.reactor.runUntilCurrent()
        self.assertEqual([(e["log_format"], e["fd"]) for e in logged if "fd" in e],
                         [("one-shot descriptor {fd} had nothing to arm it again: armed again", flood.fd)])
        turns = [self.turn() for _ in range(4)]
        self.assertGreaterEqual(sum("flood" in t for t in turns), 2, turns)

    def test_safetyNetOnlyWhileOneShot(self) -> None:
        """The safety net is a timed call only while some descriptor is one-shot: an idle reactor is not woken."""
        _, w = self.pipe("flood", size=100)
        os.write(w, b"f" * 300)
        self.turn()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        for _ in range(3):
            self.turn()
        self.assertEqual([call.getTime() for call in self.reactor.getDelayedCalls()], [SAFETY_NET])
        for _ in range(4):
            self.turn()
        self.assertEqual(self.reactor._oneShot, set())
        self.clock.advance(SAFETY_NET)
        self.reactor.runUntilCurrent()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_failedArmingLeftToTheNet(self) -> None:
        """
        Arming a flood again failing (ENOMEM) leaves it one-shot and
        disarmed, said, not forgotten: the safety net arms it again.
        """
        if self.threaded:
            raise SkipTest("inline: the helper thread's arming is another path")
        flood, _ = self.disarmedFlood()
        hooked = self.hook()
        hooked.raises = lambda name, args: OSError(errno.ENOMEM, "no memory") if args == (flood.fd, ARMED) else None
        self.reactor.doPoll(0)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        hooked.raises = lambda name, args: None
        self.assertEqual(self.reactor._oneShot, {flood.fd})
        served = len(self.served)
        for _ in range(3):
            self.reactor.doPoll(0)
        self.assertEqual(len(self.served), served)
        self.clock.advance(SAFETY_NET)
        self.reactor.runUntilCurrent()
        self.assertIn("flood", self.turn())

    def test_keystrokeBeforeFloodArmedAgain(self) -> None:
        """
        A keystroke that comes while a flood is armed again (inline) is
        served before the flood in the poll that hands both back, though
        the kernel hands the flood over first.
        """
        if self.threaded:
            raise SkipTest("inline: the helper thread arms it outside the reactor's turns")
        flood, _ = self.disarmedFlood()
        quiet, w = self.pipe("quiet", Socketish)
        hooked = self.hook()
        hooked.after = lambda name, args: os.write(w, b"k") if args == (flood.fd, ARMED) else None
        before = len(self.served)
        self.reactor.doPoll(0)
        self.assertEqual([name for name, _ in self.served[before:]], ["quiet", "flood"])


class ThreadedFaultTests(InlineFaultTests):
    """Armed again by the helper thread."""

    threaded = True
