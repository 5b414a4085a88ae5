"""
The "connect with:" hint logged for each listener: a command a user can
paste into a shell, whatever the socket's name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess

from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.listen import _connectHint
from serialgw.config.listenerspecs import Protocol
from tests.shortpaths import shortDirectory

ODD = b"a b,c:d!e[f]{g}\"h'i\\j\n\x1b[2J\xff.sock"


class HintTests(SynchronousTestCase):
    def test_telnetOnUnixSocket(self) -> None:
        """A telnet listener on a unix socket: a telnet client through a socat bridge (a plain socat showed the telnet negotiation as junk)."""
        self.assertEqual(_connectHint(Protocol.TELNET, UNIXAddress(b"/run/serialgw/rack4.sock")),
                         "socat TCP-LISTEN:2323,bind=127.0.0.1,reuseaddr UNIX-CONNECT:/run/serialgw/rack4.sock"
                         " & telnet 127.0.0.1 2323")
        self.assertEqual(_connectHint(Protocol.TELNET, UNIXAddress(b"\0rack4")),
                         "socat TCP-LISTEN:2323,bind=127.0.0.1,reuseaddr ABSTRACT-CONNECT:rack4 & telnet 127.0.0.1 2323")

    def test_rawOnUnixSocket(self) -> None:
        """A raw listener on a unix socket: socat straight to it, as before."""
        self.assertEqual(_connectHint(Protocol.RAW, UNIXAddress(b"/run/serialgw/rack4.sock")),
                         "socat -,raw,echo=0 UNIX-CONNECT:/run/serialgw/rack4.sock")
        self.assertEqual(_connectHint(Protocol.RAW, IPv4Address("TCP", "0.0.0.0", 4444)), "nc localhost 4444")
        self.assertEqual(_connectHint(Protocol.TELNET, IPv4Address("TCP", "127.0.0.1", 4444)), "telnet 127.0.0.1 4444")

    def test_oddNameQuoted(self) -> None:
        """A name with spaces, socat's , : ! and control characters (a newline, an escape sequence, a byte not UTF-8) is escaped for socat and quoted for the shell: no control character reaches the log, and nothing was quoted before (a name not UTF-8 raised)."""
        hint = _connectHint(Protocol.RAW, UNIXAddress(b"/tmp/" + ODD))
        self.assertEqual(hint, "socat -,raw,echo=0 $'UNIX-CONNECT:/tmp/a b\\\\,c\\\\:d\\\\!e\\\\[f\\\\]\\\\{g\\\\}\\\\\"h"
                               "\\\\\\'i\\\\\\\\j\\x0a\\x1b\\\\[2J\\xff.sock'")
        assert hint is not None
        self.assertTrue(hint.isprintable())

    def test_oddNamePastes(self) -> None:
        """The hint for an odd name, run by bash, reaches that socket (socat given stdin that is no terminal: without raw,echo=0)."""
        socat = shutil.which("socat")
        bash = shutil.which("bash")
        if socat is None or bash is None:
            raise self.skipTest("needs socat and bash")
        # (Trial's own temporary directory is too long a path for a unix socket.)
        directory = os.fsencode(shortDirectory(self, "sg-hint-"))
        path = directory + b"/" + ODD
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(path)
        server.listen(1)
        server.settimeout(30)
        hint = _connectHint(Protocol.RAW, UNIXAddress(path))
        assert hint is not None
        peer = subprocess.Popen([bash, "-c", hint.replace("-,raw,echo=0", "-") + " <<< hello"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        self.addCleanup(self.reap, peer)
        connection, _ = server.accept()
        self.addCleanup(connection.close)
        connection.settimeout(30)
        self.assertEqual(connection.recv(100), b"hello\n")
        _, stderr = peer.communicate(timeout=30)
        self.assertEqual((peer.returncode, stderr), (0, b""))

    def reap(self, peer: subprocess.Popen[bytes]) -> None:
        """The peer ended and collected, its pipe closed, whatever the test did (a failure left it running, never waited for)."""
        if peer.poll() is None:
            os.killpg(peer.pid, signal.SIGKILL)  # (bash and the socat it started)
        peer.communicate()
