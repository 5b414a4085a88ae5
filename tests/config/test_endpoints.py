"""
Tests for serialgw.config.listeners: how listener strings are read, QEMU's manual
examples included, and bad strings refused with the reading shown.
"""

from __future__ import annotations

import re
from typing import Any, Optional, cast

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.endpoints import UNIXServerEndpoint, serverFromString
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.gatewaylisteners import parseSSHListener, parseWatchAll
from serialgw.config.hostports import bindsAddress
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol, TLSSpec, UDPSpec
from serialgw.config.specs import ConfigError, quote

L, C = ListenerKind.LISTEN, ListenerKind.CONNECT
RAW, TELNET = Protocol.RAW, Protocol.TELNET


class NativeTests(SynchronousTestCase):
    def test_bareNumber(self) -> None:
        """A bare number is TCP on all interfaces, telnet."""
        self.assertEqual(parseListener("4444"), ListenerSpec("tcp:4444", TELNET, "4444", port=4444))

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

    def test_udpFamiliesMatch(self) -> None:
        """A udp: listener whose remote and source addresses are of two families (or a name, resolved to IPv4, from an IPv6 source) is refused, naming both: its output could never be sent (the first one raised in the fan-out, the client cut off)."""
        for text, remote, source in (("udp:[::1]:4555@127.0.0.1:4556", "::1", "127.0.0.1"),
                                     ("udp:127.0.0.1:4555@[::1]:4556", "127.0.0.1", "::1"),
                                     ("udp:console.example:4555@[::1]:4556,allow=::1", "console.example", "::1")):
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertIn(f"remote host '{remote}' and source address '{source}'", str(caught.exception))
        self.assertEqual(parseListener("udp:[::1]:4555@[::1]:4556").udp, UDPSpec("::1", 4555, "::1", 4556, ("::1",)))
        self.assertEqual(parseListener("udp:console.example:4555@127.0.0.1:4556,allow=127.0.0.1").udp,
                         UDPSpec("console.example", 4555, "127.0.0.1", 4556, ("127.0.0.1",)))

    def test_udpSourceNameRefused(self) -> None:
        """A udp: listener whose source (after @) is a host name is refused, naming it: the port is bound to an address, and Twisted's listenUDP took no name (--check said OK, then the start died with a traceback, InvalidAddressError)."""
        for text, source in (("udp:localhost:4555@localhost:4556", "localhost"),
                             ("udp:10.0.0.5:4555@gw.example:4556", "gw.example")):
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), f"source address '{source}' in listener '{text}' is a name: the "
                             "netconsole's port is bound to an address: give one (127.0.0.1, ::1), or none (@PORT) "
                             "for every interface")
        self.assertEqual(parseListener("udp:localhost:4555@127.0.0.1:4556").udp.sourceHost, "127.0.0.1")  # type: ignore[union-attr]

    def test_dialOutToPortZeroRefused(self) -> None:
        """A dial-out to port 0 (tcp:, telnet:, tls:) is refused, naming it, as a remote device's and a netconsole remote's port 0 are: it was dialled for ever, 'Connection refused' at every retry."""
        for text in ("tcp:127.0.0.1:0", "telnet:console.example:0,nodelay", "tls:console.example:0:ca=ca.pem"):
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), f"listener '{text}' dials port 0: nothing listens there; give the "
                             "peer's port")
        self.assertEqual(parseListener("tcp:127.0.0.1:1").port, 1)

    def test_udpToItself(self) -> None:
        """A udp: listener whose output would go to its own port (udp::4556@4556, the same address, or loopback from the wildcard however written) is refused: each datagram came back as typing, and a device that echoes looped for ever."""
        for text in ("udp::4556@4556", "udp:127.0.0.1:4556@127.0.0.1:4556", "udp:127.0.0.2:4556@:4556",
                     "udp:[::1]:4556@4556", "udp:10.0.0.5:4556@10.0.0.5:4556",
                     # The wildcard written out, and localhost (resolved to 127.0.0.1), loop as well.
                     "udp:127.0.0.1:4556@0.0.0.0:4556", "udp:[::1]:4556@[::]:4556", "udp:localhost:4556@127.0.0.1:4556"):
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertIn("sends to its own port 4556", str(caught.exception))
        self.assertEqual(parseListener("udp:10.0.0.5:4556@4556").udp, UDPSpec("10.0.0.5", 4556, "", 4556, ("10.0.0.5",)))
        # (Bound to 127.0.0.1, a socket does not get what is sent to 127.0.0.2.)
        self.assertEqual(parseListener("udp:127.0.0.2:4556@127.0.0.1:4556").udp.sourceHost, "127.0.0.1")  # type: ignore[union-attr]
        self.assertEqual(parseListener("udp::4555@4556").udp.remotePort, 4555)  # type: ignore[union-attr]
        with self.assertRaises(ConfigError) as caught:
            parseListener("udp::0@4556")
        self.assertEqual(str(caught.exception), "listener 'udp::0@4556': the remote's port cannot be 0 (nothing can be sent there)")

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

    def test_ptyOptions(self) -> None:
        """A pty: listener takes ro, outbuf= and policy=drop|block (kept in its spec); mon: and ro go together."""
        spec = parseListener("raw,ro,outbuf=4096,policy=block+pty:/tmp/ttyV0")
        self.assertEqual((spec.kind, spec.path, spec.readOnly, spec.outbuf, spec.policy),
                         (ListenerKind.PTY, "/tmp/ttyV0", True, 4096, "block"))
        self.assertEqual((parseListener("pty:/x").readOnly, parseListener("pty:/x").policy), (False, "drop"))
        self.assertEqual(parseListener("raw,policy=drop+pty").kind, ListenerKind.PTY)

    def test_ptyRefusesWhatItWouldIgnore(self) -> None:
        """
        What a pty: client would ignore is refused, naming the listener and
        the option (ro, outbuf= and policy= were all ignored: a ro pty's
        program typed on the line).
        """
        takes = "a pty: client takes ro, outbuf= and policy=drop|block"
        for text, what in (("raw,allow=127.0.0.1+pty:/x", "allow="), ("raw,idle=5+pty:/x", "idle="),
                           ("raw,keepalive+pty:/x", "keepalive"), ("raw,nodelay+pty:/x", "nodelay"),
                           ("raw,banner+pty:/x", "banner"), ("raw,replay+pty:/x", "replay"),
                           ("raw,no-notices+pty:/x", "notices or no-notices"),
                           ("raw,notices+pty", "notices or no-notices")):
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"listener {text!r}: {what} means nothing to a pty: client; {takes}")
        for text in ("telnet+pty:/x", "telnet,ro+pty:/x", "telnet,no-rfc2217+pty:/x"):
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"listener {text!r}: a pty: client is raw bytes, not telnet (write raw+pty: or pty:); {takes}")
        self.assertEqual(str(self.assertRaises(ConfigError, parseListener, "raw,policy=disconnect+pty:/x")),
                         "listener 'raw,policy=disconnect+pty:/x': policy=disconnect cannot cut a pty: client (its "
                         f"program would find no pty until a restart); {takes}")

    def test_escapeKeysTypedAllTheTimeRefused(self) -> None:
        """escape=^@, ^J, ^M or ^[ (keys every Enter or arrow sends: each would start an escape command) is refused, saying why."""
        for key, why in (("^@", "a telnet client's Enter is CR NUL (and Ctrl-Space is NUL)"), ("^j", "it is Enter (LF)"),
                         ("^M", "it is Enter (CR)"), ("^[", "every arrow and function key starts with it")):
            text = f"telnet,escape={key}+4444"
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"escape={quote(key)} in {quote(text)}: it cannot be the escape key: {why} (^] is usual)")

    def test_commandKeyNotTheEscapeKey(self) -> None:
        """A command's letter as the escape key (escape=t: t t sent a t, and nobody could take write) is refused, naming the command; punctuation is taken (a letter is not: test_escapeprintable)."""
        for key, command in (("t", "take write"), ("d", "disconnect"), ("?", "help"), ("B", "baud rate")):
            text = f"telnet,escape={key}+4444"
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"escape={quote(key)} in {quote(text)}: it cannot be the escape key: it is the escape "
                             f"menu's command {key} ({command}), which could not be given (^] is usual)")
        self.assertEqual([parseListener(f"raw,escape={k}+4444").escape for k in ("~", "`", "!")],
                         [ord("~"), ord("`"), ord("!")])

    def test_escapeKeyDel(self) -> None:
        """escape=^? is DEL, as the character itself; another character past ASCII is refused, quoted."""
        self.assertEqual([parseListener(f"telnet,escape={k}+4444").escape for k in ("^?", "\x7f", "^]", "~")],
                         [0x7F, 0x7F, 0x1D, ord("~")])
        self.assertEqual(str(self.assertRaises(ConfigError, parseListener, "telnet,escape=\xff+4444")),
                         "escape='\xff' in 'telnet,escape=\xff+4444': expected ^X (a control key), ^? (DEL), one ASCII "
                         "character, or off")

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
        # A first number past 65535 is no port: one reading, a bad port (hypothesis found tcp:65536:2).
        self.assertEqual(str(self.assertRaises(ConfigError, parseListener, "tcp:65536:2")),
                         "bad port '65536' in listener 'tcp:65536:2': expected a port number, 0 to 65535")

    def test_badStrings(self) -> None:
        """Bad QEMU strings name what is wrong."""
        cases = {
            "tcp::4444,bogus": "unknown option 'bogus' in listener 'tcp::4444,bogus' (known: server, wait, nowait, "
            "nodelay, ipv4, ipv6, reconnect, telnet, to)",
            "udp:1.2.3.4:x": "bad port 'x' in listener 'udp:1.2.3.4:x': expected a port number, 0 to 65535",
            "tcp:::1:4444,server": "an IPv6 address goes in brackets ([::1]) in listener 'tcp:::1:4444,server'",
            "telnet::4444,server=maybe": "option server='maybe' in listener 'telnet::4444,server=maybe': expected on or off",
            "udp::4555@4556,allow=nonsense": "allow='nonsense' in listener 'udp::4555@4556,allow=nonsense' is not an "
            "address or CIDR network",
            "file:": "file: takes a path and no options, not 'file:'",
            # It was ignored: every address on the netconsole's default list wrote.
            "raw,allow=10.0.0.0/8+udp::4555@4556": "listener 'raw,allow=10.0.0.0/8+udp::4555@4556': allow= before "
            "the + does not reach a udp: client; who may write goes after it: udp::4555@4556,allow=10.0.0.0/8",
            "stdio:x": "stdio takes no arguments, not 'stdio:x'",
            # An empty list would be no restriction: everyone let in.
            "raw,allow=;+4444": "allow=';' in listener 'raw,allow=;+4444' names no address or CIDR network",
            "udp:console.example:4555@4556": "remote host 'console.example' in listener 'udp:console.example:4555@4556' "
            "is a name: writes are taken from the remote host's address: give an address, or who may write with "
            ",allow=CIDR",
            "tls:4443:cert=c:key=k:ca=a:subjects=;": "subjects=';' in listener 'tls:4443:cert=c:key=k:ca=a:subjects=;' "
            "names no certificate CN",
            "tls:4443:cert=c:key=k:ca=a:readonly=": "readonly='' in listener 'tls:4443:cert=c:key=k:ca=a:readonly=' "
            "names no certificate CN",
        }
        for text, message in cases.items():
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)), message)


