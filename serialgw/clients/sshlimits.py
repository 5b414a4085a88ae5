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
# Then one sending more in a second (a person types a few, a paste takes a packet of 32 KiB) is not
# read for the rest of the second.
MESSAGES_PER_SECOND = 2000
# Key exchanges a client may start in a minute, its first included (OpenSSH rekeys after gigabytes
# or hours); past them it is cut.  Each costs the gateway a Diffie-Hellman and a host key signature
# (0.4 ms): one logged-in client rekeying without pause made 790 of them a second, and one with no
# key 85 a connection (its 256 messages before a session), 677 a second reconnecting.
KEX_PER_MINUTE = 10



def lastMinute(starts: tuple[float, ...], now: float) -> tuple[float, ...]:
    """The key exchanges started in the last 60 s, one starting at C{now} the last."""
    return tuple(t for t in starts if now - t < 60.0) + (now,)
