"""
--authorized-keys and --readonly-keys (single-line mode) are read at the
start (and by --check) as a reload reads keys files: in threads of their
own, for 5 s at most, so that a file on a hung file system fails the start,
said, instead of hanging it for ever.
"""

from __future__ import annotations

import threading

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config import sshkeys
from tests.clients.test_ssh import newKey, publicLine
from tests.realio import writeTemp


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.exitOnError = False
    options.parseOptions(list(args))
    return options


class HungKeysFileAtStartTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.release = threading.Event()
        self.addCleanup(self.release.set)
        self.hung: set[str] = set()
        self.onMainThread: list[str] = []
        real = sshkeys.openRegular

        def openRegular(path: str) -> int:
            if threading.current_thread() is threading.main_thread():
                # (Where the start read it: not made to hang, which would hang the test too.)
                self.onMainThread.append(path)
            elif path in self.hung:
                self.release.wait()  # (a hung file system, until the test lets it go)
            return real(path)

        self.patch(sshkeys, "openRegular", openRegular)
        self.patch(sshkeys, "KEYS_FILES", sshkeys.KeysFiles())

    def test_hungFileFailsTheStart(self) -> None:
        """An --authorized-keys file whose open hangs (an NFS home that does not answer) fails the start after 5 s, saying so (it hung the start for ever, read on the gateway's thread)."""
        path = writeTemp(self, publicLine(newKey(), "ops1") + "\n")
        self.hung.add(path)
        # The wait's clock: begun (0), then 1000 s later, over.
        times = iter([0.0] + [1000.0] * 10)
        self.patch(sshkeys, "monotonic", lambda: next(times))
        e = self.assertRaises(usage.UsageError, parse, "--device", "/dev/null", "--ssh", "tcp:0",
                              "--authorized-keys", path)
        self.assertEqual((str(e), self.onMainThread),
                         (f"keys file {path!r} not read within 5 s (a hung file system?)", []))

    def test_readOffTheMainThread(self) -> None:
        """Files that answer are read in those threads too, both options' at once; their people are the line's."""
        writers = writeTemp(self, publicLine(newKey(), "ops1") + "\n")
        readers = writeTemp(self, publicLine(newKey(), "nagios") + "\n")
        options = parse("--device", "/dev/null", "--ssh", "tcp:0", "--authorized-keys", writers,
                        "--readonly-keys", readers)
        self.assertEqual((options["lines"][0].rights.write, options["lines"][0].rights.read, self.onMainThread),
                         (("ops1",), ("nagios",), []))
