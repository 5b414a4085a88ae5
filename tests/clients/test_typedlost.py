"""
What a person typed while the device took no input (its queue past the
high-water mark, the person's typing held: C{typedWaiting}) when the
device goes away (unplugged, hung up, C{^] O}): not handed to
a device that is gone (it was, and dropped there unsaid, counted only in
the device's C{dropped} and as sent in C{bytes_to_device}); counted in
C{refused_bytes}, logged once, and said to that person alone, once a loss.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.reading import TYPED_AHEAD_LIMIT
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec
from serialgw.devices.device import SerialDevice
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import TelnetLink
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_sessions import Harness, text
from tests.fakes import RecordingPort, observeLog

FLOOD = 70000
DOWN = "\r\n[serialgw: rack4 is down: Input/output error; waiting for it]\r\n"
BACK = "\r\n[serialgw: rack4 is back]\r\n"


def lost(count: int, why: str) -> str:
    return f"\r\n[serialgw: {count} byte(s) you typed were not sent: rack4 took no input, then went down ({why})]\r\n"


class TypedLostWithTheDeviceTests(SynchronousTestCase):
    """A local device behind a flood (70000 bytes queued, nothing taken), a person's typing held, the device gone."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.ports = [RecordingPort(self.reactor, accept=0)]

        def opener() -> RecordingPort:
            self.ports.append(RecordingPort(self.reactor))
            return self.ports[-1]

        self.device = SerialDevice(self.ports[0], self.reactor, 0.25, opener=opener,
                                   reopenPolicy=lambda n: 0.5 * 2**n)
        self.h = Harness()
        self.h.line = self.line = Line("rack4", self.device, clock=self.reactor)
        self.device.sink = self.line
        self.device.start()
        self.addCleanup(self.device.close)
        self.said: list[dict[str, Any]] = []
        observeLog(self, lambda e: self.said.append(e) if e.get("line") == "rack4" else None)
        # A program floods the device: it takes nothing, its queue is past the high-water mark.
        flooder = RawClient(self.line, Role.WRITER, listener=parseListener("raw+4444"), clock=self.reactor)
        self.flooderT = StringTransport()
        flooder.makeConnection(self.flooderT)
        flooder.dataReceived(b"f" * FLOOD)
        self.assertFalse(self.line.writable)

    def person(self, port: int) -> tuple[TelnetClient, StringTransport]:
        return self.h.telnet(port=port)

    def lossEvents(self) -> list[dict[str, Any]]:
        return [e for e in self.said if e.get("log_format", "").startswith("{line}: {peer}: {count} byte(s) it typed")]

    def test_unpluggedMidFloodTypingHeld(self) -> None:
        """Unplugged (a read fails EIO) with 4 bytes typed held: the person told how many and why, before the down notice; refused_bytes 4, the device's dropped the 70000 queued only, none counted sent; logged once with named fields; back, typing after it reaches the new port."""
        typist, typistT = self.person(1000)
        typist.dataReceived(b"abcd")
        self.assertEqual(typist.typedWaiting, 4)
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertEqual(text(typistT), lost(4, "Input/output error") + DOWN)
        self.assertEqual(typist.typedWaiting, 0)
        self.assertEqual((self.line.refused, self.device.dropped, self.device.unsent), (4, FLOOD, FLOOD))
        self.assertEqual(self.line.bytesToDevice, 0)
        [event] = self.lossEvents()
        self.assertEqual((event["peer"], event["count"], event["reason"]), (typist.peer, 4, "Input/output error"))
        self.assertEqual(formatEvent(event), f"rack4: {typist.peer}: 4 byte(s) it typed while the device took no "
                                             "input were not sent: the device went down (Input/output error)")
        self.reactor.advance(0.5)
        self.assertEqual(text(typistT), BACK)
        typist.dataReceived(b"ls\r")
        self.assertEqual(self.ports[1].written(), b"ls\r")
        self.assertEqual(self.line.refused, 4)

    def test_hangUpWhileReadingPaused(self) -> None:
        """A hang-up seen by the look made while reading is paused (HANGUP_CHECK): the same, said once."""
        typist, typistT = self.person(1000)
        typist.dataReceived(b"reboot\r")
        self.device.pauseReading()
        self.ports[0].hung = True
        self.reactor.advance(1.0)
        self.assertEqual(text(typistT), lost(7, "hung up")
                         + "\r\n[serialgw: rack4 is down: hung up; waiting for it]\r\n")
        self.assertEqual(self.line.refused, 7)
        self.assertEqual(len(self.lossEvents()), 1)

    def test_reopenWithTypingHeld(self) -> None:
        """^] O by the person whose typing is held: told what was not sent and why (reopened by it), then down, the answer, and back."""
        typist, typistT = self.person(1000)
        typist.dataReceived(b"abcd\x1dO")
        why = f"reopened by {typist.peer}"
        self.assertEqual(text(typistT), lost(4, why) + f"\r\n[serialgw: rack4 is down: {why}; waiting for it]\r\n"
                         "\r\n[serialgw: rack4: opening fake again]\r\n")
        self.assertEqual((self.line.refused, self.device.dropped, self.line.bytesToDevice), (4, FLOOD, 0))
        self.assertEqual(len(self.lossEvents()), 1)
        self.reactor.advance(0)
        self.assertEqual(text(typistT), BACK)
        typist.dataReceived(b"after")
        self.assertEqual(self.ports[1].written(), b"after")

    def test_onlyThePersonWhoseTypingWasLost(self) -> None:
        """Two people, only one of whom typed while the device took no input: the other is told the device went, nothing of typing; the flooding program nothing."""
        typist, typistT = self.person(1000)
        other, otherT = self.person(1001)
        text(typistT)
        typist.dataReceived(b"abcd")
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertEqual(text(typistT), lost(4, "Input/output error") + DOWN)
        self.assertEqual(text(otherT), DOWN)
        self.assertEqual(self.flooderT.value(), b"")
        self.assertEqual([e["peer"] for e in self.lossEvents()], [typist.peer])
        self.reactor.advance(0.5)
        other.dataReceived(b"x")
        typist.dataReceived(b"y")
        self.assertEqual(self.ports[1].written(), b"xy")

    def test_floodOfTypingOneNotice(self) -> None:
        """A flood of typing held (past TYPED_AHEAD_LIMIT, many reads): one notice with the count of all of it, one log line; typing on while it is down adds none."""
        typist, typistT = self.person(1000)
        reads = 0
        while typistT.producerState == "producing":
            typist.dataReceived(b"z" * 1000)
            reads += 1
        held = typist.typedWaiting
        self.assertEqual((reads, held), (TYPED_AHEAD_LIMIT // 1000 + 1, 5000))
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        for _ in range(100):
            typist.dataReceived(b"z" * 1000)
        self.assertEqual(text(typistT), lost(held, "Input/output error") + DOWN)
        self.assertEqual(self.line.refused, held)
        self.assertEqual(len(self.lossEvents()), 1)


class TypedLostWithALinkTests(SynchronousTestCase):
    def test_remoteLinkLostTypingHeld(self) -> None:
        """A remote console's link full (its transport paused it), a person's typing held, the link lost: told how many and why, counted refused, not given the link that went; typing on the next link reaches it."""
        clock = Clock()
        device = RemoteDevice(DeviceSpec("telnet", host="127.0.0.1", port=1), clock)
        h = Harness()
        h.line = line = Line("rack4", device, clock=clock)
        device.sink = line
        link = TelnetLink(device)
        link.makeConnection(StringTransport())
        typist, typistT = h.telnet(port=1000)
        other, otherT = h.telnet(port=1001)
        text(typistT)
        device.pauseProducing()
        self.assertFalse(line.writable)
        typist.dataReceived(b"abcd")
        self.assertEqual(typist.typedWaiting, 4)
        link.connectionLost(Failure(ConnectionDone()))
        why = "Connection was closed cleanly"
        down = f"\r\n[serialgw: rack4 is down: {why}; waiting for it]\r\n"
        self.assertEqual(text(typistT), lost(4, why) + down)
        self.assertEqual(text(otherT), down)
        self.assertEqual((line.refused, device.dropped, line.bytesToDevice), (4, 0, 0))
        again = StringTransport()
        link = TelnetLink(device)
        link.makeConnection(again)
        again.clear()
        typist.dataReceived(b"ls\r")
        self.assertEqual(again.value(), b"ls\r")
        device.close()
