"""
A remote device's connection: dialed (redialed with backoff by Twisted's
ClientService, why the last attempt failed kept for the status page), and
its link's side: a link up (refused when it reached a listener of the
device's own line: a loop), a link lost (what was typed and not sent
counted dropped), the settings the far end answers told to the line.

L{DialAndLink} is a part of L{serialgw.devices.remote.RemoteDevice}, kept
apart: it works on the device's service, link and counters.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import attrs
from twisted.application.internet import ClientService
from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.config.specs import DeviceSpec, SerialSettings, isAbstract, quote
from serialgw.devices.backoff import CarriedBackoff
from serialgw.devices.device import HIGH_WATER
from serialgw.devices.linkbase import HELD_LINE, farEnd, farEndLog
from serialgw.devices.loss import DeviceLost
from serialgw.wire.sockets import countQueuedOnly, noDelay

log = Logger()

_NOT_SOCKETS = ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def notASocket(path: str) -> Optional[str]:
    """
    What is at a C{unix:} device's path when it is no socket, for people
    (C{'/run/x' is a directory, not a unix socket}: connecting to it says
    only "Connection refused"); None for a socket, nothing, or an abstract name.
    """
    if isAbstract(path):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    what = next((name for test, name in _NOT_SOCKETS if test(mode)), None)
    return None if what is None else f"{quote(path)} is {what}, not a unix socket"



class DialAndLink:
    """The dialing and the link's side of a L{serialgw.devices.remote.RemoteDevice} (see the module)."""

    # The device's, which this part works on.
    spec: DeviceSpec
    name: str
    reactor: Any
    settings: SerialSettings
    modem: Optional[int]
    sink: Any
    up: bool
    closed: bool
    downReason: Optional[str]
    logBudget: Optional[str]
    dropped: int
    unsent: int
    _ownSockets: Optional[Callable[[], Mapping[str, str]]]
    _service: ClientService
    _backoff: CarriedBackoff
    _link: Any
    _watchCall: Any
    _breakCall: Any
    _settingsCall: Any
    _reopenWhy: Optional[str]
    _typedQueued: int
    _held: int
    _linkFull: bool

    if TYPE_CHECKING:
        # (The device's line side's: declared for mypy alone, as a stub at run time would shadow the real one in
        # RemoteDevice's MRO, and naming RemoteDevice would be an import cycle; tests.test_layers.PartStubTests.)
        def _typedLost(self) -> int: ...
        def _checkWatermark(self) -> None: ...

    def start(self) -> None:
        if not self._service.running and not self.closed:
            log.info("{device}: connecting (reconnecting with backoff)", device=self.name)
            self._service.startService()
            self._watchAttempts()

    def _watchAttempts(self) -> None:
        """
        While not connected, C{downReason} is why the last attempt failed (a
        console not there yet: connection refused), for the status page.
        """
        self._watchCall = None
        if not self.closed and self._service.running:
            self._service.whenConnected(failAfterFailures=1).addErrback(self._attemptFailed)

    def _attemptFailed(self, failure: Failure) -> None:
        if self.closed or failure.check(CancelledError):
            return
        reason = failure.getErrorMessage().rstrip(".")
        if self.spec.kind == "unix":
            reason = notASocket(self.spec.path) or reason
        if reason != self.downReason:
            farEndLog.info("{device}: not connected: {reason}; trying again with backoff", device=self.name,
                           reason=reason, peer=farEnd(self), budget=self.logBudget)
        self.downReason = reason
        # Not from inside the service's own callback (it refuses re-entry).
        self._watchCall = self.reactor.callLater(0, self._watchAttempts)


    # The link's side

    def _ownListener(self, link: Any) -> Optional[str]:
        """
        What a unix: device reached, when it is a listener of its own line's
        or a watch-all listener watching its line (known by the name its
        socket is bound to, which the peer's address is), or None.  Checked
        at start by path (serialgw.config.loops); a symlink or hard link put
        at the device's path since, or a device that was not there then,
        reached it all the same: one byte typed went round for ever, a core
        93 % busy (a watch-all's: each line of output back prefixed, 100 %).
        """
        if self.spec.kind != "unix" or self._ownSockets is None:
            return None
        try:
            peer = link.transport.getHandle().getpeername()
        except (AttributeError, OSError):
            return None
        name = os.fsdecode(peer) if isinstance(peer, bytes) else str(peer)
        return self._ownSockets().get(name) if name else None

    def _linkUp(self, link: Any) -> None:
        own = self._ownListener(link)
        if own is not None:
            reason = f"it is {own} (a loop); not used, tried again with backoff"
            if reason != self.downReason:
                log.error("{device}: {reason}", device=self.name, reason=reason)
            self.downReason = reason
            link.transport.abortConnection()
            return
        self._link = link
        self._linkFull = False
        noDelay(link.transport)
        link.transport.bufferSize = HIGH_WATER
        countQueuedOnly(link.transport)
        link.transport.registerProducer(self, True)
        self._held &= HELD_LINE
        if self._held:
            link.transport.pauseProducing()
        self.up = True
        self.downReason = None
        self._backoff.linkUp()
        farEndLog.info("{device}: connected", device=self.name, peer=farEnd(self), budget=self.logBudget)
        # The line started with the device down (not dialed yet): the first
        # connection is news to it as much as a reconnection.
        try:
            self.sink.deviceUp()
        except Exception:
            log.failure("{device}: handling the connection failed", device=self.name)

    def _linkDown(self, link: Any, reason: Failure) -> None:
        if link is not self._link:
            return
        if not self.closed:
            # What was typed and not sent (held, or in the transport's
            # buffer) is dropped with the link (as while it is down): the
            # writers are not held for a link that is gone.  (A close
            # counted it already.)
            lost = self._typedLost()
            self.dropped += lost
            self.unsent += lost
        self._link = None
        self._typedQueued = 0
        self._linkFull = False
        self._held &= HELD_LINE
        # Down, and why, before the writers are let go (as a local device
        # is, devices/loss.py): what a person typed while the link took no
        # input is then said lost to the typist, not handed to a link
        # that is gone and dropped here unsaid.
        self.up = False
        if not self.closed:
            self.downReason = reason.getErrorMessage().rstrip(".")
            if self._reopenWhy is not None:
                # (Cut by a person: said so, not "Connection was aborted".)
                self.downReason, reason = self._reopenWhy, Failure(DeviceLost(self._reopenWhy))
            self._reopenWhy = None
        self._checkWatermark()
        self.modem = None
        if self._breakCall is not None and self._breakCall.active():
            self._breakCall.cancel()
        self._breakCall = None
        if not self.closed:
            # Failed attempts from now on (once the service has seen this
            # loss, hence the next turn) say why it stays down.
            self._watchCall = self.reactor.callLater(0, self._watchAttempts)
            farEndLog.warn("{device}: connection lost: {reason}", device=self.name, reason=self.downReason,
                           peer=farEnd(self), budget=self.logBudget)
            try:
                self.sink.deviceLost(reason)
            except Exception:
                log.failure("{device}: handling the loss failed", device=self.name)

    def _remoteSettings(self, **changes: Any) -> None:
        """
        The remote port's answer: the settings in effect.  One other than
        asked is told to the line once this turn is over (then only if
        they still differ: a port answering 7 and 8 bits in turn is not a
        notice an answer).
        """
        before = self.settings
        self.settings = attrs.evolve(before, **changes)
        if self.settings != before and self._settingsCall is None:
            self._settingsCall = self.reactor.callLater(0, self._tellSettings, before)

    def _tellSettings(self, before: SerialSettings) -> None:
        self._settingsCall = None
        if not self.closed and self.settings != before:
            try:
                self.sink.deviceSettings(before)
            except Exception:
                farEndLog.failure("{device}: handling the remote's settings failed", device=self.name, peer=farEnd(self))
