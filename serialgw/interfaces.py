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

from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

from serialgw.config.specs import SerialSettings

# Why a device opened on demand is down while no client wants it (see IRestingDevice).
RESTING = "closed (on demand)"


class IClient(Interface):
    """
    One network client as its line sees it.
    """

    peer = Attribute("The client's address, for messages.")
    role = Attribute("The client's L{Role}.")
    person = Attribute(
        "Whether a person at a terminal is at the other end (a network session): counted for max-clients, "
        "announced coming and going, the one writer in exclusive mode.  A program, a file, a log or a "
        "watch-all view is not."
    )
    wakesLine = Attribute(
        "Whether its arrival starts reading a line that waits for its first client (QEMU's server "
        "without nowait); a log, a file, a datagram peer or a watch-all view does not."
    )
    dialled = Attribute(
        "Whether the gateway made its connection (a dial-out), not its peer: kick-old-user neither disconnects "
        "it to make room for a newcomer nor makes room for it (it dials again at once: each cut the other in turn)."
    )
    user = Attribute("The person's name when known (an SSH key's owner, a TLS certificate's subject), else None.")
    comPort = Attribute(
        "Its RFC 2217 com port control while it has negotiated COM-PORT-OPTION (it controls the port: "
        "settings, modem lines, purges), else None.  Its C{settingsChanged(before, after)} tells the client "
        "settings that changed without its asking."
    )
    wantsLineErrors = Attribute(
        "Whether it asked to hear of breaks and receive errors (an RFC 2217 line-state mask): the device "
        "watches for them only while a client does."
    )
    guard = Attribute(
        "Its output guard where its output is bounded here (C{policy}: its listener's policy name; "
        "C{dropped}: device output dropped for it so far), else None."
    )
    logBudget = Attribute(
        "The second log budget what its coming, going and doing says counts against, beside its own peer's "
        "(logflood): its listener's (a client reconnecting in a loop), an SSH login's sessions'; None: its own only."
    )
    typedWaiting = Attribute(
        "Bytes this person typed that wait for the device (it takes no input now; read on for its escape menu): "
        "a break or a new rate done now would reach the device before them.  0 for a client that is no person."
    )
    departed = Attribute(
        "Whether it hung up with what it sent still waiting for the device (it takes no input now): it holds no "
        "place in max-clients nor write in exclusive mode (that typing still goes), and past the line's bound on "
        "such clients it is cut (L{dropLeftTyping}).  Always false for a client that is no network session."
    )

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
        """A line of text for the person at this client about its own doing; nothing if it is a program or a file."""

    def announcement(text: str) -> None:
        """
        News of the line for the people on it (someone attached, detached,
        took write), as the client's notices setting says; nothing for a
        program or a file.
        """

    def pauseInput() -> None:
        """Stop reading from the client (the device is behind)."""

    def resumeInput() -> None:
        """Read from the client again."""

    def disconnect(why: Optional[str] = None) -> None:
        """
        Leave the line and close the connection once what waits for it is
        written; nothing where its connection is another's to close (a
        client pty, a watch-all view, a console log).  C{why}: the gateway
        ends it (its right or key taken away, its line removed, idle), said
        so where the protocol can (an SSH session's exit status and
        standard error); None: the client asked (escape d).
        """

    def dropLeftTyping(why: str) -> None:
        """
        It hung up (C{departed}) and what it sent waits, past the line's
        bound on such clients: that is not sent (counted, said with C{why})
        and it goes.  Nothing for a client that never departs.
        """

    def abort() -> bool:
        """
        Cut the client off at once (telling it something failed): C{True}
        if its connection was aborted (it leaves the line when that is
        lost), C{False} where it has none that can be cut (the line then
        detaches it).
        """


class IConsoleLog(IClient):
    """
    A client that also keeps the line's events (a console log): who came
    and went, breaks, the device going down.
    """

    spec = Attribute("Its L{LogSpec}: the file's path and the time stamps' format.")

    def event(text: str) -> None:
        """One event on the line, to be written with its time."""

    def reopen() -> Deferred[int]:
        """Open the path again (logrotate moved the file), by its writer: fires with how many files were (the log, its LOG.typed); 0: none (the files in hand kept)."""

    def typed(peer: str, data: bytes) -> None:
        """What C{peer} typed, as it went to the device (log-typed: written to its own file, else nothing)."""


