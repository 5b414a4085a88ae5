"""
A program that plays a serial device the way QEMU's C{-serial pty} or socat
does: it makes a pty, points a symlink at its slave, and, once told to on
stdin, floods the master with C{MARKER % cycle} then L{FLOOD}; then it
waits for stdin to close.  The hang-up tests run it as a separate process
and kill it mid-flood, which closes the master while the gateway reads.

    python -m tests.ptyflood LINK CYCLE
"""

from __future__ import annotations

import os
import sys
import tty

FLOOD = bytes(range(256)) * (16 * 1024)  # 4 MiB; no MARKER inside
MARKER = b"\n<<cycle %04d>>\n"


def main(link: str, cycle: int) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    tmp = f"{link}.{os.getpid()}.tmp"
    os.symlink(name, tmp)
    os.replace(tmp, link)
    os.close(slave)
    sys.stdout.write(f"pty {name}\n")
    sys.stdout.flush()
    # Written only once the gateway has the slave open (it flushes the
    # input queue when it opens a tty).
    sys.stdin.readline()
    view = memoryview(MARKER % cycle + FLOOD)
    while view:
        view = view[os.write(master, view):]
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
