"""
How an SSH session ends: the person leaving (escape d) exits 0; the
gateway ending it (a reload taking away the person's right, key, address
or line; idle) exits 1 and says why on the session's standard error, as a
refused session does, whether or not the line's notices are on.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients.ssh import GatewaySSHFactory
from serialgw.clients.sshauth import KeyRing
from serialgw.clients.sshsession import SSHClient
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import Rights, SSHSpec, UserSpec
from tests.clients.test_ssh import Harness, newKey, publicLine, sent
from tests.clients.test_sshrights import LISTEN, loggedIn
from tests.realio import Processes, need, ptyLine, startedPty, startGateway

EXIT_0 = [(b"exit-status", struct.pack(">L", 0), False)]
EXIT_1 = [(b"exit-status", struct.pack(">L", 1), False)]


def ended(conn: Any, channel: SSHClient) -> tuple[Any, Any]:
    """The exit status request sent on C{channel} and what went to its standard error."""
    return conn.requests.get(channel), conn.extData.get(channel)


class GatewayEndsTests(SynchronousTestCase):
    def test_leavingExitsZero(self) -> None:
        """The person's own escape d: exit status 0, nothing on standard error."""
        h = Harness("escape=^]+tcp:0")
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        channel.dataReceived(b"\x1dd")
        self.assertEqual(ended(conn, channel), (EXIT_0, None))

    def test_rightTakenAway(self) -> None:
        """A reload that leaves the person in neither list: exit status 1, why on standard error (a pty's CR LF); exit 0 made a script think the person had left."""
        h = Harness()
        channel, conn = h.channel(user="ops3")
        channel.requestReceived(b"pty-req", b"")
        channel.requestReceived(b"shell", b"")
        h.lines["con1"].applyRights(Rights(write=("ops1",)))
        self.assertEqual(ended(conn, channel), (EXIT_1, [(1, b"serialgw: ops3 may no longer use con1\r\n")]))

    def test_saidWithNoticesOff(self) -> None:
        """With the line's notices off nothing reached the person (no escape menu): standard error says why, plain LF without a pty."""
        h = Harness()
        h.lines["con1"].notices = False
        channel, conn = h.channel(user="ops3")
        channel.requestReceived(b"shell", b"")
        h.lines["con1"].applyRights(Rights(write=("ops1",)))
        self.assertEqual(sent(conn, channel), b"")
        self.assertEqual(ended(conn, channel), (EXIT_1, [(1, b"serialgw: ops3 may no longer use con1\n")]))

    def test_keyTakenAway(self) -> None:
        """A reload that takes the person's key away: exit status 1, why on standard error."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        person, conn = loggedIn(factory, "ops1", newKey(), line="con1")
        factory.setUsers(())
        assert person.session is not None
        self.assertEqual(ended(conn, person.session), (EXIT_1, [(1, b"serialgw: ops1: your key was removed\n")]))

    def test_addressNoLongerAllowed(self) -> None:
        """A reload whose allow= no longer admits the address: exit status 1, why on standard error."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        person, conn = loggedIn(factory, "ops1", newKey(), line="con1")
        factory.setListener(parseSSHListener("allow=10.0.0.0/8+tcp:0"))
        assert person.session is not None
        self.assertEqual(ended(conn, person.session), (EXIT_1, [
            (1, b"serialgw: your address is no longer allowed over SSH (a reload changed [ssh] listen): disconnected\n")]))

    def test_idle(self) -> None:
        """idle= ends a quiet session: exit status 1, why on standard error."""
        h = Harness("idle=30+tcp:0")
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        h.clock.advance(30)
        self.assertEqual(ended(conn, channel), (EXIT_1, [(1, b"serialgw: idle for 30 s: disconnected\n")]))


class LineRemovedTests(TestCase):
    def test_lineRemoved(self) -> None:
        """The session's line removed by a reload: exit status 1, why on standard error."""
        pty = startedPty(self)
        key = newKey()
        spec = SSHSpec(parseSSHListener(LISTEN), self.mktemp(), (UserSpec("ops1", (publicLine(key),)),))
        service = startGateway(self, ptyLine(pty), ssh=spec)
        person, conn = loggedIn(service.sshFactory, "ops1", key)
        service.closeLine("t")
        assert person.session is not None
        self.assertEqual(ended(conn, person.session),
                         (EXIT_1, [(1, b"serialgw: this line was removed from the configuration\n")]))
        person.session.closed()  # (the client closes its channel: no cut left to wait for)


class OpenSSHEndsTests(TestCase):
    """Debian's OpenSSH client against a gateway on 127.0.0.1 port 0 (a pty its device)."""

    timeout = 60

    async def test_rightTakenAwayExitsOne(self) -> None:
        """ssh -T on a line whose right a reload takes away exits 1 and prints why on its standard error."""
        ssh, keygen = need("ssh"), need("ssh-keygen")
        processes = Processes()
        self.addCleanup(processes.stop)
        folder = os.path.abspath(self.mktemp())
        os.mkdir(folder)
        keyPath = os.path.join(folder, "ops1")
        made = processes.spawn([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ops1", "-f", keyPath])
        self.assertEqual(await made.ended, 0, made.output.data)
        with open(keyPath + ".pub") as f:
            users = (UserSpec("ops1", (f.read().strip(),)),)
        pty = startedPty(self)
        spec = SSHSpec(parseSSHListener(LISTEN), os.path.join(folder, "host_key"), users)
        service = startGateway(self, attrs.evolve(ptyLine(pty), rights=Rights(write=("ops1",))), ssh=spec)
        client = processes.spawn([
            ssh, "-T", "-F", "/dev/null", "-i", keyPath, "-p", str(service.sshPort.getHost().port),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile=\"{folder}/known_hosts\"", "ops1@127.0.0.1", "t"])
        # Its typing reaches the device: it is on the line.
        client.write(b"typed")
        await pty.received.contains(b"typed")
        line = service.lines["t"]
        line.applyRights(Rights(write=("ops2",)))
        self.assertEqual(await client.ended, 1, client.output.data)
        self.assertIn(b"serialgw: ops1 may no longer use t\n", client.output.data)
