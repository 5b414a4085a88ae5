"""
The machine the benchmark runs on, looked at from outside the servers:
pty pairs standing in for UARTs, free ports, a listener or an open device
waited for, a process's CPU and memory (/proc), kernel send queues (ss).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import tty


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pty:
    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave = os.ttyname(slave)
        self._slaveFd = slave  # held so the master never sees EIO

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slaveFd)


def waitListening(port: int, timeout: float = 30.0) -> None:
    """Wait for a TCP listener on the port, without connecting (socat serves one connection)."""
    deadline = time.monotonic() + timeout
    wanted = f":{port:04X} "
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            if any(wanted in line and line.split()[3] == "0A" for line in f):
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpuSeconds(pid: int, user: bool = True, system: bool = True) -> float:
    """CPU seconds of the process and all its threads (user, system or both)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) * user + int(fields[12]) * system) / os.sysconf("SC_CLK_TCK")


def cpuPreciseSeconds(pid: int) -> float:
    """CPU time of all the process's threads, from the scheduler's nanosecond counters."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def children(pid: int) -> list[int]:
    """The process's live children (of all its threads)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(child) for child in f.read().split()]
        except OSError:
            pass
    return out


def treeCpuSeconds(pid: int) -> float:
    """
    CPU time of the process, of its live descendants (serialgw's mover
    processes: serialgw.devices.floodread) from their nanosecond counters,
    and of the children it has collected (clock ticks).
    """
    total = cpuPreciseSeconds(pid)
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    for child in children(pid):
        total += treeCpuSeconds(child)
    return total


def rssKiB(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def kernelQueued(port: int) -> list[int]:
    """Bytes each server-side socket of the port has in its kernel send queue (ss: wmem_queued)."""
    try:
        out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [int(w) for w in re.findall(r"\bw(\d+)", out)]


def waitOpen(pids: list[int], devices: list[str], timeout: float = 30.0) -> None:
    """
    Wait until the processes hold every device open: serialgw opens its
    devices off the reactor thread after it listens, ser2net and socat when
    a client connects; a byte written before would be flushed at the open.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = set()
        for pid in pids:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
        if held.issuperset(devices):
            return
        time.sleep(0.02)
    raise RuntimeError(f"the server did not open {devices}")


def _inUse(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True
