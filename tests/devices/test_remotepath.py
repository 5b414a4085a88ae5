"""
A C{unix:} device whose path is no socket (a directory, a regular file):
the reason it stays down names the path and what is there, not the
kernel's "Connection refused".
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.config.specs import DeviceSpec
from serialgw.devices.remote import RemoteDevice
from tests.realio import socketPath


class UnixPathKindTests(TestCase):
    timeout = 30

    async def downReason(self, path: str) -> str:
        from tests.realio import EventCounter

        failed = EventCounter(self, "not connected: {reason}")
        device = RemoteDevice(DeviceSpec("unix", path), reactor, retryPolicy=lambda attempt: 60.0)
        self.addCleanup(device.close)
        device.start()
        event = await failed.nth(1)
        self.assertEqual(event["reason"], device.downReason)
        return str(device.downReason)

    async def test_directory(self) -> None:
        """A directory at a unix: device's path: the log and the down reason say so, naming it."""
        path = socketPath(self)
        os.mkdir(path)
        self.assertEqual(await self.downReason(path), f"'{path}' is a directory, not a unix socket")

    async def test_regularFile(self) -> None:
        """A regular file there: said so too."""
        path = socketPath(self)
        with open(path, "w"):
            pass
        self.assertEqual(await self.downReason(path), f"'{path}' is a regular file, not a unix socket")

    async def test_nothingThere(self) -> None:
        """Nothing there: the kernel's reason, as before."""
        path = socketPath(self)
        self.assertIn("No such file or directory", await self.downReason(path))


class CheckUnixPathTests(SynchronousTestCase):
    def test_checkWarns(self) -> None:
        """--check: a directory at a unix: device's path is a warning naming the line, the device and what is there."""
        from tests.config.test_check import checked

        path = socketPath(self)
        os.mkdir(path)
        config = os.path.abspath(self.mktemp())
        with open(config, "w") as f:
            f.write(f'[lines.vm]\ndevice = "unix:{path}"\nlisten = "tcp:0:interface=127.0.0.1"\n')
        status, _, err = checked("--config", config)
        self.assertEqual((status, [e for e in err.splitlines() if "unix socket" in e]),
                         (0, [f"serialgw: warning: {config}:1: line 'vm': device 'unix:{path}': '{path}' is a "
                              "directory, not a unix socket (now): the line would stay down"]))
