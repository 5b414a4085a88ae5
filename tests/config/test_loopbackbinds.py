"""
A listener bound to one loopback address (127.0.0.1, 127.0.0.2, ::1) is
reached by that address alone, where one bound to every address (0.0.0.0,
::) is reached by every address of this host's: Linux does not connect
127.0.0.2 nor Debian's 127.0.1.1 to a socket bound to 127.0.0.1.  The loop
check refused them as loops (a valid configuration refused: a remote
device at 127.0.0.2 beside a listener on 127.0.0.1, a host whose
/etc/hosts name is 127.0.1.1); it now says what the kernel does, which
the real-socket test below asks the kernel itself.
"""

from __future__ import annotations

import socket
from ipaddress import ip_network

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from serialgw.config import thishost
from serialgw.config.file import loadConfig
from serialgw.config.specs import ConfigError
from tests.realio import readable, writeTemp

LOOP = "what is written to it would come back to it for ever (a loop)"


def _loadsOrLoop(case: SynchronousTestCase, device: str, listen: str) -> bool:
    """Whether the loop check refuses line a's device C{device} beside its listener C{listen} (another error fails the test)."""
    path = writeTemp(case, f'[lines.a]\ndevice = "{device}"\nlisten = \'{listen}\'\n')
    try:
        loadConfig(path)
    except ConfigError as e:
        case.assertIn(LOOP, str(e))
        return True
    return False


class LoopbackBindTests(SynchronousTestCase):
    """The loop check's idea of which loopback listeners a device reaches."""

    def setUp(self) -> None:
        self.patch(thishost, "localNetworks", lambda: [ip_network("127.0.0.0/8"), ip_network("192.0.2.9/32"),
                                                    ip_network("::1/128")])
        self.patch(thishost, "HOSTS_FILE", writeTemp(self, "127.0.0.1 localhost\n127.0.1.1 gw1.example.org gw1\n"
                                                        "::1 ip6-localhost\n"))
        self.patch(thishost, "hostName", lambda: "gw1")

    def test_otherLoopbackAddressAllowed(self) -> None:
        """tcp:127.0.0.2 and Debian's 127.0.1.1 (by address or its /etc/hosts name) on a listener bound to 127.0.0.1 only: allowed (Linux refuses the connection: no loop)."""
        for device in ("tcp:127.0.0.2:4001", "telnet:127.0.1.1:4001", "telnet:gw1:4001", "telnet:GW1.example.org.:4001",
                       "tcp:[::ffff:127.0.0.2]:4001"):
            self.assertFalse(_loadsOrLoop(self, device, "tcp:4001:interface=127.0.0.1"), device)

    def test_otherLoopbackAddressOnEveryAddressRefused(self) -> None:
        """The same devices on a listener bound to every address (0.0.0.0, ::): refused, Linux connects them to it."""
        for listen in ("4001", "tcp6:4001"):
            for device in ("tcp:127.0.0.2:4001", "telnet:127.0.1.1:4001", "telnet:gw1:4001", "tcp:[::ffff:127.0.0.2]:4001"):
                self.assertTrue(_loadsOrLoop(self, device, listen), (device, listen))

    def test_listenerOnAnotherLoopbackAddress(self) -> None:
        """A listener bound to 127.0.0.2: reached by 127.0.0.2 (refused), not by localhost, 127.0.0.1 nor 0.0.0.0 (Linux connects that one to 127.0.0.1): allowed."""
        self.assertTrue(_loadsOrLoop(self, "tcp:127.0.0.2:4001", "tcp:4001:interface=127.0.0.2"))
        for device in ("telnet:localhost:4001", "tcp:127.0.0.1:4001", "tcp:0.0.0.0:4001", "tcp:127.1:4001"):
            self.assertFalse(_loadsOrLoop(self, device, "tcp:4001:interface=127.0.0.2"), device)

    def test_loopbackStillRefused(self) -> None:
        """What does reach a listener bound to 127.0.0.1 is still refused: localhost, 127.0.0.1 in any spelling, 0.0.0.0, ::ffff:127.0.0.1; on ::1, localhost, ::1 and ::."""
        for device in ("telnet:localhost:4001", "tcp:127.0.0.1:4001", "tcp:127.1:4001", "tcp:0x7f000001:4001",
                       "tcp:0.0.0.0:4001", "tcp:0:4001", "tcp:[::ffff:127.0.0.1]:4001"):
            self.assertTrue(_loadsOrLoop(self, device, "tcp:4001:interface=127.0.0.1"), device)
        for device in ("telnet:localhost:4001", "telnet:ip6-localhost:4001", "tcp:[::1]:4001", "tcp:[::]:4001"):
            self.assertTrue(_loadsOrLoop(self, device, r"tcp6:4001:interface=\:\:1"), device)
        self.assertFalse(_loadsOrLoop(self, "tcp:127.0.0.1:4001", r"tcp6:4001:interface=\:\:1"))


