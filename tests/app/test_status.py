"""
The status endpoint's Prometheus page (/metrics): read with prometheus_client's
own text parser; its counters move with traffic, clients and device faults.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody

from serialgw.app.service import GatewayService
from serialgw.app.status import metricsRegistry
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import Lines, RecordingDevice
from tests.realio import closeClients, connect, listenerPort, socketPath, startedPty, startGateway


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class CollectorTests(SynchronousTestCase):
    def test_countersMove(self) -> None:
        """Bytes both ways, refused bytes, clients by role and protocol, drops by policy (kept after the client leaves), device down/up."""
        line = Line("rack1", RecordingDevice(), clock=Clock())
        page = lambda: samples(generate_latest(metricsRegistry(Lines(line))).decode())  # noqa: E731
        rack = (("line", "rack1"),)
        before = page()
        self.assertEqual(before[("serialgw_device_read_bytes_total", rack)], 0)
        self.assertEqual(before[("serialgw_device_up", rack)], 1)
        self.assertNotIn(("serialgw_clients", rack + (("protocol", "telnet"), ("role", "writer"))), before)

        telnet = TelnetClient(line, listener=parseListener("telnet,outbuf=1024+4444"))
        telnet.makeConnection(StringTransport())
        watcher = RawClient(line, Role.READONLY, listener=parseListener("raw,ro,policy=disconnect+4445"))
        watcher.makeConnection(StringTransport())
        line.deviceDataReceived(b"x" * 10)
        telnet.dataReceived(b"hello")
        watcher.dataReceived(b"nope!!")
        assert telnet.guard is not None
        telnet.guard.pauseProducing()
        line.deviceDataReceived(b"a" * 1000 + b"b" * 1000 + b"c" * 24)
        telnet.guard.resumeProducing()  # the oldest 1000 bytes are dropped when it catches up
        now = page()
        self.assertEqual(now[("serialgw_device_read_bytes_total", rack)], 2034)
        self.assertEqual(now[("serialgw_device_written_bytes_total", rack)], 5)
        self.assertEqual(now[("serialgw_refused_bytes_total", rack)], 6)
        self.assertEqual(now[("serialgw_clients", rack + (("protocol", "telnet"), ("role", "writer")))], 1)
        self.assertEqual(now[("serialgw_clients", rack + (("protocol", "raw"), ("role", "read-only")))], 1)
        self.assertEqual(now[("serialgw_client_dropped_bytes_total", rack + (("policy", "drop"),))], 1000)
        self.assertEqual(now[("serialgw_client_dropped_bytes_total", rack + (("policy", "disconnect"),))], 0)

        telnet.transport.loseConnection()  # type: ignore[union-attr]
        telnet.connectionLost(Failure(ConnectionError()))
        line.deviceLost(Failure(OSError(5, "Input/output error")))
        down = page()
        self.assertEqual(down[("serialgw_client_dropped_bytes_total", rack + (("policy", "drop"),))], 1000)
        self.assertNotIn(("serialgw_clients", rack + (("protocol", "telnet"), ("role", "writer"))), down)
        self.assertEqual(down[("serialgw_device_reopens_total", rack)], 0)
        line.deviceUp()
        self.assertEqual(page()[("serialgw_device_reopens_total", rack)], 1)

    def test_suspendedDropsCounted(self) -> None:
        """Output dropped for an RFC 2217 client that suspended (FLOWCONTROL-SUSPEND) and never resumed: in its "dropped" and the policy="suspended" counter, kept after it leaves."""
        from serialgw.app.status import lineStatus
        from tests.telnetpeer import AGREE, sb

        line = Line("rack1", RecordingDevice(), clock=Clock())
        page = lambda: samples(generate_latest(metricsRegistry(Lines(line))).decode())  # noqa: E731
        key = ("serialgw_client_dropped_bytes_total", (("line", "rack1"), ("policy", "suspended")))
        client = TelnetClient(line, listener=parseListener("telnet,outbuf=4096+4444"), clock=Clock())
        client.makeConnection(StringTransport())
        client.dataReceived(AGREE + bytes([255, 251, 44]) + sb(8))
        line.deviceDataReceived(b"x" * 5000)
        self.assertEqual((lineStatus(line)["clients"][0]["dropped"], page()[key]), (904, 904))
        client.connectionLost(Failure(ConnectionError()))
        self.assertEqual(page()[key], 904)

    def test_netconsoleUnsentCounted(self) -> None:
        """A netconsole's output the kernel refused to send is in its "dropped" (bytes) and the policy="unsent" counter, kept after it goes; its datagram counts both ways are in its status (they were in no field)."""
        import errno

        from serialgw.app.status import lineStatus
        from serialgw.clients.netconsole import MAX_DATAGRAM, NetconsoleClient
        from serialgw.config.listenerspecs import UDPSpec

        line = Line("vm", RecordingDevice(), clock=Clock())
        page = lambda: samples(generate_latest(metricsRegistry(Lines(line))).decode())  # noqa: E731
        key = ("serialgw_client_dropped_bytes_total", (("line", "vm"), ("policy", "unsent")))
        client = NetconsoleClient(line, UDPSpec("127.0.0.1", 6666, "", 6665, ("127.0.0.0/8",)), reactor=Clock())
        client.transport = StringTransport()
        failing = [OSError(errno.ENETUNREACH, "Network is unreachable")]
        sent: list[bytes] = []

        def write(data: bytes, addr: Any = None) -> None:
            if failing:
                raise failing.pop()
            sent.append(data)

        client.transport.write = write  # type: ignore[method-assign]
        client.startProtocol()
        client.kernelDropped(7)
        line.deviceDataReceived(b"x" * MAX_DATAGRAM + b"y" * 100)
        self.assertEqual(sent, [b"y" * 100])
        status = lineStatus(line)["clients"][0]
        self.assertEqual((status["protocol"], status["dropped"], status["unsent_datagrams"],
                          status["kernel_dropped_datagrams"]), ("netconsole", MAX_DATAGRAM, 1, 7))
        self.assertEqual(page()[key], MAX_DATAGRAM)
        client.stopProtocol()
        self.assertEqual((line.clients, page()[key]), ([], MAX_DATAGRAM))

    def test_longUserCut(self) -> None:
        """A client's "user" (a CA's certificate CN, a peer's to choose) is cut at 64 characters on the status page, its length said; a short one is kept whole."""
        from serialgw.app.status import lineStatus

        line = Line("rack1", RecordingDevice(), clock=Clock())
        client = RawClient(line, Role.READONLY, listener=parseListener("raw,ro+4445"))
        client.makeConnection(StringTransport())
        client.user = "C" * 100000
        self.assertEqual(lineStatus(line)["clients"][0]["user"], "C" * 64 + "... (100000 characters)")
        client.user = "C" * 64
        self.assertEqual(lineStatus(line)["clients"][0]["user"], "C" * 64)

    def test_deviceUpFromDevice(self) -> None:
        """serialgw_device_up follows the device's own state, as the JSON page's "up" does."""
        device = RecordingDevice()
        device.up = False  # type: ignore[attr-defined]
        line = Line("vm", device, clock=Clock())
        text = generate_latest(metricsRegistry(Lines(line))).decode()
        self.assertEqual(samples(text)[("serialgw_device_up", (("line", "vm"),))], 0)


