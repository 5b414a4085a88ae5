"""
SSH logins: who is who.  A person's public key names them (L{KeyRing}, read
by C{serialgw.config.sshkeys}); L{KeyChecker} lets in a key of the ring with
a good signature (L{Login}: the person, and the line the SSH user name
names: C{LINE}, or C{PERSON+LINE} naming the key's person too); a
person's password is checked by L{serialgw.clients.sshpassword} (offered
only while somebody has one, by C{password} and by keyboard-interactive's
one prompt); L{UserAuth}
is conch's ssh-userauth with sshd's limits, refusals logged with the key's
fingerprint (or the user name) and the address, a bad signature cutting the
connection.

The rest of the SSH listener is L{serialgw.clients.ssh}.
"""

from __future__ import annotations

import struct
from typing import Any, Optional, Sequence

import attrs
from twisted.conch.error import IgnoreAuthentication, ValidPublicKey
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import common, keys, userauth
from twisted.conch.ssh.transport import (
    DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
    DISCONNECT_PROTOCOL_ERROR,
    DISCONNECT_SERVICE_NOT_AVAILABLE,
)
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.sshfaults import conchLog, sshPeer, sshSource
from serialgw.clients.sshpassword import PasswordTry
from serialgw.config.people import UserSpec
from serialgw.config.sshkeys import asciiName, fingerprint, printable, printableBytes, readPublicKeys
from serialgw.logflood import peerLimiter

# Limited per peer (logflood); in the namespace its lines had in serialgw.clients.ssh, which an operator may filter on.
log = Logger(namespace="serialgw.clients.ssh", observer=peerLimiter)


# Who is who


# An SSH user name's length at most, in bytes: PERSON+LINE is a person's name (a [users.NAME]'s 128
# characters; in single-line mode a key comment's 64 printable ones, up to 256 bytes of UTF-8), '+' and
# a line's name (128).  A longer one is refused unread (a login held the whole name, up to a packet's
# 256 KiB, for as long as its connection lasted).
MOST_USER_NAME = 512


def splitUserName(username: bytes) -> tuple[Optional[str], str]:
    """
    An SSH user name: C{PERSON+LINE} is C{(PERSON, LINE)}, a name without
    '+' C{(None, NAME)}.  The last '+' splits: a line's name holds none,
    a person's named by a key's comment (single-line mode) may.  Past
    L{MOST_USER_NAME} bytes, L{UnauthorizedLogin} saying its length.
    """
    if len(username) > MOST_USER_NAME:
        raise UnauthorizedLogin(f"a user name of {len(username)} bytes: at most {MOST_USER_NAME}")
    person, plus, line = username.decode("utf-8", "replace").rpartition("+")
    return (person if plus else None), line


@attrs.frozen
class Login:
    """A person logged in (with a key or a password), and the line their SSH user name named ('' if none)."""

    user: str
    line: str
    # The key they logged in with (its blob): a reload that takes it from them ends their connection.
    key: bytes = b""
    # Or the password hash their password was checked against: a reload that changes it ends it too.
    password: str = attrs.field(default="", repr=False)


class KeyRing:
    """Public keys and the people they belong to."""

    def __init__(self, users: Sequence[UserSpec] = ()) -> None:
        self.people: dict[bytes, str] = {}
        for user in users:
            # As read off the gateway's thread (a reload), or read now (a test's people); each file
            # and table was bounded as read: a person may have more in all.
            blobs = user.blobs if len(user.blobs) == len(user.keys) else [
                key.blob for key in readPublicKeys("\n".join(user.keys), f"keys of {user.name}", most=None)]
            for blob in blobs:
                self.people[blob] = user.name

    def person(self, blob: bytes) -> Optional[str]:
        try:
            blob = keys.Key.fromString(blob).blob()
        except Exception:
            return None
        return self.people.get(blob)


class MalformedRequest(ValueError):
    """A login request whose strings do not fit its packet: says which and how (L{readStrings})."""


def readStrings(data: bytes, names: Sequence[str]) -> tuple[list[bytes], bytes]:
    """
    The SSH strings C{names} (uint32 length, then its bytes) at the start
    of C{data}, and what follows them; L{MalformedRequest} naming the first
    that is cut short or says more bytes than follow (conch's C{getNS}
    raises on a short length and takes what is there of a long string:
    a password saying 1 GiB with 7 bytes after it was those 7).
    """
    values: list[bytes] = []
    at = 0
    for name in names:
        if len(data) - at < 4:
            raise MalformedRequest(f"cut short before its {name}")
        length = struct.unpack(">L", data[at:at + 4])[0]
        left = len(data) - at - 4
        if length > left:
            raise MalformedRequest(f"its {name} says {length} bytes, {left} follow")
        values.append(data[at + 4:at + 4 + length])
        at += 4 + length
    return values, data[at:]


