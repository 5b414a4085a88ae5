"""
Two listeners on one port whose interfaces are one address spelt two ways
(localhost and 127.0.0.1, over tcp6: too, where Twisted binds the name
over IPv4; '::1' and '0:0:0:0:0:0:0:1'; '::ffff:127.0.0.1' and
127.0.0.1; '::0' and 127.0.0.1 beside it): the kernel refuses the second
bind, but they were compared as written, so --check said OK and the start
failed ("port 7641 is one of this gateway's own listeners already (--check
names which)"; seen live, probe29), a reload alike.  Now compared as bound.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.startchecks import asBound, lineClashes
from serialgw.config.file import loadFile
from tests.realio import writeTemp


class SpellingsTests(SynchronousTestCase):
    def clashes(self, *listen: str) -> list[tuple[str, str]]:
        listeners = ", ".join(f'"{text}"' for text in listen)
        path = writeTemp(self, f'[lines.a]\ndevice = "tcp:127.0.0.1:9"\nlisten = [{listeners}]\n')
        return lineClashes(loadFile(path).lines)

    def test_oneAddressTwoSpellings(self) -> None:
        """Each pair binds one address and port: a clash, said with both listeners as written."""
        for first, second in (("raw+tcp:7641:interface=127.0.0.1", "raw+tcp:7641:interface=localhost"),
                              ("raw+tcp:7641:interface=localhost", "raw+tcp:7641:interface=LOCALHOST"),
                              ("raw+tcp:7641:interface=127.0.0.1", "raw+tcp6:7641:interface=localhost"),
                              ("raw+tcp6:7641:interface=\\\\:\\\\:1", "raw+tcp6:7641:interface=0\\\\:0\\\\:0\\\\:0\\\\:0\\\\:0\\\\:0\\\\:1"),
                              ("raw+tcp6:7641:interface=\\\\:\\\\:ffff\\\\:127.0.0.1", "raw+tcp:7641:interface=127.0.0.1"),
                              ("raw+tcp6:7641:interface=\\\\:\\\\:0", "raw+tcp:7641:interface=127.0.0.1")):
            shown = second.replace("\\\\", "\\")
            self.assertEqual(self.clashes(first, second),
                             [("a", f"line 'a': listener '{shown}' takes TCP port 7641, as line 'a', listener "
                                    f"'{first.replace(chr(92) * 2, chr(92))}' already does")], (first, second))

    def test_otherAddressesApart(self) -> None:
        """Two loopback addresses, IPv4 and IPv6 loopback, two ports: no clash."""
        self.assertEqual(self.clashes("raw+tcp:7641:interface=127.0.0.1", "raw+tcp:7641:interface=127.0.0.2",
                                      "raw+tcp6:7641:interface=\\\\:\\\\:1", "raw+tcp:7642:interface=localhost"), [])

    def test_everyIPv4AddressBesideOneIPv6(self) -> None:
        """
        Every IPv4 address (a bare port, tcp: with no interface=, 0.0.0.0)
        beside an IPv6 address that is not '::' on one port: apart, as the
        kernel binds them (two sockets: 0.0.0.0 and ::1 on one port both
        bound); they were refused as a clash.  '::' beside anything, and
        every IPv4 address beside one, still clash.
        """
        for first in ("raw+tcp:7641", "7641", "raw+tcp:7641:interface=0.0.0.0", "tls:7641:cert=/c.pem:key=/k.pem"):
            self.assertEqual(self.clashes(first, "raw+tcp6:7641:interface=\\\\:\\\\:1",
                                          "raw+tcp6:7641:interface=2001\\\\:db8\\\\:\\\\:5"), [], first)
        self.assertEqual([len(self.clashes(*pair)) for pair in (
            ("raw+tcp:7641", "raw+tcp6:7641"), ("raw+tcp6:7641:interface=\\\\:\\\\:1", "raw+tcp6:7641"),
            ("raw+tcp:7641", "raw+tcp:7641:interface=10.0.0.1"), ("raw+tcp6:7641", "raw+tcp:7641:interface=10.0.0.1"),
            ("raw+tcp:7641:interface=0.0.0.0", "raw+tcp6:7641:interface=\\\\:\\\\:ffff\\\\:10.0.0.1"))],
            [1, 1, 1, 1, 1])

    def test_onePathThroughALinkedDirectory(self) -> None:
        """
        A unix socket (or a pty: link) whose directory is a symlink to
        another's directory: one path, a clash said with where it is
        (compared as written, --check said OK and the start failed at the
        second bind: "... is one of this gateway's own sockets already
        (... --check names which)"; seen live, probe30).  A name in the
        directory that is not the other's: apart.
        """
        real = os.path.abspath(self.mktemp())
        os.mkdir(real)
        real = os.path.realpath(real)  # (where the checkout's path has a link of its own)
        link = os.path.abspath(self.mktemp())
        os.symlink(real, link)
        self.assertEqual(self.clashes(f"unix:{real}/a.sock", f"unix:{link}/a.sock", f"pty:{link}/b",
                                      f"unix:{real}/b", f"unix:{link}/c.sock"),
                         [("a", f"line 'a': listener 'unix:{link}/a.sock' takes path '{real}/a.sock', as line 'a', "
                                f"listener 'unix:{real}/a.sock' already does"),
                          ("a", f"line 'a': listener 'unix:{real}/b' takes path '{real}/b', as line 'a', "
                                f"listener 'pty:{link}/b' already does")])

    def test_asBound(self) -> None:
        self.assertEqual([asBound(h) for h in ("localhost", "LocalHost", "::0", "0:0:0:0:0:0:0:1", "::ffff:10.0.0.1",
                                                "10.0.0.1", "", "fe80::1%eth0")],
                         ["127.0.0.1", "127.0.0.1", "::", "::1", "10.0.0.1", "10.0.0.1", "", "fe80::1%eth0"])
