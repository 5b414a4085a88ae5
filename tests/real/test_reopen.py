"""
The escape menu's O on a running gateway: a raw client with an escape
menu on a tty line (a pty's slave) has the device closed and opened again:
told it went and came back, the tty opened anew (another port on it), and
its typing after reaches the program on the pty.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import TestCase

from serialgw.config.file import loadConfig
from tests.realio import TtyEnd, closeClients, connect, listenerPort, ptyLine, startedPty, startGateway, writeTemp
from tests.shortpaths import shortTemp


class ReopenTests(TestCase):
    timeout = 30

    async def test_reopenedAndTypingAfter(self) -> None:
        """^] O: down (reopened by the client) and back; the slave opened anew (another port); 'after' typed then reaches the pty."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, "raw,escape=^]+tcp:0:interface=127.0.0.1"))
        device = service.lines["t"].device
        before = device.port  # type: ignore[attr-defined]
        client = await connect(listenerPort(service))
        client.transport.write(b"first")  # type: ignore[union-attr]
        await pty.received.contains(b"first")
        peer: Any = client.transport.getHost()  # type: ignore[union-attr]
        client.transport.write(b"\x1dO")  # type: ignore[union-attr]
        await client.received.contains(f"[serialgw: t is down: reopened by 127.0.0.1:{peer.port}; waiting for it]"
                                       .encode())
        await client.received.contains(b"[serialgw: t is back]")
        self.assertTrue(device.up)
        # (Opened anew: another port, on the same slave; the one before closed.)
        self.assertIsNot(device.port, before)  # type: ignore[attr-defined]
        self.assertEqual(os.readlink(f"/proc/self/fd/{device.port.fileno()}"), pty.slaveName)  # type: ignore[attr-defined]
        client.transport.write(b"after")  # type: ignore[union-attr]
        await pty.received.contains(b"firstafter")
        self.assertEqual(service.lines["t"].reopens, 1)
        await closeClients(client)

    async def test_ptyTheGatewayMakesRefused(self) -> None:
        """A pty: device (made by the gateway, a program on its link) is not reopened: said; typing still reaches it."""
        link = shortTemp(self)
        service = startGateway(self, *loadConfig(writeTemp(
            self, f'[lines.a]\ndevice = "pty:{link}"\nlisten = "raw,escape=^]+tcp:0:interface=127.0.0.1"\n')))
        far = TtyEnd(link)
        self.addCleanup(far.close)
        client = await connect(listenerPort(service))
        client.transport.write(b"\x1dOx")  # type: ignore[union-attr]
        await client.received.contains(f"[serialgw: a not reopened: pty:{link} is a pty the gateway makes: nothing to "
                                       "reopen (a program opens its link)]".encode())
        await far.received.contains(b"x")
        await closeClients(client)
