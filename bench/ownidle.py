#!/usr/bin/env python3
"""
Issue 15 target 1's own-idle clause taken apart: B's 1-byte round trip
beside A's flood against B's own idle round trip, for several ways of
serving B (a bisection between bench/relay.py and serialgw), alternated
kind by kind within each round, each ratio paired within one measurement
(B idle, then A flooding, a second apart).  A is always served by
serialgw (the default, a TOML farm), in the same process as B for the
`both*` kinds, in a process of its own otherwise.

For each measurement it also records what B's server process did in
each phase, from /proc: CPU, time waiting for a CPU (schedstat's run
delay), voluntary and involuntary context switches (per round trip), and
the machine's CPU pressure (/proc/pressure/cpu, some) and load average.
Each measurement is appended as a JSON line to --out as it ends (a run
cut short keeps what it measured); the summary is printed at the end
(and by --summary FILE).

    python3 bench/ownidle.py [--rounds 5] [--rtts 2000] [--rate MIBPS] [--kinds KIND,...] [--out FILE]
    python3 bench/ownidle.py --summary FILE

Kinds (--list prints them): both, both-old, both-bp0, both-slice
(serialgw serving A and B: today's default, the reactor thread with a
100 us time slice; as before SERIALGW_SLICE, with the kernel's slice; that
with --busy-poll 0; the slice alone, today's default again);
apart-serialgw, apart-old, apart-bp0, apart-slice (B served by such a
serialgw in a process of its own, A by another, as before), apart-sleep,
apart-spin, apart-twisted, apart-gateway, apart-gateway0 (B served by
bench/relay.py in one of its modes); ser2net (tuned, both lines), socat (a
process a line): the summary compares each kind's flood p50 with
ser2net's and its idle p50 with socat's, paired within a round.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import machine, scenarios, servers, traffic  # noqa: E402  (bench/servers.py's parts)

MiB = 1 << 20
SLICE_ENV = "SERIALGW_SLICE"  # (serialgw.app.oneshot: the reactor thread's time slice)


def serialgw(extra: tuple[str, ...] = (), environ: Optional[dict[str, str]] = None) -> Callable[[], servers.Server]:
    def make() -> servers.Server:
        server = servers.SerialgwNeighbour()
        server.extra = list(extra)
        server.environ = dict(environ or {})
        return server
    return make


def relay(mode: str) -> Callable[[], servers.Server]:
    def make() -> servers.Server:
        server = servers.Relay()
        server.mode = mode
        return server
    return make


# serialgw as it was before SERIALGW_SLICE (the kernel's slice): A's
# server in every apart kind.
OLD = {SLICE_ENV: "0"}
SLICE_ONLY = {SLICE_ENV: "100"}


class Apart(servers.Apart):
    """A by serialgw as it was (OLD), B by C{makeB} (each a process of its own)."""

    def __init__(self, makeB: Callable[[], servers.Server]) -> None:
        self.makeB = makeB
        super().__init__()

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        self.lines = [serialgw(environ=OLD)(), self.serverOfB()]
        for line, device, port in zip(self.lines, devices, ports, strict=True):
            line.start([device], [port])
        self.proc = self.lines[0].proc

    def serverOfB(self) -> servers.Server:
        return self.makeB()


KINDS: dict[str, Callable[[], servers.Server]] = {
    "both": serialgw(),
    "both-old": serialgw(environ=OLD),
    "both-bp0": serialgw(("--busy-poll", "0"), environ=OLD),
    "both-slice": serialgw(environ=SLICE_ONLY),
    "apart-serialgw": lambda: Apart(serialgw()),
    "apart-old": lambda: Apart(serialgw(environ=OLD)),
    "apart-bp0": lambda: Apart(serialgw(("--busy-poll", "0"), environ=OLD)),
    "apart-slice": lambda: Apart(serialgw(environ=SLICE_ONLY)),
    "apart-sleep": lambda: Apart(relay("sleep")),
    "apart-spin": lambda: Apart(relay("spin")),
    "apart-twisted": lambda: Apart(relay("twisted")),
    "apart-gateway": lambda: Apart(relay("gateway")),
    "apart-gateway0": lambda: Apart(relay("gateway0")),
    "ser2net": servers.Ser2netNeighbour,
    "socat": servers.SocatLines,
}


def kindOf(name: str) -> Optional[Callable[[], servers.Server]]:
    """A kind by name (None: no such kind)."""
    return KINDS.get(name)


def taskStats(pid: int) -> dict[str, float]:
    """CPU ns, run-queue wait ns and context switches of all the process's threads."""
    out = {"cpu_ns": 0.0, "wait_ns": 0.0, "voluntary": 0.0, "involuntary": 0.0}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                cpu, wait, _ = f.read().split()
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        out["voluntary"] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        out["involuntary"] += int(line.split()[1])
        except (OSError, ValueError):
            continue
        out["cpu_ns"] += int(cpu)
        out["wait_ns"] += int(wait)
    return out


