"""
A watch-all watcher's view of one line (L{LineTap}): the line's output in
whole lines, each prefixed with C{NAME: }, so lines from different
consoles never mix within a line.  A partial last line is held until its
newline comes, at most C{PARTIAL_LIMIT} bytes and C{PARTIAL_HOLD} seconds
(a prompt with no newline), then sent with a line break added; the
colours a console leaves set are noted so its watcher can reset them
before another console's lines and put them back before its own.  The
watcher, its listener and its bounds are L{serialgw.clients.watchall}'s.
"""

from __future__ import annotations

import re
import typing
from typing import Any, Optional

from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.reading import stopCalls
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.line.textgate import openTail


class Watcher(typing.Protocol):
    """
    What a view uses of its watcher (L{serialgw.clients.watchall.WatchAllClient}):
    declared here, beside the views, since the watcher imports them.
    """

    peer: str
    clock: Any

    def emit(self, data: bytes, tap: Optional[LineTap] = None) -> None: ...


# A source line's partial last line: sent (with a line break added) past
# this many bytes, or when it is this many seconds old.
PARTIAL_LIMIT = 2048


PARTIAL_HOLD = 1.0


# Colours and other attributes (SGR escape sequences, ESC [ ... m) a
# console leaves set: reset (ESC [0m) before another console's piece, so
# its lines are not drawn in them, and put back before the console's own
# next piece; at most SGR_KEPT of them a line (those since its last reset),
# each of at most 32 parameter bytes (a longer one is not put back).
_SGR = re.compile(rb"(\x1b\[([0-9;:]{0,32})m)")


SGR_RESET = b"\x1b[0m"


SGR_KEPT = 16


SGR_SCAN = 64


# A view tells at most NOTICES of its line's device notices (down, back,
# closed on demand) in NOTICE_WINDOW seconds; the rest are counted and said
# with the first one of a later window: an on-demand line told each view of
# every close, a notice a connection without bound (seen: 100 connections of
# a health check, 101 notices in a view).
NOTICES = 20


NOTICE_WINDOW = 60.0


