#!/usr/bin/env python3
"""
The flooding neighbour of bench/run.py's neighbour scenario, as a process
of its own (so that its work never holds the measuring process's GIL): it
connects a raw client to the flooding line's port, and, once a line
arrives on stdin, writes the line's device (a pty master it inherits) as
fast as it can while it reads the client as fast as it can.  At the next
line on stdin it prints the payload bytes the client received and the
seconds between the two lines, then exits.

    python3 bench/flood.py MASTER_FD PORT
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

CHUNK = bytes(range(256)) * 256  # 64 KiB


def main(master: int, port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    received = [0]
    flooding = threading.Event()

    def write() -> None:
        view = memoryview(CHUNK)
        while flooding.is_set():
            os.write(master, view)

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
    main(int(sys.argv[1]), int(sys.argv[2]))
