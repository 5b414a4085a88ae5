#!/usr/bin/env python3
"""
What a client that never reads costs a running gateway: the RSS of
`twistd serialgw` (on a pty pair, as users run it) before a misbehaving
client, once its flood has settled, and after it has left.  Not a test: the
figures are for people (the tests pin the bytes and states).

    python3 bench/hostile.py [--repo DIR] [CASE ...]

Cases:
  ayt     2 MiB of IAC AYT on a telnet listener
  do      2 MiB of IAC DO 99 (each answered with a 3-byte IAC WONT 99)
  help    2 MiB of ^]? on a telnet listener with the escape menu
  who     ^]w over and over (2 MiB) with 60 other clients on the line
  remote  64 MiB typed into a remote device (tcp:) that never reads
  pipe    128 MiB of device output to a pipe: listener nobody reads
  mixed   a device flood read by a raw client beside 6 hostile ones at once
          (AYT, DO, ^]?, ^]w floods on telnet; a raw one typing and never
          reading; a telnet one reading slowly): how much the reader got,
          second by second; --crowd N more telnet clients that never read,
          --block one on a raw,policy=block listener too (which stops the
          line for everyone: block is for a single data client), --policy
          block both listeners so (as bench/run.py's single line has them)
  ctrlc   a person reading a flooding console slowly (20 and 100 KB/s) on
          telnet,escape=^] sends ^C, then IAC IP: how late each reaches the
          device (the device writes 'y' as fast as the pty takes it until it
          reads 0x03)
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
from typing import Callable

MiB = 1024 * 1024
REQUESTS = 2 * MiB
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss(pid: int) -> int:
    """Resident set size in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def settled(pid: int, limit: float = 120.0) -> int:
    """RSS once it has stopped moving (under 256 KiB in 2 s), or after limit seconds."""
    deadline = time.monotonic() + limit
    last = rss(pid)
    while time.monotonic() < deadline:
        time.sleep(2)
        now = rss(pid)
        if abs(now - last) < 256:
            return now
        last = now
    return last


class Gateway:
    def __init__(self, repo: str, args: list[str], drain: bool = True) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slaveName = os.ttyname(slave)
        self._slave = slave
        env = dict(os.environ, PYTHONPATH=repo)
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
                "serialgw", "--device", self.slaveName, *args]
        self.proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = b""
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        # The far end of the serial line reads everything, so the device never backs up (unless the case reads it).
        if drain:
            threading.Thread(target=self._drainPty, daemon=True).start()
        if not self._ready.wait(30):
            raise SystemExit(f"gateway did not start:\n{self.output.decode(errors='replace')}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output += line
            if b"listener ready on" in line:
                self._ready.set()

    def _drainPty(self) -> None:
        while True:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def port(self, protocol: str = "telnet") -> int:
        # (Ready at the first listener: the others' lines may follow.)
        deadline = time.monotonic() + 30
        while not (match := re.search(protocol.encode() + rb" listener ready on 127\.0\.0\.1:(\d+)", self.output)):
            assert time.monotonic() < deadline, self.output
            time.sleep(0.05)
        return int(match.group(1))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            print("        (the gateway did not stop within 30 s of SIGTERM: killed)", flush=True)
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self._slave)


