"""
A device that vanishes and returns behind the same path (a USB adapter
unplugged and plugged in), simulated with pty pairs behind a symlink.
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import sys
from typing import Any, Optional

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import Logger, capturedLogs, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app.status import lineStatus
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices.links import ptyHolders
from serialgw.devices.uucplock import processName
from tests.ptyflood import FLOOD, MARKER
from tests.realio import (
    Collector,
    EventCounter,
    ProcessOutput,
    PtyPair,
    closeClients,
    connect,
    devicePath,
    gatewayArgv,
    linePort,
    listenerPort,
    listeningPort,
    startedPty,
    startGateway,
    startProcess,
    statusPage,
    testLockDir,
)
from tests.telnetpeer import OFFER


class HotplugTests(TestCase):
    timeout = 30

    async def test_unplugAndReturn(self) -> None:
        """Clients stay connected through an unplug; telnet hears it, raw does not; the line works again after."""
        link = devicePath(self)
        first = PtyPair()
        os.symlink(first.slaveName, link)
        config = LineConfig(
            "usb0",
            DeviceSpec("tty", link),
            listeners=(
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
            ),
            lockDir=testLockDir(),
        )
        service = startGateway(self, config, reopenPolicy=lambda attempt: 0.05)
        first.startReading()
        telnet: Collector = await connect(listenerPort(service))
        raw: Collector = await connect(listenerPort(service, 1))
        await telnet.received.contains(OFFER[-3:])
        raw.transport.write(b"before")  # type: ignore[union-attr]
        self.assertEqual(await first.received.length(6), b"before")

        # Unplugged: the link goes first (as udev's does), or the gateway,
        # opening it again every 50 ms, could open the next pty the kernel
        # gives this one's number: another program's, not the second.
        os.unlink(link)
        first.close()
        down = b"\r\n[serialgw: usb0 is down: "
        await telnet.received.contains(down)
        raw.transport.write(b"into the void")  # type: ignore[union-attr]

        second = startedPty(self)
        os.symlink(second.slaveName, link)
        await telnet.received.contains(b"\r\n[serialgw: usb0 is back]\r\n")
        raw.transport.write(b"after")  # type: ignore[union-attr]
        self.assertEqual(await second.received.length(5), b"after")
        second.write(b"hello again")
        self.assertEqual(await raw.received.length(11), b"hello again")
        self.assertNotIn(b"serialgw", raw.received.data)
        self.assertEqual(len(service.lines["usb0"].clients), 2)
        self.assertEqual(service.lines["usb0"].device.dropped, 13)
        await closeClients(telnet, raw)


class FloodReader(protocol.Protocol):
    """
    A raw client taking a flood: what came since the last marker it was
    asked for, without keeping the whole stream.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._waiting: Optional[tuple[bytes, int, defer.Deferred[bytes]]] = None

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        self._check()

    def afterMarker(self, marker: bytes, count: int) -> defer.Deferred[bytes]:
        """
        Fires, once C{marker} and C{count} bytes after it have come, with what
        came before the marker; the buffer then holds what came after it.
        """
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiting = (marker, count, d)
        self._check()
        return d

    def _check(self) -> None:
        if self._waiting is None:
            return
        marker, count, d = self._waiting
        at = self.buffer.find(marker)
        if at < 0 or len(self.buffer) - at - len(marker) < count:
            return
        self._waiting = None
        before = bytes(self.buffer[:at])
        del self.buffer[: at + len(marker)]
        d.callback(before)


