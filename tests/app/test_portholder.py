"""
A TCP listener that cannot bind says what to do: who listens on the port
already (ser2net left running), or that a port below 1024 needs a
privilege; Twisted said only "Address already in use." or "Permission
denied.".
"""

from __future__ import annotations

import errno
import os
import socket

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.binding import StartupError, listening
from serialgw.app.portholder import listenerOf, listenHint
from serialgw.config.file import loadConfig
from serialgw.devices.uucplock import processName
from tests.realio import listenerPort, startedPty, startGateway, testLockDir

BOUND_ONLY = (": no socket listens on port %d or is connected from it: a program has bound it without listening, "
              "which neither ss nor /proc/net/tcp lists: find the program that bound it and stop it, or give the "
              "listener another port")


def refused(port: int, code: int, why: str) -> CannotListenError:
    return CannotListenError("127.0.0.1", port, OSError(code, why))


class ListenHintTests(SynchronousTestCase):
    def test_inUseNamesTheHolder(self) -> None:
        """A port a socket of this process listens on: said to be this gateway's; found by its inode in /proc."""
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        self.assertEqual(listenerOf(port), os.getpid())
        self.assertEqual(listenHint(refused(port, errno.EADDRINUSE, "Address already in use")),
                         f": port {port} is one of this gateway's own listeners already (--check names which)")

    def test_inUseByAnother(self) -> None:
        """Another process's listener: its PID and name, and what to do; another's connection from the port, said so."""
        from serialgw.app import portholder

        self.patch(portholder, "holderOf", lambda port, host: (1, True))
        self.assertEqual(listenHint(refused(4001, errno.EADDRINUSE, "Address already in use")),
                         f": port 4001 is in use by another process: 1{processName(1)}: stop it, or give the listener "
                         "another port")
        self.patch(portholder, "holderOf", lambda port, host: (1, False))
        self.assertEqual(listenHint(refused(4001, errno.EADDRINUSE, "Address already in use")),
                         f": port 4001 is in use by another process: 1{processName(1)} (bound to it, not listening: a "
                         "connection from the port): stop it, or give the listener another port")

    def test_inUseNotSeenOrNotLooked(self) -> None:
        """A holder whose process is not seen (another user's), none seen at all, or not looked for (a reload): how to find it."""
        from serialgw.app import portholder

        self.patch(portholder, "holderOf", lambda port, host: (None, True))
        self.assertEqual(listenHint(refused(4001, errno.EADDRINUSE, "Address already in use")),
                         ": another program listens on port 4001 (ss -ltnp 'sport = :4001' names it): stop it, or "
                         "give the listener another port")
        self.patch(portholder, "holderOf", lambda port, host: (None, False))
        self.assertEqual(listenHint(refused(4001, errno.EADDRINUSE, "Address already in use")),
                         ": another program's connection from port 4001 holds it, not listening (ss -tanp "
                         "'sport = :4001' names it): stop it, or give the listener another port")
        self.patch(portholder, "holderOf", lambda port, host: (None, None))
        self.assertEqual(listenHint(refused(4001, errno.EADDRINUSE, "Address already in use")), BOUND_ONLY % 4001)
        self.patch(portholder, "holderOf", lambda port, host: self.fail("looked"))
        self.assertEqual(listenHint(refused(4001, errno.EADDRINUSE, "Address already in use"), look=False),
                         ": another program holds port 4001 (ss -tanp 'sport = :4001' names one that listens or is "
                         "connected from it; one bound and not listening is listed nowhere): stop it, or give the "
                         "listener another port")

    def test_boundNotListening(self) -> None:
        """A socket bound to the port and not listening (in no table: ss -ltnp shows nothing) is said to be one, where it said 'another program listens on port N (ss -ltnp ...)'; one connected from the port is named, and its process (here this one's own)."""
        from twisted.internet import reactor

        from serialgw.app import portholder

        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        e = self.assertRaises(StartupError, listening, TCP4ServerEndpoint(reactor, port, interface="127.0.0.1"),
                              Factory(), "line 'a': cannot listen on 'x'")
        self.assertEqual(str(e), f"line 'a': cannot listen on 'x': Couldn't listen on 127.0.0.1:{port}: [Errno 98] "
                                 f"Address already in use{BOUND_ONLY % port}")
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen()
        held.connect(server.getsockname())
        self.assertEqual(portholder.holderOf(port, "127.0.0.1"), (os.getpid(), False))
        self.assertEqual(listenHint(refused(port, errno.EADDRINUSE, "Address already in use")),
                         f": port {port} is held by a connection of this gateway's own from it")

    def test_ourPortOnAnotherAddress(self) -> None:
        """
        A port this gateway listens on, on another address than the one
        refused (another program's there), is not said to be the gateway's
        own: looked for (the start) or known (a reload's C{ours}), the
        address counts, every address (0.0.0.0, ::, '') clashing with each.
        """
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        own = f": port {port} is one of this gateway's own listeners already (--check names which)"
        other = CannotListenError("127.0.0.2", port, OSError(errno.EADDRINUSE, "Address already in use"))
        self.assertEqual(listenHint(other), BOUND_ONLY % port)
        self.assertEqual(listenHint(CannotListenError("", port, OSError(errno.EADDRINUSE, "x"))), own)
        self.assertNotEqual(listenHint(other, look=False, ours={("127.0.0.1", port)}), own)
        self.assertNotEqual(listenHint(other, look=False, ours={("127.0.0.2", port + 1)}), own)
        for ours in ({("127.0.0.2", port)}, {("0.0.0.0", port)}, {("::", port)}, {("::ffff:127.0.0.2", port)}):
            self.assertEqual(listenHint(other, look=False, ours=ours), own, ours)
        self.assertEqual(listenHint(CannotListenError("", port, OSError(errno.EADDRINUSE, "x")), look=False,
                                    ours={("127.0.0.1", port)}), own)

    def test_privilegedPort(self) -> None:
        """Permission denied on a port below 1024: the privilege it needs and the ways round; above, nothing."""
        self.assertEqual(listenHint(refused(23, errno.EACCES, "Permission denied")),
                         ": a port below 1024 needs root or CAP_NET_BIND_SERVICE (the shipped unit has neither: use a "
                         "port of 1024 or more, or serialgw.socket, where systemd binds it)")
        self.assertEqual(listenHint(refused(2300, errno.EACCES, "Permission denied")), "")

    def test_otherErrors(self) -> None:
        """Anything else (a unix path, another errno, not Twisted's error): nothing added."""
        self.assertEqual(listenHint(CannotListenError("", "/run/x.sock", OSError(errno.EADDRINUSE, "x"))), "")
        self.assertEqual(listenHint(refused(4001, errno.EADDRNOTAVAIL, "Cannot assign requested address")), "")
        self.assertEqual(listenHint(ValueError("x")), "")

    def test_startSaysIt(self) -> None:
        """The start's refusal: Twisted's words (their full stop dropped), then the hint."""
        from twisted.internet import reactor

        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        e = self.assertRaises(StartupError, listening, TCP4ServerEndpoint(reactor, port, interface="127.0.0.1"),
                              Factory(), "line 'a': cannot listen on 'x'")
        self.assertEqual(str(e), f"line 'a': cannot listen on 'x': Couldn't listen on 127.0.0.1:{port}: [Errno 98] "
                                 f"Address already in use: port {port} is one of this gateway's own listeners already "
                                 "(--check names which)")