@implementer(IClient)
class LineTap(ClientEvents):
    """A watcher's view of one line: whole output lines, prefixed with the line's name."""

    role = Role.READONLY
    # A watcher does not start a line that waits for its first client.
    wakesLine = False

    def __init__(self, watcher: Watcher, line: Line) -> None:
        self.watcher = watcher
        self.line = line
        self.peer = f"watch-all {watcher.peer}"
        self.prefix = line.name.encode("utf-8", "replace") + b": "
        self.partial = bytearray()
        self._flushCall: Any = None
        # Its watcher left (leave): it only waits to be taken off its line.
        self.gone = False
        # The attributes its output left set (SGR_KEPT), and whether any may be.
        self.sgr: list[bytes] = []
        self.dirty = False
        # This window's notices (NOTICES): since when, how many told, how many left out and the last of
        # those, said when the window is over (_windowOver, its timer).
        self._noticesSince = float("-inf")
        self._noticesTold = self._noticesLeftOut = 0
        self._lastLeftOut = b""
        self._windowCall: Any = None

    def noteAttributes(self, piece: bytes) -> None:
        """
        What C{piece} (sent to the watcher) leaves set of the attributes (see
        SGR_KEPT): looked for from its end, at most SGR_SCAN escape sequences
        (an SGR flood cost 2.5 ms a 64 KiB piece a watcher when all were
        parsed); past them, it is reset before another console's lines anyway.
        """
        end = len(piece)
        kept: list[bytes] = []
        for _ in range(SGR_SCAN):
            start = piece.rfind(b"\x1b[", 0, end)
            if start < 0:
                break
            end = start
            match = _SGR.match(piece, start)
            if match is None:
                continue  # (another sequence: a cursor move)
            if not match.group(2).split(b";", 1)[0].strip(b"0"):
                # ESC [m, ESC [0m; ESC [0;32m resets, then sets green.
                if match.group(2).strip(b"0;"):
                    kept.append(match.group(1))
                self.sgr = kept[::-1]
                self.dirty = bool(kept)
                return
            kept.append(match.group(1))
            if len(kept) >= SGR_KEPT:
                break
        else:
            # Not all looked at: what came before may have set more.
            self.dirty = True
        self.sgr = (self.sgr + kept[::-1])[-SGR_KEPT:]
        self.dirty = self.dirty or bool(self.sgr)

    def deliver(self, data: bytes) -> None:
        if self.gone:
            return
        nl = data.rfind(b"\n")
        if nl < 0:
            self.partial += data
        else:
            whole = bytes(self.partial) + data[: nl + 1] if self.partial else data[: nl + 1]
            self.partial[:] = data[nl + 1 :]
            # Every line of the chunk prefixed, in one replace.
            self.watcher.emit(self.prefix + whole[:-1].replace(b"\n", b"\n" + self.prefix) + b"\n", self)
        if len(self.partial) > PARTIAL_LIMIT:
            # Sent, but for an escape sequence or a UTF-8 character it ends
            # inside: that starts the next piece, whole.
            self.flush(openTail(self.partial))
        elif self.partial and self._flushCall is None and self.watcher.clock is not None:
            self._flushCall = self.watcher.clock.callLater(PARTIAL_HOLD, self.flush)
        elif not self.partial:
            self._cancel()

    def flush(self, end: Optional[int] = None) -> None:
        """Send the partial line now (up to C{end}, the rest kept), with a line break after it."""
        self._cancel()
        if end is None:
            end = len(self.partial)
        if end:
            data = self.prefix + bytes(self.partial[:end]) + b"\r\n"
            del self.partial[:end]
            self.watcher.emit(data, self)
        if self.partial and self.watcher.clock is not None:
            self._flushCall = self.watcher.clock.callLater(PARTIAL_HOLD, self.flush)

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        if not notice or self.gone:
            return
        clock = self.watcher.clock
        now = clock.seconds() if clock is not None else 0.0
        if now - self._noticesSince >= NOTICE_WINDOW:
            self._windowOver()
            self._noticesSince, self._noticesTold = now, 0
        if self._noticesTold >= NOTICES:
            self._noticesLeftOut += 1
            self._lastLeftOut = notice
            if self._windowCall is None and clock is not None:
                self._windowCall = clock.callLater(self._noticesSince + NOTICE_WINDOW - now, self._windowOver)
            return
        self._noticesTold += 1
        self.flush()
        self.watcher.emit(self.prefix + notice.strip(b"\r\n") + b"\r\n", self)

    def _windowOver(self) -> None:
        """
        The notices' window is over: how many it left out is said, and the
        last of them, the device's state now (said only with a later
        notice, a device that flapped and then stayed put left the view
        showing it down while it was back, and the count unsaid, for good).
        """
        self._stopWindow()
        left, last = self._noticesLeftOut, self._lastLeftOut
        self._noticesLeftOut, self._lastLeftOut = 0, b""
        if not left or self.gone:
            return
        self.flush()
        name = self.line.name.encode("utf-8", "replace")
        self.watcher.emit(self.prefix + b"[serialgw: %d more notices of %s's device were not shown (at most %d in "
                          b"%d s); the last of them:]\r\n" % (left, name, NOTICES, NOTICE_WINDOW), self)
        self.watcher.emit(self.prefix + last.strip(b"\r\n") + b"\r\n", self)

    def stop(self) -> None:
        self._cancel()
        self._stopWindow()
        self.line.detach(self)

    def leave(self) -> None:
        """Its watcher is gone: nothing more is sent (it is taken off its line later, see L{stop})."""
        self._cancel()
        self._stopWindow()
        self.gone = True

    def _stopWindow(self) -> None:
        stopCalls(self._windowCall)
        self._windowCall = None

    def _cancel(self) -> None:
        stopCalls(self._flushCall)
        self._flushCall = None
