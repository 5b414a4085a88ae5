"""
A line whose remote device is one of this gateway's own listeners (its
own line's, or a line's whose device leads back to it): a byte typed on
it goes round for ever (seen: one byte typed on a unix: device that was
its own raw listener kept the gateway a third of a core busy, unseen by
anyone).  Refused when the configuration is read (start, reload, --check)
and with --device on the command line, as a pty: listener's loop is.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config.file import loadConfig
from serialgw.config.specs import ConfigError
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp

LOOP = "what is written to it would come back to it for ever (a loop)"


def loopbackOnly(case: SynchronousTestCase) -> None:
    """
    This host's addresses, as the loop check reads them, made loopback's
    alone: a test's "another host" (10.0.0.5) may be one of the machine's
    own (/proc/net/fib_trie's), where a line dialling it is its own listener.
    """
    from ipaddress import ip_network

    from serialgw.config import thishost

    case.patch(thishost, "localNetworks", lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")])


class RemoteLoopTests(ConfigFileCase):
    def loads(self, text: str) -> list[str]:
        return [line.name for line in loadConfig(writeTemp(self, text))]

    def test_ownTcpListener(self) -> None:
        """telnet:localhost:4001 on the line listening on 4001 (all interfaces): refused naming the listener."""
        self.assertEqual(self.refused('[lines.a]\ndevice = "telnet:localhost:4001"\nlisten = "4001"\n'),
                         f"FILE:2: [lines.a] device: 'telnet:localhost:4001' is its own listener '4001': {LOOP}")

    def test_ownUnixListener(self) -> None:
        """unix:PATH on the line's own raw+unix:PATH listener: refused."""
        self.assertEqual(self.refused('[lines.a]\ndevice = "unix:/run/x/a.sock"\nlisten = "raw+unix:/run/x/./a.sock"\n'),
                         f"FILE:2: [lines.a] device: 'unix:/run/x/a.sock' is its own listener 'raw+unix:/run/x/./a.sock': "
                         f"{LOOP}")

    def test_twoLinesRing(self) -> None:
        """Each line's device the other's listener (loopback, a listener on 127.0.0.1): refused naming the ring."""
        said = self.refused('[lines.a]\ndevice = "tcp:127.0.0.1:4002"\nlisten = "4001"\n'
                            '[lines.b]\ndevice = "rfc2217://127.0.0.1:4001"\nlisten = "tcp:4002:interface=127.0.0.1"\n')
        self.assertEqual(said, "FILE:2: [lines.a] device: 'tcp:127.0.0.1:4002' is line 'b''s listener "
                               f"'tcp:4002:interface=127.0.0.1', line 'b''s device is line 'a''s: {LOOP}")

    def test_noWayBackAllowed(self) -> None:
        """One line reading another's listener, with no way back (a chain), is allowed; so is another host, another family, a TLS listener."""
        loopbackOnly(self)
        self.assertEqual(self.loads('[lines.a]\ndevice = "tcp:127.0.0.1:4002"\nlisten = "4001"\n'
                                    '[lines.b]\ndevice = "/dev/ttyS0"\nlisten = "4002"\n'), ["a", "b"])
        self.assertEqual(self.loads('[lines.a]\ndevice = "tcp:10.0.0.5:4001"\nlisten = "4001"\n'), ["a"])
        self.assertEqual(self.loads('[lines.a]\ndevice = "telnet:[::1]:4001"\nlisten = "tcp:4001:interface=127.0.0.1"\n'),
                         ["a"])

    def test_ownAddressListener(self) -> None:
        """A listener bound to an address and a device of that address and port: this gateway's own, refused."""
        self.assertEqual(self.refused('[lines.a]\ndevice = "tcp:192.0.2.7:4001"\nlisten = "tcp:4001:interface=192.0.2.7"\n'),
                         "FILE:2: [lines.a] device: 'tcp:192.0.2.7:4001' is its own listener "
                         f"'tcp:4001:interface=192.0.2.7': {LOOP}")

    def test_commandLine(self) -> None:
        """--device telnet:127.0.0.1:4444 with --port 4444: refused as --device."""
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions, ["--device", "telnet:127.0.0.1:4444", "--port", "4444"])
        self.assertEqual(str(e), f"--device 'telnet:127.0.0.1:4444' is its own listener '4444': {LOOP}")

    def test_unspecifiedAndMappedAddresses(self) -> None:
        """tcp:0.0.0.0, telnet:[::] and ::ffff:127.0.0.1 reach this host's loopback (Linux connects 0.0.0.0 to 127.0.0.1, :: to ::1): refused on the line's own listener."""
        self.assertEqual(self.refused('[lines.a]\ndevice = "tcp:0.0.0.0:4001"\nlisten = "4001"\n'),
                         f"FILE:2: [lines.a] device: 'tcp:0.0.0.0:4001' is its own listener '4001': {LOOP}")
        self.assertEqual(self.refused('[lines.a]\ndevice = "telnet:[::]:4001"\nlisten = "tcp6:4001"\n'),
                         f"FILE:2: [lines.a] device: 'telnet:[::]:4001' is its own listener 'tcp6:4001': {LOOP}")
        self.assertEqual(self.refused('[lines.a]\ndevice = "tcp:[::ffff:127.0.0.1]:4001"\nlisten = "tcp:4001:interface=127.0.0.1"\n'),
                         f"FILE:2: [lines.a] device: 'tcp:[::ffff:127.0.0.1]:4001' is its own listener "
                         f"'tcp:4001:interface=127.0.0.1': {LOOP}")
        self.assertEqual(self.loads('[lines.a]\ndevice = "tcp:[::]:4001"\nlisten = "tcp:4001:interface=127.0.0.1"\n'), ["a"])


    def test_otherSpellingsOfLoopback(self) -> None:
        """LOCALHOST, localhost., 0x7f000001, 127.1 and 0 are how the resolver also spells this host's loopback (case, the root's dot, inet_aton's forms): refused as the line's own listener too."""
        for host in ("LOCALHOST", "localhost.", "0x7f000001", "127.1", "0"):
            self.assertEqual(self.refused(f'[lines.a]\ndevice = "tcp:{host}:4001"\nlisten = "4001"\n'),
                             f"FILE:2: [lines.a] device: 'tcp:{host}:4001' is its own listener '4001': {LOOP}")
        self.assertEqual(self.loads('[lines.a]\ndevice = "tcp:0x7f000001:4002"\nlisten = "4001"\n'), ["a"])

