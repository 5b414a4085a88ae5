"""
Host name lookups that never return (a DNS server that does not answer)
hold no other lookup and not the reactor's thread pool (the pty holder
check's), and their askers are answered within a deadline (app/lookups.py).
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Callable

from twisted.internet import defer, reactor, threads
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from serialgw.app import lookups
from serialgw.app.lookups import LOOKUP_DEADLINE, LookupResolver
from serialgw.app.service import GatewayService
from serialgw.devices.links import ptyHolders
from tests.fakes import observeLog


class HungLookupTests(TestCase):
    async def test_hungNamesHoldNothingElse(self) -> None:
        """Twelve names whose lookups never return: the pty holder check (on the reactor's pool) and another name's lookup are still answered at once."""
        GatewayService([], reactor=reactor)  # (the gateway's name resolver, installed on the reactor)
        release = threading.Event()

        def getaddrinfo(host: str, port: int, *args: Any) -> list[Any]:
            if host.startswith("hung"):
                release.wait()
                raise socket.gaierror(socket.EAI_AGAIN, "no answer")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        self.patch(reactor.nameResolver, "_getaddrinfo", getaddrinfo)  # type: ignore[attr-defined]
        hung = [reactor.resolve(f"hung{i}.example") for i in range(12)]

        async def released() -> None:
            release.set()
            for d in hung:
                try:
                    await d
                except DNSLookupError:
                    pass

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(released()))
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        pool = reactor.getThreadPool()  # type: ignore[attr-defined]
        holders: defer.Deferred[Any] = threads.deferToThreadPool(reactor, pool, ptyHolders,  # type: ignore[arg-type]
                                                                 os.ttyname(slave))
        good: defer.Deferred[Any] = reactor.resolve("good.example")
        found: defer.Deferred[list[Any]] = defer.gatherResults([holders, good])
        self.assertEqual(await found.addTimeout(5, reactor), [[os.getpid()], "127.0.0.1"])


@implementer(IResolutionReceiver)
class Receiver:
    """Records what a resolution tells it."""

    def __init__(self) -> None:
        self.began = 0
        self.addresses: list[IAddress] = []
        self.complete = 0

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.began += 1

    def addressResolved(self, address: IAddress) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        self.complete += 1


class FakeThreads:
    """Lookups started, not run: a test answers them (as their threads would, through callFromThread)."""

    def __init__(self) -> None:
        self.started: list[tuple[Callable[[], Any], Callable[[bool, Any], None]]] = []

    def run(self, f: Callable[[], Any], onResult: Callable[[bool, Any], None]) -> None:
        self.started.append((f, onResult))


class ThreadsClock(Clock):
    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)


class LookupResolverTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = ThreadsClock()
        self.threads = FakeThreads()
        self.asked: list[tuple[Any, ...]] = []

        def getaddrinfo(*args: Any) -> list[Any]:
            self.asked.append(args)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", args[1])),
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::7", args[1], 0, 0))]

        self.resolver = LookupResolver(self.clock, self.threads, getaddrinfo)
        self.events: list[Any] = []
        observeLog(self, self.events.append)

    def answer(self, index: int = 0) -> None:
        f, onResult = self.threads.started[index]
        onResult(True, f())

    def test_oneThreadAName(self) -> None:
        """Three askers of one name: one lookup (one thread), its answer given to all three, every address of it."""
        receivers = [Receiver() for _ in range(3)]
        for r in receivers:
            self.resolver.resolveHostName(r, "console.example", 4444)
        self.assertEqual(len(self.threads.started), 1)
        self.answer()
        self.assertEqual(self.asked, [("console.example", 4444, socket.AF_UNSPEC, socket.SOCK_STREAM)])
        for r in receivers:
            self.assertEqual((r.began, r.addresses, r.complete),
                             (1, [IPv4Address("TCP", "192.0.2.7", 4444),
                                  IPv6Address("TCP", "2001:db8::7", 4444, 0, 0)], 1))
        self.assertEqual((self.resolver.underWay, self.clock.getDelayedCalls()), ({}, []))

    def test_lateAskerAnsweredWithNothing(self) -> None:
        """A lookup not returned in 30 s: its asker gets no address (said once); a retry waits on the same lookup, no second thread, and gets its answer."""
        first, retry = Receiver(), Receiver()
        self.resolver.resolveHostName(first, "hung.example", 4444)
        self.clock.advance(LOOKUP_DEADLINE)
        self.assertEqual((first.addresses, first.complete), ([], 1))
        self.resolver.resolveHostName(retry, "hung.example", 4444)
        self.clock.advance(LOOKUP_DEADLINE)
        self.assertEqual((retry.complete, len(self.threads.started)), (1, 1))
        late = [e for e in self.events if "has not returned" in e["log_format"]]
        self.assertEqual([(e["host"], e["seconds"]) for e in late], [("hung.example", LOOKUP_DEADLINE)])
        again = Receiver()
        self.resolver.resolveHostName(again, "hung.example", 4444)
        self.answer()
        self.assertEqual((again.addresses[0], again.complete, first.complete), (IPv4Address("TCP", "192.0.2.7", 4444),
                                                                               1, 1))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_boundedLookups(self) -> None:
        """Past MOST_LOOKUPS names under way (hung), a lookup of another name fails at once, no thread started; a returned one makes room."""
        self.patch(lookups, "MOST_LOOKUPS", 3)
        for i in range(3):
            self.resolver.resolveHostName(Receiver(), f"hung{i}.example", 4444)
        refused = Receiver()
        self.resolver.resolveHostName(refused, "other.example", 4444)
        self.assertEqual((refused.began, refused.addresses, refused.complete, len(self.threads.started)), (1, [], 1, 3))
        self.answer(0)
        later = Receiver()
        self.resolver.resolveHostName(later, "other.example", 4444)
        self.assertEqual(len(self.threads.started), 4)

    def test_familyAndSemantics(self) -> None:
        """IPv4 only over UDP (a netconsole's remote): asked of getaddrinfo as such, given as UDP addresses."""
        r = Receiver()
        self.resolver.resolveHostName(r, "log.example", 514, [IPv4Address], "UDP")
        self.answer()
        self.assertEqual(self.asked, [("log.example", 514, socket.AF_INET, socket.SOCK_DGRAM)])
        self.assertEqual(r.addresses[0], IPv4Address("UDP", "192.0.2.7", 514))
