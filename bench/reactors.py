#!/usr/bin/env python3
"""
Which reactor override earns its keep (issue 14 §3): Twisted's epoll reactor
as it is, with only C{doPoll} overridden (no per-event logging context), and
with C{mainLoop} rewritten as well (runUntilCurrent skipped on turns with no
timed call due: what serialgw shipped before), plus the reactor serialgw
installs today (L{serialgw.app.reactor.GatewayReactor}).

    python3 bench/reactors.py            # both measurements, 5 rounds
    python3 bench/reactors.py --quick

Three measurements, variants alternating round by round:
  - in one process, a pipe ping-pong through the reactor (two readers
    bouncing one byte): CPU microseconds per round trip (2 turns), with no
    timed call pending and with one pending (a LoopingCall every 10 s, as a
    gateway has: idle timers, modem polling);
  - serialgw itself (twistd, the variant installed before twistd starts):
    1-byte round trip pty -> raw client -> pty, p50 and CPU per round trip,
    as bench/run.py's single-line figures.
Not part of the tests: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import errno
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from twisted.internet import task
from twisted.internet.epollreactor import EPollReactor
from twisted.python import log as legacyLog

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)

import run  # noqa: E402  (bench/run.py: servers and probes)

from serialgw.app.reactor import GatewayReactor  # noqa: E402


class DoPoll(EPollReactor):
    """Twisted's epoll reactor with doPoll dispatching without C{log.callWithLogger}."""

    def doPoll(self, timeout: Optional[float]) -> None:
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        dispatch = self._doReadOrWrite
        selectables = self._selectables
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except Exception:
                legacyLog.err(None, "event on a descriptor failed")

    doIteration = doPoll


class DoPollMainLoop(DoPoll):
    """Also a loop that runs runUntilCurrent only on turns with work for it (serialgw before issue 14)."""

    def mainLoop(self) -> None:
        seconds = self.seconds
        while self._started:
            pending = self._pendingTimedCalls
            if (
                self.threadCallQueue
                or self._newTimedCalls
                or self._justStopped
                or (pending and pending[0].time <= seconds())
            ):
                self.runUntilCurrent()
                timeout = self.timeout()
            elif pending:
                timeout = self.timeout()
            else:
                timeout = None
            self.doIteration(self.running and timeout)


VARIANTS: dict[str, type[EPollReactor]] = {
    "epoll": EPollReactor,
    "doPoll": DoPoll,
    "doPoll+mainLoop": DoPollMainLoop,
    "serialgw": GatewayReactor,
}


def install(name: str) -> None:
    """Install a variant as the global reactor (before twistd picks one)."""
    from twisted.internet.main import installReactor

    installReactor(VARIANTS[name]())


# --- in one process: a pipe ping-pong ----------------------------------------


class Bouncer:
    """Reads one byte from its pipe and writes it to the other; counts."""

    def __init__(self, reactor: Any, inFd: int, outFd: int, limit: int) -> None:
        self.reactor, self.inFd, self.outFd, self.limit = reactor, inFd, outFd, limit
        self.count = 0

    def fileno(self) -> int:
        return self.inFd

    def logPrefix(self) -> str:
        return "bouncer"

    def doRead(self) -> None:
        os.read(self.inFd, 1)
        self.count += 1
        if self.count >= self.limit:
            self.reactor.stop()
            return
        os.write(self.outFd, b"x")

    def connectionLost(self, reason: Any) -> None:
        pass