class AllowReachesTests(SynchronousTestCase):
    def test_allowWhereNoAddressIsChecked(self) -> None:
        """
        allow= is refused where it would check nothing (file:, pipe:, stdio:
        no peer address: it was ignored, everyone wrote) or the wrong peer
        (a dial-out: its own peer, refused and dialled again for ever).
        """
        cases = {
            "raw,allow=10.0.0.0/8+file:/tmp/x.log": "file:",
            "raw,allow=10.0.0.0/8+pipe:/tmp/qemu": "pipe:",
            "raw,allow=10.0.0.0/8+stdio": "stdio",
            "raw,allow=10.0.0.0/8+tcp:192.168.0.2:4444": "a dial-out",
            "raw,allow=10.0.0.0/8+unix:/tmp/qemu.sock,nowait": "a dial-out",
        }
        for text, what in cases.items():
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"listener {text!r}: allow= means nothing to {what} (it checks who connects to a "
                             "listening socket; a unix socket's file mode does that for it)")
        self.assertEqual(parseListener("raw,allow=10.0.0.0/8+tcp:4444").allow, ("10.0.0.0/8",))

    def test_allowOnUnixSocketRefused(self) -> None:
        """
        allow= on a unix socket listener (Twisted's form, QEMU's server
        form, an abstract name, a systemd: socket of domain UNIX; a line's,
        the SSH listener's, watch-all's) is refused naming the listener: a
        unix peer has no address, and it let everyone in.
        """
        cases = [
            "raw,allow=10.0.0.0/8+unix:/run/x.sock",
            "telnet,ro,allow=127.0.0.1+unix:address=/run/x.sock:mode=660",
            "raw,allow=127.0.0.1+unix:/tmp/qemu.sock,server,nowait",
            "raw,allow=127.0.0.1+unix:\0rack4",
            "raw,allow=127.0.0.1+systemd:domain=UNIX:index=0",
            "raw,allow=127.0.0.1+systemd:unix:0",
        ]
        for text in cases:
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"listener {quote(text)}: allow= means nothing to a unix socket (it checks the address a "
                             "TCP client comes from; a unix peer has none: it let everyone in); the socket "
                             "file's mode (mode=600 unless given) and its directory decide who connects")
        ssh = "allow=127.0.0.1+unix:/run/ssh.sock"
        self.assertEqual(str(self.assertRaises(ConfigError, parseSSHListener, ssh)),
                         f"listener {ssh!r}: allow= means nothing to a unix socket (it checks the address a "
                         "TCP client comes from; a unix peer has none: it let everyone in); the socket "
                         "file's mode (mode=600 unless given) and its directory decide who connects")
        self.assertRaises(ConfigError, parseWatchAll, ["raw,allow=127.0.0.1+unix:/run/all.sock"], [])
        self.assertEqual(parseListener("raw,allow=127.0.0.1+systemd:domain=INET:index=0").allow, ("127.0.0.1",))
        self.assertEqual(parseListener("raw+unix:/run/x.sock").allow, ())


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
        with self.assertRaises(ConfigError) as caught:
            parseListener("tls:4443:cert=c:key=k:port=5")
        self.assertEqual(str(caught.exception), "listener 'tls:4443:cert=c:key=k:port=5' gives the port twice")
        self.assertRaises(ConfigError, parseListener, "tls:h:4443")
        self.assertRaises(ConfigError, parseListener, "tls:4443:cert=c:key=k:subjects=x")
        self.assertRaises(ConfigError, parseListener, "tls:4443:cert=c:key=k:colour=blue")

    def test_dialOutCertAndKeyTogether(self) -> None:
        """A TLS dial-out's client certificate without its key (or a key without a certificate) is refused when read, naming it: --check said OK, and the start died saying "cannot read key '': No such file or directory"."""
        for text in ("tls:gw.example:4443:ca=ca.pem:cert=me.pem", "tls:gw.example:4443:ca=ca.pem:key=me.key"):
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), f"a TLS dial-out's client certificate needs cert= and key= both: "
                             f"'{text}'")
        self.assertEqual(parseListener("tls:gw.example:4443:ca=ca.pem:cert=me.pem:key=me.key").tls,
                         TLSSpec("me.pem", "me.key", "ca.pem", hostname="gw.example"))

    def test_dialOutIPv6AsQEMUWritesIt(self) -> None:
        """tls:[::1]:4443:ca=.. (an IPv6 host in brackets, as the udp:, tcp: and telnet: forms take it) dials ::1; it was refused, 'expected tls:PORT:cert=..:key=.. or tls:HOST:PORT:ca=..', only [\\:\\:1] read."""
        for text in ("tls:[::1]:4443:ca=ca.pem", "tls:[\\:\\:1]:4443:ca=ca.pem", "tls:[fe80::1%eth0]:port=4443:ca=ca.pem"):
            spec = parseListener(text)
            assert spec.tls is not None
            self.assertEqual((spec.kind, spec.host, spec.port, spec.tls.hostname), (C, spec.tls.hostname, 4443,
                             "fe80::1%eth0" if "fe80" in text else "::1"))
        self.assertRaises(ConfigError, parseListener, "tls:[::1]:4443")

    def test_tlsFields(self) -> None:
        """tls: reads its fields as Twisted reads its strings: port=, backslash escapes in every value."""
        spec = parseListener("raw+tls:port=4443:interface=\\:\\:1:cert=/etc/a\\:b.pem:key=/etc/k\\\\.pem")
        assert spec.tls is not None
        self.assertEqual((spec.kind, spec.protocol, spec.host, spec.port, spec.tls.cert, spec.tls.key),
                         (L, RAW, "::1", 4443, "/etc/a:b.pem", "/etc/k\\.pem"))
        spec = parseListener("tls:[\\:\\:1]:port=4443:ca=/etc/c\\:a.pem")
        assert spec.tls is not None
        self.assertEqual((spec.kind, spec.host, spec.port, spec.tls.ca, spec.tls.hostname), (C, "::1", 4443, "/etc/c:a.pem", "::1"))

    def test_tlsColonInAValueHinted(self) -> None:
        """A tls: value with a bare colon (tls:4443:interface=::1) is refused naming that value and how to write it (\\:), as Twisted's strings are; it was only 'expected tls:PORT:cert=..'."""
        hint = ": a colon inside a value (an IPv6 address) is written \\:, as in Twisted's endpoint strings"
        cases = {
            "tls:4443:interface=::1:cert=c.pem:key=k.pem":
                "cannot read TLS listener 'tls:4443:interface=::1:cert=c.pem:key=k.pem': expected tls:PORT:cert=..:key=.. "
                f"or tls:HOST:PORT:ca=..; 'interface=::1'{hint} ('interface=\\:\\:1')",
            "raw+tls:port=4443:interface=fe80::1%eth0:cert=c.pem:key=k.pem":
                "listener 'raw+tls:port=4443:interface=fe80::1%eth0:cert=c.pem:key=k.pem' gives the port twice; "
                f"'interface=fe80::1%eth0'{hint} ('interface=fe80\\:\\:1%eth0')",
            "tls:4443:cert=/etc/a:b.pem:key=k.pem":
                "bad port 'b.pem' in listener 'tls:4443:cert=/etc/a:b.pem:key=k.pem': expected a port number, 0 to 65535; "
                f"'cert=/etc/a:b.pem'{hint} ('cert=/etc/a\\:b.pem')",
        }
        for text, message in cases.items():
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), message, text)
        # No colon inside a value: no hint.
        e = self.assertRaises(ConfigError, parseListener, "tls:4443:5000:6000:cert=c.pem:key=k.pem")
        self.assertEqual(str(e), "cannot read TLS listener 'tls:4443:5000:6000:cert=c.pem:key=k.pem': expected "
                         "tls:PORT:cert=..:key=.. or tls:HOST:PORT:ca=..")

    def test_tlsBareIPv6HostHinted(self) -> None:
        """A tls: dial-out to an IPv6 host written bare (tls:::1:4443:ca=..) is refused saying it goes in brackets, as QEMU's forms (udp:, tcp:) say; it was only 'expected tls:PORT:cert=..'."""
        cases = {
            "tls:::1:4443:ca=c.pem": "cannot read TLS listener 'tls:::1:4443:ca=c.pem': expected tls:PORT:cert=..:key=.. "
                                     "or tls:HOST:PORT:ca=..; an IPv6 host goes in brackets ('tls:[::1]:4443')",
            "tls:fe80::1%eth0:port=4443:ca=c.pem": "listener 'tls:fe80::1%eth0:port=4443:ca=c.pem' gives the port twice; "
                                                   "an IPv6 host goes in brackets ('tls:[fe80::1%eth0]:port=4443')",
        }
        for text, message in cases.items():
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), message, text)

    def test_sslRefused(self) -> None:
        """Twisted's ssl: (clients attached before the handshake) is refused, pointing to tls:."""
        for text in ("ssl:4443:privateKey=k.pem:certKey=c.pem", "raw+SSL:4443:privateKey=k.pem"):
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"listener {text!r}: ssl: attaches clients before their TLS handshake; use "
                             "tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]")


