"""
What a run prints: the tables (the terminal's, and the README's in
Markdown), the ratios serialgw/peer taken round by round, and the targets
of the performance issues judged on them.
"""

from __future__ import annotations

import os
import statistics
from typing import Any, Optional

from .scenarios import SOCAT_STUCK


def report(results: dict[str, Any]) -> None:
    single = results["single"]
    gw = single["serialgw"]
    peers = [p for p in single if p != "serialgw"]
    print(f"\nsingle line ({results['machine']})")
    print(f"{'metric':28}{'serialgw':>12}" + "".join(f"{p:>16}" for p in peers) + "   ratios serialgw/peer")
    for key in gw:
        row = f"{key:28}{gw[key]:12.3f}"
        ratios = []
        for p in peers:
            value = single[p].get(key)
            row += f"{value:16.3f}" if value is not None else f"{'-':>16}"
            if value:
                ratios.append(f"{p} {gw[key] / value:.2f}")
        print(row + "   " + ", ".join(ratios))
    if "telnet_to_client_MiBps" in gw:
        for direction in ("to_client", "to_device"):
            t, s = gw[f"telnet_{direction}_MiBps"], single["socat"][f"raw_{direction}_MiBps"]
            print(f"telnet {direction} vs socat raw: {t / s:.2f}")
    print("\nmany lines (raw listeners, one client each, all connected)")
    farms = results["farm"]
    sizes = sorted(farms, key=int)
    smallest = sizes[0]
    print(f"{'lines':>6} {'server':14}{'idle CPU %':>11}{'RSS KiB':>10}{'KiB/line*':>10}{'echo msg/s':>12}"
          f"{'CPU us/msg':>11}   ratios serialgw/peer (echo)")
    for n in sizes:
        for name, values in farms[n].items():
            perLine = ""
            if n != smallest:
                extra = (values["rss_KiB"] - farms[smallest][name]["rss_KiB"]) / (int(n) - int(smallest))
                values["rss_KiB_per_added_line"] = extra
                perLine = f"{extra:10.1f}"
            ratio = ""
            if name != "serialgw" and values["echo_msgs_per_s"]:
                ratio = f"{farms[n]['serialgw']['echo_msgs_per_s'] / values['echo_msgs_per_s']:.2f}"
            cpu = values.get("user_us_per_msg", 0) + values.get("system_us_per_msg", 0)
            print(f"{n:>6} {name:14}{values['idle_cpu_percent']:11.2f}{values['rss_KiB']:10.0f}{perLine:>10}"
                  f"{values['echo_msgs_per_s']:12.0f}{cpu:11.1f}   {ratio}")
    print(f"* RSS added per line above {smallest} lines, with its client connected")
    if "stuck" in results:
        reportStuck(results)
    for key in NEIGHBOUR_KEYS:
        if key in results:
            reportNeighbour(results, key)
    results["targets"] = targets(results)
    print("\ntargets (issue 5), as ratios in this run")
    for name, (value, met) in results["targets"].items():
        print(f"  {'met    ' if met else 'NOT met'}  {name}: {value}")


