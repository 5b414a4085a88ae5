"""
A console elsewhere as a line's device: a VM console on QEMU's telnet
chardev, another console server (telnet or RFC 2217), a raw TCP or unix
socket (Proxmox's C{/var/run/qemu-server/ID.serial0}).

L{RemoteDevice} keeps one connection open with Twisted's ClientService,
reconnecting with backoff; the line sees it as any device: bytes, breaks,
settings, modem lines, down and up.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs
from twisted.application.internet import ClientService
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.config.specs import ConfigError, DeviceSpec, SerialSettings
from serialgw.devices.backoff import CarriedBackoff
from serialgw.devices.device import HIGH_WATER, _NoSink
from serialgw.interfaces import IDevice
from serialgw.wire.rfc2217 import (
    BREAK_OFF,
    BREAK_ON,
    COM_PORT_OPTION,
    FLOWCONTROL_RESUME,
    FLOWCONTROL_SUSPEND,
    LINE_ERRORS,
    MODEM_LINES,
    NOTIFY_LINESTATE,
    NOTIFY_MODEMSTATE,
    PARITY_CODES,
    PARITY_VALUES,
    PURGE_DATA,
    SERVER_OFFSET,
    SET_BAUDRATE,
    SET_CONTROL,
    SET_DATASIZE,
    SET_PARITY,
    SET_STOPSIZE,
    STOPSIZE_CODES,
    STOPSIZE_VALUES,
    flowCode,
    modemLineCode,
)
from serialgw.wire.sockets import noDelay
from serialgw.wire.telnet import BINARY, BRK, ECHO, SGA, TelnetProtocol

log = Logger()

# An RFC 2217 remote's FLOWCONTROL-SUSPEND lasting this many seconds is
# logged (typing is paused meanwhile): one that never ends is not silent.
SUSPEND_WARN = 10.0

class _NoPortControl:
    """Links without com port control: settings, DTR/RTS and purges stay here."""

    # Whether the remote asked us to stop sending (RFC 2217 FLOWCONTROL-SUSPEND).
    suspended = False

    def heldBytes(self) -> int:
        """Typed bytes held back while suspended."""
        return 0

    def control(self, code: int) -> None:
        pass

    def applySettings(self, settings: SerialSettings) -> None:
        pass

    def purge(self, which: int) -> None:
        pass

    def endBreak(self) -> None:
        """A break's time is up (only RFC 2217 has a break that lasts: SET-CONTROL BREAK-ON, then OFF)."""


