"""
C{twistd serialgw --check}: what can be known about a configuration
without opening, binding or creating anything.

The grammar and the keys are checked by parsing (L{serialgw.app.tap.Options});
here, what only shows across lines (two listeners on one port, one device
for two lines) and what the file system says now (a device or a TLS file
that is not there: a warning, since it may come later).  What the start
and a reload refuse or warn of alike is L{serialgw.app.startchecks}.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar

from serialgw.app.startchecks import PAST_RIGHTS, Claims, lockDirProblem, pastRights, unixNameProblem
from serialgw.app.systemdsockets import systemdProblem
from serialgw.clients.local import isSocket, socketThere
from serialgw.clients.logfile import kindOf
from serialgw.clients.streams import regularFileThere
from serialgw.clients.tls import ServerContextFactory, clientOptions
from serialgw.clients.tlsfiles import MAX_PEM_FILE, TLSError, validityProblem
from serialgw.config.baudrates import unusualBaud
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, WatchAllSpec
from serialgw.config.passwords import parse as parseHash
from serialgw.config.paths import NOT_FOLLOWED, notFollowed
from serialgw.config.people import SSHSpec
from serialgw.config.shard import ownListeners
from serialgw.config.specs import LineConfig, isAbstract, quote
from serialgw.devices.access import accessHint
from serialgw.devices.errors import whyNotOpened
from serialgw.devices.links import PTY_SLAVE_MAJORS, isMultiplexer
from serialgw.devices.remotedial import notASocket
from serialgw.devices.uucplock import heldNow

# The most one of --check's looks at a path may take (seconds): one on a
# file system that does not answer (a hard NFS mount gone) stops the check
# there, named, as the start's look at its files (app/startlooks) does;
# it held --check (a unit's ExecStartPre=) for ever.
LOOK_WAIT = 5.0

_T = TypeVar("_T")


class LookHung(Exception):
    """A look of --check's at a path has not returned in LOOK_WAIT s: the message says at what."""


def lookedAtAside(work: Callable[[Callable[[str], None]], _T]) -> _T:
    """
    C{work(looking)} on a thread of its own, which calls C{looking(what)}
    before each look at a path; what it returns or raises.  A look that
    has not returned LOOK_WAIT s after it began (the thread's last call of
    C{looking} that long ago, or longer) raises L{LookHung} naming it: the
    thread is left where it is (a daemon: --check exits).
    """
    at: list[Any] = ["the configuration", 0]  # (what is looked at; how many looks so far)
    lock = threading.Lock()

    def looking(what: str) -> None:
        with lock:
            at[0], at[1] = what, at[1] + 1

    done = threading.Event()
    out: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            out.append((True, work(looking)))
        except BaseException as e:
            out.append((False, e))
        finally:
            done.set()

    try:
        threading.Thread(target=run, name="serialgw --check's looks", daemon=True).start()
    except RuntimeError:
        return work(looking)  # (no thread to be had: looked at here, as before)
    seen = -1
    while not done.wait(LOOK_WAIT):
        with lock:
            what, count = at
        if count == seen:
            raise LookHung(f"{what}: a look at it has not returned in {LOOK_WAIT:g} s (a file system that does not "
                           "answer?); --check stops there")
        seen = count
    ok, value = out[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]

# Listeners whose path is a unix socket's (a dial-out's too); a pty:, file: or pipe: path is a file's.
SOCKETS = (ListenerKind.LISTEN, ListenerKind.CONNECT)


def tlsLoadProblem(spec: ListenerSpec) -> Optional[str]:
    """
    Why the start would refuse a TLS listener's or dial-out's files that
    can be read (cert and key swapped, a key not the certificate's, a CA
    file without a certificate), as it would say it; or None.
    """
    assert spec.tls is not None
    try:
        ServerContextFactory(spec.tls) if spec.kind is ListenerKind.LISTEN else clientOptions(spec.tls)
    except TLSError as e:
        return str(e)
    return None


