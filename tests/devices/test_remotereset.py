"""
A remote device whose far end accepts and resets at once, for real (a
listener on 127.0.0.1 port 0 that closes each connection with a TCP RST):
redialled ever more rarely, as one refused is, not as fast as connects
go; its time the test's clock (the sockets are real).
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable

from twisted.application.internet import backoffPolicy
from twisted.internet import protocol, reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from serialgw.config.specs import DeviceSpec
from serialgw.devices.remote import RemoteDevice
from serialgw.line.hub import Line
from tests.realio import until


class ClockedNet:
    """The real reactor's sockets and name lookups, on a test's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return self.clock.callLater(delay, f, *args, **kw)

    def seconds(self) -> float:
        return self.clock.seconds()

    def getDelayedCalls(self) -> Any:
        return self.clock.getDelayedCalls()


class Resetting(protocol.Protocol):
    """Accepts, then closes with a TCP RST (SO_LINGER 0), at once."""

    def connectionMade(self) -> None:
        self.factory.accepted += 1  # type: ignore[attr-defined]
        self.transport.getHandle().setsockopt(  # type: ignore[union-attr]
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abortConnection()  # type: ignore[union-attr]


class ResettingFarEndTests(TestCase):
    timeout = 30

    async def flapping(self, kind: str) -> tuple[list[float], list[str]]:
        """A C{kind} device on a far end that resets each connection: the waits before its 2nd to 8th dials, and what its line was told."""
        factory: Any = protocol.ServerFactory.forProtocol(Resetting)
        factory.accepted = 0
        port: Any = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        clock = Clock()
        # The gateway's policy (0.5 s doubling to 30 s), without jitter.
        policy = backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0, jitter=lambda: 0)
        device = RemoteDevice(DeviceSpec(kind, host="127.0.0.1", port=port.getHost().port), ClockedNet(clock),
                              retryPolicy=policy)
        told: list[str] = []

        class Told(Line):
            def deviceUp(self) -> None:
                told.append("up")
                Line.deviceUp(self)

            def deviceLost(self, reason: Any) -> None:
                told.append("down")
                Line.deviceLost(self, reason)

        line = Told("far", device, clock=clock)
        device.sink = line
        device.start()
        self.addCleanup(device.close)
        waits = []
        for dial in range(1, 8):
            await until(self, lambda: factory.accepted == dial and told[-1:] == ["down"],  # noqa: B023
                        f"dial {dial} accepted and reset")
            clock.advance(0)
            due = [call.getTime() - clock.seconds() for call in clock.getDelayedCalls()]
            waits.append(min(due))
            clock.advance(min(due))
        await until(self, lambda: factory.accepted == 8, "the 8th dial")
        device.close()
        clock.advance(0)
        self.assertEqual(clock.getDelayedCalls(), [])
        return waits, told

    async def test_rfc2217ResetAtOnceBacksOff(self) -> None:
        """
        rfc2217://: each of 8 connections reset as it is made (links shorter
        than STABLE_LINK s): the next dial waits 1, 2, 4, 8, 16, 30, 30 s
        (never more: the policy's bound), one up and one down told each
        time; none left on the clock once closed.
        """
        waits, told = await self.flapping("rfc2217")
        self.assertEqual((waits, told), ([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0], ["up", "down"] * 8))

    async def test_tcpResetAtOnceBacksOff(self) -> None:
        """tcp: the same."""
        waits, told = await self.flapping("tcp")
        self.assertEqual((waits, told), ([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0], ["up", "down"] * 8))
