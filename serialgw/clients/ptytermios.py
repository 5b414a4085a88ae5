"""
A client pty's termios, both ways (see L{serialgw.clients.ptylink}): a
program's change, seen by packet mode with EXTPROC set on the slave (set
again when a program clears it), is asked of the line's device within the
line's port control time a turn; the line's settings, changed by others,
are followed by the pty; a slave hung up (vhangup) is opened again and
watched again.  Only the speed, stop bits and flow are followed (a pty
forces 8 bits, no parity).  The base of L{serialgw.clients.ptylink.PtyClient},
which is the pty, its link and its place on the line.
"""

from __future__ import annotations

import errno
import os
import termios
from typing import Any

import attrs
from twisted.internet import abstract
from twisted.logger import Logger

from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.devices.ptywatch import SlaveWatch
from serialgw.devices.termio import readTermios, setOtherSpeed, termiosConstant, termiosSpeed
from serialgw.line.hub import Line
from serialgw.logflood import peerLimiter

# Limited per peer: a program flipping its termios in a loop cannot flood the log (logflood); the namespace its
# events had before this module was split from ptylink.
log = Logger(namespace="serialgw.clients.ptylink", observer=peerLimiter)

EXTPROC = termiosConstant("EXTPROC", 0o200000)


# What a program may change on its pty, and the device then follows.
def _followed(settings: SerialSettings) -> dict[str, Any]:
    """The settings a pty and its line keep alike (a pty forces 8 data bits, no parity)."""
    return {"baudrate": settings.baudrate, "stopbits": settings.stopbits, "xonxoff": settings.xonxoff,
            "rtscts": settings.rtscts}


def _setAttributes(slave: int, settings: SerialSettings) -> None:
    """
    The pty to C{settings} (L{_startAttributes}); a speed termios cannot
    name (74880) is set with termios2, as picocom sets it (it stayed at the
    pty's old speed, which a program found and put back when it left).
    """
    termios.tcsetattr(slave, termios.TCSANOW, _startAttributes(termios.tcgetattr(slave), settings))
    if termiosSpeed(settings.baudrate) is None:
        setOtherSpeed(slave, settings.baudrate)


def _startAttributes(attributes: list[Any], settings: SerialSettings) -> list[Any]:
    """
    Raw termios attributes with EXTPROC, at the line's speed (when termios
    names it), stop bits and hardware flow; software flow (IXON) stays off,
    as on a raw port: the pty's own line discipline must not eat XON/XOFF.
    """
    attributes[3] |= EXTPROC
    speed = termiosSpeed(settings.baudrate)
    if speed is not None:
        attributes[4] = attributes[5] = speed
    cflag = attributes[2] & ~(termios.CSTOPB | termios.CRTSCTS)
    if settings.stopbits != 1:
        cflag |= termios.CSTOPB
    if settings.rtscts:
        cflag |= termios.CRTSCTS
    attributes[2] = cflag
    return attributes


