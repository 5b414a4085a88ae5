"""
A line's console log: device output, each line stamped with the time, and
the line's events (attach, detach, take-over, break, device down/up)
marked; rotated by size and by day, a few old files kept.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.config.specs import LogSpec
from serialgw.interfaces import IConsoleLog
from serialgw.line.hub import Line, Role

log = Logger()

NOT_A_FILE = "it is not a regular file (a FIFO or a device); a file: listener can feed one"


@implementer(IConsoleLog)
class ConsoleLog(ClientEvents):
    def __init__(self, line: Line, spec: LogSpec, clock: Any) -> None:
        self.line = line
        self.spec = spec
        self.clock = clock
        self.peer = f"log:{spec.path}"
        self.role = Role.READONLY
        self.wakesLine = False
        self.atLineStart = True
        # Bytes not written since a write failed (a full disk): the failure
        # is logged once, and the recovery once, not each chunk of output.
        self.lost = 0
        self._failing = False
        self._open()
        line.attach(self)
        line.logs.append(self)

    def _open(self) -> None:
        # A symlink at the path is not followed (someone could point it at a
        # file the gateway may write): ELOOP, named as such.  Nor is a FIFO
        # or a device waited on (opening a FIFO nobody reads would hold the
        # reactor for good): a console log is a regular file.
        try:
            fd = os.open(self.spec.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                         | os.O_NONBLOCK, 0o640)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise OSError(errno.ELOOP, "it is a symbolic link, not followed", self.spec.path) from None
            if e.errno == errno.ENXIO:
                raise OSError(errno.ENXIO, NOT_A_FILE, self.spec.path) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, NOT_A_FILE, self.spec.path)
        self._fd, self.size = fd, st.st_size
        self.day = self._today()

    def _today(self) -> tuple[int, int, int]:
        return time.localtime(self.clock.seconds())[:3]

    def _stamp(self) -> bytes:
        return time.strftime(self.spec.format, time.localtime(self.clock.seconds())).encode()

    def _write(self, data: bytes) -> None:
        try:
            if self.spec.maxSize and self.size + len(data) > self.spec.maxSize and self.size:
                # Truncated meanwhile (logrotate's copytruncate)?  Then it is
                # not full: the file is appended to, so it starts again at 0.
                self.size = os.fstat(self._fd).st_size
            if (self.spec.maxSize and self.size + len(data) > self.spec.maxSize and self.size) or (
                self.spec.daily and self._today() != self.day
            ):
                self.rotate()
            while data:  # a short write (the disk filling up) is followed by the rest, or its error
                n = os.write(self._fd, data)
                self.size += n
                data = data[n:]
        except OSError as e:
            self.lost += len(data)
            if not self._failing:
                self._failing = True
                log.error("{line}: cannot write log {path}: {reason}; console output is not logged until it can be",
                          line=self.line.name, path=self.spec.path, reason=e.strerror)
            return
        if self._failing:
            self._failing = False
            log.info("{line}: log {path} written again; {lost} bytes were not logged", line=self.line.name,
                     path=self.spec.path, lost=self.lost)
            self.lost = 0

    def rotate(self) -> None:
        """
        path -> path.1 -> ... -> path.KEEP (dropped), then a new path.  If
        the new path cannot be opened (a symlink put there, no room), the
        file in hand is kept: the descriptor is never left closed.
        """
        old = self._fd
        path, keep = self.spec.path, self.spec.keep
        try:
            for i in range(keep - 1, 0, -1):
                if os.path.exists(f"{path}.{i}"):
                    os.replace(f"{path}.{i}", f"{path}.{i + 1}")
            if keep > 0:
                os.replace(path, f"{path}.1")
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass  # moved or removed by someone else (an external logrotate): start a new file
        except OSError as e:
            # The path made a directory, a rename refused: the output goes on
            # to the file in hand, and the next rotation is due a full size
            # or a day later (not at each write, one error each).
            self.size, self.day = 0, self._today()
            log.error("{line}: cannot rotate log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=path, reason=e.strerror)
            return
        try:
            self._open()
        except OSError as e:
            self._fd, self.size, self.day = old, 0, self._today()
            log.error("{line}: cannot open a new log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=path, reason=e.strerror)
            return
        os.close(old)

    def reopen(self) -> bool:
        """
        Open the path again (logrotate moved the file, then SIGUSR1): new
        output goes to a file at the path.  If the path cannot be opened,
        the file in hand is kept.
        """
        old = self._fd
        try:
            self._open()
        except OSError as e:
            log.error("{line}: cannot reopen log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=self.spec.path, reason=e.strerror)
            return False
        os.close(old)
        return True

    def deliver(self, data: bytes) -> None:
        # One stamp a chunk, put after every newline in one call.
        if not data:
            return
        stamp = self._stamp()
        body = data.replace(b"\n", b"\n" + stamp)
        if self.atLineStart:
            body = stamp + body
        self.atLineStart = data.endswith(b"\n")
        if self.atLineStart:
            body = body[: len(body) - len(stamp)]
        self._write(body)

    def event(self, text: str) -> None:
        prefix = b"" if self.atLineStart else b"\n"
        self._write(prefix + self._stamp() + f"[serialgw: {text}]\n".encode("utf-8", "replace"))
        self.atLineStart = True

    def close(self) -> None:
        if self in self.line.logs:
            self.line.logs.remove(self)
        self.line.detach(self)
        os.close(self._fd)
