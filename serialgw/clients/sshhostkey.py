"""
The SSH host key (L{loadHostKey}): made (ed25519, mode 0600) at first
start, read at every start after, refused when others may read it or it
is not a regular file.  And L{SSHError}, why the SSH listener cannot start.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

from twisted.conch.ssh import keys

from serialgw.config.paths import NotRegular, openRegular
from serialgw.config.sshkeys import MAX_KEYS_FILE


class SSHError(Exception):
    """The SSH listener cannot start; the message names what and why."""


# The host key


def loadHostKey(path: str, make: bool = True) -> tuple[keys.Key, bool]:
    """
    The host key at C{path}; if there is no file, a new ed25519 key is made
    there (mode 0600; not with C{make=False}, as --check reads it).  Return
    the key and whether it was made now.  A key others may read is refused,
    as sshd refuses it; so is a symbolic link.
    """
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        # Not opened unless a regular file (a tty there would become the
        # gateway's controlling terminal), nor a symlink followed.
        fd = openRegular(path, follow=False)
    except NotRegular as e:
        if stat.S_ISLNK(e.mode):
            raise SSHError(f"SSH host key {path!r} is a symbolic link (not followed)") from None
        raise SSHError(f"SSH host key {path!r} is not a regular file") from None
    except FileNotFoundError:
        if not make:
            raise SSHError(f"SSH host key {path!r} does not exist") from None
        key = keys.Key(ed25519.Ed25519PrivateKey.generate())
        # Written beside it and linked into place whole: the processes of
        # --shard start at once, and each either makes the key or reads the
        # one another made (never half of it, never a second key).
        directory = os.path.dirname(path) or "."
        try:
            fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".new", dir=directory)
        except FileNotFoundError:
            # The default's /var/lib/serialgw is made by the shipped units'
            # StateDirectory=; started by hand (the README's SSH example) it
            # is often not there, and the gateway makes no directory.
            raise SSHError(f"cannot write SSH host key {path!r}: its directory {directory!r} does not exist (make it, "
                           "mode 700, or give the key another path: --ssh-host-key, host-key in [ssh])") from None
        except OSError as e:
            raise SSHError(f"cannot write SSH host key {path!r}: {e.strerror}") from None
        try:
            try:
                os.write(fd, key.toString("openssh"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(temporary, path)
        except FileExistsError:
            return loadHostKey(path)
        except OSError as e:
            raise SSHError(f"cannot write SSH host key {path!r}: {e.strerror}") from None
        finally:
            os.unlink(temporary)
        return key, True
    except OSError as e:
        if e.errno == errno.ELOOP and os.path.islink(path):
            raise SSHError(f"SSH host key {path!r} is a symbolic link (not followed)") from None
        raise SSHError(f"cannot read SSH host key {path!r}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o077:
            raise SSHError(f"SSH host key {path!r} may be read by others (mode {mode & 0o777:04o}): chmod 600 it")
        data = os.read(fd, MAX_KEYS_FILE)
    finally:
        os.close(fd)
    try:
        key = keys.Key.fromString(data)
    except Exception as e:
        # Not conch's words for a file it cannot place ("cannot guess the
        # type of b'...'"): they quote the whole file, and a host key path
        # that leads to another secret (a password hash) would carry it into
        # the log, 4 MB of it for a file of 1 MiB.
        why = str(e)
        if not data:
            why = "it is empty"
        elif isinstance(e, keys.BadKeyError) and why.startswith("cannot guess the type of"):
            why = "it holds no private key (OpenSSH or PEM)"
        elif len(why) > 100:
            why = why[:100] + "..."
        raise SSHError(f"cannot read SSH host key {path!r}: {why}") from None
    if not key.isPublic() and key.type() in ("Ed25519", "RSA", "EC"):
        return key, False
    raise SSHError(f"SSH host key {path!r} is not a private key")
