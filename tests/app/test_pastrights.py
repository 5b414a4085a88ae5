"""
The warning about listeners that let whoever connects type past a line's
write / read ("knows no person"): once over the listeners opened together
(a farm's start, a reload), naming a few of them and how many more.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app.lines import makeLine
from serialgw.app.listen import ListenerOpener
from serialgw.app.startchecks import PAST_RIGHTS
from serialgw.config.file import loadFile
from tests.clients.test_ssh import newKey, publicLine
from tests.fakes import LogEvents, RecordingDevice


class PastRightsTests(TestCase):
    def farm(self, count: int) -> list[Any]:
        """The lines of a farm of C{count} lines with write = ["ops1"], each a telnet listener on 127.0.0.1."""
        path = self.mktemp()
        text = (f'[ssh]\nlisten = "tcp:0:interface=127.0.0.1"\nhost-key = "{self.mktemp()}"\n'
                f'[users.ops1]\nkeys = ["{publicLine(newKey())}"]\n')
        text += "".join(f'[lines.l{n}]\ndevice = "/nonexistent/tty{n}"\nwrite = ["ops1"]\nlisten = "tcp:0:interface=127.0.0.1"\n'
                        for n in range(count))
        with open(path, "w") as f:
            f.write(text)
        return loadFile(path).lines

    def open(self, configs: list[Any], clock: Clock) -> None:
        ports: list[Any] = []

        def own(kind: str, thing: Any) -> None:
            if kind == "port":
                ports.append(thing[1])

        class Reactor:
            """The reactor, but for its calls later: the clock's."""

            def __getattr__(self, name: str) -> Any:
                return getattr(reactor, name)

            callLater = clock.callLater

        opener = ListenerOpener(Reactor(), lambda n: 1.0, own)
        for config in configs:
            line = makeLine(config, RecordingDevice(config.settings), clock)
            for spec in config.listeners:
                opener.open(line, config, spec)
        for port in ports:
            self.addCleanup(port.stopListening)

    def test_farmSaysItOnce(self) -> None:
        """Six lines' listeners past their write / read, opened together: one warning naming four and how many more (it was one a listener: a farm of 1000 lines said it 1000 times at each start)."""
        events = LogEvents(self)
        clock = Clock()
        self.open(self.farm(6), clock)
        clock.advance(0)
        warned = [e for e in events.at(LogLevel.warn) if "no person" in formatEvent(e)]
        self.assertEqual([formatEvent(e) for e in warned], [
            "6 listeners know no person: line l0 'tcp:0:interface=127.0.0.1', line l1 'tcp:0:interface=127.0.0.1', "
            "line l2 'tcp:0:interface=127.0.0.1', line l3 'tcp:0:interface=127.0.0.1' and 2 more: whoever connects "
            "there types, whatever their lines' write / read say (they name the people of SSH keys and TLS client "
            "certificates); give them ro, or TLS with ca="])
        self.open(self.farm(6)[2:4], clock)
        clock.advance(0)
        self.assertEqual(len([e for e in events.at(LogLevel.warn) if "no person" in formatEvent(e)]), 2)

    def test_oneSaidAsBefore(self) -> None:
        """One such listener: said as before, naming its line and listener."""
        events = LogEvents(self)
        clock = Clock()
        self.open(self.farm(1), clock)
        clock.advance(0)
        [warned] = [e for e in events.at(LogLevel.warn) if "no person" in formatEvent(e)]
        self.assertEqual((warned["line"], warned["listener"], warned["why"]), ("l0", "tcp:0:interface=127.0.0.1", PAST_RIGHTS))
