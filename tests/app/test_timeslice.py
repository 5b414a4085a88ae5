"""
serialgw.app.timeslice: the reactor thread's own time slice (Linux 6.12
and later), and only its own.
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Callable, Optional

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from serialgw.app import timeslice
from tests.app.test_oneshot import ownSlice, slicesOfTheirOwn


def inThread(work: Callable[[], object]) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


class SliceTests(SynchronousTestCase):
    def test_ownSliceOnlyNotInheritedByThreads(self) -> None:
        """The thread asking gets the slice (clamped by the kernel), its niceness kept; a thread it starts has the kernel's default."""
        seen: dict[str, Optional[int] | Optional[str]] = {}

        def later() -> None:
            seen["later"] = ownSlice()

        def asking() -> None:
            seen["before"] = ownSlice()
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)
            seen["said"] = timeslice.setSlice(300e-6)
            seen["after"] = ownSlice()
            seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            inThread(later)
            seen["clamped"] = (timeslice.setSlice(1e-6), ownSlice())  # type: ignore[assignment]

        inThread(asking)
        if not slicesOfTheirOwn():
            raise SkipTest(f"Linux {platform.release()} takes no slice of a thread's own (6.12 and later do)")
        self.assertEqual((seen["said"], seen["after"], seen["nice"], seen["later"], seen["clamped"]),
                         (None, 300000, 5, seen["before"], (None, 100000)))

    def test_unknownMachineSaid(self) -> None:
        """Where the system call's number is not known, nothing is called and the reason is said."""
        self.patch(timeslice.platform, "machine", lambda: "pdp11")
        self.assertEqual(timeslice.setSlice(100e-6), "no sched_setattr known on pdp11")

    def test_realTimeLeftAlone(self) -> None:
        """A thread under a real-time policy (systemd's CPUSchedulingPolicy=fifo) is left as it is, said."""
        self.patch(timeslice.os, "sched_getscheduler", lambda pid: os.SCHED_FIFO)
        self.assertEqual(timeslice.setSlice(100e-6), f"its scheduling policy ({os.SCHED_FIFO}) is not a fair one: "
                                                     "left as it is")