class EndpointTests(TestCase):
    timeout = 30

    async def get(self, service: GatewayService, path: str) -> tuple[Any, bytes]:
        url = f"http://127.0.0.1:{service.statusPort.getHost().port}{path}".encode()
        response = await Agent(reactor).request(b"GET", url)
        return response, await readBody(response)

    async def test_metricsPage(self) -> None:
        """GET /metrics: Prometheus text whose byte counters move with real traffic; process metrics included; / stays JSON."""
        pty = startedPty(self)
        # A lock directory of its own: in /var/lock, shared with every other run on the machine, a lock
        # outliving its pty for a moment (TtyPort.close closes the tty, then unlinks the lock) there
        # named this pty (its number reused at once) and the line started down ("/dev/pts/1 is locked
        # by process N"): what the test typed was dropped, and it waited 27 s for it.
        lockDir = os.path.abspath(self.mktemp())
        os.mkdir(lockDir)
        config = LineConfig("p1", DeviceSpec("tty", pty.slaveName), lockDir=lockDir,
                            listeners=(parseListener("raw+tcp:0:interface=127.0.0.1"),))
        service = startGateway(self, config, status="tcp:0:interface=127.0.0.1")
        response, body = await self.get(service, "/metrics")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        before = samples(body.decode())
        line = (("line", "p1"),)
        self.assertEqual(before[("serialgw_device_written_bytes_total", line)], 0)
        self.assertIn(("process_resident_memory_bytes", ()), before)

        client = await connect(listenerPort(service))
        client.transport.write(b"to device")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(9), b"to device")
        pty.write(b"from device!")
        await client.received.length(12)
        _, body = await self.get(service, "/metrics")
        after = samples(body.decode())
        self.assertEqual(after[("serialgw_device_written_bytes_total", line)], 9)
        self.assertEqual(after[("serialgw_device_read_bytes_total", line)], 12)
        self.assertEqual(after[("serialgw_clients", line + (("protocol", "raw"), ("role", "writer")))], 1)
        self.assertEqual(after[("serialgw_device_up", line)], 1)

        response, body = await self.get(service, "/")
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertIn(b'"bytes_to_device": 9', body)
        await closeClients(client)


class ListenersShownTests(TestCase):
    async def test_listenersOfALine(self) -> None:
        """Each line's listeners open now, as the status page shows them (ser2net's showport): as written, kind, protocol, and where one is bound (port 0's port: the one it got); a reload that closes one no longer shows it."""
        pty = startedPty(self)
        lockDir = os.path.abspath(self.mktemp())
        os.mkdir(lockDir)
        path = socketPath(self)
        tcp, unix = parseListener("raw+tcp:0:interface=127.0.0.1"), parseListener(f"telnet+unix:{path}")
        config = LineConfig("p1", DeviceSpec("tty", pty.slaveName), lockDir=lockDir, listeners=(tcp, unix))
        service = startGateway(self, config)
        port = listenerPort(service)
        self.assertEqual(service.listenersOf("p1"), [
            {"listener": "raw+tcp:0:interface=127.0.0.1", "kind": "listen", "protocol": "raw",
             "address": f"127.0.0.1:{port}"},
            {"listener": f"telnet+unix:{path}", "kind": "listen", "protocol": "telnet", "address": f"unix:{path}"},
        ])
        self.assertEqual(service.listenersOf("nosuchline"), [])
        await service.reload([attrs.evolve(config, listeners=(tcp,))])
        self.assertEqual([shown["listener"] for shown in service.listenersOf("p1")], ["raw+tcp:0:interface=127.0.0.1"])
