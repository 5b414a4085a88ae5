"""
Paths in the configuration: one device or file reached by two paths (a
symlink, a by-id name) is one line's, refused at start, at a reload and by
--check; relative paths are made absolute when the configuration is read
(from the file's directory, or the working directory at start for options).
"""

from __future__ import annotations

import os
import tempfile

from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactorClock
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.app.process import TwistdGatewayService
from serialgw.config.file import loadConfig, loadFile
from serialgw.config.listenerspecs import ListenerKind
from serialgw.config.paths import identity
from serialgw.config.specs import ConfigError
from tests.config.test_check import checked
from tests.fakes import LogEvents
from tests.realio import startedPty
from tests.shortpaths import shortDirectory

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk2gGl2+Rk3Jqf3A1h8sZk6e2n2hY2xk8Uj0Zl7m9Zq ann\n"


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.exitOnError = False
    options.parseOptions(list(args))
    return options


class Directory:
    """A directory of the test's own (absolute), with files and links made in it."""

    def __init__(self, case: SynchronousTestCase, short: bool = False) -> None:
        # (short: in a directory of the test's own outside the checkout, whose
        # path may be long: a path is quoted whole up to 256 characters)
        if short:
            self.path = shortDirectory(case)
        else:
            self.path = os.path.abspath(case.mktemp())
            os.makedirs(self.path)

    def __call__(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def write(self, name: str, text: str) -> str:
        with open(self(name), "w") as f:
            f.write(text)
        return self(name)

    def link(self, name: str, target: str) -> str:
        os.symlink(target, self(name))
        return self(name)


class TwoPathsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Directory(self, short=True)

    def refused(self, text: str) -> str:
        path = self.dir.write("farm.toml", text)
        return str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")

    def test_oneTtyByTwoPaths(self) -> None:
        """A tty and a symlink to it (a by-id name), or two symlinks to one tty: the second line is refused, naming both lines and both paths."""
        pty = startedPty(self)
        byId = self.dir.link("usb-FTDI_A1-if00-port0", pty.slaveName)
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "{pty.slaveName}"\nlisten = "4001"\n'
                                      f'[lines.b]\ndevice = "{byId}"\nlisten = "4002"\n'),
                         f"FILE:5: [lines.b] device: {byId!r} is line 'a''s device {pty.slaveName!r} too: one device "
                         "by two paths")
        other = self.dir.link("by-path", byId)
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "{byId}"\nlisten = "4001"\n'
                                      f'[lines.b]\ndevice = "{other}"\nlisten = "4002"\n'),
                         f"FILE:5: [lines.b] device: {other!r} is line 'a''s device {byId!r} too: one device by two paths")
        # Two device nodes are one device when their numbers are (st_rdev): /dev/null's is not the pty's.
        self.assertEqual(identity(byId), identity(pty.slaveName))
        self.assertNotEqual(identity("/dev/null"), identity(pty.slaveName))
        loadConfig(self.dir.write("ok.toml", f'[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\n'
                                             f'[lines.b]\ndevice = "{byId}"\nlisten = "4002"\n'))

    def test_pathNotThereYetComparedAsWritten(self) -> None:
        """A by-id path not there at load (the adapter not plugged in yet) is compared as written: taken, as before."""
        pty = startedPty(self)
        later = self.dir("usb-not-plugged-in")
        (a, b) = loadConfig(self.dir.write("farm.toml", f'[lines.a]\ndevice = "{pty.slaveName}"\nlisten = "4001"\n'
                                                        f'[lines.b]\ndevice = "{later}"\nlisten = "4002"\n'))
        self.assertEqual((a.device.path, b.device.path), (pty.slaveName, later))
        self.assertIsNone(identity(later))
        # A dangling symlink to the tty's path is nothing there either.
        self.dir.link("dangling", self.dir("nowhere"))
        loadConfig(self.dir.write("farm2.toml", f'[lines.a]\ndevice = "{self.dir("nowhere")}"\nlisten = "4001"\n'
                                                f'[lines.b]\ndevice = "{self.dir("dangling")}"\nlisten = "4002"\n'))

    def test_oneFileByTwoPaths(self) -> None:
        """A file: listener through a symlink to another line's console log or file: output, or a log hard-linked to another: refused when both are there."""
        log = self.dir.write("a.log", "")
        link = self.dir.link("link.log", log)
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nlog = "{log}"\n'
                                      f'[lines.b]\ndevice = "/dev/zero"\nlisten = ["4002", "file:{link}"]\n'),
                         f"FILE:7: [lines.b] listen: 'file:{link}' writes {link!r}, as line 'a''s log does by another "
                         f"path ({log!r}): two writers would interleave in one file")
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "/dev/null"\nlisten = ["4001", "file:{link}"]\n'
                                      f'[lines.b]\ndevice = "/dev/zero"\nlisten = ["4002", "file:{log}"]\n'),
                         f"FILE:6: [lines.b] listen: 'file:{log}' writes {log!r}, as line 'a''s listener 'file:{link}' "
                         f"does by another path ({link!r}): two writers would interleave in one file")
        hard = self.dir("hard.log")
        os.link(log, hard)
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nlog = "{log}"\n'
                                      f'[lines.b]\ndevice = "/dev/zero"\nlisten = "4002"\nlog = "{hard}"\n'),
                         f"FILE:8: [lines.b] log: {hard!r} is line 'a''s log {log!r} too: one file by two paths")

    def test_oneFileNotMadeYetByTwoPaths(self) -> None:
        """A file: listener or log through a dangling symlink, or a symlinked directory, to another line's log not made yet: refused as when it is there (the start let both write it, then every reload was refused)."""
        log = self.dir("a.log")
        link = self.dir.link("b.out", log)
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nlog = "{log}"\n'
                                      f'[lines.b]\ndevice = "/dev/zero"\nlisten = ["4002", "file:{link}"]\n'),
                         f"FILE:7: [lines.b] listen: 'file:{link}' writes {link!r}, as line 'a''s log does by another "
                         f"path ({log!r}): two writers would interleave in one file")
        logs = self.dir.link("logs", self.dir.path)
        self.assertEqual(self.refused(f'[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nlog = "{log}"\n'
                                      f'[lines.b]\ndevice = "/dev/zero"\nlisten = "4002"\nlog = "{logs}/a.log"\n'),
                         f"FILE:8: [lines.b] log: '{logs}/a.log' is line 'a''s log too by another path ({log!r}): "
                         "two writers would interleave in one file")
        self.assertFalse(os.path.lexists(log))
        # Two files not made yet at two places stay two.
        loadConfig(self.dir.write("ok.toml", f'[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\nlog = "{log}"\n'
                                             f'[lines.b]\ndevice = "/dev/zero"\nlisten = ["4002", "file:{logs}/b.log"]\n'))
        e = self.assertRaises(UsageError, parse, "--device", "/dev/null", "--listen", f"file:{log}", "--listen", f"file:{link}")
        self.assertEqual(str(e), f"listener 'file:{link}' writes {link!r}, as listener 'file:{log}' does by another path "
                                 f"({log!r}): two writers would interleave in one file")

    def test_checkAndCommandLine(self) -> None:
        """--check refuses one tty by two paths as the start does; on the command line, two file: listeners on one file by two paths are refused."""
        pty = startedPty(self)
        byId = self.dir.link("by-id", pty.slaveName)
        path = self.dir.write("farm.toml", f'[lines.a]\ndevice = "{pty.slaveName}"\nlisten = "4001"\nlock = false\n'
                                           f'[lines.b]\ndevice = "{byId}"\nlisten = "4002"\nlock = false\n')
        message = f"{path}:6: [lines.b] device: {byId!r} is line 'a''s device {pty.slaveName!r} too: one device by two paths"
        self.assertEqual(str(self.assertRaises(UsageError, checked, "--config", path)), message)
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--config", path)), message)
        out = self.dir.write("out", "")
        link = self.dir.link("out-link", out)
        e = self.assertRaises(UsageError, parse, "--device", "/dev/null", "--listen", f"file:{out}", "--listen", f"file:{link}")
        self.assertEqual(str(e), f"listener 'file:{link}' writes {link!r}, as listener 'file:{out}' does by another path "
                                 f"({out!r}): two writers would interleave in one file")

    def test_reloadRefused(self) -> None:
        """SIGHUP onto a file with one tty by two paths: the reload is refused with the same error, the running configuration stays."""
        pty = startedPty(self)
        byId = self.dir.link("by-id", pty.slaveName)
        path = self.dir.write("farm.toml", f'[lines.a]\ndevice = "{pty.slaveName}"\nlisten = "4001"\n'
                                           f'[lines.b]\ndevice = "{byId}"\nlisten = "4002"\n')
        log = LogEvents(self)
        service = TwistdGatewayService([], reactor=MemoryReactorClock())
        service.configPath = path
        self.successResultOf(service.reloadFile())
        self.assertEqual([e["reason"] for e in log.events if e.get("log_format", "").startswith("reload refused")],
                         [f"{path}:5: [lines.b] device: {byId!r} is line 'a''s device {pty.slaveName!r} too: one device "
                          "by two paths"])
        self.assertEqual(service.configs, [])


