"""
The files the start reads on the gateway's thread as it opens the
listeners (TLS certificates, keys, CA files) and the SSH listener (its host
key, or the directory it is made in) are read first by a thread of their
own, waited for L{LOOK_WAIT} s at most: one on a file system that does not
answer (a hard-mounted NFS server gone) fails the start, naming it, where
it hung the start for ever before anything was said.  What the look finds
wrong is left to the reading that follows (its errors say it as ever): the
look is only about time.  (A reload reads a TLS listener's files aside the
same way: L{serialgw.app.applying}.)
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional, Sequence

from twisted.internet.interfaces import IReactorThreads

from serialgw.clients.tlsfiles import MAX_PEM_FILE
from serialgw.config.paths import openRegular
from serialgw.config.people import SSHSpec
from serialgw.config.specs import LineConfig

# Seconds the start waits for its look at these files, in all.
LOOK_WAIT = 5.0


def startFiles(configs: Sequence[LineConfig], ssh: Optional[SSHSpec]) -> dict[str, tuple[str, str]]:
    """The files the start will read on its thread, each once: its path -> (the line it is a listener's, or "", how it is said)."""
    files: dict[str, tuple[str, str]] = {}
    for config in configs:
        for spec in config.listeners:
            tls = spec.tls
            if tls is None:
                continue
            for path, what in ((tls.cert, "certificate"), (tls.key, "key"), (tls.ca, "CA file")):
                if path and path not in files:
                    files[path] = (config.name, f"line {config.name!r}: listener {spec.text!r}: {what} {path!r}")
    if ssh is not None and ssh.hostKey not in files:
        files[ssh.hostKey] = ("", f"SSH host key {ssh.hostKey!r}")
    return files


def _look(path: str) -> None:
    """(The look's thread.)  C{path} read as the start will read it (or its directory looked at, if it is not there yet)."""
    try:
        with open(openRegular(path), "rb") as f:
            f.read(MAX_PEM_FILE + 1)
    except FileNotFoundError:
        try:
            os.stat(os.path.dirname(path) or ".")  # (a host key is made there)
        except OSError:
            pass
    except Exception:
        pass  # (not a regular file, unreadable, ...: said by the reading that follows, as ever)


def lookAtStart(configs: Sequence[LineConfig], ssh: Optional[SSHSpec], reactor: Any,
                threaded: Optional[bool] = None) -> Optional[tuple[str, str]]:
    """
    The start's files read first by a thread, LOOK_WAIT s at most in all:
    None if all answered (or the reactor has no threads: a test's clock);
    else the line of the file that has not (or "") and what to say.
    """
    files = startFiles(configs, ssh)
    if not files or not (IReactorThreads.providedBy(reactor) if threaded is None else threaded):
        return None
    done = threading.Event()
    # The file the look is at: the first until it begins (a thread not run
    # by the time the wait ended, on a loaded machine, named files[""]: a KeyError).
    at: list[str] = [next(iter(files))]

    def look() -> None:
        try:
            for path in files:
                at[0] = path
                _look(path)
        finally:
            done.set()

    try:
        threading.Thread(target=look, name="serialgw start's look at files", daemon=True).start()
    except RuntimeError:
        return None  # (no thread to be had: read on this thread, as before)
    if done.wait(LOOK_WAIT):
        return None
    name, said = files[at[0]]
    return name, (f"{said}: not read within {LOOK_WAIT:g} s (a file system that does not answer?); the start "
                  "reads it on the gateway's thread")