def checkLines(lines: Sequence[LineConfig], status: Optional[ListenerSpec] = None,
               ssh: Optional[SSHSpec] = None, watchAll: Sequence[ListenerSpec] = (),
               shards: int = 0, looking: Callable[[str], None] = lambda what: None,
               byName: Sequence[ListenerSpec] = ()) -> tuple[list[str], list[str]]:
    """
    Errors (the gateway would not start) and warnings (it would, but
    something is missing now) for a parsed configuration.  With C{shards}
    (--shard I/N: N), the status, SSH and watch-all listeners are each
    process's own copies, all N of them beside every line's.  C{looking}
    is told what is looked at on disk next (see L{lookedAtAside}).
    """
    errors: list[str] = []
    warnings: list[str] = []
    claims = Claims(errors)  # (a reload refuses the lines' clashes too: see lineClashes)

    def take(spec: ListenerSpec, owner: str) -> None:
        problem = unixNameProblem(spec.path) if spec.kind in SOCKETS and spec.path and spec.tls is None else None
        if problem is not None:
            errors.append(f"{owner}: listener {quote(spec.text or spec.endpoint)}: {problem}")
        claims.listener(spec, owner)
        looking(f"{owner}: listener {quote(spec.text or spec.endpoint)}")
        _checkListenerPath(spec, owner, errors, warnings)

    def tlsFiles(spec: ListenerSpec, owner: str) -> None:
        """A TLS listener's files, as the start would read them: not there, not PEM, not loading, expired."""
        if spec.tls is None:
            return
        said = len(warnings)
        for name, path in (("cert", spec.tls.cert), ("key", spec.tls.key), ("ca", spec.tls.ca)):
            if path:
                looking(f"{owner}: listener {quote(spec.text)}: {name} file {quote(path)}")
            if path and not os.access(path, os.R_OK):
                warnings.append(f"{owner}: listener {quote(spec.text)}: {name} file {quote(path)} cannot be read (now)")
            elif path:
                problem = _pemProblem(path)
                if problem is not None:
                    warnings.append(f"{owner}: listener {quote(spec.text)}: {name} file {quote(path)} {problem} "
                                    "(now): the start would refuse it")
        looking(f"{owner}: listener {quote(spec.text)}: its TLS files")
        loads = tlsLoadProblem(spec) if len(warnings) == said else None
        if loads is not None:
            warnings.append(f"{owner}: listener {quote(spec.text)}: {loads} (now): the start would refuse it")
        expired = validityProblem(spec.tls.cert) if spec.tls.cert else None
        if expired is not None:
            warnings.append(f"{owner}: listener {quote(spec.text)}: {expired} (now)")

    # (Two lines on one device or console log are refused when the file is read: config/file.py.)
    for line in lines:
        owner = f"line {quote(line.name)}"
        device = line.device
        claims.device(line)
        problem = unixNameProblem(device.path) if device.kind == "unix" else None
        if problem is not None:
            errors.append(f"{owner}: device {quote(device.describe())}: {problem}")
        looking(f"{owner}: device {quote(device.describe())}")
        if device.kind == "tty" and not os.path.exists(device.path):
            # (Said as the start says it: "did you mean /dev/ttyS0? ..." for device = "ttyS0".)
            why = whyNotOpened(device.path, FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)))
            meant = why.removeprefix(os.strerror(errno.ENOENT))
            warnings.append(f"{owner}: device {quote(device.path)} does not exist (now){meant}")
        elif device.kind == "tty":
            what = _notADevice(device.path)
            if what is not None:
                # (The start opens it, as a tty, for ever: the line stays down.)
                hint = f" (a socket is device = \"unix:{device.path}\")" if what == "a unix socket" else ""
                warnings.append(f"{owner}: device {quote(device.path)} is {what} now, not a serial device: "
                                f"the line would stay down{hint}")
            elif isMultiplexer(device.path):
                # (Refused by the start, and by every reopen: serialgw.devices.ports.)
                warnings.append(f"{owner}: device {quote(device.path)} is the pty multiplexer (/dev/ptmx), not a serial "
                                "device: each open makes a new pty that no program is on; the line would stay down "
                                "(for a pty a program plays the device on, use pty:LINK)")
            elif not _openable(device.path):
                # (The start says the same, and the line stays down: --check said OK.)
                warnings.append(f"{owner}: device {quote(device.path)} cannot be opened read-write (now, by uid "
                                f"{os.getuid()}){accessHint(device.path)}")
        if device.kind == "tty" and line.lock:
            looking(f"{owner}: lock-dir {quote(line.lockDir)}")
            held = heldNow(device.path, line.lockDir) if os.path.exists(device.path) else None
            if held is not None and not _aGateway(held.pid):
                # (A gateway running on the file --check is run on holds its ttys: no news.)
                # (The start's line stays down, tried again, until the holder lets go: --check said OK.)
                warnings.append(f"{owner}: {held} (now): the line would stay down, tried again, until that program "
                                "closes the port")
        problem = lockDirProblem(line)
        if problem is not None:
            errors.append(f"{owner}: {problem}")
        unusual = unusualBaud(line.settings.baudrate)
        if unusual is not None:
            warnings.append(f"{owner}: {unusual}")
        looking(f"{owner}: device {quote(device.describe())}")
        if device.kind == "unix" and not isAbstract(device.path) and not os.path.exists(device.path):
            warnings.append(f"{owner}: socket {quote(device.path)} does not exist (now)")
        elif device.kind == "unix" and (what := notASocket(device.path)) is not None:
            # (Connecting to it says "Connection refused", for ever.)
            warnings.append(f"{owner}: device {quote(device.describe())}: {what} (now): the line would stay down")
        if line.log is not None:
            looking(f"{owner}: log {quote(line.log.path)}")
            directory = os.path.dirname(os.path.abspath(line.log.path))
            if os.path.lexists(line.log.path) and (os.path.islink(line.log.path) or not os.path.isfile(line.log.path)):
                errors.append(f"{owner}: log {quote(line.log.path)} is not a regular file: it is {_kind(line.log.path)}")
            elif not os.path.isdir(directory):
                warnings.append(f"{owner}: the directory of log {quote(line.log.path)} does not exist (now)")
            elif not os.path.lexists(line.log.path) and not _writable(directory):
                warnings.append(f"{owner}: the directory of log {quote(line.log.path)} is not writable (now, by uid "
                                f"{os.getuid()})")
            elif os.path.lexists(line.log.path) and not os.access(line.log.path, os.W_OK):
                warnings.append(f"{owner}: log {quote(line.log.path)} is not writable (now, by uid {os.getuid()})")
            typed = line.log.path + ".typed"  # (log-typed: its twin, in the same directory)
            if line.log.typed != "off" and os.path.lexists(typed) and (os.path.islink(typed) or not os.path.isfile(typed)):
                errors.append(f"{owner}: log-typed file {quote(typed)} is not a regular file: it is {_kind(typed)}")
        if device.kind == "pty" and device.path:
            looking(f"{owner}: device {quote(device.describe())}")
            linkIssue = _linkTaken(device.path)
            directory = os.path.dirname(os.path.abspath(device.path))
            if linkIssue is None and not os.path.isdir(directory):
                # (The start made no link there, the line down for good: --check said OK.)
                linkIssue = f"directory {quote(directory)} does not exist (now)"
            elif linkIssue is None and not _writable(directory):
                linkIssue = f"directory {quote(directory)} is not writable (now, by uid {os.getuid()})"
            if linkIssue is not None:
                warnings.append(f"{owner}: device {quote(device.describe())}: {linkIssue}: the line would start down "
                                "(tried again with backoff)")
        for spec in line.listeners:
            take(spec, owner)
            if pastRights(line, spec):
                warnings.append(f"{owner}: listener {quote(spec.text or spec.endpoint)} {PAST_RIGHTS}")
            problem = systemdProblem(spec.endpoint) if spec.kind is ListenerKind.LISTEN else None
            if problem is not None:
                warnings.append(f"{owner}: listener {quote(spec.text)}: {problem} (now)")
            tlsFiles(spec, owner)
    processes: list[tuple[str, tuple[Optional[ListenerSpec], Optional[SSHSpec], Sequence[ListenerSpec]]]]
    processes = [("", (status, ssh, watchAll))]
    if shards:
        watching = WatchAllSpec(tuple(watchAll))
        copies = [ownListeners(i, status, ssh, watching) for i in range(shards)]
        processes = [(f" of process {i}/{shards}", (own[0], own[1], own[2].listeners if own[2] else ()))
                     for i, own in enumerate(copies)]
    for of, (status_, ssh_, watchAll_) in processes:
        if status_ is not None:
            take(status_, f"the status endpoint{of}")
        for spec in watchAll_:
            take(spec, f"watch-all{of}")
        if ssh_ is not None:
            take(ssh_.listener, f"the SSH listener{of}")
    for spec in byName:  # (not with --shard: refused)
        take(spec, "by-name")
        tlsFiles(spec, "by-name")
    if ssh is not None:
        looking(f"the SSH host key {quote(ssh.hostKey)}")
        _checkHostKey(ssh.hostKey, errors, warnings)
        warnings.extend(ssh.problems)
    return errors, _byDirectory(warnings)