def markdown(results: dict[str, Any]) -> str:
    """The README's tables, from a run's results."""
    single, farms = results["single"], results["farm"]
    gw, socat = single["serialgw"], single["socat"]
    peers = ("socat", "ser2net", "ser2net-tuned")
    rows = [
        ("1-byte round trip p50 (ms)", "rtt_p50_ms", "%.3f"),
        ("1-byte round trip p99 (ms)", "rtt_p99_ms", "%.3f"),
        ("CPU per round trip (µs)", "cpu_us_per_rtt", "%.1f"),
        ("raw, device -> client (MiB/s)", "raw_to_client_MiBps", "%.1f"),
        ("raw, client -> device (MiB/s)", "raw_to_device_MiBps", "%.1f"),
        ("CPU s per MiB", "cpu_s_per_MiB", "%.4f"),
    ]
    out = ["| single line | serialgw | socat | ser2net | ser2net tuned | serialgw / socat |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, key, fmt in rows:
        cells = " | ".join(fmt % single[p][key] for p in peers)
        out.append(f"| {name} | {fmt % gw[key]} | {cells} | {gw[key] / socat[key]:.2f} |")
    for name, direction in (("telnet, device -> client (MiB/s)", "to_client"),
                            ("telnet, client -> device (MiB/s)", "to_device")):
        value = gw[f"telnet_{direction}_MiBps"]
        out.append(f"| {name} | {value:.1f} | | | | {value / socat[f'raw_{direction}_MiBps']:.2f} of socat raw |")
    out += ["", "| lines, one client each | serialgw idle CPU | serialgw RSS | RSS added per line | echo msg/s "
            "serialgw | ser2net | ser2net tuned | CPU µs per message: serialgw / ser2net / tuned |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    sizes = sorted(farms, key=int)

    def cpu(values: dict[str, float]) -> str:
        return f"{values.get('user_us_per_msg', 0) + values.get('system_us_per_msg', 0):.1f}"

    for n in sizes:
        mine, plain, tuned = farms[n]["serialgw"], farms[n]["ser2net"], farms[n]["ser2net-tuned"]
        added = ""
        if n != sizes[0]:
            added = f"{(mine['rss_KiB'] - farms[sizes[0]]['serialgw']['rss_KiB']) / (int(n) - int(sizes[0])):.1f} KiB"
        out.append(f"| {n} | {mine['idle_cpu_percent']:.2f} % | {mine['rss_KiB'] / 1024:.0f} MiB | {added} | "
                   f"{mine['echo_msgs_per_s']:.0f} | {plain['echo_msgs_per_s']:.0f} | {tuned['echo_msgs_per_s']:.0f} | "
                   f"{cpu(mine)} / {cpu(plain)} / {cpu(tuned)} |")
    if "stuck" in results:
        out += ["", stuckMarkdown(results["stuck"])]
    for key in NEIGHBOUR_KEYS:
        if key in results:
            out += ["", neighbourMarkdown(results[key])]
    if "shards" in results:
        out += ["", shardsMarkdown(results["shards"])]
    if "targets" in results:
        out += ["", "Targets, judged on the median of the round-by-round ratios (range in brackets):", ""]
        out += [f"- {'met' if met else '**not met**'}: {name}: {value}" for name, (value, met) in results["targets"].items()]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """
    Each target of the performance issue: the figure, and whether it is met,
    judged on the median of the round-by-round ratios.
    """
    rounds, farms = results["rounds"]["single"], results["rounds"]["farm"]
    gw, socat = rounds["serialgw"], rounds["socat"]
    out: dict[str, tuple[str, bool]] = {}

    def verdict(name: str, ratio: tuple[float, float, float], met: bool) -> None:
        out[name] = (f"{ratio[0]:.2f} (rounds {ratio[1]:.2f}-{ratio[2]:.2f})", met)

    ratio = paired(gw, socat, "rtt_p50_ms")
    verdict("round trip p50 <= socat's", ratio, ratio[0] <= 1.0)
    for direction in ("to_client", "to_device"):
        ratio = paired(gw, socat, f"raw_{direction}_MiBps")
        verdict(f"raw {direction} >= socat's", ratio, ratio[0] >= 1.0)
        if f"telnet_{direction}_MiBps" in gw[0]:
            ratio = paired(gw, socat, f"telnet_{direction}_MiBps", f"raw_{direction}_MiBps")
            verdict(f"telnet {direction} >= 0.8 x socat raw", ratio, ratio[0] >= 0.8)
    sizes = sorted(results["farm"], key=int)
    largest = sizes[-1]
    mine = results["farm"][largest]["serialgw"]
    out[f"{largest} lines idle CPU ~0"] = (f"{mine['idle_cpu_percent']:.2f} %", mine["idle_cpu_percent"] < 1.0)
    perLine = mine.get("rss_KiB_per_added_line")
    if perLine is not None:
        out["RSS per line <= 32 KiB"] = (f"{perLine:.1f} KiB", perLine <= 32)
    if "512" in farms:
        for peer in ("ser2net", "ser2net-tuned"):
            ratio = paired(farms["512"]["serialgw"], farms["512"][peer], "echo_msgs_per_s")
            verdict(f"echo msg/s at 512 lines >= {peer}'s", ratio, ratio[0] >= 1.0)
    for name, ratio, met in stuckTargets(results):
        if met is not None:
            verdict(name, ratio, met)
    for key in NEIGHBOUR_KEYS:
        for target in neighbourTargets(results, key):
            verdict(*target)
    return out


def paired(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], key: str,
           theirKey: Optional[str] = None) -> tuple[float, float, float]:
    """
    The ratio mine/theirs taken round by round (each pair measured within
    the same minute, so drift of the machine cancels), as (median, lowest,
    highest).
    """
    ratios = sorted(m[key] / t[theirKey or key] for m, t in zip(mine, theirs, strict=True) if t[theirKey or key])
    return statistics.median(ratios), ratios[0], ratios[-1]


def reportStuck(results: dict[str, Any]) -> None:
    figures = results["stuck"]
    print("\nstuck clients (one line; one raw client reads a flood, N raw clients never read)")
    print(f"{'server':15}{'N':>5}{'reader MiB/s':>14}  {'(rounds)':<26}{'all came':>9}{'CPU s/MiB':>11}"
          f"{'RSS KiB':>9}{'RSS KiB/stuck':>14}{'kernel KiB/stuck':>17}")
    for name, byCount in figures["median"].items():
        for n, values in byCount.items():
            rounds = figures["rounds"][name][n]
            each = ", ".join(f"{r['reader_MiBps']:.1f}" for r in rounds)
            came = f"{sum(bool(r['complete']) for r in rounds)}/{len(rounds)}"
            perStuck = ""
            if n != "0" and "0" in byCount:
                perStuck = f"{(values['rss_KiB'] - byCount['0']['rss_KiB']) / int(n):.1f}"
            kernel = f"{values['kernel_KiB_per_stuck']:.0f}" if n != "0" else ""
            print(f"{name:15}{n:>5}{values['reader_MiBps']:14.2f}  {'(' + each + ')':<26}{came:>9}"
                  f"{values['cpu_s_per_MiB']:11.4f}{values['rss_KiB']:9.0f}{perStuck:>14}{kernel:>17}")
    print(f"  ({figures.get('socat', SOCAT_STUCK)})")
    for name, ratio, met in stuckTargets(results):
        verdict = "       " if met is None else "met    " if met else "NOT met"
        print(f"  {verdict}  {name}: {ratio[0]:.2f} (rounds {ratio[1]:.2f}-{ratio[2]:.2f})")


def stuckMarkdown(stuck: dict[str, Any]) -> str:
    """The README's table of the stuck-clients scenario."""
    out = ["| stuck clients: one reader, N never read | N | reader MiB/s | rounds | RSS added per stuck client "
           "| kernel queue per stuck client |", "| --- | ---: | ---: | --- | ---: | ---: |"]
    for name, byCount in stuck["median"].items():
        for n, values in byCount.items():
            rates = ", ".join(f"{r['reader_MiBps']:.1f}" for r in stuck["rounds"][name][n])
            perStuck = kernel = ""
            if n != "0" and "0" in byCount:
                perStuck = f"{(values['rss_KiB'] - byCount['0']['rss_KiB']) / int(n):.1f} KiB"
                kernel = f"{values['kernel_KiB_per_stuck']:.0f} KiB"
            out.append(f"| {name} | {n} | {values['reader_MiBps']:.1f} | {rates} | {perStuck} | {kernel} |")
    return "\n".join(out)


def stuckTargets(results: dict[str, Any]) -> list[tuple[str, tuple[float, float, float], Optional[bool]]]:
    """
    Reader MiB/s with the most stuck clients over with none, round by round
    (issue 15: >= 0.5 for serialgw; ser2net's for comparison, no target:
    None), and serialgw's reader among them against ser2net's and against
    socat's lone reader.
    """
    rounds = results.get("stuck", {}).get("rounds", {})
    mine = rounds.get("serialgw", {})
    if "0" not in mine or len(mine) < 2:
        return []
    most = max(mine, key=int)
    out: list[tuple[str, tuple[float, float, float], Optional[bool]]] = []
    ratio = paired(mine[most], mine["0"], "reader_MiBps")
    out.append((f"serialgw's reader with {most} stuck clients >= 0.5 x with none", ratio, ratio[0] >= 0.5))
    theirs = rounds.get("ser2net-tuned", {})
    if most in theirs and "0" in theirs:
        ratio = paired(theirs[most], theirs["0"], "reader_MiBps")
        out.append((f"ser2net-tuned's reader with {most} stuck clients / with none (for comparison)", ratio, None))
        ratio = _pairedOrInf(mine[most], theirs[most])
        out.append((f"serialgw's reader with {most} stuck clients >= ser2net-tuned's", ratio, ratio[0] >= 1.0))
    if "0" in rounds.get("socat", {}):
        ratio = paired(mine[most], rounds["socat"]["0"], "reader_MiBps")
        out.append((f"serialgw's reader with {most} stuck clients >= 0.5 x socat's lone reader", ratio,
                    ratio[0] >= 0.5))
    return out


def _pairedOrInf(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """As paired(), a reader that got nothing beside one that did counting as infinitely better."""
    ratios = sorted(m["reader_MiBps"] / t["reader_MiBps"] if t["reader_MiBps"] else float("inf")
                    for m, t in zip(mine, theirs, strict=True))
    return statistics.median(ratios), ratios[0], ratios[-1]


NEIGHBOUR_KEYS = ("neighbour", "neighbour_paced")


def _flood(figures: dict[str, Any]) -> str:
    rate = figures.get("rate", 0.0)
    return f"A paced at {rate:g} MiB/s" if rate else "A at full speed"


def reportNeighbour(results: dict[str, Any], key: str = "neighbour") -> None:
    figures = results[key]
    print(f"\nneighbour (two lines in one gateway; B's 1-byte round trip, A idle then flooding a raw reader; "
          f"{_flood(figures)})")
    print(f"{'server':16}{'idle p50 ms':>12}{'idle p99 ms':>12}{'flood p50 ms':>13}{'flood p99 ms':>13}"
          f"{'A MiB/s':>9}{'CPU %':>7}   flood p50/idle p50")
    for name, values in figures["median"].items():
        ratio = paired(figures["rounds"][name], figures["rounds"][name], "flood_p50_ms", "idle_p50_ms")
        print(f"{name:16}{values['idle_p50_ms']:12.3f}{values['idle_p99_ms']:12.3f}{values['flood_p50_ms']:13.3f}"
              f"{values['flood_p99_ms']:13.3f}{values['flood_MiBps']:9.1f}{values['flood_cpu_percent']:7.0f}   "
              f"{ratio[0]:.2f} ({ratio[1]:.2f}-{ratio[2]:.2f})")
    rounds = figures["rounds"]
    for peer in (p for p in rounds if p != "serialgw"):
        ratios = ", ".join(
            f"{key} {r[0]:.2f} ({r[1]:.2f}-{r[2]:.2f})"
            for key in ("idle_p50_ms", "flood_p50_ms", "flood_p99_ms", "flood_MiBps")
            for r in [paired(rounds["serialgw"], rounds[peer], key)])
        print(f"serialgw/{peer}: {ratios}")


def neighbourMarkdown(figures: dict[str, Any]) -> str:
    """The README's table of a neighbour scenario (full speed or paced)."""
    out = [f"| quiet line B beside A flooding ({_flood(figures)}) | B idle p50 (ms) | idle p99 | flooding p50 "
           "| flooding p99 | flooding p50 / idle p50 | A's flood (MiB/s) | server CPU |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, values in figures["median"].items():
        ratio = paired(figures["rounds"][name], figures["rounds"][name], "flood_p50_ms", "idle_p50_ms")
        out.append(f"| {name} | {values['idle_p50_ms']:.3f} | {values['idle_p99_ms']:.3f} | "
                   f"{values['flood_p50_ms']:.3f} | {values['flood_p99_ms']:.3f} | "
                   f"{ratio[0]:.2f} ({ratio[1]:.2f}-{ratio[2]:.2f}) | {values['flood_MiBps']:.1f} | "
                   f"{values['flood_cpu_percent']:.0f} % |")
    return "\n".join(out)


def neighbourTargets(results: dict[str, Any], key: str = "neighbour") -> list[tuple[str, tuple[float, float, float], bool]]:
    """Issue 15 target 1: B's p50 and p99 with A flooding <= ser2net's, and p50 <= 1.3 x B's idle p50."""
    figures = results.get(key, {})
    rounds = figures.get("rounds", {})
    if "serialgw" not in rounds:
        return []
    how = f" ({_flood(figures)})"
    mine = rounds["serialgw"]
    out = []
    if "ser2net-tuned" in rounds:
        for figure in ("flood_p50_ms", "flood_p99_ms"):
            ratio = paired(mine, rounds["ser2net-tuned"], figure)
            out.append((f"quiet line's {figure[6:9]} beside a flood <= ser2net-tuned's{how}", ratio, ratio[0] <= 1.0))
    # The issue asks this of the p50 only (a p99 from 500-2000 samples on a
    # shared machine is a handful of scheduling accidents).
    ratio = paired(mine, mine, "flood_p50_ms", "idle_p50_ms")
    out.append((f"quiet line's p50 beside a flood <= 1.3 x its idle p50{how}", ratio, ratio[0] <= 1.3))
    return out


def reportShards(results: dict[str, Any]) -> None:
    shards = results["shards"]
    print(f"\nserialgw in several processes (--shard I/N), {shards['lines']} lines, one client each, "
          f"echo for {shards['seconds']:.0f} s a round")
    print(f"{'processes':>10}{'echo msg/s':>12}{'  (rounds)':<34}{'CPU us/msg':>11}{'cores':>7}"
          f"{'client cores':>13}{'RSS MiB':>9}")
    for n, runs in shards["rounds"].items():
        median = shards["median"][n]
        rates = ", ".join(f"{r['echo_msgs_per_s']:.0f}" for r in runs)
        perMsg = median["user_us_per_msg"] + median["system_us_per_msg"]
        print(f"{n:>10}{median['echo_msgs_per_s']:12.0f}  {'(' + rates + ')':<32}{perMsg:11.1f}"
              f"{perMsg * median['echo_msgs_per_s'] / 1e6:7.2f}{median['client_cpu_cores']:13.2f}"
              f"{median['rss_KiB'] / 1024:9.0f}")
    ratios = shards["echo_ratio"]
    print(f"  echo rate, 2 processes / 1: {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}; "
          f"{os.cpu_count()} cores, the load generator on them too)")


def shardsMarkdown(shards: dict[str, Any]) -> str:
    """The README's table of the shards scenario."""
    out = [f"| {shards['lines']} lines, one client each | echo msg/s | rounds | CPU µs per message | cores used "
           "| load generator's cores | RSS |", "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for n, runs in shards["rounds"].items():
        median = shards["median"][n]
        perMsg = median["user_us_per_msg"] + median["system_us_per_msg"]
        rates = ", ".join(f"{r['echo_msgs_per_s']:.0f}" for r in runs)
        out.append(f"| serialgw, {n} process(es) | {median['echo_msgs_per_s']:.0f} | {rates} | {perMsg:.1f} | "
                   f"{perMsg * median['echo_msgs_per_s'] / 1e6:.2f} | {median['client_cpu_cores']:.2f} | "
                   f"{median['rss_KiB'] / 1024:.0f} MiB |")
    ratios = shards["echo_ratio"]
    out += ["", f"Echo rate, 2 processes / 1: {statistics.median(ratios):.2f} "
                f"(rounds {min(ratios):.2f}-{max(ratios):.2f})."]
    return "\n".join(out)
