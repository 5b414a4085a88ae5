"""
The session an init-command runs in (L{serialgw.line.initcommand}), and
its keeper: a small Python program, the gateway's child, that makes the
session (and process group), starts C{/bin/sh -ec CMD} in it as its own
child and stays there, the group's leader, until the gateway lets it go.

Why a keeper rather than the shell as the gateway's child: a process
group's id is its leader's pid, and a pid may be given to another process
once the one that had it is reaped and no group or session is named by it.
The gateway signalled the group (killpg) with the shell's pid, also after
the shell had been reaped (its pipes still open, a process it started
still running or just gone): a pid reused meanwhile, by a process that
leads a group of its own, would have been sent SIGTERM or SIGKILL.  Now the
gateway signals nothing itself: it asks the keeper, over a pipe, and the
keeper, alive and a member of the group, signals its own group
(C{killpg(0, ...)}), whose id cannot be anyone else's while it lives.

And the gateway's end ends the session: the keeper reads its control pipe,
whose other end only the gateway holds (the gateway's pipes are
close-on-exec, and Twisted closes every other descriptor in the children
it starts): the gateway gone for any reason, SIGKILL included, the keeper
reads end-of-file and sends its group SIGKILL.  Before, a gateway killed
left a running command's session behind for good.

The control pipe (the keeper's descriptor L{CONTROL}), one byte a request:
L{TERM} (SIGTERM to the group; the keeper ignores it), L{KILL} (SIGKILL to
the group, the keeper with it), L{RELEASE} (the keeper exits, signalling
nothing: the run ended well, what it left running stays); end-of-file: as
L{KILL}.  The shell's end is told on the keeper's descriptor L{STATUS}:
its wait status in decimal and a newline (L{shellEnded} reads it).

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
# The child's descriptors as spawnProcess takes them ("w": the gateway writes, the child reads).
CHILD_FDS = {0: "w", 1: "r", 2: "r", CONTROL: "w", STATUS: "r"}

# Run by `python -I -S -c KEEPER SHELL COMMAND`.
KEEPER = """\
import os, signal, sys, threading
os.setsid()
shell = os.fork()
if shell == 0:
    os.close(3)
    os.close(4)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execv(sys.argv[1], [sys.argv[1], '-ec', sys.argv[2]])
    except OSError as e:
        os.write(2, ('%s: %s' % (sys.argv[1], e.strerror)).encode())
    os._exit(127)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
os.close(null)
def control():
    while True:
        asked = os.read(3, 64)
        if not asked:
            os.killpg(0, signal.SIGKILL)
        for byte in asked:
            if byte == 84:
                os.killpg(0, signal.SIGTERM)
            elif byte == 75:
                os.killpg(0, signal.SIGKILL)
            elif byte == 88:
                os._exit(0)
threading.Thread(target=control, daemon=True).start()
status = os.waitpid(shell, 0)[1]
os.write(4, b'%d\\n' % status)
threading.Event().wait()
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
