"""
--shard I/N: which process serves which line (a hash of its name, or its
shard = K key), and each process's own copy of the listeners a whole
process has one of.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadFile
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import WatchAllSpec
from serialgw.config.people import SSHSpec
from serialgw.config.shard import (
    MAX_SHARDS,
    Shard,
    jumpHash,
    ownListeners,
    parseShard,
    selectLines,
    shardOf,
    shiftListener,
)
from serialgw.config.specs import ConfigError, DeviceSpec, LineConfig
from tests.realio import REPO

NAMES = ["rack4-web1", "rack4-web2", "rack4-db1", "rack4-db2", "vm100", "vm101", "vm102", "ttyS0", "ttyUSB0", "ttyUSB1"]


def lines(*names: str) -> list[LineConfig]:
    return [LineConfig(name, DeviceSpec("tty", f"/dev/{name}"), listeners=(parseListener("0"),)) for name in names]


def write(case: SynchronousTestCase, text: str) -> str:
    path = os.path.abspath(case.mktemp())
    with open(path, "w") as f:
        f.write(text)
    return path


class ParseTests(SynchronousTestCase):
    def test_valid(self) -> None:
        """I/N with 0 <= I < N <= MAX_SHARDS, spaces around the numbers allowed."""
        self.assertEqual(parseShard("0/2"), Shard(0, 2))
        self.assertEqual(parseShard(" 1 / 2 "), Shard(1, 2))
        self.assertEqual(parseShard("0/1"), Shard(0, 1))
        self.assertEqual(parseShard(f"{MAX_SHARDS - 1}/{MAX_SHARDS}"), Shard(MAX_SHARDS - 1, MAX_SHARDS))
        self.assertEqual(str(Shard(1, 2)), "1/2")

    def test_errors(self) -> None:
        """Each bad --shard is refused with a message quoting it and saying what is wanted."""
        cases = {
            "3/2": "--shard '3/2': process 3 of 2: the processes are numbered 0 to 1",
            "2/2": "--shard '2/2': process 2 of 2: the processes are numbered 0 to 1",
            "0/0": "--shard '0/0': the number of processes must be 1 to 1024, not 0",
            "0/1025": "--shard '0/1025': the number of processes must be 1 to 1024, not 1025",
            "0/99999999999999999999": "--shard '0/99999999999999999999': the number of processes must be 1 to 1024, "
                                      "not 99999999999999999999",
            "-1/2": "--shard '-1/2': expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
            "1": "--shard '1': expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
            "1/2/3": "--shard '1/2/3': expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
            "a/b": "--shard 'a/b': expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
            "": "--shard '': expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
            "\u0661/2": "--shard '\u0661/2': expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
            "0-2": "--shard '0-2': expected I/N, this process's number (from 0) of N processes, e.g. 0/2 (the "
                   "instance name as systemd's %i passes it: the unit's command line takes %I, which makes it 0/2)",
        }
        for text, message in cases.items():
            with self.assertRaises(ConfigError, msg=text) as caught:
                parseShard(text)
            self.assertEqual(str(caught.exception), message)


class AssignmentTests(SynchronousTestCase):
    def test_exact(self) -> None:
        """The process of each line, by name, for 1, 2, 3 and 4 processes: fixed (a change would move lines in every farm)."""
        expected = {
            1: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            2: [1, 1, 0, 0, 0, 1, 0, 1, 1, 1],
            3: [2, 1, 2, 2, 0, 1, 0, 2, 1, 1],
            4: [2, 1, 2, 2, 3, 1, 0, 3, 1, 1],
        }
        for count, shards in expected.items():
            self.assertEqual([shardOf(name, count, {}) for name in NAMES], shards, count)
        self.assertEqual([line.name for line in selectLines(lines(*NAMES), Shard(0, 2), {})],
                         ["rack4-db1", "rack4-db2", "vm100", "vm102"])
        self.assertEqual([line.name for line in selectLines(lines(*NAMES), Shard(1, 2), {})],
                         ["rack4-web1", "rack4-web2", "vm101", "ttyS0", "ttyUSB0", "ttyUSB1"])

    def test_sameInAnotherInterpreter(self) -> None:
        """Another Python process, with another hash seed, assigns the same lines to the same processes."""
        script = ("import sys; from serialgw.config.shard import shardOf; "
                  "print(' '.join(str(shardOf(n, 5, {})) for n in sys.argv[1:]))")
        out = subprocess.run([sys.executable, "-c", script, *NAMES], cwd=REPO, capture_output=True, check=True,
                             env=dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=REPO)).stdout
        self.assertEqual(out.decode().split(), [str(shardOf(n, 5, {})) for n in NAMES])

    def test_everyLineOnce(self) -> None:
        """The processes' shares are disjoint and together every line of the file, in the file's order."""
        farm = lines(*(f"line{i}" for i in range(300)))
        for count in (1, 2, 3, 7):
            shares = [selectLines(farm, Shard(i, count), {}) for i in range(count)]
            self.assertEqual(sorted((line.name for share in shares for line in share), key=lambda n: int(n[4:])),
                             [line.name for line in farm])
            for share in shares:
                self.assertEqual(share, sorted(share, key=farm.index))
                # 300 lines: no process is left with nothing, nor with all.
                self.assertTrue(0 < len(share) < 300 or count == 1, (count, len(share)))

    def test_stableWhenLinesComeAndGo(self) -> None:
        """Adding or removing a line moves no other line to another process."""
        farm = [f"line{i}" for i in range(200)]
        for count in (2, 3, 8):
            before = {name: shardOf(name, count, {}) for name in farm}
            grown = {name: shardOf(name, count, {}) for name in ["rack9-new", *farm, "zzz"]}
            shrunk = {name: shardOf(name, count, {}) for name in farm[::2]}
            self.assertEqual({n: grown[n] for n in farm}, before)
            self.assertEqual(shrunk, {n: before[n] for n in farm[::2]})

    def test_growingMovesOnlyToTheNewProcess(self) -> None:
        """From N to N+1 processes a line either stays where it was or goes to the new process N."""
        farm = [f"line{i}" for i in range(1000)]
        for count in (1, 2, 3, 5):
            moved = [n for n in farm if shardOf(n, count + 1, {}) != shardOf(n, count, {})]
            self.assertEqual({shardOf(n, count + 1, {}) for n in moved}, {count})
            # About 1/(N+1) of them: the new process's fair share, no more.
            self.assertTrue(0.6 / (count + 1) < len(moved) / 1000 < 1.4 / (count + 1), (count, len(moved)))

    def test_jumpHash(self) -> None:
        """The jump hash gives the reference implementation's buckets (the vectors go-jump generated from the paper's C++)."""
        vectors = {
            0: [0] * 19,
            1: [0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17],
            0xDEADBEEF: [0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16],
            0x0DDC0FFEEBADF00D: [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15],
        }
        for key, buckets in vectors.items():
            self.assertEqual([jumpHash(key, n) for n in range(1, len(buckets) + 1)], buckets, hex(key))

    def test_pins(self) -> None:
        """A line's shard = K puts it in process K whatever its hash; the others stay where their hash puts them."""
        pins = {"rack4-web1": 0, "vm100": 1}
        self.assertEqual([line.name for line in selectLines(lines(*NAMES), Shard(0, 2), pins)],
                         ["rack4-web1", "rack4-db1", "rack4-db2", "vm102"])
        self.assertEqual([line.name for line in selectLines(lines(*NAMES), Shard(1, 2), pins)],
                         ["rack4-web2", "vm100", "vm101", "ttyS0", "ttyUSB0", "ttyUSB1"])