class RelativePathTests(SynchronousTestCase):
    def test_fromTheFilesDirectory(self) -> None:
        """Every relative path in a file (log, file:, pipe:, pty:, unix: sockets, TLS files, devices, keys-file, host-key, watch-all) is taken from the file's directory, made absolute at load."""
        d = Directory(self)
        d.write("ops.pub", KEY)
        # Read from elsewhere: the working directory is not the file's.
        self.assertNotEqual(os.getcwd(), d.path)
        loaded = loadFile(d.write("farm.toml", (
            '[lines.a]\ndevice = "pty:ttyA"\nlog = "logs/../a.log"\n'
            'listen = ["file:out/a", "pipe:guest", "pty:ttyV", "raw+unix:a.sock:mode=660", "unix:vm.serial0,nowait",\n'
            '          "tls:4443:cert=gw.pem:key=private/gw.key:ca=ca.pem", "file:/abs/b", "unix:\\u0000abstract"]\n'
            '[lines.b]\ndevice = "unix:qemu/100.serial0"\nlisten = "4002"\n'
            '[lines.c]\ndevice = "ttyUSB0"\nlisten = "4003"\nlock = false\n'
            '[ssh]\nlisten = "unix:ssh.sock"\nhost-key = "keys/host"\n'
            '[users.ann]\nkeys-file = "ops.pub"\n'
            '[watch-all]\nlisten = "unix:all.sock"\n')))
        a, b, c = loaded.lines
        self.assertEqual((a.device.path, a.log.path if a.log else None, b.device.path, c.device.path),
                         (d("ttyA"), d("a.log"), d("qemu", "100.serial0"), d("ttyUSB0")))
        self.assertEqual([(s.kind, s.path) for s in a.listeners],
                         [(ListenerKind.FILE, d("out", "a")), (ListenerKind.PIPE, d("guest")), (ListenerKind.PTY, d("ttyV")),
                          (ListenerKind.LISTEN, d("a.sock")), (ListenerKind.CONNECT, d("vm.serial0")), (ListenerKind.LISTEN, ""),
                          (ListenerKind.FILE, "/abs/b"), (ListenerKind.LISTEN, "\0abstract")])
        # What is opened is the absolute path too: the file's and pipe's endpoint, the unix endpoint strings.
        self.assertEqual([s.endpoint for s in a.listeners[:3]], [d("out", "a"), d("guest"), d("ttyV")])
        server = serverFromString(MemoryReactorClock(), a.listeners[3].endpoint)
        self.assertEqual((server._address, server._mode, server._wantPID), (d("a.sock"), 0o660, True))  # type: ignore[attr-defined]
        self.assertEqual(a.listeners[4].endpoint, f"unix:{d('vm.serial0')}")
        tls = a.listeners[5].tls
        assert tls is not None
        self.assertEqual((tls.cert, tls.key, tls.ca), (d("gw.pem"), d("private", "gw.key"), d("ca.pem")))
        self.assertEqual(a.listeners[7].endpoint, "unix:\\x00abstract:mode=600:lockfile=0".replace("\\x00", "\0"))
        assert loaded.ssh is not None and loaded.watchAll is not None
        self.assertEqual((loaded.ssh.listener.path, loaded.ssh.hostKey, loaded.watchAll.listeners[0].path),
                         (d("ssh.sock"), d("keys", "host"), d("all.sock")))
        self.assertEqual(loaded.users[0].keys, (KEY.rsplit(" ", 1)[0],))
        # The texts as typed stay for messages.
        self.assertEqual([s.text for s in a.listeners[:2]], ["file:out/a", "pipe:guest"])

    def test_fromTheDirectoryAtStart(self) -> None:
        """On the command line a relative path is the working directory's at start, made absolute then; a relative --config is read again by its absolute path."""
        cwd = os.getcwd()
        options = parse("--device", "pty:ttyG", "--listen", "file:out.log", "--listen", "raw+unix:g.sock",
                        "--status", "unix:status.sock", "--watch-all", "unix:all.sock")
        line = options["line"]
        self.assertEqual((line.name, line.device.path, [s.path for s in line.listeners]),
                         ("ttyG", os.path.join(cwd, "ttyG"), [os.path.join(cwd, "out.log"), os.path.join(cwd, "g.sock")]))
        self.assertEqual((options["statusSpec"].path, options["watchAllSpec"].listeners[0].path),
                         (os.path.join(cwd, "status.sock"), os.path.join(cwd, "all.sock")))
        config = os.path.relpath(Directory(self).write("farm.toml", '[lines.a]\ndevice = "pty:"\nlisten = "file:x"\n'))
        self.assertFalse(config.startswith("/"))
        options = parse("--config", config)
        self.assertEqual(options["configPath"], os.path.join(cwd, config))
        self.assertEqual(options["line"].listeners[0].path, os.path.join(cwd, os.path.dirname(config), "x"))
        service = tap.makeService(options, reactor=MemoryReactorClock())
        assert isinstance(service, TwistdGatewayService)
        self.assertEqual(service.configPath, os.path.join(cwd, config))

    def test_laterChdirMovesNothing(self) -> None:
        """A change of directory after the file is read (twistd --rundir) leaves every path where it was, and a reload of the file reads the same paths."""
        d = Directory(self)
        path = d.write("farm.toml", '[lines.a]\ndevice = "pty:ttyA"\nlisten = "file:a.out"\nlog = "a.log"\n')
        before = loadConfig(path)
        cwd = os.getcwd()
        elsewhere = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, elsewhere)
        os.chdir(elsewhere)
        try:
            self.assertEqual(loadConfig(path), before)
        finally:
            os.chdir(cwd)
        self.assertEqual(before[0].listeners[0].path, d("a.out"))
