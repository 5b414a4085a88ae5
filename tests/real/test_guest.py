"""
Integration tests against a real Linux kernel: a QEMU guest whose busybox
shell is on its first serial port (see tests/guest.py; build the image with
C{bash tests/guest/build.sh}).  Skipped when QEMU or the image is missing.
"""

from __future__ import annotations

import os
import re
import sys
import tty
from typing import Any

from twisted.internet import fdesc, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IReadDescriptor
from twisted.trial import unittest
from zope.interface import implementer

from tests import guest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN = os.path.join(REPO, "twisted", "plugins", "serialgw_plugin.py")
# `python -m twisted.scripts.twistd` would exit 0 doing nothing: the module has
# no __main__ guard.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
LISTENER = re.compile(rb"telnet listener ready on 127\.0\.0\.1:(\d+)")
ANSWER = re.compile(rb"echo \$\(\(6\*7\)\)\r\n42\r\n")

BOOT = 90.0  # seconds for the guest to show a prompt (TCG: ~3-5 s here)
STEP = 30.0  # seconds for any other single step


@implementer(IReadDescriptor)
class PtsConsole:
    """
    The test's own end of QEMU's pty, opened raw, read by the reactor.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        fdesc.setNonBlocking(self.fd)
        self.output = guest.Output(path)
        reactor.addReader(self)  # type: ignore[attr-defined,arg-type]

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return "pts"

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.output.end(str(e))
            reactor.removeReader(self)  # type: ignore[attr-defined,arg-type]
            return
        self.output.add(data)

    def connectionLost(self, reason: Any) -> None:
        pass

    def send(self, data: bytes) -> None:
        # A few bytes into a pty with room: written whole.
        os.write(self.fd, data)

    def close(self) -> None:
        reactor.removeReader(self)  # type: ignore[attr-defined,arg-type]
        os.close(self.fd)


class GuestConsoleTests(unittest.TestCase):
    """
    A real kernel's serial console, first directly and then through the
    gateway.
    """

    timeout = 120

    def setUp(self) -> None:
        guest.guestImage()  # SkipTest if QEMU or the image is missing

    async def test_shellOnQemuPty(self) -> None:
        """The guest's shell answers on QEMU's pty with no gateway between (fixture check)."""
        _, pts = await guest.bootOnPty(self, STEP)
        console = PtsConsole(pts)
        self.addCleanup(console.close)
        await guest.pokeUntil(console.send, console.output, guest.PROMPT, BOOT)
        console.send(b"echo $((6*7))\r")
        await console.output.expect(ANSWER, STEP)

    async def test_shellThroughGateway(self) -> None:
        """A telnet client of the gateway on QEMU's pty runs a command in the guest's shell."""
        if not os.path.exists(PLUGIN):
            raise unittest.SkipTest(f"gateway plugin {PLUGIN} not there yet")
        _, pts = await guest.bootOnPty(self, STEP)
        env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
        argv = TWISTD + ["-n", "--pidfile=", "serialgw", "--device", pts, "--port", "tcp:0:interface=127.0.0.1"]
        gateway = guest.spawn(self, "gateway", argv, env=env, path=REPO)
        port = int((await gateway.output.expect(LISTENER, STEP)).group(1))

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        client: guest.TelnetClient = await endpoint.connect(  # type: ignore[assignment]
            protocol.Factory.forProtocol(guest.TelnetClient)
        )
        self.addCleanup(client.close)
        await guest.pokeUntil(client.send, client.output, guest.PROMPT, BOOT)
        client.send(b"echo $((6*7))\r")
        await client.output.expect(ANSWER, STEP)


def qemuOnTelnetPort(testCase: Any) -> int:
    """
    QEMU booting the guest, its ttyS0 a telnet server on a loopback socket
    this process bound, listened on and handed to it (its descriptor 3);
    the port. (A port found free, let go and given to QEMU to bind was
    anyone's meanwhile: another program's connect or bind could take it.)
    """
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        argv = guest.qemuCommand("chardev:console")
        argv[1:1] = ["-chardev", "socket,id=console,fd=3,server=on,wait=off,telnet=on"]
        guest.spawn(testCase, "qemu", argv, childFDs={0: "w", 1: "r", 2: "r", 3: held.fileno()})
        return int(held.getsockname()[1])


class SysrqTests(unittest.TestCase):
    """
    The user's headline: a VM console on QEMU's telnet chardev, served by
    the gateway, reached with Debian's telnet client; `send brk` then `h`
    reaches the guest kernel as magic SysRq.
    """

    timeout = 120

    def setUp(self) -> None:
        guest.guestImage()

    async def test_sysrqThroughTelnetDevice(self) -> None:
        """telnet -> gateway -> QEMU telnet chardev: a command answers, then send brk + h prints sysrq: HELP."""
        import shutil

        telnet = shutil.which("telnet")
        if telnet is None:
            raise unittest.SkipTest("Debian's telnet client is not installed (apt-get install telnet)")
        qport = qemuOnTelnetPort(self)
        env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
        argv = TWISTD + ["-n", "--pidfile=", "serialgw", "--device", f"telnet:127.0.0.1:{qport}",
                         "--port", "tcp:0:interface=127.0.0.1"]
        gateway = guest.spawn(self, "gateway", argv, env=env, path=REPO)
        port = int((await gateway.output.expect(LISTENER, STEP)).group(1))
        await gateway.output.expect(re.compile(rb"telnet:127\.0\.0\.1:\d+: connected"), BOOT)

        client = guest.spawn(self, "telnet", [telnet, "127.0.0.1", str(port)], usePTY=True, env=dict(os.environ))
        await client.output.expect(b"Escape character is", STEP)

        def type_(data: bytes) -> None:
            client.transport.write(data)  # type: ignore[union-attr]

        await guest.pokeUntil(type_, client.output, guest.PROMPT, BOOT)
        type_(b"echo $((6*7))\r")
        await client.output.expect(b"\r\n42\r\n", STEP)
        type_(b"\x1d")
        await client.output.expect(b"telnet> ", STEP)
        type_(b"send brk\r")
        type_(b"h")
        await client.output.expect(b"sysrq: HELP", STEP)

    async def test_sysrqThroughSSH(self) -> None:
        """ssh -tt (OpenSSH) -> gateway --ssh -> QEMU telnet chardev: a command answers, then ~B + h prints sysrq: HELP."""
        import shutil

        ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
        if ssh is None or keygen is None:
            raise unittest.SkipTest("Debian's OpenSSH client is not installed (apt-get install openssh-client)")
        keys = os.path.abspath(self.mktemp())
        os.mkdir(keys)
        made = guest.spawn(self, "ssh-keygen", [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ops1",
                                                "-f", os.path.join(keys, "ops1")])
        await made.whenEnded()
        qport = qemuOnTelnetPort(self)
        env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
        argv = TWISTD + ["-n", "--pidfile=", "serialgw", "--device", f"telnet:127.0.0.1:{qport}", "--name", "vm",
                         "--port", "tcp:0:interface=127.0.0.1", "--ssh", "tcp:0:interface=127.0.0.1",
                         "--ssh-host-key", os.path.join(keys, "host_key"),
                         "--authorized-keys", os.path.join(keys, "ops1.pub")]
        gateway = guest.spawn(self, "gateway", argv, env=env, path=REPO)
        port = int((await gateway.output.expect(re.compile(rb"ssh listener ready on 127\.0\.0\.1:(\d+)"), STEP)).group(1))
        await gateway.output.expect(re.compile(rb"telnet:127\.0\.0\.1:\d+: connected"), BOOT)

        client = guest.spawn(self, "ssh", [ssh, "-tt", "-F", "/dev/null", "-i", os.path.join(keys, "ops1"),
                                           "-p", str(port), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                           "-o", f"UserKnownHostsFile=\"{os.path.join(keys, 'known_hosts')}\"",
                                           "-o", "StrictHostKeyChecking=accept-new", "vm@127.0.0.1"],
                             usePTY=True, env=dict(os.environ))

        def type_(data: bytes) -> None:
            client.transport.write(data)  # type: ignore[union-attr]

        await guest.pokeUntil(type_, client.output, guest.PROMPT, BOOT)
        type_(b"echo $((6*7))\r")
        await client.output.expect(b"\r\n42\r\n", STEP)
        # ~ is ssh's escape at the start of a line (after the Enter above).
        type_(b"~B")
        type_(b"h")
        await client.output.expect(b"sysrq: HELP", STEP)
