"""
What the escape menu's commands that reach past the menu do, once asked:
r and R N replay the last lines of output (found by C's count, never a
step a line), B RATE sets the baud rate (refused while typing waits for
the device), K WHO disconnects a person or an address (the line's admin
people only).  The base of L{serialgw.clients.escape.EscapeMenu}, which
reads the keys.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger

from serialgw.config.baudrates import unusualBaud
from serialgw.config.parsers import applySingle
from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import counted, peerLimiter

# Limited per peer: a client's input cannot flood the log (logflood); the
# namespace its events had before this module was split from escape.
log = Logger(namespace="serialgw.clients.escape", observer=peerLimiter)

REPLAY_LINES = 20
MAX_REPLAY_LINES = 999999


# ^] w looks at every client of the line (0.4 ms for 1000 clients): it
# counts as one more key of the turn's share for each this many clients.
WHO_CLIENTS_PER_KEY = 16


def lastLines(data: bytes, count: int) -> int:
    """
    Where the last C{count} lines of C{data} start (a final newline ends the
    last line; it does not start another).  Found by halving with C's count
    in the smallest window from the end that holds them, never a Python
    step a line (R 999999 over 256 KiB of newlines took 50 ms), nor an
    object a line (a split of a 64 MiB backlog of short lines cost 1.3 GB
    for a moment).
    """
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    # A window from the end, four times larger each time, until it holds
    # them (the last 20 lines are in the last few KiB: counting 256 KiB at
    # each halving took 5 ms a replay).
    window = 4096
    while True:
        low = max(0, end - window)
        if data.count(b"\n", low, end) >= count:
            break
        if not low:
            return 0
        window *= 4
    # data[low:end] holds at least count newlines, data[high:end] fewer.
    high = end
    while high - low > 1:
        middle = (low + high) // 2
        if data.count(b"\n", middle, end) >= count:
            low = middle
        else:
            high = middle
    return low + 1


def _named(client: Any, typed: str) -> bool:
    """Whether C{client} is the person C{typed} names, or comes from the address (HOST or HOST:PORT) it names."""
    if client.user is not None and client.user == typed:
        return True
    try:
        address = client.transport.getPeer()
    except Exception:
        return False
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return False
    host, port = address.host, address.port
    return typed in (host, f"{host}:{port}", f"[{host}]", f"[{host}]:{port}")


class EscapeCommands:
    """The commands of one client's escape menu (set up by L{serialgw.clients.escape.EscapeMenu})."""

    client: Any
    _keysLeft: int

    def _replay(self, count: int, asked: int = 0) -> None:
        """Replay the last C{count} lines; C{asked}: the count typed, when more than the cap (said)."""
        line = self.client.line
        guard = self.client.guard
        # No more than the client may have waiting (deliverKept's cut), and
        # of that the newest 4 KiB, 16 KiB, ... until it holds the lines.
        limit = guard.bound if guard is not None else line.backlogSize
        size = 4096
        while True:
            backlog = line.backlog(min(size, limit))
            start = lastLines(backlog, count)
            if start or size >= limit or len(backlog) < size:
                break
            size *= 4
        capped = f" (at most {MAX_REPLAY_LINES}, not {asked})" if asked > count else ""
        self.client.notice(f"last {counted(count, 'line')} of {line.name}{capped}:")
        self.client.deliverKept(backlog[start:])
        if guard is None or guard.policy != "drop":
            # An answer written past the client's bound (policy=block writes it): its budget's.  (With drop it
            # waits with the output held for it, bounded, and a person's ^C after it still goes.)
            self.client.answered(len(backlog) - start)

    def _count(self, typed: str) -> None:
        typed = typed or str(REPLAY_LINES)
        if typed.isdigit() and int(typed) == 0:
            # (It replayed one line.)
            self.client.notice("0 lines: nothing replayed")
        elif typed.isdigit():
            # (Each line is looked for: a count past the backlog's lines changes nothing.)
            self._replay(min(int(typed), MAX_REPLAY_LINES), int(typed))
        else:
            self.client.notice(f"not a number of lines: {typed!r}")

    def _kick(self, typed: str) -> None:
        """
        K WHO: every other person on the line named C{typed} (an SSH key's
        person, a TLS certificate's CN, spaces and all: C{K John Smith}, or
        in double quotes, C{K "John Smith"}, taken as it is between them),
        or connected from that address (C{HOST}, or C{HOST:PORT} as w shows
        it), is told who and disconnected; what they typed that waits for
        the device is not sent.  For the line's admin people (asked again:
        a reload may have taken it away).
        """
        client, line = self.client, self.client.line
        if len(typed) >= 2 and typed[0] == typed[-1] == '"':
            typed = typed[1:-1]
        if not line.rights.isAdmin(client.user):
            client.notice(f"nobody disconnected: you are no longer an admin of {line.name}")
            return
        if not typed:
            client.notice("nobody disconnected: no name or address given")
            return
        # Each client on the line is looked at, as for w.
        self._keysLeft -= len(line.clients) // WHO_CLIENTS_PER_KEY
        named = [c for c in line.clients if c.person and c is not client and _named(c, typed)]
        # (Not a dial-out, the gateway's own connection: it was cut, then dialled again, the far end told it was put off.)
        targets = [c for c in named if not c.dialled]
        if not targets:
            client.notice(f"nobody disconnected: {named[0].peer} is {line.name}'s dial-out (the gateway's own "
                          "connection, dialled again when it goes: a reload removing its listener ends it)" if named else
                          f"nobody disconnected: no one else on {line.name} is {typed!r} (w shows who is on)")
            return
        why = f"{client.peer} disconnected you from {line.name} (admin)"
        for target in targets:
            log.info("{line}: {target} disconnected by {peer} (admin)", line=line.name, target=target.peer,
                     peer=client.peer)
            line.dropTyped(target, f"{client.peer} disconnected it (admin)", f"{client.peer} disconnected you (admin)")
            target.notice(why)
            target.disconnect(why)
        shown = ", ".join(str(t.peer) for t in targets[:5]) + (f" and {len(targets) - 5} more" if len(targets) > 5 else "")
        client.notice(f"disconnected from {line.name}: {shown}")

    def _baud(self, typed: str) -> None:
        line, client = self.client.line, self.client
        try:
            wanted = applySingle(line.settings, "baud", typed)
        except ConfigError as e:
            log.info("{line}: settings from {peer} refused ({asked}): the value is invalid: {reason}",
                     line=line.name, peer=client.peer, setting="baud rate", value=typed,
                     asked=f"baud rate {typed}", reason=str(e))
            client.notice(str(e))
            return
        before = "" if line.device.noSettings or not line.mayWrite(client) else self._typedBefore(line)
        if before:
            # (A break is refused alike; this one is asked again, as that is.)
            current = line.settings.describe()
            log.info("{line}: settings from {peer} refused ({asked}): {reason}; {line} stays at {settings}",
                     line=line.name, peer=client.peer, asked=f"baud rate {typed}", reason=before, settings=current)
            client.notice(f"no change: {before}, and a new rate now would apply to them too; ask again once they "
                          f"have gone ({line.name} stays at {current})")
            return
        settings: SerialSettings = line.clientSettings(client, wanted)
        if line.device.noSettings:
            # (Not "stays at 115200,8N1": the speed kept here means nothing there.)
            client.notice(f"no change: {line.device.noSettings}")
            return
        if not line.mayWrite(client):
            # Refused (logged by the line): said, as for a break.
            why = {Role.WATCHER: "you only watch: take write first", Role.READONLY: "read-only"}.get(
                client.role, f"{line.name} is closing")
            client.notice(f"{why}: nothing changed, {line.name} stays at {settings.describe()}")
            return
        unusual = unusualBaud(wanted.baudrate)  # (--baud 11520's warning: did you mean 115200?)
        client.notice(f"{line.name} now at {settings.describe()}" + (f"; {unusual}" if unusual is not None else ""))

    def _typedBefore(self, line: Line) -> str:
        """
        Why a new rate now would overtake bytes typed before it (empty: it
        would not): people's typing that waits for the device (see
        L{Line.typedAhead}), or bytes the device has been given and not
        sent yet (its queue, the driver's).  A rate set at once applies to
        them: a command typed for the old rate reached the device at the new one.
        """
        waiting = line.typedAhead(self.client)
        if waiting:
            return waiting
        queued = line.device.queuedBytes()
        return f"{queued} byte(s) typed before wait in the device's output queue" if queued else ""
