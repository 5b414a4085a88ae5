"""
Telnet's Synch over real TCP (loopback, port 0): urgent data in the
stream, read where it is, both ways.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import ServerFactory
from twisted.trial.unittest import TestCase

from serialgw.wire.telnet import DM, IAC, IP
from tests.telnetpeer import TelnetRecorder, cmd


class Waiting(TelnetRecorder):
    """A recorder that fires C{made} once connected and C{got} once its data ends with C{until}."""

    until = b"after"
    synch = False

    def __init__(self) -> None:
        TelnetRecorder.__init__(self)
        self.made: defer.Deferred[None] = defer.Deferred()
        self.got: defer.Deferred[None] = defer.Deferred()
        self.data = b""

    def connectionMade(self) -> None:
        if self.synch:
            self.sendSynch()
        self.made.callback(None)

    def telnetDataReceived(self, data: bytes) -> None:
        TelnetRecorder.telnetDataReceived(self, data)
        self.data += data
        if self.data.endswith(self.until) and not self.got.called:
            self.got.callback(None)


class RealSynchTests(TestCase):
    timeout = 30

    def listen(self, synch: bool = False) -> tuple[list[Waiting], int]:
        made: list[Waiting] = []

        def build(addr: Any) -> Waiting:
            proto = Waiting()
            proto.synch = synch
            made.append(proto)
            return proto

        factory = ServerFactory()
        factory.buildProtocol = build  # type: ignore[method-assign]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        return made, port.getHost().port  # type: ignore[attr-defined]

    def connect(self, port: int) -> socket.socket:
        peer = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(peer.close)
        peer.settimeout(self.timeout)
        return peer

    async def test_synchSentBeforeTheAccept(self) -> None:
        """A Synch (IAC DM, the DM urgent) that is in the socket before the gateway accepts it (SO_OOBINLINE is set on the connection, after accept): the DM is read in its place, the data before it discarded, the IP before it kept, the data after it delivered."""
        made, port = self.listen()
        peer = self.connect(port)
        peer.sendall(b"typed ahead" + cmd(IAC, IP) + b"more" + cmd(IAC))
        peer.send(cmd(DM), socket.MSG_OOB)
        peer.sendall(b"after")
        while not made:
            await _turn()
        await made[0].got
        self.assertEqual(made[0].events, [("command", IP), ("synched", 15), ("command", DM), ("data", b"after")])

    async def test_ourSynchIsUrgent(self) -> None:
        """Our Synch (the answer to AO) leaves as IAC DM with the DM as TCP urgent data."""
        made, port = self.listen(synch=True)
        peer = self.connect(port)
        while not made:
            await _turn()
        await made[0].made
        # Read to the mark (the IAC), then the urgent byte out of band.
        # (Sent at once, in connectionMade: here before made fired.)
        self.assertEqual(peer.recv(10), cmd(IAC))
        # Not blocking: Python's timeout waits for the socket to be
        # readable, which a socket at the mark with only the urgent byte is not.
        peer.setblocking(False)
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))


def _turn() -> defer.Deferred[None]:
    """One turn of the reactor."""
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(0, d.callback, None)  # type: ignore[attr-defined]
    return d
