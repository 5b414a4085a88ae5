"""
Clients on byte streams over file descriptors, carried by Twisted's
StandardIO: QEMU's C{pipe:} FIFO pair (L{fifoPair}, its descriptors the
client's own: L{OwnedStandardIO}) and C{stdio}, the gateway's own terminal
set raw while it is a client and given back (L{TerminalClient}).  A file
that collects output: L{serialgw.clients.local}.
"""

from __future__ import annotations

import errno
import os
import stat
import termios
from typing import Any, Optional

from twisted.internet import stdio
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.clients.local import openLocal
from serialgw.clients.raw import RawClient
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.specs import quote
from serialgw.line.hub import Line
from serialgw.line.role import Role

# (The namespace its events had before this module was split from local.)
log = Logger(namespace="serialgw.clients.local")


def fifoPair(path: str) -> tuple[int, int]:
    """
    QEMU's C{pipe:PATH}: read C{PATH.in} and write C{PATH.out}, or PATH both
    ways when those do not exist.  Opened read-write, so neither open nor
    read waits for (or ends with) the program at the other end.
    """
    inPath, outPath = path + ".in", path + ".out"
    if not (os.path.exists(inPath) and os.path.exists(outPath)):
        if not os.path.lexists(path):
            # Said whole: "No such file or directory" alone named no path.
            raise FileNotFoundError(errno.ENOENT, f"neither {inPath} and {outPath} nor {path} is there (QEMU's "
                                    "pipe: FIFOs, made with mkfifo)", path)
        inPath = outPath = path
    flags = os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC
    fdIn = openLocal(inPath, flags)
    try:
        fdOut = fdIn if outPath == inPath else openLocal(outPath, flags)
    except OSError:
        os.close(fdIn)
        raise
    for fd, opened in ((fdIn, inPath), (fdOut, outPath)):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            # Read to its end at once, the client detached: a listener that did nothing, said nowhere.
            os.close(fdIn)
            if fdOut != fdIn:
                os.close(fdOut)
            raise OSError(errno.EINVAL, regularFileThere(opened))
    return fdIn, fdOut


def regularFileThere(path: str) -> str:
    """Why a pipe: listener does not take a regular file at C{path}, for people."""
    return f"{quote(path)} is a regular file, not a FIFO: pipe: reads and writes QEMU's FIFOs (made with mkfifo)"


def streamClient(
    line: Line, reactor: Any, spec: ListenerSpec, stdin: int = 0, stdout: int = 1, name: str = "stdio",
    owned: bool = False,
) -> Any:
    """
    A raw client on a pair of descriptors, called C{name} (C{w}, the status
    page), behind its listener's output bound and policy like a network
    client (and with mon:, the escape menu); returns its transport, which
    closes the descriptors once the client is gone if C{owned} (opened for
    it: pipe:'s FIFOs; not the process's own standard input and output).
    """
    role = Role.READONLY if spec.readOnly else Role.WRITER
    if os.isatty(stdin):
        client: RawClient = TerminalClient(line, role, listener=spec, reactor=reactor, peer=name, fd=stdin)
    else:
        client = RawClient(line, role, listener=spec, clock=reactor, peer=name)
    kind = OwnedStandardIO if owned else stdio.StandardIO
    return kind(client, stdin=stdin, stdout=stdout, reactor=reactor)  # type: ignore[call-arg]


# (stdio.StandardIO as typed is either platform's: Linux's takes stdout=.)
_StandardIO: Any = stdio.StandardIO


class OwnedStandardIO(_StandardIO):
    """
    Twisted's StandardIO on descriptors of the client's own, closed once it
    is done with them: Twisted's leaves both open (they are the process's
    standard input and output), so each pipe: listener closed (a reload
    changing its line, the stop) left its FIFOs open for good.
    """

    def __init__(self, proto: Any, stdin: int, stdout: int, reactor: Any) -> None:
        self._owned = sorted({stdin, stdout})
        super().__init__(proto, stdin=stdin, stdout=stdout, reactor=reactor)

    def connectionLost(self, reason: Any) -> None:
        try:
            super().connectionLost(reason)
        finally:
            owned, self._owned = self._owned, []
            for fd in owned:
                os.close(fd)


class TerminalClient(RawClient):
    """
    The gateway's own terminal as a client (C{stdio} on a tty), set as QEMU
    sets it once the gateway runs: each key at once, not echoed (the device
    echoes); with an escape menu (C{mon:stdio}) Ctrl-C and Ctrl-Z go to the
    device too, without one they still stop the gateway.  Given back as it
    was found when the client goes (C-a x) or the gateway stops; a start
    that fails never touches it.
    """

    def __init__(self, line: Line, role: Role, listener: ListenerSpec, reactor: Any, peer: str, fd: int) -> None:
        RawClient.__init__(self, line, role, listener=listener, clock=reactor, peer=peer)
        # Its own descriptor of the terminal: StandardIO closes fd 0 before
        # telling the client it is gone.
        self.fd = os.dup(fd)
        self.saved: Optional[list[Any]] = None
        reactor.callWhenRunning(self._setRaw)
        reactor.addSystemEventTrigger("after", "shutdown", self.giveBack)

    def _setRaw(self) -> None:
        if self.fd < 0:
            return
        self.saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                     | termios.IGNCR | termios.ICRNL | termios.IXON)
        mode[2] = (mode[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
        if self.listener.escape is not None:
            mode[3] &= ~termios.ISIG
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)

    def giveBack(self) -> None:
        """The terminal as it was found (once)."""
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        try:
            if self.saved is not None:
                termios.tcsetattr(fd, termios.TCSANOW, self.saved)
        except termios.error as e:
            log.info("stdio: the terminal's settings could not be given back: {error}", error=e)
        finally:
            os.close(fd)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        RawClient.connectionLost(self, reason)
        self.giveBack()
