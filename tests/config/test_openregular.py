"""
Files an admin names (the configuration, a TLS certificate or key, the SSH
host key) are read only when they are regular files: a tty or FIFO at the
path is refused, naming it, without being opened (L{openRegular}).  Real
ptys, FIFOs and inotify.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.sshhostkey import SSHError, loadHostKey
from serialgw.clients.tlsfiles import TLSError, readPem
from serialgw.config.reading import readToml
from serialgw.config.specs import ConfigError
from tests.config.test_sshkeysfile import Opens
from tests.shortpaths import shortTemp

# Each reader, called as the gateway calls it, and what it says of a path that is a character device or a FIFO.
READERS: dict[str, tuple[Callable[[str], object], type[Exception], Callable[[str, str], str]]] = {
    "readToml": (readToml, ConfigError, lambda p, kind: f"configuration {p!r} is not a regular file ({kind})"),
    "tls": (lambda p: readPem(p, "certificate"), TLSError, lambda p, kind: f"certificate {p!r} is not a regular file"),
    "hostkey": (lambda p: loadHostKey(p, make=False), SSHError,
                lambda p, kind: f"SSH host key {p!r} is not a regular file"),
}

CHILD = """\
import os, sys
from serialgw.clients.sshhostkey import loadHostKey
from serialgw.clients.tlsfiles import readPem
from serialgw.config.reading import readToml
reader = {"readToml": readToml, "tls": lambda p: readPem(p, "certificate"),
          "hostkey": lambda p: loadHostKey(p, make=False)}[sys.argv[1]]
try:
    reader(sys.argv[2])
except Exception as e:
    print(e)
try:
    os.close(os.open("/dev/tty", os.O_RDONLY))
    print("a controlling terminal")
except OSError:
    print("no controlling terminal")
"""


class NotOpenedTests(SynchronousTestCase):
    def tty(self) -> str:
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        return os.ttyname(slave)

    def test_ttyNeverOpened(self) -> None:
        """A tty at the path of the configuration, a certificate or the host key is refused, naming the path, without being opened."""
        for name, (reader, error, said) in READERS.items():
            tty = self.tty()
            opens = Opens(self, tty)
            self.assertEqual(str(self.assertRaises(error, reader, tty)), said(tty, "a character device"), name)
            self.assertEqual(opens.count(), 0, name)

    def test_fifoNeverOpened(self) -> None:
        """A FIFO there is refused without being opened (nor waited on)."""
        for name, (reader, error, said) in READERS.items():
            fifo = shortTemp(self)
            os.mkfifo(fifo)
            opens = Opens(self, fifo)
            self.assertEqual(str(self.assertRaises(error, reader, fifo)), said(fifo, "a FIFO"), name)
            self.assertEqual(opens.count(), 0, name)

    def test_ttyNotMadeControllingTerminal(self) -> None:
        """A gateway without a controlling terminal (a session leader, as under systemd) does not get one from a tty named as its configuration, a certificate or its host key."""
        for name, (_, _, said) in READERS.items():
            tty = self.tty()
            done = subprocess.run([sys.executable, "-c", CHILD, name, tty], start_new_session=True,
                                  capture_output=True, stdin=subprocess.DEVNULL, cwd=os.getcwd(), text=True,
                                  timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            self.assertEqual((done.stdout, done.stderr), (said(tty, "a character device") + "\nno controlling terminal\n", ""),
                             name)

    def test_withoutOPath(self) -> None:
        """Where there is no O_PATH, the path is looked at before it is opened: a tty is refused unopened; the host key's symlink is not followed."""
        self.patch(os, "O_PATH", 0)
        for name, (reader, error, said) in READERS.items():
            tty = self.tty()
            opens = Opens(self, tty)
            self.assertEqual(str(self.assertRaises(error, reader, tty)), said(tty, "a character device"), name)
            self.assertEqual(opens.count(), 0, name)
        link = os.path.abspath(self.mktemp())
        os.symlink(self.tty(), link)
        self.assertEqual(str(self.assertRaises(SSHError, loadHostKey, link, False)),
                         f"SSH host key {link!r} is a symbolic link (not followed)")
