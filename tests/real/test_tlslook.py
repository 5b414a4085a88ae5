"""
A reload adding (or changing) a TLS listener reads its files (certificate,
key, CA file) aside first, in the reload's look at files: they were read on
the reactor's thread only (the bind check, then the open), so one on a file
system that does not answer held every line.
"""

from __future__ import annotations

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from serialgw.app import reloadlooks
from serialgw.app.service import GatewayService
from tests.certs import Authority
from tests.real.test_logopen import ALL, LISTEN, Hung
from tests.realio import Clients, PtyPair, listenerPort, ptyLine, startedPty, startGateway, until


class HungTLSFileTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.clients = Clients()
        self.addCleanup(lambda: defer.ensureDeferred(self.clients.close()))

    async def bothFlow(self, service: GatewayService, a: PtyPair, b: PtyPair, hung: Hung) -> None:
        """Each line's client and device exchange their bytes, the file's open still hung."""
        onA = await self.clients.connect(listenerPort(service, 0))
        onB = await self.clients.connect(listenerPort(service, 1))
        onB.transport.write(ALL * 16)  # type: ignore[union-attr]
        self.assertEqual(await b.received.length(4096), ALL * 16)
        onA.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await a.received.length(5), b"typed")
        a.write(b"said\n")
        self.assertEqual(await onA.received.length(5), b"said\n")
        self.assertFalse(hung.released.is_set())

    async def test_reloadWithHungKey(self) -> None:
        """A reload giving a line a TLS listener whose key's open hangs: refused after CHECK_WAIT s naming the file, both lines serving meanwhile (they waited for the test to let the open go); nothing changed; a second reload meanwhile is refused at once, naming it too; once the open answers, the reload goes through."""
        self.patch(reloadlooks, "CHECK_WAIT", 0.5)
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        a, b = startedPty(self), startedPty(self)
        lineA, lineB = ptyLine(a, LISTEN, name="a"), ptyLine(b, LISTEN, name="b")
        service = startGateway(self, lineA, lineB)
        tls = f"tls:0:interface=127.0.0.1:cert={cert}:key={key}:ca={ca.path}"
        hung = Hung(self, "open", key)
        reloaded = service.reload([ptyLine(a, LISTEN, tls, name="a"), lineB])
        await hung.whenEntered()
        await self.bothFlow(service, a, b, hung)
        why = (f"line 'a': listener {tls!r}: key {key!r}: a look at it (open, read) has not returned in 0.5 s (a file "
               "system that does not answer?)")
        self.assertEqual(await reloaded, {"refused": [why]})
        self.assertEqual(service.configs[0], lineA)
        again = await service.reload([ptyLine(a, LISTEN, tls, name="a"), lineB])
        self.assertEqual(again, {"refused": [f"line 'a': listener {tls!r}: key {key!r}: a look at it (open, read) "
                                             "begun before has not returned yet"]})
        hung.release()
        await until(self, lambda: key not in reloadlooks._stuck, "the look at the key returned")
        # (Files that answer: the look may take its time on a loaded machine, it is not hung.)
        self.patch(reloadlooks, "CHECK_WAIT", 60.0)
        self.assertEqual(await service.reload([ptyLine(a, LISTEN, tls, name="a"), lineB]),
                         {"added": [], "changed": ["a"], "removed": []})