# A warning about a directory a line's log or listener goes in: one [defaults]
# path with {line} made it 2000 warnings for a 1000-line farm, one directory.
_IN_DIRECTORY = re.compile(r"(line '[^']*'): .*?(?:directory '([^']*)'|the directory of log '([^']*)') "
                           r"(does not exist \(now\)|is not writable \(now[^)]*\))")
def passwordsSaid(ssh: Optional[SSHSpec]) -> Optional[str]:
    """Who may log in over SSH with a password, and their hash's kind (never the hash); None: nobody."""
    if ssh is None:
        return None
    said = [f"{u.name} ({parseHash(u.password).describe()})" for u in ssh.users if u.password]
    if not said:
        return None
    return f"ssh: password logins for {len(said)} of {len(ssh.users)} people: {', '.join(said)}"


def _byDirectory(warnings: list[str]) -> list[str]:
    """The warnings, those about one directory said for its first line, then once for all the other lines."""
    seen: dict[tuple[str, str], list[str]] = {}
    kept: list[object] = []
    for warning in warnings:
        match = _IN_DIRECTORY.match(warning)
        if match is None:
            kept.append(warning)
            continue
        owner, directory, log, problem = match.groups()
        key = (directory if directory is not None else os.path.dirname(log), problem)
        owners = seen.setdefault(key, [])
        if not owners or owners[0] == owner:
            kept.append(warning)
        elif owners.count(owners[0]) == len(owners):
            kept.append(key)  # (said once the count is known)
        owners.append(owner)
    said = []
    for item in kept:
        if isinstance(item, str):
            said.append(item)
            continue
        directory, problem = item  # type: ignore[misc]
        owners = seen[(directory, problem)]
        rest = [owner for owner in owners if owner != owners[0]]
        lines = list(dict.fromkeys(rest))
        names = ", ".join(n.removeprefix("line ") for n in lines[1:6]) + (", ..." if len(lines) > 6 else "")
        said.append(f"{lines[0]}, and {len(lines) - 1} more line(s) after it{f' ({names})' if names else ''}: "
                    f"directory {quote(directory)} {problem}, where their logs, listeners or pty links go "
                    f"({len(rest)} warning(s) in one)")
    return said


