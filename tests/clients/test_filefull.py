"""
A file: client whose writes fail (a full disk: /dev/full) says so once,
drops and counts its output meanwhile, stays attached, and says when it
writes again.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from serialgw.clients.local import FileClient
from serialgw.config.listeners import parseListener
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog


class FullDiskTests(SynchronousTestCase):
    """Write errors on a file: client: one line at the first, one when it writes again; no line a chunk."""

    def setUp(self) -> None:
        self.line = Line("t", RecordingDevice(), clock=Clock())
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace") == "serialgw.clients.local":
                self.events.append(event)

        observeLog(self, observe)

    def test_fullDiskLoggedOnce(self) -> None:
        """1000 chunks to /dev/full: one error, the client stays; once the file takes writes, one line counting what was lost."""
        client = FileClient(self.line, "/dev/full", reactor, parseListener("raw+file:/dev/full"), writes="inline")
        self.addCleanup(client.close)
        verifyObject(IClient, client)
        for _ in range(1000):
            self.line.deviceDataReceived(b"x" * 100)
        self.assertEqual([e["log_format"].split(":")[1].strip()[:12] for e in self.events], ["cannot write"])
        self.assertEqual(self.line.clients, [client])
        path = os.path.abspath(self.mktemp())
        client.path = path
        client.reopen()
        self.line.deviceDataReceived(b"yz")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"yz")
        self.assertEqual(len(self.events), 2)
        self.assertEqual(self.events[1]["count"], 100000)
