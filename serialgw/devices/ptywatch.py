"""
Who has a pty's slave open besides the gateway: a serial port forgets some
state at its last close, a pty the gateway holds open never has one.

A program that puts the tty in exclusive mode (C{TIOCEXCL}: GNU screen does,
and never clears it) leaves it so when it exits: on a serial port the last
close clears it; on a pty whose slave the gateway keeps open, every later
open by anyone but root failed with EBUSY (screen, then socat or picocom:
"Device or resource busy") until the gateway restarted.  So the slave's
closes are watched with inotify: when one finds the pty exclusive, the
processes that still have it open are looked for (/proc, off the reactor
thread: a few ms a hundred processes), and if the gateway is the only one
(of those it may look at), exclusive mode is cleared on its own descriptor,
as that last close would have.  (Inotify merges two closes that come
together into one event: the state is looked at, closes are not counted.)
A close that finds the gateway's own descriptor hung up (vhangup(): login
does it, then closes what it hung up) is told to the pty's owner, which
opens the slave again.

One inotify descriptor serves every pty of a reactor (a user may have 128).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
from typing import Any, Callable, Optional

from twisted.internet import defer, inotify, threads
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorFDSet, IReactorThreads
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath

from serialgw.devices.links import ptyHolders
from serialgw.logflood import clientLog

# Limited per pty: a program leaving it exclusive in a loop cannot flood the log (logflood).
log = clientLog()

TIOCGEXCL = 0x80045440  # Linux: read exclusive mode (an int)
CLOSED = inotify.IN_CLOSE_WRITE | inotify.IN_CLOSE_NOWRITE

# One notifier per reactor, and how many watches it has.
_notifiers: dict[Any, tuple[inotify.INotify, int]] = {}


def isExclusive(fd: int) -> bool:
    """Whether the tty on C{fd} is in exclusive mode (TIOCEXCL)."""
    return bool(struct.unpack("i", fcntl.ioctl(fd, TIOCGEXCL, b"\0" * 4))[0])


class SlaveWatch:
    """
    The closes of a pty's slave by others, watched while this watch lives;
    after the last one, exclusive mode is cleared on C{fd} (the gateway's
    own descriptor of the slave).  C{checking}: the look at who still has
    it, while one is under way.
    """

    def __init__(self, reactor: Any, slaveName: str, fd: int, peer: str,
                 hungUp: Optional[Callable[[], None]] = None) -> None:
        self.reactor = reactor
        self.path = FilePath(slaveName)
        self.fd = fd
        self.peer = peer
        # Told when a close finds C{fd} hung up (vhangup: login closes the
        # descriptors it hung up once it has opened the tty again).
        self.hungUp = hungUp
        self.checking: Optional[defer.Deferred[Any]] = None
        self._again = False
        self._notifier: Optional[inotify.INotify] = None
        if not IReactorFDSet.providedBy(reactor):
            return  # a test's Clock: nothing to read events with
        if reactor in _notifiers and _notifiers[reactor][0].disconnected:
            # Lost (the reactor disconnects a descriptor whose read raised):
            # the watches it had are gone with it; a new one for the next.
            del _notifiers[reactor]
        try:
            notifier, watches = _notifiers.get(reactor) or (inotify.INotify(reactor), 0)
        except (inotify.INotifyError, OSError) as e:
            self._cannot(e)
            return
        if not watches:
            notifier.startReading()
        try:
            notifier.watch(self.path, mask=CLOSED, callbacks=[self._closed])
        except (inotify.INotifyError, OSError) as e:
            self._cannot(e)
            if not watches:
                _letGo(notifier)
            return
        _notifiers[reactor] = (notifier, watches + 1)
        self._notifier = notifier

    def _cannot(self, e: Exception) -> None:
        log.warn("{peer}: its closes cannot be watched ({reason}): exclusive mode a program leaves on it stays",
                 peer=self.peer, reason=str(e))

    def _closed(self, ignored: Any, path: FilePath[Any], mask: int) -> None:
        if self.checking is not None:
            self._again = True
            return
        self._safeCheck()

    def _safeCheck(self) -> None:
        try:
            self._check()
        except Exception:
            # Not into the notifier's read (the reactor would disconnect
            # the notifier, and with it every pty's watch), nor a Deferred's.
            log.failure("{peer}: handling a close of it failed", peer=self.peer)

    def _check(self) -> None:
        if self._notifier is None:
            return  # closed (a close seen during the last look): C{fd} may be another file's now
        try:
            if not isExclusive(self.fd):
                return
        except OSError as e:
            if e.errno == errno.EIO and self.hungUp is not None:
                self.hungUp()
            return
        if IReactorThreads.providedBy(self.reactor):
            d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), ptyHolders, self.path.path)
        else:
            d = defer.maybeDeferred(ptyHolders, self.path.path)
        self.checking = d
        d.addCallback(self._holders)
        d.addBoth(self._checked)

    def _holders(self, holders: list[int]) -> None:
        if self._notifier is None or [pid for pid in holders if pid != os.getpid()]:
            return  # stopped meanwhile, or still someone's
        try:
            if isExclusive(self.fd):
                fcntl.ioctl(self.fd, termios.TIOCNXCL)
                log.info("{peer}: the last program on it left it in exclusive mode (TIOCEXCL): cleared, as a "
                         "serial port's last close does", peer=self.peer)
        except OSError as e:
            log.warn("{peer}: cannot clear exclusive mode: {reason}", peer=self.peer, reason=str(e))

    def _checked(self, result: Any) -> None:
        self.checking = None
        if isinstance(result, Failure):
            log.failure("{peer}: looking for who has it open failed", result, peer=self.peer)
        if self._again:
            self._again = False
            self._safeCheck()

    def close(self) -> None:
        """Stop watching (before the slave goes: its removal would end the watch otherwise)."""
        notifier, self._notifier = self._notifier, None
        if notifier is None:
            return
        if not notifier.disconnected:
            # (A lost one's descriptor number may be a new notifier's now: its watches are not ours to remove.)
            try:
                notifier.ignore(self.path)
            except KeyError:
                pass
        if _notifiers.get(self.reactor, (None, 0))[0] is not notifier:
            return  # lost, and let go of already (see __init__)
        _, watches = _notifiers[self.reactor]
        if watches > 1:
            _notifiers[self.reactor] = (notifier, watches - 1)
        else:
            del _notifiers[self.reactor]
            _letGo(notifier)


def _letGo(notifier: inotify.INotify) -> None:
    """The notifier of no pty: out of the reactor, its descriptor closed, now (once: its number is reused after)."""
    if notifier.disconnected:
        return
    notifier.stopReading()
    notifier.connectionLost(Failure(ConnectionDone()))
