"""
A keys file (C{keys-file}, C{--authorized-keys}) may be a person's own, in
their home: what its path leads to is looked at without opening it, and
only a regular file is opened.  Real ptys, FIFOs and inotify.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.sshauth import KeyRing
from serialgw.config.people import UserSpec
from serialgw.config.specs import ConfigError
from serialgw.config.sshkeys import MAX_KEYS, readKeysFile, readPublicKeys
from tests.clients.test_ssh import newKey, publicLine

IN_OPEN = 0x20


class Opens:
    """Opens of one path, as inotify reports them."""

    def __init__(self, test: SynchronousTestCase, path: str) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        test.addCleanup(os.close, self.fd)
        if libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def count(self) -> int:
        try:
            events = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        count, at = 0, 0
        while at < len(events):
            _, mask, _, size = struct.unpack_from("iIII", events, at)
            count += bool(mask & IN_OPEN)
            at += 16 + size
        return count


class NotOpenedTests(SynchronousTestCase):
    def link(self, target: str) -> str:
        path = self.mktemp()
        os.symlink(os.path.abspath(target), path)
        return path

    def test_deviceNeverOpened(self) -> None:
        """A keys file that leads to a device (a person's symlink to a tty; /dev/watchdog would start the watchdog) is refused without the device being opened."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty = os.ttyname(slave)
        opens = Opens(self, tty)
        path = self.link(tty)
        self.assertEqual(str(self.assertRaises(ConfigError, readKeysFile, path)),
                         f"keys file {path!r} is not a regular file")
        self.assertEqual(opens.count(), 0)

    def test_fifoNeverOpened(self) -> None:
        """A FIFO there is refused without being opened (a writer waiting on it is not let go)."""
        fifo = self.mktemp()
        os.mkfifo(fifo)
        opens = Opens(self, fifo)
        self.assertEqual(str(self.assertRaises(ConfigError, readKeysFile, fifo)),
                         f"keys file {fifo!r} is not a regular file")
        self.assertEqual(opens.count(), 0)

    def test_ttyNotMadeControllingTerminal(self) -> None:
        """A gateway without a controlling terminal (under systemd, a session leader) does not get one from a keys file that leads to a tty: its hangup would be a SIGHUP to the gateway."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        path = self.link(os.ttyname(slave))
        code = ("import os, sys\n"
                "from serialgw.config.specs import ConfigError\n"
                "from serialgw.config.sshkeys import readKeysFile\n"
                "try:\n    readKeysFile(sys.argv[1])\nexcept ConfigError as e:\n    print(e)\n"
                "try:\n    os.close(os.open('/dev/tty', os.O_RDONLY))\n    print('a controlling terminal')\n"
                "except OSError:\n    print('no controlling terminal')\n")
        done = subprocess.run([sys.executable, "-c", code, path], start_new_session=True, capture_output=True,
                              stdin=subprocess.DEVNULL, cwd=os.getcwd(), text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        self.assertEqual(done.stdout, f"keys file {path!r} is not a regular file\nno controlling terminal\n")

    def test_regularFileThroughSymlink(self) -> None:
        """A symlink to a regular file is followed, as sshd follows one for authorized_keys; a directory is not a regular file."""
        key = newKey()
        target = self.mktemp()
        with open(target, "w") as f:
            f.write(publicLine(key, "ops1") + "\n")
        self.assertEqual([k.comment for k in readKeysFile(self.link(target))], ["ops1"])
        directory = self.mktemp()
        os.mkdir(directory)
        self.assertEqual(str(self.assertRaises(ConfigError, readKeysFile, directory)),
                         f"keys file {directory!r} is not a regular file")
        dangling = self.link(self.mktemp())
        self.assertEqual(str(self.assertRaises(ConfigError, readKeysFile, dangling)),
                         f"cannot read keys file {dangling!r}: No such file or directory")

    def test_withoutOPath(self) -> None:
        """Where there is no O_PATH, the path is looked at before it is opened: a FIFO is refused unopened, a regular file read."""
        self.patch(os, "O_PATH", 0)
        fifo = self.mktemp()
        os.mkfifo(fifo)
        opens = Opens(self, fifo)
        link = self.link(fifo)
        self.assertEqual(str(self.assertRaises(ConfigError, readKeysFile, link)),
                         f"keys file {link!r} is not a regular file")
        self.assertEqual(opens.count(), 0)
        target = self.mktemp()
        with open(target, "w") as f:
            f.write(publicLine(newKey(), "ops1") + "\n")
        self.assertEqual([k.comment for k in readKeysFile(target)], ["ops1"])


class KeyCountTests(SynchronousTestCase):
    def test_tooManyKeysRefused(self) -> None:
        """A keys file of more than MAX_KEYS keys is refused, naming the file and the first key past the bound: a person's 1 MiB file of 12633 keys held every line 0.35 s of CPU at each reload (its key ring, on the gateway's thread)."""
        line = publicLine(newKey(), "ops1") + "\n"
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("# keys\n" + line * MAX_KEYS)
        self.assertEqual(len(readKeysFile(path)), MAX_KEYS)
        with open(path, "a") as f:
            f.write(line)
        self.assertEqual(str(self.assertRaises(ConfigError, readKeysFile, path)),
                         f"{path}:{MAX_KEYS + 2}: more than {MAX_KEYS} keys (each is read at the reloads that "
                         "find it changed, up to 70 us of CPU)")

    def test_tooManyInlineKeysRefused(self) -> None:
        """The keys of a [users.NAME] table are bounded the same, the error naming the table."""
        line = publicLine(newKey(), "ops1")
        e = self.assertRaises(ConfigError, readPublicKeys, "\n".join([line] * (MAX_KEYS + 1)), "[users.x] keys: key")
        self.assertEqual(str(e), f"[users.x] keys: key:{MAX_KEYS + 1}: more than {MAX_KEYS} keys (each is read at "
                         "the reloads that find it changed, up to 70 us of CPU)")

    def test_personWithMoreInAll(self) -> None:
        """The bound is a file's and a table's: a person with MAX_KEYS keys in their table and more in their keys file is in the key ring whole (it refused them, at start or at a reload's end)."""
        inline, filed = newKey(), newKey()
        spec = UserSpec("ops1", tuple([publicLine(inline)] * MAX_KEYS + [publicLine(filed)]))
        ring = KeyRing([spec])
        self.assertEqual((ring.person(inline.public().blob()), ring.person(filed.public().blob())), ("ops1", "ops1"))
