"""
A key, table or listener option the gateway does not know, when it is a
slip of a known one (a letter left out or swapped, '_' for '-', capitals),
is refused saying which one was likely meant before the list of the known
ones; a name near none says nothing more than before.  A number or a
true/false written in quotes is refused saying how to write it.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadFile
from serialgw.config.linetable import LINE_KEYS
from serialgw.config.listeners import parseListener
from serialgw.config.specs import ConfigError
from serialgw.config.spelling import didYouMean, nearest
from tests.realio import writeTemp

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
KNOWN = ", ".join(sorted(LINE_KEYS))
OPTIONS = ("no-rfc2217, ro, allow=CIDR;CIDR, outbuf=BYTES, policy=drop|disconnect|block, idle=SECONDS, keepalive, "
           "nodelay, escape=^X|off, banner, replay, notices, no-notices")


class NearestTests(SynchronousTestCase):
    def test_slips(self) -> None:
        """A letter left out, doubled or swapped, '_' for '-', capitals: the known name; nothing near: None."""
        for word, meant in (("max-client", "max-clients"), ("maxclients", "max-clients"), ("lisen", "listen"),
                            ("sreial", "serial"), ("max_clients", "max-clients"), ("Device", "device"),
                            ("log-size", "log-max-size"), ("ondemand", "on-demand"), ("stopbit", "stopbits"),
                            ("baudrate", "baud"), ("Speed", "baud"), ("databits", "bytesize")):
            self.assertEqual(nearest(word, LINE_KEYS), meant, word)
        self.assertIsNone(nearest("baudrate", ["listen"]))  # (a synonym only of a name there)
        for word in ("colour", "flow", ""):
            self.assertIsNone(nearest(word, LINE_KEYS), word)

    def test_didYouMean(self) -> None:
        """The question, with the name written as asked; nothing for a name near none, or for the name itself."""
        self.assertEqual(didYouMean("lisen", ["listen"]), ": did you mean 'listen'?")
        self.assertEqual(didYouMean("line", ["lines"], "[{}.NAME]"), ": did you mean [lines.NAME]?")
        self.assertEqual(didYouMean("colour", ["listen"]), "")
        self.assertEqual(didYouMean("listen", ["listen"]), "")


class FileTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        path = writeTemp(self, text)
        return str(self.assertRaises(ConfigError, loadFile, path)).replace(path, "FILE")

    def test_lineKey(self) -> None:
        """A line's key, in its table or in [defaults], misspelt: the error asks for the known one first."""
        self.assertEqual(self.refused(LINE + "max-client = 4\n"),
                         f"FILE:4: unknown key 'max-client' in [lines.a]: did you mean 'max-clients'? (known: {KNOWN})")
        self.assertEqual(self.refused("[defaults]\nmax_clients = 4\n" + LINE),
                         f"FILE:2: unknown key 'max_clients' in [defaults]: did you mean 'max-clients'? (known: {KNOWN})")
        self.assertEqual(self.refused(LINE + "colour = 4\n"), f"FILE:4: unknown key 'colour' in [lines.a] (known: {KNOWN})")
        self.assertEqual(self.refused(LINE + "baudrate = 9600\n"),
                         f"FILE:4: unknown key 'baudrate' in [lines.a]: did you mean 'baud'? (known: {KNOWN})")

    def test_foreignHintFirst(self) -> None:
        """ser2net's or conserver's name keeps its own hint (what serialgw has instead), not a guess."""
        said = self.refused(LINE + "max-connections = 1\n")
        self.assertTrue(said.startswith("FILE:4: unknown key 'max-connections' in [lines.a]: ser2net's max-connections "
                                        "is max-clients here"), said)
        self.assertNotIn("did you mean", said)

    def test_topLevel(self) -> None:
        """A table misspelt ([line.a], [user.bob], [watchall]) is asked for as it is written."""
        expected = "(expected [defaults], [lines.NAME], [ssh], [tls], [users.NAME], [watch-all] and [by-name])"
        for table, meant in (("line.a", "[lines.NAME]"), ("user.bob", "[users.NAME]"), ("watchall", "[watch-all]")):
            self.assertEqual(self.refused(f"[{table}]\nx = 1\n" + LINE),
                             f"FILE:1: unknown top-level key '{table.split('.')[0]}': did you mean {meant}? {expected}")

    def test_otherTables(self) -> None:
        """[ssh], [users.NAME] and [watch-all] keys misspelt: the known one asked for."""
        self.assertEqual(self.refused(LINE + '[ssh]\nlisten = "2222"\nhostkey = "/x"\n'),
                         "FILE:6: unknown key 'hostkey' in [ssh]: did you mean 'host-key'? "
                         "(known: host-key, listen, sessions-per-person)")
        self.assertEqual(self.refused(LINE + '[users.bob]\nkey = "/x"\n'),
                         "FILE:5: unknown key 'key' in [users.bob]: did you mean 'keys'? (known: keys, keys-file, password)")
        self.assertEqual(self.refused(LINE + '[watch-all]\nlisen = "4009"\n'),
                         "FILE:5: unknown key 'lisen' in [watch-all]: did you mean 'listen'? (known: lines, listen)")


class ListenerTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        return str(self.assertRaises(ConfigError, parseListener, text))

    def test_options(self) -> None:
        """A listener option, a TLS one or a QEMU one misspelt: the known one asked for."""
        self.assertEqual(self.refused("telnet,alow=10.0.0.0/8+4001"),
                         f"unknown listener option 'alow' in 'telnet,alow=10.0.0.0/8+4001': did you mean 'allow'? "
                         f"(known: {OPTIONS})")
        self.assertEqual(self.refused("raw,colour+4001"), f"unknown listener option 'colour' in 'raw,colour+4001' "
                                                          f"(known: {OPTIONS})")
        self.assertEqual(self.refused("tls:4001:cert=a:key=b:subject=x"),
                         "unknown option 'subject' in listener 'tls:4001:cert=a:key=b:subject=x': did you mean "
                         "'subjects'? (known: port, interface, cert, key, ca, subjects, readonly, handshake)")
        self.assertEqual(self.refused("telnet::4001,server,nowiat"),
                         "unknown option 'nowiat' in listener 'telnet::4001,server,nowiat': did you mean 'nowait'? "
                         "(known: server, wait, nowait, nodelay, ipv4, ipv6, reconnect, telnet, to)")

    def test_flagWithValue(self) -> None:
        """A word-alone option given a value is said so (it was an 'unknown listener option' it is known as)."""
        self.assertEqual(self.refused("telnet,banner=hello+4001"),
                         "listener option 'banner' takes no value, not 'banner=hello', in 'telnet,banner=hello+4001': "
                         "the text is the line's banner = ... (--banner)")
        self.assertEqual(self.refused("raw,ro=1+4001"), "listener option 'ro' takes no value, not 'ro=1', in 'raw,ro=1+4001'")


class QuotedTests(SynchronousTestCase):
    def refused(self, key: str) -> str:
        path = writeTemp(self, LINE + 'log = "/var/log/a.log"\n' + key + "\n")
        return str(self.assertRaises(ConfigError, loadFile, path)).replace(path, "FILE")

    def test_numbersAndBooleansInQuotes(self) -> None:
        """log-keep = "7", lock = "false", pace = "5": the key written without its quotes is shown; other strings are not."""
        self.assertEqual(self.refused('log-keep = "7"'),
                         "FILE:5: [lines.a] log-keep: expected a whole number, not '7' (without quotes: log-keep = 7)")
        self.assertEqual(self.refused('lock = "False"'),
                         "FILE:5: [lines.a] lock: expected true or false, not 'False' (without quotes: lock = false)")
        self.assertEqual(self.refused('pace = "2.5"'),
                         "FILE:5: [lines.a] pace: expected a number, not '2.5' (without quotes: pace = 2.5)")
        self.assertEqual(self.refused('restore = "yes"'), "FILE:5: [lines.a] restore: expected true or false, not 'yes'")
        self.assertEqual(self.refused('backlog = "16k"'), "FILE:5: [lines.a] backlog: expected a whole number, not '16k'")
