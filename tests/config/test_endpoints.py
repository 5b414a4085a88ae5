"""
Tests for serialgw.config.listeners: how listener strings are read, QEMU's manual
examples included, and bad strings refused with the reading shown.
"""

from __future__ import annotations

import attrs
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.listeners import parseListener
from serialgw.config.specs import ConfigError, ListenerKind, ListenerSpec, Protocol, TLSSpec, UDPSpec

L, C = ListenerKind.LISTEN, ListenerKind.CONNECT
RAW, TELNET = Protocol.RAW, Protocol.TELNET


class NativeTests(SynchronousTestCase):
    def test_bareNumber(self) -> None:
        """A bare number is TCP on all interfaces, telnet."""
        self.assertEqual(parseListener("4444"), ListenerSpec("tcp:4444", TELNET, "4444"))

    def test_twistedStrings(self) -> None:
        """Twisted endpoint strings are kept as they are (unix: gets mode 0600 unless given)."""
        self.assertEqual(parseListener("tcp:4444:interface=127.0.0.1").endpoint, "tcp:4444:interface=127.0.0.1")
        self.assertEqual(parseListener("tcp6:4444:interface=\\:\\:1").endpoint, "tcp6:4444:interface=\\:\\:1")
        self.assertEqual(parseListener("systemd:domain=INET:index=0").endpoint, "systemd:domain=INET:index=0")
        self.assertEqual(parseListener("unix:/run/x.sock").endpoint, "unix:/run/x.sock:mode=600")
        self.assertEqual(parseListener("unix:/run/x.sock").path, "/run/x.sock")
        self.assertEqual(parseListener("unix:/run/x.sock:mode=660").endpoint, "unix:/run/x.sock:mode=660")

    def test_protocolPrefix(self) -> None:
        """raw+, telnet+ and telnet,no-rfc2217+ choose the protocol."""
        self.assertEqual((parseListener("raw+4445").protocol, parseListener("raw+4445").endpoint), (RAW, "tcp:4445"))
        self.assertEqual(parseListener("RAW+tcp6:5000").protocol, RAW)
        self.assertFalse(parseListener("telnet,no-rfc2217+4444").rfc2217)
        self.assertTrue(parseListener("telnet+4444").rfc2217)
        self.assertEqual(parseListener("raw+telnet::4444,server").protocol, RAW)

    def test_prefixErrors(self) -> None:
        """Unknown protocols and flags are refused, quoted."""
        e = self.assertRaises(ConfigError, parseListener, "ssh+4444")
        self.assertEqual(str(e), "unknown listener protocol 'ssh' in 'ssh+4444' (known: telnet, raw)")
        e = self.assertRaises(ConfigError, parseListener, "raw,no-rfc2217+4444")
        self.assertEqual(str(e), "listener option 'no-rfc2217' is for telnet, not raw, in 'raw,no-rfc2217+4444'")
        self.assertRaises(ConfigError, parseListener, "raw+")
        self.assertRaises(ConfigError, parseListener, "70000")
        self.assertIn("'localhost'", str(self.assertRaises(ConfigError, parseListener, "localhost")))


