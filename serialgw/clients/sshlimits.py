"""
How much an SSH client may make the gateway do: messages before and after
its session starts, and key exchanges (L{serialgw.clients.sshsession}).
"""

from __future__ import annotations

# conch's MSG_KEXINIT (RFC 4253): the client starts a key exchange.
MSG_KEXINIT = 20

# Messages a connection may send before its session starts (a login with ten keys, the key exchange
# and the session's requests: about 50); past them it is cut.  Before a key exchange they cost the
# client nothing, and conch 20 us each: one client kept the reactor busy, with no key.
MESSAGES_BEFORE_SESSION = 256
# Then, a person's connections together sending more in a second (a person types a few, a paste
# takes a packet of 32 KiB), the one that sends is not read for the rest of the second.  (Counted
# a connection, one person's 16 sessions at ~30 us a message took the whole reactor.)
MESSAGES_PER_SECOND = 2000
# Key exchanges a client may start in a minute, its first included (OpenSSH rekeys after gigabytes
# or hours); past them it is cut.  Each costs the gateway a Diffie-Hellman and a host key signature
# (0.4 ms): one logged-in client rekeying without pause made 790 of them a second, and one with no
# key 85 a connection (its 256 messages before a session), 677 a second reconnecting.
KEX_PER_MINUTE = 10
# Key exchanges a person's connections together may start in a minute once their sessions started;
# past them the one that starts one is cut.  (Counted a connection, one person's sessions, 8 on each
# line they may use, could each rekey 10 times a minute: 800 sessions, 133 a second, a third of a core.)
PERSON_KEX_PER_MINUTE = 30



class Second:
    """The messages and bytes a person's connections sent in the second that began at C{start}; their key exchanges of the last minute."""

    __slots__ = ("person", "start", "count", "bytes", "kexes", "__weakref__")

    def __init__(self, person: str) -> None:
        self.person = person
        self.start = float("-inf")
        self.count = 0
        self.bytes = 0
        # When the key exchanges they started in the last minute began (sessions started).
        self.kexes: tuple[float, ...] = ()


def lastMinute(starts: tuple[float, ...], now: float) -> tuple[float, ...]:
    """The key exchanges started in the last 60 s, one starting at C{now} the last."""
    return tuple(t for t in starts if now - t < 60.0) + (now,)

# New connections (a key exchange each, ~2.6 ms of the reactor, logged in or not) a source (an address,
# an IPv6 /64) may open: SOURCE_BURST at once, then SOURCE_RATE a second (0.26% of a core); and all
# sources together: TOTAL_BURST, then TOTAL_RATE a second (at most ~5% of a core in key exchanges).
# Without them one address opening and closing connections, 8 at a time, took the whole reactor.
SOURCE_BURST = 20
SOURCE_RATE = 1.0
TOTAL_BURST = 100
TOTAL_RATE = 20.0
# Sources remembered (~230 KB; the least recently seen forgotten first: it gets a new burst, bounded in all).
MAX_SOURCES = 1024
# Sources that logged in lately, whom the bound in all does not hold (many addresses keeping every
# new connection out still let them in; their own bound holds).
KNOWN_SOURCES = 1024
# ... for at most this many new connections after each login from there: the exemption is the
# address's (a NAT's, an IPv6 /64's), not the person's, and anyone else there had it for as long as
# the address was remembered, at their source's rate.
KNOWN_CREDIT = 10
# The bound in all is shared fairly: its last FAIR_RESERVE connections are for sources that took
# none of it in the last FAIR_WINDOW s.  Taken first come first served, 21 addresses at their own
# bound's rate (one a second each) took all of it, every newcomer refused; now each can take one a
# FAIR_WINDOW of the reserve, and keeping a newcomer out takes TOTAL_RATE * FAIR_WINDOW (1200)
# addresses a minute.  Those remembered are the takers of the last FAIR_WINDOW s, at most
# TOTAL_BURST + TOTAL_RATE * FAIR_WINDOW (1300) by the bound itself; FAIR_SOURCES is a backstop.
FAIR_RESERVE = 50
FAIR_WINDOW = 60.0
FAIR_SOURCES = 2048


