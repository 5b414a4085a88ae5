"""
SIGHUP with one key changed while a client is attached: what the README
says a reload does with that key, on a running gateway service.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from serialgw.app.service import GatewayService
from serialgw.config.file import loadConfig
from tests.realio import TtyEnd, closeClients, connect, listenerPort, startedPty, startGateway, until, writeTemp
from tests.shortpaths import shortTemp


class ReloadKeysTests(TestCase):
    """One key changed at a reload: applied in place, or the whole reload refused, as the README says."""

    timeout = 30

    def config(self, link: str, extra: str = "") -> list:  # type: ignore[type-arg]
        return loadConfig(writeTemp(self, f'[lines.a]\ndevice = "pty:{link}"\n'
                                          f'listen = "raw+tcp:0:interface=127.0.0.1"\n{extra}'))

    async def test_lockKeysOnAPtyLineRefuseTheReload(self) -> None:
        """lock or lock-dir put in a pty: line's table (it takes no lock) refuse the reload, naming the file's line and the key: the line, its pty and client stay as they were."""
        from serialgw.config.specs import ConfigError

        link = shortTemp(self)
        service: GatewayService = startGateway(self, *self.config(link))
        line, slave = service.lines["a"], os.path.realpath(link)
        far = TtyEnd(link)
        self.addCleanup(far.close)
        client = await connect(listenerPort(service))
        client.transport.write(b"one")  # type: ignore[union-attr]
        await far.received.contains(b"one")
        for extra, key in (("lock = false\n", "lock"), ('lock-dir = "/tmp"\n', "lock-dir")):
            error = str(self.assertRaises(ConfigError, self.config, link, extra))
            self.assertIn(f":4: [lines.a] {key}: means nothing on device 'pty:{link}': a pty the gateway makes takes "
                          "no lock", error)
        self.assertIs(service.lines["a"], line)
        self.assertEqual(os.path.realpath(link), slave)
        client.transport.write(b" two")  # type: ignore[union-attr]
        await far.received.contains(b"one two")
        far.write(b"back")
        await client.received.contains(b"back")
        await closeClients(client)

    async def test_lockDirMissingRefusesTheReload(self) -> None:
        """A tty line a reload adds (or reopens) whose lock-dir is not there refuses the reload: it would stay down for good."""
        link = shortTemp(self)
        service: GatewayService = startGateway(self, *self.config(link))
        line = service.lines["a"]
        pty = startedPty(self)
        missing = os.path.join(shortTemp(self), "locks")
        tty = f'[lines.b]\ndevice = "{pty.slaveName}"\nlisten = "raw+tcp:0:interface=127.0.0.1"\nlock-dir = "{missing}"\n'
        result = await service.reload(self.config(link, tty))
        self.assertEqual(result, {"refused": [f"line 'b': lock-dir {missing!r} is not a directory: the UUCP lock for "
                                              f"{pty.slaveName!r} cannot be made (set lock-dir, or lock = false)"]})
        self.assertEqual(list(service.lines), ["a"])
        self.assertIs(service.lines["a"], line)
        os.makedirs(missing)
        result = await service.reload(self.config(link, tty))
        self.assertEqual(result, {"added": ["b"], "changed": [], "removed": []})

    async def test_unixSocketInAMissingDirectory(self) -> None:
        """A unix listener in a directory that is not there: the start and a reload say so, naming the directory."""
        from serialgw.app.binding import StartupError

        link = os.path.abspath(self.mktemp())
        missing = os.path.join(os.path.abspath(self.mktemp()), "run")
        service = GatewayService(self.config(link, f'[lines.b]\ndevice = "pty:"\nlisten = "unix:{missing}/b.sock"\n'))
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(e), f"line 'b': cannot make unix socket '{missing}/b.sock': directory {missing!r} does "
                                 "not exist")
        service = startGateway(self, *self.config(link))
        result = await service.reload(self.config(link, f'[lines.b]\ndevice = "pty:"\nlisten = "unix:{missing}/b.sock"\n'))
        self.assertEqual(result, {"refused": [str(e)]})
        self.assertEqual(list(service.lines), ["a"])

    async def test_fileListenerOnADirectory(self) -> None:
        """A reload adding a file: listener whose path is a directory is refused whole (it ran on without the listener)."""
        link = os.path.abspath(self.mktemp())
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        service = startGateway(self, *self.config(link))
        before = service.configs[0]
        result = await service.reload(loadConfig(writeTemp(self, f'[lines.a]\ndevice = "pty:{link}"\nlisten = '
                                                                 f'["raw+tcp:0:interface=127.0.0.1", "file:{directory}"]\n')))
        self.assertEqual(result, {"refused": [f"line 'a': cannot open listener 'file:{directory}': Is a directory"]})
        self.assertIs(service.configs[0], before)

    async def test_signatureKeepsListenersAndDialOuts(self) -> None:
        """
        A new signature is what clients connecting afterwards are told
        (RFC 2217 SIGNATURE); the line's listeners stay on their ports and
        its dial-out stays connected (both were closed and made anew: the
        dial-out's session cut, a port-0 listener on a new port).
        """
        from twisted.internet import protocol, reactor
        from twisted.internet.endpoints import TCP4ServerEndpoint

        from tests.realio import Collector

        dialed: list[Collector] = []

        def dialedIn() -> Collector:
            dialed.append(Collector())
            return dialed[-1]

        far = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(protocol.Factory.forProtocol(dialedIn))
        self.addCleanup(far.stopListening)
        link = os.path.abspath(self.mktemp())
        listen = f'listen = ["telnet+tcp:0:interface=127.0.0.1", "tcp:127.0.0.1:{far.getHost().port}"]\n'
        config = f'[lines.a]\ndevice = "pty:{link}"\n{listen}'
        service = startGateway(self, *loadConfig(writeTemp(self, config)))
        device = TtyEnd(link)
        self.addCleanup(device.close)
        port = listenerPort(service)
        await until(self, lambda: dialed and service.lines["a"].clients, "the dial-out to be connected and line a's client there")
        result = await service.reload(loadConfig(writeTemp(self, config + 'signature = "rack 4"\n')))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(listenerPort(service), port)
        device.write(b"after")
        await dialed[0].received.contains(b"after")
        self.assertEqual(len(dialed), 1)
        client = await connect(port)
        # WILL COM-PORT-OPTION, then SIGNATURE with no text: what is yours?
        client.transport.write(b"\xff\xfb\x2c\xff\xfa\x2c\x00\xff\xf0")  # type: ignore[union-attr]
        await client.received.contains(b"\xff\xfa\x2c\x64rack 4\xff\xf0")
        await closeClients(client)
        dialed[0].transport.loseConnection()  # type: ignore[union-attr]

    async def test_roAndAllowTakenAwayApplyToConnectedClients(self) -> None:
        """
        A reload adding ro to a listener makes its connected writer read-only
        (told; its typing no longer reaches the device); one narrowing allow=
        to addresses the client's is not in disconnects it, told why.
        """
        link = os.path.abspath(self.mktemp())
        listen = "telnet,no-rfc2217,notices{}+tcp:0:interface=127.0.0.1"
        config = f'[lines.a]\ndevice = "pty:{link}"\nlisten = "{{}}"\n'
        service = startGateway(self, *loadConfig(writeTemp(self, config.format(listen.format("")))))
        far = TtyEnd(link)
        self.addCleanup(far.close)
        client = await connect(listenerPort(service))
        client.transport.write(b"one")  # type: ignore[union-attr]
        await far.received.contains(b"one")
        result = await service.reload(loadConfig(writeTemp(self, config.format(listen.format(",ro")))))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await client.received.contains(b"[serialgw: you are read-only now: a reload made a's listener "
                                       b"'telnet,no-rfc2217,notices,ro+tcp:0:interface=127.0.0.1' read-only]\r\n")
        client.transport.write(b"two")  # type: ignore[union-attr]
        await client.received.contains(b"[serialgw: read-only: what you type is not sent to a]\r\n")
        far.write(b"three")
        await client.received.contains(b"three")
        self.assertEqual(far.received.data, b"one")
        result = await service.reload(loadConfig(writeTemp(self, config.format(listen.format(",ro,allow=10.0.0.0/8")))))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await client.closed
        self.assertIn(b"[serialgw: your address is no longer allowed on a (a reload changed "
                      b"'telnet,no-rfc2217,notices,ro,allow=10.0.0.0/8+tcp:0:interface=127.0.0.1'): disconnected]\r\n",
                      client.received.data)
        self.assertEqual(service.lines["a"].clients, [])
