"""
Directories whose paths are short wherever the tests run.

Two things in the tests need a short path: a unix socket's (AF_UNIX takes
at most 107 bytes, C{sun_path} being 108 with its NUL), and a value the
gateway quotes whole in a message only up to
L{serialgw.config.specs.SHOWN} characters (a listener naming a certificate,
its key and a CA).  Trial's temporary directory is under the checkout and
each test's full id, and C{TMPDIR} may be anything a runner sets: either
can be long enough to make such a test fail for its path alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

# The longest base a directory is made in: its own name (a prefix and
# mkdtemp's 8 characters) and a socket's or file's name of up to 40 bytes
# still fit AF_UNIX's 107, and three such paths in one listener fit SHOWN.
LONGEST_BASE = 50


def shortDirectory(case: Any, prefix: str = "sgw-") -> str:
    """
    A new directory of the test's own, removed after it: in C{TMPDIR} if
    that path is at most L{LONGEST_BASE} bytes, else in /tmp (or /dev/shm,
    /var/tmp: the first that takes it).
    """
    bases = [tempfile.gettempdir(), "/tmp", "/dev/shm", "/var/tmp"]
    for base in bases:
        if len(os.fsencode(base)) > LONGEST_BASE or not os.path.isdir(base):
            continue
        try:
            directory = tempfile.mkdtemp(prefix=prefix, dir=base)
        except OSError:
            continue
        case.addCleanup(shutil.rmtree, directory, True)
        return directory
    raise AssertionError(f"no short temporary directory to make one in (tried {bases})")


def shortTemp(case: Any) -> str:
    """
    A path in a new short directory of the test's own, nothing there yet:
    what C{case.mktemp()} gives, where a path quoted whole must stay short.
    """
    return os.path.join(shortDirectory(case), "t")


def writeShort(case: Any, text: str) -> str:
    """A file holding C{text} at a L{shortTemp} path; its path."""
    path = shortTemp(case)
    with open(path, "w") as f:
        f.write(text)
    return path