class NoticeCounter(protocol.Protocol):
    """A telnet client that counts the down and up notices in what it gets (a flood around them)."""

    NEEDLES = (b"[serialgw: flood is down: ", b"[serialgw: flood is back]")

    def __init__(self) -> None:
        self.counts = [0, 0]
        self._tail = b""
        self._waiting: list[tuple[list[int], defer.Deferred[None]]] = []

    def reach(self, counts: list[int]) -> defer.Deferred[None]:
        """Fires once the counts are C{counts} (a notice may still be on its way)."""
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append((counts, d))
        self._check()
        return d

    def _check(self) -> None:
        waiting, self._waiting = self._waiting, []
        for counts, d in waiting:
            if self.counts == counts:
                d.callback(None)
            else:
                self._waiting.append((counts, d))

    def dataReceived(self, data: bytes) -> None:
        window = self._tail + data
        for i, needle in enumerate(self.NEEDLES):
            self.counts[i] += window.count(needle)
        keep = max(len(n) for n in self.NEEDLES) - 1
        # What might start a needle cut by this chunk; never a whole one.
        self._tail = window[-keep:]
        for needle in self.NEEDLES:
            if needle in self._tail:
                self._tail = self._tail[self._tail.index(needle) + len(needle):]
        self._check()


class SlaveCloses:
    """
    The closes of pty slaves, counted by the kernel as they happen
    (inotify's IN_CLOSE on each slave's node, watched from when its pty is
    named): a process that opens the slave, reads a chunk of the flood and
    closes it between two looks at who has it open (one look before each
    kill) is seen by none of them, yet took its share (seen: a script
    opening each new /dev/pts/N, reading once 1 ms after input came, and
    closing: 'cycle 38: the flood differs at byte 151499 ...: a gap of 255
    bytes ...; others on the pty: none seen').  The gateway's own
    descriptor is closed once, at the loss; the flooder's close of the slave
    comes before the pty is named.
    """

    _IN_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC
    _IN_CLOSE = 0x08 | 0x10  # IN_CLOSE_WRITE | IN_CLOSE_NOWRITE

    def __init__(self, case: TestCase) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(self._IN_NONBLOCK_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        case.addCleanup(os.close, self.fd)
        self._counts: dict[int, int] = {}

    def watch(self, path: str) -> int:
        """Count the closes of C{path}'s node from now on; the watch's number."""
        wd = int(self._libc.inotify_add_watch(self.fd, path.encode(), self._IN_CLOSE))
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self._counts.setdefault(wd, 0)
        return wd

    def closes(self, wd: int) -> int:
        """The closes of the node watched as C{wd} so far (every event the kernel has queued is read)."""
        while True:
            try:
                events = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                break
            at = 0
            while at < len(events):
                watched, mask, _cookie, size = struct.unpack_from("iIII", events, at)
                at += 16 + size
                if mask & self._IN_CLOSE:
                    self._counts[watched] = self._counts.get(watched, 0) + 1
        return self._counts.get(wd, 0)


class HangupFloodTests(TestCase):
    timeout = 600
    CYCLES = 50
    # How much of each cycle's flood the client gets before the master closes.
    MIDFLOOD = 256 * 1024
    WAIT = 20.0

    async def within(self, d: defer.Deferred[Any], what: str) -> Any:
        """What C{d} fires with, or a failure naming what did not happen in time."""
        try:
            return await d.addTimeout(self.WAIT, reactor)
        except defer.TimeoutError:
            self.fail(f"{what}: not within {self.WAIT} s")

    def flooder(self, link: str, cycle: int) -> ProcessOutput:
        proc = startProcess(self, [sys.executable, "-m", "tests.ptyflood", link, str(cycle)])
        return proc

    @staticmethod
    def othersOn(slave: str, line: Any) -> list[str]:
        """
        Who else has the pty slave C{slave} open than the gateway's one
        descriptor (this process's other descriptors of it, other
        processes): a reader there takes its share of what the flooder
        writes, a gap in what the gateway reads that is not the gateway's.
        The line's mover (a flooding tty's reader: its thread's dup of the
        tty, or its process) is the gateway's own, not another reader: it
        was counted as one, and every gap excused (51 cycles of 51 with
        SERIALGW_READER=thread).
        """
        mover = line.device._reader
        moverFd = mover.moverEnds()[0] if mover is not None and mover.mode == "thread" else -1
        moverPid = mover.pid if mover is not None else None
        mine = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                mine += int(fd) != moverFd and os.readlink(f"/proc/self/fd/{fd}") == slave
            except OSError:
                continue
        others = [f"pid {pid}{processName(pid)}" for pid in ptyHolders(slave) if pid not in (os.getpid(), moverPid)]
        return others + ([f"{mine - 1} more descriptor(s) of this process"] if mine > 1 else [])

    @staticmethod
    def closedByOthers(closes: int, closedBefore: int, killed: bool) -> list[str]:
        """
        The closes of a cycle's pty slave by others than the gateway, as
        words for L{assertFlood}: C{closes} in all, C{closedBefore} of them
        before its master was killed (all others': the gateway's descriptor
        closes at the loss, once, and may not have by now); not C{killed}
        (the last cycle), all of them.
        """
        others = max(closedBefore, closes - 1) if killed else closes
        return [f"{others} close(s) of it by another opener (inotify)"] if others else []

    def assertFlood(self, before: bytes, cycle: int, others: list[str], line: Any) -> None:
        """
        C{before} is a prefix of the flood; if not, the failure says where
        it differs, how many bytes are missing there, what the line's raw
        clients dropped (policy drop, past outbuf) and who else had the
        pty open: which of the causes it was.
        """
        if before == FLOOD[: len(before)]:
            return
        if others:
            # Another reader of the pty took its share: not the gateway's loss (the machine is shared: a
            # gateway or a test elsewhere opening /dev/pts/N by its number, given to this pty since).
            Logger().warn("cycle {cycle}: the flood has a gap, but others had the pty open: {others}", cycle=cycle,
                          others=", ".join(others))
            return
        at = next(i for i, (a, b) in enumerate(zip(before, FLOOD, strict=False)) if a != b)
        resumed = FLOOD.find(before[at:at + 1024], at)
        dropped = sum(client.guard.dropped for client in line.clients if getattr(client, "guard", None) is not None
                      and type(client).__name__ == "RawClient")
        self.fail(f"cycle {cycle}: the flood differs at byte {at} of {len(before)} read; "
                  + (f"a gap there of {resumed - at} bytes, modulo 256 (the flood repeats every 256: 4095, a "
                     "whole read of a tty, is 255)" if resumed > at else "not a gap of it")
                  + f"; the raw clients dropped {dropped} bytes (policy drop); others on the pty: "
                  + (", ".join(others) or "none seen"))

    async def test_masterClosedMidFlood(self) -> None:
        """
        50 cycles of: a pty behind a symlink floods a reading client, its
        master is closed mid-flood (the program killed), a new pty is put
        behind the link.  The line comes back every time with the flood
        intact (a prefix of what was sent), each loss logged once, notices
        down and up, and the status page says up: false while it is down.
        """
        link = devicePath(self)
        lost = EventCounter(self, "device lost")
        back = EventCounter(self, "device back at")
        proc = self.flooder(link, 0)
        await proc.output.contains(b"pty /dev/")
        config = LineConfig(
            "flood",
            DeviceSpec("tty", link),
            listeners=(
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
                ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET, notices=True),
            ),
            lockDir=testLockDir(),
        )
        service = startGateway(self, config, reopenPolicy=lambda attempt: 0.02, status="tcp:0:interface=127.0.0.1")
        line = service.lines["flood"]
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", listenerPort(service))
        reader = await endpoint.connect(protocol.Factory.forProtocol(FloodReader))
        assert isinstance(reader, FloodReader)
        self.addCleanup(reader.transport.loseConnection)  # type: ignore[union-attr]
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", listenerPort(service, 1))
        notices = await endpoint.connect(protocol.Factory.forProtocol(NoticeCounter))
        assert isinstance(notices, NoticeCounter)
        self.addCleanup(notices.transport.loseConnection)  # type: ignore[union-attr]
        statusPort = service.statusPort.getHost().port

        cyclesBack = 0
        seen: list[str] = []
        closes = SlaveCloses(self)
        lastWatched, closedBefore = -1, 0
        # Cycle 0's pty is there at start; each cycle's master is closed
        # mid-flood, and the next cycle's pty must bring the line back (the
        # last one only comes back).
        for cycle in range(self.CYCLES + 1):
            if cycle:
                proc = self.flooder(link, cycle)
            slave = (await proc.output.contains(b"pty /dev/")).split(b"pty ")[1].split(b"\n")[0].decode()
            # Watched before the flood begins: nothing of it can be read before.
            watched = closes.watch(slave)
            if cycle:
                await self.within(back.nth(cycle), f"cycle {cycle}: line back ({cyclesBack} cycles back so far)")
                cyclesBack += 1
            proc.write(b"go\n")
            flooded = await self.within(reader.afterMarker(MARKER % cycle, self.MIDFLOOD), f"cycle {cycle}: flood")
            # (What came before this cycle's marker: the rest of the last cycle's flood, up to its master's close.)
            if cycle:
                seen += self.closedByOthers(closes.closes(lastWatched), closedBefore, killed=True)
            self.assertFlood(flooded, cycle - 1, seen, line)
            if cycle:
                self.assertGreaterEqual(len(flooded), self.MIDFLOOD)
            seen = self.othersOn(slave, line)
            lastWatched, closedBefore = watched, closes.closes(watched)
            if cycle == self.CYCLES:
                break
            # The link goes first, so that nothing else (a pty numbered
            # alike) is opened through it; then the master closes mid-flood.
            os.unlink(link)
            proc.transport.signalProcess("KILL")  # type: ignore[union-attr]
            event = await self.within(lost.nth(cycle + 1), f"cycle {cycle}: 'device lost' logged")
            self.assertEqual(event["device"], link)
            # The page itself renders at most once a second: asked over HTTP
            # on the first and last cycles, from its function on the others.
            if cycle in (0, self.CYCLES - 1):
                status = (await statusPage(statusPort))["lines"][0]
            else:
                status = lineStatus(line)
            self.assertEqual((status["up"], line.up, line.device.closed), (False, False, False),  # type: ignore[attr-defined]
                             f"cycle {cycle}, {cyclesBack} cycles back")
            # Why: the loss, then (once reopening has been tried) the link gone.
            self.assertIn(event["reason"], ("hung up", "Input/output error"))
            self.assertIn(status["down_reason"], (event["reason"],
                                                  f"cannot open device {link!r}: No such file or directory"))
            await proc.ended

        self.assertEqual((len(lost.events), cyclesBack), (self.CYCLES, self.CYCLES))
        seen += self.closedByOthers(closes.closes(lastWatched), closedBefore, killed=False)
        self.assertFlood(bytes(reader.buffer), self.CYCLES, seen, line)
        self.assertEqual((line.up, lineStatus(line)["up"]), (True, True))
        await self.within(notices.reach([self.CYCLES, self.CYCLES]),
                          f"notices down and up: {self.CYCLES} each (now {notices.counts})")
        self.assertEqual(len(line.clients), 2)


