"""
A remote unix: device that reaches a line's own unix listener through
symlinks (a linked directory: Debian's /var/run is a link to /run; a link
to the socket): the socket is the same one, so it is the loop the paths
as written hide, refused as the same path is.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.specs import ConfigError
from tests.realio import socketPath, writeTemp

LOOP = "what is written to it would come back to it for ever (a loop)"


class UnixLoopThroughLinksTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.top = os.path.dirname(socketPath(self))
        os.mkdir(os.path.join(self.top, "run"))
        os.symlink(os.path.join(self.top, "run"), os.path.join(self.top, "var-run"))

    def refused(self, device: str, listen: str) -> str:
        path = writeTemp(self, f'[lines.a]\ndevice = "unix:{device}"\nlisten = "raw+unix:{listen}"\n')
        return str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE").replace(self.top, "D")

    def test_linkedDirectory(self) -> None:
        """unix:D/var-run/a.sock (a link to D/run) on the line's own listener D/run/a.sock: refused (it connected to itself)."""
        self.assertEqual(self.refused(f"{self.top}/var-run/a.sock", f"{self.top}/run/a.sock"),
                         f"FILE:2: [lines.a] device: 'unix:D/var-run/a.sock' is its own listener 'raw+unix:D/run/a.sock': "
                         f"{LOOP}")

    def test_linkToTheSocket(self) -> None:
        """A device path that is a symlink to the listener's socket path: refused too."""
        os.symlink(os.path.join(self.top, "run", "a.sock"), os.path.join(self.top, "a.link"))
        self.assertEqual(self.refused(f"{self.top}/a.link", f"{self.top}/run/a.sock"),
                         f"FILE:2: [lines.a] device: 'unix:D/a.link' is its own listener 'raw+unix:D/run/a.sock': {LOOP}")

    def test_anotherSocketThereAllowed(self) -> None:
        """Another name in the same (linked) directory is another socket: allowed."""
        path = writeTemp(self, f'[lines.a]\ndevice = "unix:{self.top}/var-run/b.sock"\n'
                               f'listen = "raw+unix:{self.top}/run/a.sock"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a"])


WATCHES = "each line of its output would come back to it from there, prefixed, for ever (a loop)"


class WatchAllThroughLinksTests(SynchronousTestCase):
    """A line's unix: device that reaches a watch-all listener watching it through symlinks: the loop a unix listener's was, refused as the same path is (it passed --check: attack24's c6.toml)."""

    def setUp(self) -> None:
        self.top = os.path.dirname(socketPath(self))
        os.mkdir(os.path.join(self.top, "run"))
        os.symlink(os.path.join(self.top, "run"), os.path.join(self.top, "var-run"))

    def test_fileWatchAll(self) -> None:
        """[watch-all] at D/run/all.sock, line a's device unix:D/var-run/all.sock (a linked directory): refused at the device, as D/run/all.sock is."""
        path = writeTemp(self, f'[watch-all]\nlisten = "raw+unix:{self.top}/run/all.sock"\n'
                               f'[lines.a]\ndevice = "unix:{self.top}/var-run/all.sock"\nlisten = "4001"\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE").replace(self.top, "D")
        self.assertEqual(said, "FILE:4: [lines.a] device: 'unix:D/var-run/all.sock' is the watch-all listener "
                               f"'raw+unix:D/run/all.sock', which watches line 'a': {WATCHES}")

    def test_shardCopyThroughLink(self) -> None:
        """--shard 2: process 1's copy D/run/all.sock.1 reached as D/var-run/all.sock.1 by a line of process 1: refused."""
        from serialgw.config.file import loadFile

        path = writeTemp(self, f'[watch-all]\nlisten = "raw+unix:{self.top}/run/all.sock"\n'
                               f'[lines.a]\ndevice = "unix:{self.top}/var-run/all.sock.1"\nlisten = "4001"\nshard = 1\n')
        said = str(self.assertRaises(ConfigError, loadFile, path, 2)).replace(path, "FILE").replace(self.top, "D")
        self.assertTrue(said.startswith("FILE:4: [lines.a] device: 'unix:D/var-run/all.sock.1' is the watch-all "
                                        "listener 'raw+unix:D/run/all.sock.1:mode=600' (process 1's copy of "
                                        "'raw+unix:D/run/all.sock'), which watches line 'a'"), said)

    def test_ringThroughALinkedPtyLink(self) -> None:
        """A ring whose way back goes through a symlink: line a dials the watch-all (watching b), b's device is a link to a's pty: listener's link: refused."""
        path = writeTemp(self, f'[watch-all]\nlisten = "raw+unix:{self.top}/run/all.sock"\nlines = ["b"]\n'
                               f'[lines.a]\ndevice = "unix:{self.top}/run/all.sock"\nlisten = "pty:{self.top}/run/a"\n'
                               f'[lines.b]\ndevice = "{self.top}/var-run/a"\nlisten = "4002"\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE").replace(self.top, "D")
        self.assertEqual(said, "FILE:5: [lines.a] device: 'unix:D/run/all.sock' is the watch-all listener "
                               "'raw+unix:D/run/all.sock', which watches line 'b', line 'b''s device is the link of line "
                               f"'a''s pty: listener: {WATCHES}")

    def test_watchAllOption(self) -> None:
        """--device unix:D/var-run/w.sock with --watch-all raw+unix:D/run/w.sock: refused as --device."""
        from twisted.python.usage import UsageError

        from serialgw.app import tap

        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions, [
            "--device", f"unix:{self.top}/var-run/w.sock", "--port", "tcp:0:interface=127.0.0.1",
            "--watch-all", f"raw+unix:{self.top}/run/w.sock"])
        self.assertEqual(str(e).replace(self.top, "D"), "--device 'unix:D/var-run/w.sock' is the watch-all listener "
                                                        f"'raw+unix:D/run/w.sock', which watches line 'w.sock': {WATCHES}")

    def test_anotherSocketAllowed(self) -> None:
        """Another name in the linked directory is another socket: allowed."""
        path = writeTemp(self, f'[watch-all]\nlisten = "raw+unix:{self.top}/run/all.sock"\n'
                               f'[lines.a]\ndevice = "unix:{self.top}/var-run/other.sock"\nlisten = "4001"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a"])