def pingPong(name: str, trips: int, timer: bool) -> float:
    """CPU microseconds per round trip through a fresh reactor of the variant (in a child process)."""
    code = (f"import sys; sys.path.insert(0, {BENCH!r}); import reactors; "
            f"print(reactors._pingPongHere({name!r}, {trips}, {timer}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(done.stdout)


def _pingPongHere(name: str, trips: int, timer: bool) -> float:
    reactor = VARIANTS[name]()
    a, b = os.pipe(), os.pipe()
    there = Bouncer(reactor, a[0], b[1], trips)
    back = Bouncer(reactor, b[0], a[1], trips + 1)
    reactor.addReader(there)
    reactor.addReader(back)
    if timer:
        ticker = task.LoopingCall(lambda: None)
        ticker.clock = reactor
        ticker.start(10, now=False)
    reactor.callWhenRunning(os.write, a[1], b"x")
    cpu0 = time.process_time()
    reactor.run(installSignalHandlers=False)
    return (time.process_time() - cpu0) / trips * 1e6


# --- serialgw itself ---------------------------------------------------------


def serialgwRoundTrips(name: str, rtts: int) -> dict[str, float]:
    pty = run.Pty()
    port = run.freePort()
    env = dict(os.environ, PYTHONPATH=REPO)
    code = (f"import sys; sys.path.insert(0, {BENCH!r}); import reactors; reactors.install({name!r}); "
            "from twisted.scripts.twistd import run; run()")
    # Its log in a directory of its own (never /dev/null: twistd rotates a log by renaming it).
    logdir = tempfile.mkdtemp(prefix="serialgw-bench-")
    argv = [sys.executable, "-c", code, "-n", "--pidfile=", "--logfile=" + os.path.join(logdir, "twistd.log"),
            "serialgw", "--device", pty.slave, "--no-lock", "--port", f"raw+tcp:{port}:interface=127.0.0.1"]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    try:
        run.waitListening(port)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        run.waitOpen([proc.pid], [pty.slave])
        time.sleep(0.2)
        run.roundTrips(pty, sock, 100)  # warm up
        cpu0 = run.cpuPreciseSeconds(proc.pid)
        times = sorted(run.roundTrips(pty, sock, rtts))
        cpu = (run.cpuPreciseSeconds(proc.pid) - cpu0) / rtts * 1e6
        sock.close()
    finally:
        proc.terminate()
        proc.wait(10)
        pty.close()
        shutil.rmtree(logdir, ignore_errors=True)
    return {"rtt_p50_us": statistics.median(times) * 1e6, "cpu_us_per_rtt": cpu}


def variantServer(name: str) -> type[run.Server]:
    """serialgw's farm (one --config file) under a variant, for bench/run.py's farm()."""

    class Variant(run.Server):
        def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
            config = os.path.join(self.dir, "farm.toml")
            with open(config, "w") as f:
                for i, (device, port) in enumerate(zip(devices, ports, strict=True)):
                    f.write(f'[lines.line{i}]\ndevice = "{device}"\nlisten = "raw+tcp:{port}:interface=127.0.0.1"\n'
                            "lock = false\n\n")
            code = (f"import sys; sys.path.insert(0, {BENCH!r}); import reactors; reactors.install({name!r}); "
                    "from twisted.scripts.twistd import run; run()")
            argv = [sys.executable, "-c", code, "-n", "--pidfile=", self.logfile(), "serialgw", "--config", config]
            self.proc = subprocess.Popen(argv, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.DEVNULL)
            run.waitListening(ports[-1])

    Variant.name = name
    return Variant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lines", type=int, default=512, help="lines of the farm echo (0: no farm)")
    args = parser.parse_args()
    rounds, trips, rtts = (3, 20000, 1000) if args.quick else (5, 50000, 3000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results: dict[str, dict[str, list[float]]] = {name: {} for name in VARIANTS}
    for round_ in range(rounds):
        print(f"round {round_ + 1}/{rounds} ...", flush=True)
        for name in VARIANTS:
            figures = results[name]
            figures.setdefault("pingpong_us", []).append(pingPong(name, trips, timer=False))
            figures.setdefault("pingpong_timer_us", []).append(pingPong(name, trips, timer=True))
            for key, value in serialgwRoundTrips(name, rtts).items():
                figures.setdefault(key, []).append(value)
            if args.lines:
                echo = run.farm(variantServer(name)(), args.lines, 3.0)
                figures.setdefault(f"echo_{args.lines}_msg_s", []).append(echo["echo_msgs_per_s"])
                figures.setdefault("echo_cpu_us_msg", []).append(echo["user_us_per_msg"] + echo["system_us_per_msg"])
    keys = list(results["epoll"])
    print(f"\n{'variant':18}" + "".join(f"{key:>24}" for key in keys) + "   (medians; ratio to epoll, range)")
    for name, figures in results.items():
        cells = []
        for key in keys:
            ratios = sorted(m / s for m, s in zip(figures[key], results["epoll"][key], strict=True))
            cells.append(f"{statistics.median(figures[key]):8.1f} {statistics.median(ratios):.2f}"
                         f" ({ratios[0]:.2f}-{ratios[-1]:.2f})")
        print(f"{name:18}" + "".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
