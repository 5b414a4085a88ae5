"""
A line on demand (on-demand = true) on a real pty pair: the gateway holds
the tty (its descriptor, its UUCP lock, its flock) only while a client is
connected, so another program may open it between clients.
"""

from __future__ import annotations

import fcntl
import os

from twisted.trial.unittest import TestCase

from serialgw.devices.device import SerialDevice
from serialgw.devices.uucplock import lockPath
from tests.fakes import openDescriptors
from tests.realio import closeClients, connect, listenerPort, ptyLine, startedPty, startGateway, testLockDir, until


class OnDemandPtyTests(TestCase):
    timeout = 30

    async def test_deviceClosedBetweenClients(self) -> None:
        """Nothing of the tty is held before a client connects; its connection opens it (lock and descriptor), data flows both ways; once it leaves the descriptor and lock are let go and another program takes the tty's flock; a second client opens it again."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, "raw+tcp:0:interface=127.0.0.1", name="od", onDemand=True))
        line = service.lines["od"]
        lock = lockPath(pty.slaveName, testLockDir())

        def held() -> int:
            # (The pty pair keeps one descriptor of the slave itself.)
            return sum(1 for _, link in openDescriptors() if link == pty.slaveName) - 1

        self.assertEqual((held(), os.path.exists(lock), line.closedOnDemand), (0, False, True))
        client = await connect(listenerPort(service))
        await until(self, lambda: line.device.up, "the device opened on demand")
        self.assertEqual((held(), os.path.exists(lock)), (1, True))
        pty.write(b"login: ")
        self.assertEqual(await client.received.length(7), b"login: ")
        client.transport.write(b"root\r")  # type: ignore[union-attr]
        await pty.received.contains(b"root\r")
        await closeClients(client)
        await until(self, lambda: line.closedOnDemand, "the device closed on demand")
        self.assertEqual((held(), os.path.exists(lock)), (0, False))
        other = os.open(pty.slaveName, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # (refused with EWOULDBLOCK while the gateway has it)
        finally:
            os.close(other)
        second = await connect(listenerPort(service))
        await until(self, lambda: line.device.up, "the device opened again")
        pty.write(b"again")
        self.assertEqual(await second.received.length(5), b"again")
        await closeClients(second)
        await until(self, lambda: line.closedOnDemand, "the device closed again")
        self.assertEqual(held(), 0)

    async def test_comingAndGoingLeaksNothing(self) -> None:
        """Twenty clients that connect and close at once, not waiting for the open: afterwards the tty is closed, its lock gone, and the process holds no descriptor more than before."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, "raw+tcp:0:interface=127.0.0.1", name="od", onDemand=True))
        line = service.lines["od"]
        device = line.device
        assert isinstance(device, SerialDevice)
        port = listenerPort(service)

        async def comeAndGo(times: int) -> None:
            for _ in range(times):
                client = await connect(port)
                await closeClients(client)
            await until(self, lambda: line.closedOnDemand and not line.clients and not device.reopener.opening,
                        "the device closed, no open under way")

        # (The first open makes what the process keeps for opens off the reactor thread: its threads' wake-up pipe.)
        await comeAndGo(1)
        before = openDescriptors()
        await comeAndGo(20)
        self.assertEqual(os.path.exists(lockPath(pty.slaveName, testLockDir())), False)
        self.assertEqual(sorted(openDescriptors() - before), [])
