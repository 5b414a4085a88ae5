"""
SSH password logins: a person with a C{password} (a hash, L{serialgw.config.passwords})
logs in with the SSH user name C{PERSON+LINE} (or C{PERSON}, then C{exec
LINE}: C{ssh -t ops1@gateway rack4-web1}).

Checking a password is slow by design (scrypt: about 0.1 s of a core), so
it is done off the gateway's thread, L{PasswordChecks}: one at a time, at
most L{WAITING} waiting (past them refused at once), and from one address
(an IPv6 /64) L{SOURCE_BURST} at once, then one every 1 / L{SOURCE_RATE}
s; a password longer than C{passwords.MOST_PASSWORD} bytes is refused
unhashed.  A person with no password, and a name that is nobody's, are checked
against a hash of nothing, as long as a real one: the time taken does not
say who has a password.  A connection checks one password at a time; a
check still waiting its turn when its connection goes is not run (refused,
said why), nor counted against L{WAITING}.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Callable, Optional, Sequence

import attrs
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.sshlimits import MAX_SOURCES, Buckets
from serialgw.config import passwords
from serialgw.config.people import UserSpec
from serialgw.config.sshkeys import printable

# Password checks under way at once (each ~0.1 s of one core, in a thread: the gateway's own thread
# keeps the other), waiting at most, and from one source: SOURCE_BURST at once, then SOURCE_RATE a second.
AT_ONCE = 1
WAITING = 32
SOURCE_BURST = 10
SOURCE_RATE = 0.5

# Why a check that waited its turn was not run.
GONE = "the connection went while its password waited to be checked"

# What a name with no password is checked against when nobody has one: as costly as a hash made, its salt
# and digest random bytes (no password's).
NOBODY = passwords.parse(
    "$scrypt$ln=15,r=8,p=1$cSfcwNJT2cyEjMzJgz8+Ow$WKFSOoSQvIV8+AxfXrKq1vFcTBu4nwwuk8QcdyL2aoo")
# What picks a name's decoy (PasswordBook.decoyFor): the process's own key, so the pick says nothing.
DECOY_KEY = os.urandom(32)


def personAndLine(username: bytes) -> tuple[str, str]:
    """
    The SSH user name of a password login, C{PERSON+LINE} or C{PERSON}: the
    person, and the line ('' if none); L{UnauthorizedLogin} if too long.
    """
    from serialgw.clients.sshauth import splitUserName

    person, line = splitUserName(username)
    return (line, "") if person is None else (person, line)


@implementer(IUsernamePassword)
class PasswordTry:
    """A password given for a login: the SSH user name, the password, where from, and whether it is still wanted."""

    def __init__(self, username: bytes, password: bytes, source: str, wanted: Callable[[], bool]) -> None:
        self.username = username
        self.password = password
        self.source = source
        self.wanted = wanted

    def checkPassword(self, password: bytes) -> bool:  # (IUsernamePassword's; a clear text compared is never ours)
        return False


class PasswordBook:
    """The people's password hashes, by name, and a decoy of each (L{decoyFor})."""

    def __init__(self, users: Sequence[UserSpec] = ()) -> None:
        self.hashes: dict[str, passwords.PasswordHash] = {
            user.name: passwords.parse(user.password) for user in users if user.password}
        # Each person's hash with a random digest (no password's): the same kind, costs and salt's length.
        self.decoys = [attrs.evolve(hashed, text="", digest=os.urandom(len(hashed.digest)))
                       for _, hashed in sorted(self.hashes.items())] or [NOBODY]

    def of(self, person: str) -> Optional[passwords.PasswordHash]:
        return self.hashes.get(person)

    def decoyFor(self, name: str) -> passwords.PasswordHash:
        """
        What C{name}, with no password, is checked against: a person's
        costs, picked by the name (keyed: the same each time, people's
        kinds as often as people have them).  One decoy as costly as a
        made hash let a SHA-512-crypt person's wrong password be refused
        0.2 to 0.5 s sooner than an unknown name's (seen live).
        """
        pick = hmac.digest(DECOY_KEY, name.encode("utf-8", "surrogatepass"), "sha256")
        return self.decoys[int.from_bytes(pick[:8], "big") % len(self.decoys)]


def inThread(work: Callable[[], bool]) -> defer.Deferred[bool]:
    """C{work} in the reactor's thread pool."""
    from twisted.internet import reactor, threads

    pool: Any = reactor
    return threads.deferToThreadPool(pool, pool.getThreadPool(), work)


