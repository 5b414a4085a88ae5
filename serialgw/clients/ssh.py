"""
SSH for people (twisted.conch): public keys (or passwords) name the
person, the SSH user name names the line (C{PERSON+LINE}: the person too).

    ssh -p 2222 rack4-web1@gateway
    ssh -p 2222 ops1+rack4-web1@gateway

Wire and auth are conch's; what is ours here:

  - who is who (L{serialgw.clients.sshauth}): the key ring of the people's
    keys, a key with a good signature its person (L{Login}), nothing else;
  - the connection service (L{Connection}): one session channel a
    connection, nothing else (no port forwarding, agent or X11 channels);
    no data past the window;
  - the people logged in (L{Person}), whose key a reload may take away;
  - the listener (L{GatewaySSHFactory}): C{allow=}, and bounds on the
    connections logging in at once and on new connections, in all and
    from one address.

The host key is L{serialgw.clients.sshhostkey}; a connection's transport
L{serialgw.clients.sshtransport}, and its session channel (a client of its
line) L{serialgw.clients.sshsession}; the numbers L{serialgw.clients.sshlimits}.
"""

from __future__ import annotations

import ipaddress
import math
import struct
import weakref
from typing import Any, Callable, Mapping, Optional, Sequence

import attrs
from twisted.conch.avatar import ConchUser
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import common, connection, keys
from twisted.conch.ssh.transport import (
    DISCONNECT_PROTOCOL_ERROR,
)
from twisted.cred.portal import IRealm, Portal
from twisted.internet.protocol import Factory
from twisted.logger import LogLevel
from zope.interface import implementer

from serialgw.clients import sshlimits
from serialgw.clients.factory import Refused, samePlace
from serialgw.clients.sshauth import KeyChecker, KeyRing, Login, UserAuth
from serialgw.clients.sshfaults import conchLog, sshPeer, sshSource
from serialgw.clients.sshhostkey import SSHError as SSHError
from serialgw.clients.sshhostkey import loadHostKey
from serialgw.clients.sshpassword import PasswordBook, PasswordChecker, PasswordChecks
from serialgw.clients.sshsession import LIST_WINDOW, LIST_WORK, SSHClient
from serialgw.clients.sshtransport import ServerTransport, TransportFactory
from serialgw.clients.transports import SourceCounts, addressAllowed, admittedBy, describeAddress, sourceOf
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.people import PERSON_SESSIONS, SSHSpec, UserSpec
from serialgw.config.sshkeys import asciiName, fingerprint
from serialgw.line.hub import Line, lineNamed
from serialgw.logflood import ListenerKey, clientLog

# Limited per peer: what a client sends cannot flood the log (logflood).
log = clientLog()


# The connection service

# The smallest packet a session's client may take (OpenSSH's take 32768):
# at 1 byte a packet, a read-only person's session cost the reactor 14 us a
# byte of its line's output, so that a busy line took the whole core.
MIN_MAX_PACKET = 1024


# Global requests OpenSSH sends in every session or now and then: refused at debug, not said at info.
QUIET_GLOBAL_REQUESTS = (b"keepalive@openssh.com", b"no-more-sessions@openssh.com")


