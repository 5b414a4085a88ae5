"""
A console log's writer's side: what runs on the thread that writes its
file (L{serialgw.clients.logwriter}): output written in as few writes as
it came in, a write that fails or output the writer never had marked as a
gap where writing resumes (the failure said once, the recovery once),
what was typed formatted, the file reopened (SIGUSR1), taken over from a
log of the same file, and closed.  The reactor's side, which stamps the
output and queues it, is L{serialgw.clients.consolelog}.
"""

from __future__ import annotations

import os
import time

from twisted.internet import defer
from twisted.logger import Logger

from serialgw.clients.logfile import LogFile
from serialgw.clients.loglock import release
from serialgw.clients.logwriter import fire
from serialgw.clients.typed import typedHexdump, typedText

# (The namespace its events had before this module was split from consolelog.)
log = Logger(namespace="serialgw.clients.consolelog")


# Output that waited for the writer is written this many bytes a write at most.
BATCH = 1 << 18

# Why output that did not wait for a writer behind is missing (the gap's line says it).
BEHIND = "the disk did not keep up"


class LogWrites(LogFile):
    """What a console log's writer does to its file (see L{serialgw.clients.consolelog.ConsoleLog})."""

    # Set by ConsoleLog: bytes lost since a write failed (a full disk; typed apart), whether writes fail now, and why.
    lost: int
    _typedLost: int
    _failing: bool
    _failure: str

    def _takeOverNow(self, others: list[LogFile]) -> None:
        if self._fd < 0:
            return  # (not opened: said by _notOpened)
        mine = os.fstat(self._fd)
        self.size = mine.st_size
        for other in others:
            if other._fd >= 0 and other._isBeingWritten(mine):
                # (An empty file, copytruncate's, starts a line whatever the other thought.)
                self._fileAtLineStart = other._fileAtLineStart or not self.size
                self._staleLine = False  # (its line is the output's, going on)
                if other._moved is not None and self._moved is None:
                    # (A file moved inside that line, kept for the newline ending it: this one's to end.)
                    self._moved, other._moved = other._moved, None

    def _stamp(self) -> bytes:
        return time.strftime(self.spec.format, time.localtime(self.clock.seconds())).encode()

    def _gapNow(self, gaps: list[tuple[int, int]]) -> None:
        """Output the writer never had (it was behind): lost, its gap marked with the next write."""
        for lost, typedLost in gaps:
            self.lost += lost
            self._typedLost += typedLost
            if not self._failing:
                self._failing = True
                self._failure = BEHIND

    def _writeNow(self, items: list[tuple[bytes, bool]]) -> None:
        """
        The writer's side of L{_write}: what waited, in as few writes as
        it would have made the same file (up to BATCH bytes a write; a
        rotation by size falls between writes, as it would have).
        """
        if self._fd < 0:
            return  # (its first open failed: said by _notOpened, the log closed)
        parts: list[bytes] = []
        size = 0
        midLine = ends = False
        for data, mid in items:
            if parts and mid == (not ends) and size + len(data) <= BATCH and (
                not self.spec.maxSize or self.size + size + len(data) <= self.spec.maxSize
            ):
                parts.append(data)
                size += len(data)
            else:
                if parts:
                    self._writeOne(b"".join(parts), midLine)
                parts, size, midLine = [data], len(data), mid
            ends = data.endswith(b"\n")
        if parts:
            self._writeOne(b"".join(parts), midLine)

    def _writeOne(self, data: bytes, midLine: bool) -> None:
        written = 0
        marker = b""
        if self._moved is not None:
            data, midLine = self._endMoved(data, midLine)
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
                if midLine and not self._fileAtLineStart and data.startswith(b"\n"):
                    # The newline ends the file's last line: it is that
                    # file's (the new one's dropped it, and the old one
                    # ended unended: its last line and the next file's
                    # first ran together when read in turn).
                    self._writeAll(b"\n")
                    data, midLine, self._fileAtLineStart = data[1:], False, True
                self.rotate()
            # (A failure during which no output came lost nothing: no gap.)
            gap = self._failing and (self.lost > 0 or self._typedLost > 0)
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
            if self._staleLine:
                # The file ends inside a line someone else left (an earlier
                # run, this line's log before a reload moved it elsewhere):
                # ended first, so that no line runs into another.
                marker = b"\n" + marker
            data = marker + data
            while written < len(data):  # a short write (the disk filling up) is followed by the rest, or its error
                n = self._osWrite(self._fd, data[written:])
                self.size += n
                written += n
        except OSError as e:
            self.lost += len(data) - max(written, len(marker))
            if written:
                self._fileAtLineStart = data[written - 1] == 0x0A
                self._staleLine = False
            if not self._failing:
                self._failing = True
                self._failure = e.strerror or str(e)
                self._writes.tell(log.error, "{line}: cannot write log {path}: {reason}; console output is not "
                                  "logged until it can be", line=self.line.name, path=self.spec.path,
                                  reason=e.strerror)
            return
        if data:
            self._fileAtLineStart = data.endswith(b"\n")
            self._staleLine = False
        if self._failing:
            self._failing = False
            typed = f" (and {self._typedLost} bytes typed)" if self._typedLost else ""
            self._writes.tell(log.info, "{line}: log {path} written again; {lost} bytes were not logged{typed}",
                              line=self.line.name, path=self.spec.path, lost=self.lost, typed=typed)
            self.lost = self._typedLost = 0

    def _writeAll(self, data: bytes) -> None:
        """C{data} written whole to the file (or an OSError)."""
        while data:
            n = self._osWrite(self._fd, data)
            self.size += n
            data = data[n:]

    def _osWrite(self, fd: int, data: bytes) -> int:
        """C{os.write} (a test's slow disk replaces it)."""
        return os.write(fd, data)

    def _gapMarker(self) -> bytes:
        """The line that marks output missing from the log (a full disk), on a line of its own."""
        lost = f"{self.lost} bytes lost" if self.lost or not self._typedLost else ""
        typed = f"what was typed, {self._typedLost} bytes, not logged" if self._typedLost else ""
        text = f"[serialgw: {', and '.join(w for w in (lost, typed) if w)}: {self._failure}]\n".encode(
            "utf-8", "replace")
        return (b"" if self._fileAtLineStart else b"\n") + self._stamp() + text

    def _endMoved(self, data: bytes, midLine: bool) -> tuple[bytes, bool]:
        """
        The first write after a reopen that left the moved file inside a
        line: a newline that ends that line is the moved file's (as at a
        rotation by size); then the moved file is let go.
        """
        assert self._moved is not None
        moved, movedKey = self._moved
        self._moved = None
        try:
            if midLine and data.startswith(b"\n") and self._osWrite(moved, b"\n") == 1:
                data, midLine = data[1:], False
        except OSError:
            pass  # (the moved file cannot take it: the new one's line starts stamped, as before)
        finally:
            release(moved, movedKey)
        return data, midLine

    def _letMovedGo(self) -> None:
        """A moved file kept for the newline ending its last line, let go without it (a close, another reopen)."""
        if self._moved is not None:
            moved, movedKey = self._moved
            self._moved = None
            release(moved, movedKey)

    def _reopenOne(self) -> int:
        old, oldKey, atLineStart = self._fd, self._key, self._fileAtLineStart
        if old < 0:
            return 0  # (its first open failed: said by _notOpened)
        self._letMovedGo()
        try:
            self._open()
        except OSError as e:
            self._writes.tell(log.error, "{line}: cannot reopen log {path}: {reason}; writing on to the file it was",
                              line=self.line.name, path=self.spec.path, reason=e.strerror)
            return 0
        same = self._isBeingWritten(os.fstat(old))
        if same and self.size:
            # The same file (SIGUSR1 with nothing moved): a line it ends inside goes on there, unstamped
            # (emptied meanwhile, by logrotate's copytruncate: its next line starts the file, stamped).
            self._fileAtLineStart, self._staleLine = atLineStart, False
        elif not same and not atLineStart and not self._failing:
            # Moved (logrotate) inside a line of output: kept until the next
            # write, whose newline, if it ends that line, is the moved file's
            # (it was dropped: the moved file's last line unended, a byte lost).
            self._moved = (old, oldKey)
            return 1
        release(old, oldKey)
        return 1

    def _typedNow(self, reads: list[tuple[bytes, str, bytes, str]]) -> None:
        texts = []
        for stamp, peer, data, form in reads:
            lines = (typedHexdump if form == "hexdump" else typedText)(peer, data)
            texts.append(b"".join(stamp + text.encode("utf-8", "replace") + b"\n" for text in lines))
        self._writeNow([(text, False) for text in texts])

    def _markGapNow(self, _: list[None]) -> None:
        """
        The writer caught up after it was behind, and no output came since
        to mark the gap: marked now, on a line of its own, said written
        again.  (A file kept for the newline ending its last line, moved
        by logrotate, waits for that newline: the gap is marked with it.)
        """
        if self._fd < 0 or self._moved is not None or not (self._failing and self._failure == BEHIND):
            return
        if self.lost or self._typedLost:
            self._writeOne(b"", False)

    def _lastGapNow(self, _: list[None]) -> None:
        """What was dropped before the close, marked at the file's end (nothing written after it would)."""
        if not (self._failing and (self.lost or self._typedLost)) or self._fd < 0:
            return
        marker = self._gapMarker()
        try:
            while marker:
                n = self._osWrite(self._fd, marker)
                if n <= 0:
                    break
                marker = marker[n:]
        except OSError:
            pass  # (the disk still failing: said already)

    def _closeNow(self, waiting: list[defer.Deferred[None]]) -> None:
        fd, self._fd = self._fd, -1
        try:
            self._letMovedGo()
            if fd >= 0:
                release(fd, self._key)
        finally:
            for done in waiting:
                self._writes.tell(fire, done)
