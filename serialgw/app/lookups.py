"""
Host name lookups (dial-outs, remote consoles, netconsole remotes) on
threads of their own, bounded, each answered within a deadline.

Twisted looks names up with getaddrinfo on the reactor's thread pool (10
threads), which the check for a pty's holders (devices/ptywatch.py) shares;
getaddrinfo cannot be interrupted, and a DNS server that does not answer (or
an NSS module that hangs) keeps it for as long as it likes.  Ten such names
took every thread: every other line's lookup, and the check that clears the
exclusive mode a program left on a C{pty:} listener, waited behind them,
and a netconsole's or dial-out's lookup never came back to be tried again.
Here (installed on the reactor as its name resolver, so
C{HostnameEndpoint} and C{reactor.resolve} both use it):

  - each lookup runs on a daemon thread of its own, which ends with it;
  - one lookup of a name (port, family) at a time: asked again while one
    is under way (a dial-out's retry), the asker waits for that one, so a
    name that never answers holds one thread however often it is retried;
  - at most MOST_LOOKUPS under way: past that a lookup fails at once;
  - an asker not answered within LOOKUP_DEADLINE s is answered with no
    address (the dial-out or netconsole tries again with its backoff),
    said once a lookup; its thread ends when getaddrinfo returns.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, Optional, Sequence

from twisted.internet._resolver import GAIResolver
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
    IResolutionReceiver,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

log = Logger()

# Lookups (distinct names) under way at once, those that hang included.
MOST_LOOKUPS = 256
# An asker not answered in this long (seconds) is answered with no address.
LOOKUP_DEADLINE = 30.0

# (host, port, family, socket type): one lookup under way for each.
_Key = tuple[str, int, int, int]


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        raise NotImplementedError()


class LookupThreads:
    """Where lookups run: each on a daemon thread of its own, ended with it."""

    def run(self, f: Callable[[], Any], onResult: Callable[[bool, Any], None]) -> None:
        def work() -> None:
            try:
                result, ok = f(), True
            except BaseException:
                result, ok = Failure(), False
            onResult(ok, result)

        threading.Thread(target=work, daemon=True, name="serialgw-name-lookup").start()


class _Asker:
    def __init__(self, receiver: IResolutionReceiver) -> None:
        self.receiver = receiver
        self.deadline: Any = None


@implementer(IHostnameResolver)
class LookupResolver:
    """Name lookups off the reactor's pool, one thread a name, bounded, with a deadline (see the module)."""

    def __init__(self, reactor: Any, threads: Optional[Any] = None,
                 getaddrinfo: Callable[..., Any] = socket.getaddrinfo) -> None:
        self._reactor = reactor
        self._threads = threads if threads is not None else LookupThreads()
        self._getaddrinfo = getaddrinfo
        # Lookups under way (their threads not returned) and who waits for each.
        self.underWay: dict[_Key, list[_Asker]] = {}
        # Those of them said to be late (once a lookup).
        self._lateSaid: set[_Key] = set()

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str, portNumber: int = 0,
                        addressTypes: Optional[Sequence[type[IAddress]]] = None,
                        transportSemantics: str = "TCP") -> IHostResolution:
        types = frozenset(addressTypes) if addressTypes is not None else frozenset((IPv4Address, IPv6Address))
        family = (socket.AF_UNSPEC if len(types & {IPv4Address, IPv6Address}) != 1
                  else socket.AF_INET if IPv4Address in types else socket.AF_INET6)
        socktype = socket.SOCK_DGRAM if transportSemantics == "UDP" else socket.SOCK_STREAM
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        key = (hostName, portNumber, family, socktype)
        askers = self.underWay.get(key)
        if askers is None:
            if len(self.underWay) >= MOST_LOOKUPS:
                log.warn("name lookup of {host} not made: {count} lookups have not returned (a DNS server that does "
                         "not answer?); tried again when fewer hang", host=hostName, count=len(self.underWay))
                resolutionReceiver.resolutionComplete()
                return resolution
            askers = self.underWay[key] = []
            lookup = self._getaddrinfo

            def ask() -> Any:
                return lookup(hostName, portNumber, family, socktype)

            def returned(ok: bool, result: Any) -> None:
                self._reactor.callFromThread(self._answered, key, ok, result)

            self._threads.run(ask, returned)
        asker = _Asker(resolutionReceiver)
        askers.append(asker)
        asker.deadline = self._reactor.callLater(LOOKUP_DEADLINE, self._late, key, asker)
        return resolution

    def _answered(self, key: _Key, ok: bool, result: Any) -> None:
        askers = self.underWay.pop(key, [])
        if key in self._lateSaid:
            self._lateSaid.discard(key)
            log.info("name lookup of {host} returned after all", host=key[0])
        addresses: list[IAddress] = []
        if ok:
            semantics = "UDP" if key[3] == socket.SOCK_DGRAM else "TCP"
            for family, _socktype, _proto, _name, sockaddr in result:
                if family == socket.AF_INET:
                    addresses.append(IPv4Address(semantics, *sockaddr))  # type: ignore[arg-type]
                elif family == socket.AF_INET6:
                    addresses.append(IPv6Address(semantics, *sockaddr))  # type: ignore[arg-type]
        elif not result.check(socket.gaierror):
            log.failure("name lookup of {host} failed", result, host=key[0])
        for asker in askers:
            asker.deadline.cancel()
            for address in addresses:
                asker.receiver.addressResolved(address)
            asker.receiver.resolutionComplete()

    def _late(self, key: _Key, asker: _Asker) -> None:
        askers = self.underWay.get(key)
        if askers is None or asker not in askers:
            return
        askers.remove(asker)
        asker.receiver.resolutionComplete()
        if key in self._lateSaid:
            return
        self._lateSaid.add(key)
        log.warn("name lookup of {host} has not returned in {seconds:.0f} s (a DNS server that does not answer?): "
                 "taken as failed, tried again with backoff; {count} lookup(s) under way", host=key[0],
                 seconds=LOOKUP_DEADLINE, count=len(self.underWay))


def installLookups(reactor: Any) -> None:
    """
    Make L{LookupResolver} C{reactor}'s name resolver in place of Twisted's
    (getaddrinfo on the reactor's pool); one a test gave it is left as it is.
    """
    if IReactorPluggableNameResolver.providedBy(reactor) and isinstance(reactor.nameResolver, GAIResolver):
        reactor.installNameResolver(LookupResolver(reactor))
