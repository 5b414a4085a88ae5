"""
twistd -u/-g: the ptys the gateway makes before privileges drop (pty:
devices and listeners) are given to the user it runs as, links too; they
were root's, 0600, and nobody but root could open them.
"""

from __future__ import annotations

import os

from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.app.process import TwistdGatewayService
from serialgw.app.service import GatewayService
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig


class RunAsTests(SynchronousTestCase):
    def test_fromTwistdOptions(self) -> None:
        """-u and -g as twistd reads them; a group left out is the user's (as twistd takes it); neither: unchanged (-1)."""
        import pwd

        nobody = pwd.getpwnam("nobody")
        for argv, expected in ((["-u", "nobody", "-g", "0"], (nobody.pw_uid, 0)),
                               (["-u", "nobody"], (nobody.pw_uid, nobody.pw_gid)),
                               ([], (-1, -1))):
            options = ServerOptions()
            options.parseOptions([*argv, "serialgw", "--device", "pty:/tmp/x"])
            self.assertEqual(tap.runAs(options.subOptions.parent), expected)
        self.assertEqual(tap.runAs(None), (-1, -1))

    def test_ptysGivenAway(self) -> None:
        """A pty: device and a pty: listener made as root are the -u user's and group's, their links too."""
        if os.geteuid() != 0:
            self.skipTest("giving files away takes root")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        device, listener = os.path.join(directory, "dev"), os.path.join(directory, "cl")
        line = LineConfig("t", DeviceSpec("pty", device), listeners=(parseListener(f"pty:{listener}"),))
        service = TwistdGatewayService([line])
        GatewayService.privilegedStartService(service)
        self.addCleanup(service.stopService)
        service.runAs = (65534, 65533)
        service.givePtys()
        for link in (device, listener):
            self.assertEqual([(st.st_uid, st.st_gid) for st in (os.stat(link), os.lstat(link))],
                             [(65534, 65533), (65534, 65533)])
