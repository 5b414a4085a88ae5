#!/usr/bin/env python3
"""
serialgw against socat and ser2net, measured in the same run on the same
setup: a pty pair stands in for the UART (the benchmark holds the master,
the server under test opens the slave), clients on loopback TCP.

    python3 bench/run.py                 # everything (installs socat, ser2net)
    python3 bench/run.py --quick         # fewer samples, lines 16 and 128
    python3 bench/run.py --only stuck    # just the stuck-clients scenario
    python3 bench/run.py --only neighbour   # a quiet line beside a flooding one
    python3 bench/run.py --only neighbour --control   # ... and B served apart (what the machine allows)
    python3 bench/run.py --only shards   # 1024 lines: 2 processes (--shard) against 1

Prints a table with serialgw/peer ratios and writes JSON (bench/results/).
Not part of the tests: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import time
from typing import Any

from compare.machine import Pty, children, cpuPreciseSeconds, freePort, treeCpuSeconds, waitListening, waitOpen
from compare.report import (
    NEIGHBOUR_KEYS,
    markdown,
    neighbourTargets,
    report,
    reportNeighbour,
    reportShards,
    reportStuck,
    shardsMarkdown,
)
from compare.scenarios import (
    NEIGHBOUR_CONTROLS,
    NEIGHBOUR_KINDS,
    PACED_RATE,
    farm,
    neighbourRounds,
    shardRounds,
    single,
    stuckRounds,
)
from compare.servers import (
    REPO,
    Apart,
    Relay,
    Ser2net,
    Ser2netNeighbour,
    Ser2netTuned,
    Serialgw,
    SerialgwCoalesced,
    SerialgwNeighbour,
    Server,
    Socat,
    SocatLines,
    ensurePeers,
    ensureStuckPeers,
)
from compare.traffic import MiB, roundTrips

# The other bench scripts (neighbourcpu.py, reactors.py) take the servers and probes from here (import run).
__all__ = ["main", "farm", "Pty", "children", "cpuPreciseSeconds", "freePort", "treeCpuSeconds", "waitListening",
           "waitOpen", "Apart", "Relay", "SocatLines", "Ser2netNeighbour", "SerialgwNeighbour", "Server", "roundTrips",
           "REPO"]


def onlyShards(quick: bool) -> None:
    """The shards scenario alone."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    only: dict[str, Any] = {"shards": shardRounds(2 if quick else 4, 1024, 3.0 if quick else 5.0)}
    reportShards(only)
    print("\n" + shardsMarkdown(only["shards"]))


def onlyNeighbour(quick: bool, control: bool = False) -> None:
    """
    The neighbour scenario alone, with its peers (installed if missing;
    other runs left alone); with C{control}, NEIGHBOUR_CONTROLS too.
    """
    missing = [exe for exe in ("socat", "ser2net") if not shutil.which(exe)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env, stdout=subprocess.DEVNULL)
    kinds = NEIGHBOUR_KINDS + (NEIGHBOUR_CONTROLS if control else [])
    rounds, rtts = (3, 500) if quick else (5, 2000)
    only: dict[str, Any] = {"neighbour": neighbourRounds(rounds, rtts, kinds=kinds),
                            "neighbour_paced": neighbourRounds(rounds, rtts, PACED_RATE, kinds=kinds)}
    for key in NEIGHBOUR_KEYS:
        reportNeighbour(only, key)
        for name, ratio, met in neighbourTargets(only, key):
            print(f"  {'met    ' if met else 'NOT met'}  {name}: {ratio[0]:.2f} (rounds {ratio[1]:.2f}-{ratio[2]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lines", default="16,128,512,1024")
    parser.add_argument("--json", default=os.path.join(REPO, "bench", "results", "latest.json"))
    parser.add_argument("--markdown", metavar="JSON", help="print the README's tables from a run's JSON, and stop")
    parser.add_argument("--stuck", default="0,500", help="counts of never-reading clients for the stuck scenario")
    parser.add_argument("--control", action="store_true",
                        help="with --only neighbour: also B served by a process of its own (serialgw, "
                             "bench/relay.py), what this machine allows whatever one gateway does")
    parser.add_argument("--only", choices=["stuck", "neighbour", "shards"],
                        help="run one scenario only (stuck, neighbour: with their peers; "
                             "shards: serialgw in 2 processes against 1 at 1024 lines)")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return
    stuckCounts = [int(n) for n in args.stuck.split(",")]
    if args.only == "stuck":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        ensureStuckPeers()
        only: dict[str, Any] = {"stuck": stuckRounds(stuckCounts, 3, 8 * MiB)}
        reportStuck(only)
        return
    if args.only == "neighbour":
        onlyNeighbour(args.quick, args.control)
        return
    if args.only == "shards":
        onlyShards(args.quick)
        return
    ensurePeers()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rtts, size, seconds = (500, 8 * MiB, 3.0) if args.quick else (2000, 32 * MiB, 5.0)
    rounds, farmRounds = (3, 1) if args.quick else (7, 3)
    lineCounts = [16, 128] if args.quick else [int(n) for n in args.lines.split(",")]

    # Every server in turn, round after round, so drift hits everyone alike;
    # each figure is the median over the rounds (the rounds are in the JSON).
    singles: dict[str, list[dict[str, Any]]] = {}
    kinds = [Serialgw, Socat, Ser2net, Ser2netTuned, SerialgwCoalesced]
    for round_ in range(rounds):
        for kind in kinds:
            print(f"round {round_ + 1}/{rounds}: {kind.name} single line ...", flush=True)
            singles.setdefault(kind.name, []).append(single(kind(), rtts, size))
    results: dict[str, Any] = {"single": {}, "farm": {}, "rounds": {"single": singles, "farm": {}}}
    for name, runs in singles.items():
        results["single"][name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    for n in lineCounts:
        runsByKind: dict[str, list[dict[str, Any]]] = {}
        for round_ in range(farmRounds):
            for kind in (Serialgw, Ser2netTuned, Ser2net):
                print(f"round {round_ + 1}/{farmRounds}: {kind.name}: {n} lines ...", flush=True)
                runsByKind.setdefault(kind.name, []).append(farm(kind(), n, seconds))
        results["rounds"]["farm"][str(n)] = runsByKind
        results["farm"][str(n)] = {
            name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for name, runs in runsByKind.items()
        }

    results["stuck"] = stuckRounds(stuckCounts, 1 if args.quick else 3, 8 * MiB)

    results["neighbour"] = neighbourRounds(3 if args.quick else 5, 500 if args.quick else 2000)
    results["neighbour_paced"] = neighbourRounds(3 if args.quick else 5, 500 if args.quick else 2000, PACED_RATE)

    results["shards"] = shardRounds(2 if args.quick else 4, 1024, seconds)

    results["machine"] = {
        "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"), "rounds": rounds, "farm_rounds": farmRounds,
        "rtts_per_round": rtts, "MiB_per_transfer": size // MiB,
    }
    report(results)
    reportShards(results)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
