"""
Tests for a device closed (a stop, a reload that removes its line) while a
mover runs: what the mover moved is the device's output from before the
close (L{serialgw.devices.floodhandoff.FloodReading}).
"""

from __future__ import annotations

import os

from tests.devices.test_floodread import Flooding


class CloseTests(Flooding):
    def test_closeDeliversWhatThePipeHolds(self) -> None:
        """
        Closed while a mover runs: what it had moved into its pipe reaches
        the line first, as the reactor's own reads had; what the tty still
        holds is dropped, as without a mover.
        """
        reader = self.handOver()
        sent = len(self.sink.data)
        self.deviceSends(b"moved before the close")
        self.runMover(reader)
        os.write(self.master, b"never read")
        self.device.close()
        self.assertEqual(b"".join(self.sink.data[sent:]), b"moved before the close")
        self.assertTrue(reader.stopped)
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [])

    def test_closedByTheDeliveryClosesOnce(self) -> None:
        """A line that closes its device on what the pipe delivers at the close: closed once, nothing delivered twice."""
        reader = self.handOver()
        sent = len(self.sink.data)
        self.deviceSends(b"bye")
        self.runMover(reader)
        received = self.sink.deviceDataReceived

        def closeOnIt(data: bytes) -> None:
            received(data)
            self.device.close()

        self.sink.deviceDataReceived = closeOnIt  # type: ignore[method-assign]
        self.device.close()
        self.assertEqual(self.sink.data[sent:], [b"bye"])
        self.assertTrue(self.device.closed)
        self.assertTrue(reader.stopped)

    def test_deliverReadWhilePaused(self) -> None:
        """
        deliverRead (a reload is about to send the line's people away): what
        the mover moved reaches the line now, though the device is paused
        (a policy=block client behind); the tty's own bytes stay unread.
        """
        reader = self.handOver()
        sent = len(self.sink.data)
        self.deviceSends(b"moved before the reload")
        self.runMover(reader)
        self.device.pauseReading()
        os.write(self.master, b"not read yet")
        self.device.deliverRead()
        self.assertEqual(b"".join(self.sink.data[sent:]), b"moved before the reload")