class Connection(connection.SSHConnection):
    """
    conch's ssh-connection, opening one session channel and nothing else
    (no port forwarding, no agent or X11 channels), refused quietly.
    """

    _log = conchLog
    sessions = 0

    def ssh_CHANNEL_OPEN(self, packet: bytes) -> None:
        transport: Any = self.transport
        try:
            channelType, rest = common.getNS(packet)
            senderChannel, _, maxPacket = struct.unpack(">3L", rest[:12])
        except (struct.error, ValueError):
            log.info("ssh: {address}: malformed channel open: disconnected", address=sshPeer(transport),
                     peer=sshSource(transport))
            transport.loseConnection()
            return
        if channelType != b"session" or self.sessions or maxPacket < MIN_MAX_PACKET:
            why = ("only sessions" if channelType != b"session" else "one session a connection" if self.sessions
                   else f"maximum packet under {MIN_MAX_PACKET} bytes")
            log.info("ssh: {address}: channel '{kind}' refused: {why}", address=sshPeer(transport), peer=sshSource(transport),
                     kind=asciiName(channelType), why=why)
            transport.sendPacket(
                connection.MSG_CHANNEL_OPEN_FAILURE,
                struct.pack(">2L", senderChannel, connection.OPEN_ADMINISTRATIVELY_PROHIBITED)
                + common.NS(why.encode()) + common.NS(b""),
            )
            return
        self.sessions += 1
        connection.SSHConnection.ssh_CHANNEL_OPEN(self, packet)

    def gotGlobalRequest(self, requestType: bytes, data: bytes) -> Any:
        # Refused (conch's avatar would look for a global_* method by the
        # client's name), with a line: OpenSSH -R was refused without a word.
        transport: Any = self.transport
        level = LogLevel.debug if requestType in QUIET_GLOBAL_REQUESTS else LogLevel.info
        log.emit(level, "ssh: {address}: global request '{request}' refused", address=sshPeer(transport),
                 peer=sshSource(transport), request=asciiName(requestType))
        return 0

    def ssh_CHANNEL_DATA(self, packet: bytes) -> None:
        if not self._pastWindow(packet[:4], packet[4:8]):
            connection.SSHConnection.ssh_CHANNEL_DATA(self, packet)

    def ssh_CHANNEL_EXTENDED_DATA(self, packet: bytes) -> None:
        if not self._pastWindow(packet[:4], packet[8:12]):
            connection.SSHConnection.ssh_CHANNEL_EXTENDED_DATA(self, packet)

    def _pastWindow(self, number: bytes, length: bytes) -> bool:
        # conch logs an error and asks to close the channel, again for every
        # such packet while the client does not answer: one line, disconnected.
        # A packet cut short or naming no channel of ours is conch's to read
        # (and raise on: the client's malformed packet, see clientsFault).
        if len(number) < 4 or len(length) < 4:
            return False
        channel = self.channels.get(struct.unpack(">L", number)[0])
        if channel is None:
            return False
        size = struct.unpack(">L", length)[0]
        if size <= channel.localWindowLeft and size <= channel.localMaxPacket:
            return False
        transport: Any = self.transport
        log.info("ssh: {address}: {size} bytes past the channel's window: disconnected", address=sshPeer(transport),
                 peer=sshSource(transport), size=size)
        transport.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"data past the window")
        return True

    def adjustWindow(self, channel: Any, bytesToAdd: int) -> None:
        # A session that does not take input now gets no more window (it
        # opens again when it does): bounded input, whatever the client sends.
        if isinstance(channel, SSHClient) and channel.readingPaused:
            return
        connection.SSHConnection.adjustWindow(self, channel, bytesToAdd)


@implementer(IRealm)
class Realm:
    def __init__(self, gateway: SSHGateway) -> None:
        self.gateway = gateway

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Callable[[], None]]:
        if IConchUser not in interfaces:
            raise NotImplementedError("only SSH users here")
        avatar = Person(avatarId, self.gateway)
        self.gateway.people.add(avatar)
        return IConchUser, avatar, lambda: self.gateway.people.discard(avatar)


class Person(ConchUser):  # type: ignore[misc]
    """A logged-in person: may open one session."""

    def __init__(self, login: Login, gateway: SSHGateway) -> None:
        ConchUser.__init__(self)
        self.login = login
        self.gateway = gateway
        self.session: Optional[SSHClient] = None
        # Set by conch's connection service once logged in.
        self.conn = None
        self.channelLookup[b"session"] = self._session

    def _session(self, remoteWindow: int, remoteMaxPacket: int, data: bytes, avatar: Any) -> SSHClient:
        self.session = SSHClient(self.gateway, self.login, remoteWindow=remoteWindow,
                                 remoteMaxPacket=remoteMaxPacket, avatar=avatar)
        return self.session

    def revoke(self) -> None:
        """The key (or password) this person logged in with is no longer theirs (a reload): told, and disconnected."""
        if self.login.password:
            log.info("ssh: {user}: the password they logged in with was changed or removed: disconnected",
                     user=self.login.user)
            self.dismiss(f"{self.login.user}: your password was changed or removed")
            return
        log.info("ssh: {user}: the key {fingerprint} is no longer theirs: disconnected", user=self.login.user,
                 fingerprint=fingerprint(keys.Key.fromString(self.login.key)))
        self.dismiss(f"{self.login.user}: your key was removed")

    def holdTo(self, spec: ListenerSpec) -> None:
        """
        The SSH listener's new options (a reload): an C{allow=} that no
        longer admits this person's address disconnects them (told); C{ro}
        makes their session read-only (told, the others too).
        """
        session = self.session
        if self.conn is None or (session is not None and session.leaving):
            return
        transport: Any = self.conn.transport
        peer = transport.transport.getPeer()
        if not admittedBy(spec.allow, peer):
            log.info("ssh: {user} ({peer}) disconnected: not in {allow}, [ssh] listen changed by a reload",
                     user=self.login.user, peer=describeAddress(peer), allow=",".join(spec.allow))
            self.dismiss("your address is no longer allowed over SSH (a reload changed [ssh] listen): disconnected")
        elif spec.readOnly and session is not None and session.line is not None:
            session.line.makeReadOnly(session, "a reload made the SSH listener read-only")

    def dismiss(self, notice: str) -> None:
        """Told C{notice} (if its session is on a line), and disconnected (a reload: what it typed and waits for the device dropped)."""
        session = self.session
        if session is not None and session.line is not None:
            if not session.leaving:
                session.line.dropTyped(session)
            # Off the line at once, its input no longer handled, and cut if
            # the client does not close within CLOSE_GRACE s: closing the
            # channel alone left a client that ignores the close typing (and
            # sending breaks) on the line for as long as it liked.
            if not session.leaving:
                session.notice(notice)
                session.disconnect(notice)
            return
        if self.conn is not None:
            transport: Any = self.conn.transport
            if isinstance(transport, ServerTransport):
                transport.finish()
            else:
                transport.transport.loseConnection()


