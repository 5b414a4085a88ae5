"""
The seams of the gateway, declared in one place (as Twisted's
C{twisted.internet.interfaces}): what a line needs of its clients
(L{IClient}) and of its device (L{IDevice}), what a device tells its line
(L{IDeviceSink}), and the OS-level calls under a local device (L{IPort}).

The layers meet only here: C{serialgw.devices} knows its line as an
L{IDeviceSink}, C{serialgw.line} knows its device as an L{IDevice} and its
clients as L{IClient}s; neither imports the other.
"""

from __future__ import annotations

from typing import Optional

from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

from serialgw.config.specs import SerialSettings


class IClient(Interface):
    """
    One network client as its line sees it.
    """

    peer = Attribute("The client's address, for messages.")
    role = Attribute("The client's L{Role}.")

    def deliver(data: bytes) -> None:
        """Send device output to the client, encoded for its wire."""

    def modemStateChanged(state: int) -> None:
        """The device's modem lines changed (RFC 2217 bits CTS/DSR/RI/CD)."""

    def lineStateChanged(state: int) -> None:
        """A break or receive error was seen on the device (RFC 2217 bits)."""

    def deviceStateChanged(up: bool, notice: bytes) -> None:
        """
        The device went down or came back.  C{notice} is a line of text for
        people at terminals (empty when notices are off).
        """

    def notice(text: str) -> None:
        """A line of text for the person at this client; nothing if it is a program or a file."""

    def pauseInput() -> None:
        """Stop reading from the client (the device is behind)."""

    def resumeInput() -> None:
        """Read from the client again."""


class IDevice(Interface):
    """
    What a line needs of its device.
    """

    def write(data: bytes) -> None:
        """Queue bytes for the device."""

    settings = Attribute("The L{SerialSettings} in effect.")
    downReason = Attribute("Why the device is down (a short text), or None while it is up.")
    modemLines = Attribute("DTR and RTS as set: C{{'dtr': bool, 'rts': bool}}.")
    breaking = Attribute("Whether a break is under way.")
    up = Attribute("Whether the device is there (open, or connected) now.")
    noBreak = Attribute(
        "Why a break cannot reach the far end, for people (C{'unix:/x is a raw socket: it cannot carry a break'}); "
        "empty when it can."
    )

    def sendBreak(duration: Optional[float] = None) -> bool:
        """Send a break after queued output; C{False} if one is under way."""

    def stopBreak() -> None:
        """End a break now."""

    def apply(settings: SerialSettings) -> SerialSettings:
        """Apply settings; return those in effect."""

    def setModemLine(name: str, on: bool) -> bool:
        """Set DTR or RTS; return the state in effect."""

    def modemState() -> Optional[int]:
        """CTS/DSR/RI/CD as RFC 2217 bits, or None where there are none."""

    def purge(receive: bool, transmit: bool) -> None:
        """Discard unread input and/or unsent output."""

    def watchLineErrors(on: bool) -> None:
        """Detect breaks and receive errors (only while someone listens)."""

    def pauseReading() -> None:
        """Stop reading from the device (a client must catch up)."""

    def resumeReading() -> None:
        """Read from the device again."""


class IPort(Interface):
    """
    The OS-level calls on one open serial device.  Reads and writes never
    block.
    """

    name = Attribute("What to call the device in messages (its path).")
    settings = Attribute("The L{SerialSettings} in effect when opened.")

    def fileno() -> int:
        """The descriptor to watch for reading and writing."""

    def read() -> bytes:
        """
        What is there to read; C{b""} when nothing is (EAGAIN).  Raises
        C{OSError} when the device is gone.
        """

    def write(data: bytes | bytearray) -> int:
        """
        Write what the device takes now; return how many bytes (0 on EAGAIN).
        Raises C{OSError} when the device is gone.
        """

    def takeLineState() -> int:
        """
        RFC 2217 line-state bits (break 0x10, framing 0x08, parity 0x04,
        overrun 0x02) seen in what was read since the last call.
        """

    def outputPending() -> int:
        """Bytes still in the driver's output queue (TIOCOUTQ)."""

    def watchLineErrors(on: bool) -> None:
        """
        Detect breaks and parity/framing errors (termios PARMRK), or stop:
        marking makes the kernel handle input byte by byte, so it is on only
        while someone listens.
        """

    def setBreak(on: bool) -> None:
        """Set (TIOCSBRK) or clear (TIOCCBRK) the break condition."""

    def apply(settings: SerialSettings) -> SerialSettings:
        """Apply settings; return the settings now in effect."""

    def setModemLine(name: str, on: bool) -> None:
        """
        Set C{"dtr"} or C{"rts"}.  Raises C{OSError} (ENOTTY, EINVAL) where
        the device has no such line.
        """

    def modemState() -> Optional[int]:
        """
        CTS, DSR, RI and CD as RFC 2217 modem-state bits (0x10, 0x20, 0x40,
        0x80), or C{None} where the device has no modem lines.
        """

    def purge(receive: bool, transmit: bool) -> None:
        """Discard the driver's receive and/or transmit queue (tcflush)."""

    def close() -> None:
        """Close the device and release what it holds."""


class IDeviceSink(Interface):
    """
    What a device tells its line.
    """

    def deviceDataReceived(data: bytes) -> None:
        """Bytes came from the device."""

    def deviceWritable(writable: bool) -> None:
        """
        The device's output queue went above the high-water mark (C{False})
        or back below the low-water mark (C{True}).
        """

    def deviceLost(reason: Failure) -> None:
        """The device failed (unplugged, closed by its far side)."""

    def deviceLineState(state: int) -> None:
        """A break or a framing/parity/overrun error was seen (RFC 2217 bits)."""

    def deviceUp() -> None:
        """The device is back after C{deviceLost} (reopened, settings re-applied)."""
