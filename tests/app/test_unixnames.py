"""
A unix socket path too long for a socket name (past sun_path: 107 bytes
and a NUL, 108 for an abstract name) on a dial-out or a device: refused at
start and by a reload, naming it, as C{--check} said (the start went on,
and each connect was a logged TypeError inside Twisted).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.binding import StartupError
from serialgw.app.service import GatewayService
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.realio import ptyLine

# (Also in tests.app.test_reloadplaces: a reload refuses them.)
LONG = "/tmp/" + "b" * 103
PAST = "unix socket '" + LONG + "' is 108 bytes, past the 107 of a unix socket name: give a shorter path"


class StartTests(SynchronousTestCase):
    def started(self, config: LineConfig) -> str:
        service = GatewayService([config], waitForDevices=True)
        with self.assertRaises(StartupError) as caught:
            service.privilegedStartService()
        self.addCleanup(service.stopService)
        return str(caught.exception)

    def test_dialOut(self) -> None:
        """A unix dial-out whose path is past a socket name's bytes stops the start with one line naming it."""
        self.assertEqual(self.started(ptyLine("/dev/fake", f"unix:{LONG},nowait", name="a")),
                         f"line 'a': listener 'unix:{LONG},nowait': {PAST}")

    def test_device(self) -> None:
        """A unix: device whose path is past a socket name's bytes stops the start with one line naming it."""
        self.assertEqual(self.started(LineConfig("a", DeviceSpec("unix", LONG))), f"line 'a': device 'unix:{LONG}': {PAST}")
