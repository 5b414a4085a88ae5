"""
A file: listener and a symlink at its path: followed (it feeds FIFOs, and
people point it at /dev/stdout), except another user's symlink in a
directory everyone may write (/tmp): the kernel's fs.protected_symlinks
rule, kept whatever that sysctl says.  At start, at a reload, by --check.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from serialgw.app.binding import StartupError
from serialgw.app.check import checkLines
from serialgw.app.reload import checkFiles
from serialgw.app.service import GatewayService
from serialgw.clients.local import FileClient
from serialgw.clients.streams import fifoPair
from serialgw.config.listeners import parseListener
from serialgw.config.paths import NOT_FOLLOWED, noFollow
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice
from tests.realio import socketPath
from tests.shortpaths import shortDirectory

NOBODY = 65534


class FileLinkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.line = Line("t", RecordingDevice(), clock=Clock())
        self.dir = shortDirectory(self)

    def client(self, path: str) -> FileClient:
        # (A regular file written on the test's thread: read at once.)
        client = FileClient(self.line, path, reactor, parseListener(f"raw+file:{path}"), writes="inline")
        self.addCleanup(client.close)
        return client

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def sticky(self) -> str:
        """A directory everyone may write, sticky (as /tmp), of this process's user."""
        path = os.path.join(self.dir, "tmp")
        os.mkdir(path)
        os.chmod(path, 0o1777)
        return path

    def test_followsALink(self) -> None:
        """In a directory of its own a file: listener follows a symlink: to a file, to a FIFO (as /dev/stdout is one to /proc/self/fd/1)."""
        target = os.path.join(self.dir, "target")
        link = os.path.join(self.dir, "link")
        os.symlink(target, link)
        self.assertEqual(noFollow(link), 0)
        self.client(link)
        self.line.deviceDataReceived(b"through")
        self.assertEqual((self.read(target), os.path.islink(link)), (b"through", True))
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        os.symlink(fifo, os.path.join(self.dir, "stdout"))
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        self.client(os.path.join(self.dir, "stdout"))
        self.line.deviceDataReceived(b"fifo")
        self.assertEqual(os.read(reader, 100), b"fifo")

    def test_socketAtThePath(self) -> None:
        """A unix socket at a file: or pipe: path: refused saying so (the open said "No such device or address"), and --check says it first."""
        import socket

        path = socketPath(self, "s")
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(path)
        why = (f"{path!r} is a unix socket: file: and pipe: write a file, a FIFO or a tty; a socket is reached with "
               f"unix:{path}")
        self.assertEqual(self.assertRaises(OSError, self.client, path).strerror, why)
        self.assertEqual(self.assertRaises(OSError, fifoPair, path).strerror, why)
        for kind in ("file", "pipe"):
            config = LineConfig(name="t", device=DeviceSpec("tty", "/dev/null"), lock=False,
                                listeners=(parseListener(f"{kind}:{path}"),))
            self.assertEqual(checkLines([config])[0], [f"line 't': listener '{kind}:{path}': {why}"])

    def test_pipeOnARegularFile(self) -> None:
        """pipe: on a regular file (no FIFO there): refused saying so, by --check too (the start attached it, read its end at once and detached it: a listener that did nothing)."""
        path = os.path.join(self.dir, "guest")
        with open(path, "w") as f:
            f.write("x")
        why = f"{path!r} is a regular file, not a FIFO: pipe: reads and writes QEMU's FIFOs (made with mkfifo)"
        self.assertEqual(self.assertRaises(OSError, fifoPair, path).strerror, why)
        for end in (".in", ".out"):
            os.mkfifo(path + end) if end == ".in" else open(path + end, "w").close()
        self.assertEqual(self.assertRaises(OSError, fifoPair, path).strerror, why.replace(repr(path), repr(path + ".out")))
        config = LineConfig(name="t", device=DeviceSpec("tty", "/dev/null"), lock=False,
                            listeners=(parseListener(f"pipe:{path}"),))
        self.assertEqual(checkLines([config])[0], [f"line 't': listener 'pipe:{path}': " + why.replace(repr(path), repr(path + ".out"))])

    def test_ownLinkInStickyDirectory(self) -> None:
        """In a sticky directory everyone may write, this user's own symlink is followed, and a path with nothing there is made a regular file."""
        tmp = self.sticky()
        target = os.path.join(self.dir, "target")
        os.symlink(target, os.path.join(tmp, "mine"))
        self.client(os.path.join(tmp, "mine"))
        self.line.deviceDataReceived(b"mine")
        self.assertEqual(self.read(target), b"mine")
        self.client(os.path.join(tmp, "new"))
        self.line.deviceDataReceived(b"new")
        self.assertFalse(os.path.islink(os.path.join(tmp, "new")))
        self.assertEqual(self.read(os.path.join(tmp, "new")), b"new")

    def test_otherUsersLinkInStickyDirectory(self) -> None:
        """Another user's symlink in a sticky directory everyone may write is not followed (file:, and pipe:'s pair): refused at start, at a reload and by --check, the file it names untouched."""
        if os.geteuid() != 0:
            raise SkipTest("making a symlink of another user needs root")
        tmp = self.sticky()
        victim = os.path.join(self.dir, "victim")
        with open(victim, "wb") as f:
            f.write(b"precious")
        planted = os.path.join(tmp, "console.out")
        os.symlink(victim, planted)
        os.lchown(planted, NOBODY, NOBODY)
        self.assertEqual(noFollow(planted), os.O_NOFOLLOW)
        refused = f"{planted!r} is {NOT_FOLLOWED}"
        e = self.assertRaises(OSError, self.client, planted)
        self.assertEqual(e.strerror, refused)
        config = LineConfig("a", DeviceSpec("pty", ""), listeners=(parseListener(f"file:{planted}"),))
        service = GatewayService([config], reactor=reactor)
        e2 = self.assertRaises(StartupError, service.startService)
        self.addCleanup(service.stopService)
        self.assertEqual(str(e2), f"line 'a': cannot open listener 'file:{planted}': {refused}")
        self.assertEqual(checkFiles([("a", config.listeners[0])], []),
                         f"line 'a': cannot open listener 'file:{planted}': {refused}")
        self.assertEqual(checkLines([config])[0], [f"line 'a': listener 'file:{planted}': {refused}"])
        self.assertEqual(self.read(victim), b"precious")
        # QEMU's pipe: pair too: it is opened read-write (the gateway wrote device output over the file, and read it to the device).
        guest = os.path.join(tmp, "guest")
        os.mkfifo(guest + ".in")
        os.symlink(victim, guest + ".out")
        os.lchown(guest + ".out", NOBODY, NOBODY)
        pipe = LineConfig("a", DeviceSpec("pty", ""), listeners=(parseListener(f"pipe:{guest}"),))
        outRefused = f"{guest + '.out'!r} is {NOT_FOLLOWED}"
        e3 = self.assertRaises(OSError, fifoPair, guest)
        self.assertEqual(e3.strerror, outRefused)
        self.assertEqual(checkFiles([("a", pipe.listeners[0])], []), f"line 'a': cannot open listener 'pipe:{guest}': {outRefused}")
        self.assertEqual(checkLines([pipe])[0], [f"line 'a': listener 'pipe:{guest}': {outRefused}"])
        self.assertEqual(self.read(victim), b"precious")

    def test_checkLooksWhereItOpens(self) -> None:
        """--check looks for planted links only where the listener opens: a file: listener's path (not PATH.in, PATH.out), a pipe:'s pair or, without one, its path (the start took them, --check refused them: exit 2 under the shipped units)."""
        if os.geteuid() != 0:
            raise SkipTest("making a symlink of another user needs root")
        tmp = self.sticky()
        victim = os.path.join(self.dir, "victim")
        with open(victim, "wb") as f:
            f.write(b"precious")
        log = os.path.join(tmp, "console.log")
        guest = os.path.join(tmp, "guest")
        os.mkfifo(guest)
        for planted in (log + ".in", log + ".out", guest + ".in"):
            os.symlink(victim, planted)
            os.lchown(planted, NOBODY, NOBODY)
        config = LineConfig("a", DeviceSpec("pty", ""),
                            listeners=(parseListener(f"file:{log}"), parseListener(f"pipe:{guest}")))
        self.assertEqual((checkFiles([("a", spec) for spec in config.listeners], []), checkLines([config])[0]),
                         (None, []))

    def test_ttyNotTakenAsControllingTerminal(self) -> None:
        """A pipe: path that is a tty (fifoPair, openLocal) is opened with O_NOCTTY: under systemd the gateway leads a session with no terminal, and the tty became its controlling terminal (a ^C typed there would stop the gateway, its hang-up be a SIGHUP: a reload)."""
        import subprocess
        import sys

        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = (
            "import os\n"
            "from serialgw.clients.streams import fifoPair\n"
            "os.setsid()\n"
            "master, slave = os.openpty()\n"
            "name = os.ttyname(slave)\n"
            "os.close(slave)\n"
            "fdIn, fdOut = fifoPair(name)\n"
            "with open('/proc/self/stat', 'rb') as f:\n"
            "    print(f.read().rpartition(b')')[2].split()[4].decode(), fdIn == fdOut)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=repo))
        self.assertEqual((out.stdout, out.returncode), ("0 True\n", 0), out.stderr)