class DeviceLaterTests(TestCase):
    """A device that is not there when the gateway starts (a USB adapter not plugged yet)."""

    timeout = 60

    def gateway(self, *args: str) -> ProcessOutput:
        proc = startProcess(self, gatewayArgv(*args))
        return proc

    async def test_farmLineStartsDown(self) -> None:
        """
        --config with one line whose device is missing: the gateway starts,
        the other line serves, the missing one is down on the status page with
        the reason and tells a client so; when a pty appears behind the path
        it comes up (backoff) and carries data both ways.  No "left out".
        """
        here = startedPty(self)
        link = devicePath(self)
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(f'[defaults]\nlock-dir = "{testLockDir()}"\n'
                    f'[lines.here]\ndevice = "{here.slaveName}"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n'
                    f'[lines.later]\ndevice = "{link}"\nlisten = "telnet+tcp:0:interface=127.0.0.1"\n')
        proc = self.gateway("--config", path, "--status", "tcp:0:interface=127.0.0.1")
        data = await proc.output.contains(b"status page (JSON) on http://127.0.0.1:")
        statusPort = int(re.findall(rb"status page \(JSON\) on http://127\.0\.0\.1:(\d+)/", data)[0])
        reason = f"cannot open device {link!r}: No such file or directory"
        # The start waits START_WAIT (5 s) for the first opens, made on
        # threads: on a loaded machine one may return later, its line
        # started down "opening" and its outcome said when it returns.
        # Either way, waited for, not assumed done by the status line.
        startsDown = f"line later: {reason}; the line starts down".encode()
        late = re.compile(rb"line later: the open returned after \d+ s: " + re.escape(reason.encode()))
        await proc.output.when(lambda out: startsDown in out or late.search(out) is not None)
        await proc.output.contains(f"line here: device {here.slaveName} at ".encode())

        status = {line["name"]: line for line in (await statusPage(statusPort))["lines"]}
        self.assertEqual((status["here"]["up"], status["here"]["down_reason"]), (True, None))
        self.assertEqual((status["later"]["up"], status["later"]["down_reason"]), (False, reason))
        client = await connect(linePort(data, "here", "raw"))
        client.transport.write(b"still serving")  # type: ignore[union-attr]
        self.assertEqual(await here.received.length(13), b"still serving")
        person = await connect(linePort(data, "later"))
        await person.received.contains(f"[serialgw: later is down: {reason}; waiting for it]".encode())

        far = startedPty(self)
        os.symlink(far.slaveName, link)
        await person.received.contains(b"[serialgw: later is back]\r\n")
        self.assertEqual((await statusPage(statusPort))["lines"][1]["up"], True)
        person.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await far.received.length(5), b"typed")
        far.write(b"output")
        await person.received.contains(b"output")
        await closeClients(client, person)
        self.assertNotIn(b"left out", proc.output.data)
        self.assertNotIn(b"Traceback", proc.output.data)

    async def test_waitForDevice(self) -> None:
        """--device alone with --wait-for-device: started down, up when the device appears; without it, exit 1."""
        link = devicePath(self)
        proc = self.gateway("--device", link, "--port", "tcp:0:interface=127.0.0.1")
        self.assertEqual(await proc.ended, 1)
        self.assertIn(f"serialgw: error: line {os.path.basename(link)!r}: cannot open device {link!r}: "
                      "No such file or directory".encode(), proc.output.data)

        proc = self.gateway("--device", link, "--wait-for-device", "--name", "usb",
                            "--port", "tcp:0:interface=127.0.0.1")
        person = await connect(await listeningPort(proc))
        await person.received.contains(b"[serialgw: usb is down: cannot open device ")
        far = startedPty(self)
        os.symlink(far.slaveName, link)
        await person.received.contains(b"[serialgw: usb is back]\r\n")
        person.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await far.received.length(5), b"typed")
        await closeClients(person)


