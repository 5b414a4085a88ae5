"""
A device opened again because a person asked (the escape menu's O,
conserver's ^Eco: IDevice.reopen): a local one up is closed and opened
again at once, its sink told it went and came back; one down is opened now
rather than after its backoff; refused while a break is under way, closed,
or with no opener.  A remote console's link is cut and dialled again.
"""

from __future__ import annotations

import errno

from twisted.internet.error import ConnectionAborted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.device import SerialDevice
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import TelnetLink
from serialgw.line.hub import Line
from tests.devices.test_device import ReopeningDevice
from tests.fakes import RecordingClient, RecordingPort

WHY = "reopened by ops1 (192.0.2.7:5000)"


class LocalReopenTests(ReopeningDevice, SynchronousTestCase):
    def test_upClosedAndOpenedAgain(self) -> None:
        """Up: closed at once (what it held dropped and counted unsent), the sink told why, opened again at the end of the turn with its settings and DTR as they were; no backoff wait."""
        self.device.apply(SerialSettings(9600, stopbits=2))
        self.device.setModemLine("dtr", False)
        self.ports[0].accept = 0
        self.device.write(b"queued")
        self.assertIsNone(self.device.reopen(WHY))
        self.assertEqual((self.device.up, self.device.downReason), (False, WHY))
        self.assertTrue(self.ports[0].closed)
        self.assertEqual([str(reason.getErrorMessage()) for reason in self.sink.lost], [WHY])  # type: ignore[attr-defined]
        self.assertEqual((self.device.dropped, self.device.unsent), (6, 6))
        self.assertEqual((len(self.ports), self.sink.ups), (1, 0))
        self.reactor.advance(0)
        self.assertEqual((len(self.ports), self.sink.ups, self.device.up, self.device.downReason), (2, 1, True, None))
        self.assertEqual(self.ports[1].settings, SerialSettings(9600, stopbits=2))
        self.assertEqual(self.device.modemLines["dtr"], False)
        self.assertIn(self.device, self.reactor.getReaders())

    def test_driverQueuePurgedFirst(self) -> None:
        """Up with bytes in the driver's queue (flow control holding them): purged before the close, as close and rest do (Linux's close waits for them, closing_wait, 30 s, and the reactor with it); counted dropped and unsent."""
        self.ports[0].pending = 5
        self.assertIsNone(self.device.reopen(WHY))
        self.assertEqual([(what, value) for _, what, value in self.ports[0].events][-2:],
                         [("purge", (False, True)), ("close", None)])
        self.assertEqual((self.device.dropped, self.device.unsent), (5, 5))
        self.reactor.advance(0)
        self.assertEqual((len(self.ports), self.device.up), (2, True))

    def test_downOpenedNow(self) -> None:
        """Down and waiting for its backoff: the attempt is made now; failing, the backoff goes on from there, and O again tries at once again."""
        self.absent = 1
        self.ports[-1].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertIsNone(self.device.reopen(WHY))
        self.reactor.advance(0)
        self.assertEqual((self.absent, self.device.up), (0, False))
        self.assertEqual(self.device.downReason, "cannot open device 'fake': No such file or directory")
        self.assertIsNone(self.device.reopen(WHY))
        self.reactor.advance(0)
        self.assertEqual((len(self.ports), self.device.up, self.sink.ups, len(self.sink.lost)), (2, True, 1, 1))

    def test_refused(self) -> None:
        """A break under way (its end would be lost with the port), a closed device, one with no opener: refused, saying why, nothing closed."""
        self.assertTrue(self.device.sendBreak())
        self.assertEqual(self.device.reopen(WHY), "a break is under way; ask again once it is over")
        self.assertEqual((self.device.up, self.ports[0].closed, self.sink.lost), (True, False, []))
        self.reactor.advance(0.25)
        alone = SerialDevice(RecordingPort(self.reactor), self.reactor, 0.25, self.sink)
        self.assertEqual(alone.reopen(WHY), "fake cannot be opened again")
        alone.close()
        self.assertEqual(alone.reopen(WHY), "fake is closed")


class RemoteReopenTests(SynchronousTestCase):
    def test_linkCutAndSaid(self) -> None:
        """A remote console's link up: cut (aborted), its line told it went because of the person, not 'Connection was aborted'; not connected, or a break under way: refused, saying why."""
        device = RemoteDevice(DeviceSpec("telnet", host="127.0.0.1", port=1), Clock())
        line = Line("t", device, clock=Clock())
        device.sink = line
        person = RecordingClient("ops1:1")
        line.attach(person)
        self.assertEqual(device.reopen(WHY), "telnet:127.0.0.1:1 is not connected: it is dialled again with backoff by "
                                             "itself")
        transport = StringTransport()
        link = TelnetLink(device)
        link.makeConnection(transport)
        self.assertTrue(device.up)
        self.assertTrue(device.sendBreak())
        self.assertEqual(device.reopen(WHY), "a break is under way; ask again once it is over")
        device.stopBreak()
        self.assertIsNone(device.reopen(WHY))
        self.assertTrue(transport.disconnecting)
        link.connectionLost(Failure(ConnectionAborted()))
        self.assertEqual((device.up, device.downReason, line.up), (False, WHY, False))
        device.close()
