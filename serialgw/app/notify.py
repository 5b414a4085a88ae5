"""
systemd's notify protocol (sd_notify), no dependency: datagrams to the
socket named by $NOTIFY_SOCKET, if any.

L{Notifier} tells systemd the truth over the service's life: C{READY=1} at
start, C{STATUS=} kept current (checked once a second on the reactor's
clock, sent only when it changed), C{RELOADING=1} with C{MONOTONIC_USEC}
then C{READY=1} around a reload (what C{Type=notify-reload} wants),
C{STOPPING=1} at stop, and C{WATCHDOG=1} at half of C{$WATCHDOG_USEC} when
systemd asks for it.  Without $NOTIFY_SOCKET it does nothing and runs no
timer.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Mapping, Optional

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from serialgw.config.parsers import isDecimal

log = Logger()

# STATUS= is looked at this often (seconds), and sent only when it changed.
STATUS_INTERVAL = 1.0
# WATCHDOG=1 no more often than this (seconds), whatever $WATCHDOG_USEC says.
MIN_WATCHDOG_INTERVAL = 0.01


def notify(message: str, environ: Mapping[str, str] = os.environ, warn: bool = True) -> bool:
    """
    Send C{message} to systemd; False when not run by systemd (or it fails).
    Never waits: a reader whose queue is full loses the message (EAGAIN).
    """
    given = environ.get("NOTIFY_SOCKET")
    if not given:
        return False
    address = "\0" + given[1:] if given.startswith("@") else given
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(address)
            sock.send(message.encode())
        return True
    except OSError as e:
        if warn:
            log.warn("cannot notify systemd at {address}: {reason}", address=given, reason=e.strerror)
        return False


def monotonicUsec() -> int:
    """CLOCK_MONOTONIC in microseconds, as systemd compares MONOTONIC_USEC with it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """
    What systemd hears from one gateway; C{status} is called for the
    current C{STATUS=} text.
    """

    def __init__(
        self,
        clock: Any,
        status: Callable[[], str],
        environ: Mapping[str, str] = os.environ,
        monotonic: Callable[[], int] = monotonicUsec,
    ) -> None:
        self.clock = clock
        self.status = status
        self.environ = environ
        self.monotonic = monotonic
        self.active = bool(environ.get("NOTIFY_SOCKET"))
        self._sent: Optional[str] = None
        self._statusLoop: Optional[LoopingCall] = None
        self._watchdogLoop: Optional[LoopingCall] = None
        # Whether the last message got through: a failure is logged once, not a message.
        self._reached = True
        self._stopping = False

    def send(self, *fields: str) -> None:
        if self.active:
            self._reached = notify("\n".join(fields), self.environ, warn=self._reached)

    def _status(self) -> str:
        # One line: a newline (in a line named after its device) would start
        # another assignment, such as MAINPID=, in what systemd reads.
        return self.status().replace("\n", " ")

    def _statusField(self) -> str:
        self._sent = self._status()
        return f"STATUS={self._sent}"

    def ready(self) -> None:
        """Serving: READY=1 with the status, then keep both loops going."""
        if not self.active:
            return
        self.send("READY=1", self._statusField())
        if self._statusLoop is None:
            self._statusLoop = LoopingCall(self._checkStatus)
            self._statusLoop.clock = self.clock
            self._statusLoop.start(STATUS_INTERVAL, now=False)
        interval = self.watchdogInterval()
        if interval is not None and self._watchdogLoop is None:
            self._watchdogLoop = LoopingCall(self.send, "WATCHDOG=1")
            self._watchdogLoop.clock = self.clock
            self._watchdogLoop.start(interval, now=True)

    def watchdogInterval(self) -> Optional[float]:
        """Half of $WATCHDOG_USEC in seconds, when it is meant for this process."""
        usec = self.environ.get("WATCHDOG_USEC", "")
        pid = self.environ.get("WATCHDOG_PID", "")
        if not isDecimal(usec) or int(usec) == 0 or (pid and pid != str(os.getpid())):
            return None
        return max(int(usec) / 2e6, MIN_WATCHDOG_INTERVAL)

    def _checkStatus(self) -> None:
        text = self._status()
        if text != self._sent:
            self._sent = text
            self.send(f"STATUS={text}")

    def reloading(self) -> None:
        """A reload begins (SIGHUP); not once stopping (see L{stopping})."""
        if self._stopping:
            return
        self.send("RELOADING=1", f"MONOTONIC_USEC={self.monotonic()}", "STATUS=reloading the configuration")
        self._sent = None

    def reloaded(self, outcome: str = "") -> None:
        """
        The reload is over, applied or refused: READY=1 again; not once
        stopping (a reload that ends during the stop: systemd heard STOPPING=1).
        """
        if self._stopping:
            return
        status = self._statusField()
        self.send("READY=1", status + (f"; {outcome}".replace("\n", " ") if outcome else ""))

    def stopping(self) -> None:
        """Stopping: STOPPING=1; no more status, watchdog or reload messages."""
        self._stopping = True
        for loop in (self._statusLoop, self._watchdogLoop):
            if loop is not None and loop.running:
                loop.stop()
        self._statusLoop = self._watchdogLoop = None
        self.send("STOPPING=1", "STATUS=stopping")
