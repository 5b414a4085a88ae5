"""
A client on this machine that collects device output in a file (QEMU's
C{file:}), and how a local path is opened for it and for C{pipe:} (a
symlink not followed into another's sticky directory, never a controlling
terminal, a unix socket named as one).  The byte streams on descriptors
(C{pipe:}, C{stdio}) are L{serialgw.clients.streams}.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from typing import Any, Callable, Optional, Union

from twisted.internet import abstract, defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.guard import OutputGuard
from serialgw.clients.logfile import kindOf
from serialgw.clients.logwriter import QUEUE_BOUND, FileWrites, attach, detach
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.paths import NOT_FOLLOWED, noFollow
from serialgw.config.specs import quote
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role

log = Logger()


@implementer(IClient)
class FileClient(ClientEvents, abstract.FileDescriptor):
    """
    Device output appended to a file; nothing is read from it.  What the
    file does not take at once (a FIFO nobody reads, a slow tty) waits
    behind an output guard, as for a network client: up to the listener's
    C{outbuf}, then its policy (by default drop, counted).
    """

    # Called once its first open failed, the client closed (its owner's: see GatewayService._forget).
    gone: Optional[Callable[[], None]] = None

    def __init__(self, line: Line, path: str, reactor: Any = None, spec: Optional[ListenerSpec] = None,
                 writes: Optional[str] = None) -> None:
        """C{writes}: how a regular file is written (see L{serialgw.clients.logwriter}): by default off the reactor's thread."""
        abstract.FileDescriptor.__init__(self, reactor)
        self.line = line
        self.path = path
        self.peer = f"file:{path}"
        self.role = Role.READONLY
        # A log file is not someone the device should wait for.
        self.wakesLine = False
        self._fd = -1
        # Bytes dropped since a write failed (0: writing).
        self._lost = 0
        # A regular file's writer, off the reactor's thread (a disk slow or
        # stuck holds no line); a FIFO or a tty is written here, never waited
        # on.  The path is opened by the writer too (a file system that does
        # not answer holds no line): a FIFO's or a tty's writer is let go then.
        self._writesMode = writes
        self._writes: Optional[FileWrites] = attach(self.reactor, os.path.abspath(path), writes)
        self._teller: Optional[FileWrites] = self._writes
        # Output that came while the path was being opened (what it is not known yet), QUEUE_BOUND bytes at most.
        self._early: Optional[list[bytes]] = []
        self._earlySize = 0
        # The first open's outcome: set once the writer has tried; why it could not, or None.
        self.opening = threading.Event()
        self.openError: Optional[OSError] = None
        self.openWhat, self.openThreaded = f"file: output {path}", self._writes.mode == "thread"
        self._settled = self._closed = False
        self._writes.put(self._openFirst, None)
        if self.opening.is_set() and self.openError is not None:
            # (At once: a writer without a thread, a test's.)
            self._closed = True
            detach(self._writes)
            raise self.openError
        # Output its writer did not take (more than QUEUE_BOUND waited): all of it, and since it last took some.
        self.behindDropped = 0
        self._behind = 0
        # A FileDescriptor writes nothing until it is marked connected.
        self.connected = 1
        if spec is None:
            spec = ListenerSpec(path, Protocol.RAW, kind=ListenerKind.FILE, path=path)
        self.spec = spec
        # Its deliver, full, only holds: taken out of the line's fan-out then.
        self.guard = OutputGuard(self, line, spec.outbuf, spec.policy, fanOut=line)
        self.guard.attach(self)
        line.attach(self)
        self._settled = True

    def _openFirst(self, _: list[None]) -> None:
        """The writer's side: the path opened; a regular file kept, a FIFO or a tty handed to the reactor's thread."""
        try:
            fd = self._open()
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError as e:
            self.openError = e
            self._say(self._opened, -1, False)
        else:
            if regular:
                self._fd = fd
            self._say(self._opened, fd, regular)
        finally:
            self.opening.set()

    def _opened(self, fd: int, regular: bool) -> None:
        """
        (On the reactor's thread.)  The first open is over: what came
        meanwhile goes to the file (a FIFO's or a tty's written here from
        now on), or, if it could not be opened, it is said and the line
        runs without it.
        """
        if self._closed:
            if fd >= 0 and not regular:
                os.close(fd)  # (a regular file's is its writer's to close)
            return
        if fd < 0:
            if self._settled:
                log.error("{line}: cannot open listener {listener}: {reason}; the line runs without it",
                          line=self.line.name, listener=self.spec.text or self.peer,
                          reason=self.openError.strerror if self.openError is not None else "")
                self.close()
                if self.gone is not None:
                    self.gone()
            return
        early, self._early = self._early or [], None
        if not regular:
            writes, self._writes, self._teller = self._writes, None, None
            self._fd = fd
            if writes is not None:
                detach(writes)
        if early:
            self.deliver(b"".join(early))

    def _waitForOpen(self, data: bytes) -> None:
        """Output that comes while the path is being opened: kept (QUEUE_BOUND bytes at most: then dropped, said, counted)."""
        assert self._early is not None
        if self._earlySize + len(data) <= QUEUE_BOUND:
            self._early.append(data)
            self._earlySize += len(data)
            return
        if not self._behind:
            log.error("{line}: {path} is not open yet: {waiting} bytes wait for its open (a file system that does "
                      "not answer?); output is dropped until it is", line=self.line.name, path=self.path,
                      waiting=self._earlySize)
        self._behind += len(data)
        self.behindDropped += len(data)

    @property
    def transport(self) -> Any:
        """What the guard cuts (policy disconnect): this descriptor."""
        return self

    def _open(self) -> int:
        flags = os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            return openLocal(self.path, os.O_WRONLY | flags, 0o640)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            # A FIFO nobody reads yet: read-write, so that opening neither
            # waits nor fails; what it does not take waits here, bounded.
            return openLocal(self.path, os.O_RDWR | flags, 0o640)

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return self.peer

    def reopen(self) -> defer.Deferred[int]:
        """
        Open the path again (logrotate moved the file); the file in hand is
        kept if that fails.  A regular file is opened again by its writer,
        after what waits for it, a FIFO's or a tty's path by a writer for
        the while (an open on a stuck NFS mount holds no line): fires with
        1, or 0 if it could not be.
        """
        if self._early is not None:
            return defer.succeed(0)  # (its first open is under way, of the path as it is now)
        if self._writes is not None:
            return self._writes.ask(self._reopenFile, 0)
        # A FIFO's or a tty's path, opened by a writer of its own for the while (let go at once: it ends after).
        writes = attach(self.reactor, os.path.abspath(self.path), self._writesMode)
        try:
            return writes.ask(self._openOrWhy, None).addCallback(self._reopenedStream)
        finally:
            detach(writes)

    def _openOrWhy(self) -> Union[int, OSError]:
        """(The writer's.)  The path opened: its descriptor, or why not."""
        try:
            return self._open()
        except OSError as e:
            return e

    def _reopenedStream(self, opened: Union[int, OSError, None]) -> int:
        """A FIFO's or a tty's path opened again (see L{reopen}): written from now on, 1; or 0, said why not."""
        if not isinstance(opened, int):
            if opened is not None:  # (None: it raised, logged by the writer)
                log.error("{line}: cannot reopen {path}: {reason}; writing on to the file it was",
                          line=self.line.name, path=self.path, reason=opened.strerror)
            return 0
        if self._closed or self._fd < 0:
            os.close(opened)  # (closed meanwhile)
            return 0
        self.stopWriting()
        os.close(self._fd)
        self._fd = opened
        if self.dataBuffer or self._tempDataLen:
            self.startWriting()
        return 1

    def written(self) -> defer.Deferred[None]:
        """Fires once what was given to a regular file's writer so far is written or lost (at once for a FIFO, a tty)."""
        return defer.succeed(None) if self._teller is None else self._teller.after()

    def _reopenFile(self) -> int:
        """The writer's side of L{reopen}: 1 if the path was opened again."""
        try:
            fd = self._open()
        except OSError as e:
            self._say(log.error, "{line}: cannot reopen {path}: {reason}; writing on to the file it was",
                      line=self.line.name, path=self.path, reason=e.strerror)
            return 0
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            # (Its writer writes regular files: a FIFO nobody reads, or a tty, took nothing, and it spun on them.)
            os.close(fd)
            self._say(log.error, "{line}: cannot reopen {path}: it is not a regular file now ({kind}); writing on "
                      "to the file it was", line=self.line.name, path=self.path, kind=kindOf(mode))
            return 0
        os.close(self._fd)
        self._fd = fd
        return 1

    def _osWrite(self, fd: int, data: bytes) -> int:
        """C{os.write} (a test's slow disk replaces it)."""
        return os.write(fd, data)

    def writeSomeData(self, data: bytes) -> Any:
        return self._writeFile(data)

    def _writeFile(self, data: bytes) -> int:
        """
        Write what the file takes now.  A write that fails (a full disk,
        EIO) drops the data: said once, counted, and said again when the
        file takes writes again (it was a line a chunk, or, for output that
        had waited, the client cut for good).
        """
        try:
            n = self._osWrite(self._fd, data)
        except BlockingIOError:
            return 0
        except OSError as e:
            if not self._lost:
                self._say(log.error, "{line}: cannot write {path}: {reason}; output is dropped until it can",
                          line=self.line.name, path=self.path, reason=e.strerror)
            self._lost += len(data)
            return len(data)
        if self._lost:
            self._say(log.info, "{line}: writing {path} again; {count} bytes were lost", line=self.line.name,
                      path=self.path, count=self._lost)
            self._lost = 0
        return n

    def _say(self, say: Any, *args: Any, **fields: Any) -> None:
        """Logged on the reactor's thread (the writer's words too)."""
        if self._teller is not None:
            self._teller.tell(say, *args, **fields)
        else:
            say(*args, **fields)

    def _writeNow(self, chunks: list[bytes]) -> None:
        """The writer's side of a regular file: what waited, in one write (the rest of a short one after it)."""
        data = b"".join(chunks)
        while data:
            n = self._writeFile(data)
            if n == 0:
                # (A file that takes nothing, EAGAIN: dropped as a failed write is, not retried at once for ever.)
                if not self._lost:
                    self._say(log.error, "{line}: cannot write {path}: it takes nothing now; output is dropped until "
                              "it can", line=self.line.name, path=self.path)
                self._lost += len(data)
                return
            data = data[n:]

    def _toWriter(self, data: bytes) -> None:
        """
        Output for a regular file's writer, unless QUEUE_BOUND bytes wait
        for it already (a disk slow, or a write that does not return):
        then dropped, said once, counted, until half of that is written.
        """
        writes = self._writes
        assert writes is not None
        if self._behind:
            if writes.waiting > writes.bound // 2:
                self._behind += len(data)
                self.behindDropped += len(data)
                return
            log.info("{line}: writing {path} again; {count} bytes were lost", line=self.line.name, path=self.path,
                     count=self._behind)
            self._behind = 0
        if writes.room(len(data)):
            writes.put(self._writeNow, data, len(data))
            return
        log.error("{line}: {path} is behind: {waiting} bytes wait for its disk (slow, or a write that does not "
                  "return); output is dropped until they are written", line=self.line.name, path=self.path,
                  waiting=writes.waiting)
        self._behind += len(data)
        self.behindDropped += len(data)

    def deliver(self, data: bytes) -> None:
        if self._early is not None:
            self._waitForOpen(data)
            return
        if self._writes is not None:
            self._toWriter(data)
            return
        guard = self.guard
        if guard.full and guard.policy == "drop":
            guard.hold(data)
            return
        if self.dataBuffer or self._tempDataLen:
            self.write(data)
            return
        # Nothing waiting: straight to the file (a regular file takes it all).
        n = self._writeFile(data)
        if n < len(data):
            self.write(data[n:])

    # The guard's side: nothing is read from a file.

    def holdInput(self) -> None:
        pass

    def releaseInput(self) -> None:
        pass

    def droppedNotice(self, count: int) -> None:
        pass

    def disconnect(self, why: Optional[str] = None) -> None:
        """Closed once what waits for the file is written."""
        self.loseConnection()

    def connectionLost(self, reason: Failure) -> None:
        # Cut (policy disconnect) or the file failed: it goes.
        abstract.FileDescriptor.connectionLost(self, reason)
        self.close()

    def close(self) -> None:
        if self._closed:
            return  # (its open failed: closed then)
        self._closed = True
        self._early = None
        if self.behindDropped and self in self.line.clients:
            # (Kept in the line's count of what its logs dropped: a counter never falls.)
            gone = self.line.droppedGone
            gone["log"] = gone.get("log", 0) + self.behindDropped
        self.line.detach(self)
        writes, self._writes = self._writes, None
        if writes is not None:
            # (Closed by its writer, after what waits: a stuck write holds neither the line nor the stop.)
            writes.put(self._closeNow, None)
            detach(writes)
            return
        if self._fd >= 0:
            self.stopWriting()
            os.close(self._fd)
            self._fd = -1


    def _closeNow(self, _: list[None]) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def openLocal(path: str, flags: int, mode: int = 0o640) -> int:
    """
    os.open() for a file: or pipe: path: a symlink is followed, but not
    another user's in a sticky directory everyone may write (noFollow).
    A tty there never becomes the gateway's controlling terminal (O_NOCTTY:
    under systemd it leads a session with none, and a tty opened for
    reading became it: a ^C typed there would stop the gateway).
    """
    flags |= noFollow(path) | os.O_NOCTTY
    try:
        return os.open(path, flags, mode)
    except OSError as e:
        # (ELOOP; with O_CREAT some kernels say EACCES.)
        if flags & os.O_NOFOLLOW and e.errno in (errno.ELOOP, errno.EACCES) and os.path.islink(path):
            raise OSError(e.errno, f"{quote(path)} is {NOT_FOLLOWED}") from None
        if e.errno == errno.ENXIO and isSocket(path):
            raise OSError(e.errno, socketThere(path)) from None  # (it said "No such device or address")
        raise


def isSocket(path: str) -> bool:
    """Whether a unix socket is at C{path} now (a symlink followed)."""
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def socketThere(path: str) -> str:
    """Why a file: or pipe: listener cannot open a unix socket at C{path}, for people."""
    return f"{quote(path)} is a unix socket: file: and pipe: write a file, a FIFO or a tty; a socket is reached with unix:{path}"