class WatchAllLoopTests(SynchronousTestCase):
    """A line whose remote device is a watch-all listener watching that line: its output comes back to it, prefixed, for ever (seen: one line typed on another line's pty kept the gateway at 99 % of a core)."""

    WATCHES = "each line of its output would come back to it from there, prefixed, for ever (a loop)"

    def test_watchAllInTheFile(self) -> None:
        """[watch-all] listening where a line's device dials, watching that line: refused at the line's device."""
        path = writeTemp(self, '[watch-all]\nlisten = "raw+tcp:4999:interface=127.0.0.1"\n'
                               '[lines.a]\ndevice = "tcp:127.0.0.1:4999"\nlisten = "4001"\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        self.assertEqual(said, "FILE:4: [lines.a] device: 'tcp:127.0.0.1:4999' is the watch-all listener "
                               f"'raw+tcp:4999:interface=127.0.0.1', which watches line 'a': {self.WATCHES}")

    def test_notWatchedAllowed(self) -> None:
        """A watch-all that does not watch the line (lines = patterns it does not match) makes no loop: allowed."""
        path = writeTemp(self, '[watch-all]\nlisten = "raw+tcp:4999:interface=127.0.0.1"\nlines = ["b*"]\n'
                               '[lines.a]\ndevice = "tcp:127.0.0.1:4999"\nlisten = "4001"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a"])

    def test_watchAllOption(self) -> None:
        """--watch-all where --device dials: refused as --device."""
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions,
                              ["--device", "unix:/run/x/w.sock", "--port", "4444", "--watch-all", "raw+unix:/run/x/w.sock"])
        self.assertEqual(str(e), "--device 'unix:/run/x/w.sock' is the watch-all listener 'raw+unix:/run/x/w.sock', "
                                 f"which watches line 'w.sock': {self.WATCHES}")


