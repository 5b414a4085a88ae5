"""
QEMU's C{pipe:} FIFO pair opened off the reactor's thread.  Its opens
(os.open of PATH.in and PATH.out, or PATH, and a look at what is there)
were made on the gateway's thread: a FIFO on a mount that hangs at that
moment (a hard-mounted NFS server gone) held every line.  Now a thread of
its own opens them, and the client is made on the reactor's thread once
they are open; the start waits for that as for console logs' first opens
(L{serialgw.clients.logfile.awaitOpens}: 5 s at most, one refused fails
it); one that fails once its line runs is said, and the line runs without
it (out of the running configuration: C{gone}).  Nothing the device says
meanwhile waits for it: a pipe is a client, and gets what comes once it is
there, as a client connecting then does.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any, Callable, Optional, Union

from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from serialgw.clients.streams import fifoPair, streamClient
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.line.hub import Line

log = Logger()


class PipeOpening:
    """A C{pipe:} listener: its FIFOs opened by a thread of its own (at once where the reactor has no threads), then its client."""

    # Called once its open failed when its line ran (see GatewayService._forget).
    gone: Optional[Callable[[], None]] = None

    def __init__(self, line: Line, spec: ListenerSpec, reactor: Any, threaded: Optional[bool] = None) -> None:
        self.line = line
        self.spec = spec
        self.reactor = reactor
        # The client's transport, once the FIFOs are open.
        self.transport: Any = None
        # As awaitOpens asks it: set once the open is over; why it failed, or None.
        self.opening = threading.Event()
        self.openError: Optional[OSError] = None
        self.openWhat = f"listener {spec.text or 'pipe:' + spec.path}"
        self.openMeanwhile = "its pipe joins it once the open returns"
        self.openThreaded = IReactorThreads.providedBy(reactor) if threaded is None else threaded
        self._closed = False
        if not self.openThreaded:
            # (A test's clock: opened here; an error raised, as before.)
            fdIn, fdOut = fifoPair(spec.path)
            self.opening.set()
            self._attach(fdIn, fdOut)
            return
        try:
            threading.Thread(target=self._open, name=f"serialgw pipe open {spec.path}", daemon=True).start()
        except RuntimeError as e:
            raise OSError(errno.EAGAIN, f"cannot start a thread to open it ({e}): are the process's threads "
                          "limited (systemd's TasksMax, ulimit -u)?") from e

    def _open(self) -> None:
        """(Its thread.)  The FIFOs opened; the outcome handed to the reactor's thread."""
        result: Union[tuple[int, int], OSError]
        try:
            result = fifoPair(self.spec.path)
        except OSError as e:
            self.openError = result = e
        except Exception as e:  # (never lost silently)
            self.openError = result = OSError(errno.EIO, str(e))
        self.opening.set()
        self.reactor.callFromThread(self._opened, result)

    def _opened(self, result: Union[tuple[int, int], OSError]) -> None:
        """(On the reactor's thread.)  The client made, or the failure said (the line runs without it)."""
        if isinstance(result, OSError):
            if not self._closed:
                self._closed = True
                log.error("{line}: cannot open listener {listener}: {reason}; the line runs without it",
                          line=self.line.name, listener=self.spec.text or f"pipe:{self.spec.path}",
                          reason=result.strerror or str(result))
                if self.gone is not None:
                    self.gone()
            return
        fdIn, fdOut = result
        if self._closed:
            os.close(fdIn)
            if fdOut != fdIn:
                os.close(fdOut)
            return
        self._attach(fdIn, fdOut)

    def _attach(self, fdIn: int, fdOut: int) -> None:
        self.transport = streamClient(self.line, self.reactor, self.spec, fdIn, fdOut, name=f"pipe:{self.spec.path}",
                                      owned=True)

    def close(self) -> None:
        """Its client goes (or, its FIFOs still being opened, will not come: they are closed once open)."""
        self._closed = True
        if self.transport is not None:
            transport, self.transport = self.transport, None
            transport.loseConnection()
