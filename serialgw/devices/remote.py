"""
A console elsewhere as a line's device: a VM console on QEMU's telnet
chardev, another console server (telnet or RFC 2217), a raw TCP or unix
socket (Proxmox's C{/var/run/qemu-server/ID.serial0}).

L{RemoteDevice} keeps one connection open with Twisted's ClientService,
reconnecting with backoff; the line sees it as any device: bytes, breaks,
settings, modem lines, down and up.  That line's side is here; the dialing
and the link's coming and going are mixed in from
L{serialgw.devices.remotedial}, the links themselves (one protocol a kind)
are L{serialgw.devices.remotelinks}' and L{serialgw.devices.comportlink}'s,
on L{serialgw.devices.linkbase}.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from twisted.application.internet import ClientService
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory
from zope.interface import implementer

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.backoff import CarriedBackoff, DialEndpoint
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.linkbase import HELD_FULL, HELD_LINE, LINK_LIMIT, farEnd, farEndLog, linkHeldBytes
from serialgw.devices.nosink import NoSink
from serialgw.devices.remotedial import DialAndLink
from serialgw.devices.remotelinks import NEGOTIATION_WAIT, RawLink, TelnetLink
from serialgw.interfaces import IDevice
from serialgw.wire.rfc2217 import modemLineCode


@implementer(IPushProducer, IDevice)
class RemoteDevice(DialAndLink):
    """
    A line's device reached over the network, reconnected with backoff.

    Settings, DTR/RTS and breaks are remembered here and sent to the remote
    port (RFC 2217) on every connection; a telnet or raw console carries no
    settings (clients asking are refused: L{noSettings}) nor DTR and RTS,
    which stay as they are (a telnet console gets breaks as IAC BRK).

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
        ownSockets: Optional[Callable[[], Mapping[str, str]]] = None,
    ) -> None:
        self.spec = spec
        # The names its own line's unix listeners, and the watch-all ones watching it, are bound to, each with
        # what it is (see _ownListener).
        self._ownSockets = ownSockets
        self.name = spec.describe()
        self.reactor = reactor
        self.breakDuration = breakDuration
        self.settings = settings
        self.modemLines = {"dtr": True, "rts": True}
        self.modem: Optional[int] = None
        self.sink: Any = NoSink()
        self.up = False
        # Typed while it is not connected: dropped, counted (nothing held).
        self.holding = False
        self.downReason: Optional[str] = "not connected yet"
        # No lock file for a console elsewhere.
        self.lockedBy: Optional[int] = None
        # Its link's coming and going (its line's down and up too) is said within one budget for the consoles
        # of its far host: a console server whose 48 lines flapped wrote ~1000 lines a minute (22 a line).
        self.logBudget: Optional[str] = (f"the consoles at {spec.path or '?'}" if spec.kind == "unix"
                                         else f"the consoles at {spec.host.lower()}")
        self.closed = False
        self.breaks = 0
        self.dropped = 0
        # Given while up and never sent (see IDevice.unsent).
        self.unsent = 0
        self.bytesWritten = 0
        # Typed bytes (as sent: telnet doubles IAC) given to the link since
        # its queue was last seen empty (see _typedLost).
        self._typedQueued = 0
        self._link: Any = None
        self._watchCall: Any = None
        # Why the link is not read (HELD_LINE, HELD_BUSY, HELD_FULL); the line's pause is
        # kept, so that a link made while paused (a reconnect) starts paused.
        self._held = 0
        self._linkFull = False
        self._writable = True
        self._breakCall: Any = None
        # The remote port's answers (settings other than asked) told once a turn (_remoteSettings).
        self._settingsCall: Any = None
        # Why its link was cut by a person (the escape menu's O: see reopen), until the link is down.
        self._reopenWhy: Optional[str] = None
        # Reconnection backoff across short links (see CarriedBackoff).
        self._backoff = CarriedBackoff(reactor, retryPolicy)
        endpoint: Any
        if spec.kind == "unix":
            endpoint = UNIXClientEndpoint(reactor, spec.path)
        else:
            endpoint = HostnameEndpoint(reactor, spec.host, spec.port)
        # Why the last dial failed, and the backoff's count, for the retry message.
        endpoint = DialEndpoint(endpoint, self._backoff)
        link = {"telnet": TelnetLink, "rfc2217": ComPortLink}.get(spec.kind, RawLink)
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

    @property
    def noSettings(self) -> str:
        # Only RFC 2217 carries settings; the others would keep them here and tell people they were set.
        if self.spec.kind in ("tcp", "unix"):
            return f"{self.name} is a raw socket: it carries no settings (an rfc2217:// device does)"
        if self.spec.kind == "telnet":
            return f"{self.name} is a telnet console without RFC 2217: it carries no settings (an rfc2217:// device does)"
        if self._link is not None and getattr(self._link, "unansweredComPort", False):
            how = "then say telnet:" if self._link._negotiated else "a raw socket? then say tcp:"
            return (f"{self.name} has not answered com port control (RFC 2217) in {NEGOTIATION_WAIT:.0f} s ("
                    f"{how}{self.name[len('rfc2217://'):]}): it carries no settings")
        if self._link is not None and getattr(self._link, "refusedComPort", False):
            # Answering settings as set that reach nothing would be a lie; until it answers they are kept.
            return (f"{self.name} refused com port control (RFC 2217; a plain telnet port? then say "
                    f"telnet:{self.name[len('rfc2217://'):]}): it carries no settings")
        return ""

    def write(self, data: bytes, source: Any = None) -> None:
        if not self.usable:
            self.dropped += len(data)
            return
        self.bytesWritten += len(data)
        before = self.queuedBytes()
        if not before:
            self._typedQueued = 0
        # Counted before it is sent: sending may pause the writers, whose
        # pause may close the device at once.
        self._typedQueued += len(data)
        self._link.send(data)
        # (A telnet console's encoding doubles IAC.)
        self._typedQueued += max(0, self.queuedBytes() - before - len(data))

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
        if self.noSettings:
            # Nothing carries DTR or RTS there: as they were (an RFC 2217 client is answered so).
            return bool(self.modemLines[name])
        self.modemLines[name] = on
        if self.usable:
            self._link.control(modemLineCode(name, on))
        return on

    def modemState(self) -> Optional[int]:
        return self.modem if self.usable else None

    def deliverRead(self) -> None:
        """Nothing is read ahead of the line here: a paused link is not read (IDevice)."""

    def purge(self, receive: bool, transmit: bool) -> None:
        if self.usable and (receive or transmit):
            self._link.purge((1 if receive else 0) | (2 if transmit else 0))

    def _typedLost(self) -> int:
        """
        Of what waits for the link as it goes, the typing: what waits came
        since the queue was last seen empty, typing (C{_typedQueued}, as
        encoded) and our own telnet answers in some order; the newest of it
        waits, so the typing in it is at most all of it, at most all the
        typing.  Our answers to a console's negotiation are no one's typing
        lost (a console that negotiates and never reads had them counted).
        """
        return min(self.queuedBytes(), self._typedQueued)

    def dropQueuedFrom(self, source: Any) -> int:
        """
        Nothing: what a client typed is in the link's transport already,
        one buffer of everyone's bytes (and past it, the far end's); a
        write right taken away stops what it types from then on.
        """
        return 0

    def queuedBytes(self) -> int:
        """Typed bytes not yet handed to the kernel: in the link's transport, and held while suspended."""
        link = self._link
        if link is None:
            return 0
        transport = link.transport
        # Twisted's own buffers, on the TCP or unix transport (FileDescriptor's):
        # dataBuffer up to offset is sent already.
        buffered = (len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
                    + getattr(transport, "_tempDataLen", 0))
        return buffered + linkHeldBytes(link)

    # IPushProducer, registered on the link's transport: Twisted pauses it
    # when the transport holds more than HIGH_WATER, resumes it when drained.

    def pauseProducing(self) -> None:
        # (Called on every write while past HIGH_WATER.)
        self._linkFull = True
        self._checkWatermark()
        if not self._held & HELD_FULL and self._link is not None and self.queuedBytes() > LINK_LIMIT:
            self._link.holdInput(True)
            self._holdLink(HELD_FULL)

    def resumeProducing(self) -> None:
        self._linkFull = False
        self._checkWatermark()
        if self._held & HELD_FULL:
            self._link.holdInput(False)
            self._releaseLink(HELD_FULL)

    def stopProducing(self) -> None:
        pass

    def _checkWatermark(self) -> None:
        link = self._link
        blocked = link is not None and (self._linkFull or link.suspended)
        if self._writable == blocked:
            self._writable = not blocked
            self.sink.deviceWritable(self._writable)

    def pauseReading(self) -> None:
        self._holdLink(HELD_LINE)

    def resumeReading(self) -> None:
        self._releaseLink(HELD_LINE)

    def _holdLink(self, why: int) -> None:
        if not self._held and self._link is not None:
            self._link.transport.pauseProducing()
        self._held |= why

    def _releaseLink(self, why: int) -> None:
        if self._held & why:
            self._held &= ~why
            if not self._held and self._link is not None:
                self._link.transport.resumeProducing()

    def watchLineErrors(self, on: bool) -> None:
        # An RFC 2217 port notifies line state itself.
        pass

    def reopen(self, why: str) -> Optional[str]:
        """
        IDevice.reopen: a link up is cut (what it held dropped, counted, as
        at a loss) and dialled again with backoff, its line told C{why}; not
        connected, it is dialled again by itself (not hurried), nor while a
        break is under way.
        """
        if self.closed:
            return f"{self.name} is closed"
        if self._link is None:
            return f"{self.name} is not connected: it is dialled again with backoff by itself"
        if self.breaking:
            return "a break is under way; ask again once it is over"
        if self._reopenWhy is None:
            self._reopenWhy = why
            farEndLog.info("{device}: link cut to be dialled again: {reason}", device=self.name, reason=why,
                           peer=farEnd(self), budget=self.logBudget)
            self._link.transport.abortConnection()
        return None

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
        if self._settingsCall is not None and self._settingsCall.active():
            self._settingsCall.cancel()
        self._settingsCall = None
        if self._link is not None and self.queuedBytes():
            # A remote that does not read would keep a clean close waiting
            # for ever (stop, reload): what it did not take is dropped.
            lost = self._typedLost()
            self.dropped += lost
            self.unsent += lost
            self._link.transport.abortConnection()
        return self._service.stopService()

    # The link's side
