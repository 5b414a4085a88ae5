"""
A pseudo-terminal as a client of a line (remserial C{-l}, QEMU's C{pty}):
a local program opens the slave (through a stable symlink) as if it were
the serial port.  When the program changes the pty's termios (speed, stop
bits, ...), the change goes to the line's device as a settings request, so a
remote RFC 2217 port follows what the program asked for.

Changes are seen with packet mode (TIOCPKT) and EXTPROC on the slave: the
kernel then tells the master side of every termios change made while
EXTPROC is set before or after it.  A program that clears EXTPROC (minicom
sets c_lflag = 0) is seen doing so; the gateway sets EXTPROC again at once,
so its later changes, and later programs', are seen too.
That following, both ways, is L{serialgw.clients.ptytermios}.

The slave starts at the line's speed, stop bits and hardware flow (a pty
keeps those; it forces 8 bits and no parity), and only what a program
changes goes to the device: a program that sets the speed does not also
turn a 7E1 line into 8N1.

Device output waits for the program behind an output guard, as for a network
client: the listener's C{outbuf}, then its policy (C{drop}: the newest kept;
C{block}: the device is not read meanwhile); C{ro} makes it read-only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
import tty
from typing import Any, Callable, Optional, Sequence

from twisted.internet import abstract, defer, fdesc
from twisted.internet.interfaces import IReactorThreads
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.guard import OutputGuard
from serialgw.clients.ptytermios import PtyTermios, _setAttributes
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.devices.links import givePty, removeSymlink, replaceSymlink, restoreSymlink
from serialgw.devices.ptywatch import SlaveWatch
from serialgw.devices.termio import readTermios, termiosConstant
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import clientLog

# Limited per peer: a program flipping its termios in a loop cannot flood the log (logflood).
log = clientLog()

TIOCPKT = termiosConstant("TIOCPKT", 0x5420)
TIOCPKT_DATA = 0
TIOCPKT_IOCTL = 0x40


# The ptys this process made for pty: listeners, by device number (see
# serialgw.app.lines: a device opened again onto its own line's is a loop).
OWN_PTYS: dict[int, PtyClient] = {}


@implementer(IClient)
class PtyClient(ClientEvents, PtyTermios):
    """
    The master side of a pty, in the reactor, attached to a line.
    """

    # Made at start, whether a program is on it or not: not the first client
    # a waiting line (QEMU's tcp::N,server) waits for, as a file: is not.
    wakesLine = False
    # Called once its link could not be made when its line ran (see GatewayService._forget).
    gone: Optional[Callable[[], None]] = None

    def __init__(self, line: Line, link: str, reactor: Any, spec: Optional[ListenerSpec] = None) -> None:
        abstract.FileDescriptor.__init__(self, reactor)
        if spec is None:
            spec = ListenerSpec(link, Protocol.RAW, kind=ListenerKind.PTY, path=link)
        self.line = line
        self.role = Role.READONLY if spec.readOnly else Role.WRITER
        self.link = link
        # Its listener as the configuration has it now (see retune).
        self.spec = spec
        master, slave = os.openpty()
        self.slaveName = os.ttyname(slave)
        try:
            tty.setraw(slave)
            _setAttributes(slave, line.settings)
            fcntl.ioctl(master, TIOCPKT, struct.pack("i", 1))
            fdesc.setNonBlocking(master)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # Its link, made by a thread of its own where the reactor has threads
        # (a directory on a mount that hangs holds no line; the start waits
        # for it as for a log's first open: see awaitOpens), else here.
        # Set by that thread as the making returns (awaitOpens waits for it on
        # the reactor's thread, which cannot hear of it meanwhile); see
        # whenLinked for once the reactor's thread has taken the outcome in.
        self.opening = threading.Event()
        self._linkTaken: defer.Deferred[Optional[OSError]] = defer.Deferred()
        self.openError: Optional[OSError] = None
        self.openWhat = f"listener {spec.text or 'pty:' + link}"
        self.openMeanwhile = f"its pty is {self.slaveName}, its link made once that returns"
        self.openThreaded = bool(link) and IReactorThreads.providedBy(reactor)
        self._closed = False
        if not link:
            self.opening.set()
            self._linkTaken.callback(None)
        elif not self.openThreaded:
            try:
                replaceSymlink(self.slaveName, link)
            except BaseException:
                os.close(master)
                os.close(slave)
                raise
            self.opening.set()
            self._linkTaken.callback(None)
        else:
            try:
                threading.Thread(target=self._makeLink, name=f"serialgw pty link {link}", daemon=True).start()
            except RuntimeError as e:
                os.close(master)
                os.close(slave)
                raise OSError(errno.EAGAIN, f"cannot start a thread to make its link ({e}): are the process's "
                              "threads limited (systemd's TasksMax, ulimit -u)?") from e
        # Kept open: the program may close and reopen the slave freely.
        self._master, self._slave = master, slave
        self._rdev = os.fstat(slave).st_rdev
        OWN_PTYS[self._rdev] = self
        self.peer = f"pty:{link or self.slaveName}"
        self.settings = readTermios(slave, line.settings.baudrate)
        # While this pty's own change is applied (the line then tells its followers).
        self._asking = False
        # A FileDescriptor writes nothing until it is marked connected.
        self.connected = 1
        # Its deliver, full, only holds: taken out of the line's fan-out then.
        self.guard = OutputGuard(self, line, spec.outbuf, spec.policy, fanOut=line)
        self.guard.attach(self)
        # Exclusive mode a program leaves (screen's TIOCEXCL) goes at its last close.
        self._watch = SlaveWatch(reactor, self.slaveName, slave, self.peer, hungUp=self._renewSlave)
        self.startReading()
        line.attach(self)
        line.settingsFollowers.append(self.lineSettingsChanged)

    def _makeLink(self) -> None:
        """(Its thread.)  The link made; what came of it handed to the reactor's thread (see L{_linked})."""
        try:
            replaceSymlink(self.slaveName, self.link)
        except OSError as e:
            self.openError = e
        except Exception as e:  # (never lost silently)
            self.openError = OSError(errno.EIO, str(e))
        self.opening.set()
        if self._closed and self.openError is None:
            removeSymlink(self.link, self.slaveName)  # (closed meanwhile: not left behind)
        self.reactor.callFromThread(self._linked)  # type: ignore[attr-defined]

    def _linked(self) -> None:
        """
        (On the reactor's thread.)  Its link could not be made once its
        line ran (a reload's, or one the start stopped waiting for): said,
        and it leaves the line, out of the running configuration (C{gone}).
        """
        error = self.openError
        try:
            if error is None or self._closed:
                return
            log.error("{line}: cannot open listener {listener}: {reason}; the line runs without it",
                      line=self.line.name, listener=self.spec.text or self.peer, reason=error.strerror or str(error))
            self.close()
            if self.gone is not None:
                self.gone()
        finally:
            self._linkTaken.callback(error)

    def whenLinked(self) -> defer.Deferred[Optional[OSError]]:
        """
        Fires (each call a Deferred of its own) once the reactor's thread has
        taken in what came of its link's making (L{_linked}: a failure said,
        the client off its line), with why it failed or None: what a test
        waits for before it looks at the gateway (with C{opening} set, a
        failed client is still on its line; after the start's wait for it,
        START_WAIT s at most, the link may not be there yet).
        """
        d: defer.Deferred[Optional[OSError]] = defer.Deferred()

        def tell(outcome: Optional[OSError]) -> Optional[OSError]:
            d.callback(outcome)
            return outcome

        self._linkTaken.addCallback(tell)
        return d

    def fileno(self) -> int:
        return self._master

    def logPrefix(self) -> str:
        return self.peer

    def doRead(self) -> Any:
        try:
            packet = os.read(self._master, 65537)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno == errno.EIO:
                return None
            raise
        if not packet:
            return None
        status, data = packet[0], packet[1:]
        try:
            if status == TIOCPKT_DATA:
                if data:
                    self.line.clientData(self, data)
            elif status & TIOCPKT_IOCTL:
                self._termiosChangedInTurn()
        except Exception:
            # Never let the reactor drop this reader over a bug above us:
            # the pty would stay on the line, deaf, with nobody told.
            log.failure("{line}: handling input from {peer} failed", line=self.line.name, peer=self.peer)
        return None

    def connectionLost(self, reason: Any) -> None:
        """
        The reactor gave up on the master (reading it failed): said, and the
        client leaves the line rather than stay on it deaf and mute.
        """
        abstract.FileDescriptor.connectionLost(self, reason)
        log.error("{line}: {peer} lost: {reason}; it is off the line until a restart (or a reload that changes its link)",
                  line=self.line.name, peer=self.peer, reason=reason.getErrorMessage())
        self.line.forgetControlWaiter(self._controlFree)
        self.line.detach(self)
        self._unfollow()

    def _unfollow(self) -> None:
        if self.lineSettingsChanged in self.line.settingsFollowers:
            self.line.settingsFollowers.remove(self.lineSettingsChanged)

    def retune(self, spec: ListenerSpec) -> None:
        """
        A reload changed this listener's options, its link the same (see
        L{keptInPlace}): the pty stays, and the program on it; made C{ro},
        it is read-only from now on (told to the others and logged), with
        C{ro} taken out it writes again (it cannot connect again to be given
        the right, as a network client does: the link leads to this pty);
        C{outbuf=} and C{policy=} go to its output guard.
        """
        where = f"{self.line.name}'s listener {spec.text or self.peer!r}"
        if spec.readOnly:
            self.line.makeReadOnly(self, f"a reload made {where} read-only")
        elif self.role is Role.READONLY:
            self.line.giveWrite(self, f"a reload took ro out of {where}")
        self.guard.retune(spec.outbuf, spec.policy)
        self.spec = spec

    def giveTo(self, uid: int, gid: int) -> None:
        """The pty (and its link) to the user and group twistd runs as once privileges drop (see L{givePty})."""
        givePty(self._slave, self.link, uid, gid)

    def restoreLink(self) -> Optional[str]:
        """
        A reload: its link, if someone removed it, is made again (to this
        pty); anything put there instead is left: what was done, or None
        (also while its link is still being made, or could not be).  (Off
        the reactor's thread: see L{serialgw.app.retuning.restoreLinks}.)
        """
        if self._closed or not self.opening.is_set() or self.openError is not None:
            return None
        try:
            done = restoreSymlink(self.slaveName, self.link)
        except OSError as e:
            return f"is gone and cannot be made again: {e.strerror}"
        if done is not None and self._closed:
            # Closed meanwhile (a later reload): its close may have looked before this was made.
            removeSymlink(self.link, self.slaveName)
            return None
        return done

    def writeSomeData(self, data: bytes) -> Any:
        return fdesc.writeToFD(self._master, data)

    @property
    def transport(self) -> Any:
        """What the guard would cut: this descriptor."""
        return self

    # IClient

    def deliver(self, data: bytes) -> None:
        guard = self.guard
        if guard.full and guard.policy == "drop":
            guard.hold(data)
            return
        self.write(data)

    # The guard's side (IGuarded): what the program writes makes no output
    # for it (no answers, unlike a network client's input), so it is read on
    # however much waits for it; and no notice goes into its byte stream.

    def holdInput(self) -> None:
        pass

    def releaseInput(self) -> None:
        pass

    def droppedNotice(self, count: int) -> None:
        pass

    def pauseInput(self) -> None:
        self._inputPaused = True
        self.stopReading()

    def resumeInput(self) -> None:
        self._inputPaused = False
        if not self._changeWaits:
            self.startReading()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.line.forgetControlWaiter(self._controlFree)
        self.line.detach(self)
        self._unfollow()
        self.stopReading()
        self.stopWriting()
        self._watch.close()
        if OWN_PTYS.get(self._rdev) is self:
            del OWN_PTYS[self._rdev]
        if self.opening.is_set():
            removeSymlink(self.link, self.slaveName)  # (else its thread removes it once made)
        os.close(self._master)
        os.close(self._slave)


def keptInPlace(old: Sequence[ListenerSpec], new: Sequence[ListenerSpec]) -> dict[ListenerSpec, ListenerSpec]:
    """
    The C{pty:} listeners of C{old} that a reload to C{new} changes in place
    (the same link, one such in each, other options), each with its new spec:
    kept open and retuned (L{PtyClient.retune}), not closed and made anew.
    """
    def byLink(specs: Sequence[ListenerSpec]) -> dict[str, list[ListenerSpec]]:
        links: dict[str, list[ListenerSpec]] = {}
        for spec in dict.fromkeys(specs):
            if spec.kind is ListenerKind.PTY:
                links.setdefault(spec.path, []).append(spec)
        return links

    before, after = byLink(old), byLink(new)
    return {was[0]: now[0] for link, was in before.items()
            if len(was) == 1 and len(now := after.get(link, [])) == 1 and was[0] != now[0]}