class QemuManualTests(SynchronousTestCase):
    """The examples of the -serial section of QEMU's manual."""

    def test_tcpConnect(self) -> None:
        """tcp:192.168.0.2:4444 dials out, raw."""
        spec = parseListener("tcp:192.168.0.2:4444")
        self.assertEqual((spec.kind, spec.protocol, spec.host, spec.port), (C, RAW, "192.168.0.2", 4444))

    def test_tcpServerWait(self) -> None:
        """tcp::4444,server listens on all interfaces and waits for the first client."""
        spec = parseListener("tcp::4444,server")
        self.assertEqual((spec.kind, spec.endpoint, spec.protocol, spec.wait), (L, "tcp:4444", RAW, True))

    def test_tcpServerNowait(self) -> None:
        """tcp:192.168.0.100:4444,server,nowait listens on that address, no waiting."""
        spec = parseListener("tcp:192.168.0.100:4444,server,nowait")
        self.assertEqual((spec.kind, spec.endpoint, spec.wait), (L, "tcp:4444:interface=192.168.0.100", False))

    def test_telnet(self) -> None:
        """telnet::4444,server,nowait is a telnet listener."""
        spec = parseListener("telnet::4444,server,nowait")
        self.assertEqual((spec.kind, spec.endpoint, spec.protocol, spec.wait), (L, "tcp:4444", TELNET, False))

    def test_newStyleOptions(self) -> None:
        """server=on, wait=off (QEMU 6+) read like server,nowait."""
        self.assertEqual(parseListener("telnet::4444,server=on,wait=off"), parseListener("telnet::4444,server,nowait").__class__(
            "tcp:4444", TELNET, "telnet::4444,server=on,wait=off", port=4444))

    def test_udp(self) -> None:
        """udp::4555@4556: to this host's 4555, from 4556, writes from loopback only."""
        spec = parseListener("udp::4555@4556")
        self.assertEqual(spec.kind, ListenerKind.UDP)
        self.assertEqual(spec.udp, UDPSpec("127.0.0.1", 4555, "", 4556, ("127.0.0.0/8", "::1")))
        self.assertEqual(parseListener("udp:10.0.0.5:6666").udp, UDPSpec("10.0.0.5", 6666, "", 0, ("10.0.0.5",)))
        self.assertEqual(
            parseListener("udp:[::1]:6666@[::1]:6667,allow=::1/128").udp, UDPSpec("::1", 6666, "::1", 6667, ("::1/128",))
        )

    def test_unix(self) -> None:
        """unix:path,server,nowait listens (0600); unix:path,nowait without server dials out."""
        spec = parseListener("unix:path,server,nowait")
        self.assertEqual((spec.kind, spec.endpoint, spec.wait, spec.protocol), (L, "unix:path:mode=600", False, RAW))
        spec = parseListener("unix:/var/run/qemu-server/100.serial0,nowait")
        self.assertEqual((spec.kind, spec.path), (C, "/var/run/qemu-server/100.serial0"))

    def test_abstractUnix(self) -> None:
        """A unix name starting with NUL is abstract: no lock file (Twisted's would fail on the NUL); a NUL elsewhere is refused."""
        spec = parseListener("raw+unix:\0rack4")
        self.assertEqual((spec.endpoint, spec.path), ("unix:\0rack4:mode=600:lockfile=0", "\0rack4"))
        spec = parseListener("unix:\0rack4,server,nowait")
        self.assertEqual((spec.kind, spec.endpoint, spec.path), (L, "unix:\0rack4:mode=600:lockfile=0", "\0rack4"))
        spec = parseListener("unix:\0vm100,nowait")
        self.assertEqual((spec.kind, spec.path), (C, "\0vm100"))
        self.assertEqual(parseListener("unix:/run/x").endpoint, "unix:/run/x:mode=600")
        for text in ("unix:/run/a\0b", "unix:/run/a\0b,server", "pty:/tmp/a\0", "pipe:/tmp/\0f",
                     "tls:4443:cert=/a\0:key=/b"):
            self.assertIn("a file name cannot hold a NUL byte", str(self.assertRaises(ConfigError, parseListener, text)))

    def test_mon(self) -> None:
        """mon:telnet::4444,server,nowait is the telnet listener with the escape menu on Ctrl-a."""
        spec = parseListener("mon:telnet::4444,server,nowait")
        self.assertEqual((spec.kind, spec.endpoint, spec.protocol, spec.escape, spec.qemuKeys),
                         (L, "tcp:4444", TELNET, 1, True))
        self.assertFalse(parseListener("telnet,escape=^A+4444").qemuKeys)
        self.assertRaises(ConfigError, parseListener, "mon:")

    def test_noEscapeMenuThere(self) -> None:
        """mon: or escape= on a pty:, file: or udp: listener (no escape menu there) is refused, not silently ignored."""
        for text, kind in (("mon:pty:/tmp/ttyV0", "pty"), ("mon:file:/tmp/c.log", "file"),
                           ("mon:udp:127.0.0.1:6666", "udp"), ("raw,escape=^]+pty:/tmp/ttyV0", "pty")):
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"listener {text!r}: a {kind} client has no escape menu (mon: and escape= work on "
                             "tcp, telnet, unix, pipe: and stdio listeners)")
        self.assertEqual([parseListener(t).escape for t in ("mon:stdio", "mon:pipe:/tmp/f", "raw,escape=off+pty:/x")],
                         [1, 1, None])

    def test_escapeOffByDefault(self) -> None:
        """Without escape=, a listener's escape key is None, as with escape=off: no menu, no other sentinel."""
        for text in ("telnet+4444", "raw+4444", "4444", "unix:/run/x", "stdio"):
            self.assertIsNone(parseListener(text).escape, text)
        self.assertEqual(attrs.evolve(parseListener("telnet,escape=off+4444"), text="telnet+4444"),
                         parseListener("telnet+4444"))

    def test_fileUdpPipeStdio(self) -> None:
        """file:, pipe: and stdio."""
        self.assertEqual((parseListener("file:/tmp/c.log").kind, parseListener("file:/tmp/c.log").path), (ListenerKind.FILE, "/tmp/c.log"))
        self.assertEqual(parseListener("pipe:/tmp/f").kind, ListenerKind.PIPE)
        self.assertEqual(parseListener("stdio").kind, ListenerKind.STDIO)
        self.assertEqual((parseListener("pty").kind, parseListener("pty").path), (ListenerKind.PTY, ""))
        self.assertEqual((parseListener("pty:/tmp/ttyV0").kind, parseListener("pty:/tmp/ttyV0").path),
                         (ListenerKind.PTY, "/tmp/ttyV0"))

    def test_ipv6(self) -> None:
        """[::1] in QEMU strings means tcp6."""
        spec = parseListener("telnet:[::1]:4444,server,nowait")
        self.assertEqual(spec.endpoint, "tcp6:4444:interface=\\:\\:1")
        spec = parseListener("tcp:[::1]:4444")
        self.assertEqual((spec.kind, spec.host, spec.port), (C, "::1", 4444))

    def test_ambiguous(self) -> None:
        """tcp:N:M reads two ways: refused, showing both readings."""
        e = self.assertRaises(ConfigError, parseListener, "tcp:4444:5555")
        self.assertEqual(
            str(e),
            "listener 'tcp:4444:5555' reads two ways: as a Twisted endpoint it listens on port 4444 of interface "
            "'5555'; as QEMU's tcp: it connects to host '4444' port 5555. Write tcp:4444:interface=ADDRESS or "
            "tcp:HOST:5555,... to say which",
        )

    def test_badStrings(self) -> None:
        """Bad QEMU strings name what is wrong."""
        cases = {
            "tcp::4444,bogus": "unknown option 'bogus' in listener 'tcp::4444,bogus' (known: server, wait, nowait, "
            "nodelay, ipv4, ipv6, reconnect, telnet, to)",
            "udp:1.2.3.4:x": "bad port 'x' in listener 'udp:1.2.3.4:x'",
            "tcp:::1:4444,server": "an IPv6 address goes in brackets ([::1]) in listener 'tcp:::1:4444,server'",
            "telnet::4444,server=maybe": "option server='maybe' in listener 'telnet::4444,server=maybe': expected on or off",
            "udp::4555@4556,allow=nonsense": "allow='nonsense' in listener 'udp::4555@4556,allow=nonsense' is not an "
            "address or CIDR network",
            "file:": "file: takes a path and no options, not 'file:'",
            "stdio:x": "stdio takes no arguments, not 'stdio:x'",
        }
        for text, message in cases.items():
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)), message)


