"""
A keys file may be a person's own (in their home): what is wrong with it is
its person's alone.  They have no keys from it (or not the key that is
another's), it is said at the start, at a reload and by --check, and the
rest of the file applies: before, it refused the whole file, so that a
person kept the gateway from starting and every reload from applying.
"""

from __future__ import annotations

import os

import attrs
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import filereload, process
from serialgw.app.check import checkLines
from serialgw.clients.sshauth import KeyRing
from serialgw.config.file import loadFile
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import SSHSpec, UserSpec
from serialgw.config.specs import ConfigError
from serialgw.config.sshkeys import fingerprint
from tests.clients.test_ssh import newKey, publicLine
from tests.fakes import LogEvents
from tests.realio import ptyLine, startedPty, startGateway, writeTemp
from tests.shortpaths import shortTemp, writeShort

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nwrite = ["ops1"]\nread = ["*"]\n'
SSH = '[ssh]\nlisten = "tcp:2222:interface=127.0.0.1"\nhost-key = "/tmp/hk"\n'


class PersonsFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.ops1, self.bob = newKey(), newKey()

    def keysFile(self, text: str) -> str:
        return writeShort(self, text)

    def load(self, bobFile: str, more: str = "") -> tuple[str, SSHSpec]:
        path = writeTemp(self, SSH + LINE + f'[users.ops1]\nkeys = ["{publicLine(self.ops1)}"]\n'
                               f'[users.bob]\nkeys-file = "{bobFile}"\n' + more)
        ssh = loadFile(path).ssh
        assert ssh is not None
        return path, ssh

    def test_optionLineGivesNoKeys(self) -> None:
        """A keys file with a line that is no key (an authorized_keys option) gives its person no keys, said naming the file's line; the file loads, the other people keep theirs."""
        bobFile = self.keysFile(publicLine(self.bob, "bob") + "\nrestrict " + publicLine(self.bob) + "\n")
        path, ssh = self.load(bobFile)
        self.assertEqual([(u.name, len(u.keys)) for u in ssh.users], [("ops1", 1), ("bob", 0)])
        self.assertEqual(ssh.problems, (
            f"{path}:12: [users.bob] keys-file: {bobFile}:2: expected a public key (TYPE BASE64 [COMMENT], TYPE one "
            "of ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ecdsa-sha2-nistp256@openssh.com, "
            "sk-ssh-ed25519@openssh.com, ssh-ed25519, ssh-rsa), not 'restrict ssh-ed2'...; authorized_keys options "
            "(from=, command=, ...) are not supported: bob has no keys from it",))

    def test_missingFileGivesNoKeys(self) -> None:
        """A keys file that is not there (taken away by its person) gives no keys: said, not a refusal."""
        missing = shortTemp(self)
        path, ssh = self.load(missing)
        self.assertEqual(ssh.problems, (f"{path}:12: [users.bob] keys-file: cannot read keys file {missing!r}: "
                                        "No such file or directory: bob has no keys from it",))

    def test_anotherPersonsKeyCopied(self) -> None:
        """A key of another person's table copied into a keys file stays theirs (said once however often copied); the file's own keys are its person's."""
        bobFile = self.keysFile(f"{publicLine(self.ops1)}\n{publicLine(self.bob)}\n{publicLine(self.ops1)}\n")
        path, ssh = self.load(bobFile)
        self.assertEqual(KeyRing(ssh.users).people, {self.ops1.public().blob(): "ops1", self.bob.public().blob(): "bob"})
        self.assertEqual(ssh.problems, (f"{path}:12: [users.bob] keys-file {bobFile!r}: not bob's: key "
                                        f"{fingerprint(self.ops1)} is ops1's ([users.ops1] keys)",))

    def test_manyKeysOfOthersOneLine(self) -> None:
        """However many keys of others a keys file holds, it is one line a reload (the first named, the rest counted); a key that is its own person's in their table too is no problem."""
        others = [newKey() for _ in range(3)]
        more = "".join(f'[users.o{i}]\nkeys = ["{publicLine(k)}"]\n' for i, k in enumerate(others))
        bobFile = self.keysFile("".join(f"{publicLine(k)}\n" for k in others) + publicLine(self.bob) + "\n")
        path, ssh = self.load(bobFile, more)
        self.assertEqual(ssh.problems, (f"{path}:12: [users.bob] keys-file {bobFile!r}: not bob's: key "
                                        f"{fingerprint(others[0])} is o0's ([users.o0] keys); and 2 more",))
        mine = self.keysFile(publicLine(self.ops1) + "\n")
        path = writeTemp(self, SSH + LINE + f'[users.ops1]\nkeys = ["{publicLine(self.ops1)}"]\nkeys-file = "{mine}"\n')
        ssh2 = loadFile(path).ssh
        assert ssh2 is not None
        self.assertEqual(ssh2.problems, ())

    def test_sameKeyInTwoFiles(self) -> None:
        """A key in two people's keys files is neither's (whose it is cannot be told), said for each."""
        eve = newKey()
        bobFile = self.keysFile(f"{publicLine(self.bob)}\n{publicLine(eve)}\n")
        eveFile = self.keysFile(f"{publicLine(eve)}\n")
        path, ssh = self.load(bobFile, f'[users.eve]\nkeys-file = "{eveFile}"\n')
        self.assertEqual(KeyRing(ssh.users).people, {self.ops1.public().blob(): "ops1", self.bob.public().blob(): "bob"})
        self.assertEqual(ssh.problems, (
            f"{path}:12: [users.bob] keys-file {bobFile!r}: not bob's: key {fingerprint(eve)} is in the keys file of "
            "eve too: nobody's",
            f"{path}:14: [users.eve] keys-file {eveFile!r}: not eve's: key {fingerprint(eve)} is in the keys file of "
            "bob too: nobody's"))

    def test_copiedKeyStaysWithItsHolder(self) -> None:
        """At a reload, a key copied into another person's keys file stays with whoever had it in the running configuration (eve cannot take bob's key away by pasting it into her file); the copier is told."""
        eve = newKey()
        bobFile = self.keysFile(f"{publicLine(self.bob)}\n")
        eveFile = self.keysFile(f"{publicLine(eve)}\n{publicLine(self.bob)}\n")
        running = (UserSpec("ops1", (publicLine(self.ops1),)), UserSpec("bob", (publicLine(self.bob),)),
                   UserSpec("eve", (publicLine(eve),)))
        path = writeTemp(self, SSH + LINE + f'[users.ops1]\nkeys = ["{publicLine(self.ops1)}"]\n'
                                f'[users.bob]\nkeys-file = "{bobFile}"\n[users.eve]\nkeys-file = "{eveFile}"\n')
        ssh = loadFile(path, held=running).ssh
        assert ssh is not None
        self.assertEqual(KeyRing(ssh.users).people, {self.ops1.public().blob(): "ops1", self.bob.public().blob(): "bob",
                                                     eve.public().blob(): "eve"})
        self.assertEqual(ssh.problems, (
            f"{path}:14: [users.eve] keys-file {eveFile!r}: not eve's: key {fingerprint(self.bob)} is bob's (theirs "
            "before this reload; in their keys file too)",))
        # Neither had it before (the start): nobody's, as test_sameKeyInTwoFiles.
        fresh = loadFile(path, held=running[:1]).ssh
        assert fresh is not None
        self.assertNotIn(self.bob.public().blob(), KeyRing(fresh.users).people)

    def test_nobodyLeftIsNoRefusal(self) -> None:
        """Every person's keys file broken: nobody may log in, said; the file is not refused (its people broke it, not its writer)."""
        path = writeTemp(self, SSH + LINE + f'[users.ops1]\nkeys-file = "{os.path.abspath(self.mktemp())}"\n')
        ssh = loadFile(path).ssh
        assert ssh is not None
        self.assertEqual((len(ssh.problems), ssh.users[0].keys), (1, ()))

    def test_fileItselfStillRefused(self) -> None:
        """The keys written in the configuration file itself are its writer's: a bad one, or one in two tables, still refuses it."""
        key = publicLine(newKey())
        for users in ('[users.x]\nkeys = ["restrict ' + key + '"]\n', f'[users.x]\nkeys = "{key}"\n[users.y]\nkeys = "{key}"\n'):
            self.assertRaises(ConfigError, loadFile, writeTemp(self, SSH + LINE + '[users.ops1]\n' + users))

    def test_checkWarns(self) -> None:
        """--check says each problem as a warning, not an error: an ExecStartPre= check does not keep the gateway from starting either."""
        bobFile = os.path.abspath(self.mktemp())
        path, ssh = self.load(bobFile)
        loaded = loadFile(path)
        errors, warnings = checkLines(loaded.lines, None, ssh)
        self.assertEqual([w for w in warnings if "keys-file" in w], list(ssh.problems))
        self.assertNotIn("keys-file", " ".join(errors))