class PtyTermios(abstract.FileDescriptor):
    """A client pty's termios followed both ways (its pty made by L{serialgw.clients.ptylink.PtyClient})."""

    line: Line
    peer: str
    slaveName: str
    settings: SerialSettings
    _slave: int
    _watch: SlaveWatch
    _asking: bool

    def lineSettingsChanged(self, settings: SerialSettings) -> None:
        """
        The line's settings changed (another client, a reload, a restore):
        the pty follows, so the next program finds them, and one that puts
        back what it found when it leaves (picocom) puts back the line's.
        Not for a change this pty's program asked for: its termios stay its own.
        """
        if self._asking or self._changeWaits or _followed(settings) == _followed(self.settings):
            return  # (a change of its program's waiting: asked for on a later turn, not overwritten)
        self._renewSlave()
        try:
            _setAttributes(self._slave, settings)
        except termios.error as e:
            log.warn("{line}: {peer} cannot follow the line's settings: {reason}", line=self.line.name,
                     peer=self.peer, reason=str(e))
            return
        # Known before the pty reports it: not a change a program made.
        self.settings = readTermios(self._slave, settings.baudrate)

    def _renewSlave(self) -> None:
        """
        A hang-up of the slave (vhangup(): login(1) does it on its tty, a
        getty on this pty) kills every descriptor of it, the gateway's too,
        and resets its termios to the kernel's (EXTPROC off: the program's
        changes were no longer seen, nor followed the line's).  The slave is
        opened again by name (the same pty: its master is ours) and EXTPROC
        set again; the rest is what the program sets.  Looked at when the
        line's settings change and when a close of the slave is seen.
        """
        try:
            termios.tcgetattr(self._slave)
            return
        except termios.error as e:
            if e.args[0] != errno.EIO:
                return
        try:
            fd = os.open(self.slaveName, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as e:
            # Said, not raised into the line telling its followers a change.
            log.warn("{line}: {peer} was hung up and cannot be opened again: {reason}", line=self.line.name,
                     peer=self.peer, reason=e.strerror)
            return
        old, self._slave = self._slave, fd
        os.close(old)
        self._watch.fd = fd
        log.info("{line}: {peer} was hung up (vhangup, as login does): opened again, its settings watched again",
                 line=self.line.name, peer=self.peer)
        self._keepExtproc()
        # What the hang-up reset (the kernel's 38400, IXON) is no program's
        # change: only what is changed from here on is asked of the device.
        self.settings = readTermios(self._slave, self.settings.baudrate)

    # A program's change waits for the line's port control (Line.controlReady);
    # device output past the guard's bound has paused reading (pauseInput).
    _changeWaits = False
    _inputPaused = False

    def _termiosChangedInTurn(self) -> None:
        """
        A program's change goes to the device within the line's port control
        time a turn, shared with its RFC 2217 clients and other ptys
        (Line.controlReady): once spent, the pty is not read until a later
        turn, when the settings it has then are asked for (a program looping
        on tcsetattr, on each of four ptys of a line, held every line four
        device tcsetattrs a turn, milliseconds each on a USB adapter).
        """
        if not self.line.controlReady(self._controlFree):
            self._changeWaits = True
            self.stopReading()
            return
        clock = self.line.clock
        start = clock.seconds() if clock is not None else 0.0
        self._termiosChanged()
        if clock is not None:
            self.line.controlTook(clock.seconds() - start)

    def _controlFree(self) -> None:
        if self._changeWaits:
            self._changeWaits = False
            try:
                self._termiosChangedInTurn()
            except Exception:
                # (As in doRead: neither this pty left deaf nor the ptys waiting after it.)
                log.failure("{line}: handling input from {peer} failed", line=self.line.name, peer=self.peer)
        if not self._changeWaits and not self._inputPaused:
            self.startReading()

    def _termiosChanged(self) -> None:
        self._keepExtproc()
        try:
            settings = readTermios(self._slave, self.settings.baudrate)
        except ConfigError as e:
            # (termios2 takes any speed: 4294967295 was a traceback.)
            log.warn("{line}: the program on {peer} set what the line cannot take: {reason}; not asked of the device",
                     line=self.line.name, peer=self.peer, reason=str(e))
            return
        if settings == self.settings:
            return
        new, old = _followed(settings), _followed(self.settings)
        changed = {field: value for field, value in new.items() if value != old[field]}
        self.settings = settings
        wanted = attrs.evolve(self.line.settings, **changed)
        log.info("{line}: the program on {peer} set {changed}; asking for {settings}", line=self.line.name,
                 peer=self.peer, changed=changed, settings=wanted.describe())
        self._asking = True
        try:
            self.line.clientSettings(self, wanted)  # type: ignore[arg-type]  # (self: a PtyClient, an IClient)
        finally:
            self._asking = False

    def _keepExtproc(self) -> None:
        """
        A program cleared EXTPROC (c_lflag = 0): set it again, changing
        nothing else, so its next changes are seen (read afresh just before,
        so a change made meanwhile is not undone).
        """
        try:
            current = termios.tcgetattr(self._slave)
            if current[3] & EXTPROC:
                return
            current[3] |= EXTPROC
            termios.tcsetattr(self._slave, termios.TCSANOW, current)
        except termios.error as e:
            log.warn("{line}: cannot keep watching {peer}'s settings: {reason}", line=self.line.name,
                     peer=self.peer, reason=str(e))
            return
        log.debug("{line}: EXTPROC set again on {peer}", line=self.line.name, peer=self.peer)
