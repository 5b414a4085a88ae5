"""
The escape menu's O (conserver's ^Eco): the line's device closed and opened
again, or, down, opened now; for those who may write, at most REOPENS a
line in REOPEN_WINDOW s, whoever asks; refusals said to the person who asked.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escape import HELP
from serialgw.devices.device import SerialDevice
from serialgw.line.hub import REOPEN_WINDOW, REOPENS, Line
from tests.clients.test_sessions import Harness, text
from tests.fakes import RecordingPort

ASKED = "reopened by 192.0.2.9:1000"


class ReopenKeyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()
        self.h.device.name = "/dev/ttyUSB0"
        self.log = self.h.eventLog()
        self.client, self.t = self.h.telnet()
        self.log.events.clear()

    def type(self, data: bytes) -> str:
        self.client.dataReceived(data)
        self.h.line.clock.advance(0)
        return text(self.t)

    def test_writerReopens(self) -> None:
        """A writer's O asks the device anew, naming the person; told; up, the device's own going is the news (no event here)."""
        self.assertEqual(self.type(b"\x1dO"), "\r\n[serialgw: rack4: opening /dev/ttyUSB0 again]\r\n")
        self.assertEqual(self.h.device.events, [("reopen", ASKED)])
        self.assertEqual(self.log.events, [])
        self.assertIn("O reopen the device", HELP)

    def test_downOpenedNow(self) -> None:
        """The device down: O opens it now; the console log says who asked and why it was down."""
        self.h.device.up, self.h.device.downReason = False, "hung up"
        self.assertEqual(self.type(b"\x1dO"), "\r\n[serialgw: rack4: opening /dev/ttyUSB0 now]\r\n")
        self.assertEqual(self.log.events, ["device opened now, asked by 192.0.2.9:1000 (it was down: hung up)"])

    def test_refusedAndSaid(self) -> None:
        """A watcher, a read-only person, and the device's own refusal (a break under way): nothing asked of the device, each said."""
        line, device = self.h.line, self.h.device
        line.mode = "exclusive"
        watcher, watcherT = self.h.telnet(port=1001)
        watcher.dataReceived(b"\x1dO")
        self.assertEqual(text(watcherT), "\r\n[serialgw: rack4 not reopened: you only watch: take write first]\r\n")
        reader, readerT = self.h.telnet("telnet,ro,escape=^]+4444", port=1002)
        reader.dataReceived(b"\x1dO")
        self.assertEqual(text(readerT), "\r\n[serialgw: rack4 not reopened: read-only]\r\n")
        self.assertEqual(device.events, [])
        text(self.t)  # (their coming)
        device.noReopen = "a break is under way; ask again once it is over"
        self.assertEqual(self.type(b"\x1dO"), "\r\n[serialgw: rack4 not reopened: a break is under way; ask again "
                                              "once it is over]\r\n")
        self.assertEqual([e for e in self.log.events if "open" in e], [])

    def test_boundedALine(self) -> None:
        """At most REOPENS a line in REOPEN_WINDOW s, whoever asks: one more is refused and said, to a new connection of the same person and to another person too; after the window, again."""
        refused = (f"\r\n[serialgw: rack4 not reopened: at most {REOPENS} reopens of it in {REOPEN_WINDOW:g} s, "
                   "whoever asks]\r\n")
        for _ in range(REOPENS):
            self.type(b"\x1dO")
        self.assertEqual(self.type(b"\x1dO"), refused)
        # (Reconnecting gives no fresh allowance: the bound is the line's.)
        self.client.connectionLost()
        again, againT = self.h.telnet(port=1003)
        text(againT)
        again.dataReceived(b"\x1dO")
        self.assertEqual(text(againT), refused)
        other, otherT = self.h.telnet(port=1004)
        text(otherT)
        other.dataReceived(b"\x1dO")
        self.assertEqual(text(otherT), refused)
        self.assertEqual(len(self.h.device.events), REOPENS)
        self.h.line.clock.advance(REOPEN_WINDOW)
        other.dataReceived(b"\x1dO")
        self.assertEqual(text(otherT), "\r\n[serialgw: rack4: opening /dev/ttyUSB0 again]\r\n")
        self.assertEqual(len(self.h.device.events), REOPENS + 1)

    def test_refusalsNotCounted(self) -> None:
        """A reopen the device refuses (a break under way) spends none of the line's REOPENS."""
        self.h.device.noReopen = "a break is under way; ask again once it is over"
        for _ in range(REOPENS + 2):
            self.type(b"\x1dO")
        self.h.device.noReopen = ""
        for _ in range(REOPENS):
            self.assertEqual(self.type(b"\x1dO"), "\r\n[serialgw: rack4: opening /dev/ttyUSB0 again]\r\n")


class ReopenedDeviceTests(SynchronousTestCase):
    def test_everyoneToldWentAndBack(self) -> None:
        """On a local device: everyone on the line is told it went (naming who) and came back, the asker answered between; typing after it reaches the new port."""
        reactor = MemoryReactorClock()
        ports = [RecordingPort(reactor)]

        def opener() -> RecordingPort:
            ports.append(RecordingPort(reactor))
            return ports[-1]

        device = SerialDevice(ports[0], reactor, 0.25, opener=opener, reopenPolicy=lambda n: 0.5 * 2**n)
        h = Harness()
        h.line = Line("rack4", device, clock=reactor)
        device.sink = h.line
        device.start()
        log = h.eventLog()
        asker, askerT = h.telnet()
        other, otherT = h.telnet(port=1001)
        text(askerT), text(otherT)
        asker.dataReceived(b"\x1dO")
        self.assertEqual(text(otherT), f"\r\n[serialgw: rack4 is down: {ASKED}; waiting for it]\r\n")
        self.assertEqual(text(askerT), f"\r\n[serialgw: rack4 is down: {ASKED}; waiting for it]\r\n"
                                       "\r\n[serialgw: rack4: opening fake again]\r\n")
        reactor.advance(0)
        self.assertEqual((text(askerT), text(otherT)), ("\r\n[serialgw: rack4 is back]\r\n",) * 2)
        asker.dataReceived(b"ls\r")
        self.assertEqual(ports[1].written(), b"ls\r")
        self.assertEqual(log.events[-2:], [f"device down ({ASKED}); 2 client(s) stay connected", "device up"])
        device.close()
