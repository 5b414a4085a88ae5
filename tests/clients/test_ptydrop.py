"""
A client pty whose program reads slowly: what does not fit is dropped and
counted, said once when it starts and once when the program has caught up,
not a log line every other chunk.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.ptylink import OUTBUF, PtyClient
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog


class SlowReaderTests(SynchronousTestCase):
    """Dropping for a slow pty reader is one line at its start and one at its end, with the count."""

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace") == "serialgw.clients.ptylink":
                self.events.append(event)

        observeLog(self, observe)

    def readAll(self, client: PtyClient) -> int:
        """The program reads everything there is, the gateway writing what waits meanwhile."""
        total = 0
        while True:
            client.doWrite()
            try:
                data = os.read(client._slave, 65536)
            except BlockingIOError:
                data = b""
            if not data and not (len(client.dataBuffer) - client.offset + client._tempDataLen):
                return total
            total += len(data)

    def test_slowReaderLogsTwice(self) -> None:
        """Chunks that fit and chunks that do not, alternating (a program reading a little at a time): one line, then one with the count."""
        line = Line("t", RecordingDevice(), clock=Clock())
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        os.set_blocking(client._slave, False)
        chunk = b"x" * 4096
        while not client.dropped:
            line.deviceDataReceived(chunk)
        for _ in range(100):
            # The program takes one chunk's worth; the next fits, the one after does not.
            client.doWrite()
            try:
                os.read(client._slave, 4096)
            except BlockingIOError:
                pass
            client.doWrite()
            line.deviceDataReceived(chunk)
            line.deviceDataReceived(chunk)
        self.assertEqual(len(self.events), 1)
        dropped = client.dropped
        self.assertGreaterEqual(dropped, 50 * 4096)
        self.assertGreater(self.readAll(client), OUTBUF)
        line.deviceDataReceived(b"y")
        self.assertEqual(len(self.events), 2)
        self.assertEqual(self.events[1]["count"], dropped)
        client.doWrite()
        self.assertEqual(os.read(client._slave, 10), b"y")
