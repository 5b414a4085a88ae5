"""
The prompt of a by-name listener (L{serialgw.clients.byname}): one
connection asked which console it wants, its typing read (telnet's
commands and negotiations taken apart from it, refused while it is asked)
until Enter names a line it may use, then handed to that line's client.

The prompt is bounded: a name of at most L{NAME_MOST} characters, given
within L{ANSWER_TIME} seconds, at most L{ANSWERS_MOST} answers (a wrong
name, a list asked for) a connection, L{PENDING_MOST} connections at the
prompt on a listener and L{PENDING_PER_ADDRESS} from one address, lists of
at most L{LIST_MOST} bytes and L{LIST_WORK} lines looked at for them on a
listener in L{LIST_WINDOW} seconds.
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.transports import SourceCounts, peerName, sourceOf
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.listenerspecs import Protocol as WireProtocol
from serialgw.config.sshkeys import printable
from serialgw.line.hub import Line
from serialgw.logflood import ListenerKey, peerLimiter
from serialgw.wire.telnetcodes import ABORT, EOF, IP

# What clients at the prompt cause (names not found, refusals at accept): limited per listener (in the
# namespace its lines had in serialgw.clients.byname, which an operator may filter on).
said = Logger(namespace="serialgw.clients.byname", observer=peerLimiter)

# The longest name taken (a line's name is at most 128 characters: config.linetable.MAX_NAME).
NAME_MOST = 128
# Seconds from the prompt to a name that is a line's.
ANSWER_TIME = 30.0
# Answers a connection may give (a name that is none, a list asked for) before it is closed.
ANSWERS_MOST = 5
# Connections at the prompt on one listener, and from one address (an IPv6 /64).
PENDING_MOST = 64
PENDING_PER_ADDRESS = 8
# The most bytes of line names one list shows.
LIST_MOST = 4096
# The lines looked at for lists on one listener in LIST_WINDOW seconds (a list looks at each,
# about 10 us: 1000 lines held the reactor 9 ms a list, and asking in a loop was without bound).
LIST_WORK = 20000
LIST_WINDOW = 10.0

PROMPT = b"console (? lists them): "

# Telnet: IAC and the commands whose option byte follows (WILL WONT DO DONT), and SB ... IAC SE.
IAC, SB, SE = 255, 250, 240
# The negotiation commands (WILL WONT DO DONT); WILL and DO are refused (DONT, WONT), once an
# option: a peer repeating them, never reading, made no answers without end.  WONT and
# DONT ask for what is so already: not answered (RFC 1143).
NEGOTIATIONS = {251: 254, 252: None, 253: 252, 254: None}


def shown(name: str) -> str:
    """
    A name as typed (bytes read as Latin-1), for a message and the log: in
    quotes, its first 64 characters, anything but printable ASCII as C{\\xNN};
    past them its length (C{'aaa'... (100 characters)}).
    """
    text = "".join(ch if " " <= ch <= "~" else f"\\x{ord(ch):02x}" for ch in name[:64])
    return f"'{text}'" + (f"... ({len(name)} characters)" if len(name) > 64 else "")


class PromptFactory(typing.Protocol):
    """
    What a prompt uses of its listener's factory (L{serialgw.clients.byname.ByNameFactory}):
    declared here, beside the prompt, since the factory imports it.
    """

    spec: ListenerSpec
    clock: Any
    # The connections at the prompt, by address and in all.
    pending: SourceCounts
    prompts: set[NamePrompt]
    logKey: ListenerKey

    def _user(self, transport: Any) -> Optional[str]: ...
    def find(self, name: str, transport: Any) -> Optional[Line]: ...
    def listWork(self) -> Optional[int]: ...
    def names(self, transport: Any) -> list[str]: ...
    def clientFor(self, line: Line, addr: Any, transport: Any) -> Any: ...


class NamePrompt(Protocol):
    """
    One connection of a by-name listener: asked for a line's name, then
    the client of that line (L{inner}), which this hands every byte and the
    connection's end to, as L{HandshakeGate} does.
    """

    transport: Any

    def __init__(self, factory: PromptFactory, addr: Any) -> None:
        self.factory = factory
        self.addr = addr
        self.source: Optional[str] = sourceOf(addr) if isinstance(addr, (IPv4Address, IPv6Address)) else None
        self.inner: Any = None
        self.peer = "?"
        self.answers = 0
        self.closed = False
        self._typed = bytearray()
        self._timer: Any = None
        self._closeCall: Any = None
        # Telnet parsing state: 0 data, 1 after IAC, 2 after a negotiation command, 3 in SB, 4 in SB after IAC.
        self._state = 0
        self._command = 0
        # The last byte ended a line with CR: a LF or NUL after it is that Enter's.
        self._afterCR = False
        self._telnet = factory.spec.protocol is not WireProtocol.RAW
        # The (command, option) requests refused already: each at most once.
        self._refused: set[tuple[int, int]] = set()
        # IAC IP, EOF or ABORT came (see _inTelnet).
        self._interrupted = False

    def connectionMade(self) -> None:
        self.peer = peerName(self.transport)
        user = self.factory._user(self.transport)
        if user:
            # (A TLS client certificate's person, as the line's log names them.)
            self.peer = f"{printable(user)} ({self.peer})"
        self.factory.pending.add(self.source or "")
        self.factory.prompts.add(self)
        self._timer = self.factory.clock.callLater(ANSWER_TIME, self._tooSlow)
        self.transport.write(PROMPT)

    def dataReceived(self, data: bytes) -> None:
        if self.inner is not None:
            if self._afterCR:
                # (The Enter that named the line ended with a CR read alone: its LF or NUL is not typing.)
                self._afterCR = False
                data = data[1:] if data[:1] in (b"\n", b"\0") else data
                if not data:
                    return
            self.inner.dataReceived(data)
            return
        if self.closed:
            return
        for index, byte in enumerate(data):
            if self._telnet and self._inTelnet(byte):
                if self._interrupted:
                    self._close("bye")
                    return
                continue
            if self._afterCR:
                self._afterCR = False
                if byte in (0, 10):
                    continue
            if byte in (13, 10):
                rest = data[index + 1:]
                if byte == 13 and rest[:1] in (b"\n", b"\0"):
                    rest = rest[1:]
                else:
                    self._afterCR = byte == 13 and not rest
                self._answered(bytes(rest))
                return
            if byte in (8, 127):
                del self._typed[-1:]
            elif byte in (3, 4):
                self._close("bye")
                return
            else:
                self._typed.append(byte)
                if len(self._typed) > NAME_MOST:
                    self._close(f"a console's name is at most {NAME_MOST} characters")
                    return

    def _inTelnet(self, byte: int) -> bool:
        """Whether C{byte} is telnet's (a command, negotiation, subnegotiation): taken here, not typed."""
        state = self._state
        if state == 0:
            if byte == IAC:
                self._state = 1
                return True
            return False
        if state == 1:
            if byte == IAC:
                # A byte 255 typed (no name holds it: found no line), bounded as any other.
                self._state = 0
                return False
            self._state = 2 if byte in NEGOTIATIONS else 3 if byte == SB else 0
            self._command = byte
            # Interrupt Process: telnet's ^C (a line's telnet client gives the device one), which leaves here;
            # so do End of File and Abort (RFC 1184: ^D, ^\ as a terminal has them; ^D typed leaves too).
            self._interrupted = byte in (IP, EOF, ABORT)
            return True
        if state == 2:
            # Refused while asked for a name: the line's client negotiates anew once it is chosen.
            answer = NEGOTIATIONS[self._command]
            if answer is not None and (self._command, byte) not in self._refused:
                self._refused.add((self._command, byte))
                self.transport.write(bytes((IAC, answer, byte)))
            self._state = 0
            return True
        if state == 3:
            self._state = 4 if byte == IAC else 3
            return True
        self._state = 0 if byte == SE else 3
        return True

    def _answered(self, rest: bytes) -> None:
        typed = bytes(self._typed)
        self._typed.clear()
        name = typed.decode("latin-1").strip(" \t")
        if name in ("", "?"):
            self._list()
        else:
            line = self.factory.find(name, self.transport)
            if line is not None:
                self._choose(line, rest)
                return
            said.info("by-name: {peer} asked for {name}: no line of that name it may use", peer=self.peer,
                      name=shown(name), budget=self.factory.logKey)
            self.transport.write(f"[serialgw: no console {shown(name)} here]\r\n".encode("utf-8", "replace"))
        self.answers += 1
        if self.answers >= ANSWERS_MOST:
            self._close(f"{ANSWERS_MOST} answers and no console")
            return
        self.transport.write(PROMPT)
        if rest:
            # (Keys typed ahead: the next answer.)
            self.dataReceived(rest)

    def _list(self) -> None:
        used = self.factory.listWork()
        if used is not None:
            said.info("by-name: {peer} asked for the list: not listed, {used} lines looked at in {window:g} s on this "
                      "listener (at most {most})", peer=self.peer, used=used, window=LIST_WINDOW, most=LIST_WORK,
                      budget=self.factory.logKey)
            self.transport.write(f"[serialgw: not listed: lists are asked for too often on this port now (at most "
                                 f"{LIST_WORK} lines looked at in {LIST_WINDOW:g} s); type a console's name, or ? again "
                                 f"in a few seconds]\r\n".encode())
            return
        names = self.factory.names(self.transport)
        text, shownCount = "", 0
        for name in names:
            if len(text) + len(name) + 1 > LIST_MOST:
                break
            text += ("" if not text else " ") + name
            shownCount += 1
        more = f" and {len(names) - shownCount} more" if shownCount < len(names) else ""
        line = text + more if names else "(none you may use)"
        self.transport.write(f"{line}\r\n".encode("utf-8", "replace"))

    def _choose(self, line: Line, rest: bytes) -> None:
        client = self.factory.clientFor(line, self.addr, self.transport)
        if client is None:
            self._close(f"{line.name} refused you (the gateway's log says why)")
            return
        self._stopTimer()
        self._forget()
        # (Within the listener's log budget, as the line's own words about it: a client choosing in a loop.)
        said.info("by-name: {peer} chose {line}", peer=self.peer, line=line.name, budget=self.factory.logKey)
        self.inner = client
        client.makeConnection(self.transport)
        if rest:
            client.dataReceived(rest)

    def _tooSlow(self) -> None:
        self._timer = None
        self._close(f"no console named within {ANSWER_TIME:g} s")

    def _close(self, why: str) -> None:
        """Told why (one line), then closed; cut if it does not take that within CLOSE_GRACE s."""
        if self.closed:
            return
        self.closed = True
        self._stopTimer()
        self._forget()
        self.transport.write(f"\r\n[serialgw: {why}: disconnected]\r\n".encode("utf-8", "replace"))
        self.transport.loseConnection()
        self._closeCall = self.factory.clock.callLater(CLOSE_GRACE, self._cut)

    def _cut(self) -> None:
        self._closeCall = None
        self.transport.abortConnection()

    def _stopTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _forget(self) -> None:
        if self in self.factory.prompts:
            self.factory.prompts.discard(self)
            self.factory.pending.remove(self.source or "")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stopTimer()
        self._forget()
        if self._closeCall is not None and self._closeCall.active():
            self._closeCall.cancel()
        self._closeCall = None
        if self.inner is not None:
            self.inner.connectionLost(reason)