class FileTests(SynchronousTestCase):
    FARM = ('[defaults]\nlock = false\n\n[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\n\n'
            '[lines.b]\ndevice = "/dev/zero"\nlisten = "4002"\nshard = {pin}\n')

    def test_pinRead(self) -> None:
        """shard = K in a line's table is read into the file's pins; the line's settings are as without it."""
        loaded = loadFile(write(self, self.FARM.format(pin=1)), shards=2)
        self.assertEqual(loaded.pins, {"b": 1})
        self.assertEqual(loaded.lines, loadFile(write(self, self.FARM.replace("shard = {pin}\n", ""))).lines)

    def test_pinOutOfRange(self) -> None:
        """A pin past the processes --shard runs: an error naming the file, line and key; without --shard only its form counts."""
        path = write(self, self.FARM.format(pin=2))
        with self.assertRaises(ConfigError) as caught:
            loadFile(path, shards=2)
        self.assertEqual(str(caught.exception),
                         f"{path}:11: [lines.b] shard: 2, but --shard runs 2 process(es), numbered 0 to 1")
        self.assertEqual(loadFile(path).pins, {"b": 2})
        self.assertEqual(loadFile(path, shards=3).pins, {"b": 2})

    def test_pinPastIntLimit(self) -> None:
        """A pin (or any integer) of more than 4300 digits: a ConfigError naming the file and line, not tomllib's ValueError."""
        for pin in ("1" * 4301, "1_" * 4400 + "1"):
            path = write(self, self.FARM.format(pin=pin))
            with self.assertRaises(ConfigError) as caught:
                loadFile(path, shards=2)
            self.assertEqual(str(caught.exception), f"{path}:11: an integer of more than 4300 digits")
        path = write(self, self.FARM.format(pin=0).replace("lock = false", "lock = false\nmax-clients = " + "9" * 5000))
        with self.assertRaises(ConfigError) as caught:
            loadFile(path)
        self.assertEqual(str(caught.exception), f"{path}:3: an integer of more than 4300 digits")

    def test_badPins(self) -> None:
        """A pin that is no process number (negative, huge, text, true), or one in [defaults]: errors with file and line."""
        for pin, shown in (("-1", "-1"), ("1024", "1024"), ('"1"', "'1'"), ("true", "True"), ("1.0", "1.0")):
            path = write(self, self.FARM.format(pin=pin))
            with self.assertRaises(ConfigError, msg=pin) as caught:
                loadFile(path)
            self.assertEqual(str(caught.exception), f"{path}:11: [lines.b] shard: expected the number of a process "
                                                    f"of --shard I/N, 0 to 1023, not {shown}")
        path = write(self, self.FARM.format(pin=0).replace("lock = false", "lock = false\nshard = 0"))
        with self.assertRaises(ConfigError) as caught:
            loadFile(path)
        self.assertEqual(str(caught.exception), f"{path}:3: [defaults] shard: a line's own key (in [lines.NAME]): "
                                                "it gives that line to one process of --shard I/N")