class TLSTests(SynchronousTestCase):
    def test_server(self) -> None:
        """tls:PORT:cert=..:key=..[:ca=..][:subjects=..] listens with TLS."""
        spec = parseListener("tls:4443:interface=127.0.0.1:cert=c.pem:key=k.pem:ca=ca.pem:subjects=alice;bob")
        self.assertEqual((spec.kind, spec.port, spec.host), (L, 4443, "127.0.0.1"))
        self.assertEqual(spec.tls, TLSSpec("c.pem", "k.pem", "ca.pem", ("alice", "bob")))

    def test_client(self) -> None:
        """tls:HOST:PORT:ca=.. dials out and verifies HOST."""
        spec = parseListener("raw+tls:gw.example:4443:ca=ca.pem")
        self.assertEqual((spec.kind, spec.protocol, spec.host, spec.port), (C, RAW, "gw.example", 4443))
        self.assertEqual(spec.tls, TLSSpec(ca="ca.pem", hostname="gw.example"))

    def test_errors(self) -> None:
        """Missing certificate files and unknown options are refused."""
        self.assertRaises(ConfigError, parseListener, "tls:4443:cert=c.pem")
        self.assertRaises(ConfigError, parseListener, "tls:h:4443")
        self.assertRaises(ConfigError, parseListener, "tls:4443:cert=c:key=k:subjects=x")
        self.assertRaises(ConfigError, parseListener, "tls:4443:cert=c:key=k:colour=blue")

    def test_sslRefused(self) -> None:
        """Twisted's ssl: (clients attached before the handshake) is refused, pointing to tls:."""
        for text in ("ssl:4443:privateKey=k.pem:certKey=c.pem", "raw+SSL:4443:privateKey=k.pem"):
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"listener {text!r}: ssl: attaches clients before their TLS handshake; use "
                             "tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]")