# Login requests a connection may make, whatever their method: a person's client sends "none", its
# keys (each asked, then the right one signed), a keyboard-interactive prompt and a password, fewer
# than 30.  conch counts only failed ones (attemptsBeforeDisconnect): "none", a known key asked
# without a signature and a prompt dropped by the next request went on until the connection's
# messages before a session (sshlimits.MESSAGES_BEFORE_SESSION) ran out.
MOST_LOGIN_REQUESTS = 64

# keyboard-interactive's one prompt (RFC 4256's SSH_MSG_USERAUTH_INFO_REQUEST; conch names 60 only as a client's).
MSG_USERAUTH_INFO_REQUEST = 60
PASSWORD_PROMPT = b"Password: "


class BadSignature(UnauthorizedLogin):
    """A person's key with a signature that is not its own: the connection is cut (L{UserAuth})."""


# Signature algorithms a user's key may log in with (no SHA-1 ssh-rsa, as OpenSSH).
USER_SIGNATURES = (
    b"ssh-ed25519", b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521",
    b"rsa-sha2-512", b"rsa-sha2-256", b"sk-ssh-ed25519@openssh.com", b"sk-ecdsa-sha2-nistp256@openssh.com",
)
# Security keys (FIDO authenticators, OpenSSH's PROTOCOL.u2f), by their blob's type.
SECURITY_KEYS = (b"sk-ssh-ed25519@openssh.com", b"sk-ecdsa-sha2-nistp256@openssh.com")


def touched(blob: bytes, signature: bytes) -> bool:
    """
    Whether a login's signature by key C{blob} was made with the person's
    touch: always for a plain key; for a security key, the flags its
    signature carries (string type, string signature, byte flags, uint32
    counter) have bit 0 (user presence) set, as sshd requires by default.
    conch puts the flags into what the authenticator signed and never looks
    at them: a program on the person's computer could have the key sign,
    without a touch, a login the gateway took.
    """
    try:
        if common.getNS(blob)[0] not in SECURITY_KEYS:
            return True
        flags = common.getNS(signature, 2)[2][:1]
    except Exception:
        return False
    return bool(flags) and bool(flags[0] & 0x01)


@implementer(ICredentialsChecker)
class KeyChecker:
    """
    A key in the ring with a good signature logs in as its person; a key
    in the ring without a signature is answered "go on, sign" (PK_OK);
    anything else is refused.
    """

    credentialInterfaces = (ISSHPrivateKey,)

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def requestAvatarId(self, credentials: Any) -> Any:
        user = self.ring.person(credentials.blob)
        if user is None:
            return defer.fail(UnauthorizedLogin("not an authorized key"))
        # The user name names the line (LINE), or the person too (PERSON+LINE, as a password login's):
        # then the key must be theirs, asked (PK_OK) or signed.
        try:
            named, line = splitUserName(credentials.username)
        except UnauthorizedLogin as e:
            return defer.fail(e)
        if named is not None and named != user:
            return defer.fail(UnauthorizedLogin(f"not a key of {printable(named)!r}"))
        # No SHA-1 ssh-rsa (as OpenSSH), and the signature is of the algorithm the request names.
        if credentials.algName not in USER_SIGNATURES:
            return defer.fail(UnauthorizedLogin(f"signature algorithm {printable(repr(credentials.algName))} refused"))
        if not credentials.signature:
            return defer.fail(ValidPublicKey())
        try:
            if common.getNS(credentials.signature)[0] != credentials.algName:
                return defer.fail(UnauthorizedLogin("the signature is not of the algorithm asked"))
        except Exception:
            return defer.fail(UnauthorizedLogin("unreadable signature"))
        if not touched(credentials.blob, credentials.signature):
            return defer.fail(UnauthorizedLogin("the security key was not touched (user presence)"))
        try:
            good = keys.Key.fromString(credentials.blob).verify(credentials.signature, credentials.sigData)
        except Exception:
            good = False
        if not good:
            return defer.fail(BadSignature("bad signature"))
        return defer.succeed(Login(user, line, keys.Key.fromString(credentials.blob).blob()))