def nonReader(port: int) -> socket.socket:
    """A client with a small receive buffer that never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    return s


def flood(s: socket.socket, payload: bytes, total: int, stall: float = 3.0, count: list[int] | None = None) -> int:
    """
    Send payload repeated up to total bytes; stop when the gateway stops
    reading for `stall` s.  `count`: its first item kept at what is sent so far.
    """
    chunk = payload * (65536 // len(payload))
    s.setblocking(False)
    sent = 0
    last = time.monotonic()
    while sent < total:
        try:
            n = s.send(chunk[: total - sent])
        except BlockingIOError:
            if time.monotonic() - last > stall:
                break
            time.sleep(0.01)
            continue
        sent += n
        if count is not None:
            count[0] = sent
        last = time.monotonic()
    return sent


def report(name: str, sent: int, before: int, during: int, after: int) -> dict[str, object]:
    held = (during - before) * 1024
    result = {"case": name, "sent_bytes": sent, "rss_before_kib": before, "rss_flood_kib": during,
              "rss_after_leaving_kib": after, "held_per_byte_sent": round(held / sent, 3) if sent else None}
    print(f"{name:7} sent {sent / MiB:8.2f} MiB  RSS {before / 1024:7.1f} -> {during / 1024:7.1f} MiB "
          f"(+{(during - before) / 1024:.1f}), after leaving {after / 1024:7.1f} MiB; "
          f"held per byte sent {result['held_per_byte_sent']}", flush=True)
    return result


def caseRequests(repo: str, name: str, listener: str, payload: bytes, others: int = 0) -> dict[str, object]:
    gw = Gateway(repo, ["--port", listener])
    try:
        port = gw.port()
        crowd = [nonReader(port) for _ in range(others)]
        time.sleep(1)
        before = settled(gw.proc.pid)
        s = nonReader(port)
        sent = flood(s, payload, REQUESTS)
        during = settled(gw.proc.pid)
        s.close()
        for c in crowd:
            c.close()
        after = settled(gw.proc.pid)
        return report(name, sent, before, during, after)
    finally:
        gw.stop()


def caseRemote(repo: str) -> dict[str, object]:
    # A remote console that accepts and never reads.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    remotePort = server.getsockname()[1]
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        gw = Gateway(repo, ["--device", f"tcp:127.0.0.1:{remotePort}", "--port", "raw+tcp:0:interface=127.0.0.1"])
        # (--device given twice: the last wins.)
        try:
            port = gw.port("raw")
            time.sleep(1)
            before = settled(gw.proc.pid)
            s = nonReader(port)
            sent = flood(s, b"x" * 4096, 64 * MiB)
            during = settled(gw.proc.pid)
            s.close()
            after = settled(gw.proc.pid)
            return report("remote", sent, before, during, after)
        finally:
            gw.stop()
            server.close()
            del tmp


def casePipe(repo: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p")
        os.mkfifo(path + ".in")
        os.mkfifo(path + ".out")
        gw = Gateway(repo, ["--port", "tcp:0:interface=127.0.0.1", "--listen", f"pipe:{path}"])
        try:
            time.sleep(1)
            before = settled(gw.proc.pid)
            block = b"y" * 65536
            sent = 0
            fd = os.dup(gw.master)
            while sent < 128 * MiB:
                sent += os.write(fd, block)
            os.close(fd)
            during = settled(gw.proc.pid)
            return report("pipe", sent, before, during, during)
        finally:
            gw.stop()


def caseMixed(repo: str, seconds: float = 20.0, rate: float = 0.0, crowd: int = 0,
              block: bool = False, policy: str = "") -> dict[str, object]:
    options = f",policy={policy}" if policy else ""
    telnet = f"telnet,escape=^]{options}+tcp:0:interface=127.0.0.1"
    extra = ["--listen", "raw,policy=block+tcp:0:interface=127.0.0.1"] if block else []
    gw = Gateway(repo, ["--port", telnet, "--listen", f"raw{options}+tcp:0:interface=127.0.0.1", *extra])
    stop = threading.Event()
    try:
        tport, rport = gw.port("telnet"), gw.port("raw")
        got = [0]
        progress: list[tuple[float, int]] = []

        def reader() -> None:
            s = socket.create_connection(("127.0.0.1", rport))
            s.settimeout(0.5)
            if rate:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            while not stop.is_set():
                try:
                    data = s.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                got[0] += len(data)
                if rate:
                    # Read at about `rate` bytes a second.
                    time.sleep(len(data) / rate)
            s.close()

        def slowReader() -> None:
            s = socket.create_connection(("127.0.0.1", tport))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            while not stop.is_set():
                s.recv(2048)
                time.sleep(0.1)
            s.close()

        sentBy: dict[str, list[int]] = {}

        def flooder(port: int, payload: bytes) -> None:
            s = nonReader(port)
            count = sentBy[repr(payload[:3])] = [0]
            try:
                flood(s, payload, REQUESTS, stall=seconds, count=count)
            except OSError as e:
                print(f"        the {payload[:3]!r} flooder: {e} after {count[0]} bytes", flush=True)
            stop.wait()
            s.close()

        def deviceFlood() -> None:
            fd = os.dup(gw.master)
            block = b"y" * 4096
            while not stop.is_set():
                os.write(fd, block)
            os.close(fd)

        idle = [nonReader(tport) for _ in range(crowd)]
        if block:
            # (Listed after the plain raw listener.)
            while len(ready := re.findall(rb"raw listener ready on 127\.0\.0\.1:(\d+)", gw.output)) < 2:
                time.sleep(0.05)
            blockPort = int(ready[1])
            # A plain client (the kernel's default receive buffer, autotuned) that never reads.
            idle.append(socket.create_connection(("127.0.0.1", blockPort)))
        jobs: list[tuple[Callable[..., None], tuple[object, ...]]] = [
            (reader, ()), (slowReader, ()),
            (flooder, (tport, b"\xff\xf6")), (flooder, (tport, b"\xff\xfd\x63")),
            (flooder, (tport, b"\x1d?")), (flooder, (tport, b"\x1dw")),
            (flooder, (rport, b"x" * 64)), (deviceFlood, ())]
        threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in jobs]
        before = rss(gw.proc.pid)
        start = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - start < seconds:
            time.sleep(1)
            progress.append((round(time.monotonic() - start, 1), got[0]))
            print(f"        {progress[-1][0]:5.1f} s: reader has {got[0] / MiB:8.2f} MiB, "
                  f"RSS {rss(gw.proc.pid) / 1024:.1f} MiB; the others sent (KiB) "
                  + " ".join(f"{k} {v[0] // 1024}" for k, v in sentBy.items()), flush=True)
        during = rss(gw.proc.pid)
        stop.set()
        for s in idle:
            s.close()
        # What the gateway did to them (cut, disconnected, not read), as its log says.
        for logLine in gw.output.decode(errors="replace").splitlines():
            if any(word in logLine for word in ("disconnected", "cut", "not read", "cannot keep up", "caught up")):
                print("        gateway:", logLine.split("] ", 1)[-1][:200], flush=True)
        return report("mixed", got[0], before, during, rss(gw.proc.pid))
    finally:
        stop.set()
        gw.stop()


def caseCtrlC(repo: str, listener: str, rate: float, key: bytes) -> dict[str, object]:
    gw = Gateway(repo, ["--port", listener], drain=False)
    seen: list[float] = []
    stop = threading.Event()
    try:
        port = gw.port(listener.split(",")[0].split("+")[0])

        def device() -> None:
            os.set_blocking(gw.master, False)
            block = b"y" * 4096
            while not stop.is_set():
                try:
                    os.write(gw.master, block)
                except BlockingIOError:
                    time.sleep(0.001)
                try:
                    if b"\x03" in os.read(gw.master, 65536):
                        seen.append(time.monotonic())
                        return
                except BlockingIOError:
                    pass

        threading.Thread(target=device, daemon=True).start()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        start = time.monotonic()
        sent = None
        while time.monotonic() - start < 60 and not seen:
            if sent is None and time.monotonic() - start > 2:
                sent = time.monotonic()
                s.send(key)
            s.recv(2048)
            time.sleep(2048 / rate)
        late = round(seen[0] - sent, 2) if seen and sent is not None else None
        print(f"ctrlc   {listener} reading {rate / 1000:.0f} KB/s, {key!r}: "
              + (f"at the device {late:.2f} s after it was sent" if late is not None else
                 "not at the device within 60 s"), flush=True)
        s.close()
        return {"case": "ctrlc", "listener": listener, "rate": rate, "key": repr(key), "late_s": late}
    finally:
        stop.set()
        gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=HERE, help="the serialgw tree to run (default: this one)")
    parser.add_argument("--outbuf", type=int, default=0, help="outbuf= on the telnet listener (default: its default)")
    parser.add_argument("--mib", type=int, default=2, help="MiB the request cases send (default 2)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="mixed: the raw reader reads about this many bytes a second (default: as fast as it can)")
    parser.add_argument("--crowd", type=int, default=0, help="mixed: this many more telnet clients that never read")
    parser.add_argument("--block", action="store_true",
                        help="mixed: and one that never reads on a raw,policy=block listener")
    parser.add_argument("--policy", default="", help="mixed: policy= on both listeners (block: as bench/run.py's single line)")
    parser.add_argument("cases", nargs="*", default=["ayt", "do", "help", "who", "remote", "pipe"])
    options = parser.parse_args()
    global REQUESTS
    REQUESTS = options.mib * MiB
    telnet = f"telnet,outbuf={options.outbuf}" if options.outbuf else "telnet"
    for case in options.cases:
        if case == "ayt":
            caseRequests(options.repo, "ayt", f"{telnet}+tcp:0:interface=127.0.0.1", b"\xff\xf6")
        elif case == "do":
            caseRequests(options.repo, "do", f"{telnet}+tcp:0:interface=127.0.0.1", b"\xff\xfd\x63")
        elif case == "help":
            caseRequests(options.repo, "help", f"{telnet},escape=^]+tcp:0:interface=127.0.0.1", b"\x1d?")
        elif case == "who":
            caseRequests(options.repo, "who", f"{telnet},escape=^]+tcp:0:interface=127.0.0.1", b"\x1dw",
                         others=60)
        elif case == "remote":
            caseRemote(options.repo)
        elif case == "pipe":
            casePipe(options.repo)
        elif case == "mixed":
            caseMixed(options.repo, rate=options.rate, crowd=options.crowd, block=options.block, policy=options.policy)
        elif case == "ctrlc":
            for rate in (20000.0, 100000.0):
                for key in (b"\x03", b"\xff\xf4"):
                    caseCtrlC(options.repo, "telnet,escape=^]+tcp:0:interface=127.0.0.1", rate, key)
        else:
            raise SystemExit(f"unknown case {case!r}")


if __name__ == "__main__":
    main()
