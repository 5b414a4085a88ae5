"""
The escape menu, like conserver's C{^Ec} and QEMU's C{mon:} Ctrl-a: the
escape key (default Ctrl-] on telnet listeners), then one command key.
Pressed twice, the escape key sends itself.

    b       send a break
    k KEY   send a break, then KEY (magic SysRq: ^] k h)
    l KEY   send the line's break sequence KEY (conserver's ^Ecl1; l ?
            lists them: break-sequences, serialgw.config.breakseqs)
    w       who is on
    r       replay the last 20 lines of output
    R N     replay the last N lines (digits, then Enter; Esc, ^C or the
            escape key cancel; another key ends it, see _typeArgument)
    s       line status: device, settings, counters
    B RATE  set the baud rate (digits, then Enter)
    t       take write          o   only watch (give up write)
    K WHO   disconnect a person (by name) or an address from the line:
            for the line's admin people only (conserver's console -d)
    n TEXT  write a note into the line's console logs (conserver's ^Ecn)
    m TEXT  a message to everyone on the line (conserver's ^Ecb, its broadcast)
    d       disconnect          ?   help (h too)

With QEMU's C{mon:} form the keys QEMU has mean what they mean there:
C{h} help, C{x} disconnect, C{b} break, Ctrl-a twice sends Ctrl-a; the
others are as above.

Here the keys are read; what r, R N, B RATE and K WHO then do is
L{serialgw.clients.escapecommands}.
"""

from __future__ import annotations

from typing import Any, Callable

from serialgw.clients.escapecommands import REPLAY_LINES, WHO_CLIENTS_PER_KEY, EscapeCommands
from serialgw.config.breakseqs import shownSequence
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

HELP = (
    "escape commands: b break, k KEY break then KEY, l KEY break sequence (l ? lists them), w who, r replay, R N<Enter> replay N lines, s status, "
    "B RATE<Enter> set baud, O reopen the device, n TEXT<Enter> note in the console log, m TEXT<Enter> message to everyone, t take write, o only watch, d disconnect, ? help; "
    "the escape key twice sends it; admins: K WHO<Enter> disconnect a person or an address"
)
QEMU_HELP = (
    "escape commands, as in QEMU: h help, x disconnect, b break, {key} {key} sends {key}; and: k KEY break then KEY, "
    "l KEY break sequence (l ? lists them), w who, r replay, R N<Enter> replay N lines, s status, B RATE<Enter> set baud, O reopen the device, n TEXT<Enter> note in the console "
    "log, m TEXT<Enter> message to everyone, t take write, o only watch, "
    "d disconnect, ? help"
)
# An argument (R N, B RATE) is at most this many keys (digits, spaces).
ARGUMENT_LIMIT = 12
# K WHO: a person's name (a user's is at most 128 characters; a TLS
# certificate's CN at most 64, 256 bytes in UTF-8, perhaps in double
# quotes) or an address: every printable key and UTF-8's bytes (a CN may
# hold a space or @: "John Smith", bob@corp), but the keys that cancel.
NAME_LIMIT = 258
NAME_KEYS = frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100))
NUMBER_KEYS = frozenset(b" 0123456789")
CANCEL_HINT = "Esc cancels"
# n TEXT: a note's keys (printable ones and UTF-8's bytes; the escape key cancels, a printable one too), at most
# NOTE_LIMIT of them, and at most NOTES notes a client in NOTE_WINDOW seconds (each is a line of the gateway's
# log and of every console log of the line).
NOTE_KEYS = frozenset(NAME_KEYS)
NOTE_LIMIT = 256
NOTES = 5
NOTE_WINDOW = 60.0
# m TEXT: a message to everyone on the line, as a note's keys are read; at most MESSAGES a client in
# MESSAGE_WINDOW seconds (each a line to every person on it, and to its console logs).
MESSAGES = 5
MESSAGE_WINDOW = 60.0
# A client takes or gives up write at most ROLE_CHANGES times in
# ROLE_WINDOW seconds (_mayChangeRole).
ROLE_CHANGES = 5
ROLE_WINDOW = 10.0
# The most keys of escape commands (the escape key, a command, the digits
# and Enter of a number) one read of a client's input handles; the rest
# waits for a later turn of the reactor, the client not read meanwhile.
# A command costs tens of microseconds (a baud rate set, who is on, a
# replay): one 64 KiB read of "^] B 9600 Enter" held every line of the
# reactor 0.75 s; 32 keys cost at most about a millisecond.
KEYS_PER_TURN = 32


