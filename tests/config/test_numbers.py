"""
Every number a line's table takes has a bound, and a value past it (2**63,
10**30) is refused naming the file's line, the key and the value; built
from the minimal configuration one key at a time, so a key added later
without a bound is caught here.
"""

from __future__ import annotations

from twisted.python.usage import UsageError

from serialgw.app import tap
from serialgw.config.linetable import LINE_KEYS
from serialgw.config.logspec import MAX_LOG_KEEP, MAX_LOG_MARK
from tests.config.filecase import ConfigFileCase

MINIMAL = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
# log-* keys need a log (else refused for that, the value unread).
WITH_LOG = MINIMAL + 'log = "/var/log/a.log"\n'

# The integer keys and the most each takes.
MOST = {
    "max-clients": 65536,
    "backlog": 64 * 1024 * 1024,
    "log-max-size": 2**40,
    "log-keep": MAX_LOG_KEEP,
    "log-mark": MAX_LOG_MARK,
    "shard": 1023,
}


class NumberBoundTests(ConfigFileCase):
    def base(self, key: str) -> str:
        return WITH_LOG if key.startswith("log-") else MINIMAL

    def test_everyKeyRefusesHuge(self) -> None:
        """Each line key given 2**63, 10**30 or -2**63 (where its minimal line is otherwise fine) is refused, naming FILE:LINE, [lines.a], the key and the value."""
        for key in sorted(LINE_KEYS - {"device", "listen"}):
            base = self.base(key)
            place = base.count("\n") + 1
            for value in (2**63, 10**30, -(2**63)):
                said = self.refused(f"{base}{key} = {value}\n")
                self.assertTrue(said.startswith(f"FILE:{place}: [lines.a] {key}: "), (key, value, said))
                self.assertIn(str(value).lstrip("-"), said, (key, value))

    def test_deviceAndListenRefuseHuge(self) -> None:
        """device and listen given 2**63 are refused naming the key and the value."""
        said = self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = 9223372036854775808\n')
        self.assertTrue(said.startswith("FILE:3: [lines.a] listen: "), said)
        self.assertIn("9223372036854775808", said)
        said = self.refused('[lines.a]\nlisten = "4001"\ndevice = 9223372036854775808\n')
        self.assertTrue(said.startswith("FILE:3: [lines.a] device: "), said)
        self.assertIn("9223372036854775808", said)

    def test_integerKeysAtTheirBound(self) -> None:
        """Each integer key takes its documented most and refuses one more, naming FILE:LINE, the key, the bound and the value."""
        for key, most in MOST.items():
            base = self.base(key)
            self.assertEqual(len(self.load(f"{base}{key} = {most}\n")), 1)
            said = self.refused(f"{base}{key} = {most + 1}\n")
            self.assertTrue(said.startswith(f"FILE:{base.count(chr(10)) + 1}: [lines.a] {key}: "), said)
            self.assertIn(str(most), said)
            self.assertIn(str(most + 1), said)

    def test_defaultsNamed(self) -> None:
        """A bound broken in [defaults] names [defaults] and its line."""
        said = self.refused("[defaults]\nmax-clients = 70000\n" + MINIMAL)
        self.assertEqual(said, "FILE:2: [defaults] max-clients: expected 0 (no limit) to 65536 clients, not 70000")
        said = self.refused('[defaults]\nlog-max-size = 1099511627777\n' + WITH_LOG)
        self.assertEqual(said, "FILE:2: [defaults] log-max-size: log-max-size must be 0 (no limit) to 1099511627776 "
                               "bytes (1 TiB), not 1099511627777")

    def test_commandLineMaxClients(self) -> None:
        """--max-clients past 65536 (2**63 was taken) is refused naming the option and the value; 65536 is taken."""
        options = tap.Options()
        options.exitOnError = False  # type: ignore[attr-defined]
        e = self.assertRaises(UsageError, options.parseOptions,
                              ["--device", "/dev/ttyS0", "--max-clients", "9223372036854775808"])
        self.assertIn("--max-clients must be 0 (no limit) to 65536, not '9223372036854775808'", str(e))
        options = tap.Options()
        options.parseOptions(["--device", "/dev/ttyS0", "--max-clients", "65536"])
        self.assertEqual(options["lines"][0].maxClients, 65536)
