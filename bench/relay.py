#!/usr/bin/env python3
"""
The least a Python process can do to serve one line (a control for bench/run.py's neighbour
scenario, `--only neighbour --control`; not serialgw): a tty, raw, and one TCP client, bytes
copied both ways and nothing else, in a loop of its own. With `spin` it polls without ever
sleeping (as a busy-polling reactor between events, without the reactor); with `sleep` the
kernel wakes it for each event (as socat). The same copying as a Twisted protocol and reader in a
reactor (bench/ownidle.py's bisection between this relay and serialgw): `twisted` in Twisted's own
epoll reactor, `gateway` in serialgw's (busy-polling as twistd serialgw's default), `gateway0` in
serialgw's with busy-polling off.

    python3 bench/relay.py DEVICE PORT spin|sleep|twisted|gateway|gateway0
"""

from __future__ import annotations

import os
import select
import socket
import sys
import termios
import tty


def openRaw(device: str) -> int:
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


def main(device: str, port: int, mode: str) -> None:
    if mode in ("twisted", "gateway", "gateway0"):
        reactorMain(device, port, mode)
        return
    fd = openRaw(device)
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


def reactorMain(device: str, port: int, mode: str) -> None:
    """The same copying in a reactor: the tty a reader, the client a protocol on a TCP listener."""
    if mode == "twisted":
        from twisted.internet import epollreactor
        epollreactor.install()
    else:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from serialgw.app import reactor as gateway
        gateway.install()
    from twisted.internet import protocol, reactor

    if mode == "gateway0":
        reactor.busyPoll.configure(0.0)  # type: ignore[attr-defined]
    fd = openRaw(device)
    connected: list[protocol.Protocol] = []

    class Client(protocol.Protocol):
        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)  # type: ignore[attr-defined]
            connected.append(self)
            reactor.addReader(ttyReader)  # type: ignore[attr-defined]

        def dataReceived(self, data: bytes) -> None:
            os.write(fd, data)

        def connectionLost(self, reason: object = None) -> None:
            reactor.stop()  # type: ignore[attr-defined]

    class TtyReader:
        def fileno(self) -> int:
            return fd

        def doRead(self) -> None:
            data = os.read(fd, 4096)
            if data:
                connected[0].transport.write(data)  # type: ignore[union-attr]

        def connectionLost(self, reason: object) -> None:
            pass

        def logPrefix(self) -> str:
            return "tty"

    ttyReader = TtyReader()
    factory = protocol.Factory.forProtocol(Client)
    reactor.listenTCP(port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
