"""
The traffic the scenarios drive through a server, timed: 1-byte round
trips, byte-exact transfers (raw and telnet), a flood read against a
deadline, an echo on every line at once.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import socket
import threading
import time
from typing import Any, Callable

from .machine import Pty

MiB = 1024 * 1024


OFFER = bytes([255, 251, 1, 255, 251, 3, 255, 251, 0, 255, 253, 3, 255, 253, 0, 255, 253, 44])


AGREE = bytes([255, 253, 1, 255, 253, 3, 255, 253, 0, 255, 251, 3, 255, 251, 0, 255, 252, 44])


def readExactly(read: Callable[[int], bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        data = read(min(n - got, 1 << 20))
        if not data:
            raise EOFError
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def roundTrips(pty: Pty, sock: socket.socket, count: int) -> list[float]:
    """pty master -> server -> client, echoed -> server -> pty master, one byte."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        os.write(pty.master, b"x")
        readExactly(sock.recv, 1)
        sock.sendall(b"y")
        readExactly(lambda n: os.read(pty.master, n), 1)
        times.append(time.perf_counter() - start)
    return times


def throughput(pty: Pty, sock: socket.socket, size: int, toDevice: bool, telnet: bool) -> float:
    """
    MiB/s of payload one way, byte-exact (checked with a hash).  Over telnet
    (BINARY both ways) the wire carries the payload with IAC doubled: the
    sender sends that, the receiving end checks exactly that, so the
    benchmark's own unescaping costs nothing to the server measured.
    """
    data = os.urandom(size)
    wire = data.replace(b"\xff", b"\xff\xff") if telnet else data
    expected = hashlib.sha256(data if toDevice else wire).hexdigest()

    def produce() -> None:
        if toDevice:
            sock.sendall(wire)
        else:
            view = memoryview(data)
            while view:
                n = os.write(pty.master, view[:65536])
                view = view[n:]

    writer = threading.Thread(target=produce)
    start = time.perf_counter()
    writer.start()
    if toDevice:
        got = readExactly(lambda n: os.read(pty.master, n), size)
        actual = hashlib.sha256(got).hexdigest()
    else:
        digest, received = hashlib.sha256(), 0
        while received < len(wire):
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            digest.update(chunk)
            received += len(chunk)
        actual = digest.hexdigest()
    elapsed = time.perf_counter() - start
    writer.join()
    if actual != expected:
        raise AssertionError("bytes differ")
    return size / MiB / elapsed


def connectTelnet(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    readExactly(sock.recv, len(OFFER))
    sock.sendall(AGREE)
    sock.recv(100) if False else None
    return sock


def drainPending(sock: socket.socket) -> bytes:
    """What a socket has received already (notices), read without waiting."""
    got = b""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(1 << 16):
            got += chunk
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return got


def timedFlood(pty: Pty, sock: socket.socket, size: int, deadline: float, stall: float,
               check: bool = True) -> dict[str, Any]:
    """
    Up to C{size} bytes into the device while the reader reads them, for
    at most C{deadline} seconds, or until nothing came for C{stall} seconds
    (a server whose stuck clients stop the line: ser2net).  What the reader
    got must be the flood's first bytes, exactly (C{check}: not after a
    flood that stalled, whose rest may still come).  Its MiB/s over the
    time it read, and whether all came.
    """
    data = os.urandom(size)
    stop = threading.Event()

    def produce() -> None:
        view = memoryview(data)
        while view and not stop.is_set():
            if not _writable(pty.master, 0.1):
                continue
            try:
                n = os.write(pty.master, view[:65536])
            except BlockingIOError:
                continue
            view = view[n:]

    os.set_blocking(pty.master, False)
    writer = threading.Thread(target=produce)
    digest, received = hashlib.sha256(), 0
    start = last = time.perf_counter()
    writer.start()
    try:
        sock.settimeout(0.2)
        while received < size:
            now = time.perf_counter()
            if now - start > deadline or now - last > stall:
                break
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                raise EOFError
            digest.update(chunk)
            received += len(chunk)
            last = time.perf_counter()
    finally:
        stop.set()
        writer.join()
        sock.settimeout(None)
    if check and digest.hexdigest() != hashlib.sha256(data[:received]).hexdigest():
        raise AssertionError("bytes differ")
    elapsed = (last if received == size else time.perf_counter()) - start
    return {"MiBps": received / MiB / elapsed, "complete": received == size, "MiB": received / MiB}


def _writable(fd: int, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_WRITE)
        return bool(sel.select(timeout))


def echo(ptys: list[Pty], socks: list[socket.socket], seconds: float) -> float:
    """Every line at once: client sends 16 bytes, the device echoes, the client waits for them."""
    msg = b"0123456789abcdef"
    sel = selectors.DefaultSelector()
    for i, p in enumerate(ptys):
        os.set_blocking(p.master, False)
        sel.register(p.master, selectors.EVENT_READ, ("dev", i))
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, ("net", i))
    pending = [0] * len(socks)
    done = 0
    for s in socks:
        s.send(msg)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(0.1):
            kind, i = key.data
            if kind == "dev":
                try:
                    data = os.read(ptys[i].master, 65536)
                except BlockingIOError:
                    continue
                os.write(ptys[i].master, data)
            else:
                try:
                    data = socks[i].recv(65536)
                except BlockingIOError:
                    continue
                pending[i] += len(data)
                while pending[i] >= len(msg):
                    pending[i] -= len(msg)
                    done += 1
                    socks[i].send(msg)
    sel.close()
    return done / seconds