class IDevice(Interface):
    """
    What a line needs of its device.
    """

    name = Attribute("What the device is, for people: its path (C{/dev/ttyS0}, C{pty:/run/x}) or address.")

    def write(data: bytes, source: Any = None) -> None:
        """Queue bytes for the device; C{source}: whose they are (a client, for L{dropQueuedFrom}), or None."""

    def dropQueuedFrom(source: Any) -> int:
        """
        Drop what C{source} wrote that waits to be written (its write right
        taken away), counted C{unsent}; how many bytes.  0 where its bytes
        are no longer the gateway's to drop (a remote console's: in its
        connection's buffer).
        """

    settings = Attribute("The L{SerialSettings} in effect.")
    downReason = Attribute("Why the device is down (a short text), or None while it is up.")
    modemLines = Attribute("DTR and RTS as set: C{{'dtr': bool, 'rts': bool}}.")
    breaking = Attribute("Whether a break is under way.")
    up = Attribute("Whether the device is there (open, or connected) now; false once closed (what it is given is dropped).")
    holding = Attribute(
        "Whether what it is given now is held for it though it is not up (its first open under way): written "
        "once it opens, else dropped and counted unsent."
    )
    breakDuration = Attribute("How long a break lasts when the client gives no duration (seconds).")
    noBreak = Attribute(
        "Why a break cannot reach the far end, for people (C{'unix:/x is a raw socket: it cannot carry a break'}); "
        "empty when it can."
    )
    noSettings = Attribute(
        "Why settings cannot reach the far end, for people (C{'tcp:h:1 is a raw socket: it carries no settings "
        "(an rfc2217:// device does)'}); empty when they can.  Settings asked of the line are refused then."
    )
    logBudget = Attribute(
        "The log budget its coming and going counts against (logflood), its line's device down and up too, shared "
        "by the consoles of one far host (a console server's lines, each flapping, wrote ~22 lines a minute each); "
        "None: not limited (a local device)."
    )
    lockedBy = Attribute("The process whose UUCP lock keeps the device from us (a pid), or None.")
    breaks = Attribute("Breaks sent so far.")
    dropped = Attribute(
        "Bytes for the device dropped because it was down, so far: given while it was down, or queued "
        "(given while it was up) when it went away or was closed."
    )
    unsent = Attribute(
        "Bytes given to it while it was up that it never sent, so far: queued when it went away (a hang-up, "
        "an unplug, a lost link) or was closed (part of C{dropped}), or purged.  Its line counts what it "
        "gives the device less these as sent (C{bytes_to_device})."
    )

    def queuedBytes() -> int:
        """
        Bytes written to it that it has not sent yet (held behind a break,
        paced, a remote's link buffer, a tty driver's output queue): what
        closing it now would drop.
        """

    def start() -> None:
        """Start reading from the device (a remote one: start connecting)."""

    def reopen(why: str) -> Optional[str]:
        """
        A person asked for it anew (the escape menu's O, conserver's ^Eco):
        up, closed and opened again at once (a remote console: its link cut
        and dialled again), its line told it went (C{why}) and came back;
        down, opened now rather than after its backoff.  None when under
        way, else why not (a break under way, an open under way, a pty the
        gateway makes, closed), for people.
        """

    def close() -> object:
        """
        Close for good (no reopening): down from now on, what is queued is
        dropped (counted); what to wait for (a Deferred), if anything.
        """

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

    def deliverRead() -> None:
        """
        Hand the sink, now, what was read from the device and not handed on
        yet (a mover's pipe: L{serialgw.devices.floodread}), paused or not:
        the line's people are about to be sent away (a reload removing it).
        """


class IRestingDevice(IDevice):
    """
    A device its line may have open only while a client wants it (on
    demand: a local tty), so that other programs may open it meanwhile.
    """

    resting = Attribute("Whether it is closed until L{wake} (down, its descriptor and lock let go, no reopening).")

    def rest() -> None:
        """
        Close it until L{wake}: what it read is handed on first, what is
        queued for it dropped (counted unsent).
        """

    def wake() -> None:
        """
        Open it again (a first open: it tells its line C{deviceUp}, or
        C{deviceNotOpened} and tries again with backoff while not rested).
        """


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

    def hungUp() -> bool:
        """
        Whether the device has hung up (unplugged, a pty's master closed):
        asked while it is not read, where a read would have said so.
        """

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

    def startWatching(reactor: Any) -> None:
        """
        The port is its device's now (at start, and after each reopen), on
        the reactor thread: what it watches with the reactor starts (a pty
        the gateway made: its slave's last close, see
        L{serialgw.devices.ptywatch}; a tty: nothing).  L{close} stops it.
        """

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

    def deviceNotOpened(reason: str) -> None:
        """The device's first open failed or hangs (C{reason}): what it held meanwhile was dropped."""

    def deviceSettings(before: SerialSettings) -> None:
        """
        The settings in effect (the device's C{settings}) changed without
        the line asking: the device, back, took less of those kept for it
        (C{before}: a pty forces 8 bits), or a remote port answered with
        others than asked.
        """
