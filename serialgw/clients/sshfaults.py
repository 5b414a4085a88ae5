"""
What goes wrong on an SSH connection, whose fault it is, and how it is
said: a client's malformed packet (an error of parsing raised where conch
or cryptography read its bytes: L{clientsFault}) or the gateway's own
error; a message's name (L{messageName}); the peer a line names and the log
budget it counts against (L{sshPeer}, L{sshSource}); conch's own lines,
limited (L{conchLog}).  The connection that acts on them is
L{serialgw.clients.sshtransport}.
"""

from __future__ import annotations

import struct
from typing import Any, cast

from twisted.conch.ssh import connection, transport, userauth
from twisted.logger import FilteringLogObserver, ILogObserver, Logger, LogLevel, LogLevelFilterPredicate

from serialgw.clients.transports import describeAddress, sourceOf
from serialgw.logflood import peerLimiter

# conch's own log lines, warnings and errors only: its info and debug
# chatter (key exchange steps, every auth attempt, "sending close", every
# packet it does not handle, with the packet's repr) is a client's to
# cause, as often as it likes.  What matters is logged here, per peer.
# What it does log names no connection (its "channel open failed" and
# "Error checking auth" tracebacks, a bug of ours any client could reach;
# its errors a connection): all connections' count against one budget
# (logflood's: 20 a minute; a traceback against its one for the
# gateway's own errors in handling clients), not one line each.
CONCH = "ssh (conch's own lines)"


def _conchLimited(event: dict[str, Any]) -> None:
    event.setdefault("peer", CONCH)
    peerLimiter(event)


# (In the namespace its lines had in serialgw.clients.sshtransport, which an operator may filter on.)
conchLog = Logger(namespace="serialgw.clients.sshtransport",
                  observer=FilteringLogObserver(cast(ILogObserver, _conchLimited), [LogLevelFilterPredicate(LogLevel.warn)]))
# What parsing a packet raises when it is shorter than it says, names a channel that is not there, or
# holds a value that is no value (a key exchange's point off its curve): the client's doing only when
# raised where the client's bytes are read (see clientsFault); a TypeError only where conch's ord() read
# a byte past the packet's end (see cutShort).
MALFORMED = (struct.error, ValueError, IndexError, KeyError)
# Where the client's bytes are read: conch's parsing, and the cryptography it hands them to.
READERS = ("twisted.conch.", "cryptography.")
# Ours that read a packet on the way there: our overrides of conch's message handlers (ssh_CHANNEL_DATA,
# ssh_USERAUTH_REQUEST, auth_publickey), which read it themselves or hand it to conch's.
HANDLERS = ("ssh_", "auth_")


def cutShort(e: Exception) -> bool:
    """
    Whether C{e} is an C{ord()} of nothing: conch's, where it reads a byte
    past a packet's end (a request cut before its want-reply byte, a debug
    message or a key exchange's init cut short), when L{clientsFault} finds
    it raised there.
    """
    return isinstance(e, TypeError) and str(e).startswith("ord() expected")


def clientsFault(e: Exception) -> bool:
    """
    Whether C{e}, raised while a client's message was handled, is the
    client's malformed packet: an error of parsing (L{MALFORMED}, conch's
    C{ord()} of nothing) raised where the client's bytes are read (conch,
    cryptography: L{READERS}), reached through none of our code but our
    message handlers (L{HANDLERS}).  Anything else (a KeyError in a
    session's typing, the line, a device, whatever conch called it from;
    one in conch's code that our session code called) is the gateway's own
    error, to be seen with its traceback.
    """
    if not (isinstance(e, MALFORMED) or cutShort(e)):
        return False
    frames = []
    tb = e.__traceback__
    if tb is not None:
        tb = tb.tb_next  # (the first frame is the one that caught it: the dispatch)
    while tb is not None:
        frames.append((str(tb.tb_frame.f_globals.get("__name__", "")), tb.tb_frame.f_code.co_name))
        tb = tb.tb_next
    if not frames or not frames[-1][0].startswith(READERS):
        return False
    return all(name.startswith(HANDLERS) for module, name in frames if not module.startswith(READERS))


def messageName(number: int) -> str:
    """An SSH message's name (its number's, for the connection's layers), for a log line."""
    for names in (connection.messages, userauth.SSHUserAuthServer.protocolMessages, transport.messages):
        name = names.get(number)
        if name:
            return str(name)
    return "(unknown)"


def sshPeer(sshTransport: Any) -> str:
    """An SSH transport's peer address, for messages."""
    return describeAddress(sshTransport.transport.getPeer())


def sshSource(sshTransport: Any) -> str:
    """
    Where an SSH transport's peer is (L{sourceOf}: its address, an IPv6
    /64): the log budget of what a connection does before it is a person's
    (each connection has its own port: a client reconnecting had a new
    budget each time).
    """
    return sourceOf(sshTransport.transport.getPeer())
