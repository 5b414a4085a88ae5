"""
[ssh] sessions-per-person: how many SSH sessions one person may have at
once on all lines together (32 by default, 1 to 1024); a value out of it
refuses the file, naming its line.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadFile
from serialgw.config.specs import ConfigError
from tests.clients.test_ssh import newKey, publicLine
from tests.realio import writeTemp

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nread = ["*"]\n'


class SessionsPerPersonTests(SynchronousTestCase):
    def load(self, setting: str) -> tuple[str, int]:
        path = writeTemp(self, f'[ssh]\nlisten = "tcp:2222"\nhost-key = "/tmp/hk"\n{setting}'
                               f'[users.ops1]\nkeys = ["{publicLine(newKey())}"]\n' + LINE)
        ssh = loadFile(path).ssh
        assert ssh is not None
        return path, ssh.sessionsPerPerson

    def test_default(self) -> None:
        """Without the key, 32."""
        self.assertEqual(self.load("")[1], 32)

    def test_set(self) -> None:
        """sessions-per-person = 200 is taken; 1 and 1024 are its ends."""
        for value in (200, 1, 1024):
            self.assertEqual(self.load(f"sessions-per-person = {value}\n")[1], value)

    def test_outOfBoundsRefused(self) -> None:
        """0, 1025, a string or a boolean refuse the file, naming its line and the bounds."""
        for value, said in (("0", "0"), ("1025", "1025"), ('"64"', "'64'"), ("true", "True")):
            path = writeTemp(self, f'[ssh]\nlisten = "tcp:2222"\nhost-key = "/tmp/hk"\nsessions-per-person = {value}\n'
                                   f'[users.ops1]\nkeys = ["{publicLine(newKey())}"]\n' + LINE)
            e = self.assertRaises(ConfigError, loadFile, path)
            self.assertEqual(str(e), f"{path}:4: [ssh] sessions-per-person: expected a number of sessions from 1 to "
                                     f"1024, not {said}")
