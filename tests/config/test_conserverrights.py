"""
conserver's access-list forms in a line's write / read: "!NAME" takes a
user out of a list ("*" and "!intern": everyone but the intern), as
conserver's "rw *,!intern"; its "@group", "user@host" and "" have no
counterpart and are refused saying what serialgw has instead.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.file import loadFile
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.config.specs import ConfigError
from serialgw.line.role import Role
from tests.clients.test_reloadrights import TLS, CertifiedTransport, Harness, text
from tests.realio import writeTemp
from tests.telnetpeer import AGREE, WONT_COM_PORT

USERS = ('[users.ops1]\nkeys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"]\n'
         '[users.intern]\nkeys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7rLhwJzsfu7oUu0yaIa+lp5X0dlj3u5YlKvN6UQo0u"]\n'
         '[lines.a]\ndevice = "pty:/run/a"\nlisten = "0"\n')


class TakenOutTests(SynchronousTestCase):
    def test_rightsOf(self) -> None:
        """'!NAME' takes that user out of its list whatever '*' or the name itself says; the other list still applies."""
        rights = Rights(write=("*", "!intern"), read=("*",))
        self.assertEqual([rights.of(u) for u in ("ops1", "intern", "x")], ["write", "read", "write"])
        rights = Rights(write=("ops1", "intern", "!intern"))
        self.assertEqual([rights.of(u) for u in ("ops1", "intern")], ["write", None])
        rights = Rights(write=("ops1",), read=("*", "!intern"))
        self.assertEqual([rights.of(u) for u in ("ops1", "intern", "x")], ["write", None, "read"])

    def test_bangNameIsNobodysName(self) -> None:
        """A person named '!intern' itself (a TLS certificate's CN is any text) is not named by the list's '!intern', which takes intern out: it has what '*' gives anyone, no more (it got write where only ops1 types)."""
        rights = Rights(write=("ops1", "!intern"), read=("*",))
        self.assertEqual([rights.of(u) for u in ("ops1", "intern", "!intern", "x")], ["write", "read", "read", "read"])
        rights = Rights(write=("ops1",), read=("!intern", "intern"))
        self.assertEqual([rights.of(u) for u in ("intern", "!intern")], [None, None])
        self.assertEqual(Rights(write=("*", "!intern")).of("!intern"), "write")

    def test_fromTheFile(self) -> None:
        """write = ["*", "!intern"] is read as written; the name after '!' must be a declared user too."""
        config = loadFile(writeTemp(self, USERS + 'write = ["*", "!intern"]\nread = ["*"]\n'))
        self.assertEqual(config.lines[0].rights, Rights(write=("*", "!intern"), read=("*",)))
        path = writeTemp(self, USERS + 'write = ["*", "!intren"]\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadFile, path)),
                         f"{path}:8: [lines.a] write: unknown user '!intren' (declared: intern, ops1; "
                         "add a [users.NAME] table)")

    def test_conserverFormsRefused(self) -> None:
        """@group, user@host, "" and a list of nothing but '!' names are refused with FILE:LINE and what to write."""
        declared = " (declared: intern, ops1; add a [users.NAME] table)"
        cases = {
            '["@wheel"]': "cannot read '@wheel': conserver's @group (a group of the host) has no counterpart: name "
                          "each [users.NAME], or give the line to everyone with '*' and take some out with '!NAME'"
                          + declared,
            '["*", "!@wheel"]': "cannot read '!@wheel': conserver's @group (a group of the host) has no counterpart: "
                                "name each [users.NAME], or give the line to everyone with '*' and take some out with "
                                "'!NAME'" + declared,
            '["ops1@bastion"]': "cannot read 'ops1@bastion': conserver's user@host: a user here is a person with keys "
                                "or a certificate wherever they come from; write the user alone, and narrow where "
                                "from with the listener option allow=CIDR" + declared,
            '[""]': "cannot read '': an empty name: conserver's \"\" (a list emptied) is leaving the key out, or [] "
                    "for nobody" + declared,
            '["!*"]': "cannot read '!*': '!*' takes everyone out: leave the name out of the list instead" + declared,
            '["!intern"]': "'!intern' and no name, nor '*': a name with '!' takes a user out of the others; "
                           "write = ['*', '!intern'] is everyone but them",
        }
        for value, said in cases.items():
            path = writeTemp(self, USERS + f"write = {value}\n")
            self.assertEqual(str(self.assertRaises(ConfigError, loadFile, path)),
                             f"{path}:8: [lines.a] write: {said}", value)

    def test_takenOutIsReadOnly(self) -> None:
        """On a line given to everyone but bob, bob's certificate is read-only (told), alice's writes."""
        h = Harness()
        clients = []
        for port, name in enumerate(("alice", "bob"), 1):
            client = TelnetClient(h.line, Role.WRITER, listener=parseListener(TLS))
            transport = CertifiedTransport(name, port)
            client.makeConnection(transport)
            client.dataReceived(AGREE + WONT_COM_PORT)
            text(transport)
            clients.append((client, transport))
        h.line.applyRights(Rights(write=("*", "!bob"), read=("*",)))
        (alice, aliceT), (bob, bobT) = clients
        self.assertEqual([alice.role, bob.role], [Role.WRITER, Role.READONLY])
        self.assertIn("you are read-only now", text(bobT))
        bob.dataReceived(b"reboot\r")
        alice.dataReceived(b"uptime\r")
        self.assertEqual([e for e in h.device.events if e[0] == "write"], [("write", b"uptime\r")])
