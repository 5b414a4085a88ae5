"""
{line} where a path is no line's: [ssh] listen and host-key, [watch-all]
listen, a [users.NAME] keys-file, and a line's lock-dir (one directory for
every program that locks a tty).  It was taken as written: a socket or a key
file named '{line}' was made.  Refused, naming FILE:LINE, the key and why;
the braces there are read as in a line's paths ({{ and }} a brace).
"""

from __future__ import annotations

import os

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config.file import loadFile
from serialgw.config.specs import ConfigError
from tests.realio import socketPath

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops1"
USER = f'[users.ops1]\nkeys = ["{KEY}"]\n'
TAIL = ": write the path out (a brace itself is written {{ or }})"


class GlobalPathTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = os.path.dirname(socketPath(self))

    def file(self, text: str) -> str:
        path = os.path.join(self.dir, "farm.toml")
        with open(path, "w") as f:
            f.write(text.replace("DIR", self.dir))
        return path

    def refused(self, text: str) -> str:
        path = self.file(text)
        e = self.assertRaises(ConfigError, loadFile, path)
        return str(e).replace(path, "FILE").replace(self.dir, "DIR")

    def test_sshListen(self) -> None:
        """[ssh] listen with {line}: refused (one SSH listener serves every line), not a socket named '{line}.sock'."""
        said = self.refused(f'{LINE}[ssh]\nlisten = "unix:DIR/{{line}}.sock"\n{USER}')
        self.assertEqual(said, "FILE:5: [ssh] listen: listen 'unix:DIR/{line}.sock': {line} is a line's name, and "
                               "[ssh] serves every line (one listener; the SSH user name picks the line)" + TAIL)

    def test_sshHostKey(self) -> None:
        """[ssh] host-key with {line}: refused (one host key for every line)."""
        said = self.refused(f'{LINE}[ssh]\nlisten = "tcp:0"\nhost-key = "DIR/{{line}}_key"\n{USER}')
        self.assertEqual(said, "FILE:6: [ssh] host-key: host-key 'DIR/{line}_key': {line} is a line's name, and the "
                               "SSH listener has one host key for every line" + TAIL)

    def test_watchAllListen(self) -> None:
        """[watch-all] listen with {line} (a list too): refused (one view of every line)."""
        said = self.refused(f'{LINE}[watch-all]\nlisten = ["0", "unix:DIR/{{line}}-all.sock"]\n')
        self.assertEqual(said, "FILE:5: [watch-all] listen: listen 'unix:DIR/{line}-all.sock': {line} is a line's "
                               "name, and [watch-all] shows every line on its listeners" + TAIL)

    def test_usersKeysFile(self) -> None:
        """A [users.NAME] keys-file with {line}: refused (a person's keys are for every line)."""
        said = self.refused(f'{LINE}[users.ops1]\nkeys-file = "DIR/{{line}}.pub"\n')
        self.assertEqual(said, "FILE:5: [users.ops1] keys-file: keys-file 'DIR/{line}.pub': {line} is a line's name, "
                               "and a person's keys are theirs on every line" + TAIL)

    def test_lockDir(self) -> None:
        """lock-dir with {line} (per line, but no other program would look there): refused, saying where UUCP locks go."""
        said = self.refused('[defaults]\nlock-dir = "/run/lock/{line}"\n' + LINE)
        self.assertEqual(said, "FILE:2: [defaults] lock-dir: lock-dir '/run/lock/{line}': {line} is a line's name, "
                               "and a line's own lock directory is one where no other program (minicom, cu, ser2net) "
                               "looks for its tty's lock: UUCP locks go in one directory for all, e.g. /var/lock" + TAIL)

    def test_bracesReadAsInALinesPaths(self) -> None:
        """Doubled braces there are a brace each, as in a line's paths; an unknown {word} is refused; a path without braces is as before."""
        config = loadFile(self.file(f'{LINE}[ssh]\nlisten = "unix:DIR/{{{{x}}}}.sock"\n'
                                    f'host-key = "DIR/host_key"\n{USER}'))
        assert config.ssh is not None
        self.assertEqual((config.ssh.listener.path, config.ssh.hostKey), (f"{self.dir}/{{x}}.sock", f"{self.dir}/host_key"))
        said = self.refused(f'{LINE}[watch-all]\nlisten = "unix:DIR/{{name}}.sock"\n')
        self.assertEqual(said, "FILE:5: [watch-all] listen: listen 'unix:DIR/{name}.sock': unknown placeholder "
                               "'{name}': the one placeholder is {line}, the line's name; a brace itself is written "
                               "{{ or }}")


class CommandLineTests(SynchronousTestCase):
    def test_optionPathsRefuseLine(self) -> None:
        """A path option holding {line} (--listen, --ssh-host-key, --watch-all, ...) is refused naming it: it was taken as written, a socket named '{line}.sock'."""
        for argv, option, value in [
            (["--device", "/dev/ttyS0", "--listen", "0", "--listen", "unix:/run/{line}.sock"], "listen",
             "unix:/run/{line}.sock"),
            (["--device", "pty:/run/{line}"], "device", "pty:/run/{line}"),
            (["--device", "/dev/ttyS0", "--watch-all", "unix:/run/{line}-all.sock"], "watch-all",
             "unix:/run/{line}-all.sock"),
            (["--device", "/dev/ttyS0", "--ssh", "tcp:0", "--ssh-host-key", "/var/lib/{line}_key"], "ssh-host-key",
             "/var/lib/{line}_key"),
        ]:
            options = tap.Options()
            options.exitOnError = False  # type: ignore[attr-defined]
            e = self.assertRaises(UsageError, options.parseOptions, argv)
            self.assertEqual(str(e), f"--{option} '{value}': {{line}} is read in a configuration file's paths (one "
                                     "[defaults] value for every line); on the command line, write the path out")
