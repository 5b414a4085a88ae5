"""
break-sequences on a running gateway: a raw client with an escape menu
sends a line's break sequence with C{^] l KEY}; its bytes reach the
program on the line's pty in their place among the typing, and a reload's
new sequences apply to the sessions already there.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from serialgw.app.service import GatewayService
from serialgw.config.file import loadConfig
from tests.realio import TtyEnd, closeClients, connect, listenerPort, startGateway, writeTemp
from tests.shortpaths import shortTemp


class BreakSequencesTests(TestCase):
    timeout = 30

    def config(self, link: str, sequences: str) -> list:  # type: ignore[type-arg]
        return loadConfig(writeTemp(self, f'[lines.a]\ndevice = "pty:{link}"\n'
                                          f'listen = "raw,escape=^]+tcp:0:interface=127.0.0.1"\n'
                                          f"break-sequences = {sequences}\n"))

    async def test_sentInPlaceAndReloaded(self) -> None:
        """ab ^] l 2 cd reaches the pty as ab CR ~ ^B cd; after a reload l 2 is the new '#.', and the old l 3 is gone (said)."""
        link = shortTemp(self)
        service: GatewayService = startGateway(self, *self.config(link, "{ 2 = '\\r~^B', 3 = 'x' }"))
        far = TtyEnd(link)
        self.addCleanup(far.close)
        client = await connect(listenerPort(service))
        client.transport.write(b"ab\x1dl2cd")  # type: ignore[union-attr]
        await far.received.contains(b"ab\r~\x02cd")
        result = await service.reload(self.config(link, "{ 2 = '#.' }"))
        self.assertEqual(result.get("refused", []), [])
        client.transport.write(b"\x1dl3\x1dl2!")  # type: ignore[union-attr]
        await far.received.contains(b"ab\r~\x02cd#.!")
        await client.received.contains(b"no break sequence '3' on a; ^] l ? lists them")
        self.assertEqual(far.received.data, b"ab\r~\x02cd#.!")
        await closeClients(client)
