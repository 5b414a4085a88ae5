"""
A stateful hypothesis test against the real service on loopback: a line on
a pty, raw and telnet listeners (writers and read-only, RFC 2217 and the
escape menu), clients that connect, send data, telnet commands, RFC 2217
requests and escape commands, stop reading, and leave, while the device
talks.  After every step:

  - the device has received exactly the writers' data, in order (checked
    whenever a writer's data is awaited, and at the end with a sentinel);
  - no client holds more than its bound: its socket's send buffer in the
    gateway at most C{outbuf} plus a device read and a few replies, what
    its guard holds at most C{outbuf};
  - nobody read-only changes anything: the line's speed is the one the
    writers (or the restore when the last writing RFC 2217 client leaves)
    set, and line-error watching (PARMRK) is on only if a writer asked.

The reactor is the real one, turned by hand (C{reactor.iterate}) while a
step waits for the bytes it expects, each wait bounded.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any, Callable, Optional, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.service import GatewayService
from serialgw.clients.telnet import AS_TYPED
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.devices.ports import openPort
from serialgw.line.role import Role
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import AYT, BRK, IAC, IP, NOP, WILL
from tests.realio import PtyPair, testLockDir
from tests.telnetpeer import sb

STEPS: dict[str, int] = {}
OUTBUF = 65536
AYT_ANSWER = b"\r\n[serialgw: yes]\r\n"
LISTENERS = {
    # kind: (listener, writes, telnet, RFC 2217, escape menu)
    "raw": ("raw,outbuf=65536+tcp:0:interface=127.0.0.1", True, False, False, False),
    "raw-ro": ("raw,ro,outbuf=65536+tcp:0:interface=127.0.0.1", False, False, False, False),
    "rfc2217": ("telnet,outbuf=65536+tcp:0:interface=127.0.0.1", True, True, True, False),
    "rfc2217-ro": ("telnet,ro,outbuf=65536+tcp:0:interface=127.0.0.1", False, True, True, False),
    "menu": ("telnet,escape=^],outbuf=65536+tcp:0:interface=127.0.0.1", True, True, False, True),
}
BAUDS = (9600, 19200, 115200)


def iterateUntil(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """
    Turn the reactor until C{condition} holds; fail naming C{what} after
    C{seconds}: long, for a loaded machine (a step waited 2.4 s at load 20,
    the CI runs at 30); a step that never ends still fails, later.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            # Said here too: Hypothesis, replaying a program whose step
            # failed only now and then, reports 'Inconsistent data
            # generation' instead of this error.
            sys.stderr.write(f"\ntest_statemachine: timed out waiting for {what}\n")
            raise AssertionError(f"timed out waiting for {what}")
        reactor.iterate(0.001)  # type: ignore[attr-defined]


class Client:
    """One test client: a non-blocking socket to one listener, and what the model says of it."""

    def __init__(self, kind: str, port: int, number: int, bindTo: Optional[tuple[str, int]] = None) -> None:
        self.kind = kind
        self.name = f"{kind}#{number}"
        listener, self.writes, self.telnet, self.rfc2217, self.menu = LISTENERS[kind]
        # A small receive buffer (a slow reader soon has a full kernel queue),
        # set before the connection is made: the window it offers is the
        # one it can keep.  Shrunk after, it had offered more (a window
        # scale chosen for the default buffer): data it had said it could
        # take was dropped (TcpExt RcvPruned), and resent after the
        # retransmission timeout, doubled each time (0.2, 0.4, ... 6.4 s):
        # a step waited seconds for bytes, past its limit now and then.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        if bindTo is not None:  # (test_sameLocalPortTwoListeners: one port for two, as the kernel may choose)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(bindTo)
        self.sock.connect(("127.0.0.1", port))
        self.port = port
        self.sock.setblocking(False)
        self.reading = True
        self.received = bytearray()
        self.pending = b""
        self.local = self.sock.getsockname()
        # AYTs sent, and answers found in what was received (up to C{scanned}).
        self.asked = 0
        self.answered = 0
        self.scanned = 0

    def __repr__(self) -> str:
        return self.name

    def send(self, data: bytes) -> None:
        self.pending += data
        self.flush()

    def flush(self) -> None:
        while self.pending:
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                return
            self.pending = self.pending[n:]

    def ask(self) -> None:
        """Send an AYT: answered once everything sent before it has been handled."""
        self.asked += 1
        self.send(bytes([IAC, AYT]))

    def allAnswered(self) -> bool:
        """
        Every AYT sent has been answered.  Counted, not searched for after a
        mark: two AYTs sent back to back may be answered in two writes (the
        second one held by Nagle until the first is acknowledged), and the
        first answer must not pass for the second.
        """
        while True:
            found = self.received.find(AYT_ANSWER, self.scanned)
            if found < 0:
                self.scanned = max(self.scanned, len(self.received) - len(AYT_ANSWER) + 1)
                return self.answered >= self.asked
            self.answered += 1
            self.scanned = found + len(AYT_ANSWER)

    def drain(self) -> None:
        if not self.reading:
            return
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            self.received += data

    def close(self) -> None:
        self.sock.close()