def _pemProblem(path: str) -> Optional[str]:
    """Why the start would refuse a TLS file that can be read (see serialgw.clients.tlsfiles.readPem: a FIFO hung it), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    return f"is larger than {MAX_PEM_FILE >> 20} MiB" if st.st_size > MAX_PEM_FILE else None


def _notADevice(path: str) -> Optional[str]:
    """What is at a tty device's path when it is no character device (a directory, a regular file, ...), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a unix socket"), (stat.S_ISBLK, "a block device"))
    return next((what for test, what in kinds if test(mode)), None)


def _kind(path: str) -> str:
    """What is at C{path} (not followed), for people: a directory, a FIFO, a socket, a symbolic link, ..."""
    try:
        return kindOf(os.lstat(path).st_mode)
    except OSError:
        return "gone now"


def _aGateway(pid: int) -> bool:
    """Whether process C{pid} runs serialgw (its command line names it): the gateway, running, holds its own ttys' locks."""
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            return b"serialgw" in f.read(65536).split(b"\0")
    except (OSError, ValueError):
        return False


def _openable(path: str) -> bool:
    """Whether this process may open the device at C{path} for reading and writing (a warning only, as L{_writable})."""
    return os.access(path, os.R_OK | os.W_OK)


def _writable(directory: str) -> bool:
    """
    Whether this process may make a file in C{directory}.  A warning only:
    --check may run as another user than the gateway (ExecStartPre= runs
    as the unit's user; a configuration repository's CI does not).
    """
    return os.access(directory, os.W_OK | os.X_OK)


