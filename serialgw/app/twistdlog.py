"""
twistd's own log file (C{--logfile}) opened again at SIGUSR1, its path's
open off the reactor's thread: it was opened there (twice: a look, then
twistd's reopen), so a log directory on a file system that stopped
answering (a hard-mounted NFS server gone) held every line at the signal.
Now a thread of its own opens the path and looks at what is there; the
file is swapped in on the reactor's thread once open (the one in hand
closed by a thread too: a close flushes), and the signal waits for it
L{REOPEN_WAIT} s at most, then goes on with the lines' files, the file in
hand kept (swapped once the open returns, if ever; one open under way at
a time).  Only the open begun after the newest SIGUSR1 is swapped in: one
begun before it (a slow open, returning after another rotation and
signal) may hold the file renamed since, which twistd wrote on for good,
the later signal lost; it is closed, and the path opened again.

What this cannot change, twistd's: its observer writes each log line on
the reactor's thread, and rotates the file there past its size
(C{--logfile}'s 1 MB): a log on a file system that stops answering holds
every line at its next log line or rotation whatever SIGUSR1 does.  Keep
twistd's log on a local file system, or log to the journal (stdout under
systemd, the shipped unit's way).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from typing import Any, Callable, Optional, Union

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python.logfile import BaseLogFile, DailyLogFile

log = Logger()

# Seconds a SIGUSR1 waits for twistd's log path to open before the lines' files are reopened.
REOPEN_WAIT = 5.0

_Opened = Union[tuple[int, os.stat_result], OSError]


def startThread(work: Callable[[], None], name: str) -> None:
    """C{work()} on a thread of its own (not the reactor's pool: a device open that hangs may fill it)."""
    threading.Thread(target=work, name=name, daemon=True).start()


def openLog(path: str) -> _Opened:
    """
    (A thread's.)  twistd's log path opened for appending (made if not
    there): its descriptor and what fstat says, or why not.  Not waited on
    (O_NONBLOCK: a FIFO put at the path held the reactor), nor made the
    gateway's controlling terminal (O_NOCTTY); only a regular file is kept.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY, 0o640)
    except OSError as e:
        if e.errno == errno.ENXIO:
            e.strerror = "it is not a regular file"
        return e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "it is not a regular file")
        os.set_blocking(fd, True)
    except OSError as e:
        os.close(fd)
        return e
    return fd, st


class TwistdLogReopens:
    """The SIGUSR1 reopens of twistd's log file C{logFile} (see the module's docstring)."""

    def __init__(self, logFile: BaseLogFile, reactor: Any, threaded: Optional[bool] = None) -> None:
        self.logFile = logFile
        self.reactor = reactor
        self.threaded = IReactorThreads.providedBy(reactor) if threaded is None else threaded
        # An open under way (its thread not returned), and who waits for its answer (empty: answered).
        self.opening = False
        self.waiting: list[defer.Deferred[int]] = []
        self._timer: Any = None
        # The SIGUSR1s so far, and the one the open under way (or the last) was begun after: only
        # an open begun after the newest is swapped in.
        self.asked = self.begun = 0

    def reopen(self) -> defer.Deferred[int]:
        """
        The path opened again and swapped in: fires with 1, or 0 (said why;
        the file in hand kept), within REOPEN_WAIT s.  One asked while an
        open is under way is answered with the open begun after that one
        returns (0: counted once), or at once if that open's time is over;
        either way that open's file is not swapped in (see the module's
        docstring).
        """
        path = self.logFile.path
        if not self.threaded:
            return defer.succeed(self._swap(path, openLog(path)))
        self.asked += 1
        answer: defer.Deferred[int] = defer.Deferred()
        if self.opening:
            if self.waiting:
                self.waiting.append(answer)
                return answer
            log.error("cannot reopen {path}: its open, begun at an earlier SIGUSR1, has not returned (a file system "
                      "that does not answer?); writing on to the file it was, opened again once that open returns",
                      path=path)
            return defer.succeed(0)
        self.waiting = [answer]
        self._timer = self.reactor.callLater(REOPEN_WAIT, self._over, path)
        self._begin(path)
        return answer

    def _begin(self, path: str) -> None:
        """An open of C{path} by a thread of its own, for the SIGUSR1s asked so far."""
        self.opening, self.begun = True, self.asked
        try:
            startThread(lambda: self.reactor.callFromThread(self._opened, path, openLog(path)),
                        f"serialgw twistd log open {path}")
        except RuntimeError as e:
            self._opened(path, OSError(errno.EAGAIN, f"cannot start a thread to open it ({e})"))

    def _over(self, path: str) -> None:
        self._timer = None
        log.error("cannot reopen {path} yet: its open has not returned in {wait} s (a file system that does not "
                  "answer?); writing on to the file it was, swapped once the open returns", path=path,
                  wait=f"{REOPEN_WAIT:g}")
        self._answer(0)

    def _opened(self, path: str, result: _Opened) -> None:
        """(On the reactor's thread.)  The open's outcome: swapped in (or said why not), the waiting answered."""
        self.opening = False
        if self.begun != self.asked:
            # A SIGUSR1 came while it was under way, after another rotation perhaps: what it opened may
            # be the file renamed since.  Not swapped in; the path opened again (the waiting wait on).
            if not isinstance(result, OSError):
                os.close(result[0])
            if not self.logFile.closed:  # (closed: the stop)
                log.info("{path}: an open begun before the last SIGUSR1 returned; not kept, opened again", path=path)
                self._begin(path)
                return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._answer(0 if self.begun != self.asked else self._swap(path, result))

    def _answer(self, count: int) -> None:
        waiting, self.waiting = self.waiting, []
        for n, answer in enumerate(waiting):
            answer.callback(count if n == 0 else 0)

    def _swap(self, path: str, result: _Opened) -> int:
        """The file just opened made twistd's (its size and day as twistd's own reopen sets them): 1; or 0, said why not."""
        if isinstance(result, OSError):
            log.error("cannot reopen {path}: {reason}; writing on to the file it was", path=path,
                      reason=result.strerror or str(result))
            return 0
        fd, st = result
        logFile = self.logFile
        if logFile.closed:  # (twistd closed it meanwhile: the stop)
            os.close(fd)
            return 0
        old = logFile._file
        logFile._file = open(fd, "ab", 0)  # noqa: SIM115 (twistd's, from now on)
        if hasattr(logFile, "size"):
            logFile.size = st.st_size
        if isinstance(logFile, DailyLogFile):
            logFile.lastDate = logFile.toDate(st.st_mtime)
        try:
            if not self.threaded:
                raise RuntimeError("no threads")
            startThread(old.close, f"serialgw twistd log close {path}")
        except RuntimeError:
            old.close()
        log.info("reopened {path}", path=path)
        return 1
