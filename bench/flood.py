#!/usr/bin/env python3
"""
The flooding neighbour of bench/run.py's neighbour scenario, as a process
of its own (so that its work never holds the measuring process's GIL): it
connects a raw client to the flooding line's port, and, once a line
arrives on stdin, writes the line's device (a pty master it inherits) as
fast as it can while it reads the client as fast as it can.  At the next
line on stdin it prints the payload bytes the client received and the
seconds between the two lines, then exits.  With RATE (MiB/s), it writes
4 KiB at a time no faster than that on average (the same offered load for
every server measured).

    python3 bench/flood.py MASTER_FD PORT [RATE]
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

CHUNK = bytes(range(256)) * 256  # 64 KiB
MiB = 1024 * 1024


def main(master: int, port: int, rate: float = 0.0) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    received = [0]
    flooding = threading.Event()

    def write() -> None:
        view = memoryview(CHUNK)
        if not rate:
            while flooding.is_set():
                os.write(master, view)
            return
        # Paced: small writes, each at its time (sleeping when ahead).
        view, written, began = view[:4096], 0, time.perf_counter()
        while flooding.is_set():
            written += os.write(master, view)
            ahead = written / (rate * MiB) - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)

    def read() -> None:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return
            received[0] += len(data)

    threading.Thread(target=read, daemon=True).start()
    print("connected", flush=True)
    sys.stdin.readline()
    flooding.set()
    start, before = time.perf_counter(), received[0]
    threading.Thread(target=write, daemon=True).start()
    sys.stdin.readline()
    elapsed = time.perf_counter() - start
    print(received[0] - before, elapsed, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