def noteRefusal(line: Line) -> str:
    """Why a note cannot be written on C{line} (no console log, or none keeping events), or ''."""
    if not line.logs:
        return f"{line.name} has no console log"
    if all(consoleLog.spec.events == "off" for consoleLog in line.logs):
        return f"{line.name}'s console log keeps no events (log-events = \"off\")"
    return ""


def keyName(key: int) -> str:
    """The escape key as people write it: C{^]}, C{^?} (DEL), or the character."""
    return f"^{chr(key + 0x40)}" if key < 0x20 else "^?" if key == 0x7F else chr(key)


def shownKey(byte: int) -> str:
    """A key in a message: C{'x'}, C{^I}, C{DEL}, C{byte 0xc3} (a UTF-8 character's first byte)."""
    if 0x20 <= byte < 0x7F:
        return repr(chr(byte))
    if byte < 0x20:
        return keyName(byte)
    return "DEL" if byte == 0x7F else f"byte {byte:#04x}"


def settingsShown(line: Line) -> str:
    """
    The line's serial settings for people (C{115200,8N1}); on a remote
    device that carries none (tcp:, unix:, telnet:) what it is instead: the
    speed and framing kept here mean nothing there.
    """
    device = line.device
    if not device.noSettings:
        return str(line.settings.describe())
    kind = getattr(getattr(device, "spec", None), "kind", "")
    # (An rfc2217:// far end that refused com port control is a telnet console.)
    what = getattr(getattr(device, "spec", None), "withoutSettings", "") or (
        "telnet console (it refused RFC 2217)" if kind == "rfc2217" else "device")
    return f"remote {what}: serial settings are the far end's"