def twistedReading(endpoint: str) -> Any:
    """What Twisted's own parser makes of a server endpoint string, or None where it refuses it."""
    try:
        return serverFromString(cast(Any, object()), endpoint)
    except Exception:
        return None


def escaped(text: str) -> str:
    """Text as one field of a Twisted endpoint string (a backslash escapes the next character)."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


PREFIXES = st.sampled_from(["", "raw+", "telnet+", "telnet,no-rfc2217+", "raw,ro,outbuf=4096+"])


@st.composite
def twistedStrings(draw: st.DrawFn) -> tuple[str, bool]:
    """A tcp:, tcp6: or unix: server string in Twisted's grammar, and whether it gives mode= itself."""
    word = draw(st.sampled_from(["tcp", "tcp6", "unix"]))
    positional: list[str] = []
    keywords: list[str] = []
    if word == "unix":
        path = draw(st.text(alphabet="/ab:=\\.-\0", max_size=12))
        (positional.append if draw(st.booleans()) else lambda p: keywords.append("address=" + p))(escaped(path))
        mode = draw(st.sampled_from([None, "660", "0600", "777", "9", ""]))
        if mode is not None:
            keywords.append(f"mode={mode}")
        lockfile = draw(st.sampled_from([None, "0", "1", "x"]))
        if lockfile is not None:
            keywords.append(f"lockfile={lockfile}")
    else:
        port = str(draw(st.integers(-2, 70000)))
        port = draw(st.sampled_from(["", "0", "+"])) + port if draw(st.booleans()) else port
        interface = draw(st.sampled_from([None, "127.0.0.1", "::1", "0.0.0.0", "::", "localhost"]))
        if draw(st.booleans()):
            positional.append(port)
            if interface is not None and draw(st.booleans()) and ":" not in interface:
                positional.append(interface)
                interface = None
        else:
            keywords.append(f"port={port}")
        if interface is not None:
            keywords.append(f"interface={escaped(interface)}")
        if draw(st.booleans()):
            keywords.append(f"backlog={draw(st.sampled_from(['5', 'x']))}")
        if draw(st.booleans()):
            keywords.append(draw(st.sampled_from(["port=1", "bogus=1", "2"])))
    fields = list(positional)
    for keyword in keywords:  # keywords go anywhere; positional fields keep their order
        fields.insert(draw(st.integers(0, len(fields))), keyword)
    return ":".join([word, *fields]), mode is not None if word == "unix" else False