class ReloadMissingDeviceTests(TestCase):
    timeout = 30

    async def test_reloadAddsLineWithoutDevice(self) -> None:
        """A reload adding a line whose device is missing adds it (down), and says so once: no "left out"."""
        here = startedPty(self)
        link = devicePath(self)

        def config(*lines: tuple[str, str]) -> list[LineConfig]:
            return [LineConfig(name, DeviceSpec("tty", device),
                               listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),),
                               lockDir=testLockDir())
                    for name, device in lines]

        service = startGateway(self, *config(("here", here.slaveName)), waitForDevices=True,
                               reopenPolicy=lambda attempt: 0.05)
        down = EventCounter(self, "the line starts down")
        with capturedLogs() as events:
            result = await service.reload(config(("here", here.slaveName), ("later", link)))
            # (Its first open runs off the reactor thread: said once it failed.)
            await down.nth(1)
        self.assertEqual(result, {"added": ["later"], "changed": [], "removed": []})
        texts = [formatEvent(e) for e in events]
        self.assertFalse([t for t in texts if "left out" in t], texts)
        self.assertEqual([t for t in texts if t.startswith("reload:")],
                         ["reload: added ['later'], changed none, removed none, 1 unchanged"])
        self.assertEqual([t for t in texts if "starts down" in t],
                         [f"line later: cannot open device {link!r}: No such file or directory; the line starts down "
                          "and the device is tried again with backoff"])
        self.assertEqual((service.lines["later"].up, len(service.ports)), (False, 2))
        far = startedPty(self)
        os.symlink(far.slaveName, link)
        back = EventCounter(self, "device back at")
        await back.nth(1)
        client = await connect(listenerPort(service, 1))
        client.transport.write(b"late")  # type: ignore[union-attr]
        self.assertEqual(await far.received.length(4), b"late")
        await closeClients(client)

    async def test_leftOutIsNotAdded(self) -> None:
        """
        A line a reload cannot open (a service that does not wait for
        devices, and its device is missing) is reported left out, never added.
        """
        service = startGateway(self, waitForDevices=False)
        bad = LineConfig("bad", DeviceSpec("tty", devicePath(self)), lockDir=testLockDir())
        with capturedLogs() as events:
            result = await service.reload([bad])
        self.assertEqual(result, {"added": [], "changed": [], "removed": [], "left out": ["bad"]})
        texts = [formatEvent(e) for e in events if formatEvent(e).startswith("reload: added")]
        self.assertEqual(texts, ["reload: added none, changed none, removed none, 0 unchanged, left out ['bad']"])
        self.assertEqual(service.lines, {})

    async def test_unopenableLogRefusesTheReload(self) -> None:
        """
        A reload whose new console log cannot be opened (its directory is
        missing), or a client pty whose link directory is missing, is
        refused as a whole, as a busy port is: nothing added.
        """
        here = startedPty(self)
        service = startGateway(self, waitForDevices=True)
        missing = os.path.join(os.path.abspath(self.mktemp()), "no-such-dir")
        other = LineConfig("other", DeviceSpec("tty", here.slaveName),
                           listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),), lockDir=testLockDir())
        bad = LineConfig("bad", DeviceSpec("tty", here.slaveName), log=LogSpec(os.path.join(missing, "x.log")),
                         lockDir=testLockDir())
        result = await service.reload([other, bad])
        self.assertEqual(result, {"refused": [f"line 'bad': cannot open log {os.path.join(missing, 'x.log')!r}: "
                                              "No such file or directory"]})
        pty = LineConfig("bad", DeviceSpec("tty", here.slaveName),
                         listeners=(ListenerSpec(os.path.join(missing, "tty"), Protocol.RAW, kind=ListenerKind.PTY,
                                                 path=os.path.join(missing, "tty"), text="pty:" + missing + "/tty"),),
                         lockDir=testLockDir())
        result = await service.reload([other, pty])
        self.assertEqual(result, {"refused": [f"line 'bad': cannot open listener 'pty:{missing}/tty': "
                                              "No such file or directory"]})
        self.assertEqual((service.lines, service.ports, service.configs), ({}, [], []))

    async def test_logNotAFileRefusesTheReload(self) -> None:
        """A reload whose new console log is a FIFO, a directory or a symlink is refused as a whole, like a missing one."""
        here = startedPty(self)
        service = startGateway(self, waitForDevices=True)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        os.mkfifo(os.path.join(directory, "fifo"))
        os.symlink(os.path.join(directory, "elsewhere"), os.path.join(directory, "link"))
        for path in (os.path.join(directory, "fifo"), directory, os.path.join(directory, "link")):
            bad = LineConfig("bad", DeviceSpec("tty", here.slaveName), log=LogSpec(path), lockDir=testLockDir())
            result = await service.reload([bad])
            self.assertEqual(result, {"refused": [f"line 'bad': cannot open log {path!r}: it is not a regular file"]})
            self.assertEqual(service.lines, {})