class SSHGateway:
    """What the SSH side needs of the gateway: its lines (by name), the listener's options, a clock."""

    def __init__(self, lines: Callable[[], Mapping[str, Line]], spec: ListenerSpec, clock: Any,
                 sessionsPerPerson: int = PERSON_SESSIONS) -> None:
        self.lines = lines
        self.spec = spec
        self.clock = clock
        # Everyone logged in now (a reload's new keys are checked against them).
        self.people: set[Person] = set()
        # Each person's sessions on a line (attached, until their channel closes), at most
        # sessionsPerPerson on all lines together ([ssh] sessions-per-person; a reload's applies to
        # the sessions that start afterwards).
        self.sessions: dict[str, set[SSHClient]] = {}
        self.sessionsPerPerson = sessionsPerPerson
        # Each person's lines looked at for lists of a refused session since their window's start (listWork).
        self._listed: dict[str, tuple[float, int]] = {}

    def attached(self, session: SSHClient) -> None:
        self.sessions.setdefault(session.login.user, set()).add(session)

    def detached(self, session: SSHClient) -> None:
        mine = self.sessions.get(session.login.user)
        if mine is not None:
            mine.discard(session)
            if not mine:
                del self.sessions[session.login.user]

    def sessionsOf(self, user: str) -> int:
        """How many sessions C{user} has on the lines, all together."""
        return len(self.sessions.get(user, ()))

    def line(self, name: str) -> Optional[Line]:
        return lineNamed(self.lines(), name)

    def linesFor(self, user: str) -> list[str]:
        """The lines C{user} may use, by name."""
        return sorted(name for name, line in self.lines().items() if line.rights.of(user) is not None)

    def listWork(self, user: str) -> Optional[int]:
        """
        Count a list of C{user}'s lines (it looks at every line, about 1 us
        each) against their L{LIST_WORK} lines a L{LIST_WINDOW}: None, it
        may be made; or the lines looked at for them already this window
        (one list a window is always made).  A person's own: one asking in
        a loop does not take the lists of others.
        """
        now = self.clock.seconds()
        if len(self._listed) >= 256:
            # (People are the configuration's; those whose window is over are let go.)
            self._listed = {who: (start, used) for who, (start, used) in self._listed.items()
                            if now - start < LIST_WINDOW}
        start, used = self._listed.get(user, (float("-inf"), 0))
        if now - start >= LIST_WINDOW:
            start, used = now, 0
        cost = len(self.lines())
        if used and used + cost > LIST_WORK:
            return used
        self._listed[user] = (start, used + cost)
        return None


