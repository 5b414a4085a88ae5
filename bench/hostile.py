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
    def __init__(self, repo: str, args: list[str]) -> None:
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
        # The far end of the serial line reads everything, so the device never backs up.
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
        match = re.search(protocol.encode() + rb" listener ready on 127\.0\.0\.1:(\d+)", self.output)
        assert match, self.output
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


def flood(s: socket.socket, payload: bytes, total: int, stall: float = 3.0) -> int:
    """Send payload repeated up to total bytes; stop when the gateway stops reading for `stall` s."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=HERE, help="the serialgw tree to run (default: this one)")
    parser.add_argument("--outbuf", type=int, default=0, help="outbuf= on the telnet listener (default: its default)")
    parser.add_argument("--mib", type=int, default=2, help="MiB the request cases send (default 2)")
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
        else:
            raise SystemExit(f"unknown case {case!r}")


if __name__ == "__main__":
    main()