class SaidTests(TestCase):
    def spec(self, problems: tuple[str, ...]) -> SSHSpec:
        return SSHSpec(parseSSHListener("tcp:0:interface=127.0.0.1"), self.mktemp(),
                       (UserSpec("ops1", (publicLine(newKey()),)),), problems)

    def test_saidAtStartAndReload(self) -> None:
        """The start and a reload say each problem as a warning, and apply the rest."""
        events = LogEvents(self)
        service = startGateway(self, ptyLine(startedPty(self)), ssh=self.spec(("f:3: bob has no keys from it",)))
        said = [e["problem"] for e in events.at(LogLevel.warn) if "problem" in e]
        self.assertEqual(said, ["f:3: bob has no keys from it"])
        assert service.ssh is not None
        new = attrs.evolve(self.spec(("f:3: bob's key is ops1's",)), listener=service.ssh.listener)
        service.reloadUsers(new)
        said = [e["problem"] for e in events.at(LogLevel.warn) if "problem" in e]
        self.assertEqual(said, ["f:3: bob has no keys from it", "f:3: bob's key is ops1's"])
        self.assertEqual(service.ssh.users if service.ssh is not None else None, new.users)

    def test_reloadReadsWithTheRunningPeople(self) -> None:
        """A reload reads the file with the running configuration's people, so that a key copied into another's keys file stays with its holder (test_copiedKeyStaysWithItsHolder)."""
        asked: list[tuple[UserSpec, ...]] = []

        def loadFile(path: str, shards: object = None, held: tuple[UserSpec, ...] = ()) -> None:
            asked.append(held)
            raise ConfigError("stop here")

        self.patch(filereload, "loadFile", loadFile)
        service = process.TwistdGatewayService([], reactor=MemoryReactorClock(), ssh=self.spec(()))
        service.configPath = self.mktemp()
        self.successResultOf(service.reloadFile())
        assert service.ssh is not None
        self.assertEqual(asked, [service.ssh.users])