class HostAddressLoopTests(SynchronousTestCase):
    """A remote device at one of this host's own addresses other than loopback (a local interface's): Linux connects it to the gateway's own listener bound to every address, as loopback."""

    def setUp(self) -> None:
        from ipaddress import ip_network

        from serialgw.config import thishost

        self.patch(thishost, "localNetworks", lambda: [ip_network("127.0.0.0/8"), ip_network("192.0.2.9/32"),
                                                    ip_network("2001:db8::9/128"), ip_network("::1/128")])

    def test_interfaceAddressRefused(self) -> None:
        """tcp:192.0.2.9 (an address of a local interface) on the line's own listener on every address: refused; on a listener bound to loopback alone, or another host's address: allowed."""
        self.assertEqual(RemoteLoopTests.refused(self, '[lines.a]\ndevice = "tcp:192.0.2.9:4001"\nlisten = "4001"\n'),  # type: ignore[arg-type]
                         f"FILE:2: [lines.a] device: 'tcp:192.0.2.9:4001' is its own listener '4001': {LOOP}")
        self.assertEqual(RemoteLoopTests.refused(self, '[lines.a]\ndevice = "telnet:[2001:db8::9]:4001"\n'  # type: ignore[arg-type]
                                                       'listen = "tcp6:4001"\n'),
                         f"FILE:2: [lines.a] device: 'telnet:[2001:db8::9]:4001' is its own listener 'tcp6:4001': {LOOP}")
        self.assertEqual(RemoteLoopTests.refused(self, '[lines.a]\ndevice = "tcp:[::ffff:192.0.2.9]:4001"\n'  # type: ignore[arg-type]
                                                       'listen = "4001"\n'),
                         f"FILE:2: [lines.a] device: 'tcp:[::ffff:192.0.2.9]:4001' is its own listener '4001': {LOOP}")
        for device, listen in (("tcp:192.0.2.9:4001", "tcp:4001:interface=127.0.0.1"), ("tcp:192.0.2.10:4001", "4001"),
                               ("tcp:[2001:db8::9]:4001", "4001")):
            self.assertEqual(RemoteLoopTests.loads(self, f'[lines.a]\ndevice = "{device}"\nlisten = "{listen}"\n'),  # type: ignore[arg-type]
                             ["a"], (device, listen))

    def test_localNetworksRead(self) -> None:
        """This host's own addresses are read from the kernel (no name looked up): loopback's among them."""
        from ipaddress import ip_address

        from serialgw.config import thishost

        networks = thishost.__dict__["_readLocalNetworks"]()
        self.assertTrue(any(ip_address("127.0.0.1") in network for network in networks), networks)


