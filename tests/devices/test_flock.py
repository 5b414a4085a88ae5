"""
The flock on a locked tty: picocom (built with USE_FLOCK, as Debian's is)
and pyserial's exclusive ports take no UUCP lock file but an flock on the
device; the gateway takes one too, and honours theirs.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import termios
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from serialgw.app.status import lineStatus
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import SerialSettings
from serialgw.devices import uucplock
from serialgw.devices.errors import DeviceError, DeviceLocked
from serialgw.devices.ports import TtyPort
from tests.devices.test_uucpstale import holding
from tests.fakes import LogEvents
from tests.realio import (
    Collector,
    PtyPair,
    closeClients,
    connect,
    listenerPort,
    ptyLine,
    startedPty,
    startGateway,
    startProcess,
)


def flocked(case: Any, device: str) -> int:
    """A live process holding an exclusive flock on C{device}, as picocom does."""
    return holding(case, device, "import fcntl; fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)")


class FlockTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.pty = PtyPair()
        self.addCleanup(self.pty.close)

    def test_theirFlockRefused(self) -> None:
        """A tty another program holds an flock on is not used: DeviceLocked names it and the PID; its settings are untouched and no UUCP lock is left."""
        holder = flocked(self, self.pty.slaveName)
        mine = os.open(self.pty.slaveName, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, mine)
        before = termios.tcgetattr(mine)
        e = self.assertRaises(DeviceLocked, TtyPort, self.pty.slaveName, SerialSettings(baudrate=1200), self.dir)
        self.assertEqual((e.pid, str(e)), (holder, f"{self.pty.slaveName} is locked by process {holder}"
                                                   f"{uucplock.processName(holder)} (flock, as picocom takes it)"))
        self.assertEqual((termios.tcgetattr(mine), os.listdir(self.dir)), (before, []))

    def test_openEagainIsNoFlock(self) -> None:
        """An open itself refused with EAGAIN is said as such, not taken for another's flock."""
        real = os.open

        def again(path: Any, *args: Any, **kwargs: Any) -> int:
            if path == self.pty.slaveName:
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            return real(path, *args, **kwargs)

        self.patch(os, "open", again)
        e = self.assertRaises(DeviceError, TtyPort, self.pty.slaveName, SerialSettings(), self.dir)
        self.assertNotIsInstance(e, DeviceLocked)
        self.assertEqual(str(e), f"cannot open device {self.pty.slaveName!r}: {os.strerror(errno.EAGAIN)}")

    def test_ourFlockHeld(self) -> None:
        """While the gateway has a locked tty, another open of it cannot take an flock (picocom is refused); with lock = false it takes none."""
        port = TtyPort(self.pty.slaveName, SerialSettings(), self.dir)
        other = os.open(self.pty.slaveName, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, other)
        self.assertRaises(BlockingIOError, fcntl.flock, other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        port.close()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)
        port = TtyPort(self.pty.slaveName, SerialSettings())
        self.addCleanup(port.close)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


class PicocomTests(TestCase):
    """Debian's picocom on the same pty as the gateway's line, both ways."""

    timeout = 30

    def setUp(self) -> None:
        self.picocom = shutil.which("picocom")
        if self.picocom is None:
            raise SkipTest("picocom is not installed (Debian package picocom)")
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.pty = startedPty(self)

    async def test_gatewayWaitsForPicocom(self) -> None:
        """picocom has the port: the line is down with picocom's PID, logged; when picocom exits (C-a C-x) the line comes up."""
        assert self.picocom is not None
        events = LogEvents(self)
        picocom = startProcess(self, [self.picocom, self.pty.slaveName], usePTY=True)
        await picocom.output.contains(b"Terminal ready")
        pid = picocom.transport.pid  # type: ignore[union-attr]
        service = startGateway(self, ptyLine(self.pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                                             lockDir=self.dir), reopenPolicy=lambda attempt: 0.05)
        line = service.lines["t"]
        self.assertEqual((line.device.up, lineStatus(line)["locked_by"]), (False, pid))
        self.assertEqual([e["reason"] for e in events.events if e.get("holder") == pid],
                         [f"{self.pty.slaveName} is locked by process {pid} (picocom) (flock, as picocom takes it)"])
        client: Collector = await connect(listenerPort(service))
        self.pty.write(b"picocom's")
        await picocom.output.contains(b"picocom's")
        picocom.write(b"\x01\x18")
        await picocom.ended
        await client.received.contains(b"[serialgw: t is back]")
        self.pty.write(b"mine now")
        await client.received.contains(b"mine now")
        await closeClients(client)
        await service.stopService()

    async def test_picocomRefused(self) -> None:
        """The gateway has the port: picocom cannot lock it and exits."""
        assert self.picocom is not None
        service = startGateway(self, ptyLine(self.pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                                             lockDir=self.dir))
        self.assertTrue(service.lines["t"].device.up)
        # Its FATAL line goes to its standard error, here a file: read through the pty it was
        # missing at times (the pty's last output not yet read when the process's end was seen).
        said = os.path.abspath(self.mktemp())
        picocom = startProcess(self, ["/bin/sh", "-c", 'exec "$0" "$1" 2>"$2"', self.picocom, self.pty.slaveName, said],
                               usePTY=True)
        self.assertNotEqual(await picocom.ended, 0)
        with open(said, "rb") as f:
            self.assertEqual(f.read(), f"\r\nFATAL: cannot lock {self.pty.slaveName}: Resource temporarily "
                                       "unavailable\r\n".encode())
        await service.stopService()
