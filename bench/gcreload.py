"""
The cycle collector's full (generation 2) collections around reloads of a
farm, and whether gc.freeze() after each reload would help.

A gateway of N lines (fake ports on a memory reactor, a console log each)
is started as twistd serialgw starts it (gc.collect(), gc.freeze()), then
reloaded R times, every line's device changed (each reload closes every
line and opens a new one).  Each full collection's CPU time is taken with
gc.callbacks (thread time: others' load on the machine does not count).

    python3 bench/gcreload.py MODE [N [R]]

MODE: none (as the gateway does), freeze (gc.collect() and gc.freeze()
after each reload), unfreeze-freeze (gc.unfreeze() before each reload,
gc.collect() and gc.freeze() after it).  At the end: the objects frozen,
whether a line of the start is still alive after the reloads closed it
(in the frozen generation, the collector never sees it), and one last
gc.unfreeze() + gc.collect(): what was left for it.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
import weakref
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet.testing import MemoryReactorClock  # noqa: E402

from serialgw.app.service import GatewayService  # noqa: E402
from serialgw.config.file import loadFile  # noqa: E402
from tests.fakes import RecordingPort, oneTurn  # noqa: E402


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "none"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    reloads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    directory = tempfile.mkdtemp(prefix="gcreload-")
    clock = MemoryReactorClock()

    def lines(generation: int) -> Any:
        path = os.path.join(directory, "farm.toml")
        with open(path, "w") as f:
            f.write("[defaults]\nlock = false\n")
            for i in range(count):
                f.write(f'[lines.l{i}]\ndevice = "/dev/fake-{generation}-{i}"\n'
                        f'listen = "raw+tcp:0:interface=127.0.0.1"\nlog = "{directory}/l{i}.log"\n')
        return loadFile(path).lines

    def openPort(*args: Any) -> RecordingPort:
        port = RecordingPort(clock)
        port.modem = 0
        return port

    pauses: list[tuple[str, float]] = []
    began = [0.0]
    phase = ["start"]

    def collected(what: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if what == "start":
            began[0] = time.thread_time()
        else:
            pauses.append((phase[0], (time.thread_time() - began[0]) * 1e3))

    gc.callbacks.append(collected)
    service = GatewayService(lines(0), reactor=clock, openPort=openPort)
    service.privilegedStartService()
    service.startService()
    gc.collect()
    gc.freeze()
    probe = weakref.ref(next(iter(service.lines.values())))
    for generation in range(1, reloads + 1):
        phase[0] = f"reload {generation}"
        if mode == "unfreeze-freeze":
            gc.unfreeze()
        done = service.reload(lines(generation))
        started = time.time()
        while not done.called or not all(getattr(line.device, "port", None) for line in service.lines.values()):
            oneTurn(clock)
            if time.time() - started > 60:
                raise SystemExit("the reload did not end")
            if not clock.getDelayedCalls():
                time.sleep(0.01)  # (a device's first open comes back from a thread)
        del clock.tcpServers[:]  # (the memory reactor keeps every listener it was given)
        if mode in ("freeze", "unfreeze-freeze"):
            phase[0] = f"reload {generation}: collect+freeze"
            gc.collect()
            gc.freeze()
        phase[0] = f"serving {generation}"
        for _ in range(30):
            for line in service.lines.values():
                line.deviceDataReceived(b"x" * 100 + b"\n")
                port = getattr(line.device, "port", None)
                if isinstance(port, RecordingPort):
                    port.events.clear()
            oneTurn(clock)
    frozen = gc.get_freeze_count()
    alive = probe() is not None
    phase[0] = "at the end: unfreeze + collect"
    gc.unfreeze()
    gc.collect()
    print(f"{mode}, {count} lines, {reloads} reloads: {frozen} objects frozen; a line of the start alive after the "
          f"reloads closed it: {alive}; RSS {int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') >> 20} MB")
    for name, ms in pauses:
        print(f"  {name:34s} {ms:7.2f} ms")


if __name__ == "__main__":
    main()
