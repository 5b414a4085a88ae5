#!/usr/bin/env python3
"""
What the neighbour scenario costs, rather than its wall-clock latency
(issue 15, target 1): line A's device floods a raw client (bench/flood.py)
while line B does 1-byte round trips, as in `bench/run.py --only
neighbour`, and for each server it prints A's rate, the server's CPU
seconds per GiB relayed (user and system; with its mover processes'
own, serialgw.devices.floodread), the cores it used, the flooding
process's CPU per GiB and the server's context switches per MiB.  CPU per
GiB holds on a machine others load, where round-trip times do not.
serialgw (a TOML farm, with --args added) and ser2net tuned alternate,
round after round.

With --trace (root, perf): where the server waited during the flood,
from the scheduler's switches with kernel call chains: blocked in a pty's
poll or read (n_tty_poll, n_tty_read: the kernel's flush of the tty's
input, waiting for its worker), asleep in epoll, preempted (by whom: the
command name of the task switched to); and the two
halves of B's round trip from this process's own system calls (device ->
client, client -> device).

    python3 bench/neighbourcpu.py [--rounds 3] [--seconds 3] [--args "--busy-poll 0"] [--trace] [--no-ser2net] [--rate MIBPS]
                                  [--oneshot 0,1,thread] [--reader reactor,thread,process]
                                  [--env VAR=VALUE[,VAR=VALUE...]]...
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: the servers and the pty pairs)

MiB = 1 << 20
GiB = 1 << 30
ONESHOT_ENV = "SERIALGW_ONESHOT"  # (serialgw.app.oneshot)
READER_ENV = "SERIALGW_READER"  # (serialgw.app.oneshot; serialgw.devices.floodread)


def treeUserSystem(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of the process (all threads), its live descendants and the children it collected."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    user, system = (int(fields[11]) + int(fields[13])) / tick, (int(fields[12]) + int(fields[14])) / tick
    for child in run.children(pid):
        try:
            more = treeUserSystem(child)
        except OSError:
            continue
        user, system = user + more[0], system + more[1]
    return user, system


def procStat(pid: int) -> tuple[float, float, int, int]:
    """
    User and system CPU seconds (all threads, and serialgw's mover processes:
    treeUserSystem), the server's own voluntary and involuntary switches.
    """
    user, system = treeUserSystem(pid)
    switches: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name.endswith("ctxt_switches"):
                switches[name] = int(value)
    return (user, system,
            switches.get("voluntary_ctxt_switches", 0), switches.get("nonvoluntary_ctxt_switches", 0))


class SerialgwWithArgs(run.SerialgwNeighbour):
    def __init__(self, extra: list[str], environ: Optional[dict[str, str]] = None) -> None:
        super().__init__()
        self.extra = extra
        self.environ = environ or {}


# Where a switch away from the server's thread was made, by the kernel
# functions on its call chain (first match wins).
WAITS = (
    ("n_tty_poll", "blocked in a tty's poll (flushing its input)"),
    ("n_tty_read", "blocked in a tty's read"),
    ("__flush_work", "blocked flushing a tty's input"),
    ("do_epoll_wait", "asleep in epoll"),
    ("do_epoll_pwait", "asleep in epoll"),
    # (A thread of the server's holds a lock it wants: the GIL, a mover thread's.)
    ("futex_wait", "blocked on a lock (futex: the GIL)"),
    ("pipe_read", "blocked in a pipe's read (its lock)"),
)


def offCpu(script: str, pid: int) -> dict[str, list[float]]:
    """Seconds off the CPU by reason, from `perf script` of sched:sched_switch with call chains."""
    away: dict[int, tuple[float, str]] = {}
    waits: dict[str, list[float]] = defaultdict(list)
    for block in script.split("\n\n"):
        head, *chain = block.strip().split("\n")
        m = re.search(r"([\d.]+): sched:sched_switch: prev_comm=.*? prev_pid=(\d+) .*?prev_state=(\S+) "
                      r"==> next_comm=(.*?) next_pid=(\d+)", head)
        if not m:
            continue
        t, prev, state, nxt = float(m.group(1)), int(m.group(2)), m.group(3), int(m.group(5))
        if prev == pid:
            if state.startswith("R"):
                # (by whom: a kernel worker's name without its number)
                why = f"preempted (runnable) by {re.sub(r'[0-9:/.-]+', '', m.group(4)).strip() or m.group(4)}"
            else:
                syms = " ".join(chain)
                why = next((name for key, name in WAITS if key in syms), "blocked elsewhere")
            away[pid] = (t, why)
        if nxt == pid and pid in away:
            began, why = away.pop(pid)
            waits[why].append(t - began)
    return waits


def halves(script: str, me: int) -> tuple[list[float], list[float]]:
    """B's round trips from this process's system calls: device -> client and client -> device, seconds."""
    marks: list[tuple[float, str]] = []
    entering: dict[str, int] = {}
    for line in script.splitlines():
        m = re.match(r"\s*(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)", line)
        if not m or int(m.group(1)) != me:
            continue
        t, phase, call, rest = float(m.group(2)), m.group(3), m.group(4), m.group(5)
        if phase == "enter":
            size = re.search(r"(?:count|len|size): (0x[0-9a-f]+)", rest)
            entering[call] = int(size.group(1), 16) if size else -1
            if entering[call] == 1 and call in ("write", "sendto"):
                marks.append((t, call))
        elif rest.split()[:1] == ["0x1"] and entering.get(call) == 1 and call in ("recvfrom", "read"):
            marks.append((t, call))
    out: tuple[list[float], list[float]] = ([], [])
    for i in range(len(marks) - 3):
        if [c for _, c in marks[i:i + 4]] == ["write", "recvfrom", "sendto", "read"]:
            out[0].append(marks[i + 1][0] - marks[i][0])
            out[1].append(marks[i + 3][0] - marks[i + 2][0])
    return out


def once(server: run.Server, seconds: float, roundTrips: bool, trace: bool, rate: float = 0.0) -> dict[str, Any]:
    flooded, quiet = run.Pty(), run.Pty()
    ports = [run.freePort(), run.freePort()]
    server.start([flooded.slave, quiet.slave], ports)
    out: dict[str, Any] = {}
    flooder: Optional[subprocess.Popen[str]] = None
    tracers: list[subprocess.Popen[bytes]] = []
    traceDir = tempfile.mkdtemp(prefix="neighbourcpu-")
    try:
        flooder = subprocess.Popen(
            [sys.executable, os.path.join(run.REPO, "bench", "flood.py"), str(flooded.master), str(ports[0]), str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, pass_fds=[flooded.master])
        assert flooder.stdin is not None and flooder.stdout is not None
        if flooder.stdout.readline().strip() != "connected":
            raise RuntimeError("the flooder did not connect")
        sock = socket.create_connection(("127.0.0.1", ports[1]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert server.proc is not None
        pid = server.proc.pid
        run.waitOpen([pid], [flooded.slave, quiet.slave])
        time.sleep(0.2)
        run.roundTrips(quiet, sock, 50)
        flooder.stdin.write("go\n")
        flooder.stdin.flush()
        time.sleep(0.3)
        if trace:
            calls = ",".join(f"syscalls:sys_{phase}_{call}" for call in ("read", "write", "sendto", "recvfrom")
                             for phase in ("enter", "exit"))
            tracers = [
                subprocess.Popen(["perf", "record", "-q", "-e", "sched:sched_switch", "-a", "-g",
                                  "-o", os.path.join(traceDir, "sched")], stderr=subprocess.DEVNULL),
                subprocess.Popen(["perf", "record", "-q", "-e", calls, "-p", str(os.getpid()),
                                  "-o", os.path.join(traceDir, "calls")], stderr=subprocess.DEVNULL),
            ]
            time.sleep(0.3)
        cpu0, stat0, wall0 = run.treeCpuSeconds(pid), procStat(pid), time.perf_counter()
        flood0 = run.cpuPreciseSeconds(flooder.pid)
        times: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if roundTrips:
                times += run.roundTrips(quiet, sock, 50)
            else:
                time.sleep(0.05)
        cpu1, stat1, wall1 = run.treeCpuSeconds(pid), procStat(pid), time.perf_counter()
        flood1 = run.cpuPreciseSeconds(flooder.pid)
        for tracer in tracers:
            tracer.send_signal(2)
            tracer.wait(30)
        flooder.stdin.write("stop\n")
        flooder.stdin.flush()
        received, elapsed = flooder.stdout.readline().split()
        flooder.wait(10)
        sock.close()
        rate = int(received) / float(elapsed)
        moved = rate * (wall1 - wall0)
        out.update({
            "A_MiBps": rate / MiB,
            "cpu_s_per_GiB": (cpu1 - cpu0) / moved * GiB,
            "user_s_per_GiB": (stat1[0] - stat0[0]) / moved * GiB,
            "sys_s_per_GiB": (stat1[1] - stat0[1]) / moved * GiB,
            "cores": (cpu1 - cpu0) / (wall1 - wall0),
            "flooder_s_per_GiB": (flood1 - flood0) / moved * GiB,
            "voluntary_per_MiB": (stat1[2] - stat0[2]) / moved * MiB,
            "involuntary_per_MiB": (stat1[3] - stat0[3]) / moved * MiB,
        })
        if times:
            out["B_p50_ms"] = statistics.median(times) * 1000
        if trace:
            window = wall1 - wall0
            sched = subprocess.run(["perf", "script", "-i", os.path.join(traceDir, "sched"), "-F",
                                    "tid,time,event,trace,ip,sym"], capture_output=True, text=True).stdout
            waits = offCpu(sched, pid)
            preempted = [t for why, ts in waits.items() if why.startswith("preempted") for t in ts]
            if preempted:
                waits["preempted (runnable), by anyone"] = preempted
            for why, ts in sorted(waits.items()):
                out[f"off: {why}, % of the time"] = sum(ts) / window * 100
                out[f"off: {why}, mean us"] = statistics.mean(ts) * 1e6
            calls = subprocess.run(["perf", "script", "-i", os.path.join(traceDir, "calls"), "-F",
                                    "tid,time,event,trace"], capture_output=True, text=True).stdout
            toClient, toDevice = halves(calls, os.getpid())
            if toClient:
                out["B device->client p50 us"] = statistics.median(toClient) * 1e6
                out["B client->device p50 us"] = statistics.median(toDevice) * 1e6
    finally:
        for tracer in tracers:
            if tracer.poll() is None:
                tracer.kill()
                tracer.wait()
        subprocess.run(["rm", "-rf", traceDir])
        if flooder is not None and flooder.poll() is None:
            flooder.kill()
            flooder.wait()
        server.stop()
        flooded.close()
        quiet.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--args", action="append", default=[],
                        help="more arguments for serialgw (after --config); given again, serialgw once for each, alternated")
    parser.add_argument("--no-round-trips", action="store_true", help="A's flood alone, B idle")
    parser.add_argument("--rate", type=float, default=0.0, help="A's device written at most this fast (MiB/s; 0: full speed)")
    parser.add_argument("--no-ser2net", action="store_true")
    parser.add_argument("--oneshot", metavar="MODES",
                        help="serialgw once for each SERIALGW_ONESHOT value (0,1,thread), alternated as the servers are")
    parser.add_argument("--reader", metavar="MODES",
                        help="serialgw once for each SERIALGW_READER value (reactor,thread,process), alternated as the servers are")
    parser.add_argument("--env", action="append", default=[], metavar="VAR=VALUE[,VAR=VALUE...]",
                        help="serialgw once with this environment (given again, once for each), alternated")
    parser.add_argument("--trace", action="store_true", help="where the server waited (perf, root)")
    args = parser.parse_args()
    extras = args.args or [""]
    kinds: list[tuple[str, Any]] = [(f"serialgw {extra}".strip(), lambda extra=extra: SerialgwWithArgs(extra.split()))
                                    for extra in extras]
    if args.oneshot:
        kinds = [(f"serialgw {extra} {ONESHOT_ENV}={mode}".replace("  ", " "),
                  lambda mode=mode, extra=extra: SerialgwWithArgs(extra.split(), {ONESHOT_ENV: mode}))
                 for extra in extras for mode in args.oneshot.split(",")]
    if args.reader:
        kinds = [(f"serialgw {extra} {READER_ENV}={mode}".replace("  ", " "),
                  lambda mode=mode, extra=extra: SerialgwWithArgs(extra.split(), {READER_ENV: mode}))
                 for extra in extras for mode in args.reader.split(",")]
    if args.env:
        kinds = [(f"serialgw {extra} {env}".replace("  ", " "),
                  lambda env=env, extra=extra: SerialgwWithArgs(
                      extra.split(), dict(kv.split("=", 1) for kv in env.split(",") if kv)))
                 for extra in extras for env in args.env]
    if not args.no_ser2net:
        kinds.append(("ser2net-tuned", run.Ser2netNeighbour))
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(args.rounds):
        for name, make in kinds if round_ % 2 == 0 else kinds[::-1]:
            result = once(make(), args.seconds, not args.no_round_trips, args.trace, args.rate)
            runs[name].append(result)
            print(f"round {round_ + 1} {name}: " + ", ".join(f"{k} {v:.3g}" for k, v in result.items()), flush=True)
    print(f"\nmedians (range) over {args.rounds} rounds; load average {os.getloadavg()[0]:.1f}")
    for name, results in runs.items():
        print(name)
        for key in sorted({key for r in results for key in r}, key=lambda k: (k.startswith("off"), k)):
            values = [r[key] for r in results if key in r]
            print(f"  {key:50} {statistics.median(values):9.3g}  ({min(values):.3g}-{max(values):.3g})")


if __name__ == "__main__":
    main()
