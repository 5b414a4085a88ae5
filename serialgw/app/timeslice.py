"""
The reactor thread's time slice under Linux's EEVDF scheduler (6.12 and
later).  A fair (SCHED_OTHER) thread may ask for a slice of its own
(C{sched_setattr}'s C{sched_runtime}, 0.1 to 100 ms; no privilege
needed), where the default is 0.75 ms times 1 + log2 of the CPUs (1.4 ms
on 2 vCPUs).  A thread's deadline is its virtual run time plus its slice,
and a woken thread with an earlier deadline than the running one's
preempts it: a short slice has the reactor run sooner when a keystroke
wakes it beside busy threads (a neighbour's flood, other processes).  Its
share of the CPU is its weight's (its niceness), unchanged: it runs more
often, for less long each time.

Asked with C{SCHED_FLAG_RESET_ON_FORK}, so that threads and processes
started later (a flooding tty's mover, Twisted's thread pool) keep the
default slice.  Kernels before 6.12 take the call and ignore the slice.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from typing import Optional

# struct sched_attr, its first version (56 bytes), and the system calls' numbers.
_ATTR = "=IIQiIQQQII"
_SETATTR = {"x86_64": 314, "aarch64": 274, "riscv64": 274, "ppc64le": 355, "s390x": 345}
_RESET_ON_FORK = 0x01


def setSlice(seconds: float) -> Optional[str]:
    """
    Give the calling thread a slice of C{seconds} (clamped by the kernel to
    0.1-100 ms), its policy (SCHED_OTHER or SCHED_BATCH: a real-time one is
    left alone) and niceness kept.  None once done; what went wrong
    otherwise (no such call on this machine, the kernel's refusal).
    """
    number = _SETATTR.get(platform.machine())
    if number is None:
        return f"no sched_setattr known on {platform.machine()}"
    try:
        # (With SCHED_RESET_ON_FORK's bit once asked before.)
        policy = os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0x40000000)
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as e:
        return str(e)
    if policy not in (os.SCHED_OTHER, os.SCHED_BATCH):
        return f"its scheduling policy ({policy}) is not a fair one: left as it is"
    attr = ctypes.create_string_buffer(struct.pack(
        _ATTR, struct.calcsize(_ATTR), policy, _RESET_ON_FORK, nice, 0, int(seconds * 1e9), 0, 0, 0, 0))
    if libc.syscall(number, 0, attr, 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None
