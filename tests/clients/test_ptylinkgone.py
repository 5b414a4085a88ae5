"""
A pty's link removed while the gateway runs (by hand, by a cleanup of
/tmp): a reload makes it again, to the same pty, the program on it
undisturbed; what someone put at its path instead is left as it is, and
said.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import TestCase

from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.fakes import observeLog
from tests.realio import ptysLinked, startedPty, startGateway, testLockDir


class LinkGoneTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        observeLog(self, self.events.append)

    def said(self, text: str) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events if text in formatEvent(e)]

    async def test_listenerLinkMadeAgainByAReload(self) -> None:
        """A pty: listener's link removed: a reload (nothing changed) makes it again, to the same pty; a file put there instead is left, and said."""
        device = startedPty(self)
        link = os.path.abspath(self.mktemp())
        config = LineConfig("t", DeviceSpec("tty", device.slaveName), listeners=(parseListener(f"pty:{link}"),),
                            lockDir=testLockDir())
        service = startGateway(self, config)
        await ptysLinked(service)
        target = os.readlink(link)
        os.unlink(link)
        await service.reload([config])
        self.assertEqual(os.readlink(link), target)
        self.assertEqual(len(self.said(f"pty:{link}: its link {link!r} was gone: made again")), 1)
        os.unlink(link)
        with open(link, "w") as f:
            f.write("someone's")
        await service.reload([config])
        with open(link) as f:
            self.assertEqual(f.read(), "someone's")
        self.assertEqual(len(self.said(f"its link {link!r} is not a symlink now: left as it is")), 1)
        os.unlink(link)

    async def test_deviceLinkMadeAgainByAReload(self) -> None:
        """A pty: device's link removed: a reload (nothing changed) makes it again, to the same pty."""
        link = os.path.abspath(self.mktemp())
        config = LineConfig("t", DeviceSpec("pty", link))
        service = startGateway(self, config)
        target = os.readlink(link)
        os.unlink(link)
        await service.reload([config])
        self.assertEqual(os.readlink(link), target)
        os.symlink("/dev/null", link + ".other")
        os.replace(link + ".other", link)
        await service.reload([config])
        self.assertEqual(os.readlink(link), "/dev/null")
        self.assertEqual(len(self.said(f"t: its pty's link {link!r} is a symlink to '/dev/null' now: left as it is")), 1)
        os.unlink(link)
