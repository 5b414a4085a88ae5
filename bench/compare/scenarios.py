"""
The scenarios: one run of each against one server (single line, farm,
stuck clients, neighbour), and their rounds: every server in turn, round
after round, so drift hits everyone alike; medians, and the rounds.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

from .machine import (
    Pty,
    _inUse,
    cpuPreciseSeconds,
    cpuSeconds,
    freePort,
    kernelQueued,
    rssKiB,
    treeCpuSeconds,
    waitListening,
    waitOpen,
)
from .servers import (
    REPO,
    Apart,
    RelayApart,
    RelaySleepingApart,
    Ser2netManyClients,
    Ser2netNeighbour,
    SerialgwApart,
    SerialgwManyClients,
    SerialgwNeighbour,
    SerialgwShards,
    Server,
    Socat,
    SocatLines,
    StartFailed,
)
from .traffic import MiB, connectTelnet, drainPending, echo, roundTrips, throughput, timedFlood


def single(server: Server, rtts: int, size: int) -> dict[str, Any]:
    pty = Pty()
    port = freePort()
    telnetPort = freePort() if server.telnet else None
    server.start([pty.slave], [port], telnetPort)
    out: dict[str, Any] = {}
    try:
        assert server.proc is not None
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.2)
        roundTrips(pty, sock, 50)  # warm up
        cpu0 = cpuPreciseSeconds(server.proc.pid)
        times = sorted(roundTrips(pty, sock, rtts))
        out["cpu_us_per_rtt"] = (cpuPreciseSeconds(server.proc.pid) - cpu0) / rtts * 1e6
        out["rtt_p50_ms"] = statistics.median(times) * 1000
        out["rtt_p99_ms"] = times[int(len(times) * 0.99) - 1] * 1000
        cpu0 = treeCpuSeconds(server.proc.pid)
        out["raw_to_client_MiBps"] = throughput(pty, sock, size, toDevice=False, telnet=False)
        out["raw_to_device_MiBps"] = throughput(pty, sock, size, toDevice=True, telnet=False)
        out["cpu_s_per_MiB"] = (treeCpuSeconds(server.proc.pid) - cpu0) / (2 * size / MiB)
        sock.close()
        if telnetPort:
            tsock = connectTelnet(telnetPort)
            time.sleep(0.2)
            # serialgw tells the people on a line who comes and goes: the raw
            # client's "detached" notice reaches the telnet client when its
            # close is seen after the telnet client attached.  Not payload.
            drainPending(tsock)
            out["telnet_to_client_MiBps"] = throughput(pty, tsock, size, toDevice=False, telnet=True)
            out["telnet_to_device_MiBps"] = throughput(pty, tsock, size, toDevice=True, telnet=True)
            tsock.close()
    finally:
        server.stop()
        pty.close()
    return out


def farm(server: Server, lines: int, seconds: float) -> dict[str, Any]:
    ptys = [Pty() for _ in range(lines)]
    first = freePort()
    while any(_inUse(first + i) for i in range(lines)):
        first = freePort() + 1
    ports = [first + i for i in range(lines)]
    out: dict[str, Any] = {}
    socks: list[socket.socket] = []
    try:
        # Inside: a server that fails to start leaves no pty behind.
        server.start([p.slave for p in ptys], ports)
        pids = server.pids()

        def cpu(user: bool = True, system: bool = True) -> float:
            return sum(cpuSeconds(pid, user, system) for pid in pids)

        for port in ports:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            socks.append(s)
        # Past the start's tail: each client is announced to its line after
        # a second of silence (1024 timers), which is not idling.
        time.sleep(2.5)
        cpu0 = cpu()
        time.sleep(seconds)
        out["idle_cpu_percent"] = (cpu() - cpu0) / seconds * 100
        out["rss_KiB"] = sum(rssKiB(pid) for pid in pids)
        user0, system0 = cpu(system=False), cpu(user=False)
        client0 = time.process_time()
        out["echo_msgs_per_s"] = echo(ptys, socks, seconds)
        # The load generator's own share of the cores (it runs on them too).
        out["client_cpu_cores"] = (time.process_time() - client0) / seconds
        messages = max(1.0, out["echo_msgs_per_s"] * seconds)
        out["user_us_per_msg"] = (cpu(system=False) - user0) / messages * 1e6
        out["system_us_per_msg"] = (cpu(user=False) - system0) / messages * 1e6
    finally:
        for s in socks:
            s.close()
        server.stop()
        for p in ptys:
            p.close()
    return out


# Why socat has no stuck clients in this scenario (printed with its figures).
SOCAT_STUCK = ("socat serves one client a listener (with fork, each connection opens the device "
               "itself and they split its output): it runs with N = 0 only, the reader alone; "
               "serialgw's reader among N stuck clients is compared with that")


def stuck(server: Server, clients: int, size: int, warmUp: int = 12 * MiB, seconds: float = 20.0) -> dict[str, Any]:
    """
    One line, one raw client reading a device flood, and C{clients} raw
    clients beside it that never read (small receive buffers): after a
    warm-up flood that fills them, the reader's MiB/s over C{size} bytes
    (or what came within C{seconds}, or until nothing came for 3 s), the
    server's CPU per MiB the reader got, its RSS, and the kernel memory
    queued for each stuck client.
    """
    pty = Pty()
    port = freePort()
    server.start([pty.slave], [port])
    out: dict[str, Any] = {}
    held: list[socket.socket] = []
    try:
        assert server.proc is not None
        for _ in range(clients):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            held.append(s)
        reader = socket.create_connection(("127.0.0.1", port))
        reader.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.5 + clients / 500)
        # Warm up until every stuck client is full: its kernel send queue
        # (up to tcp_wmem's 4 MiB where the server leaves it autotuned),
        # then the server's own buffer for it.
        warm = timedFlood(pty, reader, warmUp if clients else 2 * MiB, seconds, 3.0)
        out["warm_up_MiB"] = warm["MiB"]
        cpu0 = treeCpuSeconds(server.proc.pid)
        flood = timedFlood(pty, reader, size, seconds, 3.0, check=warm["complete"])
        out["reader_MiBps"] = flood["MiBps"]
        out["complete"] = flood["complete"]
        out["cpu_s_per_MiB"] = (treeCpuSeconds(server.proc.pid) - cpu0) / max(flood["MiB"], 1 / MiB)
        out["rss_KiB"] = rssKiB(server.proc.pid)
        queued = sorted(kernelQueued(port))
        out["kernel_KiB_per_stuck"] = statistics.median(queued) / 1024 if clients and queued else 0.0
        reader.close()
    finally:
        for s in held:
            s.close()
        server.stop()
        pty.close()
    return out


def stuckRounds(counts: list[int], rounds: int, size: int) -> dict[str, Any]:
    """
    serialgw, ser2net (tuned, one port for all) and socat (N = 0 only: see
    SOCAT_STUCK), each count of stuck clients in turn, the order turned
    round every other round; medians, and the rounds.
    """
    plan: list[tuple[str, Callable[[int], Server], list[int]]] = [
        ("serialgw", lambda n: SerialgwManyClients(), counts),
        ("ser2net-tuned", lambda n: Ser2netManyClients(n), counts),
        ("socat", lambda n: Socat(), [0] if 0 in counts else []),
    ]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for round_ in range(rounds):
        for name, make, ns in plan if round_ % 2 == 0 else plan[::-1]:
            for n in ns:
                print(f"round {round_ + 1}/{rounds}: {name}, {n} stuck clients ...", flush=True)
                runs.setdefault(name, {}).setdefault(str(n), []).append(stuck(make(n), n, size))
    return {
        "median": {name: {n: {key: statistics.median(float(r[key]) for r in rs) for key in rs[0]}
                          for n, rs in byCount.items()} for name, byCount in runs.items()},
        "rounds": runs,
        "socat": SOCAT_STUCK,
    }


NEIGHBOUR_KINDS: list[type[Server]] = [SerialgwNeighbour, Ser2netNeighbour, SocatLines]


# What this machine allows B beside A's flood, whatever one gateway does:
# B served by a process that does nothing else (--control).
NEIGHBOUR_CONTROLS: list[type[Server]] = [SerialgwApart, RelayApart, RelaySleepingApart]


# The paced flood of the neighbour scenario, MiB/s: below what every
# server measured moves at full speed here (ser2net about 30), 50 times
# what the fastest UART carries (4 Mbaud: 0.4 MiB/s).
PACED_RATE = 20.0


def neighbour(server: Server, rtts: int, rate: float = 0.0) -> dict[str, Any]:
    """
    Two lines in one gateway (socat: a process each): line A's device
    floods a raw client that reads as fast as it can (bench/flood.py, a
    process of its own), while line B measures 1-byte round trips, first
    with A idle, then with A flooding.  Also A's flood rate, so that a
    gateway cannot look good on B by starving A.  With C{rate} (MiB/s) A's
    device writes no faster than that: the same load for every server,
    where at full speed each moves what it can (and the more it moves, the
    more the flooding processes and the kernel take of the shared cores).
    """
    flooded, quiet = Pty(), Pty()
    ports = [freePort(), freePort()]
    server.start([flooded.slave, quiet.slave], ports)
    out: dict[str, Any] = {}
    flooder: Optional[subprocess.Popen[str]] = None
    try:
        waitListening(ports[0])
        flooder = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "bench", "flood.py"), str(flooded.master), str(ports[0]), str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, pass_fds=[flooded.master])
        assert flooder.stdin is not None and flooder.stdout is not None
        if flooder.stdout.readline().strip() != "connected":
            raise RuntimeError("the flooder did not connect")
        sock = socket.create_connection(("127.0.0.1", ports[1]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = server.lines if isinstance(server, (SocatLines, Apart)) else [server]
        waitOpen([line.proc.pid for line in lines if line.proc is not None], [flooded.slave, quiet.slave])
        time.sleep(0.2)
        roundTrips(quiet, sock, 50)  # warm up
        idle = sorted(roundTrips(quiet, sock, rtts))
        flooder.stdin.write("go\n")
        flooder.stdin.flush()
        time.sleep(0.3)
        assert server.proc is not None
        cpu0, wall0 = treeCpuSeconds(server.proc.pid), time.perf_counter()
        busy = sorted(roundTrips(quiet, sock, rtts))
        out["flood_cpu_percent"] = (treeCpuSeconds(server.proc.pid) - cpu0) / (time.perf_counter() - wall0) * 100
        flooder.stdin.write("stop\n")
        flooder.stdin.flush()
        received, seconds = flooder.stdout.readline().split()
        flooder.wait(10)
        sock.close()
        for name, times in (("idle", idle), ("flood", busy)):
            out[f"{name}_p50_ms"] = statistics.median(times) * 1000
            out[f"{name}_p99_ms"] = times[int(len(times) * 0.99) - 1] * 1000
        out["flood_MiBps"] = int(received) / MiB / float(seconds)
    finally:
        if flooder is not None and flooder.poll() is None:
            flooder.kill()
            flooder.wait()
        server.stop()
        flooded.close()
        quiet.close()
    return out


def neighbourRounds(rounds: int, rtts: int, rate: float = 0.0,
                    kinds: Optional[list[type[Server]]] = None) -> dict[str, Any]:
    """Every server in turn (NEIGHBOUR_KINDS, or C{kinds}), round after round; medians, and the rounds."""
    runs: dict[str, list[dict[str, Any]]] = {}
    how = f"paced at {rate:g} MiB/s" if rate else "at full speed"
    for round_ in range(rounds):
        for kind in kinds or NEIGHBOUR_KINDS:
            print(f"round {round_ + 1}/{rounds}: {kind.name}, quiet line beside one flooding {how} ...", flush=True)
            runs.setdefault(kind.name, []).append(neighbour(kind(), rtts, rate))
    return {
        "rate": rate,
        "median": {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()},
        "rounds": runs,
    }


def shardRounds(rounds: int, lines: int, seconds: float, counts: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """The farm scenario at LINES lines, serialgw in 1 and in 2 processes (--shard), alternating, round after round."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for round_ in range(rounds):
        for n in counts if round_ % 2 == 0 else counts[::-1]:
            print(f"round {round_ + 1}/{rounds}: serialgw, {n} process(es): {lines} lines ...", flush=True)
            for _attempt in range(3):
                try:
                    runs.setdefault(str(n), []).append(farm(SerialgwShards(n), lines, seconds))
                    break
                except StartFailed as e:
                    # On a shared machine a port of the block can be taken between the check and the bind.
                    print(f"  {e}; again", flush=True)
            else:
                raise RuntimeError(f"serialgw in {n} process(es) did not start three times")
    ratios = [two["echo_msgs_per_s"] / one["echo_msgs_per_s"] for one, two in
              zip(runs["1"], runs[str(counts[-1])], strict=True)]
    return {"lines": lines, "seconds": seconds, "rounds": runs, "echo_ratio": ratios,
            "median": {n: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for n, rs in runs.items()}}