class KernelAgreesTests(SynchronousTestCase):
    """The loop check asked about real sockets: for each listener address and device address, it refuses exactly where the kernel connects the device to that listener."""

    def test_kernelAgrees(self) -> None:
        """Listeners bound to 127.0.0.1, 127.0.0.2, 0.0.0.0 and ::1 (port 0), devices at loopback's addresses: a loop said exactly where a connect reaches that very listener."""
        self.patch(thishost, "HOSTS_FILE", writeTemp(self, ""))
        self.patch(thishost, "hostName", lambda: "no-such-name.invalid")
        binds = [("127.0.0.1", socket.AF_INET), ("127.0.0.2", socket.AF_INET), ("0.0.0.0", socket.AF_INET),
                 ("::1", socket.AF_INET6)]
        devices = ["127.0.0.1", "127.0.0.2", "127.0.1.1", "127.255.255.254", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1",
                   "::ffff:127.0.0.2"]
        try:
            socket.socket(socket.AF_INET6).close()
        except OSError:
            # A kernel without IPv6 (ipv6.disable=1): no IPv6 socket can be
            # made, to listen or to dial; the IPv4 pairs are asked.
            binds = [(bound, family) for bound, family in binds if family != socket.AF_INET6]
            devices = [host for host in devices if ":" not in host]
        seen = []
        for bound, family in binds:
            listener = socket.socket(family)
            self.addCleanup(listener.close)
            try:
                listener.bind((bound, 0))
            except OSError as e:
                if bound == "::1":
                    continue  # (no IPv6 here: the rest is asked all the same)
                raise SkipTest(f"cannot bind {bound}: {e} (not Linux's loopback, 127.0.0.0/8 all local)") from None
            listener.listen(8)
            if bound == "0.0.0.0" and not self.reaches(listener, "127.0.0.2", listener.getsockname()[1]):
                raise SkipTest("127.0.0.2 does not reach a listener on 0.0.0.0 here: not Linux's loopback, whose "
                               "rules the loop check says")
            port = listener.getsockname()[1]
            listen = f"tcp:{port}:interface={bound}" if family == socket.AF_INET else rf"tcp6:{port}:interface=\:\:1"
            for host in devices:
                device = f"tcp:[{host}]:{port}" if ":" in host else f"tcp:{host}:{port}"
                seen.append((device, bound, _loadsOrLoop(self, device, listen), self.reaches(listener, host, port)))
        self.assertEqual([s[:3] for s in seen], [(s[0], s[1], s[3]) for s in seen])

    def reaches(self, listener: socket.socket, host: str, port: int) -> bool:
        """Whether a connect to C{host}:C{port} is accepted by C{listener} itself (not another program's socket on that port)."""
        client = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.addCleanup(client.close)
        try:
            client.connect((host, port))
        except OSError:
            return False
        # (Connected: by ours if it is in our queue.  A bound on the wait only, not a margin: ours is there at once.)
        if not readable(listener, 30):
            return False
        accepted, peer = listener.accept()
        accepted.close()
        return _plain(peer) == _plain(client.getsockname())


def _plain(address: tuple[str, int]) -> tuple[str, int]:
    """A socket's address and port, an IPv4-mapped IPv6 address as its IPv4 (an IPv6 client of an IPv4 listener)."""
    return address[0].removeprefix("::ffff:"), address[1]
