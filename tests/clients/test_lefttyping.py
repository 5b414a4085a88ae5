"""
A client that hangs up while the device takes no input, what it sent
still unread (nc -N's upload to a stuck console): its place in
max-clients is free at once (a newcomer was refused "full" until the
device took that typing); the typing still goes to the device, then the
client goes; at most max-clients such clients wait on a line.
"""

from __future__ import annotations

import importlib
import pkgutil
import socket

from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyClass

import serialgw.clients
from serialgw.clients.raw import RawClient
from serialgw.clients.reading import HANGUP_CHECK_SECONDS
from serialgw.config.listeners import parseListener
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_behind import SocketTransport
from tests.fakes import RecordingClient, RecordingDevice, observeLog


def clientClasses() -> list[type]:
    """Every class of serialgw.clients that implements IClient (9 now: telnet, raw, stdio, SSH, pty, file, netconsole, log, watch-all view)."""
    classes = []
    for module in pkgutil.iter_modules(serialgw.clients.__path__, "serialgw.clients."):
        for thing in vars(importlib.import_module(module.name)).values():
            if isinstance(thing, type) and thing.__module__ == module.name and IClient.implementedBy(thing):
                classes.append(thing)
    return classes


class LeftTypingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.line.maxClients = 1
        self.said: list[str] = []
        observeLog(self, lambda e: self.said.append(formatEvent(e)) if e.get("line") == "t" else None)
        self.line.deviceWritable(False)

    def connect(self) -> tuple[RawClient, SocketTransport, socket.socket]:
        """A raw writer on the line, its socket's peer returned (a real socket pair: the kernel says hang-up and unread bytes)."""
        ours, peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(peer.close)
        client = RawClient(self.line, Role.WRITER, listener=parseListener("raw+4444"), clock=self.clock)
        transport = SocketTransport(ours)
        client.makeConnection(transport)
        return client, transport, peer

    def test_placeFreeTypingSent(self) -> None:
        """Its place is free once its hang-up is seen; the 23 bytes it left reach the device, exactly, once it takes input."""
        client, transport, peer = self.connect()
        self.assertTrue(self.line.full())
        peer.sendall(b"the rest of the upload\n")
        peer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertFalse(self.line.full())
        self.assertTrue(self.line.makeRoom("newcomer"))
        self.assertFalse(transport.aborted)
        self.assertIn(f"t: {client.peer} hung up while the device took no input: 23 byte(s) it sent wait for the "
                      "device, then it goes (its place is free)", self.said)
        newcomer, _, _ = self.connect()
        self.assertTrue(self.line.full())
        self.line.deviceWritable(True)
        self.assertEqual(transport.producerState, "producing")
        # (What the reactor would read from its socket, handed on.)
        client.dataReceived(transport.sock.recv(100))
        self.assertEqual(self.device.events, [("write", b"the rest of the upload\n")])
        self.assertEqual((self.line.refused, transport.aborted), (0, False))

    def test_atMostMaxClientsWait(self) -> None:
        """A second one hanging up with its typing waiting, past max-clients 1: the first one's 5 unread bytes are dropped, counted, said, and it is cut; the second one's wait."""
        first, firstTransport, firstPeer = self.connect()
        firstPeer.sendall(b"first")
        firstPeer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        second, secondTransport, secondPeer = self.connect()
        secondPeer.sendall(b"second")
        secondPeer.shutdown(socket.SHUT_WR)
        self.assertFalse(firstTransport.aborted)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertEqual((firstTransport.aborted, secondTransport.aborted), (True, False))
        self.assertEqual(self.line.refused, 5)
        self.assertIn(f"t: {first.peer}'s 5 unread byte(s) not sent: 2 clients that hung up wait with their typing "
                      "for the device, at most 1 (max-clients)", self.said)
        self.assertFalse(self.line.full())

    def test_boundHeldWhenTheyGoTogether(self) -> None:
        """Two hanging up in one turn past max-clients 2 (their looks fall due together): the two oldest waiting are cut, each once (the oldest was cut twice and the other kept: 3 waited, one more a round)."""
        self.line.maxClients = 2
        first = [self.connect() for _ in range(2)]
        for _, _, peer in first:
            peer.sendall(b"first")
            peer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        second = [self.connect() for _ in range(2)]
        for _, _, peer in second:
            peer.sendall(b"second")
            peer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertEqual([transport.aborted for _, transport, _ in first + second], [True, True, False, False])
        self.assertEqual(self.line.refused, 10)
        self.assertEqual(self.line.clients, [client for client, _, _ in second])
        self.assertEqual([client.departed for client, _, _ in second], [True, True])
        self.assertEqual(len([line for line in self.said if "unread byte(s) not sent" in line]), 2)
        self.assertFalse(self.line.full())

    def test_notHungUpHoldsItsPlace(self) -> None:
        """One whose typing waits but that has not hung up keeps its place."""
        client, transport, peer = self.connect()
        peer.sendall(b"typed")
        self.clock.advance(HANGUP_CHECK_SECONDS * 3)
        self.assertTrue(self.line.full())
        self.assertFalse(client.departed)

    def test_departedIsDeclaredByEveryClient(self) -> None:
        """IClient declares departed and dropLeftTyping, and every client class of serialgw has them (a client that never departs: false, nothing): the line reads them as a contract, not by a getattr probe."""
        self.assertEqual(sorted(name for name in ("departed", "dropLeftTyping") if name in IClient), ["departed", "dropLeftTyping"])
        classes = clientClasses()
        self.assertGreaterEqual(len(classes), 9)
        for cls in classes:
            self.assertIs(getattr(cls, "departed", None), False, cls)
            verifyClass(IClient, cls)
        self.assertIs(RecordingClient().departed, False)

    def test_departedWriterHoldsNoExclusiveWrite(self) -> None:
        """Exclusive mode: the writer hangs up, its 7 bytes waiting for a device that takes no input: it is the line's writer no longer, a person attaching now writes (it watched, for as long as the device took nothing), and the 7 bytes still reach the device first, exactly, once it takes input."""
        self.line.mode = "exclusive"
        self.line.maxClients = 0
        gone, transport, peer = self.connect()
        peer.sendall(b"reboot\n")
        peer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertTrue(gone.departed)
        self.assertIsNone(self.line.writer)
        newcomer, _, _ = self.connect()
        self.assertEqual((newcomer.role, self.line.writer), (Role.WRITER, newcomer))
        self.line.deviceWritable(True)
        gone.dataReceived(transport.sock.recv(100))
        newcomer.dataReceived(b"ls\n")
        self.assertEqual(self.device.events, [("write", b"reboot\n"), ("write", b"ls\n")])
        self.assertEqual(self.line.refused, 0)

    def test_takingWriteLeavesADepartedOnesTyping(self) -> None:
        """Exclusive mode: a watcher taking write (^] t) from a writer that hung up with its 7 bytes waiting takes nothing from it: the 7 bytes still reach the device, not refused (they were, as if it still held write)."""
        self.line.mode = "exclusive"
        self.line.maxClients = 0
        first, firstTransport, firstPeer = self.connect()
        watcher, _, _ = self.connect()
        self.assertEqual((first.role, watcher.role), (Role.WRITER, Role.WATCHER))
        firstPeer.sendall(b"reboot\n")
        firstPeer.shutdown(socket.SHUT_WR)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertTrue(first.departed)
        self.assertTrue(self.line.takeWrite(watcher))
        self.assertEqual((first.role, watcher.role, self.line.writer), (Role.WRITER, Role.WRITER, watcher))
        self.line.deviceWritable(True)
        first.dataReceived(firstTransport.sock.recv(100))
        self.assertEqual((self.device.events, self.line.refused), ([("write", b"reboot\n")], 0))

    def test_hungUpWhileAnInitCommandHolds(self) -> None:
        """Typing held by an init-command running (the device taking input): one that hangs up with 5 bytes waiting, and one with nothing, are said to have hung up while the init-command held people's typing, not while the device took no input."""
        from tests.app.test_initreload import Processes

        clock = Processes()
        self.line = Line("t", RecordingDevice(), clock=clock)
        self.line.setInitCommand("sleep 60", 30, clock)
        self.line.runInitCommand()
        self.assertEqual((self.line.initRun is not None, self.line.deviceTakes, self.line.writable), (True, True, False))
        self.clock = clock
        waiting, _, waitingPeer = self.connect()
        quiet, quietTransport, quietPeer = self.connect()
        waitingPeer.sendall(b"typed")
        for peer in (waitingPeer, quietPeer):
            peer.shutdown(socket.SHUT_WR)
        clock.advance(HANGUP_CHECK_SECONDS)
        self.assertTrue(quietTransport.aborted)
        self.assertEqual([line for line in self.said if "hung up" in line], [
            f"t: {waiting.peer} hung up while an init-command held people's typing: 5 byte(s) it sent wait for the "
            "device, then it goes (its place is free)",
            f"t: {quiet.peer} hung up while an init-command held people's typing (nothing it sent was left unread): "
            "it goes now",
        ])

    def test_typedWaitingIsDeclaredByEveryClient(self) -> None:
        """IClient declares typedWaiting, read by the line (a break refused behind typing) and the escape menu (s, o) as such: every client class has it, 0 for one that is no person's terminal."""
        self.assertIn("typedWaiting", IClient)
        for cls in clientClasses():
            self.assertTrue(hasattr(cls, "typedWaiting"), cls)
        self.assertEqual(RecordingClient().typedWaiting, 0)
        client, _, _ = self.connect()
        self.assertEqual(client.typedWaiting, 0)