class TwistedGrammarTests(SynchronousTestCase):
    """tcp:, tcp6: and unix: listeners read as Twisted reads them: keyword and positional forms, escapes."""

    def test_keywordForms(self) -> None:
        """Every form Twisted takes gives the host, port and path Twisted binds, after any protocol prefix."""
        cases = {
            "tcp:4000": ("tcp:4000", "", 4000, ""),
            "tcp:port=4000": ("tcp:port=4000", "", 4000, ""),
            "raw+tcp:port=4000:interface=127.0.0.1": ("tcp:port=4000:interface=127.0.0.1", "127.0.0.1", 4000, ""),
            "telnet,ro+tcp:interface=127.0.0.1:port=4000": ("tcp:interface=127.0.0.1:port=4000", "127.0.0.1", 4000, ""),
            "tcp:4000:127.0.0.1": ("tcp:4000:127.0.0.1", "127.0.0.1", 4000, ""),
            "tcp6:port=4000": ("tcp6:port=4000", "::", 4000, ""),
            "raw+tcp6:4000:interface=\\:\\:1": ("tcp6:4000:interface=\\:\\:1", "::1", 4000, ""),
            "unix:address=/tmp/x": ("unix:address=/tmp/x:mode=600", "", 0, "/tmp/x"),
            "raw+unix:address=/tmp/x:mode=660:lockfile=0": ("unix:address=/tmp/x:mode=660:lockfile=0", "", 0, "/tmp/x"),
            "unix:mode=660:/tmp/y": ("unix:mode=660:/tmp/y", "", 0, "/tmp/y"),
            "unix:/tmp/a\\:b": ("unix:/tmp/a\\:b:mode=600", "", 0, "/tmp/a:b"),
            "unix:/tmp/a\\=b\\\\": ("unix:/tmp/a\\=b\\\\:mode=600", "", 0, "/tmp/a=b\\"),
            "unix:address=\0rack": ("unix:address=\0rack:mode=600:lockfile=0", "", 0, "\0rack"),
            "unix:\0rack:lockfile=1": ("unix:\0rack:lockfile=1:mode=600", "", 0, "\0rack"),
            "systemd:domain=INET:index=0": ("systemd:domain=INET:index=0", "", 0, ""),
        }
        for text, fields in cases.items():
            spec = parseListener(text)
            self.assertEqual((spec.endpoint, spec.host, spec.port, spec.path), fields, text)
            self.assertEqual((spec.text, spec.kind), (text, L), text)
        self.assertEqual(parseListener("raw+tcp:port=4000").protocol, RAW)

    def test_refused(self) -> None:
        """What Twisted refuses, or would bind to nothing sensible, is refused at once, naming the listener (an IPv6 address's colons unescaped: how to write them)."""
        cases = {
            "tcp:4000:port=5": "cannot read listener 'tcp:4000:port=5' as a Twisted endpoint string: "
                               "_parseTCP() got multiple values for argument 'port'",
            "raw+tcp:port=x": "bad port 'x' in listener 'raw+tcp:port=x': expected a port number, 0 to 65535",
            "unix:/a=b": "cannot read listener 'unix:/a=b' as a Twisted endpoint string: "
                         "_parseUNIX() got an unexpected keyword argument '/a'",
            "tcp6:port=70000": "bad port '70000' in listener 'tcp6:port=70000': expected a port number, 0 to 65535",
            "tcp:port=-1": "bad port '-1' in listener 'tcp:port=-1': expected a port number, 0 to 65535",
            "unix:address=": "unix: needs a path in listener 'unix:address='",
            "unix:mode=660": "cannot read listener 'unix:mode=660' as a Twisted endpoint string: "
                             "_parseUNIX() missing 1 required positional argument: 'address'",
            "raw+tcp:5000:interface=::1": "cannot read listener 'raw+tcp:5000:interface=::1' as a Twisted endpoint "
                                          "string ('tcp:5000:interface=::1'): _parseTCP() got multiple values for "
                                          "argument 'interface'; a colon inside a value (an IPv6 address) is written "
                                          "\\: ('interface=\\:\\:1' in a shell)",
            "ssl:port=4443": "listener 'ssl:port=4443': ssl: attaches clients before their TLS handshake; use "
                             "tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]",
        }
        for text, message in cases.items():
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), message, text)

    def test_interfaceIsAnAddress(self) -> None:
        """A listener's interface is an IP address or localhost: a host name (even '+8440') is refused naming it and the listener, not looked up on the reactor's thread at the start and each reload."""
        for text, host in [("tcp:4001:interface=example.invalid", "example.invalid"), ("tcp:4001:interface=+8440", "+8440"),
                           ("raw+tcp6:4001:interface=gw.example", "gw.example"), ("tcp:4001:example.invalid", "example.invalid"),
                           ("tls:4443:interface=gw.example:cert=c.pem:key=k.pem", "gw.example"),
                           ("telnet:gw.example:4001,server", "gw.example")]:
            with self.assertRaises(ConfigError) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), f"interface {quote(host)} of listener {quote(text)} is not an IP "
                             "address: a listener binds an address (127.0.0.1, ::1, 0.0.0.0), not a host name; "
                             "localhost is taken", text)
        for text, host in [("tcp:4001:interface=localhost", "localhost"), ("tcp:4001:interface=127.0.0.1", "127.0.0.1"),
                           ("tcp6:4001:interface=\\:\\:1", "::1"), ("telnet:localhost:4001,server", "localhost"),
                           ("tcp6:4001:interface=fe80\\:\\:1%lo", "fe80::1%lo"), ("tcp:example.invalid:4001", "example.invalid")]:
            self.assertEqual(parseListener(text).host, host, text)

    def test_givenTwiceRefused(self) -> None:
        """
        A listener's option or endpoint field given twice is refused naming
        both values: Twisted, and the options' reading, took the last alone,
        so that 'allow=10.0.0.0/8,allow=0.0.0.0/0' let every address in and
        'interface=127.0.0.1:interface=0.0.0.0' listened on every interface,
        --check saying OK.
        """
        for text, said in [
            ("raw,allow=10.0.0.0/8,allow=0.0.0.0/0+4001",
             "allow= is given twice in listener {t} ('10.0.0.0/8' and '0.0.0.0/0'): expected one (several networks "
             "are one allow=, separated by ';': allow=10.0.0.0/8;0.0.0.0/0)"),
            ("telnet,notices,no-notices+4001",
             "'notices' and 'no-notices' in listener {t} set one thing twice: expected one"),
            ("raw,ro,readonly+4001", "'ro' and 'readonly' in listener {t} set one thing twice: expected one"),
            ("raw,idle=5,idle=60+4001", "idle= is given twice in listener {t} ('5' and '60'): expected one"),
            ("tcp:4001:interface=127.0.0.1:interface=0.0.0.0",
             "interface= is given twice in listener {t} ('127.0.0.1' and '0.0.0.0'): expected one"),
            ("raw+tcp:port=4001:port=4002", "port= is given twice in listener {t} ('4001' and '4002'): expected one"),
            ("unix:/run/x.sock:lockfile=1:lockfile=0",
             "lockfile= is given twice in listener {t} ('1' and '0'): expected one"),
            ("tls:4443:cert=c.pem:key=k.pem:ca=a.pem:ca=b.pem",
             "ca= is given twice in listener {t} ('a.pem' and 'b.pem'): expected one"),
        ]:
            with self.assertRaises(ConfigError, msg=text) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), said.format(t=quote(text)), text)
        # (One of each, and the gateway's own mode= after the string's, as before.)
        self.assertEqual(parseListener("raw,allow=10.0.0.0/8;192.0.2.0/24,ro+tcp:4001:interface=127.0.0.1").allow,
                         ("10.0.0.0/8", "192.0.2.0/24"))
        self.assertEqual(parseListener("unix:/run/x.sock:mode=660").endpoint, "unix:/run/x.sock:mode=660")

    def test_emptyInterfaceRefused(self) -> None:
        """
        interface= given empty is refused: it listened on every address, as
        if left out ('interface=${ADDRESS}' with the variable unset opened
        the console to every network; --check said OK).  QEMU's empty host
        (telnet::4001,server) is every address, as QEMU reads it.
        """
        for text in ("tcp:4001:interface=", "raw+tcp6:port=4001:interface=", "tls:4443:interface=:cert=c.pem:key=k.pem"):
            with self.assertRaises(ConfigError, msg=text) as caught:
                parseListener(text)
            self.assertEqual(str(caught.exception), f"interface= is empty in listener {quote(text)}: it would listen on "
                             "every address; write one (interface=127.0.0.1), or leave interface= out for every one",
                             text)
        self.assertEqual([parseListener(t).host for t in ("tcp:4001", "telnet::4001,server", "tcp6:4001:interface=\\:\\:")],
                         ["", "", "::"])

    def check(self, prefix: str, endpoint: str, givesMode: Optional[bool]) -> None:
        """
        The spec's host, port and path are Twisted's for C{endpoint}, and so
        is what its own endpoint string binds (mode 0600 unless given); or
        both refuse (we also refuse ports past 65535, a backlog= outside 0
        to 65535, empty or NUL paths, C{tcp:N:M}, a port with a sign), or it is QEMU's
        C{tcp:HOST:PORT}.
        """
        theirs = twistedReading(endpoint)
        try:
            spec = parseListener(prefix + endpoint)
        except ConfigError as e:
            if theirs is not None:
                # Twisted reads it, but it binds nothing sensible, or reads two ways (QEMU's tcp:HOST:PORT).
                address = getattr(theirs, "_address", "x")
                # (A '+' is only ever a port's sign here: refused as not written in digits, as Twisted's int() takes it.)
                reason = ("ASCII digits" if "+" in endpoint else
                          "backlog=" if not 0 <= theirs._backlog <= 65535 else
                          "bad port" if not 0 <= getattr(theirs, "_port", 0) <= 65535 else "needs a path"
                          if not address else "NUL byte" if "\0" in address[1:] else "reads two ways")
                # (Or its interface is a name, not an address: refused once the rest is read.)
                interface = getattr(theirs, "_interface", "")
                if interface and not bindsAddress(interface) and reason not in str(e):
                    reason = "is not an IP address"
                # (Or a keyword is given twice, of which Twisted takes the last.)
                if reason not in str(e) and len(re.findall(r":port=", endpoint)) > 1:
                    reason = "is given twice"
                self.assertIn(reason, str(e), endpoint)
            return
        if theirs is None:
            # Not Twisted's: QEMU's tcp:HOST:PORT, a dial-out.
            self.assertEqual((spec.kind, spec.endpoint), (C, f"tcp:{spec.host}:{spec.port}"), endpoint)
            return
        bound = twistedReading(spec.endpoint)
        if isinstance(theirs, UNIXServerEndpoint):
            self.assertEqual((spec.path, spec.host, spec.port), (theirs._address, "", 0), endpoint)
            self.assertEqual((bound._address, bound._backlog), (theirs._address, theirs._backlog), endpoint)
            if givesMode is not None:
                self.assertEqual(bound._mode, theirs._mode if givesMode else 0o600, endpoint)
        else:
            self.assertEqual((spec.host, spec.port, spec.path), (theirs._interface, theirs._port, ""), endpoint)
            self.assertEqual(spec.endpoint, endpoint)

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(PREFIXES, twistedStrings())
    def test_sameAsTwisted(self, prefix: str, generated: tuple[str, bool]) -> None:
        """Generated tcp:, tcp6: and unix: strings: the spec's host, port and path are the endpoint's, or both refuse."""
        self.check(prefix, *generated)

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(PREFIXES, st.sampled_from(["tcp6:", "unix:", "tcp:0", "tcp:port="]), st.text(alphabet=":=\\/ab01.\0", max_size=14))
    def test_fuzzSameAsTwisted(self, prefix: str, head: str, tail: str) -> None:
        """Any text after tcp6:, unix:, tcp:N or tcp:port= (escapes, stray = and :): as Twisted reads it, or refused."""
        self.check(prefix, head + tail, None)
