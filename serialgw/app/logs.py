"""
The log as an administrator reads it.

Under twistd the gateway hands the application its own log observer (an
L{ILogObserver} component, which twistd uses unless C{--logger} or
C{--syslog} is given):

  - under systemd, when C{$JOURNAL_STREAM} names the stream the log goes
    to (stdout), each line is C{<PRIORITY>text}, without a timestamp of
    our own: journald stamps it, and C{journalctl -p warning} works;
  - otherwise the observer twistd would have made (file or stdout), fed
    through the same tidying.

Tidying drops what says nothing at info level (Twisted's "Factory
starting on N" and "(TCP Port N Closed)" beside our own "listener ready"),
and rewrites the reconnect messages of dial-outs without object reprs or
sixteen-digit delays.  A start-up error printed by twistd (the
C{SystemExit} text it writes to stderr) is one line as it is.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import types
from typing import Any, Mapping, Optional, TextIO

from twisted.logger import ILogObserver, LogLevel, formatEvent
from twisted.python.logfile import BaseLogFile, LogFile
from zope.interface import implementer

from serialgw.config.parsers import isDecimal
from serialgw.config.specs import describeUnix
from serialgw.devices.backoff import DialEndpoint
from serialgw.devices.remotedial import notASocket

# syslog priorities (RFC 5424) by twisted.logger level.
PRIORITIES = {
    LogLevel.critical: 2,
    LogLevel.error: 3,
    LogLevel.warn: 4,
    LogLevel.info: 6,
    LogLevel.debug: 7,
}

_NOISE = re.compile(r"^(\S+( \(TLS\))? starting on \S+|\((TCP|UDP|UNIX|Port)\b.* Closed\)|Stopping factory .*|Starting factory .*)$")
_OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")


def journalStream(environ: Mapping[str, str] = os.environ, fd: int = 1) -> bool:
    """True when $JOURNAL_STREAM (DEVICE:INODE) is the file open at C{fd}."""
    value = environ.get("JOURNAL_STREAM", "")
    device, colon, inode = value.partition(":")
    if not colon or not isDecimal(device) or not isDecimal(inode):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def describeEndpoint(endpoint: Any) -> str:
    """An endpoint for people: its own repr when it has one, else what it points at."""
    text = repr(endpoint)
    if not _OBJECT_REPR.search(text):
        return text.strip("<>").replace("HostnameEndpoint ", "")
    for name in ("_path", "_wrappedEndpoint", "_host"):
        # Twisted's endpoints keep what they point at in private fields.
        inner = getattr(endpoint, name, None)
        if isinstance(inner, (str, bytes)):
            # A unix socket's abstract name (a NUL first) as @NAME: no NUL byte in the log.
            return describeUnix(inner) if name == "_path" else inner.decode() if isinstance(inner, bytes) else inner
        if inner is not None:
            return describeEndpoint(inner)
    return _OBJECT_REPR.sub(r"\1", text)


class LineDialEndpoint(DialEndpoint):
    """
    A line's dial-out (L{DialEndpoint}): its retry message names the line
    (two lines dialling one peer read alike), and, for a unix path that
    is no socket, what is there (it said "Connection refused", as a
    C{unix:} device's did).
    """

    def __init__(self, wrapped: Any, backoff: Any, line: str, path: str = "") -> None:
        DialEndpoint.__init__(self, wrapped, backoff)
        self.line = line
        self.path = path

    def connect(self, factory: Any) -> Any:
        def failed(failure: Any) -> Any:
            self.lastOutcome = (notASocket(self.path) if self.path else None) or self.lastOutcome
            return failure

        return DialEndpoint.connect(self, factory).addErrback(failed)


def tidy(event: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The event as it should be logged, or None when it says nothing."""
    if "log_legacy" in event or event.get("log_namespace") == "log_legacy":
        if _NOISE.match(formatEvent(event)):
            return None
    format_ = event.get("log_format") or ""
    if format_.startswith("Scheduling retry") and "endpoint" in event:
        delay = event.get("delay", 0)
        # Why, when the endpoint kept it: a name that does not resolve and a
        # refused connection read alike otherwise, and a peer that accepted and
        # closed is no "cannot connect".
        # and the attempt counted since a link last lasted (ClientService's own
        # count starts again at every connection: a peer that accepts and
        # closes at once was "retry 1" for ever).
        endpoint = event["endpoint"]
        why = endpoint.lastOutcome if isinstance(endpoint, DialEndpoint) else None
        attempt = endpoint.attempt if isinstance(endpoint, DialEndpoint) else None
        what = "cannot connect" if why is None else "connection closed" if why == "" else f"cannot connect: {why}"
        line = endpoint.line if isinstance(endpoint, LineDialEndpoint) else None
        return {**event, "log_format": ("line {line}: " if line is not None else "") + "{endpoint}: "
                + what.replace("{", "{{").replace("}", "}}") + "; retry {attempt} in {delay:.1f} s",
                "line": line, "endpoint": describeEndpoint(endpoint),
                "attempt": event.get("attempt") if attempt is None else attempt,
                "delay": delay if isinstance(delay, (int, float)) else 0.0}
    return event


def isStartupError(event: dict[str, Any]) -> bool:
    """What twistd writes to stderr for our SystemExit: C{serialgw: error: ...}."""
    return event.get("log_namespace") == "stderr" and formatEvent(event).startswith("serialgw: ")


@implementer(ILogObserver)
class JournalObserver:
    """Lines of C{<PRIORITY>text} on a stream journald reads; tracebacks too, line by line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        priority = PRIORITIES.get(event.get("log_level", LogLevel.info), 6)
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text += "\n" + failure.getTraceback()
        lines = text.rstrip("\n").split("\n")
        self.stream.write("".join(f"<{priority}>{line}\n" for line in lines))
        self.stream.flush()


@implementer(ILogObserver)
class TidyObserver:
    """
    Tidied events to C{inner}; a start-up error goes to the real stderr as
    the one line it is (and to C{inner} too when that is not the terminal's
    stdout).
    """

    def __init__(self, inner: Any, toStdout: bool, stderr: Optional[TextIO] = None) -> None:
        self.inner = inner
        self.toStdout = toStdout
        self.stderr = stderr

    def __call__(self, event: dict[str, Any]) -> None:
        if self.stderr is not None and isStartupError(event):
            self.stderr.write(formatEvent(event).rstrip("\n") + "\n")
            self.stderr.flush()
            if self.toStdout:
                return
        tidied = tidy(event)
        if tidied is not None:
            self.inner(tidied)


def twistdObserver(twistdOptions: Any, environ: Mapping[str, str] = os.environ) -> Optional[Any]:
    """
    The observer for twistd's application, from twistd's own options; None
    when the user chose one (C{--logger}, C{--syslog}).
    """
    if twistdOptions is None or twistdOptions.get("logger") or twistdOptions.get("syslog"):
        return None
    logfile = twistdOptions.get("logfile") or ""
    toStdout = logfile == "-" or (bool(twistdOptions.get("nodaemon")) and not logfile)
    if toStdout and journalStream(environ, 1):
        return TidyObserver(JournalObserver(sys.stdout), toStdout=False)
    from twisted.scripts._twistd_unix import UnixAppLogger

    inner = UnixAppLogger(twistdOptions)._getLogObserver()
    return TidyObserver(inner, toStdout, stderr=sys.stderr)


def twistdLogFile(handler: Any) -> Optional[BaseLogFile]:
    """
    twistd's log file, from the SIGUSR1 handler twistd installs for it
    (twistd keeps the file nowhere else); None when it writes none.
    """
    for cell in (handler.__closure__ if isinstance(handler, types.FunctionType) else None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, BaseLogFile):
            return value
    return None


def appendOnly(logFile: Optional[BaseLogFile]) -> None:
    """
    twistd opens its log for writing at an offset: set O_APPEND, so after
    logrotate's copytruncate it writes at the start again, not past a hole.
    """
    if logFile is None or logFile.closed:
        return
    import fcntl

    fd = logFile._file.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)


def rotatedOnlyIfAFile(logFile: Optional[BaseLogFile]) -> None:
    """
    twistd rotates its log file past 1 MB by renaming its path and making a
    new file there, whatever the path is: C{--logfile=/dev/null} (the bench's
    way to drop the log) run as root renamed /dev/null to /dev/null.1 and
    left a regular file in its place, for every program on the machine.  A
    log that is no regular file (a device, a FIFO, a terminal) is not rotated.
    """
    if logFile is None or logFile.closed or not isinstance(logFile, LogFile):
        return
    if not stat.S_ISREG(os.fstat(logFile._file.fileno()).st_mode):
        logFile.rotateLength = 0
