"""
Make a password hash for a C{[users.NAME]} table's C{password}:

    python3 -m serialgw.hashpw              # asks twice on the terminal
    printf '%s\\n' "$PW" | python3 -m serialgw.hashpw   # or one line on stdin

It prints C{$scrypt$ln=15,r=8,p=1$SALT$HASH}.  The password is never taken
from the command line (others see a process's arguments).
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from serialgw.config.passwords import MOST_PASSWORD, make

USAGE = ("usage: python3 -m serialgw.hashpw\n"
         "  reads a password (twice on a terminal, else one line of stdin) and prints its hash for\n"
         "  [users.NAME] password = \"...\"; the password is never an argument (others see arguments)\n")
# The longest password taken, bytes of UTF-8: the longest a login checks (a line of stdin read no further).
MOST = MOST_PASSWORD


def readPassword(stdin: TextIO) -> bytes:
    """
    The password's bytes: asked twice on the terminal, or one line of
    C{stdin}; ValueError saying what is wrong.  The bytes are those typed
    (the stream's encoding, bytes it cannot decode kept as they came), as an
    SSH client sends them.
    """
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        password = first
    else:
        line = stdin.readline(MOST + 2)
        password = line[:-1] if line.endswith("\n") else line
    raw = password.encode(getattr(stdin, "encoding", None) or "utf-8", "surrogateescape")
    if len(raw) > MOST:
        raise ValueError(f"a password of more than {MOST} bytes (UTF-8)")
    if not raw:
        raise ValueError("an empty password")
    return raw


def main(argv: list[str], stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    if argv:
        stderr.write(USAGE if argv[0] in ("-h", "--help") else
                     f"serialgw.hashpw: takes no arguments (the password is read, never given as one)\n{USAGE}")
        return 0 if argv[0] in ("-h", "--help") else 2
    try:
        password = readPassword(stdin)
    except (ValueError, EOFError) as e:
        stderr.write(f"serialgw.hashpw: {e or 'no password'}: no hash made\n")
        return 1
    except KeyboardInterrupt:
        return 1
    stdout.write(make(password) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))