class GatewayMachine(RuleBasedStateMachine):
    clients = Bundle("clients")

    # (None, not openPort, as the default: under derandomize Hypothesis'
    # seed is a digest of this class's source and signature, and a
    # function's repr in it holds its address, another each process: the
    # programs were another set every run, now and then one that never sent.)
    def __init__(self, opener: Optional[Callable[..., Any]] = None) -> None:
        super().__init__()
        self.pty = PtyPair()
        self.pty.startReading()
        config = LineConfig("t", DeviceSpec("tty", self.pty.slaveName), settings=SerialSettings(9600),
                            listeners=tuple(parseListener(spec) for spec, *_ in LISTENERS.values()), maxClients=0,
                            lockDir=testLockDir())
        # waitForDevices: a first open that has not returned when the start
        # stops waiting for it (5 s: a loaded machine) starts the line down,
        # up when it returns (without, the start failed: StartupError in
        # the constructor, before Hypothesis' first draw, which it reported
        # as 'Inconsistent data generation'); typed to once up.
        self.service = GatewayService([config], waitForDevices=True, openPort=opener or openPort)
        self.service.startService()
        self.line = self.service.lines["t"]
        iterateUntil(lambda: bool(self.line.up), "the device to be up")
        self.ports = {kind: port.getHost().port for kind, (_, port) in zip(LISTENERS, self.service.ports, strict=True)}
        self.expected = bytearray()
        self.baud = 9600
        self.watching = False
        self.open: list[Client] = []
        self.count = 0
        # Where new clients bind (None: the kernel chooses).
        self.bindTo: Optional[tuple[str, int]] = None
        # Writing clients that negotiated RFC 2217 (the restore waits for the last).
        self.controllers: set[Client] = set()

    # Helpers

    def server(self, client: Client) -> Any:
        """
        The gateway's side of C{client}, found by the client's address and
        the listener's port.  The address alone is not one client's: two
        connections to different listeners may have the same local port
        (Linux picks a connect's port per destination), and one found
        another's side (a connect seen attached before it was, a
        disconnect waiting for ever for a side that was the other's).
        """
        for c in self.line.clients:
            transport = getattr(c, "transport", None)
            if transport is not None and hasattr(transport, "getPeer"):
                peer, host = transport.getPeer(), transport.getHost()
                if (getattr(peer, "host", None), getattr(peer, "port", None)) == client.local and \
                        getattr(host, "port", None) == client.port:
                    return c
        return None

    def turn(self, condition: Callable[[], bool], what: str) -> None:
        def check() -> bool:
            for c in self.open:
                c.flush()
                c.drain()
            return condition()

        iterateUntil(check, what)

    def deviceHasAll(self) -> None:
        self.turn(lambda: len(self.pty.received.data) >= len(self.expected), f"the device to get {bytes(self.expected[-40:])!r}")
        assert self.pty.received.data == bytes(self.expected), (
            f"device got {self.pty.received.data[-200:]!r}, expected {bytes(self.expected[-200:])!r}")

    def barrier(self, client: Client) -> None:
        """Everything C{client} sent so far has been handled: an AYT after it is answered, and every AYT before it."""
        client.ask()
        self.turn(client.allAnswered, f"{client} to be answered")

    # Rules

    @precondition(lambda self: len(self.open) < 6)
    @rule(target=clients, kind=st.sampled_from(sorted(LISTENERS)))
    def connect(self, kind: str) -> Client:
        STEPS["connect"] = STEPS.get("connect", 0) + 1
        self.count += 1
        client = Client(kind, self.ports[kind], self.count, self.bindTo)
        self.open.append(client)
        self.turn(lambda: self.server(client) is not None, f"{client} to attach")
        if client.rfc2217:
            client.send(bytes([IAC, WILL, CPO]))
            self.barrier(client)
            if client.writes:
                self.controllers.add(client)
        return client

    @rule(client=clients, data=st.binary(min_size=1, max_size=3000))
    def sendData(self, client: Client, data: bytes) -> None:
        STEPS["sendData"] = STEPS.get("sendData", 0) + 1
        if client not in self.open:
            return
        if client.telnet:
            # No CR (NVT CR NUL without BINARY), no escape key (the menu's); IAC doubled.
            data = data.replace(b"\r", b"").replace(b"\x1d", b"")
            if not data:
                return
            wire = data.replace(b"\xff", b"\xff\xff")
        else:
            wire = data
        server = self.server(client)
        writes = server is not None and server.role is Role.WRITER
        if writes and not client.reading:
            return  # its input may be held while its output is full: no exact expectation
        client.send(wire)
        if writes:
            self.expected += data
            self.deviceHasAll()
        elif client.telnet and client.reading:
            self.barrier(client)

    @rule(client=clients, command=st.sampled_from([NOP, AYT, BRK, 242, IP, 245, 247, 248, 249, 236, 237, 238, 239]))
    def telnetCommand(self, client: Client, command: int) -> None:
        if client not in self.open or not client.telnet:
            return
        server = self.server(client)
        writes = server is not None and server.role is Role.WRITER
        if command in AS_TYPED and writes:
            # Interrupt Process reaches the device as ^C, as typed; RFC 1184's EOF, SUSP, ABORT as ^D, ^Z, ^\\.
            if not client.reading:
                return  # its input may be held while its output is full: no exact expectation
            client.send(bytes([IAC, command]))
            self.expected += AS_TYPED[command]
            self.deviceHasAll()
            return
        if command == AYT:
            client.ask()
        else:
            client.send(bytes([IAC, command]))
        if client.reading:
            self.barrier(client)

    @rule(client=clients, baud=st.sampled_from(BAUDS))
    def setBaud(self, client: Client, baud: int) -> None:
        if client not in self.open or not client.rfc2217:
            return
        if client.writes and not client.reading:
            return  # may be held unread: no exact expectation
        client.send(sb(1, *baud.to_bytes(4, "big")))
        if client.writes:
            self.baud = baud
        if client.reading:
            self.barrier(client)

    # Requests that change the port (a writer's) or must not (anyone else's).
    # BREAK-ON holds the line (data waits) until BREAK-OFF: sent together here.
    @rule(client=clients, request=st.sampled_from([sb(10, 0x1C), sb(12, 3), sb(5, 9), sb(5, 5) + sb(5, 6),
                                                   sb(5, 3) + sb(5, 1)]))
    def comPortRequest(self, client: Client, request: bytes) -> None:
        self.anyRequest(client, request)

    # Queries, flow control, nonsense.
    @rule(client=clients, request=st.sampled_from([sb(12, 1), sb(5, 8), sb(5, 6), sb(5, 4), sb(99, 1), sb(), sb(1, 0, 1),
                                                   sb(6), sb(8), sb(9), sb(0, *b"pyserial"), sb(12, 7), sb(5, 1, 2)]))
    def otherRequest(self, client: Client, request: bytes) -> None:
        self.anyRequest(client, request)

    def anyRequest(self, client: Client, request: bytes) -> None:
        if client not in self.open or not client.rfc2217:
            return
        if client.writes:
            if not client.reading:
                return
            if request == sb(10, 0x1C):
                self.watching = True
        client.send(request)
        if client.reading:
            self.barrier(client)

    @rule(client=clients, command=st.sampled_from([b"t", b"o", b"w", b"s", b"?", b"r", b"\x1d"]))
    def escape(self, client: Client, command: bytes) -> None:
        if client not in self.open or not client.menu or not client.reading:
            return
        server = self.server(client)
        client.send(b"\x1d" + command)
        if command == b"\x1d" and server.role is Role.WRITER:
            self.expected += b"\x1d"
            self.deviceHasAll()
        else:
            self.barrier(client)

    @rule(client=clients)
    def stopReading(self, client: Client) -> None:
        client.reading = False

    @rule(size=st.integers(min_value=1, max_value=200_000))
    def deviceTalks(self, size: int) -> None:
        # Written as the pty takes it; the gateway reads it and hands it to every client.
        pending = [b"x" * (size - 1) + b"\n"]
        before = self.line.bytesFromDevice

        def written() -> bool:
            if pending[0]:
                try:
                    n = os.write(self.pty.master, pending[0])
                except BlockingIOError:
                    n = 0
                pending[0] = pending[0][n:]
            return not pending[0] and self.line.bytesFromDevice >= before + size

        self.turn(written, "the device's output to be read")

    @rule(client=consumes(clients))
    def disconnect(self, client: Client) -> None:
        if client not in self.open:
            return
        self.open.remove(client)
        client.close()
        self.turn(lambda: self.server(client) is None, f"{client} to detach")
        if client in self.controllers:
            self.controllers.discard(client)
            if not self.controllers and not any(c.rfc2217 and c.writes for c in self.open):
                self.baud = 9600  # the last writing RFC 2217 client gone: the configured speed again
                self.watching = False

    # Invariants

    @invariant()
    def readOnlyChangesNothing(self) -> None:
        assert self.line.settings.baudrate == self.baud, (self.line.settings.baudrate, self.baud)
        # Line errors watched (PARMRK) only if a writer asked since the last restore.
        assert not self.line.device.lineErrorsWatched or self.watching  # type: ignore[attr-defined]

    @invariant()
    def memoryBounded(self) -> None:
        for client in self.line.clients:
            transport = getattr(client, "transport", None)
            if transport is None or not hasattr(transport, "dataBuffer"):
                continue
            queued = len(transport.dataBuffer) + transport._tempDataLen
            assert queued <= OUTBUF + 65536 + 4096, (client.peer, queued)
            guard = client.guard
            if guard is not None:
                assert guard.heldBytes <= OUTBUF, (client.peer, guard.heldBytes)

    def teardown(self) -> None:
        try:
            # A last writer's sentinel: nothing else reached the device.
            self.count += 1
            final = Client("raw", self.ports["raw"], self.count)
            self.open.append(final)
            self.turn(lambda: self.server(final) is not None, "the last writer to attach")
            final.send(b"<end>")
            self.expected += b"<end>"
            self.deviceHasAll()
        finally:
            for client in self.open:
                client.close()
            done: list[Any] = []
            self.service.stopService().addBoth(done.append)
            iterateUntil(lambda: bool(done) and not self.line.clients, "the gateway to stop")
            self.pty.close()