class ReloadTests(TestCase):
    timeout = 30

    async def test_ownPortSaidOwn(self) -> None:
        """
        A reload adding a line on a port another line of the gateway holds
        is refused saying the port is the gateway's own (it said another
        program listened there: the reload does not look through /proc).
        """
        first, second = startedPty(self), startedPty(self)
        path = self.mktemp()

        def config(*lines: tuple[str, str, str]) -> list:  # type: ignore[type-arg]
            with open(path, "w") as f:
                f.write("".join(f'[lines.{name}]\ndevice = "{device}"\nlock-dir = "{testLockDir()}"\n'
                                f'listen = "{listen}"\n'
                                for name, device, listen in lines))
            return loadConfig(path)

        service = startGateway(self, *config(("a", first.slaveName, "raw+tcp:0:interface=127.0.0.1")))
        port = listenerPort(service)
        result = await service.reload(config(("a", first.slaveName, "raw+tcp:0:interface=127.0.0.1"),
                                             ("b", second.slaveName, f"raw+tcp:{port}:interface=127.0.0.1")))
        self.assertEqual(result, {"refused": [
            f"line 'b': cannot listen on 'raw+tcp:{port}:interface=127.0.0.1': Couldn't listen on "
            f"127.0.0.1:{port}: [Errno 98] Address already in use: port {port} is one of this gateway's own listeners "
            "already (--check names which)"]})

    async def test_ourPortNumberOnAnotherAddressNotOurs(self) -> None:
        """
        A reload adding a line on 127.0.0.2:N, which another program holds,
        while a line of the gateway listens on 127.0.0.1:N: said to be
        another program's, not the gateway's own (eb62591 went by the port
        number alone).
        """
        first, second = startedPty(self), startedPty(self)
        path = self.mktemp()

        def config(*lines: tuple[str, str, str]) -> list:  # type: ignore[type-arg]
            with open(path, "w") as f:
                f.write("".join(f'[lines.{name}]\ndevice = "{device}"\nlock-dir = "{testLockDir()}"\n'
                                f'listen = "{listen}"\n'
                                for name, device, listen in lines))
            return loadConfig(path)

        service = startGateway(self, *config(("a", first.slaveName, "raw+tcp:0:interface=127.0.0.1")))
        port = listenerPort(service)
        other = socket.socket()
        self.addCleanup(other.close)
        other.bind(("127.0.0.2", port))
        other.listen()
        result = await service.reload(config(("a", first.slaveName, "raw+tcp:0:interface=127.0.0.1"),
                                             ("b", second.slaveName, f"raw+tcp:{port}:interface=127.0.0.2")))
        self.assertEqual(result, {"refused": [
            f"line 'b': cannot listen on 'raw+tcp:{port}:interface=127.0.0.2': Couldn't listen on "
            f"127.0.0.2:{port}: [Errno 98] Address already in use: another program holds port {port} (ss -tanp "
            f"'sport = :{port}' names one that listens or is connected from it; one bound and not listening is listed "
            "nowhere): stop it, or give the listener another port"]})