class HostNameLoopTests(SynchronousTestCase):
    """A remote device naming this host by another of its names (its host name, an /etc/hosts name of one of its addresses): the resolver gives this host, so it reaches the gateway's own listener; read without a lookup (no DNS)."""

    def setUp(self) -> None:
        from ipaddress import ip_network

        from serialgw.config import thishost

        self.patch(thishost, "localNetworks", lambda: [ip_network("127.0.0.0/8"), ip_network("192.0.2.9/32"),
                                                    ip_network("::1/128")])
        hosts = writeTemp(self, "127.0.0.1\tlocalhost localhost.localdomain\n127.0.1.1 gw1.example.org gw1 # Debian's\n"
                                "192.0.2.9 gw1-eth0\n198.51.100.7 bmc7\n::1 ip6-localhost\n# 192.0.2.9 commented\n"
                                "fe80::1%eth0 linklocal\nnot-an-address nobody\n")
        self.patch(thishost, "HOSTS_FILE", hosts)
        self.patch(thishost, "hostName", lambda: "Gw1.Example.Org")

    def refused(self, device: str, listen: str) -> str:
        return RemoteLoopTests.refused(self, f'[lines.a]\ndevice = "{device}"\nlisten = "{listen}"\n')  # type: ignore[arg-type]

    def loads(self, device: str, listen: str) -> list[str]:
        return RemoteLoopTests.loads(self, f'[lines.a]\ndevice = "{device}"\nlisten = "{listen}"\n')  # type: ignore[arg-type]

    def test_hostsFileNamesRefused(self) -> None:
        """Names /etc/hosts gives to this host's addresses (127.0.1.1, an interface's; any case, a root dot) on the line's own listener where it takes that address: refused."""
        for device, listen in (("telnet:gw1:4001", "4001"), ("telnet:GW1.example.org.:4001", "tcp:4001:interface=127.0.1.1"),
                               ("tcp:gw1-eth0:4001", "4001"), ("rfc2217://localhost.localdomain:4001", "4001")):
            self.assertEqual(self.refused(device, listen),
                             f"FILE:2: [lines.a] device: {DeviceSpecText(device)!r} is its own listener {listen!r}: {LOOP}")

    def test_hostNameRefusedOnEveryAddress(self) -> None:
        """This host's name (gethostname; any case), not in /etc/hosts: refused on a listener on every address (it resolves to one of this host's), allowed on one bound to another."""
        from serialgw.config import thishost

        self.patch(thishost, "hostName", lambda: "console3")
        self.assertEqual(self.refused("telnet:Console3:4001", "4001"),
                         f"FILE:2: [lines.a] device: 'telnet:Console3:4001' is its own listener '4001': {LOOP}")
        self.assertEqual(self.loads("telnet:console3:4001", "tcp:4001:interface=192.0.2.9"), ["a"])

    def test_otherNamesAllowed(self) -> None:
        """A name /etc/hosts gives another host's address, one it does not have, or a listener at another address (Debian's 127.0.1.1 on one bound to 127.0.0.1: Linux does not connect them): allowed."""
        for device, listen in (("telnet:bmc7:4001", "4001"), ("telnet:nobody:4001", "4001"), ("telnet:linklocal:4001", "4001"),
                               ("telnet:gw1-eth0:4001", "tcp:4001:interface=127.0.0.1"), ("telnet:gw1:4002", "4001"),
                               ("telnet:gw1:4001", "tcp:4001:interface=127.0.0.1")):
            self.assertEqual(self.loads(device, listen), ["a"], device)

    def test_hostsFileRead(self) -> None:
        """/etc/hosts read as the resolver reads it: each name of a line to its address, comments left out, names in lower case, every line of a name in order."""
        from serialgw.config import thishost

        hosts = writeTemp(self, "10.0.0.1 A b # c d\n10.0.0.2 a e\n\n#10.0.0.3 f\n")
        self.patch(thishost, "HOSTS_FILE", hosts)
        self.assertEqual(thishost.hostsFile(), {"a": ["10.0.0.1", "10.0.0.2"], "b": ["10.0.0.1"], "e": ["10.0.0.2"]})
        self.patch(thishost, "HOSTS_FILE", hosts + ".not-there")
        self.assertEqual(thishost.hostsFile(), {})


def DeviceSpecText(device: str) -> str:
    """The device as its message says it."""
    from serialgw.config.parsers import parseDevice

    return parseDevice(device).describe()


