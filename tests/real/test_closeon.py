"""
close-on on a running gateway (ser2net's closeon): the program on a
line's pty prints the string, and the person connected gets everything up
to it and past it in that read, then the gateway closes the connection;
the line serves the next person.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from serialgw.app.service import GatewayService
from serialgw.config.file import loadConfig
from tests.realio import TtyEnd, closeClients, connect, listenerPort, startGateway, writeTemp
from tests.shortpaths import shortTemp


class CloseOnTests(TestCase):
    timeout = 30

    async def test_stringClosesTheSession(self) -> None:
        """'bye\\r\\n' from the pty: the raw client has 'hello\\r\\nbye\\r\\n' and is closed; a new client still talks to the pty."""
        link = shortTemp(self)
        (config,) = loadConfig(writeTemp(self, f'[lines.a]\ndevice = "pty:{link}"\n'
                                               'listen = "raw+tcp:0:interface=127.0.0.1"\n'
                                               "close-on = 'bye\\r\\n'\n"))
        service: GatewayService = startGateway(self, config)
        far = TtyEnd(link)
        self.addCleanup(far.close)
        client = await connect(listenerPort(service))
        client.transport.write(b"x")  # type: ignore[union-attr]
        await far.received.contains(b"x")
        far.write(b"hello\r\nby")
        await client.received.contains(b"hello\r\nby")
        far.write(b"e\r\n")
        await client.closed
        self.assertEqual(client.received.data, b"hello\r\nbye\r\n")
        again = await connect(listenerPort(service))
        again.transport.write(b"y")  # type: ignore[union-attr]
        await far.received.contains(b"xy")
        await closeClients(again)
