"""
A banner of the line's own (banner = "...", --banner; ser2net's banner:
TEXT): read with its escapes and placeholders, refused naming the input
when malformed, and greeting the sessions that take notices (and those
of a listener that says banner) with the placeholders filled in.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.banner import MAX_BANNER, fillBanner, parseBanner
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.specs import ConfigError
from tests.app.test_tap import parse
from tests.clients.test_sessions import Harness
from tests.realio import writeTemp

TEXT = "\\r\\nWelcome to {line} ({device}, {settings})\\r\\n"


class ParseBannerTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        return str(self.assertRaises(ConfigError, parseBanner, text))

    def test_escapesAndPlaceholders(self) -> None:
        """The escapes become characters, the placeholders are kept and filled per session, doubled braces are braces."""
        banner = parseBanner(TEXT + "{{x}} \\\\ \\t.")
        self.assertEqual(banner, "\r\nWelcome to {line} ({device}, {settings})\r\n{{x}} \\ \t.")
        self.assertEqual(fillBanner(banner, "web1", "/dev/ttyUSB0", "115200,8N1"),
                         "\r\nWelcome to web1 (/dev/ttyUSB0, 115200,8N1)\r\n{x} \\ \t.")
        # (A value that looks like a placeholder is not filled again.)
        self.assertEqual(fillBanner("{line}:{device}", "{device}", "/dev/x", ""), "{device}:/dev/x")

    def test_malformed(self) -> None:
        """Each malformed banner is refused saying where and what (ser2net's escapes with serialgw's spelling)."""
        self.assertEqual(self.refused("port \\p device \\d"),
                         "banner 'port \\p device \\d': unknown escape '\\p' at character 6: expected \\r \\n \\t "
                         "\\\\ and the placeholders {line} {device} {settings} {port}; ser2net's \\p is {port} here")
        self.assertIn("ser2net's \\d is {device} here", self.refused("device \\d"))
        self.assertEqual(self.refused("on {host}"), "banner 'on {host}': '{host}' at character 4 is no placeholder: "
                                                    "expected {line}, {device}, {settings} or {port} ({{ and }} for a brace)")
        self.assertIn("'{line' at character 4 is no placeholder", self.refused("on {line"))
        self.assertEqual(self.refused("a } b"), "banner 'a } b': a lone '}' at character 3: write }} for a brace")
        self.assertEqual(self.refused("x\x1b[2Jy"), "banner 'x\\x1b[2Jy': a control character ('\\x1b') at character "
                                                     "2: only text, tabs and line ends (\\r \\n)")
        # A C1 control (TOML's "\u009b": CSI, which a UTF-8 terminal obeys as ESC [ ) as well.
        self.assertEqual(self.refused("x\u009b2Jy"), "banner 'x\\x9b2Jy': a control character ('\\x9b') at character "
                                                       "2: only text, tabs and line ends (\\r \\n)")
        self.assertEqual(self.refused(""), "banner: empty: leave it out for the listener option banner's own text")
        long = "x" * (MAX_BANNER + 1)
        self.assertEqual(self.refused(long), f"banner '{'x' * 40}...': 513 characters, at most 512")
        self.assertEqual(len(parseBanner("x" * MAX_BANNER)), MAX_BANNER)

    def test_fileAndOption(self) -> None:
        """banner in a line's table or [defaults] (a TOML string's own \\r\\n are characters already), --banner; refused naming the file's line."""
        text = ('[defaults]\nbanner = "Hi {line}\\r\\n"\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                "[lines.b]\ndevice = \"/dev/ttyS1\"\nlisten = \"4002\"\nbanner = 'B: {settings}\\r\\n'\n")
        a, b = loadConfig(writeTemp(self, text))
        self.assertEqual((a.banner, b.banner), ("Hi {line}\r\n", "B: {settings}\r\n"))
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nbanner = "host {host}"\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        self.assertEqual(said, "FILE:4: [lines.a] banner: banner 'host {host}': '{host}' at character 6 is no "
                               "placeholder: expected {line}, {device}, {settings} or {port} ({{ and }} for a brace)")
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nbanner = 7\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        self.assertEqual(said, "FILE:4: [lines.a] banner: expected a string (in quotes), not 7")
        self.assertEqual(parse("--device", "/dev/ttyS0", "--banner", "Hi {line}\\r\\n")["lines"][0].banner, "Hi {line}\r\n")
        error = self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--banner", "\\d")
        self.assertTrue(str(error).startswith("--banner '\\d': unknown escape"), str(error))


class BannerSentTests(SynchronousTestCase):
    def connect(self, h: Harness, listener: str) -> StringTransport:
        spec = parseListener(listener)
        client = (RawClient if spec.protocol.value == "raw" else TelnetClient)(h.line, listener=spec)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1))
        client.makeConnection(transport)
        return transport

    def test_telnetGreeted(self) -> None:
        """A telnet session (it takes notices) is greeted with the text, filled in, in place of the banner option's."""
        for listener in ("telnet+4444", "telnet,banner+4444"):
            h = Harness()
            h.line.banner = parseBanner(TEXT)
            value = self.connect(h, listener).value()
            self.assertTrue(value.endswith(b"\r\nWelcome to rack4 (, 115200,8N1)\r\n"), (listener, value))
            self.assertNotIn(b"[serialgw:", value)

    def test_rawOnlyWhenAsked(self) -> None:
        """A raw program is greeted only where its listener says banner: its data stays clean otherwise."""
        h = Harness()
        h.line.banner = parseBanner("hello {line}\\r\\n")
        self.assertEqual(self.connect(h, "raw+4444").value(), b"")
        self.assertEqual(self.connect(h, "raw,banner+4444").value(), b"hello rack4\r\n")

    def test_portFilled(self) -> None:
        """{port} (ser2net's \\p) is the port the session came in on: its listener's TCP port, a unix socket's path, none for a connection without one."""
        from twisted.internet.address import UNIXAddress

        from serialgw.clients.transports import cameIn

        h = Harness()
        h.line.banner = parseBanner("\\r\\n{line} port {port}\\r\\n")
        spec = parseListener("telnet+4001")
        for host, said in ((IPv4Address("TCP", "127.0.0.1", 4001), b"rack4 port 4001"),
                           (UNIXAddress(b"/run/con.sock"), b"rack4 port /run/con.sock")):
            transport = StringTransport(hostAddress=host, peerAddress=IPv4Address("TCP", "192.0.2.9", 1))
            TelnetClient(h.line, listener=spec).makeConnection(transport)
            self.assertTrue(transport.value().endswith(b"\r\n" + said + b"\r\n"), transport.value())
        self.assertEqual(cameIn(object()), "")
        # An SSH session's: the SSH listener's port, under its channel.
        from tests.clients.test_ssh import Harness as SSHHarness
        from tests.clients.test_ssh import sent

        ssh = SSHHarness()
        ssh.lines["con1"].banner = parseBanner("port {port}\\r\\n")
        channel, conn = ssh.channel()
        self.assertTrue(channel.requestReceived(b"shell", b""))
        # (The stub's TCP connection's own end: StringTransport's 10.0.0.1:12345.)
        self.assertEqual(channel.transport.getHost().port, 12345)
        self.assertIn(b"port 12345\r\n", sent(conn, channel))
        self.assertEqual(fillBanner("{port}", "a", "b", "c"), "")

    def test_dialOutHasNoPort(self) -> None:
        """
        A dial-out's session (the gateway's own connection, tcp:HOST:PORT as
        a listener) came in on no port: {port} is empty there, not its own
        end's port, a new one each time it dials (seen live: a banner 'D {line}
        {port}' on telnet,banner+tcp:127.0.0.1:31400 said 'D dl 57550').
        """
        h = Harness()
        h.line.banner = parseBanner("\\r\\n{line} port {port}.\\r\\n")
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 57550),
                                    peerAddress=IPv4Address("TCP", "127.0.0.1", 31400))
        client = TelnetClient(h.line, listener=parseListener("telnet,banner+tcp:127.0.0.1:31400"))
        client.dialled = True
        client.makeConnection(transport)
        self.assertTrue(transport.value().endswith(b"\r\nrack4 port .\r\n"), transport.value())

    def test_noTextTheOptionsOwn(self) -> None:
        """Without a text of its own the banner option shows its own, as before; a telnet session without it, none."""
        h = Harness()
        self.assertTrue(self.connect(h, "raw,banner+4444").value().startswith(b"\r\n[serialgw: rack4: 115200,8N1"))
        self.assertNotIn(b"rack4", self.connect(Harness(), "telnet+4444").value())