class ShardAndRingLoopTests(SynchronousTestCase):
    """Watch-all loops the direct check missed: a process's own copy of a watch-all listener (--shard: PORT+I, PATH.I), and a ring through a watch-all that watches another line whose device leads back."""

    WATCHES = WatchAllLoopTests.WATCHES

    def test_shardCopy(self) -> None:
        """--shard 2: a line of process 1 dialling 4999+1, process 1's copy of the watch-all listener (which watches it): refused; dialling process 0's copy (which watches only process 0's lines): allowed."""
        from serialgw.config.file import loadFile

        text = ('[watch-all]\nlisten = "raw+tcp:4999:interface=127.0.0.1"\n'
                '[lines.a]\ndevice = "tcp:127.0.0.1:{port}"\nlisten = "4001"\nshard = 1\n')
        path = writeTemp(self, text.format(port=5000))
        said = str(self.assertRaises(ConfigError, loadFile, path, 2)).replace(path, "FILE")
        self.assertEqual(said, "FILE:4: [lines.a] device: 'tcp:127.0.0.1:5000' is the watch-all listener "
                               "'raw+tcp:5000:interface=127.0.0.1' (process 1's copy of "
                               "'raw+tcp:4999:interface=127.0.0.1'), which watches line 'a': " + self.WATCHES)
        self.assertEqual([line.name for line in loadFile(writeTemp(self, text.format(port=4999)), 2).lines], ["a"])
        self.assertEqual([line.name for line in loadFile(path).lines], ["a"])  # (one process: no 5000)

    def test_shardCopyUnix(self) -> None:
        """--shard 3: process 2's copy of a unix watch-all listener is PATH.2: a line of process 2 dialling it is refused."""
        from serialgw.config.file import loadFile

        path = writeTemp(self, '[watch-all]\nlisten = "raw+unix:/run/x/w.sock"\n'
                               '[lines.a]\ndevice = "unix:/run/x/w.sock.2"\nlisten = "4001"\nshard = 2\n')
        said = str(self.assertRaises(ConfigError, loadFile, path, 3)).replace(path, "FILE")
        self.assertTrue(said.startswith("FILE:4: [lines.a] device: 'unix:/run/x/w.sock.2' is the watch-all listener "
                                        "'raw+unix:/run/x/w.sock.2:mode=600' (process 2's copy of 'raw+unix:/run/x/w.sock'), "
                                        "which watches line 'a'"), said)

    def test_ringThroughWatchAll(self) -> None:
        """Line a dials a watch-all that watches line b only, and line b's device is line a's listener: b's output goes to a, a's to b, for ever: refused at a, naming the ring."""
        loopbackOnly(self)
        path = writeTemp(self, '[watch-all]\nlisten = "raw+tcp:4999:interface=127.0.0.1"\nlines = ["b"]\n'
                               '[lines.a]\ndevice = "tcp:127.0.0.1:4999"\nlisten = "4001"\n'
                               '[lines.b]\ndevice = "telnet:localhost:4001"\nlisten = "4002"\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        self.assertEqual(said, "FILE:5: [lines.a] device: 'tcp:127.0.0.1:4999' is the watch-all listener "
                               "'raw+tcp:4999:interface=127.0.0.1', which watches line 'b', line 'b''s device is line "
                               f"'a''s listener '4001': {self.WATCHES}")
        # No way back (b's device elsewhere): allowed.
        path = writeTemp(self, '[watch-all]\nlisten = "raw+tcp:4999:interface=127.0.0.1"\nlines = ["b"]\n'
                               '[lines.a]\ndevice = "tcp:127.0.0.1:4999"\nlisten = "4001"\n'
                               '[lines.b]\ndevice = "telnet:10.0.0.5:4001"\nlisten = "4002"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a", "b"])

    def test_shardCopyWatchAllOption(self) -> None:
        """--watch-all on the command line with --config and --shard 1/2: process 1's copy (4999+1) dialled by a line of process 1: refused, naming the file's line."""
        path = writeTemp(self, '[lines.a]\ndevice = "tcp:127.0.0.1:5000"\nlisten = "4001"\nshard = 1\n')
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions, ["--check", "--config", path, "--shard", "1/2",
                                                                 "--watch-all", "raw+tcp:4999:interface=127.0.0.1"])
        self.assertIn("line 'a': device 'tcp:127.0.0.1:5000' is the watch-all listener 'raw+tcp:5000:interface=127.0.0.1' "
                      "(process 1's copy of 'raw+tcp:4999:interface=127.0.0.1'), which watches line 'a'", str(e))
