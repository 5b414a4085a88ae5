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
