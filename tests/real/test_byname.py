"""
A [by-name] listener on real sockets, before pty pairs played as devices:
a raw and a telnet client name their consoles and use them; a client that
floods the prompt is closed without disturbing another; the stop closes
whoever is still at the prompt.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app.service import GatewayService
from serialgw.clients.bynameprompt import NAME_MOST, PROMPT
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ByNameSpec
from serialgw.line.role import Role
from tests.fakes import LogEvents
from tests.realio import closeClients, connect, ptyLine, startedPty, until, watchWaits
from tests.shortpaths import shortDirectory


class ByNameRealTests(TestCase):
    timeout = 30

    def gateway(self, *listeners: str, own: tuple[str, str] = ("raw+tcp:0:interface=127.0.0.1",) * 2) -> tuple[Any, Any, Any]:
        from serialgw.app.process import TwistdGatewayService

        watchWaits(self)
        web, db = startedPty(self), startedPty(self)
        self.configs = [ptyLine(web, own[0], name="web1"), ptyLine(db, own[1], name="db2")]
        service = TwistdGatewayService(self.configs)
        service.byName = ByNameSpec(tuple(parseListener(text) for text in listeners))
        service.startService()
        self.addCleanup(service.stopService)
        return service, web, db

    def port(self, service: GatewayService, index: int = 0) -> int:
        return int(service.byNameFactories[index].port.getHost().port)

    async def test_rawAndTelnet(self) -> None:
        """A raw client names web1 (its typing after Enter in the same packet reaches the tty), a telnet client db2; each gets its own console's output only."""
        service, web, db = self.gateway("raw+tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1")
        raw = await connect(self.port(service, 0))
        self.assertEqual(await raw.received.length(len(PROMPT)), PROMPT)
        raw.transport.write(b"web1\nAT\r")  # type: ignore[union-attr]
        await web.received.contains(b"AT\r")
        telnet = await connect(self.port(service, 1))
        await telnet.received.length(len(PROMPT))
        telnet.transport.write(b"db2\r\n")  # type: ignore[union-attr]
        await until(self, lambda: len(service.lines["db2"].clients) == 1, "db2's telnet client attached")
        web.write(b"web1 login: ")
        db.write(b"db2 login: ")
        self.assertEqual(await raw.received.contains(b"login: "), PROMPT + b"web1 login: ")
        said = await telnet.received.contains(b"login: ")
        self.assertTrue(said.startswith(PROMPT + b"\xff"), said)  # (telnet negotiation once chosen)
        self.assertNotIn(b"web1", said)
        await closeClients(raw, telnet)

    async def test_floodAtThePrompt(self) -> None:
        """A client sending 1 MB without an Enter is closed after NAME_MOST+1 bytes, told why; another client is served meanwhile and after."""
        service, web, _ = self.gateway("raw+tcp:0:interface=127.0.0.1")
        port = self.port(service)
        flood = await connect(port)
        await flood.received.length(len(PROMPT))
        flood.transport.write(b"x" * 1000000)  # type: ignore[union-attr]
        await flood.closed
        self.assertEqual(flood.received.data, PROMPT + f"\r\n[serialgw: a console's name is at most {NAME_MOST} "
                                                        "characters: disconnected]\r\n".encode())
        other = await connect(port)
        await other.received.length(len(PROMPT))
        other.transport.write(b"web1\n")  # type: ignore[union-attr]
        await until(self, lambda: len(service.lines["web1"].clients) == 1, "web1's client attached")
        web.write(b"ok")
        await other.received.contains(b"ok")
        await closeClients(other)

    async def test_stopClosesThePrompt(self) -> None:
        """At the stop a client still at the prompt is told and closed."""
        service, _, _ = self.gateway("raw+tcp:0:interface=127.0.0.1")
        waiting = await connect(self.port(service))
        await waiting.received.length(len(PROMPT))
        await service.stopService()
        await waiting.closed
        self.assertEqual(waiting.received.data, PROMPT + b"\r\n[serialgw: the gateway is stopping: disconnected]\r\n")

    async def test_reloadAppliesLines(self) -> None:
        """A reload's lines filter reaches a client at the prompt at once (a line taken out is neither listed nor given); the table removed, no line is given; a listener changed waits for a restart, said."""
        from serialgw.config.file import FileConfig

        service, _, _ = self.gateway("raw+tcp:0:interface=127.0.0.1")
        log = LogEvents(self)
        client = await connect(self.port(service))
        await client.received.length(len(PROMPT))
        narrowed = ByNameSpec((parseListener("raw+tcp:0:interface=127.0.0.1"),), ("db*",))
        await service._applyFile((self.configs, None, None), FileConfig(self.configs, None, (), byName=narrowed))
        client.transport.write(b"?\nweb1\n")  # type: ignore[union-attr]
        said = PROMPT + b"db2\r\n" + PROMPT + b"[serialgw: no console 'web1' here]\r\n" + PROMPT
        self.assertEqual(await client.received.length(len(said)), said)
        await service._applyFile((self.configs, None, None), FileConfig(self.configs, None, ()))
        client.transport.write(b"?\n")  # type: ignore[union-attr]
        said += b"(none you may use)\r\n" + PROMPT
        self.assertEqual(await client.received.length(len(said)), said)
        moved = ByNameSpec((parseListener("raw+tcp:4999:interface=127.0.0.1"),))
        await service._applyFile((self.configs, None, None), FileConfig(self.configs, None, (), byName=moved))
        client.transport.write(b"db2\n")  # type: ignore[union-attr]
        await until(self, lambda: len(service.lines["db2"].clients) == 1, "db2 given again (every line)")
        warned = [formatEvent(e) for e in log.at(LogLevel.warn) if "by-name" in e["log_format"]]
        self.assertEqual(warned, ["reload: [by-name] removed: its listeners give no line from now on; restart the "
                                  "gateway to close them",
                                  "reload: [by-name] added, or its listeners changed: restart the gateway to apply it "
                                  "(its lines filter applies now)"])
        await closeClients(client)

    async def test_ownListenersBind(self) -> None:
        """The lines' own listeners, as the gateway has them, bind its by-name clients: web1's (all ro) make it read-only, db2's (allow= another network) keep it from a client on 127.0.0.1; a reload letting db2 be written from anywhere gives it."""
        from serialgw.config.file import FileConfig

        service, web, db = self.gateway("raw+tcp:0:interface=127.0.0.1",
                                        own=("raw,ro+tcp:0:interface=127.0.0.1", "raw,allow=10.9.0.0/16+tcp:0"))
        client = await connect(self.port(service))
        client.transport.write(b"?\ndb2\nweb1\nAT\r")  # type: ignore[union-attr]
        await until(self, lambda: len(service.lines["web1"].clients) == 1, "web1's client attached")
        self.assertEqual(service.lines["web1"].clients[0].role, Role.READONLY)
        web.write(b"login: ")
        said = PROMPT + b"web1\r\n" + PROMPT + b"[serialgw: no console 'db2' here]\r\n" + PROMPT + b"login: "
        self.assertEqual(await client.received.contains(b"login: "), said)
        wider = [self.configs[0], attrs.evolve(self.configs[1], listeners=(parseListener("raw+tcp:0"),))]
        await service._applyFile((wider, None, None), FileConfig(wider, None, (), byName=service.byName))
        other = await connect(self.port(service))
        other.transport.write(b"db2\nok\r")  # type: ignore[union-attr]
        await until(self, lambda: len(service.lines["db2"].clients) == 1, "db2's client attached")
        self.assertEqual(service.lines["db2"].clients[0].role, Role.WRITER)
        await db.received.contains(b"ok\r")
        await closeClients(client, other)

    async def test_statusPageListsIt(self) -> None:
        """The status page lists a by-name listener among the listeners of each line it gives (kind by-name, where it is bound), not of a line outside its lines nor of one with write / read it cannot give (no TLS ca=: no person); a reload's lines filter shows at once."""
        from serialgw.config.file import FileConfig
        from serialgw.config.people import Rights

        service, _, _ = self.gateway("raw+tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1")
        port, other = self.port(service, 0), self.port(service, 1)
        own = service.listenersOf("web1")[0]
        self.assertEqual(service.listenersOf("web1"), [own, {
            "listener": "raw+tcp:0:interface=127.0.0.1", "kind": "by-name", "protocol": "raw",
            "address": f"127.0.0.1:{port}"}, {
            "listener": "tcp:0:interface=127.0.0.1", "kind": "by-name", "protocol": "telnet",
            "address": f"127.0.0.1:{other}"}])
        self.assertEqual(own["kind"], "listen")
        every = service.byName
        narrowed = ByNameSpec(every.listeners, ("db*",))
        people = [attrs.evolve(self.configs[0], rights=Rights(write=("alice",))), self.configs[1]]
        await service._applyFile((people, None, None), FileConfig(people, None, (), byName=narrowed))
        self.assertEqual([shown["kind"] for shown in service.listenersOf("db2")], ["listen", "by-name", "by-name"])
        self.assertEqual([shown["kind"] for shown in service.listenersOf("web1")], ["listen"])
        await service._applyFile((people, None, None), FileConfig(people, None, (), byName=every))
        self.assertEqual(service.byName.lines, ("*",))
        # (web1 is in the lines again, but it has write = ["alice"] and these listeners know nobody.)
        self.assertEqual([shown["kind"] for shown in service.listenersOf("web1")], ["listen"])
        self.assertEqual(service.listenersOf("nosuchline"), [])

    def test_statusPageLeavesOutWhatItCannotGive(self) -> None:
        """A line reached only over its unix socket is not listed under a TCP by-name listener (none of its connections would be given it); the other line is."""

        where = shortDirectory(self)
        service, _, _ = self.gateway("raw+tcp:0:interface=127.0.0.1",
                                     own=(f"raw+unix:{where}/web1.sock", "raw+tcp:0:interface=127.0.0.1"))
        self.assertEqual([shown["kind"] for shown in service.listenersOf("web1")], ["listen"])
        self.assertEqual([shown["kind"] for shown in service.listenersOf("db2")], ["listen", "by-name"])