class Buckets:
    """
    Token buckets by key: C{burst} at once, then C{rate} a second; at most
    C{size} keys remembered, the least recently used forgotten first (a
    bucket left alone for C{burst / rate} s is full: nothing to remember).
    """

    def __init__(self, burst: int, rate: float, size: int) -> None:
        self.burst, self.rate, self.size = burst, rate, size
        # key: (tokens, when counted), least recently used first.
        self.buckets: dict[str, tuple[float, float]] = {}

    def level(self, key: str, now: float) -> float:
        tokens, then = self.buckets.get(key, (float(self.burst), now))
        # A clock stepped back is no time: nothing added.
        return min(float(self.burst), tokens + max(0.0, now - then) * self.rate)

    def wait(self, key: str, now: float) -> float:
        """Seconds until C{key} has a token (0: it has one now)."""
        return max(0.0, (1.0 - self.level(key, now)) / self.rate)

    def give(self, key: str, now: float) -> None:
        """A token back to C{key} (its bucket no fuller than C{burst})."""
        if key in self.buckets:
            self.buckets[key] = (min(float(self.burst), self.level(key, now) + 1.0), now)

    def take(self, key: str, now: float) -> None:
        tokens = self.level(key, now) - 1.0
        self.buckets.pop(key, None)
        self.buckets[key] = (tokens, now)
        while len(self.buckets) > self.size:
            del self.buckets[next(iter(self.buckets))]

class FairShare:
    """
    The bound in all (L{Buckets} of one key, C{""}), its last C{FAIR_RESERVE}
    connections for sources that took none of it lately (see FAIR_RESERVE).
    """

    def __init__(self) -> None:
        self.bucket = Buckets(TOTAL_BURST, TOTAL_RATE, 1)
        # Source: when it last took a connection of the bound in all; the oldest first.
        self.takers: dict[str, float] = {}

    def wait(self, source: str, now: float) -> float:
        """Seconds until C{source} may have one (0: now)."""
        if not self._tookLately(source, now):
            return self.bucket.wait("", now)
        # It took one lately: only a place past the reserve, in this many seconds at the bound's rate.
        return max(0.0, (FAIR_RESERVE + 1.0 - self.bucket.level("", now)) / self.bucket.rate)

    def _tookLately(self, source: str, now: float) -> bool:
        when = self.takers.get(source)
        # (A clock stepped back is no time: still lately.)
        return when is not None and now - when < FAIR_WINDOW

    def take(self, source: str, now: float) -> None:
        self.bucket.take("", now)
        self.takers.pop(source, None)
        self.takers[source] = now
        while self.takers:
            oldest, when = next(iter(self.takers.items()))
            if len(self.takers) <= FAIR_SOURCES and now - when < FAIR_WINDOW:
                break
            del self.takers[oldest]


# What a message held back by a key exchange costs besides its payload (a tuple, a bytes object).
HELD_MESSAGE_COST = 100

# The longest packet a client may send (OpenSSH's own bound: conch's is 1 MiB, each held whole
# before it is looked at).
MAX_PACKET = 256 * 1024
# Bytes a connection may send before its session starts (a login with ten keys takes about 20 KB);
# past them it is cut.  Each byte is decrypted and checked: 256 messages of 1 MiB cost a core.
BYTES_BEFORE_SESSION = 256 * 1024
# Bytes a person's connections may send a second once their session started (what they type goes
# at the line's speed, through the channel's window); past them the one that sends is not read
# for the rest of the second.
BYTES_PER_SECOND = 4 * 1024 * 1024
# A person's logins that give their connection's place back in its source's bound (a host checking
# its lines over SSH, a person's tmux of 20 consoles): PERSON_LOGINS at once, then
# PERSON_LOGIN_RATE a second; past them a login counts in its source's bound as any connection.
PERSON_LOGINS = 100
PERSON_LOGIN_RATE = 2.0
