#!/usr/bin/env python3
"""
The least a Python process can do to serve one line (a control for bench/run.py's neighbour
scenario, `--only neighbour --control`; not serialgw): a tty, raw, and one TCP client, bytes
copied both ways and nothing else, in a loop of its own. With `spin` it polls without ever
sleeping (as a busy-polling reactor between events, without the reactor); with `sleep` the
kernel wakes it for each event (as socat).

    python3 bench/relay.py DEVICE PORT spin|sleep
"""

from __future__ import annotations

import os
import select
import socket
import sys
import termios
import tty


def main(device: str, port: int, mode: str) -> None:
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client, _ = listener.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.setblocking(False)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(client.fileno(), select.POLLIN)
    timeout = 0 if mode == "spin" else -1
    while True:
        for ready, _ in poller.poll(timeout):
            try:
                if ready == fd:
                    data = os.read(fd, 4096)
                    if data:
                        client.sendall(data)
                else:
                    data = client.recv(4096)
                    if not data:
                        return
                    os.write(fd, data)
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
