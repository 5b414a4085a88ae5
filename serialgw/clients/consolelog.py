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
from datetime import date, timedelta
from typing import Any, Optional

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.loglock import release, take
from serialgw.clients.logmarks import (
    CUT,
    EVENT_HOLD,
    EVENT_WINDOW,
    EVENTS_TOLD,
    EventWindow,
    eventBody,
    markBody,
    nextMark,
    shown,
    ticks,
)
from serialgw.clients.slowdisk import SLOW_WRITE, SLOW_WRITES, SlowDisk
from serialgw.clients.typed import typedHexdump, typedText
from serialgw.config.specs import LogSpec
from serialgw.interfaces import IConsoleLog
from serialgw.line.hub import Line, Role

log = Logger()

NOT_A_FILE = "it is not a regular file (a FIFO or a device); a file: listener can feed one"

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def _kind(mode: int) -> str:
    """What a file is, for people: a directory, a symbolic link, ..., another file (a regular one not ours)."""
    return _KINDS.get(stat.S_IFMT(mode), "another file")


@implementer(IConsoleLog)
class ConsoleLog(ClientEvents):
    def __init__(self, line: Line, spec: LogSpec, clock: Any, typedOnly: bool = False) -> None:
        """C{typedOnly}: the C{LOG.typed} file of what clients typed (log-typed), no client of the line."""
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
        # Why the writes failed (the first error), for the line that marks the gap.
        self._failure = ""
        # Whether the file ends at a line start (a line cut by a failing write does not).
        self._fileAtLineStart = True
        # What a rotation last found in its way and left alone (said once).
        self._inTheWay: Optional[tuple[str, int, int, int]] = None
        # A disk slow over each write pauses the log (see serialgw.clients.slowdisk).
        self._slow = SlowDisk(clock)
        # Events and marks that came inside a line of output: (stamp, text),
        # written when the line ends, or after EVENT_HOLD cutting it.
        self._held: list[tuple[bytes, str]] = []
        self._holdTick: Optional[int] = None
        self._markTick: Optional[int] = None
        self._events = EventWindow(clock, self._untold)
        # What clients typed (log-typed): a file of its own, made 0600 (passwords typed at a login prompt).
        self._mode = 0o600 if typedOnly else 0o640
        self._typed: Optional[ConsoleLog] = None
        self._open()
        if typedOnly:
            return
        if spec.typed != "off":
            try:
                self._typed = ConsoleLog(line, attrs.evolve(spec, path=spec.path + ".typed", events="off", mark=0),
                                         clock, typedOnly=True)
            except OSError:
                release(self._fd, self._key)
                raise
        self._takeOver()
        line.attach(self)
        line.logs.append(self)
        if spec.mark:
            self._markTick = ticks(clock).at(nextMark(clock.seconds(), spec.mark * 60), self._mark)

    def _takeOver(self) -> None:
        """
        A log of the line on this same file (a reload that changed a log
        key opens the new one before the old closes): where the file's
        line stands, and the events waiting for it, are this one's now (a
        reload inside a line of output put a stamp in its middle).
        """
        mine = os.fstat(self._fd)
        for other in self.line.logs:
            if isinstance(other, ConsoleLog) and other._isBeingWritten(mine):
                # (An empty file, copytruncate's, starts a line whatever the other thought.)
                self.atLineStart, self._fileAtLineStart = other.atLineStart, other._fileAtLineStart or not self.size
                self._held, other._held = other._held, []
                if self._held:
                    self._holdTick = ticks(self.clock).at(self.clock.seconds() + EVENT_HOLD, self._holdOver)

    def _open(self) -> None:
        # A symlink at the path is not followed (someone could point it at a
        # file the gateway may write): ELOOP, named as such.  Nor is a FIFO
        # or a device waited on (opening a FIFO nobody reads would hold the
        # reactor for good): a console log is a regular file.
        try:
            fd = os.open(self.spec.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                         | os.O_NONBLOCK, self._mode)
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

    def _stamp(self) -> bytes:
        return time.strftime(self.spec.format, time.localtime(self.clock.seconds())).encode()

    def _write(self, data: bytes, midLine: bool) -> None:
        """
        Append C{data} (stamped); C{midLine}: it goes on a line of output
        already begun (it does not start with a stamp: its own first line's
        is the line's, or it starts with the newline ending that line).
        """
        if self._slow.paused():
            self.lost += len(data)
            return
        start = self.clock.seconds()
        try:
            self._writeNow(data, midLine)
        finally:
            took = self.clock.seconds() - start
            pause = self._slow.timed(took)
            if pause is not None:
                if not self._failing:
                    self._failing = True
                    self._failure = f"the disk was slow (a write took {took:.2f} s)"
                log.error("{line}: log {path} is slow: {count} writes in a row took {slow} s or more (the last "
                          "{took} s), holding every line meanwhile; console output is not logged for {pause} s",
                          line=self.line.name, path=self.spec.path, count=SLOW_WRITES, slow=SLOW_WRITE,
                          took=f"{took:.2f}", pause=f"{pause:g}")

    def _writeNow(self, data: bytes, midLine: bool) -> None:
        written = 0
        marker = b""
        try:
            if midLine and not self._fileAtLineStart and self.size and os.lseek(self._fd, 0, os.SEEK_END) == 0:
                # Copied and emptied under the log inside a line (logrotate's
                # copytruncate): the rest of the line began the file unstamped.
                self.size, self._fileAtLineStart = 0, True
            if self.spec.maxSize and self.size + len(data) > self.spec.maxSize and self.size:
                # Truncated meanwhile (logrotate's copytruncate)?  Then it is
                # not full: the file is appended to, so it starts again at 0.
                self.size = os.fstat(self._fd).st_size
            if (self.spec.maxSize and self.size + len(data) > self.spec.maxSize and self.size) or (
                self.spec.daily and self._newDay()
            ):
                self.rotate()
            # A slow disk's pause during which no output came lost nothing:
            # no gap, and a line it cut goes on as it was.
            gap = self._failing and self.lost > 0
            if gap:
                # Where output is missing, the log says so, on a line of its
                # own; what follows starts a line (the line it went on is cut).
                marker = self._gapMarker()
            if midLine and (gap or self._fileAtLineStart):
                # The file starts a line (a new one, after a rotation or a
                # reopen; or after the gap's mark) where the output goes on
                # with one: stamped, no empty line before it (a file began
                # with output unstamped, or with an empty line).
                data = data[1:] if data.startswith(b"\n") else self._stamp() + data
            data = marker + data
            while written < len(data):  # a short write (the disk filling up) is followed by the rest, or its error
                n = self._osWrite(self._fd, data[written:])
                self.size += n
                written += n
        except OSError as e:
            self.lost += len(data) - max(written, len(marker))
            if written:
                self._fileAtLineStart = data[written - 1] == 0x0A
            if not self._failing:
                self._failing = True
                self._failure = e.strerror or str(e)
                log.error("{line}: cannot write log {path}: {reason}; console output is not logged until it can be",
                          line=self.line.name, path=self.spec.path, reason=e.strerror)
            return
        if data:
            self._fileAtLineStart = data.endswith(b"\n")
        if self._failing:
            self._failing = False
            log.info("{line}: log {path} written again; {lost} bytes were not logged", line=self.line.name,
                     path=self.spec.path, lost=self.lost)
            self.lost = 0

    def _osWrite(self, fd: int, data: bytes) -> int:
        """C{os.write} (a test's slow disk replaces it)."""
        return os.write(fd, data)

    def _gapMarker(self) -> bytes:
        """The line that marks output missing from the log (a full disk), on a line of its own."""
        text = f"[serialgw: {self.lost} bytes lost: {self._failure}]\n".encode("utf-8", "replace")
        return (b"" if self._fileAtLineStart else b"\n") + self._stamp() + text

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
        old, oldKey = self._fd, self._key
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
            log.error("{line}: cannot rotate log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=path, reason=e.strerror)
            return
        try:
            self._open()
        except OSError as e:
            self._fd, self._key, self.size, self.day = old, oldKey, 0, self._today()
            if self.spec.maxSize and os.fstat(old).st_nlink == 0:
                # The file in hand is removed (its directory too): nobody
                # can read it, and it grew past log-max-size for good,
                # filling the disk unseen.  Emptied, it stays within it.
                os.ftruncate(old, 0)
                self._fileAtLineStart = True
                log.error("{line}: cannot open a new log {path}: {reason}; the file it was is removed: emptied, "
                          "written on within log-max-size until the path can be opened (SIGUSR1)",
                          line=self.line.name, path=path, reason=e.strerror)
                return
            log.error("{line}: cannot open a new log {path}: {reason}; writing on to the file it was",
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
        log.error("{line}: " + message, line=self.line.name, path=self.spec.path, name=name, kind=_kind(st.st_mode),
                  **fields)

    def reopen(self) -> int:
        """
        Open the path again (logrotate moved the file, then SIGUSR1): new
        output goes to a file at the path.  If the path cannot be opened,
        the file in hand is kept.  How many files were opened again: the
        log and its LOG.typed (log-typed), 0 to 2.
        """
        # (LOG.typed too, whether or not the log could be: else it went on into the file logrotate moved.)
        typed = 0 if self._typed is None else self._typed.reopen()
        old, oldKey, atLineStart = self._fd, self._key, self._fileAtLineStart
        try:
            self._open()
        except OSError as e:
            log.error("{line}: cannot reopen log {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=self.spec.path, reason=e.strerror)
            return typed
        if self._isBeingWritten(os.fstat(old)) and self.size:
            # The same file (SIGUSR1 with nothing moved): a line it ends inside goes on there, unstamped
            # (emptied meanwhile, by logrotate's copytruncate: its next line starts the file, stamped).
            self._fileAtLineStart = atLineStart
        release(old, oldKey)
        return 1 + typed

    def typed(self, peer: str, data: bytes) -> None:
        """What C{peer} typed, as it went to the device: a stamped line (or a hexdump) in C{LOG.typed} (log-typed)."""
        typed = self._typed
        if typed is not None:
            lines = (typedHexdump if self.spec.typed == "hexdump" else typedText)(shown(peer), data)
            stamp = typed._stamp()
            typed._write(b"".join(stamp + text.encode("utf-8", "replace") + b"\n" for text in lines), False)

    def deliver(self, data: bytes) -> None:
        if self._held and b"\n" in data:
            # Held events go where the line of output under way ends.
            end = data.index(b"\n") + 1
            self._deliver(data[:end])
            self._writeHeld()
            data = data[end:]
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        # One stamp a chunk, put after every newline in one call.
        if not data:
            return
        stamp = self._stamp()
        body = data.replace(b"\n", b"\n" + stamp)
        midLine = not self.atLineStart
        if not midLine:
            body = stamp + body
        self.atLineStart = data.endswith(b"\n")
        if self.atLineStart:
            body = body[: len(body) - len(stamp)]
        self._write(body, midLine)

    def event(self, text: str) -> None:
        """One of the line's events, a line of its own (log-events: its form, or none), at most EVENTS_TOLD a window."""
        if self.spec.events == "off" or not self._events.admit():
            return
        self._line(eventBody(self.spec.events, text, self.clock.seconds()))

    def _untold(self, count: int) -> None:
        self._line(eventBody(self.spec.events, f"{count} more event(s) not written (more than {EVENTS_TOLD} in "
                                               f"{EVENT_WINDOW:g} s)", self.clock.seconds()))

    def _mark(self) -> None:
        """conserver's mark, every log-mark minutes whether or not the line said anything (as conserver)."""
        self._markTick = None
        if self not in self.line.logs:
            return  # (cut off after a failure: the line writes to it no more, nor do its marks)
        now = self.clock.seconds()
        due = nextMark(now - 1, self.spec.mark * 60)  # (the boundary this call is for; one missed is not made up)
        self._markTick = ticks(self.clock).at(nextMark(now, self.spec.mark * 60), self._mark)
        self._line(markBody(due if due <= now else now))

    def _line(self, text: str) -> None:
        """A line of the log's own (an event, a mark): now, or once the line of output under way ends."""
        self._held.append((self._stamp(), text))
        if self.atLineStart:
            self._writeHeld()
        elif self._holdTick is None:
            self._holdTick = ticks(self.clock).at(self.clock.seconds() + EVENT_HOLD, self._holdOver)

    def _holdOver(self) -> None:
        self._holdTick = None
        self._writeHeld()

    def _writeHeld(self) -> None:
        """The held lines, in one write; inside a line of output, after a line break, the cut said."""
        ticks(self.clock).cancel(self._holdTick)
        self._holdTick = None
        held, self._held = self._held, []
        if not held:
            return
        cut = not self.atLineStart
        text = b"".join(stamp + (body + (CUT if cut and i == 0 else "")).encode("utf-8", "replace") + b"\n"
                        for i, (stamp, body) in enumerate(held))
        self._write((b"\n" if cut else b"") + text, cut)
        self.atLineStart = True

    def close(self) -> None:
        self._events.stop()
        self._events.flush()
        self._writeHeld()
        ticks(self.clock).cancel(self._markTick)
        self._markTick = None
        if self in self.line.logs:
            self.line.logs.remove(self)
        if self._typed is not None:
            release(self._typed._fd, self._typed._key)
        self.line.detach(self)
        release(self._fd, self._key)