class StateMachineTests(SynchronousTestCase):
    def test_hostileAndCarelessClients(self) -> None:
        """Clients doing anything in any order: the device gets exactly the writers' data, memory stays bounded, read-only changes nothing."""
        STEPS.clear()
        # derandomize: a fixed seed, no example database: the same programs
        # every run of this module's code with one Hypothesis release (the
        # seed is a digest of GatewayMachine's source and signature:
        # test_sameProgramsEveryRun).  Before, a default argument's address
        # in that signature made them another set each run: sendData 86, 27
        # and 5 times in three runs, once never (review29, s29).  Explore
        # with derandomize=False and more examples when the gateway or
        # the model changes: new programs found the model missing IAC IP
        # reaching the device.  A step that fails only now and then shows
        # as Hypothesis' 'Inconsistent data generation' (the program
        # replayed does not fail there): see Client's receive buffer and
        # GatewayMachine.server.
        run_state_machine_as_test(GatewayMachine, settings=settings(
            max_examples=40, stateful_step_count=30, deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
        # It did run: clients came and sent.
        self.assertGreater(STEPS.get("connect", 0), 0)
        self.assertGreater(STEPS.get("sendData", 0), 0)

    def test_sameProgramsEveryRun(self) -> None:
        """GatewayMachine's signature, which Hypothesis' derandomized seed is a digest of, holds nothing that differs between runs (a default function's repr, 'at 0x7f...', did: another seed, other programs, each run)."""
        import inspect

        self.assertNotRegex(repr(inspect.signature(GatewayMachine)), r"0x[0-9a-f]+")

    def test_aytThenBaud(self) -> None:
        """A writer's AYT then SET-BAUDRATE: the step waits for both AYTs' answers, so the speed is checked once set."""
        # Hypothesis' shrunk failure: the second AYT (the barrier's) went out
        # only when the first was acknowledged, with its answer; the barrier
        # took the first answer for its own and the speed was checked before
        # the SET-BAUDRATE behind it was read (9600, expected 19200).
        machine = GatewayMachine()
        try:
            client = cast(Client, machine.connect("rfc2217"))  # a rule: typed as its results
            machine.telnetCommand(client, AYT)
            machine.setBaud(client, 19200)
            self.assertEqual(machine.line.settings.baudrate, 19200)
            self.assertEqual((client.asked, client.answered), (4, 4))  # connect, the AYT and its barrier, setBaud
        finally:
            machine.teardown()

    def test_firstOpenLate(self) -> None:
        """A first open of the device that has not returned when the start stops waiting: the machine starts, typed to once the device is up."""
        import threading

        from serialgw.devices import reopenpool

        self.patch(reopenpool, "START_WAIT", 0.0)
        returns = threading.Event()

        def late(*args: Any) -> Any:
            returns.wait(20)
            return openPort(*args)

        reactor.callLater(0, returns.set)  # type: ignore[attr-defined]
        machine = GatewayMachine(late)
        try:
            client = cast(Client, machine.connect("raw"))
            machine.sendData(client, b"typed")
        finally:
            machine.teardown()
        self.assertEqual(machine.pty.received.data, b"typed<end>")

    def test_sameLocalPortTwoListeners(self) -> None:
        """Two clients of different listeners with the same local port: each step finds each one's own side."""
        # Seen in random mode (.venv, run 58 of --until-failure): 'timed out
        # waiting for rfc2217#5 to detach', the raw-ro client connected
        # after it from the same port 127.0.0.1:37018 (to another listener)
        # attached by then and taken for it.
        machine = GatewayMachine()
        try:
            machine.bindTo = ("127.0.0.1", 0)  # (SO_REUSEADDR on both: bound, as the kernel shares a connect's port)
            first = cast(Client, machine.connect("rfc2217"))
            machine.bindTo = first.local
            second = cast(Client, machine.connect("raw-ro"))
            machine.bindTo = None
            self.assertEqual(second.local, first.local)
            self.assertEqual((machine.server(first).role, machine.server(second).role), (Role.WRITER, Role.READONLY))
            machine.disconnect(first)
            self.assertEqual(machine.server(second).role, Role.READONLY)
            machine.sendData(second, b"ignored")
        finally:
            machine.teardown()
        self.assertEqual(machine.pty.received.data, b"<end>")

    def test_interruptReachesDevice(self) -> None:
        """A writer's IAC IP reaches the device as ^C (Hypothesis' shrunk failure: the model expected nothing)."""
        machine = GatewayMachine()
        try:
            client = cast(Client, machine.connect("menu"))
            machine.telnetCommand(client, IP)
            self.assertEqual(machine.pty.received.data, b"\x03")
        finally:
            machine.teardown()
        self.assertEqual(machine.pty.received.data, b"\x03<end>")

    def tearDown(self) -> None:
        # Closed sockets' last events, and the gateway's stop, are done.
        for _ in range(20):
            reactor.iterate(0)  # type: ignore[attr-defined]