def _linkTaken(link: str) -> Optional[str]:
    """
    Why the gateway could not make its pty's symlink at C{link} (a file, a
    directory, a link to what is not a pty), or None.  A link to a pty is
    left alone: the running gateway's own, or a stale one it takes over.
    """
    if not os.path.lexists(link):
        return None
    if not os.path.islink(link):
        return f"{quote(link)} exists and is not a symlink"
    try:
        st = os.stat(link)
    except OSError:
        return None  # dangling: taken over
    if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in PTY_SLAVE_MAJORS:
        return None
    return f"{quote(link)} is a symlink to {quote(os.readlink(link))}, which is not a pty"


def _checkListenerPath(spec: ListenerSpec, owner: str, errors: list[str], warnings: list[str]) -> None:
    """
    What is at a listener's path now: a file:, pipe:, pty: or unix socket
    path in a directory that is not there is a warning; a directory where
    a file: goes, anything but a socket where a unix socket goes, or a
    link the gateway may not replace where a pty: link goes is an error
    (the start would fail on it, a reload refuse it).
    """
    unix = spec.kind is ListenerKind.LISTEN and spec.tls is None and spec.path and not isAbstract(spec.path)
    if not spec.path or not (unix or spec.kind in (ListenerKind.FILE, ListenerKind.PIPE, ListenerKind.PTY)):
        return
    what = f"{owner}: listener {quote(spec.text or spec.endpoint)}"
    directory = os.path.dirname(os.path.abspath(spec.path))
    if not os.path.isdir(directory):
        warnings.append(f"{what}: directory {quote(directory)} does not exist (now)")
        return
    if not os.path.lexists(spec.path) and not _writable(directory):
        warnings.append(f"{what}: directory {quote(directory)} is not writable (now, by uid {os.getuid()})")
    problem = None
    if spec.kind is ListenerKind.PTY:
        problem = _linkTaken(spec.path)
    elif spec.kind is ListenerKind.FILE and os.path.isdir(spec.path):
        problem = f"{quote(spec.path)} is a directory"
    elif spec.kind in (ListenerKind.FILE, ListenerKind.PIPE):
        # Where it opens: a file:'s path; a pipe:'s pair, or without both of them its path (fifoPair).
        opened = [spec.path]
        if spec.kind is ListenerKind.PIPE and all(os.path.exists(spec.path + end) for end in (".in", ".out")):
            opened = [spec.path + ".in", spec.path + ".out"]
        planted = [p for p in opened if notFollowed(p)]
        sockets = [p for p in opened if isSocket(p)]
        files = [p for p in opened if spec.kind is ListenerKind.PIPE and os.path.isfile(p)]
        problem = (f"{quote(planted[0])} is {NOT_FOLLOWED}" if planted else socketThere(sockets[0]) if sockets
                   else regularFileThere(files[0]) if files else None)
    elif unix and os.path.lexists(spec.path) and not stat.S_ISSOCK(os.lstat(spec.path).st_mode):
        problem = f"{quote(spec.path)} exists and is not a socket"
    if problem is not None:
        errors.append(f"{what}: {problem}")


def _checkHostKey(path: str, errors: list[str], warnings: list[str]) -> None:
    """The SSH host key: one others may read stops the start; one that cannot be made now is a warning."""
    try:
        # As the start reads it: a symlink is not followed there.
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.access(directory, os.W_OK):
            warnings.append(f"the SSH host key {quote(path)} does not exist and cannot be made in {quote(directory)} (now)")
        return
    except OSError as e:
        warnings.append(f"the SSH host key {quote(path)} cannot be read: {e.strerror} (now)")
        return
    if not stat.S_ISREG(mode):
        what = "a symlink (not followed there)" if stat.S_ISLNK(mode) else "not a regular file"
        errors.append(f"the SSH host key {quote(path)} is {what}")
        return
    if mode & 0o077:
        errors.append(f"the SSH host key {quote(path)} may be read by others (mode {mode & 0o777:04o}): chmod 600 it")
        return
    # Read as the start reads it (an empty file, a public key there stop it); nothing is made.
    from serialgw.clients.sshhostkey import SSHError, loadHostKey

    try:
        loadHostKey(path, make=False)
    except SSHError as e:
        errors.append(str(e))
