"""
Clients on this machine: a file that collects device output (QEMU's
C{file:}), and byte streams on file descriptors (QEMU's C{pipe:} FIFO pair,
C{stdio}) carried by Twisted's StandardIO.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import stdio
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.line import ClientEvents, IClient, Line, Role
from serialgw.raw import RawClient

log = Logger()


@implementer(IClient)
class FileClient(ClientEvents):
    """Device output appended to a file; nothing is read from it."""

    def __init__(self, line: Line, path: str) -> None:
        self.line = line
        self.path = path
        self.peer = f"file:{path}"
        self.role = Role.READONLY
        # A log file is not someone the device should wait for.
        self.wakesLine = False
        self._fd = self._open()
        line.attach(self)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def reopen(self) -> None:
        """Open the path again (logrotate moved the file); the file in hand is kept if that fails."""
        try:
            fd = self._open()
        except OSError as e:
            log.error("{line}: cannot reopen {path}: {reason}; writing on to the file it was", line=self.line.name,
                      path=self.path, reason=e.strerror)
            return
        os.close(self._fd)
        self._fd = fd

    def deliver(self, data: bytes) -> None:
        try:
            os.write(self._fd, data)
        except OSError as e:
            log.error("{line}: cannot write {path}: {reason}", line=self.line.name, path=self.path, reason=e.strerror)


    def close(self) -> None:
        self.line.detach(self)
        os.close(self._fd)


def fifoPair(path: str) -> tuple[int, int]:
    """
    QEMU's C{pipe:PATH}: read C{PATH.in} and write C{PATH.out}, or PATH both
    ways when those do not exist.  Opened read-write, so neither open nor
    read waits for (or ends with) the program at the other end.
    """
    inPath, outPath = path + ".in", path + ".out"
    if not (os.path.exists(inPath) and os.path.exists(outPath)):
        inPath = outPath = path
    flags = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC
    fdIn = os.open(inPath, flags)
    try:
        fdOut = fdIn if outPath == inPath else os.open(outPath, flags)
    except OSError:
        os.close(fdIn)
        raise
    return fdIn, fdOut


def streamClient(line: Line, reactor: Any, stdin: int = 0, stdout: int = 1, name: str = "stdio") -> Any:
    """A raw client on a pair of descriptors, called C{name} (C{w}, the status page); returns its transport."""
    client = RawClient(line, peer=name)
    return stdio.StandardIO(client, stdin=stdin, stdout=stdout, reactor=reactor)  # type: ignore[call-arg]