class EscapeMenu(EscapeCommands):
    """
    Filters one client's input: returns what goes to the device and runs
    the commands it finds.  C{client} has C{line}, C{peer}, C{role},
    C{notice(text)}, C{toLine(data)}, C{transport}, and C{inputHeld}: once an answer has
    filled the client's output, the rest of the input goes back to
    C{client.fromPeer}, which holds it.  So it does once KEYS_PER_TURN keys
    of commands are handled in one read (L{newTurn} starts a read): the
    client's C{holdUntilNextTurn()} holds its input until a later turn.
    """

    def __init__(self, client: Any, key: int, qemuKeys: bool = False) -> None:
        self.client = client
        self.key = key
        # QEMU's mon: keys: x disconnects too, and the help says so.
        self.qemuKeys = qemuKeys
        self._escape = bytes((key,))
        self._state: Callable[[int], bytes] | None = None
        self._digits = b""
        # Continuation bytes of a UTF-8 character after the escape key still to come (_restOfCharacter).
        self._continuations = 0
        # The argument being typed (R N, B RATE): what it is, for messages,
        # and what runs it at Enter; why it ended otherwise (_endArgument).
        self._argument: tuple[str, Callable[[str], None]] = ("", lambda typed: None)
        # Which keys it takes, at most how many, and what the others are not (for the message).
        self._argumentKeys: tuple[frozenset[int], int, str] = (NUMBER_KEYS, ARGUMENT_LIMIT, "a digit")
        self._ended: str | None = None
        # When this client last took or gave up write (_mayChangeRole), and wrote a note (_note).
        self._roleChanges: list[float] = []
        self._notes: list[float] = []
        self._messages: list[float] = []
        # Keys of commands this read may still handle (KEYS_PER_TURN).
        self._keysLeft = KEYS_PER_TURN

    def newTurn(self) -> None:
        """A new read of the client's input: KEYS_PER_TURN keys of commands again."""
        self._keysLeft = KEYS_PER_TURN

    def filter(self, data: bytes) -> bytes:
        """
        Return what goes to the device after the last command in C{data};
        what comes before a command is sent to the line first, so order holds.
        """
        if self._state is None and self._escape not in data:
            return data
        out: list[bytes] = []
        i = 0
        while i < len(data):
            if self._state is not None:
                pending = b"".join(out)
                out = []
                if pending:
                    self.client.toLine(pending)
                if self._keysLeft <= 0:
                    self._keysLeft = KEYS_PER_TURN
                    if self.client.holdUntilNextTurn():
                        self.client.fromPeer(data[i:])
                        break
                self._keysLeft -= 1
                state, self._state = self._state, None
                out.append(state(data[i]))
                i += 1
                if self._ended is not None:
                    # An argument ended other than by Enter: what came with
                    # that key (a paste) is not sent either, and said.
                    self._endArgument(len(data) - i)
                    break
                if self.client.inputHeld and i < len(data):
                    # Its answer filled the client's output: the rest waits
                    # until the client has read it (see OutputGuard).
                    self.client.fromPeer(data[i:])
                    break
                continue
            j = data.find(self._escape, i)
            if j < 0:
                out.append(data[i:])
                break
            out.append(data[i:j])
            self._state = self._command
            i = j + 1
        return b"".join(out)

    # States: each takes one byte, returns bytes for the device.

    def _command(self, byte: int) -> bytes:
        if byte == self.key:
            return self._escape
        client = self.client
        line: Line = client.line
        command = chr(byte)
        if command == "b":
            # Refused (read-only, a device that cannot carry one, ...): the line tells the client why.
            line.clientBreak(client)
        elif command == "k":
            self._state = self._breakThenKey
        elif command == "l":
            if line.breakSequences:
                self._state = self._breakSequence
            else:
                client.notice(f"{line.name} has no break sequences (its break-sequences are none)")
        elif command == "w":
            # Every client: people, and programs and files (a pty, file:, a console log).
            client.notice(f"{line.name}: {line.who()}")
            # Each client on the line is looked at: as many more keys of
            # this read's share as there are WHO_CLIENTS_PER_KEY of them.
            self._keysLeft -= len(line.clients) // WHO_CLIENTS_PER_KEY
        elif command == "r":
            self._replay(REPLAY_LINES)
        elif command == "R":
            self._startArgument("replay", self._count)
            client.notice(f"how many lines, then Enter ({CANCEL_HINT}):")
        elif command == "s":
            device = line.device
            client.notice(
                f"{line.name}: {device.name} "
                f"{'up' if device.up else 'DOWN'}, {settingsShown(line)}, "
                f"{line.bytesFromDevice} bytes in, {line.bytesToDevice} out, "
                f"{device.breaks} breaks, {device.dropped} dropped while down, "
                f"mode {line.mode}"
                + ("" if line.writable else "; typing paused: " + (
                    "an init-command runs" if line.initHoldsTyping() else "the device takes no input now"))
                + (f" ({waiting} byte(s) you typed wait for it)" if (waiting := client.typedWaiting) else "")
            )
        elif command == "B":
            self._startArgument("baud rate", self._baud)
            client.notice(f"baud rate, then Enter ({CANCEL_HINT}):")
        elif command == "O":
            # (Refused, bounded and said by the line: see Line.clientReopen.)
            line.clientReopen(client)
        elif command == "K":
            if not line.rights.isAdmin(client.user):
                client.notice(f"K disconnects others from {line.name}: only its admin people may (the line's admin list)")
            else:
                self._startArgument("disconnect", self._kick, (NAME_KEYS, NAME_LIMIT, "part of a name or an address"))
                client.notice(f"disconnect whom: a person's name or an address, as w shows them, then Enter "
                              f"({CANCEL_HINT}):")
        elif command == "n":
            refusal = noteRefusal(line)
            if refusal:
                client.notice(f"{refusal}: nothing to note")
            else:
                self._startArgument("note", self._note, (NOTE_KEYS, NOTE_LIMIT, "a printable character"))
                client.notice(f"a note for {line.name}'s console log, then Enter ({CANCEL_HINT}):")
        elif command == "m":
            self._startArgument("message", self._message, (NOTE_KEYS, NOTE_LIMIT, "a printable character"))
            client.notice(f"a message for everyone on {line.name}, then Enter ({CANCEL_HINT}):")
        elif command == "t":
            if client.role is Role.READONLY:
                client.notice("read-only: cannot take write")
            elif client.role is Role.WRITER:
                # Nothing to announce: a ^] t flood is not one to everyone.
                client.notice("you write already")
            elif self._mayChangeRole():
                line.takeWrite(client)
        elif command == "o":
            waiting = client.typedWaiting
            if client.role is Role.WATCHER:
                # (As ^] t by a writer: said, not announced; it said nothing.)  Its choice is kept: write
                # that comes free (a health check's going, a reload making the line shared) is not its.
                line.onlyWatch(client)
                client.notice(f"you only watch already, and keep watching when write is free: "
                              f"{keyName(self.key)} t takes it")
            elif client.role is not Role.WRITER:
                client.notice("read-only: you only watch")
            elif waiting:
                # Done now, what it typed before (while it wrote) would be refused when the device takes input.
                why = "an init-command runs" if line.initHoldsTyping() else "it takes no input now"
                client.notice(f"you still write: {waiting} byte(s) you typed wait for the device ({why}), and they "
                              f"would not be sent if you only watched now; ask again once they have gone "
                              f"({keyName(self.key)} d leaves without them)")
            elif self._mayChangeRole():
                line.onlyWatch(client)
        elif command == "d" or (command == "x" and self.qemuKeys):
            client.notice("bye")
            client.disconnect()
        elif command in "?h":
            client.notice(QEMU_HELP.format(key=keyName(self.key)) if self.qemuKeys else HELP)
        else:
            client.notice(f"unknown escape command {shownKey(byte)}; {keyName(self.key)} ? for help")
            self._keyRestSwallowed(byte)
        return b""

    def _keyRestSwallowed(self, byte: int) -> None:
        """
        What comes with a key the menu did not take is not typing either: ^] Enter's LF (or NUL), a
        UTF-8 character's rest (^] é: the device got a stray 0xa9).
        """
        if byte == 0x0D:
            self._state = self._afterEnter
        elif 0xC0 <= byte < 0xF8:
            self._continuations = 1 if byte < 0xE0 else 2 if byte < 0xF0 else 3
            self._state = self._restOfCharacter

    def _restOfCharacter(self, byte: int) -> bytes:
        """A byte after an unknown command's UTF-8 first byte: one of its continuation bytes is dropped; another key is typing."""
        if 0x80 <= byte < 0xC0:
            self._continuations -= 1
            if self._continuations:
                self._state = self._restOfCharacter
            return b""
        if byte == self.key:
            self._state = self._command
            return b""
        return bytes((byte,))

    def _mayChangeRole(self) -> bool:
        """
        At most ROLE_CHANGES role changes (take write, only watch) by one
        client in ROLE_WINDOW seconds: each is announced to everyone on the
        line and written to its console logs, so two people racing ^] t (or
        one flooding ^] t ^] o) cannot flood them.  One more is refused, told
        to this client only.
        """
        clock = self.client.line.clock
        if clock is None:
            return True
        now = clock.seconds()
        changes = self._roleChanges
        if len(changes) >= ROLE_CHANGES and changes[0] <= now < changes[0] + ROLE_WINDOW:
            self.client.notice(f"at most {ROLE_CHANGES} role changes in {ROLE_WINDOW:g} s: nothing changed")
            return False
        changes.append(now)
        del changes[:-ROLE_CHANGES]
        return True

    def _note(self, typed: str) -> None:
        """
        n TEXT Enter: TEXT written into the line's console logs as an event
        naming who wrote it (and into the gateway's log), at most NOTES in
        NOTE_WINDOW seconds; what is not printable is shown as C{?}.
        """
        client, line = self.client, self.client.line
        text = "".join(c if c.isprintable() else "?" for c in typed)
        if not text:
            client.notice("an empty note: nothing noted")
            return
        refusal = noteRefusal(line)
        if refusal:
            # (A reload took the log, or its events, away while the note was typed.)
            client.notice(f"{refusal}: nothing noted")
            return
        if not self._counted(self._notes, NOTES, NOTE_WINDOW):
            client.notice(f"at most {NOTES} notes in {NOTE_WINDOW:g} s: nothing noted")
            return
        line.recordEvent(f"note by {client.peer}: {text}", client.peer, budget=client.logBudget)
        client.notice(f"noted in {line.name}'s console log")

    def _counted(self, times: list[float], most: int, window: float) -> bool:
        """
        One more of at most C{most} in C{window} seconds (C{times}: the last
        ones' times, kept to C{most}): C{True} and counted now, or C{False}.
        """
        line = self.client.line
        now = line.clock.seconds() if line.clock is not None else 0.0
        if len(times) >= most and times[0] <= now < times[0] + window:
            return False
        times.append(now)
        del times[:-most]
        return True

    def _message(self, typed: str) -> None:
        """
        m TEXT Enter: TEXT told to everyone on the line (the sender too) and
        written to its console logs, naming who said it, at most MESSAGES in
        MESSAGE_WINDOW seconds; what is not printable is shown as C{?}.
        """
        client, line = self.client, self.client.line
        text = "".join(c if c.isprintable() else "?" for c in typed)
        if not text:
            client.notice("an empty message: nothing said")
            return
        if not self._counted(self._messages, MESSAGES, MESSAGE_WINDOW):
            client.notice(f"at most {MESSAGES} messages in {MESSAGE_WINDOW:g} s: nothing said")
            return
        line.announce(f"message from {client.peer}: {text}", peer=client.peer, actor=client)

    def _enter(self, byte: int) -> None:
        """Enter ended a number: a CR's LF (or NUL) that follows is Enter's too, not typing."""
        if byte == 0x0D:
            self._state = self._afterEnter

    def _afterEnter(self, byte: int) -> bytes:
        if byte in (0x0A, 0x00):
            return b""
        if byte == self.key:
            self._state = self._command
            return b""
        return bytes((byte,))

    def _startArgument(self, name: str, run: Callable[[str], None],
                       keys: tuple[frozenset[int], int, str] = (NUMBER_KEYS, ARGUMENT_LIMIT, "a digit")) -> None:
        self._digits = b""
        self._argument = (name, run)
        self._argumentKeys = keys
        self._state = self._typeArgument

    def _typeArgument(self, byte: int) -> bytes:
        """
        A key of an argument (R N, B RATE): Enter runs the command; Backspace
        (DEL or ^H) takes back the last key; digits and spaces are kept, at
        most ARGUMENT_LIMIT; Escape, ^C or the escape key cancel; any other
        key ends it, nothing run (see L{_endArgument}).
        """
        name, run = self._argument
        if byte in (0x0D, 0x0A):
            self._enter(byte)
            run(self._digits.decode("utf-8", "replace").strip())
            return b""
        keys, limit, what = self._argumentKeys
        if byte in (0x7F, 0x08):
            self._digits = self._digits[:-1]
        elif byte in (0x1B, 0x03) or (byte == self.key and not self._quoting(keys)):
            # (Before a name's keys: the escape key may be printable, escape=~; within a name's
            # double quotes it is one of its keys, K "bob~x".)
            self._ended = f"{name} cancelled"
            return b""
        elif byte in keys:
            if len(self._digits) >= limit:
                self._ended = f"{name} cancelled: more than {limit} characters"
                return b""
            self._digits += bytes((byte,))
        else:
            self._ended = f"{name} cancelled: {shownKey(byte)} is not {what}"
            return b""
        self._state = self._typeArgument
        return b""

    def _quoting(self, keys: frozenset[int]) -> bool:
        """A name is being typed within double quotes (opened, not yet closed): its keys are taken as they are."""
        typed = self._digits
        return keys is NAME_KEYS and typed[:1] == b'"' and (len(typed) == 1 or typed[-1:] != b'"')

    def _endArgument(self, rest: int) -> None:
        """
        An argument ended other than by Enter: nothing is run, and the
        rest of the input that came with the key that ended it (C{rest}
        bytes: a paste, or keys typed ahead) is not sent to the device
        either; the client is told both.
        """
        why, self._ended = self._ended, None
        line = self.client.line
        dropped = f"; the {rest} byte(s) after it were not sent to {line.name}" if rest else ""
        # Worth the log when typing was kept from the device (a cancel is the person's own business).
        emit = log.info if rest else log.debug
        emit("{line}: escape command from {peer}: {why}{dropped}", line=line.name, peer=self.client.peer,
             why=why, dropped=dropped, rest=rest)
        self.client.notice(f"{why}{dropped}")

    def _breakSequence(self, byte: int) -> bytes:
        """The key after l: that break sequence sent (refused: said); ? lists them; Esc, ^C, the escape key cancel."""
        client, line = self.client, self.client.line
        name = chr(byte)
        if name in line.breakSequences:
            line.clientSequence(client, name)
        elif name == "?":
            client.notice(f"break sequences of {line.name} ({keyName(self.key)} l KEY sends one; \\b a break): "
                          + ", ".join(f"{key} {shownSequence(parts)}" for key, parts in line.breakSequences.items()))
        elif byte in (0x1B, 0x03) or byte == self.key:
            client.notice("break sequence cancelled")
        else:
            client.notice(f"no break sequence {shownKey(byte)} on {line.name}; {keyName(self.key)} l ? lists them")
            self._keyRestSwallowed(byte)
        return b""

    def _breakThenKey(self, byte: int) -> bytes:
        line = self.client.line
        if line.initHoldsTyping():
            # Neither goes: the key would land in the command's talk (typing waits for it), and the break
            # alone, then the key once the command is done, is not the SysRq asked for.
            self.client.notice(f"{shownKey(byte)} not sent, nor its break: an init-command runs")
        elif line.clientBreak(self.client):
            # The key goes after the break: the device holds it until then.
            line.clientData(self.client, bytes((byte,)))
        else:
            # Always said: the refusal's own notice is at most once a second (_tellRefusal).
            self.client.notice(f"{shownKey(byte)} not sent: no break")
        return b""


