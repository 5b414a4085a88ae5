"""
A unix: remote device that reaches one of its own line's unix listeners
once it runs (a symlink or hard link put at its path after the start's
loop check, or the path not there then): not used, said, tried again with
backoff; a loop otherwise (one byte typed went round for ever, a core
busy).
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.ownlisteners import serveWatchAll
from serialgw.app.service import GatewayService
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import WatchAllSpec
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import RawLink
from serialgw.line.hub import Line
from tests.fakes import LogEvents


class _Socket:
    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def getpeername(self) -> Any:
        return self.peer


class UnixTransport(StringTransport):
    """A connected unix socket's transport: its peer's address is the name the listener it reached is bound to."""

    def __init__(self, peer: Any) -> None:
        StringTransport.__init__(self)
        self.socket = _Socket(peer)
        self.aborted = False

    def getHandle(self) -> _Socket:
        return self.socket

    def abortConnection(self) -> None:
        self.aborted = True


OWN = "its own line's listener '/run/gw/a.sock': what is written to it would come back to it for ever"
ALL = ("the watch-all listener '/run/gw/all.sock', which watches line 'a': each line of its output would come back to it "
       "from there, prefixed, for ever")


class OwnListenerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.log = LogEvents(self)

    def linked(self, peer: Any) -> tuple[RemoteDevice, UnixTransport]:
        device = RemoteDevice(DeviceSpec("unix", "/run/vm/x.sock"), self.clock,
                              ownSockets=lambda: {"/run/gw/a.sock": OWN, "\0gw-abstract": OWN, "/run/gw/all.sock": ALL})
        device.sink = Line("a", device, clock=self.clock)
        transport = UnixTransport(peer)
        RawLink(device).makeConnection(transport)
        return device, transport

    def errors(self) -> list[str]:
        return [e["reason"] for e in self.log.events if e.get("log_format") == "{device}: {reason}"]

    def test_ownListenerNotUsed(self) -> None:
        """Its connection reached a socket of its own line's (through a link put there since): cut, not up, why said once."""
        device, transport = self.linked("/run/gw/a.sock")
        self.assertTrue(transport.aborted)
        self.assertFalse(device.up)
        reason = ("it is its own line's listener '/run/gw/a.sock': what is written to it would come back to "
                  "it for ever (a loop); not used, tried again with backoff")
        self.assertEqual(device.downReason, reason)
        device.write(b"x")
        self.assertEqual(transport.value(), b"")
        RawLink(device).makeConnection(UnixTransport("/run/gw/a.sock"))
        self.assertEqual(self.errors(), [reason])

    def test_watchAllListenerNotUsed(self) -> None:
        """Its connection reached a watch-all listener that watches its line (a link put there since): a loop too (seen live: a core 100 % busy, each line of output back prefixed), cut, why said."""
        device, transport = self.linked("/run/gw/all.sock")
        self.assertEqual((transport.aborted, device.up), (True, False))
        self.assertEqual(device.downReason, f"it is {ALL} (a loop); not used, tried again with backoff")

    def test_abstractName(self) -> None:
        """An abstract name is the peer's address too (bytes, its leading NUL)."""
        device, transport = self.linked(b"\0gw-abstract")
        self.assertTrue(transport.aborted)
        self.assertFalse(device.up)

    def test_anotherListener(self) -> None:
        """A console's own socket: used as before."""
        device, transport = self.linked("/run/vm/x.sock")
        self.assertFalse(transport.aborted)
        self.assertTrue(device.up)
        self.assertEqual(self.errors(), [])

    def test_gatewayGivesItsSockets(self) -> None:
        """Each remote device knows the names its own line's unix listeners are bound to (another line's is a chain, not a loop)."""
        here = self.mktemp()
        os.mkdir(here)
        sock, other = os.path.join(here, "a.sock"), os.path.join(here, "b.sock")
        config = LineConfig("a", DeviceSpec("unix", "/run/vm/x.sock"),
                            listeners=(parseListener(f"raw+unix:{sock}"), parseListener("raw+tcp:4001")))
        chained = LineConfig("b", DeviceSpec("unix", sock), listeners=(parseListener(f"raw+unix:{other}"),))
        service = GatewayService([config, chained], reactor=self.clock)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        device = service.lines["a"].device
        assert isinstance(device, RemoteDevice) and device._ownSockets is not None
        self.assertEqual(device._ownSockets(), {sock: f"its own line's listener {sock!r}: what is written to it would "
                                                      "come back to it for ever"})
        device = service.lines["b"].device
        assert isinstance(device, RemoteDevice) and device._ownSockets is not None
        self.assertEqual(list(device._ownSockets()), [other])

    def test_gatewayGivesItsWatchAllSockets(self) -> None:
        """A unix watch-all listener watching a line is among the sockets its remote device must not reach (a path not there at the start's check, or a link put there since, was used: a loop); one that watches other lines is not."""
        here = self.mktemp()
        os.mkdir(here)
        mine, others = os.path.join(here, "all.sock"), os.path.join(here, "others.sock")
        config = LineConfig("a", DeviceSpec("unix", os.path.join(here, "x.sock")),
                            listeners=(parseListener("raw+tcp:0:interface=127.0.0.1"),))
        service = GatewayService([config], reactor=self.clock,
                                 watchAll=WatchAllSpec((parseListener(f"raw+unix:{mine}"),), ("a", "c")))
        serveWatchAll(service, parseListener(f"raw+unix:{others}"), ("b*",))
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        device = service.lines["a"].device
        assert isinstance(device, RemoteDevice) and device._ownSockets is not None
        self.assertEqual(device._ownSockets(), {mine: f"the watch-all listener {mine!r}, which watches line 'a': each "
                                                      "line of its output would come back to it from there, prefixed, "
                                                      "for ever"})