class GatewaySSHFactory(TransportFactory):
    """
    The SSH listener: host key, key ring, the gateway's lines.  At most
    C{maxStartups} connections may be logging in at once (sshd's
    MaxStartups), at most C{maxStartupsPerSource} of them from one address
    (sshd's PerSourceMaxStartups: one client cannot take every place);
    each has C{loginGrace} seconds.  One logged in counts until it starts
    a session.
    """

    _log = conchLog
    protocol = ServerTransport
    services = {b"ssh-userauth": UserAuth, b"ssh-connection": Connection}
    noisy = False
    maxStartups = 32
    maxStartupsPerSource = 8
    loginGrace = 120.0

    def __init__(self, hostKey: keys.Key, ring: KeyRing, gateway: SSHGateway, users: Sequence[UserSpec] = ()) -> None:
        self.privateKeys = {hostKey.sshType(): hostKey}
        self.publicKeys = {hostKey.sshType(): hostKey.public()}
        self.primes = None
        self.gateway = gateway
        self.clock = gateway.clock
        self.checker = KeyChecker(ring)
        self.passwords = PasswordChecker(PasswordBook(users), PasswordChecks(self.clock))
        self.portal = Portal(Realm(gateway), [self.checker, self.passwords])
        # Connections logging in, in all and per address; and they, the oldest first.
        self.startups = SourceCounts()
        self.pending: dict[ServerTransport, None] = {}
        # New connections made lately, per source and in all (shared fairly); sources that logged in
        # lately, with the new connections each may still open past the bound in all.
        self.newConnections = sshlimits.Buckets(sshlimits.SOURCE_BURST, sshlimits.SOURCE_RATE, sshlimits.MAX_SOURCES)
        self.allConnections = sshlimits.FairShare()
        self.known: dict[str, int] = {}
        self.logins = sshlimits.Buckets(sshlimits.PERSON_LOGINS, sshlimits.PERSON_LOGIN_RATE, sshlimits.MAX_SOURCES)
        # Each person's messages this second, while they have a connection with a session.
        self.seconds: weakref.WeakValueDictionary[str, sshlimits.Second] = weakref.WeakValueDictionary()
        # The log budget of refusals that do not name one source (logflood).
        self.refusalKey = ListenerKey(f"ssh listener {gateway.spec.text or gateway.spec.endpoint}")
        self.allow = [ipaddress.ip_network(a, strict=False) for a in gateway.spec.allow]

    def setUsers(self, users: Sequence[UserSpec]) -> None:
        """
        New people, keys and passwords (a reload).  Sessions stay, but for
        a person whose key is no longer theirs (removed, or the person
        removed), or whose password changed, if they logged in with it.
        """
        ring = self.checker.ring = KeyRing(users)
        book = self.passwords.book = PasswordBook(users)
        for person in list(self.gateway.people):
            login = person.login
            hashed = book.of(login.user)
            if (login.password != (hashed.text if hashed is not None else None) if login.password
                    else ring.people.get(login.key) != login.user):
                person.revoke()

    def setListener(self, spec: ListenerSpec) -> ListenerSpec:
        """
        The listener's new options (a reload; its endpoint stays until a
        restart, said): sessions that start from now on take them all;
        C{ro} and an C{allow=} that no longer admits an address reach those
        already there (L{Person.holdTo}: they were left writing until a
        restart).  Return the listener as it runs now.
        """
        running = self.gateway.spec
        if not samePlace(spec, running):
            log.warn("reload: [ssh] listen's endpoint changed: restart the gateway to listen there (its options "
                     "apply now)")
        spec = attrs.evolve(spec, endpoint=running.endpoint, host=running.host, port=running.port, path=running.path)
        self.gateway.spec = spec
        self.allow = [ipaddress.ip_network(a, strict=False) for a in spec.allow]
        for person in list(self.gateway.people):
            person.holdTo(spec)
        return spec

    def buildProtocol(self, addr: Any) -> Any:
        # Refusals are logged per address, not per connection (each has its
        # own port): a connection flood gets the log's per-peer budget once.
        peer = sourceOf(addr)
        if self.allow and not addressAllowed(addr, self.allow):
            log.warn("ssh: connection from {peer} refused: not in {allow}", peer=peer,
                     allow=",".join(self.gateway.spec.allow))
            return None
        if self.startups.of(peer) >= self.maxStartupsPerSource:
            log.warn("ssh: connection from {peer} refused: {count} connections from there already logging in",
                     peer=peer, count=self.startups.of(peer))
            return None
        refused = self._tooMany(peer)
        if refused is not None:
            return refused
        if self.startups.total >= self.maxStartups and not self.pending:
            log.warn("ssh: connection from {peer} refused: {count} connections already logging in",
                     peer=peer, count=self.startups.total)
            return None
        if self.startups.total >= self.maxStartups:
            # The oldest makes room: refusing every new one let a few hosts
            # holding every place (maxStartupsPerSource each, renewed every
            # loginGrace s) keep everyone out.
            oldest = next(iter(self.pending))
            log.warn("ssh: connection from {oldest} cut: {count} connections logging in, the oldest makes room for "
                     "{address}", oldest=describeAddress(oldest.transport.getPeer()) if oldest.transport else "?",
                     count=self.startups.total, address=peer, peer=self.refusalKey)
            oldest.cut()
        transport: Any = Factory.buildProtocol(self, addr)
        transport.supportedPublicKeys = [
            algorithm for key in self.privateKeys.values() for algorithm in key.supportedSignatureAlgorithms()
        ]
        # No moduli file: no diffie-hellman-group-exchange-* (RFC 4419, the
        # groups a moduli file gives), so the fixed groups and the curves only.
        # By name: Twisted 22.10's conch has no _kex.isDynamicPrimesGroup.
        transport.supportedKeyExchanges = [
            k for k in transport.supportedKeyExchanges if not k.startswith(b"diffie-hellman-group-exchange-")
        ]
        self._counted(peer)
        self.startups.add(peer)
        self.pending[transport] = None
        transport.source = peer
        return transport

    def _tooMany(self, peer: str) -> Optional[Refused]:
        """
        Refused (told in one line), or None: C{peer} opened more new
        connections than its bound, or all together more than theirs (each
        a key exchange, ~2.6 ms of the reactor; their last places for
        sources that took none lately: L{sshlimits.FairShare}); a source
        that logged in lately is held by its own bound only, for
        KNOWN_CREDIT new connections after each login.
        """
        now = self.clock.seconds()
        wait = self.newConnections.wait(peer, now)
        if wait:
            log.warn("ssh: connection from {peer} refused: more new connections from there than {burst} at once, "
                     "then {rate} a second", peer=peer, burst=sshlimits.SOURCE_BURST, rate=f"{sshlimits.SOURCE_RATE:g}")
            return Refused(f"serialgw: too many new SSH connections from {peer}: try again in {math.ceil(wait)} s"
                           "\r\n".encode())
        wait = 0.0 if self.known.get(peer) else self.allConnections.wait(peer, now)
        if wait:
            log.warn("ssh: connection from {address} refused: more new connections in all than {burst} at once, "
                     "then {rate} a second", address=peer, burst=sshlimits.TOTAL_BURST, rate=f"{sshlimits.TOTAL_RATE:g}",
                     peer=self.refusalKey)
            return Refused(f"serialgw: too many new SSH connections: try again in {math.ceil(wait)} s\r\n".encode())
        return None

    def _counted(self, peer: str) -> None:
        """A new connection from C{peer} is let in: one more of its own, and of all or of its exemption's (L{_tooMany})."""
        now = self.clock.seconds()
        self.newConnections.take(peer, now)
        if self.known.get(peer):
            self.known[peer] -= 1
        else:
            self.allConnections.take(peer, now)

    def personSecond(self, person: str) -> sshlimits.Second:
        """The second C{person}'s messages are counted in, shared by their connections (as long as one holds it)."""
        second = self.seconds.get(person)
        if second is None:
            second = self.seconds[person] = sshlimits.Second(person)
        return second

    def loggedIn(self, source: str, person: Optional[str] = None) -> None:
        """
        A connection from C{source} logged in (as C{person}): its next
        KNOWN_CREDIT new connections are held by its own bound only
        (L{_tooMany}), and this one gives its place in that bound back,
        within the person's logins a second.
        """
        now = self.clock.seconds()
        if person is not None and not self.logins.wait(person, now):
            self.logins.take(person, now)
            self.newConnections.give(source, now)
        self.known.pop(source, None)
        self.known[source] = sshlimits.KNOWN_CREDIT
        while len(self.known) > sshlimits.KNOWN_SOURCES:
            del self.known[next(iter(self.known))]


def makeFactory(spec: SSHSpec, lines: Callable[[], Mapping[str, Line]], clock: Any) -> GatewaySSHFactory:
    """The SSH listener's factory: the host key loaded or made (logged with its fingerprint)."""
    key, made = loadHostKey(spec.hostKey)
    log.info("ssh: host key {path} ({kind} {fingerprint}){made}", path=spec.hostKey,
             kind=key.sshType().decode(), fingerprint=fingerprint(key), made=", made now" if made else "")
    return GatewaySSHFactory(key, KeyRing(spec.users), SSHGateway(lines, spec.listener, clock, spec.sessionsPerPerson),
                             spec.users)