class ShiftTests(SynchronousTestCase):
    def test_tcp(self) -> None:
        """A TCP port becomes PORT+I (port 0 stays 0); the interface, options and protocol stay."""
        cases = {
            "8440": ("tcp:8441", "tcp:8441"),
            "tcp:8440:interface=127.0.0.1": ("tcp:8441:interface=127.0.0.1", "tcp:8441:interface=127.0.0.1"),
            "tcp6:port=8440:interface=\\:\\:1": ("tcp6:port=8441:interface=\\:\\:1", "tcp6:port=8441:interface=\\:\\:1"),
            "raw,policy=disconnect+4400": ("tcp:4401", "raw,policy=disconnect+tcp:4401"),
            "raw,allow=::1/128+4400": ("tcp:4401", "raw,allow=::1/128+tcp:4401"),
            "tcp:0:interface=127.0.0.1": ("tcp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"),
            "raw+tcp:interface=127.0.0.1:port=8440": ("tcp:interface=127.0.0.1:port=8441",
                                                      "raw+tcp:interface=127.0.0.1:port=8441"),
        }
        for text, (endpoint, shown) in cases.items():
            spec = shiftListener(parseListener(text), 1, "--status")
            self.assertEqual((spec.endpoint, spec.text), (endpoint, shown), text)
            self.assertEqual((spec.host, spec.port), (parseListener(shown).host, parseListener(shown).port), text)
            self.assertEqual(shiftListener(parseListener(text), 0, "--status").endpoint, parseListener(text).endpoint)
        qemu = shiftListener(parseListener("telnet::4400,server,nowait"), 3, "watch-all listener")
        self.assertEqual((qemu.endpoint, qemu.port), ("tcp:4403", 4403))

    def test_unix(self) -> None:
        """A unix socket becomes PATH.I for every process (abstract names too), its mode kept."""
        spec = shiftListener(parseListener("unix:/run/serialgw/status.sock"), 0, "--status")
        self.assertEqual((spec.endpoint, spec.path), ("unix:/run/serialgw/status.sock.0:mode=600",
                                                      "/run/serialgw/status.sock.0"))
        spec = shiftListener(parseListener("unix:/run/s.sock:mode=660"), 2, "--status")
        self.assertEqual((spec.endpoint, spec.path), ("unix:/run/s.sock.2:mode=660", "/run/s.sock.2"))
        spec = shiftListener(parseListener("raw+unix:address=/run/s.sock:mode=660"), 1, "--status")
        self.assertEqual((spec.endpoint, spec.text, spec.path),
                         ("unix:address=/run/s.sock.1:mode=660", "raw+unix:address=/run/s.sock.1:mode=660", "/run/s.sock.1"))
        spec = shiftListener(parseListener("unix:/run/a\\:b"), 1, "--status")
        self.assertEqual((spec.endpoint, spec.path), ("unix:/run/a\\:b.1:mode=600", "/run/a:b.1"))
        spec = shiftListener(parseListener("unix:\0rack"), 1, "--status")
        self.assertEqual((spec.endpoint, spec.path), ("unix:\0rack.1:mode=600:lockfile=0", "\0rack.1"))

    def test_refused(self) -> None:
        """A port past 65535 or a unix socket name past sun_path for the last process, or what cannot be told apart per process: errors naming it."""
        with self.assertRaises(ConfigError) as caught:
            shiftListener(parseListener("tcp:65535"), 1, "--status")
        self.assertEqual(str(caught.exception), "--status 'tcp:65535': process 1 would take port 65536, past 65535: "
                                                "give a lower port (process I listens on PORT+I)")
        # sun_path: 107 bytes and a NUL for a file's name, 108 for an abstract one.
        path = "/run/" + "s" * 99
        self.assertEqual(shiftListener(parseListener(f"unix:{path}"), 99, "--status").path, f"{path}.99")
        with self.assertRaises(ConfigError) as caught:
            shiftListener(parseListener(f"unix:{path}"), 100, "--status")
        self.assertEqual(str(caught.exception), f"--status 'unix:{path}': process 100 would listen on "
                                                f"'{path}.100', 108 bytes, past the 107 of a unix socket name: give a "
                                                "shorter path (process I listens on PATH.I)")
        name = "\0" + "a" * 103
        self.assertEqual(shiftListener(parseListener(f"unix:{name}"), 999, "watch-all listener").path, f"{name}.999")
        with self.assertRaises(ConfigError) as caught:
            shiftListener(parseListener(f"unix:{name}"), 1000, "watch-all listener")
        self.assertEqual(str(caught.exception), f"watch-all listener {'unix:' + name!r}: process 1000 "
                                                f"would listen on '@{'a' * 103}.1000', 109 bytes, past the 108 of a "
                                                "unix socket name: give a shorter path (process I listens on PATH.I)")
        with self.assertRaises(ConfigError) as caught:
            shiftListener(parseListener("systemd:domain=INET:index=0"), 1, "the SSH listener")
        self.assertEqual(str(caught.exception), "the SSH listener 'systemd:domain=INET:index=0': with --shard every "
                                                "process needs one of its own: a tcp: or tcp6: port (process I "
                                                "listens on PORT+I) or a unix: socket (PATH.I)")

    def test_own(self) -> None:
        """ownListeners shifts the status endpoint, the SSH listener and every watch-all listener; None stays None."""
        ssh = SSHSpec(parseListener("tcp:2222"), "/k")
        watch = WatchAllSpec((parseListener("4400"), parseListener("unix:/run/w")), ("rack4-*",))
        status, ownSSH, ownWatch = ownListeners(1, parseListener("8440"), ssh, watch)
        assert status is not None and ownSSH is not None and ownWatch is not None
        self.assertEqual((status.endpoint, ownSSH.listener.endpoint, ownSSH.hostKey),
                         ("tcp:8441", "tcp:2223", "/k"))
        self.assertEqual(([s.endpoint for s in ownWatch.listeners], ownWatch.lines),
                         (["tcp:4401", "unix:/run/w.1:mode=600"], ("rack4-*",)))
        self.assertEqual(ownListeners(1, None, None, None), (None, None, None))
