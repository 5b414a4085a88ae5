"""
What a reload costs in keys: each key is read (parsed) off the gateway's
thread, once; the key ring is made on it from what was read, reading no key
again; and a keys file that has not changed since it was last read is not
read again (its keys are taken as they were).  Before, 50 people with 1024
keys each held every line 1.2 s of the gateway's thread at each reload (the
key ring), and the reload's own thread spent 1.3 s more reading them all
again, taking the interpreter from the gateway's thread every 5 ms.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from twisted.conch.ssh import keys
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.sshauth import KeyRing
from serialgw.config import sshkeys
from serialgw.config.file import loadFile
from serialgw.config.people import SSHSpec
from tests.clients.test_ssh import newKey, publicLine
from tests.realio import writeTemp
from tests.shortpaths import writeShort

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nwrite = ["ops1"]\nread = ["*"]\n'
SSH = '[ssh]\nlisten = "tcp:2222:interface=127.0.0.1"\nhost-key = "/tmp/hk"\n'


class KeyReads:
    """Counts the keys read (conch's Key.fromString), or refuses to read any."""

    def __init__(self, test: SynchronousTestCase, refuse: bool = False) -> None:
        self.count = 0
        real = keys.Key.fromString

        def fromString(*args: Any, **kwargs: Any) -> keys.Key:
            if refuse:
                raise AssertionError("a key read")
            self.count += 1
            return real(*args, **kwargs)

        test.patch(keys.Key, "fromString", staticmethod(fromString))


class Farm:
    """A configuration with ops1 (in the file) and bob and carol (each a keys file)."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.test = test
        self.ops1, self.bob, self.carol, self.bob2 = newKey(), newKey(), newKey(), newKey()
        self.bobFile = writeShort(test, publicLine(self.bob, "bob@laptop") + "\n")
        self.carolFile = writeShort(test, publicLine(self.carol) + "\n")
        self.path = writeTemp(test, SSH + LINE + f'[users.ops1]\nkeys = ["{publicLine(self.ops1)}"]\n'
                                    f'[users.bob]\nkeys-file = "{self.bobFile}"\n'
                                    f'[users.carol]\nkeys-file = "{self.carolFile}"\n')

    def load(self) -> SSHSpec:
        ssh = loadFile(self.path).ssh
        assert ssh is not None
        return ssh

    def age(self, seconds: float = 10) -> None:
        """The keys files read as if changed C{seconds} before (as a person's file usually was, at a reload)."""
        self.test.patch(sshkeys, "wallClock", lambda: os.stat(self.bobFile).st_ctime_ns + int(seconds * 1e9))


class RingTests(SynchronousTestCase):
    def test_ringReadsNoKey(self) -> None:
        """The key ring of what loadFile read (the reload's thread) is made reading no key again: it was the gateway's thread's 1.2 s at each reload, 50 people of 1024 keys."""
        farm = Farm(self)
        ssh = farm.load()
        KeyReads(self, refuse=True)
        ring = KeyRing(ssh.users)
        self.assertEqual(ring.people, {farm.ops1.public().blob(): "ops1", farm.bob.public().blob(): "bob",
                                       farm.carol.public().blob(): "carol"})


class UnchangedFileTests(SynchronousTestCase):
    def test_unchangedFileNotReadAgain(self) -> None:
        """A keys file unchanged since the last reload (device, inode, size, times) is not read again: its keys are those read then; the file's own keys are read as before."""
        farm = Farm(self)
        farm.age()
        first = farm.load()
        reads = KeyReads(self)
        again = farm.load()
        self.assertEqual(reads.count, 1)  # ops1's, in the configuration itself
        self.assertEqual(again.users, first.users)
        self.assertEqual(KeyRing(again.users).people, KeyRing(first.users).people)

    def test_changedFileReadAgain(self) -> None:
        """A keys file rewritten in place, to the same size, is read again (its change time moved): the new key is bob's, the old one no longer."""
        farm = Farm(self)
        farm.age()
        farm.load()
        with open(farm.bobFile, "r+") as f:
            f.write(publicLine(farm.bob2, "bob@laptop") + "\n")
        farm.age()
        reads = KeyReads(self)
        ring = KeyRing(farm.load().users)
        self.assertEqual(reads.count, 2)  # ops1's and bob's new one
        self.assertEqual((ring.person(farm.bob2.public().blob()), ring.person(farm.bob.public().blob())), ("bob", None))

    def test_replacedFileReadAgain(self) -> None:
        """A keys file replaced (renamed over, a new inode), even with the same times and size, is read again."""
        farm = Farm(self)
        farm.age()
        farm.load()
        new = farm.bobFile + ".new"
        with open(new, "w") as f:
            f.write(publicLine(farm.bob2, "bob@laptop") + "\n")
        os.rename(new, farm.bobFile)
        farm.age()
        reads = KeyReads(self)
        ring = KeyRing(farm.load().users)
        self.assertEqual(reads.count, 2)
        self.assertEqual(ring.person(farm.bob2.public().blob()), "bob")

    def test_justWrittenFileReadAgain(self) -> None:
        """A keys file changed less than a second before it was read is read again at the next reload: a change in the same tick of the kernel's clock, to the same size, would leave its times and size as they were."""
        farm = Farm(self)
        farm.age(0.5)
        farm.load()
        reads = KeyReads(self)
        farm.load()
        self.assertEqual(reads.count, 3)

    def test_errorKeptToo(self) -> None:
        """What was wrong with an unchanged keys file is said again at each reload, without reading it again."""
        farm = Farm(self)
        with open(farm.bobFile, "a") as f:
            f.write("restrict " + publicLine(farm.bob2) + "\n")
        farm.age()
        first = farm.load()
        reads = KeyReads(self)
        again = farm.load()
        self.assertEqual(reads.count, 1)
        self.assertEqual(again.problems, first.problems)
        self.assertEqual(len(again.problems), 1)
        self.assertIn(f"{farm.bobFile}:2: expected a public key", again.problems[0])


class YieldTests(SynchronousTestCase):
    def test_readingLetsOthersRun(self) -> None:
        """Reading keys lets another thread run every YIELD_EVERY keys (time.sleep(0)): on a reload's thread it held the interpreter for the 5 ms switch interval while the gateway's thread waited, at each of its wake-ups."""
        sleeps: list[float] = []
        self.patch(sshkeys.time, "sleep", sleeps.append)
        line = publicLine(newKey())
        sshkeys.readPublicKeys("\n".join([line] * (2 * sshkeys.YIELD_EVERY + 1)), "keys")
        self.assertEqual(sleeps, [0, 0])


class HungFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.farm = Farm(self)
        self.release = threading.Event()
        self.opened: list[str] = []
        real = sshkeys.openRegular

        def openRegular(path: str) -> int:
            self.opened.append(path)
            if path == self.farm.bobFile:
                self.release.wait()  # (a hung file system, until the test lets it go)
            return real(path)

        self.patch(sshkeys, "openRegular", openRegular)
        self.addCleanup(self.release.set)

    def test_hungFileGivesNoKeys(self) -> None:
        """A keys file whose open hangs (a person's home on a hung NFS mount) gives its person no keys once the reload's time for keys files is over, said; the others' files and keys apply (it held the reload for ever, and every reload after it waited)."""
        # The reload's clock: its wait begins (0), waits for the one file it can read (carol's; its parse
        # takes no time), then finds its 5 s over.
        times = iter([0.0, 0.0, 0.0, 0.0, 1000.0])
        self.patch(sshkeys, "monotonic", lambda: next(times))
        ssh = self.farm.load()
        self.assertEqual([(u.name, len(u.keys)) for u in ssh.users], [("ops1", 1), ("bob", 0), ("carol", 1)])
        self.assertEqual(ssh.problems, (f"{self.farm.path}:12: [users.bob] keys-file: keys file {self.farm.bobFile!r} "
                                        "not read within 5 s (a hung file system?): bob has no keys from it",))

    def test_stillHungNotReadAgain(self) -> None:
        """At the next reload a keys file still hung is said so at once, no other reading of it started; once its reading is done, the reload after reads it."""
        times = iter([0.0, 0.0, 0.0, 0.0, 1000.0] + [2000.0] * 4)
        self.patch(sshkeys, "monotonic", lambda: next(times))
        self.farm.load()
        ssh = self.farm.load()
        self.assertEqual(self.opened.count(self.farm.bobFile), 1)
        self.assertEqual(ssh.problems, (f"{self.farm.path}:12: [users.bob] keys-file: keys file {self.farm.bobFile!r} "
                                        "still not read, since an earlier reload (a hung file system?): bob has no "
                                        "keys from it",))
        self.release.set()
        sshkeys.KEYS_FILES._hung[self.farm.bobFile].thread.join()
        self.patch(sshkeys, "monotonic", lambda: 0.0)
        ssh = self.farm.load()
        self.assertEqual(([(u.name, len(u.keys)) for u in ssh.users], ssh.problems),
                         ([("ops1", 1), ("bob", 1), ("carol", 1)], ()))


    def test_hungFileLeftAndBackNotReadAgain(self) -> None:
        """A keys file still hung, taken out of the configuration by a reload and put back by the next, is said still not read: no second reading of it begun (one was, each such reload leaving one more thread hung)."""
        clock = iter(range(0, 10**6, 1000))
        self.patch(sshkeys, "monotonic", lambda: float(next(clock)))
        files = sshkeys.KeysFiles()
        files.readAll({self.farm.bobFile})
        files.readAll(set())
        got = files.readAll({self.farm.bobFile})
        self.assertEqual(str(got[self.farm.bobFile]), f"keys file {self.farm.bobFile!r} still not read, since an "
                                                      "earlier reload (a hung file system?)")


class ParsedOnTheLoadersThreadTests(SynchronousTestCase):
    def test_oneThreadParses(self) -> None:
        """The keys files are fetched by threads of their own, but parsed on the reload's thread, one at a time: 50 threads parsing at once took the interpreter from the gateway's thread (p99 of a 1 ms tick's lateness 64-103 ms, 5 ms with one)."""
        farm = Farm(self)
        threads: list[str] = []
        real = sshkeys.readPublicKeys

        def readPublicKeys(*args: Any, **kwargs: Any) -> list[sshkeys.PublicKey]:
            threads.append(threading.current_thread().name)
            return real(*args, **kwargs)

        self.patch(sshkeys, "readPublicKeys", readPublicKeys)
        farm.load()
        self.assertEqual(threads, [threading.current_thread().name] * 2)