def pressure() -> float:
    """The machine's CPU pressure so far (some task waiting for a CPU), microseconds."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return 0.0


def phase(pid: int, measure: Callable[[], list[float]]) -> tuple[list[float], dict[str, float]]:
    """Round trips, with what B's server and the machine did meanwhile (per round trip; pressure in %)."""
    before, psi, began = taskStats(pid), pressure(), time.perf_counter()
    times = measure()
    after, psi, wall = taskStats(pid), pressure() - psi, time.perf_counter() - began
    n = len(times)
    stats = {f"{key}_per_rtt": (after[key] - before[key]) / n for key in before}
    stats["pressure_percent"] = psi / 1e6 / wall * 100
    return times, stats


def measure(kind: str, rtts: int, rate: float) -> dict[str, Any]:
    """One measurement of servers.neighbour's scenario (B idle, then A flooding), with B's server's figures."""
    make = kindOf(kind)
    assert make is not None
    server = make()
    flooded, quiet = machine.Pty(), machine.Pty()
    ports = [machine.freePort(), machine.freePort()]
    server.start([flooded.slave, quiet.slave], ports)
    out: dict[str, Any] = {"kind": kind, "rate": rate, "load": os.getloadavg()[0]}
    flooder: Optional[subprocess.Popen[str]] = None
    try:
        flooder = subprocess.Popen(
            [sys.executable, os.path.join(servers.REPO, "bench", "flood.py"), str(flooded.master), str(ports[0]), str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, pass_fds=[flooded.master])
        assert flooder.stdin is not None and flooder.stdout is not None
        if flooder.stdout.readline().strip() != "connected":
            raise RuntimeError("the flooder did not connect")
        sock = socket.create_connection(("127.0.0.1", ports[1]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = server.lines if isinstance(server, (servers.Apart, servers.SocatLines)) else [server]
        pids = [line.proc.pid for line in lines if line.proc is not None]
        machine.waitOpen(pids, [flooded.slave, quiet.slave])
        pidB = pids[-1]
        time.sleep(0.2)
        traffic.roundTrips(quiet, sock, 50)  # warm up
        idle, out["idle"] = phase(pidB, lambda: traffic.roundTrips(quiet, sock, rtts))
        flooder.stdin.write("go\n")
        flooder.stdin.flush()
        time.sleep(0.3)
        busy, out["flood"] = phase(pidB, lambda: traffic.roundTrips(quiet, sock, rtts))
        flooder.stdin.write("stop\n")
        flooder.stdin.flush()
        received, seconds = flooder.stdout.readline().split()
        flooder.wait(10)
        sock.close()
        for name, times in (("idle", idle), ("flood", busy)):
            times.sort()
            out[f"{name}_p50_ms"] = statistics.median(times) * 1000
            out[f"{name}_p99_ms"] = times[int(len(times) * 0.99) - 1] * 1000
        out["ratio"] = out["flood_p50_ms"] / out["idle_p50_ms"]
        out["flood_MiBps"] = int(received) / MiB / float(seconds)
    finally:
        if flooder is not None and flooder.poll() is None:
            flooder.kill()
            flooder.wait()
        server.stop()
        flooded.close()
        quiet.close()
    return out


def summary(records: list[dict[str, Any]]) -> None:
    byKind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        byKind.setdefault(f"{record['kind']} @{record['rate']:g}", []).append(record)
    loads = [r["load"] for r in records]
    print(f"{len(records)} measurements, load average (1 min) {min(loads):.2f}-{max(loads):.2f}")
    print(f"{'kind @MiB/s (0: full)':24}{'n':>3}{'idle p50':>9}{'flood p50':>10}{'ratio (range)':>20}{'A MiB/s':>8}"
          f"   B per round trip, idle / flood: CPU us, wait us, invol. switches; CPU pressure %")
    for name, rs in byKind.items():
        ratios = sorted(r["ratio"] for r in rs)

        def med(key: str, phase: str = "", rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median((r[phase][key] if phase else r[key]) for r in rs)

        per = " / ".join(f"{med('cpu_ns_per_rtt', p) / 1e3:.0f} {med('wait_ns_per_rtt', p) / 1e3:.1f} "
                         f"{med('involuntary_per_rtt', p):.2f} {med('pressure_percent', p):.0f}"
                         for p in ("idle", "flood"))
        print(f"{name:24}{len(rs):3}{med('idle_p50_ms'):9.3f}{med('flood_p50_ms'):10.3f}"
              f"{statistics.median(ratios):8.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}){med('flood_MiBps'):8.1f}   {per}")
    compared(records)


def compared(records: list[dict[str, Any]]) -> None:
    """Each kind's flood p50 / ser2net's and idle p50 / socat's, paired by round and rate (when they were measured)."""
    at = {(r["kind"], r["rate"], r["round"]): r for r in records}
    for peer, key in (("ser2net", "flood_p50_ms"), ("socat", "idle_p50_ms")):
        ratios: dict[str, list[float]] = {}
        for (kind, rate, round_), record in at.items():
            theirs = at.get((peer, rate, round_))
            if theirs is not None and kind != peer:
                ratios.setdefault(f"{kind} @{rate:g}", []).append(record[key] / theirs[key])
        for name, rs in ratios.items():
            rs.sort()
            print(f"{name:24} {key} / {peer}'s {statistics.median(rs):.2f} ({rs[0]:.2f}-{rs[-1]:.2f}, {len(rs)} rounds)")


class Environed(servers.Server):
    """A bench/servers.py server started with more in its environment (serialgw's SERIALGW_*)."""

    def __init__(self, inner: servers.Server, environ: dict[str, str], name: str) -> None:
        super().__init__()
        self.inner, self.environ, self.name = inner, environ, name
        self.telnet = inner.telnet

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        saved = {key: os.environ.get(key) for key in self.environ}
        os.environ.update(self.environ)
        try:
            self.inner.start(devices, ports, telnetPort)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.proc = self.inner.proc

    def pids(self) -> list[int]:
        return self.inner.pids()

    def stop(self) -> None:
        self.inner.stop()
        self.proc = None
        super().stop()


def targetFour(rounds: int, lines: int, out: str) -> None:
    """
    Issue 15 target 4's figures for today's default against OLD, alternated
    round by round: bench/servers.py's single() (round trip, throughput; socat
    beside) and farm() at C{lines} lines (idle CPU, RSS, echo rate; ser2net
    tuned beside).  Appended to C{out} as JSON lines; medians printed.
    """
    singles = {"serialgw": lambda: servers.Serialgw(),
               "serialgw-old": lambda: Environed(servers.Serialgw(), OLD, "serialgw-old"),
               "socat": lambda: servers.Socat()}
    farms = {"serialgw": lambda: servers.Serialgw(),
             "serialgw-old": lambda: Environed(servers.Serialgw(), OLD, "serialgw-old"),
             "ser2net-tuned": lambda: servers.Ser2netTuned()}
    if os.environ.get("OWNIDLE_EACH"):
        # The slice alone too (today's default, by its environment).
        for more in (singles, farms):
            more["serialgw-slice"] = lambda: Environed(servers.Serialgw(), SLICE_ONLY, "serialgw-slice")
    if os.environ.get("OWNIDLE_ONLY"):
        wanted = os.environ["OWNIDLE_ONLY"].split(",")
        singles = {k: v for k, v in singles.items() if "single" in wanted}
        farms = {k: v for k, v in farms.items() if "farm" in wanted}
    records: list[dict[str, Any]] = []
    for round_ in range(rounds):
        for scenario, makers in (("single", singles), ("farm", farms)):
            for name, make in makers.items():
                print(f"round {round_ + 1}/{rounds}: {scenario} {name} ...", flush=True)
                figures = again(lambda make=make, scenario=scenario: (  # type: ignore[misc]
                    scenarios.single(make(), 2000, 16 * MiB) if scenario == "single" else scenarios.farm(make(), lines, 5.0)))
                record = {"scenario": scenario, "kind": name, "round": round_, "load": os.getloadavg()[0], **figures}
                records.append(record)
                with open(out, "a") as f:
                    f.write(json.dumps(record) + "\n")
    summaryFour(records)


def summaryFour(records: list[dict[str, Any]]) -> None:
    loads = [r["load"] for r in records]
    print(f"{len(records)} measurements, load average (1 min) {min(loads):.2f}-{max(loads):.2f}")
    for scenario, peer in (("single", "socat"), ("farm", "ser2net-tuned")):
        mine = [r for r in records if r["scenario"] == scenario]
        kinds = sorted({r["kind"] for r in mine})
        keys = [k for k in mine[0] if k not in ("scenario", "kind", "round", "load")] if mine else []
        for key in keys:
            cells = []
            for kind in kinds:
                values = sorted(r[key] for r in mine if r["kind"] == kind and key in r)
                if not values:
                    continue
                cells.append(f"{kind} {statistics.median(values):.4g} ({values[0]:.4g}-{values[-1]:.4g})")
            byRound = {(r["kind"], r["round"]): r for r in mine}
            for kind in ("serialgw", "serialgw-old"):
                ratios = sorted(byRound[(kind, n)][key] / byRound[(peer, n)][key] for (k, n) in byRound
                                if k == kind and (peer, n) in byRound and byRound[(peer, n)].get(key))
                if ratios:
                    cells.append(f"{kind}/{peer} {statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
            print(f"{scenario} {key}: " + "; ".join(cells))


def again(measurement: Callable[[], dict[str, Any]], tries: int = 3) -> dict[str, Any]:
    """A measurement, made again when it failed to start (a port taken meanwhile by another program)."""
    for left in range(tries - 1, -1, -1):
        try:
            return measurement()
        except (RuntimeError, OSError) as e:
            if not left:
                raise
            print(f"(failed: {e!r}; again)", flush=True)
    raise AssertionError("unreachable")


def load(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rtts", type=int, default=2000)
    parser.add_argument("--rate", default="0", help="A's pace, MiB/s (0: full speed); several: comma-separated")
    parser.add_argument("--kinds", default="both,apart-serialgw,apart-bp0,apart-sleep")
    parser.add_argument("--out", default=os.path.join(servers.REPO, "bench", "results", "ownidle.jsonl"))
    parser.add_argument("--summary", metavar="FILE", help="print the summary of a run's JSON lines, and stop")
    parser.add_argument("--list", action="store_true", help="list the kinds, and stop")
    parser.add_argument("--target4", type=int, metavar="ROUNDS",
                        help="instead: target 4's single line and farm figures, today's default against OLD")
    parser.add_argument("--lines", type=int, default=512, help="the farm's lines (--target4)")
    args = parser.parse_args()
    if args.list:
        print("\n".join(KINDS))
        return
    if args.summary:
        records = load(args.summary)
        if records and "scenario" in records[0]:
            summaryFour(records)
        else:
            summary(records)
        return
    if args.target4:
        targetFour(args.target4, args.lines, args.out)
        return
    kinds = args.kinds.split(",")
    unknown = [k for k in kinds if kindOf(k) is None]
    if unknown:
        parser.error(f"unknown kinds {unknown} (--list)")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    records = []
    for round_ in range(args.rounds):
        # Turned round each round, so that no kind always follows another.
        turn = kinds[round_ % len(kinds):] + kinds[:round_ % len(kinds)]
        for rate in (float(r) for r in args.rate.split(",")):
            for kind in turn:
                print(f"round {round_ + 1}/{args.rounds}: {kind} @{rate:g} ...", end=" ", flush=True)
                record = again(lambda kind=kind, rate=rate: measure(kind, args.rtts, rate))  # type: ignore[misc]
                record["round"] = round_
                print(f"idle {record['idle_p50_ms']:.3f} flood {record['flood_p50_ms']:.3f} "
                      f"ratio {record['ratio']:.2f} A {record['flood_MiBps']:.1f} MiB/s load {record['load']:.2f}",
                      flush=True)
                records.append(record)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
    summary(records)


if __name__ == "__main__":
    main()
