"""
The session an init-command runs in (L{serialgw.line.initcommand}), and
its keeper: the gateway's child, that makes the session (and process
group), starts C{/bin/sh -ec CMD} in it as its own child and stays there,
the group's leader, until the gateway lets it go.  Python makes the
session (a shell cannot) and execs the keeper, a shell script
(L{KEEPER_SH}): a Python keeper held 3.8 MB of its own a run (380 MB for
100 lines whose init-command ran at start, where the shells they ran held
11 MB), the shell 0.1 MB.

Why a keeper rather than the shell as the gateway's child: a process
group's id is its leader's pid, and a pid may be given to another process
once the one that had it is reaped and no group or session is named by it.
The gateway signalled the group (killpg) with the shell's pid, also after
the shell had been reaped (its pipes still open, a process it started
still running or just gone): a pid reused meanwhile, by a process that
leads a group of its own, would have been sent SIGTERM or SIGKILL.  Now the
gateway asks the keeper, over a pipe, and the keeper, alive and a member
of the group, signals its own group (C{killpg(0, ...)}), whose id cannot be
anyone else's while it lives.  The one signal the gateway sends the group
itself is the last SIGKILL (L{serialgw.line.initrun.InitRun.killNow}), and
only while the keeper is its child not reaped and the group's leader: a
group stopped as a whole (SIGSTOP to it) reads no request.

And the gateway's end ends the session: the keeper reads its control pipe,
whose other end only the gateway holds (the gateway's pipes are
close-on-exec, and Twisted closes every other descriptor in the children
it starts): the gateway gone for any reason, SIGKILL included, the keeper
reads end-of-file and sends its group SIGKILL.  Before, a gateway killed
left a running command's session behind for good.

The control pipe (the keeper's descriptor L{CONTROL}), one byte a request:
L{TERM} (SIGTERM to the group; the keeper takes it), L{KILL} (SIGKILL to
the group, the keeper with it), L{RELEASE} (the keeper exits, signalling
nothing: the run ended well, what it left running stays); end-of-file: as
L{KILL}.  The keeper's descriptor L{STATUS} says two lines: first
L{SHELL_RUNS}, from the process that becomes the shell, once it has reset
the keeper's SIGTERM trap (before its exec); then the shell's end, its
wait status in decimal (L{shellEnded} reads it), as a shell sees it: an
exit status of 129 to 192 is a signal's (128 + its number), the shell's
own way of saying one.

L{TERM} is asked only once L{SHELL_RUNS} is said: a SIGTERM to the group
before the keeper has forked the shell's process, or while that process
still carries the keeper's trap (fork to reset), ends nothing but is taken
by the trap (seen: with the keeper made to wait 0.5 s before the fork, a
stop right after the start lasted until the SIGKILL 2 s later).  L{KILL}
is never held: SIGKILL ends a process in any state.

The shell starts with SIGPIPE and SIGXFSZ as a program's start has them
(their default actions), as C{subprocess} restores them: Python ignores
both, and an ignored signal stays ignored across C{exec}, so every
command (and whatever it left running) had them ignored: in C{yes | head
-c 1} C{yes} was told C{Broken pipe} and went on to exit 1 instead of
ending by SIGPIPE.
"""

from __future__ import annotations

import os
from typing import Optional

# The keeper's descriptors beyond the command's standard input, output and error.
CONTROL = 3
STATUS = 4
TERM, KILL, RELEASE = b"T", b"K", b"X"
# What the shell's process says on STATUS (a line) once a SIGTERM to the group would reach it.
SHELL_RUNS = b"r"
# The child's descriptors as spawnProcess takes them ("w": the gateway writes, the child reads).
CHILD_FDS = {0: "w", 1: "r", 2: "r", CONTROL: "w", STATUS: "r"}

# The keeper's own script ($1 the shell, $2 the command).  Its requests are read, one byte at a
# time (dd), by a subshell of its own that takes no SIGTERM (it sends it); the keeper catches
# SIGTERM and SIGPIPE (a trap is not inherited by the shell, as an ignored signal would be) and
# runs the shell in the foreground, its own standard input, output and error /dev/null (what it
# says of a shell killed, 'Terminated', went to a pipe the gateway had closed: SIGPIPE), the
# command's kept on 5 to 7 until the shell ends; then it says how it ended, as a wait status (a
# status past 128 is read as a signal's, the shell's own way of saying one).  The shell's process
# says 'r' on 4 once SIGTERM would end it (its trap reset, before its exec): see SHELL_RUNS.
KEEPER_SH = """\
trap : TERM PIPE
exec 5<&0 6>&1 7>&2 </dev/null >/dev/null 2>&1
{
    trap '' TERM
    exec 4>&-
    while asked=$(dd bs=1 count=1 2>/dev/null) && [ -n "$asked" ]; do
        case $asked in
            T) kill -TERM 0 ;;
            K) kill -KILL 0 ;;
            X) exit 0 ;;
        esac
    done
    kill -KILL 0
} <&3 5<&- 6>&- 7>&- &
exec 3<&-
(
    trap - TERM PIPE
    echo r >&4
    exec "$1" -ec "$2" <&5 >&6 2>&7 4>&- 5<&- 6>&- 7>&-
)
status=$?
exec 5<&- 6>&- 7>&-
if [ "$status" -gt 128 ] && [ "$status" -lt 193 ]; then
    echo "$((status - 128))" >&4
else
    echo "$((status * 256))" >&4
fi
until wait; do :; done
"""

# The keeper: a shell running KEEPER_SH, made the session's leader by a few lines of Python that
# then exec it (Python's memory is not kept: a Python keeper held 3.8 MB of its own a run, 380 MB
# for 100 lines starting at once, where the shell holds 0.1 MB).  Run by
# `python -I -S -c KEEPER SHELL COMMAND`.
KEEPER = f"""\
import os, signal, sys
os.setsid()
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
os.execv(sys.argv[1], [sys.argv[1], '-c', {KEEPER_SH!r}, 'serialgw-init', sys.argv[1], sys.argv[2]])
"""


def shellEnded(said: bytes) -> Optional[tuple[str, int]]:
    """
    How the shell ended, from what the keeper said on L{STATUS}: C{("exit",
    CODE)} or C{("signal", NUMBER)}; None if that is not a wait status.
    """
    try:
        status = int(said.strip())
    except ValueError:
        return None
    if os.WIFSIGNALED(status):
        return "signal", os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return "exit", os.WEXITSTATUS(status)
    return None
