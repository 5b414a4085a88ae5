"""
Who may use a line and the people who log in, as frozen values: a line's
rights (L{Rights}: writers, watchers, admins by name), a person
(L{UserSpec}: OpenSSH keys, a password's hash) and the SSH listener with its
people (L{SSHSpec}) and its bounds.  Nothing here does I/O.
"""

from __future__ import annotations

from typing import Optional

import attrs

from serialgw.config.listenerspecs import ListenerSpec


@attrs.frozen
class Rights:
    """
    Who may type on a line (C{write}) and who may only watch (C{read}):
    user names, C{"*"} for every user, C{"!NAME"} taking a user out of
    that list whatever else it says (conserver's C{rw *,!bob}).  A line
    with neither lets every user write.  Users are people known by name:
    SSH key owners, TLS client certificates (CN).
    """

    write: Optional[tuple[str, ...]] = None
    read: Optional[tuple[str, ...]] = None
    # Who may disconnect others from the line (conserver's admin; the escape menu's K).
    admin: Optional[tuple[str, ...]] = None

    def isAdmin(self, user: Optional[str]) -> bool:
        """Whether C{user} (None: a client that is no person) may disconnect others from the line."""
        return user is not None and _names(self.admin, user)

    def of(self, user: str) -> Optional[str]:
        """C{"write"}, C{"read"}, or None: C{user} may not use the line."""
        if self.write is None and self.read is None:
            return "write"
        if _names(self.write, user):
            return "write"
        if _names(self.read, user):
            return "read"
        return None


def _names(names: Optional[tuple[str, ...]], user: str) -> bool:
    """
    Whether a write or read list names C{user}: by name or C{*}, and not
    taken out (C{!user}).  A C{!NAME} entry never names a person called
    C{!NAME} (a TLS certificate's CN is any text): it only takes NAME out.
    """
    if names is None:
        return False
    named = user in names and not user.startswith("!")
    return (named or "*" in names) and "!" + user not in names


@attrs.frozen
class UserSpec:
    """A person: a name, the OpenSSH public key lines that are theirs, and their password's hash ('': none)."""

    name: str
    keys: tuple[str, ...] = ()
    # Each key's wire blob as read (off the gateway's thread, L{serialgw.config.sshkeys}): the key
    # ring is made of them, reading no key again on the gateway's thread.  Empty: not read yet.
    blobs: tuple[bytes, ...] = attrs.field(default=(), eq=False, repr=False)
    # Their password's hash (serialgw.config.passwords: checked as read), for SSH password logins.
    password: str = attrs.field(default="", repr=False)


DEFAULT_HOST_KEY = "/var/lib/serialgw/ssh_host_ed25519_key"
# SSH sessions one person may have at once, on all lines together ([ssh] sessions-per-person; at most
# MAX_PERSON_SESSIONS): with 8 a line alone, a person with read = ["*"] on 1000 lines could hold 8000
# (about 375 KB each: 3 GB).
PERSON_SESSIONS = 32
MAX_PERSON_SESSIONS = 1024


@attrs.frozen
class SSHSpec:
    """The SSH listener: where, its host key (made at first start), the people who may log in."""

    listener: ListenerSpec
    hostKey: str = DEFAULT_HOST_KEY
    users: tuple[UserSpec, ...] = ()
    # What was wrong with the people's keys files (a file in a person's home is theirs to break):
    # each such person has no keys from it, said at the start, at a reload and by --check.
    problems: tuple[str, ...] = ()
    # Sessions a person may have at once, on all lines together.
    sessionsPerPerson: int = PERSON_SESSIONS