class UserAuth(userauth.SSHUserAuthServer):
    """conch's ssh-userauth, with refused keys logged (fingerprint, address) and sshd's limits."""

    _log = conchLog
    loginTimeout = 120
    attemptsBeforeDisconnect = 10
    # A password check of this connection under way (one at a time); the service stopped (logged in, or gone).
    checking = False
    stopped = False
    # Login requests of this connection so far (MOST_LOGIN_REQUESTS).
    requests = 0

    def serviceStarted(self) -> None:
        userauth.SSHUserAuthServer.serviceStarted(self)
        # Password logins offered only while somebody has a password (a reload may give one).
        checker = self.portal.checkers.get(IUsernamePassword)
        if b"password" in self.supportedAuthentications and not (checker is not None and checker.book.hashes):
            self.supportedAuthentications.remove(b"password")
        if b"password" in self.supportedAuthentications:
            self.supportedAuthentications.append(b"keyboard-interactive")

    def serviceStopped(self) -> None:
        self.stopped = True
        self.asking = None
        userauth.SSHUserAuthServer.serviceStopped(self)

    def _unreadable(self, how: str, what: str, e: MalformedRequest) -> defer.Deferred[Any]:
        """A request of method C{what} whose data did not fit (C{e}): refused (counted), logged naming it."""
        transport: Any = self.transport
        reason = f"unreadable {what} request: {e}"
        log.warn("ssh: " + how + " as {user!r} from {address} refused ({reason})",
                 user=printableBytes(self.user or b""), address=sshPeer(transport), peer=sshSource(transport),
                 reason=reason)
        return defer.fail(UnauthorizedLogin(reason))

    def auth_password(self, packet: bytes) -> Any:
        # (boolean: a new password follows, which is refused unread; string: the password.)
        try:
            if not packet:
                raise MalformedRequest("cut short before its change flag")
            password = readStrings(packet[1:], ("password",))[0][0]
        except MalformedRequest as e:
            return self._unreadable("password login", "password", e).addErrback(self._ebPassword)
        return self._passwordLogin(password, "password login")

    def _passwordLogin(self, password: bytes, how: str) -> defer.Deferred[Any]:
        # Checked off the gateway's thread (sshpassword): one at a time a
        # connection (conch started a check for every request a client sent
        # without waiting), and a login whose connection went meanwhile is none.
        transport: Any = self.transport
        if self.checking:
            d: defer.Deferred[Any] = defer.fail(
                UnauthorizedLogin("a password of this connection is being checked already"))
        else:
            self.checking = True
            credentials = PasswordTry(self.user or b"", password, sshSource(transport), lambda: not self.stopped)
            d = self.portal.login(credentials, None, IConchUser)

            def over(result: Any) -> Any:
                self.checking = False
                return result

            d.addBoth(over)

        def refused(reason: Failure) -> Failure:
            if reason.check(UnauthorizedLogin):
                log.warn("ssh: " + how + " as {user!r} from {address} refused ({reason})",
                         user=printableBytes(self.user or b""), address=sshPeer(transport), peer=sshSource(transport),
                         reason=reason.getErrorMessage())
            return reason

        return d.addErrback(refused).addErrback(self._ebPassword)

    # keyboard-interactive (RFC 4256), offered with password: one prompt, "Password: ", its answer checked
    # as a password (OpenSSH tries it before password, and some clients only it).
    asking: Optional[defer.Deferred[Any]] = None

    def auth_keyboard_interactive(self, packet: bytes) -> Any:
        # (string language tag, string submethods: neither matters, but each is there.)
        try:
            readStrings(packet, ("language tag", "submethods"))
        except MalformedRequest as e:
            return self._unreadable("password login (keyboard-interactive)", "keyboard-interactive", e)
        if self.checking:
            return defer.fail(UnauthorizedLogin("a password of this connection is being checked already"))
        transport: Any = self.transport
        self.asking = defer.Deferred()
        transport.sendPacket(MSG_USERAUTH_INFO_REQUEST,
                             common.NS(b"") + common.NS(b"") + common.NS(b"") + struct.pack(">L", 1)
                             + common.NS(PASSWORD_PROMPT) + b"\x00")
        return self.asking

    def ssh_USERAUTH_INFO_RESPONSE(self, packet: bytes) -> None:
        """The answers to a keyboard-interactive prompt: one, the password, checked as one; else refused."""
        asking, self.asking = self.asking, None
        transport: Any = self.transport
        if asking is None:
            log.info("ssh: {address}: keyboard-interactive answers unasked: disconnected", address=sshPeer(transport),
                     peer=sshSource(transport))
            transport.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"keyboard-interactive answers unasked")
            return
        # uint32 count, then each answer a string: one, the whole packet (conch's getNS takes one cut short).
        count = struct.unpack(">L", packet[:4])[0] if len(packet) >= 4 else -1
        size = struct.unpack(">L", packet[4:8])[0] if count == 1 and len(packet) >= 8 else -1
        password = packet[8:]
        if size != len(password):
            why = f"{count} answers to 1 prompt" if count not in (-1, 1) else "unreadable answers"
            log.warn("ssh: password login (keyboard-interactive) as {user!r} from {address} refused ({reason})",
                     user=printableBytes(self.user or b""), address=sshPeer(transport), peer=sshSource(transport),
                     reason=why)
            asking.errback(UnauthorizedLogin(why))
            return
        self._passwordLogin(password, "password login (keyboard-interactive)").chainDeferred(asking)

    def ssh_USERAUTH_REQUEST(self, packet: bytes) -> Any:
        # Logged in, a person gets the connection service, nothing else: with
        # ssh-userauth next they could log in again and again on one
        # connection, each person kept (never logged out) for ever.
        # Its user, service and method names are read here, each whole or
        # the connection cut saying which (conch's reading raised on one cut
        # short, and took what was there of one too long); and a connection's
        # requests are bounded (MOST_LOGIN_REQUESTS).
        transport: Any = self.transport
        self.requests += 1
        problem = ""
        try:
            service = readStrings(packet, ("user name", "service name", "method name"))[0][1]
        except MalformedRequest as e:
            problem = str(e)
        if self.asking is not None:
            # A new request drops a prompt not answered (RFC 4256 3.2): its login is no more, nothing sent for it.
            asking, self.asking = self.asking, None
            asking.errback(IgnoreAuthentication())
        if problem:
            log.info("ssh: {address}: malformed login request ({error}): disconnected", address=sshPeer(transport),
                     peer=sshSource(transport), error=problem)
            transport.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"malformed login request")
            return None
        if self.requests > MOST_LOGIN_REQUESTS:
            log.info("ssh: {address}: {count} login requests without logging in (at most {most}): disconnected",
                     address=sshPeer(transport), peer=sshSource(transport), count=self.requests,
                     most=MOST_LOGIN_REQUESTS)
            transport.sendDisconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"too many login requests")
            return None
        if service != b"ssh-connection":
            log.info("ssh: {address}: login for service '{service}' refused: disconnected", address=sshPeer(transport),
                     peer=sshSource(transport),
                     service=asciiName(service))
            transport.sendDisconnect(DISCONNECT_SERVICE_NOT_AVAILABLE, b"only ssh-connection after login")
            return None
        return userauth.SSHUserAuthServer.ssh_USERAUTH_REQUEST(self, packet)

    def _ebBadAuth(self, reason: Failure) -> None:
        # A login by another method than a key (never offered: a password
        # guess) is logged as an unknown key is, and so is the cut after
        # too many failed logins: both went unsaid (conch's debug lines).
        transport: Any = self.transport
        user = printableBytes(self.user or b"")
        offered = self.method in (b"none", b"publickey") or self.method in self.supportedAuthentications
        if not offered and not reason.check(IgnoreAuthentication):
            log.warn("ssh: {method} login from {address} refused ({only}); user name {user!r}",
                     method=asciiName(self.method), address=sshPeer(transport),
                     peer=sshSource(transport), user=user,
                     only="public keys and passwords only" if b"password" in self.supportedAuthentications
                     else "public keys only")
        before = self.loginAttempts
        userauth.SSHUserAuthServer._ebBadAuth(self, reason)
        if before <= self.attemptsBeforeDisconnect < self.loginAttempts:
            log.info("ssh: {address}: {count} failed logins: disconnected", address=sshPeer(transport),
                     peer=sshSource(transport), count=self.loginAttempts, user=user)

    def auth_publickey(self, packet: bytes) -> Any:
        try:
            algorithm, blob = common.getNS(packet[1:], 2)[:2]
            if algorithm.endswith(b"-cert-v01@openssh.com"):
                # conch reads no certificate: said as one, not as a key it cannot read.
                what = f"(an OpenSSH certificate, {asciiName(algorithm)})"
                d = defer.fail(UnauthorizedLogin("certificates are not taken: the key itself is"))
            else:
                what = fingerprint(keys.Key.fromString(blob))
                d = userauth.SSHUserAuthServer.auth_publickey(self, packet)
        except Exception:
            # Not a key, or cut short: refused here (conch logs the client's
            # algorithm name whole at error, or raises on a short packet).
            what = "(unreadable key)"
            d = defer.fail(UnauthorizedLogin("unreadable key or request"))

        def refused(reason: Failure) -> Failure:
            bad = reason.check(BadSignature) is not None
            if reason.check(UnauthorizedLogin):
                log.warn("ssh: key {fingerprint} from {address} refused ({reason}); user name {user!r}",
                         fingerprint=what, address=sshPeer(self.transport), peer=sshSource(self.transport),
                         reason=reason.getErrorMessage() + ("; disconnected: a client signs with its own key" if bad
                                                            else ""),
                         user=printableBytes(self.user or b""))
            if bad:
                # One is enough: a person's key is public (anyone may send it with any signature), and
                # each check of a 16384-bit RSA key's signature cost the gateway's thread 6.4 ms, up to
                # 11 times a connection before conch cut it (70 ms).
                transport: Any = self.transport
                transport.sendDisconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"bad signature")
                return Failure(IgnoreAuthentication())
            return reason

        return d.addErrback(refused)
