"""
A client pty whose program reads slowly, or not at all: its listener's
bound and policy hold, as for a network client (C{outbuf}, C{policy=drop}
keeping the newest, C{policy=block} holding the device), said once when it
starts and once when the program has caught up, and C{ro} keeps its program
off the device.  Real ptys; the reactor's writes are driven by hand.
"""

from __future__ import annotations

import os
import termios
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.ptylink import PtyClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog


class SlowReaderTests(SynchronousTestCase):
    """A slow or absent pty reader under the listener's outbuf and policy."""

    def setUp(self) -> None:
        from serialgw.logflood import peerLimiter

        # As in a fresh process: earlier tests' ptys had these names (and log budgets) within the minute.
        peerLimiter.peers.clear()
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace") in ("serialgw.clients.ptylink", "serialgw.clients.guard"):
                self.events.append(event)

        observeLog(self, observe)

    def client(self, listener: str, device: RecordingDevice | None = None) -> tuple[Line, PtyClient]:
        line = Line("t", device or RecordingDevice(), clock=Clock())
        client = PtyClient(line, "", reactor, parseListener(listener))
        self.addCleanup(client.close)
        os.set_blocking(client._slave, False)
        return line, client

    def readAll(self, client: PtyClient) -> bytes:
        """The program reads everything there is, the gateway writing what waits meanwhile."""
        got = bytearray()
        while True:
            client.doWrite()
            try:
                data = os.read(client._slave, 65536)
            except BlockingIOError:
                data = b""
            if not data and not (len(client.dataBuffer) - client.offset + client._tempDataLen):
                return bytes(got)
            got += data

    def fill(self, line: Line, client: PtyClient, chunks: int) -> list[bytes]:
        """Numbered 4 KiB chunks of device output, nobody reading; the chunks."""
        sent = [b"%08d" % i * 512 for i in range(chunks)]
        for chunk in sent:
            line.deviceDataReceived(chunk)
            client.doWrite()
        return sent

    def test_slowReaderLogsPerBound(self) -> None:
        """
        Chunks that fit and chunks that do not, alternating (a program reading
        a little at a time): a line when dropping starts and one with the count
        when the program has taken what waited (at most a pair per outbuf it
        reads, as for a network client), not a line every other chunk; the
        counts add up to what it missed.
        """
        line, client = self.client("pty")
        chunk = b"x" * 4096
        while not client.guard.full:
            line.deviceDataReceived(chunk)
        taken = 0
        for _ in range(100):
            # The program takes one chunk's worth; the next fits, the one after does not.
            client.doWrite()
            try:
                taken += len(os.read(client._slave, 4096))
            except BlockingIOError:
                pass
            client.doWrite()
            line.deviceDataReceived(chunk)
            line.deviceDataReceived(chunk)
        taken += len(self.readAll(client))
        starts = [e for e in self.events if "cannot keep up" in e["log_format"]]
        ends = [e for e in self.events if "caught up" in e["log_format"]]
        self.assertEqual(len(starts), len(ends))
        self.assertLessEqual(len(ends), taken // client.guard.bound + 1)
        self.assertGreaterEqual(client.guard.dropped, 50 * 4096)
        self.assertEqual(sum(e["count"] for e in ends), client.guard.dropped)
        line.deviceDataReceived(b"y")
        client.doWrite()
        self.assertEqual(os.read(client._slave, 10), b"y")

    def test_outbufAndNewestKept(self) -> None:
        """
        outbuf=8192, nobody reading 400 chunks of 4 KiB: the gateway holds at
        most 8 KiB for the pty plus the newest 8 KiB (policy drop); the program
        that comes gets what the kernel held, then the newest output, and the
        status page's count is what it missed (it kept the oldest 256 KiB
        whatever the listener said, and dropped every newer byte).
        """
        line, client = self.client("raw,outbuf=8192+pty")
        sent = self.fill(line, client, 400)
        waiting = len(client.dataBuffer) - client.offset + client._tempDataLen
        self.assertLessEqual(waiting, 8192 + 4096)
        self.assertEqual(client.guard.heldBytes, 8192)
        got = self.readAll(client)
        self.assertTrue(got.endswith(sent[-2] + sent[-1]))
        self.assertTrue(got.startswith(sent[0]))
        self.assertEqual(len(got) + client.guard.dropped, len(sent) * 4096)

    def test_blockHoldsTheDevice(self) -> None:
        """policy=block: once the pty's bound is passed the device is no longer read; once the program drained it, it is again, nothing lost."""
        device = RecordingDevice()
        line, client = self.client("raw,policy=block,outbuf=8192+pty", device)
        sent = self.fill(line, client, 64)
        self.assertEqual(device.events, [("pause", None)])
        got = self.readAll(client)
        self.assertEqual(device.events, [("pause", None), ("resume", None)])
        self.assertEqual(got, b"".join(sent))
        self.assertEqual(client.guard.dropped, 0)

    def test_blockMadeDropWhileFull(self) -> None:
        """
        A reload makes a blocking pty (full, the device held) drop: the
        device is read again at once, what comes while the program still
        does not read is held and dropped at the bound (newest kept), and
        what it reads is what blocked, then the newest.
        """
        device = RecordingDevice()
        line, client = self.client("raw,policy=block,outbuf=8192+pty", device)
        sent = self.fill(line, client, 64)
        client.retune(parseListener("raw,outbuf=8192+pty"))
        self.assertEqual(device.events, [("pause", None), ("resume", None)])
        sent += self.fill(line, client, 64)
        self.assertEqual(client.guard.heldBytes, 8192)
        got = self.readAll(client)
        self.assertTrue(got.startswith(sent[0]))
        self.assertTrue(got.endswith(sent[-2] + sent[-1]))
        self.assertEqual(len(got) + client.guard.dropped, len(sent) * 4096)

    def test_dropMadeBlockWhileFull(self) -> None:
        """
        A reload makes a dropping pty (full, output held) block: what it
        held goes to the pty in order, the device is held until the program
        has read it all, then read again; only what was dropped before is missed.
        """
        device = RecordingDevice()
        line, client = self.client("raw,outbuf=8192+pty", device)
        sent = self.fill(line, client, 400)
        dropped = client.guard.dropped
        client.retune(parseListener("raw,policy=block,outbuf=8192+pty"))
        self.assertEqual((device.events, client.guard.heldBytes), ([("pause", None)], 0))
        got = self.readAll(client)
        self.assertEqual(device.events, [("pause", None), ("resume", None)])
        self.assertTrue(got.startswith(sent[0]))
        self.assertTrue(got.endswith(sent[-2] + sent[-1]))
        self.assertEqual((len(got) + dropped, client.guard.dropped), (len(sent) * 4096, dropped))

    def test_boundChangedWhileParked(self) -> None:
        """A reload's new outbuf for a pty full and dropping: the pty's buffer and the held output at the new bound from then on."""
        line, client = self.client("raw,outbuf=8192+pty")
        self.fill(line, client, 400)
        client.retune(parseListener("raw,outbuf=16384+pty"))
        sent = self.fill(line, client, 16)
        self.assertEqual((client.guard.bound, client.bufferSize, client.guard.heldBytes), (16384, 16384, 16384))
        got = self.readAll(client)
        self.assertTrue(got.endswith(b"".join(sent[-4:])))


class ReadOnlyTests(SynchronousTestCase):
    """raw,ro+pty: the program watches: its bytes and termios changes do not reach the device."""

    def test_readOnlyProgram(self) -> None:
        """
        What a ro pty's program writes is refused (counted in the line's
        refused bytes) and its speed change is not asked for; it still gets
        the device's output.  (ro was ignored: its program typed on the line.)
        """
        device = RecordingDevice(SerialSettings(115200))
        line = Line("t", device, clock=Clock())
        client = PtyClient(line, "", reactor, parseListener("raw,ro+pty"))
        self.addCleanup(client.close)
        self.assertEqual(client.role.value, "read-only")
        program = os.open(client.slaveName, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, program)
        os.write(program, b"typed")
        client.doRead()
        attributes = termios.tcgetattr(program)
        attributes[4] = attributes[5] = termios.B9600
        termios.tcsetattr(program, termios.TCSANOW, attributes)
        client.doRead()
        self.assertEqual(line.refused, 5)
        self.assertEqual([what for what, _ in device.events], [])
        line.deviceDataReceived(b"output")
        client.doWrite()
        self.assertEqual(os.read(program, 100), b"output")


class WaitingLineTests(SynchronousTestCase):
    def test_ptyDoesNotWakeAWaitingLine(self) -> None:
        """
        A line that waits for its first client (QEMU's tcp::N,server) is not
        woken by its pty: listener, made at start whether a program is on it
        or not (as a file: or a console log does not): the device is read
        once someone connects; the pty defeated the wait.
        """
        device = RecordingDevice()
        line = Line("t", device, clock=Clock())
        line.waitForClient = True
        client = PtyClient(line, "", reactor, parseListener("pty"))
        self.addCleanup(client.close)
        self.assertEqual((line.waitForClient, device.started), (True, 0))
        from tests.fakes import RecordingClient

        line.attach(RecordingClient())
        self.assertEqual((line.waitForClient, device.started), (False, 1))
