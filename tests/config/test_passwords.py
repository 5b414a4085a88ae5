"""
Password hashes ([users.NAME] password): scrypt as made here, SHA-512-crypt
($6$, conserver's passwd file, mkpasswd, openssl passwd -6) checked by our
own code against its specification's and OpenSSL's vectors; what is refused
is said naming the file's line and the key, quoting none of the hash; the
hash maker reads the password, never takes it as an argument.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from serialgw import hashpw
from serialgw.config import passwords
from serialgw.config.file import loadFile
from serialgw.config.specs import ConfigError
from tests.realio import writeTemp

# Ulrich Drepper's specification's test vectors (SHA-512), then `openssl passwd -6 -salt SALT PASSWORD` (OpenSSL 3.0).
VECTORS = [
    (b"Hello world!", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"),
    (b"Hello world!", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHB"
                      "y/YTBmSK6H9qs/y3RnOaw5v."),
    (b"x", "$6$q$MVEmDzxx2QOPsSkxtj/QCMK0nBLvVNGhF/r7klFgnueStsZ8vP3exTitpiUjptH7uHA8ochjGV.vFI4PHs5Qk."),
    # 108 bytes of UTF-8 (past the 64-byte blocks), a 16-character salt.
    (("pässwörd-" * 12).encode(), "$6$Ab.Cd/09xyzXYZ12$P/YxfUT0z0UC1eIDPMZj4epvXSoynsfZDr/QEcnRgSfkq1U34bHU8qugG/uJoU9a"
                                 "lLHCKmPtnDr/.vLd.QSf.1"),
]
SSH = '[ssh]\nlisten = "tcp:2222:interface=127.0.0.1"\nhost-key = "/tmp/hk"\n'
LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nwrite = ["ops1"]\n'


class HashTests(SynchronousTestCase):
    def test_sha512CryptVectors(self) -> None:
        """Each vector's password is right, one byte off is wrong; the whole text is made again exactly."""
        for password, text in VECTORS:
            hashed = passwords.parse(text)
            self.assertEqual((hashed.verify(password), hashed.verify(password + b"!")), (True, False), text)
            salt = text.split("$")[-2]
            rounds = hashed.rounds if "rounds=" in text else None
            self.assertEqual(passwords.sha512CryptText(password, salt, rounds), text)

    def test_longPasswordNotHeldSquared(self) -> None:
        """
        SHA-512-crypt hashes the password once per byte of it: fed so, not
        made (password * n held n * n bytes: 64 MB for 8000; 937 MB for a
        30000-byte password sent over SSH, seen live).
        """
        import tracemalloc

        password = b"x" * 8000
        tracemalloc.start()
        try:
            passwords.sha512Crypt(password, b"saltsalt", 1000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 1024 * 1024)

    def test_roundsLetTheInterpreterGo(self) -> None:
        """
        The rounds (Python's) let the interpreter go every SHA_YIELD_EVERY
        rounds: run in a thread they held the gateway's thread up to 5 ms
        each time it woke (an SSH client's wrong passwords in a row, 12
        sources: every line's echo round trip 0.29 ms -> 10.6 ms, seen live).
        """
        slept: list[float] = []

        class Time:
            @staticmethod
            def sleep(seconds: float) -> None:
                slept.append(seconds)

        self.patch(passwords, "time", Time)
        text = VECTORS[1][1]
        self.assertTrue(passwords.parse(text).verify(b"Hello world!"))
        self.assertEqual(slept, [0] * -(-10000 // passwords.SHA_YIELD_EVERY))

    def test_scryptMadeAndChecked(self) -> None:
        """A made hash is self-describing ($scrypt$ln=15,r=8,p=1$SALT$HASH), salted anew each time, and checks its password only."""
        made = passwords.make(b"hunter2")
        self.assertRegex(made, r"^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")
        hashed = passwords.parse(made)
        self.assertEqual((hashed.verify(b"hunter2"), hashed.verify(b"hunter3")), (True, False))
        self.assertNotEqual(passwords.make(b"hunter2", ln=4), passwords.make(b"hunter2", ln=4))
        self.assertEqual(hashed.describe(), "scrypt ln=15,r=8,p=1")

    def test_refusedSaid(self) -> None:
        """What is not a hash taken here is said by kind, quoting none of it beyond its prefix."""
        for text, said in [
            ("hunter2", "not a password hash (it does not start with '$'): a password in clear is not taken; "
                        + passwords.MAKE_ONE),
            ("$y$j9T$abc$def", "a yescrypt hash ($y$...): not taken here (scrypt and SHA-512-crypt are); "
                               + passwords.MAKE_ONE),
            ("$2b$12$" + "a" * 53, "a bcrypt hash ($2b$...): not taken here (scrypt and SHA-512-crypt are); "
                                   + passwords.MAKE_ONE),
            ("$6$salt$short", "a SHA-512-crypt hash not of the form $6$SALT$HASH or $6$rounds=N$SALT$HASH (86 "
                              "characters of hash)"),
            ("$6$rounds=999999999$salt$" + "a" * 86, "a SHA-512-crypt hash ($6$) of 999999999 rounds: taken here from "
                                                      f"1000 to 100000 (each login attempt costs them); {passwords.MAKE_ONE}"),
            ("$scrypt$ln=22,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43, "an scrypt hash with ln=22,r=8,p=1: over 256 MiB or 64 "
                                                             "times the cost of ln=15,r=8,p=1 a login attempt; "
                                                             + passwords.MAKE_ONE),
            ("$scrypt$ln=15,r=8,p=1$c2FsdA$" + "A" * 43, "an scrypt hash with a salt of 4 byte(s) and a hash of 32: "
                                                        "expected at least 8 and 16"),
            ("$scrypt$N=32768$x$y", "an scrypt hash not of the form $scrypt$ln=N,r=N,p=N$SALT$HASH (base64, no padding)"),
        ]:
            with self.assertRaises(passwords.BadHash, msg=text) as e:
                passwords.parse(text)
            self.assertEqual(str(e.exception), said)


class ConfigTests(SynchronousTestCase):
    def test_minimalConfig(self) -> None:
        """[ssh] listen, a line (device, listen), a person with a password alone (no keys): loaded, every optional setting left out."""
        made = passwords.make(b"hunter2", ln=4)
        path = writeTemp(self, '[ssh]\nlisten = "tcp:2222"\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                               f'[users.ops1]\npassword = "{made}"\n')
        ssh = loadFile(path).ssh
        assert ssh is not None
        self.assertEqual([(u.name, u.keys, u.password) for u in ssh.users], [("ops1", (), made)])

    def test_badHashNamesTheKey(self) -> None:
        """A hash not taken refuses the file at its line, naming [users.NAME] password, quoting no hash."""
        for value, said in [
            ('"$2b$12$' + "a" * 53 + '"', "a bcrypt hash ($2b$...): not taken here"),
            ('"hunter2"', "not a password hash (it does not start with '$'): a password in clear is not taken"),
            ("12345", "expected a password hash in a string, not a int"),
        ]:
            path = writeTemp(self, SSH + LINE + f"[users.ops1]\npassword = {value}\n")
            with self.assertRaises(ConfigError) as e:
                loadFile(path)
            self.assertTrue(str(e.exception).startswith(f"{path}:9: [users.ops1] password: {said}"), str(e.exception))
            self.assertNotIn("aaaa", str(e.exception))
            self.assertNotIn("hunter2", str(e.exception))

    def test_conserversHashTaken(self) -> None:
        """A $6$ hash (conserver's passwd file, mkpasswd -m sha-512) is taken as it is."""
        path = writeTemp(self, SSH + LINE + f'[users.ops1]\npassword = "{VECTORS[0][1]}"\n')
        ssh = loadFile(path).ssh
        assert ssh is not None
        self.assertEqual(ssh.users[0].password, VECTORS[0][1])


class HashpwTests(SynchronousTestCase):
    def hashpw(self, argv: list[str], stdin: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = hashpw.main(argv, io.StringIO(stdin), out, err)
        return code, out.getvalue(), err.getvalue()

    def test_hashOfALineOfStdin(self) -> None:
        """One line of stdin (its newline not part of it): one scrypt hash of it on stdout, exit 0."""
        code, out, err = self.hashpw([], "hunter2\nmore\n")
        self.assertEqual((code, err), (0, ""))
        self.assertTrue(passwords.parse(out.strip()).verify(b"hunter2"))
        self.assertTrue(out.endswith("\n"))

    def test_noArgumentsNorEmpty(self) -> None:
        """A password given as an argument is refused (exit 2, said); an empty one too (exit 1); nothing printed."""
        code, out, err = self.hashpw(["hunter2"], "")
        self.assertEqual((code, out), (2, ""))
        self.assertTrue(err.startswith("serialgw.hashpw: takes no arguments"), err)
        self.assertEqual(self.hashpw([], "\n"), (1, "", "serialgw.hashpw: an empty password: no hash made\n"))

    def test_longestPasswordIsOneChecked(self) -> None:
        """A password of more than MOST_PASSWORD bytes of UTF-8 (a login refuses it unhashed) gets no hash; one of that many does."""
        most = passwords.MOST_PASSWORD
        self.assertEqual(self.hashpw([], "\u00e9" * (most // 2) + "p\n"),
                         (1, "", f"serialgw.hashpw: a password of more than {most} bytes (UTF-8): no hash made\n"))
        code, out, err = self.hashpw([], "\u00e9" * (most // 2) + "\n")
        self.assertEqual((code, err, passwords.parse(out.strip()).verify(("\u00e9" * (most // 2)).encode())), (0, "", True))

    def test_asAModule(self) -> None:
        """python -m serialgw.hashpw with stdin a pipe prints a hash its password checks against."""
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
        done = subprocess.run([sys.executable, "-m", "serialgw.hashpw"], input=b"s3cret\n", capture_output=True,
                              timeout=60, check=False, env=env)
        self.assertEqual((done.returncode, done.stderr), (0, b""))
        self.assertTrue(passwords.parse(done.stdout.decode().strip()).verify(b"s3cret"))

    def test_bytesNotUTF8HashedAsTyped(self) -> None:
        """
        A password whose bytes are no UTF-8 (a Latin-1 terminal's) is hashed
        as those bytes, the ones an SSH client sends, under the C locale too:
        it was a traceback (UnicodeEncodeError: surrogates not allowed).
        """
        code, out, err = self.hashpw([], "\udcff\udcfepw\n")
        self.assertEqual((code, err, passwords.parse(out.strip()).verify(b"\xff\xfepw")), (0, "", True))
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""), LC_ALL="C")
        env.pop("PYTHONIOENCODING", None)
        done = subprocess.run([sys.executable, "-m", "serialgw.hashpw"], input=b"\xe9t\xe9\n", capture_output=True,
                              timeout=60, check=False, env=env)
        self.assertEqual((done.returncode, done.stderr), (0, b""))
        self.assertTrue(passwords.parse(done.stdout.decode().strip()).verify(b"\xe9t\xe9"))


class CheckTests(SynchronousTestCase):
    def test_checkSaysWhoHasAPassword(self) -> None:
        """--check says who may log in with a password and their hash's kind, never a hash."""
        from tests.clients.test_ssh import newKey, publicLine
        from tests.config.test_check import checked

        made = passwords.make(b"hunter2", ln=4)
        keys = os.path.abspath(self.mktemp())
        os.mkdir(keys)
        path = writeTemp(self, f'[ssh]\nlisten = "tcp:2222:interface=127.0.0.1"\nhost-key = "{keys}/hk"\n'
                               '[lines.a]\ndevice = "/dev/null"\nlisten = "raw+tcp:4001:interface=127.0.0.1"\n'
                               f'[users.ops1]\npassword = "{made}"\n[users.bob]\npassword = "{VECTORS[0][1]}"\n'
                               f'[users.carol]\nkeys = ["{publicLine(newKey())}"]\n')
        code, out, err = checked("--config", path)
        self.assertEqual((code, out.splitlines()[1:]), (0, [
            "serialgw: ssh: password logins for 2 of 3 people: ops1 (scrypt ln=4,r=8,p=1), bob (sha512-crypt rounds=5000)"]))
        self.assertNotIn(made.split("$")[-1], out + err)
