"""
A person's escape menu while the device takes no input (the line's
writers paused): read on for its commands, what it types waiting for the
device, bounded; and a person who leaves meanwhile is seen to go.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.reading import HANGUP_CHECK_SECONDS, TYPED_AHEAD_LIMIT
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import BoundedTransport, RecordingClient, RecordingDevice, observeLog

ESC = b"\x1d"


class EscapeMenuWhileBehindTests(SynchronousTestCase):
    """A writer with an escape menu on a line whose device takes no input."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.said: list[str] = []
        observeLog(self, lambda e: self.said.append(formatEvent(e)) if e.get("line") == "t" else None)

    def raw(self, listener: str = "raw,escape=^]+4444", role: Role = Role.WRITER) -> tuple[RawClient, BoundedTransport]:
        client = RawClient(self.line, role, listener=parseListener(listener), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        return client, transport

    def writes(self) -> bytes:
        return b"".join(data for kind, data in self.device.events if kind == "write")

    def test_commandsAnsweredTypingWaits(self) -> None:
        """The person is read on: ^] s is answered (saying typing is paused), what was typed before and after it waits and reaches the device, in order, once it takes input."""
        client, transport = self.raw()
        self.line.deviceWritable(False)
        self.assertEqual(transport.producerState, "producing")
        client.dataReceived(b"abc" + ESC + b"s" + b"def")
        self.assertEqual(self.writes(), b"")
        self.assertIn(b"; typing paused: the device takes no input now (3 byte(s) you typed wait for it)]",
                      transport.value())
        self.line.deviceWritable(True)
        self.assertEqual(self.writes(), b"abcdef")
        self.assertEqual(transport.producerState, "producing")

    def test_typingAheadBounded(self) -> None:
        """Past TYPED_AHEAD_LIMIT bytes waiting, the person is not read either; once the device takes input, all of it goes and reading resumes."""
        client, transport = self.raw()
        self.line.deviceWritable(False)
        client.dataReceived(b"x" * (TYPED_AHEAD_LIMIT - 1))
        self.assertEqual(transport.producerState, "producing")
        client.dataReceived(b"yz")
        self.assertEqual(transport.producerState, "paused")
        self.assertEqual(self.writes(), b"")
        self.line.deviceWritable(True)
        self.assertEqual(self.writes(), b"x" * (TYPED_AHEAD_LIMIT - 1) + b"yz")
        self.assertEqual(transport.producerState, "producing")

    def test_leavingPersonSeenAndTypingSaid(self) -> None:
        """A person who leaves while the device takes no input goes at once (it stayed on the line, its place taken, until the device took input); what it typed is not sent, counted and said."""
        client, transport = self.raw()
        self.line.deviceWritable(False)
        client.dataReceived(b"reboot\r")
        client.connectionLost(None)  # type: ignore[arg-type]
        self.assertNotIn(client, self.line.clients)
        self.line.deviceWritable(True)
        self.assertEqual(self.writes(), b"")
        self.assertEqual(self.line.refused, 7)
        self.assertIn(f"t: {client.peer} left with 7 byte(s) it typed while the device took no input: not sent",
                      self.said)

    def test_escapeDisconnectSaysWhatWasNotSent(self) -> None:
        """^] d while typing waits: the person is told what was not sent, and goes."""
        client, transport = self.raw()
        self.line.deviceWritable(False)
        client.dataReceived(b"ls\r" + ESC + b"d")
        self.assertIn(b"[serialgw: 3 byte(s) you typed were not sent: t took no input]", transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.line.refused, 3)

    def test_losingWriteRefusesWhatWaits(self) -> None:
        """A person who loses write (another takes it, exclusive mode) while typing waits: it is refused, and said."""
        self.line.mode = "exclusive"
        first, firstTransport = self.raw()
        second, _ = self.raw(role=Role.WATCHER)
        self.line.deviceWritable(False)
        first.dataReceived(b"abc")
        second.dataReceived(ESC + b"t")
        self.line.deviceWritable(True)
        self.assertEqual(self.writes(), b"")
        self.assertEqual(self.line.refused, 3)
        self.assertIn(b"you only watch: what you type is not sent to t", firstTransport.value())

    def test_aLogCutMeanwhileSkipsNoWriter(self) -> None:
        """A console log cut while the typing that waited is sent (its LOG.typed failing) leaves no writer paused: the pass over the writers goes on over every one."""

        class FailingLog(RecordingClient):
            def typed(self, peer: str, data: bytes) -> None:
                raise OSError("disk gone")

            def event(self, text: str) -> None:
                pass

        consoleLog = FailingLog("log:/x", Role.READONLY)
        self.line.attach(consoleLog)
        self.line.logs.append(consoleLog)  # type: ignore[arg-type]
        first, _ = self.raw()
        second, secondTransport = self.raw("raw+4444")
        self.line.deviceWritable(False)
        first.dataReceived(b"abc")
        self.line.deviceWritable(True)
        self.assertEqual((self.writes(), consoleLog in self.line.clients), (b"abc", False))
        self.assertEqual(secondTransport.producerState, "producing")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_noBreakAheadOfTypingThatWaits(self) -> None:
        """^] b, ^] k KEY or telnet's IAC BRK while a person's typing waits for the device is refused, and said: no break reaches the device before that typing (done at once, a Linux console took the break and the typing's first key as magic SysRq: 'boot', then a break, rebooted it); once it has gone, a break is sent."""
        client, transport = self.raw()
        telnet = TelnetClient(self.line, listener=parseListener("telnet,escape=^]+4445"), clock=self.clock)
        telnet.makeConnection(BoundedTransport())
        self.line.deviceWritable(False)
        client.dataReceived(b"boot" + ESC + b"b")
        self.clock.advance(2)  # (a refusal is told at most once a second)
        client.dataReceived(ESC + b"kh")
        telnet.dataReceived(b"ls" + bytes([255, 243]))  # IAC BRK
        self.line.deviceWritable(True)
        self.assertEqual([(kind, data) for kind, data in self.device.events if kind in ("write", "break")],
                         [("write", b"boot"), ("write", b"ls")])
        refusal = (b"no break: 4 byte(s) you typed wait for the device (it takes no input now), and a break now "
                   b"would reach it before them; ask again once they have gone]")
        self.assertEqual(transport.value().count(refusal), 2)
        self.assertIn(b"'h' not sent: no break]", transport.value())
        self.assertIn(b"no break: 2 byte(s) you typed wait for the device", telnet.transport.value())  # type: ignore[union-attr]
        client.dataReceived(ESC + b"b")
        self.assertEqual(self.device.events[-1], ("break", None))

    def test_initCommandNamedAsWhatHoldsTyping(self) -> None:
        """While an init-command holds people's typing (the device taking input), ^] s, a refused ^] b and ^] o name it, not the device: 'typing paused: an init-command runs', '(an init-command runs)'."""
        from tests.app.test_initreload import Processes

        self.clock = processes = Processes()
        self.line = Line("t", self.device, clock=processes)
        self.line.setInitCommand("sleep 60", 30, processes)
        self.line.runInitCommand()
        client, transport = self.raw()
        client.dataReceived(b"abc" + ESC + b"s" + ESC + b"b" + ESC + b"o")
        said = transport.value()
        self.assertIn(b"; typing paused: an init-command runs (3 byte(s) you typed wait for it)]", said)
        self.assertIn(b"[serialgw: no break: 3 byte(s) you typed wait for the device (an init-command runs), and a "
                      b"break now would reach it before them; ask again once they have gone]", said)
        self.assertIn(b"[serialgw: you still write: 3 byte(s) you typed wait for the device (an init-command runs), "
                      b"and they would not be sent", said)
        self.assertNotIn(b"no input", said)

    def test_noBreakAheadOfAnothersTypingThatWaits(self) -> None:
        """A break asked while another person's typing waits for the device is refused too, and said: typed before it, that typing would reach the device after it."""
        first, _ = self.raw()
        second, secondTransport = self.raw()
        self.line.deviceWritable(False)
        first.dataReceived(b"boot")
        second.dataReceived(ESC + b"b")
        self.assertIn(b"no break: 4 byte(s) others typed wait for the device (it takes no input now), and a break now "
                      b"would reach it before them; ask again once they have gone]", secondTransport.value())
        self.line.deviceWritable(True)
        self.assertEqual([(kind, data) for kind, data in self.device.events if kind in ("write", "break")],
                         [("write", b"boot")])

    def test_noBaudChangeAheadOfTypingThatWaits(self) -> None:
        """^] B RATE while typing (the person's own, or another's) waits for the device, or while the device's queue holds bytes not sent, is refused and said: set at once, the rate applied to the bytes typed before it (a command typed for the old rate reached the device at the new one); once they have gone, it is set."""
        client, transport = self.raw()
        other, _ = self.raw()
        self.line.deviceWritable(False)
        client.dataReceived(b"stty 9600\r" + ESC + b"B9600\r")
        self.assertIn(b"[serialgw: no change: 10 byte(s) you typed wait for the device (it takes no input now), and a "
                      b"new rate now would apply to them too; ask again once they have gone (t stays at 115200,8N1)]",
                      transport.value())
        other.dataReceived(ESC + b"B9600\r")
        self.assertIn(b"[serialgw: no change: 10 byte(s) others typed wait for the device (it takes no input now), "
                      b"and a new rate now would apply to them too; ask again once they have gone (t stays at "
                      b"115200,8N1)]", other.transport.value())  # type: ignore[attr-defined]
        self.assertIn(f"t: settings from {client.peer} refused (baud rate 9600): 10 byte(s) you typed wait for the "
                      "device (it takes no input now); t stays at 115200,8N1", self.said)
        self.line.deviceWritable(True)
        self.device.queued = 3  # (not all of it sent yet)
        client.dataReceived(ESC + b"B9600\r")
        self.assertIn(b"[serialgw: no change: 3 byte(s) typed before wait in the device's output queue, and a new rate "
                      b"now would apply to them too; ask again once they have gone (t stays at 115200,8N1)]",
                      transport.value())
        self.assertEqual([event for event in self.device.events if event[0] in ("write", "apply")],
                         [("write", b"stty 9600\r")])
        self.device.queued = 0
        client.dataReceived(ESC + b"B9600\r")
        self.assertEqual(self.device.events[-1][0], "apply")
        self.assertEqual(self.line.settings.baudrate, 9600)
        self.assertIn(b"[serialgw: t now at 9600,8N1]", transport.value())

    def test_noRfc2217CommandAheadOfOwnTypingThatWaits(self) -> None:
        """An RFC 2217 command (SET-BAUDRATE) from a telnet client with an escape menu, read on while its typing waits for the device: it waits its turn, and what came after it too (done at once, the rate reached the device before the bytes typed for the old one)."""
        telnet = TelnetClient(self.line, listener=parseListener("telnet,escape=^]+4445"), clock=self.clock)
        transport = BoundedTransport()
        telnet.makeConnection(transport)
        telnet.dataReceived(bytes([255, 251, 44]))  # IAC WILL COM-PORT-OPTION
        self.clock.advance(1)
        self.line.deviceWritable(False)
        setBaud = bytes([255, 250, 44, 1, 0, 0, 0x25, 0x80, 255, 240])  # SET-BAUDRATE 9600
        telnet.dataReceived(b"stty 9600\r" + setBaud + b"ls\r")
        self.assertEqual([event for event in self.device.events if event[0] in ("write", "apply")], [])
        self.assertEqual(transport.producerState, "paused")
        self.line.deviceWritable(True)
        self.assertEqual([(kind, getattr(data, "baudrate", data)) for kind, data in self.device.events
                          if kind in ("write", "apply")],
                         [("write", b"stty 9600\r"), ("apply", 9600), ("write", b"ls\r")])
        self.assertEqual(transport.producerState, "producing")
        # Its own BREAK-ON (SET-CONTROL 5) behind its typing: it too waits its turn, then goes (not refused).
        self.line.deviceWritable(False)
        telnet.dataReceived(b"boot" + bytes([255, 250, 44, 5, 5, 255, 240]))
        self.line.deviceWritable(True)
        self.assertEqual([kind for kind, data in self.device.events if kind in ("write", "break")][-2:],
                         ["write", "break"])
        self.assertEqual(self.writes()[-4:], b"boot")

    def test_noOnlyWatchAheadOfOwnTypingThatWaits(self) -> None:
        """^] o while the person's own typing waits for the device is refused and said: done at once, that typing, typed while it wrote, was refused when the device took input; once it has gone, it only watches."""
        client, transport = self.raw()
        self.line.deviceWritable(False)
        client.dataReceived(b"ls\r" + ESC + b"o")
        self.assertIn(b"[serialgw: you still write: 3 byte(s) you typed wait for the device (it takes no input now), "
                      b"and they would not be sent if you only watched now; ask again once they have gone (^] d "
                      b"leaves without them)]", transport.value())
        self.assertIs(client.role, Role.WRITER)
        self.line.deviceWritable(True)
        self.assertEqual((self.writes(), self.line.refused), (b"ls\r", 0))
        client.dataReceived(ESC + b"o")
        self.assertIs(client.role, Role.WATCHER)

    def test_withoutEscapeMenuNotRead(self) -> None:
        """A client with no escape menu (a program: nc, a script) is not read while the device takes no input, as before: what it sends stays its own until then."""
        client, transport = self.raw("raw+4444")
        self.line.deviceWritable(False)
        self.assertEqual(transport.producerState, "paused")
        self.line.deviceWritable(True)
        self.assertEqual(transport.producerState, "producing")


class FillingDevice(RecordingDevice):
    """A device whose queue is past its mark again after each write (the line told at once, inside the write)."""

    line: Line

    def write(self, data: bytes, source: Any = None) -> None:
        RecordingDevice.write(self, data)
        self.line.deviceWritable(False)


class BehindAgainTests(SynchronousTestCase):
    """The device behind again while the typing that waited is sent."""

    def test_othersWaitOnWhenTheDeviceIsBehindAgain(self) -> None:
        """The first person's waiting typing puts the device behind again: the second's waits on (not sent, and the device not told to take more), and goes at the next turn the device takes input."""
        clock = Clock()
        device = FillingDevice()
        line = device.line = Line("t", device, clock=clock)
        clients = []
        for _ in (1, 2):
            client = RawClient(line, Role.WRITER, listener=parseListener("raw,escape=^]+4444"), clock=clock)
            client.makeConnection(BoundedTransport())
            clients.append(client)
        line.deviceWritable(False)
        clients[0].dataReceived(b"first")
        clients[1].dataReceived(b"second")
        line.deviceWritable(True)
        self.assertEqual(device.events, [("write", b"first")])
        self.assertFalse(line.writable)
        self.assertEqual(clients[1].typedWaiting, 6)
        line.deviceWritable(True)
        self.assertEqual(device.events, [("write", b"first"), ("write", b"second")])


class SocketTransport(BoundedTransport):
    """A BoundedTransport whose handle is a real socket (its peer's hang-up and unread bytes are the kernel's)."""

    def __init__(self, sock: socket.socket) -> None:
        BoundedTransport.__init__(self)
        self.sock = sock
        self.aborted = False

    def getHandle(self) -> socket.socket:
        return self.sock

    def abortConnection(self) -> None:
        self.aborted = True
        BoundedTransport.abortConnection(self)


class ProgramHangUpTests(SynchronousTestCase):
    """A client not read while the device takes no input (a program's: no escape menu) that hangs up."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.said: list[str] = []
        observeLog(self, lambda e: self.said.append(formatEvent(e)) if e.get("line") == "t" else None)
        ours, self.peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(self.peer.close)
        self.client = RawClient(self.line, Role.WRITER, listener=parseListener("raw+4444"), clock=self.clock)
        self.transport = SocketTransport(ours)
        self.client.makeConnection(self.transport)
        self.line.deviceWritable(False)

    def test_hungUpWithNothingUnreadGoes(self) -> None:
        """One that hangs up having sent nothing left unread is seen to go within HANGUP_CHECK_SECONDS (it held its place in max-clients, and its descriptor, until the device took input)."""
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertFalse(self.transport.aborted)
        self.peer.close()
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertTrue(self.transport.aborted)
        self.assertIn(f"t: {self.client.peer} hung up while the device took no input (nothing it sent was left "
                      "unread): it goes now", self.said)

    def test_hungUpWithUnreadInputStays(self) -> None:
        """One whose input is still unread (nc -N's upload to a slow device) stays until the device takes it: nothing it sent is lost."""
        self.peer.sendall(b"the rest of the upload")
        self.peer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS * 3)
        self.assertFalse(self.transport.aborted)

    def test_notWatchedOnceRead(self) -> None:
        """No check is left once the device takes input again."""
        self.clock.advance(1.0)  # (its arrival announced: QUIET_SECONDS)
        self.line.deviceWritable(True)
        self.assertEqual(self.clock.getDelayedCalls(), [])
