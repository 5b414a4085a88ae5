"""
A reload that changes a C{pty:} listener's options (C{ro}, C{outbuf=},
C{policy=}) and keeps its link: the pty stays (the same slave behind the
same link, the program on it undisturbed, no byte lost) and the new options
apply to it in place.  A gateway on fake ports and a memory reactor; the
client ptys are real (their writes driven by hand).
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.service import GatewayService
from serialgw.clients.ptylink import PtyClient, keptInPlace
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingPort
from tests.realio import readable

CHANGED = {"added": [], "changed": ["a"], "removed": []}


class PtyKeptTests(SynchronousTestCase):
    """A pty: listener changed in place keeps its pty."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        self.link = os.path.abspath(self.mktemp())
        self.log = LogEvents(self)

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        self.ports.append(port)
        return port

    def config(self, *listeners: str) -> LineConfig:
        return LineConfig("a", DeviceSpec("tty", "/dev/fake-a"), lock=False,
                          listeners=tuple(parseListener(text) for text in listeners))

    def gateway(self, listener: str) -> GatewayService:
        service = GatewayService([self.config(listener)], reactor=self.clock, openPort=self.openPort)
        service.startService()
        self.addCleanup(lambda: self.successResultOf(service.stopService()) if service.lines else None)
        return service

    def pty(self, service: GatewayService) -> PtyClient:
        (client,) = [c for c in service.lines["a"].clients if isinstance(c, PtyClient)]
        return client

    def program(self) -> int:
        """A program with the link open, as its serial port."""
        fd = os.open(self.link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        return fd

    def read(self, fd: int, count: int) -> bytes:
        """C{count} bytes from C{fd} as the kernel hands them on (a pty passes them on its own time), or fewer after 10 s."""
        got = b""
        while len(got) < count and readable(fd, 10):
            data = os.read(fd, count - len(got))
            if not data:
                break  # its pty closed: end of file
            got += data
        return got

    def typed(self, client: PtyClient, program: int, data: bytes) -> None:
        """The program types C{data}; the gateway reads it from the master once it is there."""
        os.write(program, data)
        readable(client, 10)
        client.doRead()

    def output(self, service: GatewayService, data: bytes) -> None:
        """Device output, written to the pty."""
        service.lines["a"].deviceDataReceived(data)
        self.pty(service).doWrite()

    def test_madeReadOnly(self) -> None:
        """
        ro added: the same pty behind the same link, the program's open
        descriptor reads on (what came before and after, every byte; it read
        end of file, the link pointing at a new pty), and what it types is refused
        and counted, told to the others and logged.
        """
        service = self.gateway(f"pty:{self.link}")
        before = self.pty(service)
        slave = os.readlink(self.link)
        program = self.program()
        self.output(service, b"before ")
        self.assertEqual(self.successResultOf(service.reload([self.config(f"raw,ro+pty:{self.link}")])), CHANGED)
        self.assertIs(self.pty(service), before)
        self.assertEqual((os.readlink(self.link), before.slaveName), (slave, slave))
        self.output(service, b"after")
        self.assertEqual(self.read(program, 12), b"before after")
        self.assertIs(before.role, Role.READONLY)
        self.typed(before, program, b"typed")
        self.assertEqual(service.lines["a"].refused, 5)
        self.assertEqual(self.ports[0].written(), b"")
        said = [e["text"] for e in self.log.events if "text" in e]
        self.assertEqual(said, [f"pty:{self.link} is read-only now: a reload made a's listener 'raw,ro+pty:{self.link}' read-only"])

    def test_readOnlyTakenOut(self) -> None:
        """
        ro taken out: the same pty, and its program writes again (it cannot
        connect again to be given the right, as a network client does: the
        link leads to this same pty), told and logged.
        """
        service = self.gateway(f"raw,ro+pty:{self.link}")
        before = self.pty(service)
        program = self.program()
        self.assertEqual(self.successResultOf(service.reload([self.config(f"pty:{self.link}")])), CHANGED)
        self.assertIs(self.pty(service), before)
        self.assertIs(before.role, Role.WRITER)
        self.typed(before, program, b"typed")
        self.assertEqual((service.lines["a"].refused, self.ports[0].written()), (0, b"typed"))
        said = [e["text"] for e in self.log.events if "text" in e]
        self.assertEqual(said, [f"pty:{self.link} writes again: a reload took ro out of a's listener 'pty:{self.link}'"])

    def test_outbufAndPolicyThenRemoved(self) -> None:
        """
        outbuf= and policy= changed: the same pty, its guard and buffer at
        the new bound and policy; a later reload that removes the listener
        closes that pty and its link (the reload's record of it follows the
        new options).
        """
        service = self.gateway(f"pty:{self.link}")
        before = self.pty(service)
        self.assertEqual(
            self.successResultOf(service.reload([self.config(f"raw,outbuf=8192,policy=block+pty:{self.link}")])),
            CHANGED)
        self.assertIs(self.pty(service), before)
        self.assertEqual((before.guard.bound, before.guard.policy, before.bufferSize), (8192, "block", 8192))
        self.assertEqual(service.configs[0].listeners, (parseListener(f"raw,outbuf=8192,policy=block+pty:{self.link}"),))
        self.assertEqual(self.successResultOf(service.reload([self.config("raw+tcp:0:interface=127.0.0.1")])),
                         CHANGED)
        self.assertFalse(os.path.lexists(self.link))
        self.assertEqual([c for c in service.lines["a"].clients if isinstance(c, PtyClient)], [])

    def test_linkChangedIsANewPty(self) -> None:
        """A pty: listener whose link changes is another listener: the old pty and link go, a new pty is behind the new link."""
        service = self.gateway(f"pty:{self.link}")
        before = self.pty(service)
        other = os.path.abspath(self.mktemp())
        self.assertEqual(self.successResultOf(service.reload([self.config(f"raw,ro+pty:{other}")])), CHANGED)
        after = self.pty(service)
        self.assertIsNot(after, before)
        self.assertFalse(os.path.lexists(self.link))
        self.assertEqual(os.readlink(other), after.slaveName)
        self.assertIs(after.role, Role.READONLY)


class KeptInPlaceTests(SynchronousTestCase):
    """Which pty: listeners a reload keeps and retunes, and which it closes and makes anew."""

    def test_pairs(self) -> None:
        """The same link with other options is kept (linkless too, one on each side); a new link, or two linkless ones, is closed and made anew; one unchanged is neither."""
        def specs(*texts: str) -> list[Any]:
            return [parseListener(text) for text in texts]

        old = specs("pty:/run/a", "pty:/run/b", "raw,ro+pty:/run/c", "pty", "raw+4000")
        new = specs("raw,ro+pty:/run/a", "pty:/run/b2", "raw,ro+pty:/run/c", "raw,ro+pty", "raw,ro+4000")
        self.assertEqual(keptInPlace(old, new), {old[0]: new[0], old[3]: new[3]})
        self.assertEqual(keptInPlace(specs("pty", "raw,outbuf=9999+pty"), specs("raw,ro+pty")), {})
