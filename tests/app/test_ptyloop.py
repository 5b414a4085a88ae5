"""
A loop made after the file was read: a line's device path that someone
points (a symlink made since the start) at the line's own pty: listener is
refused when the device is opened again, not run round for ever.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.service import GatewayService
from serialgw.clients.ptylink import PtyClient
from serialgw.config.file import loadConfig
from serialgw.devices.device import SerialDevice
from serialgw.devices.errors import DeviceError
from tests.shortpaths import shortDirectory


class RuntimePtyLoopTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = shortDirectory(self)
        self.device, self.link = os.path.join(self.dir, "console"), os.path.join(self.dir, "a.pty")

    def gateway(self, text: str) -> GatewayService:
        path = os.path.join(self.dir, "farm.toml")
        with open(path, "w") as f:
            f.write(text)
        service = GatewayService(loadConfig(path), reactor=reactor, waitForDevices=True)
        service.privilegedStartService()
        self.addCleanup(service._closeAll, False)
        # The pty: listeners' links, made by threads of their own: the start
        # waits for them START_WAIT s at most (a loaded machine's may be later).
        for line in service.lines.values():
            for client in line.clients:
                if isinstance(client, PtyClient):
                    self.assertTrue(client.opening.wait(60), f"{client.link}: its link not made in 60 s (a hang, not a "
                                                             "slow machine)")
        return service

    def test_symlinkToOwnPtyRefused(self) -> None:
        """The device path, missing at start, made a symlink to the line's own pty: listener's link: its open is refused as a loop, the line stays down."""
        service = self.gateway(f'[lines.a]\ndevice = "{self.device}"\nlisten = "pty:{self.link}"\nlock = false\n')
        device = service.lines["a"].device
        assert isinstance(device, SerialDevice)
        os.symlink(self.link, self.device)
        assert device.reopener.opener is not None
        error = self.assertRaises(DeviceError, device.reopener.opener)
        slave = os.path.realpath(self.link)
        self.assertEqual(str(error), f"cannot open device {self.device!r}: it is {slave}, the pty of this line's own "
                                     f"pty: listener {('pty:' + self.link)!r}: what is written to it would come back to "
                                     "it for ever (a loop)")
        self.assertFalse(device.up)

    def test_otherLinesPtyAllowed(self) -> None:
        """A device on another line's pty: listener (a null modem, no way back) opens."""
        other = os.path.join(self.dir, "b.pty")
        service = self.gateway(f'[lines.a]\ndevice = "{self.device}"\nlisten = "pty:{self.link}"\nlock = false\n'
                               f'[lines.b]\ndevice = "/dev/null"\nlisten = "pty:{other}"\nlock = false\n')
        os.symlink(other, self.device)
        device = service.lines["a"].device
        assert isinstance(device, SerialDevice) and device.reopener.opener is not None
        port = device.reopener.opener()
        port.close()

    def test_loopThroughTwoLinesRefused(self) -> None:
        """
        a's device made a symlink to b's pty: listener, then b's to a's (the loop the file's check refuses,
        made since): b's open is refused as a loop through line a; a's first one stays (no way back then).
        """
        other, otherDevice = os.path.join(self.dir, "b.pty"), os.path.join(self.dir, "console-b")
        service = self.gateway(f'[lines.a]\ndevice = "{self.device}"\nlisten = "pty:{self.link}"\nlock = false\n'
                               f'[lines.b]\ndevice = "{otherDevice}"\nlisten = "pty:{other}"\nlock = false\n')
        a, b = service.lines["a"].device, service.lines["b"].device
        assert isinstance(a, SerialDevice) and isinstance(b, SerialDevice)
        assert a.reopener.opener is not None and b.reopener.opener is not None
        os.symlink(other, self.device)
        a.reopener._opened(a.reopener.opener())
        self.assertTrue(a.up)
        os.symlink(self.link, otherDevice)
        error = self.assertRaises(DeviceError, b.reopener.opener)
        self.assertEqual(str(error), f"cannot open device {otherDevice!r}: it is {os.path.realpath(self.link)}, the pty "
                                     f"of line 'a''s pty: listener {('pty:' + self.link)!r}, and line 'a''s device is "
                                     f"this line's pty: listener {('pty:' + other)!r}: what is written to it would come "
                                     "back to it for ever (a loop)")
