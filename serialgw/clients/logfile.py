"""
A console log's file, as its writer handles it: opened (a regular file,
no symlink followed, held with flock; the first open too, a job of the
writer: a file system that does not answer holds that log only),
rotated by size and by day (only regular files renamed), a day told from
the clock.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from datetime import date, timedelta
from typing import Any, Optional

from twisted.logger import Logger

from serialgw.clients.loglock import release, take
from serialgw.clients.logwriter import QUEUE_BOUND, FileWrites
from serialgw.config.logspec import LogSpec
from serialgw.config.paths import NotRegular, openIfRegular
from serialgw.line.hub import Line

log = Logger(namespace="serialgw.clients.consolelog")

# Seconds a start waits for the console logs' first opens, together (see awaitOpens).
START_WAIT = 5.0

NOT_A_FILE = "it is not a regular file (a FIFO or a device); a file: listener can feed one"


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def kindOf(mode: int) -> str:
    """What a file is, for people: a directory, a symbolic link, ..., another file (a regular one not ours)."""
    return _KINDS.get(stat.S_IFMT(mode), "another file")


class LogFile:
    """What a console log does to its file (see L{serialgw.clients.consolelog.ConsoleLog})."""

    line: Line
    spec: LogSpec
    clock: Any
    size: int
    day: tuple[int, int, int]
    _mode: int
    _fd: int
    _key: Optional[tuple[int, int]]
    _fileAtLineStart: bool
    # The file as opened ends inside a line that is not the output's (see _endsInsideALine).
    _staleLine: bool
    # After a reopen inside a line of output: the moved file (descriptor, lock) until the next write (see _endMoved).
    _moved: Optional[tuple[int, Optional[tuple[int, int]]]]
    _inTheWay: Optional[tuple[str, int, int, int]]
    _writes: FileWrites
    # The first open's outcome (see _openLater): set once the writer has tried; why it could not, or None.
    opening: threading.Event
    openError: Optional[OSError]
    # What awaitOpens says of it, and whether its open is made by a thread (waited for at start).
    openWhat: str
    openThreaded: bool

    def _openLater(self) -> None:
        """
        The file's first open, the first job of its writer (after those of
        a log on its path still being written): the output that comes
        meanwhile waits for it, bounded as any.  Its outcome: L{opening}.
        """
        self._fd, self._key, self.size = -1, None, 0
        self.day = self._today()
        self.openError = None
        self.opening = threading.Event()
        self.openWhat, self.openThreaded = f"log {self.spec.path}", self._writes.mode == "thread"
        self._writes.put(self._openFirst, None)

    def _openFirst(self, _: list[None]) -> None:
        try:
            self._open()
        except OSError as e:
            self.openError = e
            self._writes.tell(self._notOpened, e)
        finally:
            self.opening.set()

    def _notOpened(self, e: OSError) -> None:
        """(On the reactor's thread.)  The first open failed (see L{serialgw.clients.consolelog})."""

    def _open(self) -> None:
        # A symlink at the path is not followed (someone could point it at a
        # file the gateway may write): ELOOP, named as such.  Nor is a FIFO
        # or a device waited on (opening a FIFO nobody reads would hold the
        # reactor for good): a console log is a regular file, looked at
        # before it is opened (a serial port's open raises DTR).  Nor does
        # a tty put there meanwhile become the gateway's controlling
        # terminal (O_NOCTTY).
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
        try:
            try:
                fd = openIfRegular(self.spec.path, flags)
            except FileNotFoundError:
                fd = os.open(self.spec.path, flags | os.O_CREAT, self._mode)
        except NotRegular as e:
            if stat.S_ISLNK(e.mode):
                raise OSError(errno.ELOOP, "it is a symbolic link, not followed", self.spec.path) from None
            if stat.S_ISDIR(e.mode) or stat.S_ISSOCK(e.mode):
                raise OSError(errno.EINVAL, f"it is {kindOf(e.mode)}, not a regular file", self.spec.path) from None
            raise OSError(errno.EINVAL, NOT_A_FILE, self.spec.path) from None
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
        try:
            # One gateway a file (see serialgw.clients.loglock).
            key = take(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._key, self.size = fd, key, st.st_size
        self.day = self._today()
        self._fileAtLineStart = True
        self._staleLine = _endsInsideALine(fd, st.st_size)

    def _today(self) -> tuple[int, int, int]:
        return time.localtime(self.clock.seconds())[:3]

    def _newDay(self) -> bool:
        """
        Whether a day has begun since the file's (a midnight passed).  A
        clock stepped back is none: back over a midnight (NTP at 00:00:01),
        it rotated, and again at that midnight, a near-empty file pushing
        out a kept day.  Stepped back further (a clock far ahead set
        right), the days count from the new one.
        """
        today = self._today()
        if today > self.day:
            return True
        if today < self.day and date(*today) < date(*self.day) - timedelta(days=1):
            self.day = today
        return False

    def rotate(self) -> None:
        """
        path -> path.1 -> ... -> path.KEEP (dropped), then a new path.  If
        the new path cannot be opened (a symlink put there, no room), the
        file in hand is kept: the descriptor is never left closed.

        Only regular files are renamed: at the path, the file being
        written (a directory, a link, a FIFO or another file put there
        instead is left as it is, and the output goes on to the file in
        hand); among the old names, the shift stops before the first that
        is not a regular file (the oldest kept is dropped instead of moved
        onto or into it).  Each such thing is said once.
        """
        old, oldKey, stale = self._fd, self._key, self._staleLine
        path = self.spec.path
        try:
            here = os.lstat(path)
            if not self._isBeingWritten(here):
                self._leftAlone(path, here, "cannot rotate log {path}: it is {kind} now, not the file being written: "
                                "left as it is; writing on to the file it was")
                self.size, self.day = 0, self._today()
                return
            keep = self._keepable()
            for i in range(keep - 1, 0, -1):
                if os.path.lexists(f"{path}.{i}"):
                    os.replace(f"{path}.{i}", f"{path}.{i + 1}")
            if keep > 0:
                os.replace(path, f"{path}.1")
            else:
                os.unlink(path)
        except FileNotFoundError:
            pass  # moved or removed by someone else (an external logrotate): start a new file
        except OSError as e:
            # A rename refused: the output goes on to the file in hand, and
            # the next rotation is due a full size or a day later (not at
            # each write, one error each).
            self.size, self.day = 0, self._today()
            self._writes.tell(log.error, "{line}: cannot rotate log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=path, reason=e.strerror)
            return
        try:
            self._open()
        except OSError as e:
            self._fd, self._key, self.size, self.day, self._staleLine = old, oldKey, 0, self._today(), stale
            if self.spec.maxSize and os.fstat(old).st_nlink == 0:
                # The file in hand is removed (its directory too): nobody
                # can read it, and it grew past log-max-size for good,
                # filling the disk unseen.  Emptied, it stays within it.
                os.ftruncate(old, 0)
                self._fileAtLineStart = True
                self._writes.tell(log.error, "{line}: cannot open a new log {path}: {reason}; the file it was is removed: emptied, "
                          "written on within log-max-size until the path can be opened (SIGUSR1)",
                          line=self.line.name, path=path, reason=e.strerror)
                return
            self._writes.tell(log.error, "{line}: cannot open a new log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=path, reason=e.strerror)
            return
        release(old, oldKey)

    def _isBeingWritten(self, st: os.stat_result) -> bool:
        mine = os.fstat(self._fd)
        return stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def _keepable(self) -> int:
        """How many old files the shift may keep: up to the first old name that is not a regular file."""
        for i in range(1, self.spec.keep + 1):
            name = f"{self.spec.path}.{i}"
            try:
                st = os.lstat(name)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                self._leftAlone(name, st, "rotating log {path}: {name} is {kind}, not an old log: left as it is; "
                                "{kept} old file(s) kept before it", kept=i - 1)
                return i - 1
        return self.spec.keep

    def _leftAlone(self, name: str, st: os.stat_result, message: str, **fields: Any) -> None:
        """Something not ours where a rotation renames: said once (until something else is in the way)."""
        key = (name, st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode))
        if key == self._inTheWay:
            return
        self._inTheWay = key
        self._writes.tell(log.error, "{line}: " + message, line=self.line.name, path=self.spec.path, name=name, kind=kindOf(st.st_mode),
                  **fields)



def _endsInsideALine(fd: int, size: int) -> bool:
    """
    Whether the file C{fd} (opened to append, write only) ends inside a
    line: its last byte no newline, as a log a reload moved to another
    path and back leaves it, or a run cut off.  Read through
    /proc/self/fd (the same file); one that cannot be read so is taken as
    ending a line, as every file was.
    """
    if not size:
        return False
    try:
        seen = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.pread(seen, 1, size - 1) not in (b"\n", b"")
    except OSError:
        return False
    finally:
        os.close(seen)


def awaitOpens(files: list[Any]) -> Optional[tuple[Any, OSError]]:
    """
    At start: the first opens of C{files} (console logs, C{file:}
    outputs: made by their writers) waited for on this thread, START_WAIT s
    at most together (those of writers without a thread are over, or held
    by a test: not waited for).  The first (in order) that failed, with
    why; those not over yet (a file system that does not answer) are said,
    their lines run.
    """
    deadline = time.monotonic() + START_WAIT
    for one in files:
        if one.openThreaded:
            one.opening.wait(max(0.0, deadline - time.monotonic()))
    for one in files:
        if one.opening.is_set() and one.openError is not None:
            return one, one.openError
    for one in files:
        if not one.opening.is_set():
            meanwhile = getattr(one, "openMeanwhile", None) or (f"its output waits for it (at most {QUEUE_BOUND} "
                                                                  "bytes), written once the open returns")
            log.warn("line {line}: {what}: its open has not returned in {wait} s (a file system that does not "
                     "answer?); the line runs, {meanwhile}", line=one.line.name, what=one.openWhat,
                     wait=f"{START_WAIT:g}", bound=QUEUE_BOUND, meanwhile=meanwhile)
    return None