class _RawLink(_NoPortControl, Protocol):
    """Bytes both ways; a break cannot be sent on a raw socket."""

    transport: Any

    def __init__(self, device: RemoteDevice) -> None:
        self.device = device

    def connectionMade(self) -> None:
        self.device._linkUp(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.device._linkDown(self, reason)

    def dataReceived(self, data: bytes) -> None:
        self.device.sink.deviceDataReceived(data)

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def sendBreak(self) -> bool:
        log.info("{device}: a raw socket cannot carry a break", device=self.device.name)
        return False



class _TelnetLink(_NoPortControl, TelnetProtocol):
    """
    A telnet client to a console: binary both ways, the far end echoes;
    breaks go as IAC BRK.
    """

    transport: Any

    def __init__(self, device: RemoteDevice) -> None:
        TelnetProtocol.__init__(self)
        self.device = device

    def connectionMade(self) -> None:
        self.requestLocal(BINARY)
        self.requestRemote(BINARY)
        self.requestRemote(SGA)
        self.device._linkUp(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.device._linkDown(self, reason)

    def acceptLocal(self, option: int) -> bool:
        return option in (BINARY, SGA)

    def acceptRemote(self, option: int) -> bool:
        return option in (BINARY, SGA, ECHO)

    def telnetDataReceived(self, data: bytes) -> None:
        self.device.sink.deviceDataReceived(data)

    def send(self, data: bytes) -> None:
        self.writeData(data)

    def sendBreak(self) -> bool:
        self.sendCommand(BRK)
        return True



class _ComPortLink(_TelnetLink):
    """
    An RFC 2217 client: settings, breaks (SET-CONTROL BREAK ON/OFF), DTR/RTS,
    purges and modem state travel to the remote port; its answers are the
    truth the device reports.
    """

    def __init__(self, device: RemoteDevice) -> None:
        _TelnetLink.__init__(self, device)
        self.comPort = False
        self.suspended = False
        # Typed while the remote has us suspended: bounded, because writers
        # are paused as soon as it suspends (at most what they had read).
        self._held = bytearray()
        # When the remote suspended us, and the call that says it is lasting.
        self._suspendedAt = 0.0
        self._suspendCall: Any = None
        self._suspendSaid = False

    def connectionMade(self) -> None:
        self.requestLocal(COM_PORT_OPTION)
        _TelnetLink.connectionMade(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # Not a resume: the link's loss is said by the device.
        self._suspendSaid = False
        self._suspension(False)
        _TelnetLink.connectionLost(self, reason)

    def _suspension(self, suspended: bool) -> None:
        """The remote suspended or resumed us: said in the log once it has lasted SUSPEND_WARN s."""
        if suspended == self.suspended:
            return
        self.suspended = suspended
        clock = self.device.reactor
        if suspended:
            self._suspendedAt = clock.seconds()
            self._suspendCall = clock.callLater(SUSPEND_WARN, self._suspendLasts)
            return
        if self._suspendCall is not None and self._suspendCall.active():
            self._suspendCall.cancel()
        self._suspendCall = None
        if self._suspendSaid:
            self._suspendSaid = False
            log.info("{device}: the remote takes input again (FLOWCONTROL-RESUME) after {seconds:.0f} s",
                     device=self.device.name, seconds=clock.seconds() - self._suspendedAt)

    def _suspendLasts(self) -> None:
        self._suspendCall = None
        self._suspendSaid = True
        log.warn("{device}: the remote asked us to stop sending (FLOWCONTROL-SUSPEND) {seconds:.0f} s ago: "
                 "typing is paused until it resumes", device=self.device.name, seconds=SUSPEND_WARN)

    def acceptLocal(self, option: int) -> bool:
        return option == COM_PORT_OPTION or _TelnetLink.acceptLocal(self, option)

    def acceptRemote(self, option: int) -> bool:
        return option == COM_PORT_OPTION or _TelnetLink.acceptRemote(self, option)

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        if option == COM_PORT_OPTION and enabled and not self.comPort:
            self.comPort = True
            self.applySettings(self.device.settings)
            for name, on in self.device.modemLines.items():
                self.control(modemLineCode(name, on))

    def command(self, command: int, value: bytes) -> None:
        if self.comPort:
            self.sendSubnegotiation(COM_PORT_OPTION, bytes((command,)) + value)

    def heldBytes(self) -> int:
        return len(self._held)

    def send(self, data: bytes) -> None:
        if self.suspended:
            self._held += data
        else:
            self.writeData(data)

    def sendBreak(self) -> bool:
        if not self.comPort:
            return _TelnetLink.sendBreak(self)
        self.control(BREAK_ON)
        return True

    def endBreak(self) -> None:
        if self.comPort:
            self.control(BREAK_OFF)

    def control(self, code: int) -> None:
        self.command(SET_CONTROL, bytes((code,)))

    def applySettings(self, settings: SerialSettings) -> None:
        self.command(SET_BAUDRATE, settings.baudrate.to_bytes(4, "big"))
        self.command(SET_DATASIZE, bytes((settings.bytesize,)))
        self.command(SET_PARITY, bytes((PARITY_VALUES[settings.parity],)))
        self.command(SET_STOPSIZE, bytes((STOPSIZE_VALUES[settings.stopbits],)))
        self.control(flowCode(settings, inbound=False))

    def purge(self, which: int) -> None:
        self.command(PURGE_DATA, bytes((which,)))

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        if option != COM_PORT_OPTION or not payload:
            return
        command, value = payload[0] - SERVER_OFFSET, payload[1:]
        device = self.device
        try:
            if command == SET_BAUDRATE and len(value) == 4:
                device._remoteSettings(baudrate=int.from_bytes(value, "big"))
            elif command == SET_DATASIZE and len(value) == 1 and 5 <= value[0] <= 8:
                device._remoteSettings(bytesize=value[0])
            elif command == SET_PARITY and len(value) == 1 and value[0] in PARITY_CODES:
                device._remoteSettings(parity=PARITY_CODES[value[0]])
            elif command == SET_STOPSIZE and len(value) == 1 and value[0] in STOPSIZE_CODES:
                device._remoteSettings(stopbits=STOPSIZE_CODES[value[0]])
            elif command == NOTIFY_MODEMSTATE and len(value) == 1:
                device.modem = value[0] & MODEM_LINES
            elif command == NOTIFY_LINESTATE and len(value) == 1 and value[0] & LINE_ERRORS:
                device.sink.deviceLineState(value[0] & LINE_ERRORS)
            elif command == FLOWCONTROL_SUSPEND:
                self._suspension(True)
                device._checkWatermark()
            elif command == FLOWCONTROL_RESUME:
                self._suspension(False)
                held, self._held = bytes(self._held), bytearray()
                if held:
                    self.writeData(held)
                device._checkWatermark()
        except ConfigError as e:
            log.warn("{device}: RFC 2217 answer {payload!r} ignored: {reason}", device=device.name, payload=payload,
                     reason=str(e))
        except Exception:
            log.failure("{device}: bad RFC 2217 answer {payload!r}", device=device.name, payload=payload)


def _heldBytes(link: Any) -> int:
    """Typed bytes a link holds back (RFC 2217 suspension); any other protocol holds none."""
    return link.heldBytes() if isinstance(link, _NoPortControl) else 0


@implementer(IPushProducer, IDevice)
class RemoteDevice:
    """
    A line's device reached over the network, reconnected with backoff.

    Settings, DTR/RTS and breaks are remembered here and sent to the remote
    port (RFC 2217) on every connection; for telnet and raw consoles they
    are remembered only (a telnet console gets breaks as IAC BRK).

    Typing is bounded as for a local device: the device is the streaming
    producer of its link's transport, whose buffer size is HIGH_WATER; past
    it (or while an RFC 2217 remote has suspended us) the line hears
    C{deviceWritable(False)} and stops reading its writers, and
    C{deviceWritable(True)} once the transport has drained (below
    LOW_WATER: empty) and the remote is not suspended.
    """

    def __init__(
        self,
        spec: DeviceSpec,
        reactor: Any,
        breakDuration: float = 0.25,
        settings: SerialSettings = SerialSettings(),
        retryPolicy: Optional[Callable[[int], float]] = None,
    ) -> None:
        self.spec = spec
        self.name = spec.describe()
        self.reactor = reactor
        self.breakDuration = breakDuration
        self.settings = settings
        self.modemLines = {"dtr": True, "rts": True}
        self.modem: Optional[int] = None
        self.sink: Any = _NoSink()
        self.up = False
        self.downReason: Optional[str] = "not connected yet"
        # No lock file for a console elsewhere.
        self.lockedBy: Optional[int] = None
        self.closed = False
        self.breaks = 0
        self.dropped = 0
        # Given while up and never sent (see IDevice.unsent).
        self.unsent = 0
        self.bytesWritten = 0
        self._link: Any = None
        self._watchCall: Any = None
        self._paused = False
        self._linkFull = False
        self._writable = True
        self._breakCall: Any = None
        # Reconnection backoff across short links (see CarriedBackoff).
        self._backoff = CarriedBackoff(reactor, retryPolicy)
        endpoint: Any
        if spec.kind == "unix":
            endpoint = UNIXClientEndpoint(reactor, spec.path)
        else:
            endpoint = HostnameEndpoint(reactor, spec.host, spec.port)
        link = {"telnet": _TelnetLink, "rfc2217": _ComPortLink}.get(spec.kind, _RawLink)
        factory = Factory.forProtocol(lambda: link(self))  # type: ignore[arg-type]
        factory.noisy = False
        self._service = ClientService(endpoint, factory, retryPolicy=self._backoff, clock=reactor)

    # The line's side

    @property
    def usable(self) -> bool:
        return self._link is not None and not self.closed

    @property
    def breaking(self) -> bool:
        return self._breakCall is not None

    @property
    def noBreak(self) -> str:
        # Telnet carries a break as IAC BRK, RFC 2217 as SET-CONTROL; a raw byte stream has no way to.
        if self.spec.kind in ("tcp", "unix"):
            return f"{self.name} is a raw socket: it cannot carry a break"
        return ""

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
        if reason != self.downReason:
            log.info("{device}: not connected: {reason}; trying again with backoff", device=self.name, reason=reason)
        self.downReason = reason
        # Not from inside the service's own callback (it refuses re-entry).
        self._watchCall = self.reactor.callLater(0, self._watchAttempts)

    def write(self, data: bytes) -> None:
        if not self.usable:
            self.dropped += len(data)
            return
        self.bytesWritten += len(data)
        self._link.send(data)

    def sendBreak(self, duration: Optional[float] = None) -> bool:
        if not self.usable or self._breakCall is not None:
            return False
        if not self._link.sendBreak():
            return False
        self.breaks += 1
        self._breakCall = self.reactor.callLater(
            self.breakDuration if duration is None else duration, self.stopBreak
        )
        return True

    def stopBreak(self) -> None:
        if self._breakCall is None:
            return
        if self._breakCall.active():
            self._breakCall.cancel()
        self._breakCall = None
        if self._link is not None:
            self._link.endBreak()

    def apply(self, settings: SerialSettings) -> SerialSettings:
        self.settings = settings
        if self.usable:
            self._link.applySettings(settings)
        return settings

    def setModemLine(self, name: str, on: bool) -> bool:
        self.modemLines[name] = on
        if self.usable:
            self._link.control(modemLineCode(name, on))
        return on

    def modemState(self) -> Optional[int]:
        return self.modem if self.usable else None

    def purge(self, receive: bool, transmit: bool) -> None:
        if self.usable and (receive or transmit):
            self._link.purge((1 if receive else 0) | (2 if transmit else 0))

    def queuedBytes(self) -> int:
        """Typed bytes not yet handed to the kernel: in the link's transport, and held while suspended."""
        link = self._link
        if link is None:
            return 0
        transport = link.transport
        # Twisted's own buffers, on the TCP or unix transport (FileDescriptor's).
        buffered = len(getattr(transport, "dataBuffer", b"")) + getattr(transport, "_tempDataLen", 0)
        return buffered + _heldBytes(link)

    # IPushProducer, registered on the link's transport: Twisted pauses it
    # when the transport holds more than HIGH_WATER, resumes it when drained.

    def pauseProducing(self) -> None:
        self._linkFull = True
        self._checkWatermark()

    def resumeProducing(self) -> None:
        self._linkFull = False
        self._checkWatermark()

    def stopProducing(self) -> None:
        pass

    def _checkWatermark(self) -> None:
        link = self._link
        blocked = link is not None and (self._linkFull or link.suspended)
        if self._writable == blocked:
            self._writable = not blocked
            self.sink.deviceWritable(self._writable)

    def pauseReading(self) -> None:
        # Kept, so that a link made while paused (a reconnect) starts paused.
        self._paused = True
        if self._link is not None:
            self._link.transport.pauseProducing()

    def resumeReading(self) -> None:
        self._paused = False
        if self._link is not None:
            self._link.transport.resumeProducing()

    def watchLineErrors(self, on: bool) -> None:
        # An RFC 2217 port notifies line state itself.
        pass

    def close(self) -> Any:
        if self.closed:
            return None
        self.closed = True
        # Down from now on (what it is given is dropped), not when the link has gone.
        self.up = False
        self.downReason = "closed"
        self.stopBreak()
        if self._watchCall is not None and self._watchCall.active():
            self._watchCall.cancel()
        self._watchCall = None
        if self._link is not None and self.queuedBytes():
            # A remote that does not read would keep a clean close waiting
            # for ever (stop, reload): what it did not take is dropped.
            lost = self.queuedBytes()
            self.dropped += lost
            self.unsent += lost
            self._link.transport.abortConnection()
        return self._service.stopService()

    # The link's side

    def _linkUp(self, link: Any) -> None:
        self._link = link
        self._linkFull = False
        noDelay(link.transport)
        link.transport.bufferSize = HIGH_WATER
        link.transport.registerProducer(self, True)
        if self._paused:
            link.transport.pauseProducing()
        self.up = True
        self.downReason = None
        self._backoff.linkUp()
        log.info("{device}: connected", device=self.name)
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
            lost = self.queuedBytes()
            self.dropped += lost
            self.unsent += lost
        self._link = None
        self._linkFull = False
        self._checkWatermark()
        self.up = False
        self.modem = None
        if self._breakCall is not None and self._breakCall.active():
            self._breakCall.cancel()
        self._breakCall = None
        if not self.closed:
            # Failed attempts from now on (once the service has seen this
            # loss, hence the next turn) say why it stays down.
            self._watchCall = self.reactor.callLater(0, self._watchAttempts)
            self.downReason = reason.getErrorMessage().rstrip(".")
            log.warn("{device}: connection lost: {reason}", device=self.name, reason=self.downReason)
            try:
                self.sink.deviceLost(reason)
            except Exception:
                log.failure("{device}: handling the loss failed", device=self.name)

    def _remoteSettings(self, **changes: Any) -> None:
        self.settings = attrs.evolve(self.settings, **changes)