class PasswordChecks:
    """
    Password checks, off the gateway's thread (C{run}), L{AT_ONCE} at a
    time, the next ones waiting in turn, at most L{WAITING}; a source's
    checks bounded (L{SOURCE_BURST}, L{SOURCE_RATE}).  Refused past a bound,
    or a password past L{passwords.MOST_PASSWORD} bytes (L{UnauthorizedLogin}
    saying which), not checked.
    """

    def __init__(self, clock: Any, run: Callable[[Callable[[], bool]], defer.Deferred[bool]] = inThread) -> None:
        self.clock = clock
        self.run = run
        self.running = 0
        self.waiting: list[tuple[Callable[[], bool], defer.Deferred[bool], Callable[[], bool]]] = []
        self.sources = Buckets(SOURCE_BURST, SOURCE_RATE, MAX_SOURCES)

    def check(self, source: str, hashed: passwords.PasswordHash, password: bytes,
              wanted: Callable[[], bool] = lambda: True) -> defer.Deferred[bool]:
        """
        Whether C{password} is C{hashed}'s, checked in turn; a failure if
        over a bound, or if C{wanted()} is false by its turn (its connection
        went: a hash of ~0.1 s of a core for nobody, and a place of
        L{WAITING} held by a client that is not there).
        """
        if len(password) > passwords.MOST_PASSWORD:
            # (Not hashed: SHA-512-crypt's work grows with its square.  Nothing to learn from its time.)
            return defer.fail(UnauthorizedLogin(f"a password of {len(password)} bytes: at most "
                                                f"{passwords.MOST_PASSWORD}"))
        now = self.clock.seconds()
        if self.sources.wait(source, now):
            return defer.fail(UnauthorizedLogin(f"more password checks from {source} than {SOURCE_BURST} at once, "
                                                f"then 1 every {1 / SOURCE_RATE:g} s"))
        if len(self.waiting) >= WAITING:
            self._dropGone()
        if len(self.waiting) >= WAITING:
            return defer.fail(UnauthorizedLogin(f"{WAITING} password checks waiting already"))
        self.sources.take(source, now)
        done: defer.Deferred[bool] = defer.Deferred()
        self.waiting.append((lambda: hashed.verify(password), done, wanted))
        self._next()
        return done

    def _dropGone(self) -> None:
        """The waiting checks whose connections went are refused, unrun (at most L{WAITING} looked at)."""
        gone = [entry for entry in self.waiting if not entry[2]()]
        if gone:
            self.waiting = [entry for entry in self.waiting if entry not in gone]
            for _, done, _ in gone:
                done.errback(UnauthorizedLogin(GONE))

    def _next(self) -> None:
        while self.running < AT_ONCE and self.waiting:
            work, done, wanted = self.waiting.pop(0)
            if not wanted():
                done.errback(UnauthorizedLogin(GONE))
                continue
            self.running += 1

            def over(result: Any, done: defer.Deferred[bool] = done) -> None:
                self.running -= 1
                self._next()
                if isinstance(result, Failure):
                    done.errback(result)
                else:
                    done.callback(result)

            self.run(work).addBoth(over)


@implementer(ICredentialsChecker)
class PasswordChecker:
    """A person's password, right, logs in as them (a L{Login} with the hash it was checked against)."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, book: PasswordBook, checks: PasswordChecks) -> None:
        self.book = book
        self.checks = checks

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        from serialgw.clients.sshauth import Login

        try:
            person, line = personAndLine(credentials.username)
        except UnauthorizedLogin as e:
            return defer.fail(e)
        hashed = self.book.of(person)
        d = self.checks.check(credentials.source, hashed or self.book.decoyFor(person), credentials.password,
                              credentials.wanted)

        def checked(right: bool) -> Any:
            if hashed is None:
                why = f"{printable(person)!r} has no password" if person else "no person named"
                raise UnauthorizedLogin(why)
            if not right:
                raise UnauthorizedLogin("wrong password")
            if not credentials.wanted():
                raise UnauthorizedLogin("the connection went while its password was checked")
            now = self.book.of(person)
            if now is None or now.text != hashed.text:
                raise UnauthorizedLogin(f"{person}'s password was changed by a reload while it was checked")
            return Login(person, line, password=hashed.text)

        return d.addCallback(checked)
