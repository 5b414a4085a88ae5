"""
The start reads its TLS files and SSH host key first by a thread, 5 s at
most (LOOK_WAIT): one on a file system that does not answer fails the start,
named, where it hung the start for ever on the gateway's thread.
"""

from __future__ import annotations

import os
import threading
import types
from typing import Any, Optional

from twisted.trial.unittest import TestCase

from serialgw.app import startlooks
from serialgw.app.binding import StartupError
from serialgw.app.service import GatewayService
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import SSHSpec
from tests.certs import Authority
from tests.real.test_logopen import LISTEN, Hung
from tests.realio import ptyLine, startedPty, startGateway

# Seconds the start's wait waits for its look to reach the file that hangs: a guard against a look that never does (the test then fails), not a bound on a loaded machine's thread.
LATE = 120.0


def waitsFirstFor(case: TestCase, reached: threading.Event) -> None:
    """
    The start's wait for its look (LOOK_WAIT s) begins only once C{reached}
    is set (the look's thread has got to the file that hangs): what the
    start says then does not hang on how soon a loaded machine ran that
    thread (the cert read first, and the key's open reached, within 0.3 s).
    """

    class Done(threading.Event):
        def wait(self, timeout: Optional[float] = None) -> bool:
            reached.wait(LATE)
            return super().wait(timeout)

    case.patch(startlooks, "threading", types.SimpleNamespace(Thread=threading.Thread, Event=Done))


class HungStartFileTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.patch(startlooks, "LOOK_WAIT", 0.3)
        ca = Authority(os.path.abspath(self.mktemp()))
        self.cert, self.key = ca.issue("gateway", dns="localhost")
        self.tls = f"tls:0:interface=127.0.0.1:cert={self.cert}:key={self.key}"

    def test_hungKeyFailsTheStart(self) -> None:
        """A TLS listener's key whose open hangs: the start fails after LOOK_WAIT s, naming the line, listener and file (it hung on the gateway's thread: the test fails naming the open made there)."""
        a = startedPty(self)
        hung = Hung(self, "open", self.key)
        waitsFirstFor(self, hung.entered)
        service = GatewayService([ptyLine(a, LISTEN, self.tls, name="a")])
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(e), f"line 'a': listener {self.tls!r}: key {self.key!r}: not read within 0.3 s (a file "
                                 "system that does not answer?); the start reads it on the gateway's thread")
        self.assertTrue(hung.entered.is_set())
        self.assertFalse(hung.released.is_set())
        self.assertEqual(service.lines, {})

    def test_hungHostKeyFailsTheStart(self) -> None:
        """The SSH host key's open hangs: the same, naming it."""
        a = startedPty(self)
        hostKey = os.path.abspath(self.mktemp())
        with open(hostKey, "w") as f:
            f.write("x")
        Hung(self, "open", hostKey)
        ssh = SSHSpec(parseSSHListener("tcp:0:interface=127.0.0.1"), hostKey)
        service = GatewayService([ptyLine(a, LISTEN, name="a")], ssh=ssh)
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(e), f"SSH host key {hostKey!r}: not read within 0.3 s (a file system that does not "
                                 "answer?); the start reads it on the gateway's thread")

    def test_lookNotBegunNamesTheFirstFile(self) -> None:
        """A look whose thread has not begun when the wait ends (a loaded machine) fails the start naming the first file, not a KeyError."""
        gate = threading.Event()
        self.addCleanup(gate.set)

        class Late(threading.Thread):
            def __init__(self, target: Any, **kwargs: Any) -> None:
                threading.Thread.__init__(self, target=lambda: (gate.wait(30), target()), **kwargs)

        self.patch(startlooks, "threading", types.SimpleNamespace(Thread=Late, Event=threading.Event))
        service = GatewayService([ptyLine(startedPty(self), LISTEN, self.tls, name="a")])
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(e), f"line 'a': listener {self.tls!r}: certificate {self.cert!r}: not read within 0.3 s (a "
                                 "file system that does not answer?); the start reads it on the gateway's thread")
        self.assertEqual(service.lines, {})

    def test_filesThatAnswer(self) -> None:
        """Files that answer (and one that is not there, a symlink, a directory: left to the reading that follows) start as before."""
        # (They answer: the look may take its time on a loaded machine, it is not hung.)
        self.patch(startlooks, "LOOK_WAIT", 60.0)
        a = startedPty(self)
        link = os.path.abspath(self.mktemp())
        os.symlink(self.cert, link)
        service = startGateway(self, ptyLine(a, LISTEN, f"tls:0:interface=127.0.0.1:cert={link}:key={self.key}",
                                             name="a"))
        self.assertEqual(list(service.lines), ["a"])
        missing = os.path.abspath(self.mktemp())
        e = self.assertRaises(StartupError, GatewayService([ptyLine(startedPty(self), LISTEN,
                                                                    f"tls:0:cert={missing}:key={self.key}", name="b")]
                                                           ).privilegedStartService)
        self.assertIn("No such file or directory", str(e))
