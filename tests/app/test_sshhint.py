"""
The SSH listener's start line says how to connect, as a line's telnet and
raw listeners' do: the port it got, the line's name as the user name.
"""

from __future__ import annotations

from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import SSHSpec, UserSpec
from tests.clients.test_ssh import newKey, publicLine
from tests.fakes import LogEvents
from tests.realio import ptyLine, startedPty, startGateway


class SSHHintTests(TestCase):
    def ready(self, *names: str) -> tuple[str, int]:
        """A gateway with lines C{names} and an SSH listener on port 0: its ready line, and the port it got."""
        events = LogEvents(self)
        lines = [ptyLine(startedPty(self), name=name) for name in names]
        spec = SSHSpec(parseSSHListener("tcp:0:interface=127.0.0.1"), self.mktemp(),
                       (UserSpec("ops1", (publicLine(newKey()),)),))
        service = startGateway(self, *lines, ssh=spec)
        said = [formatEvent(e) for e in events.at(LogLevel.info) if "ssh listener" in formatEvent(e)]
        self.assertEqual(len(said), 1, said)
        return said[0], service.sshPort.getHost().port

    def test_oneLine(self) -> None:
        """One line: the command names its port and the line (it said 'ssh -p PORT LINE@HOST', though both were known)."""
        said, port = self.ready("rack4")
        self.assertEqual(said, f"ssh listener ready on 127.0.0.1:{port} for 1 user(s); connect with: "
                               f"ssh -p {port} rack4@127.0.0.1")

    def test_severalLines(self) -> None:
        """Several lines: the port, and LINE for the line's name, naming one."""
        said, port = self.ready("a", "b")
        self.assertEqual(said, f"ssh listener ready on 127.0.0.1:{port} for 1 user(s); connect with: "
                               f"ssh -p {port} LINE@127.0.0.1 (LINE: a line's name, e.g. a)")
