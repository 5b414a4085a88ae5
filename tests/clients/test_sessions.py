"""
Sessions on one line: exclusive mode and take-over, notices, the escape
menu's commands, banner and replay, max-clients.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients.escape import HELP, QEMU_HELP
from serialgw.clients.factory import LineFactory
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.line.textgate import OPEN, TAIL, endsOpen
from tests.fakes import LogEvents, RecordingDevice, observeLog
from tests.realio import testLockDir
from tests.telnetpeer import AGREE, WONT_COM_PORT


class Harness:
    def __init__(self, mode: str = "shared") -> None:
        self.device = RecordingDevice(SerialSettings(115200))
        self.line = Line("rack4", self.device, clock=Clock())
        self.line.mode = mode

    def telnet(self, listener: str = "telnet,escape=^]+4444", port: int = 1000,
               agree: bytes = AGREE + WONT_COM_PORT) -> tuple[TelnetClient, StringTransport]:
        spec = parseListener(listener)
        client = TelnetClient(self.line, Role.READONLY if spec.readOnly else Role.WRITER, listener=spec)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", port))
        client.makeConnection(transport)
        if agree:
            client.dataReceived(agree)
        transport.clear()
        return client, transport

    def eventLog(self) -> EventLog:
        """A console log on the line that keeps the events it is given."""
        consoleLog = EventLog()
        logs: Any = self.line.logs
        logs.append(consoleLog)
        return consoleLog


class EventLog:
    """A console log that keeps the events it is given (all the line asks of one here); what is typed is not kept."""

    peer = "log:/var/log/rack4.log"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.spec = LogSpec("/var/log/rack4.log")

    def event(self, text: str) -> None:
        self.events.append(text)

    def typed(self, peer: str, data: bytes) -> None:
        """(What clients typed: log-typed's, not kept here.)"""


def text(transport: StringTransport) -> str:
    value = transport.value().decode("utf-8", "replace")
    transport.clear()
    return value


class ExclusiveTests(SynchronousTestCase):
    def test_firstWritesOthersWatch(self) -> None:
        """Exclusive: the first person writes, the next watches (refused), until it takes write."""
        h = Harness("exclusive")
        alice, aliceT = h.telnet(port=1)
        bob, bobT = h.telnet(port=2)
        self.assertEqual((alice.role, bob.role), (Role.WRITER, Role.WATCHER))
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:2 attached as watcher]\r\n")
        bob.dataReceived(b"ls")
        self.assertEqual(h.device.events, [])
        bob.dataReceived(b"\x1dt")
        self.assertEqual((alice.role, bob.role), (Role.WATCHER, Role.WRITER))
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:2 took write]\r\n")
        bob.dataReceived(b"ls")
        alice.dataReceived(b"rm")
        self.assertEqual(h.device.events, [("write", b"ls")])

    def test_madeExclusiveKeepsOneWriter(self) -> None:
        """
        A shared line made exclusive (a reload) keeps one writer, the first
        person attached; the other writers only watch from then on and
        everyone is told; a read-only client stays as it was.  Made shared
        again, the watchers write.
        """
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        bob, bobT = h.telnet(port=2)
        reader, _ = h.telnet("telnet,ro+4445", port=3)
        carol = RawClient(h.line, listener=parseListener("raw+4446"))
        carol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 4)))
        text(aliceT)
        h.line.setMode("exclusive")
        self.assertEqual([c.role for c in (alice, bob, reader, carol)],
                         [Role.WRITER, Role.WATCHER, Role.READONLY, Role.WATCHER])
        # (carol has said nothing yet: not announced, nor is her change.)
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:2 now only watches]\r\n")
        bob.dataReceived(b"ls")
        carol.dataReceived(b"rm")
        alice.dataReceived(b"id")
        self.assertEqual(h.device.events, [("write", b"id")])
        text(aliceT)
        h.line.setMode("shared")
        self.assertEqual([c.role for c in (alice, bob, reader, carol)],
                         [Role.WRITER, Role.WRITER, Role.READONLY, Role.WRITER])
        # (carol said something meanwhile: announced now, her change too.)
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:2 writes (shared)]\r\n"
                                       "\r\n[serialgw: 192.0.2.9:4 writes (shared)]\r\n")
        bob.dataReceived(b"ls")
        self.assertEqual(h.device.events, [("write", b"id"), ("write", b"ls")])

    def test_healthCheckLeavesWriteToThePerson(self) -> None:
        """Exclusive: a health check that came first and left without a word hands write to the person who came meanwhile (a raw client has no ^] t)."""
        h = Harness("exclusive")
        check, _ = h.telnet("telnet+4444", port=1, agree=b"")
        person = RawClient(h.line, listener=parseListener("raw+4446"))
        person.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 2)))
        self.assertEqual(person.role, Role.WATCHER)
        h.line.clock.advance(0.5)
        check.connectionLost()
        self.assertEqual(person.role, Role.WRITER)
        person.dataReceived(b"ls")
        self.assertEqual(h.device.events, [("write", b"ls")])

    def test_heirNotAnnouncedYetNotAnnounced(self) -> None:
        """A health check's write handed to a person who has not said anything yet either: the others are not told of someone they never heard came; told once that one is announced, as the writer."""
        h = Harness("exclusive")
        check, _ = h.telnet("telnet+4444", port=1, agree=b"")
        quiet, _ = h.telnet("telnet+4444", port=2, agree=b"")
        bob, bobT = h.telnet(port=3)
        self.assertEqual([c.role for c in (check, quiet, bob)], [Role.WRITER, Role.WATCHER, Role.WATCHER])
        text(bobT)
        check.connectionLost()
        self.assertEqual((quiet.role, text(bobT)), (Role.WRITER, ""))
        quiet.dataReceived(b"ls")
        self.assertEqual(text(bobT), "\r\n[serialgw: 192.0.2.9:2 attached as writer]\r\n")
        self.assertEqual(h.device.events, [("write", b"ls")])

    def test_writerLeavingKeepsWatchers(self) -> None:
        """Exclusive: an announced writer leaving hands write to nobody (as conserver: the others take it)."""
        h = Harness("exclusive")
        alice, _ = h.telnet(port=1)
        bob, _ = h.telnet(port=2)
        alice.connectionLost()
        self.assertEqual(bob.role, Role.WATCHER)

    def test_sharedEveryoneWrites(self) -> None:
        """Shared (the default): everyone writes."""
        h = Harness()
        a, _ = h.telnet(port=1)
        b, _ = h.telnet(port=2)
        a.dataReceived(b"a")
        b.dataReceived(b"b")
        self.assertEqual(h.device.events, [("write", b"a"), ("write", b"b")])

    def test_noticesOnlyForPeople(self) -> None:
        """Attach/detach notices reach telnet users, not raw clients (data stays data)."""
        h = Harness()
        raw = RawClient(h.line, listener=parseListener("raw+4445"))
        rawT = StringTransport()
        raw.makeConnection(rawT)
        a, aT = h.telnet(port=1)
        b, _ = h.telnet(port=2)
        b.connectionLost()
        self.assertEqual(rawT.value(), b"")
        self.assertEqual(text(aT), "\r\n[serialgw: 192.0.2.9:2 attached as writer]\r\n"
                                   "\r\n[serialgw: 192.0.2.9:2 detached]\r\n")


class RoleFloodTests(SynchronousTestCase):
    def test_onlyWatchByAWatcherAnswered(self) -> None:
        """^] o by one who only watches (or is read-only) is answered, as ^] t by a writer is ('you write already'); it said nothing."""
        h = Harness("exclusive")
        alice, aliceT = h.telnet(port=1)
        bob, bobT = h.telnet(port=2)
        text(aliceT), text(bobT)
        bob.dataReceived(b"\x1do")
        self.assertEqual((text(bobT), text(aliceT), bob.role), ("\r\n[serialgw: you only watch already, and keep watching when write is free: "
                                                                "^] t takes it]\r\n", "",
                                                                Role.WATCHER))

    def test_takeWriteFloodBounded(self) -> None:
        """Two people racing ^] t ^] o: 5 role changes each in 10 s, then refused (to them only); a bystander hears 9 notices, not 3000."""
        h = Harness("exclusive")
        alice, aliceT = h.telnet(port=1)
        bob, bobT = h.telnet(port=2)
        carol, carolT = h.telnet(port=3)
        text(aliceT), text(bobT), text(carolT)
        for _ in range(1000):
            bob.dataReceived(b"\x1dt")
            alice.dataReceived(b"\x1dt\x1do")
        self.assertEqual((alice.role, bob.role), (Role.WATCHER, Role.WRITER))
        took, watches = "\r\n[serialgw: 192.0.2.9:{} took write]\r\n", "\r\n[serialgw: 192.0.2.9:1 now only watches]\r\n"
        said = [took.format(2), took.format(1), watches] * 2 + [took.format(2), took.format(1), took.format(2)]
        self.assertEqual(text(carolT), "".join(said))
        tooMany = "[serialgw: at most 5 role changes in 10 s: nothing changed]"
        self.assertIn(tooMany, text(aliceT))
        self.assertTrue(text(bobT).endswith("".join(said[-1:]) + "\r\n[serialgw: you write already]\r\n" * 996))
        h.line.clock.advance(10)
        alice.dataReceived(b"\x1dt")
        self.assertEqual((alice.role, text(carolT)), (Role.WRITER, took.format(1)))

class EscapeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()
        self.client, self.t = self.h.telnet()

    def test_breakAndDoubleEscape(self) -> None:
        """^] b sends a break; ^] ^] sends ^] itself; data around passes."""
        self.client.dataReceived(b"x\x1db\x1d\x1dy")
        self.assertEqual(self.h.device.events, [("write", b"x"), ("break", None), ("write", b"\x1dy")])

    def test_breakThenKey(self) -> None:
        """^] k h: a break, then h (magic SysRq)."""
        self.client.dataReceived(b"\x1dk")
        self.client.dataReceived(b"h")
        self.assertEqual(self.h.device.events, [("break", None), ("write", b"h")])

    def test_breakThenKeyWhileInitCommandRuns(self) -> None:
        """^] k h while an init-command holds people's typing: neither the break nor h goes (h would land in the command's talk); said."""
        self.h.line.initRun = object()  # type: ignore[assignment]
        self.client.dataReceived(b"\x1dk")
        self.client.dataReceived(b"h")
        self.assertEqual(self.h.device.events, [])
        self.assertEqual(text(self.t), "\r\n[serialgw: 'h' not sent, nor its break: an init-command runs]\r\n")
        self.h.line.initRun = None
        self.client.dataReceived(b"\x1dkh")
        self.assertEqual(self.h.device.events, [("break", None), ("write", b"h")])

    def test_whoStatusHelp(self) -> None:
        """w, s and ? answer this client only, as text."""
        self.client.dataReceived(b"\x1dw")
        self.assertEqual(text(self.t), "\r\n[serialgw: rack4: 192.0.2.9:1000 (writer)]\r\n")
        self.client.dataReceived(b"\x1ds")
        self.assertIn("rack4:  up, 115200,8N1, 0 bytes in, 0 out, 0 breaks", text(self.t))
        self.client.dataReceived(b"\x1d?")
        self.assertIn("b break, k KEY break then KEY", text(self.t))

    def test_setBaud(self) -> None:
        """^] B 9600 Enter sets the baud rate."""
        self.client.dataReceived(b"\x1dB96")
        self.client.dataReceived(b"00\r")
        self.assertEqual(self.h.device.settings.baudrate, 9600)
        self.assertIn("rack4 now at 9600,8N1", text(self.t))

    def test_setBaudBackspaceAndGarbage(self) -> None:
        """^] B: Backspace (DEL or ^H) takes back a digit (115<BS>2 was 1152, a wrong rate set); spaces around the number are fine; digits that are no rate are refused as typed."""
        self.client.dataReceived(b"\x1dB115200\x7f\x7f\x08\x7f\x7f\x7f96\x08600\r")
        self.assertEqual(self.h.device.settings.baudrate, 9600)
        text(self.t)
        self.client.dataReceived(b"\x1dB 0 \r")
        self.assertEqual(text(self.t), "\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                       "\r\n[serialgw: baud rate must be 1 to 2147483647, not '0']\r\n")
        self.client.dataReceived(b"\x1dR 1\x7f2\r")
        self.assertIn("[serialgw: last 2 lines of rack4:]", text(self.t))
        self.assertEqual([e[0] for e in self.h.device.events], ["apply"])

    def test_argumentEndedByAKeyNotADigit(self) -> None:
        """^] B foo Enter in one read (a paste, typed ahead): 'f' ends the argument, nothing changed; 'oo' and Enter reach neither the rate nor the device, and the person is told how many bytes were not sent."""
        events = LogEvents(self).events
        self.client.dataReceived(b"\x1dBfoo\r")
        self.assertEqual(text(self.t), "\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                       "\r\n[serialgw: baud rate cancelled: 'f' is not a digit; "
                                       "the 3 byte(s) after it were not sent to rack4]\r\n")
        self.assertEqual(self.h.device.events, [])
        said = [e for e in events if e.get("why") is not None]
        self.assertEqual([(e["line"], e["why"], e["rest"]) for e in said],
                         [("rack4", "baud rate cancelled: 'f' is not a digit", 3)])
        # Keys typed afterwards are typing again.
        self.client.dataReceived(b"ls\r")
        self.assertEqual(self.h.device.events, [("write", b"ls\r")])

    def test_pasteAfterReplayCommandNotSwallowed(self) -> None:
        """^] R, then a paste of a command line in one read: not swallowed up to Enter and not sent either; said, with its size, and the typing after it goes to the device."""
        self.client.dataReceived(b"\x1dR")
        text(self.t)
        self.client.dataReceived(b"reboot -f\r")
        self.assertEqual(text(self.t), "\r\n[serialgw: replay cancelled: 'r' is not a digit; "
                                       "the 9 byte(s) after it were not sent to rack4]\r\n")
        self.client.dataReceived(b"x")
        self.assertEqual(self.h.device.events, [("write", b"x")])

    def test_argumentCancelKeys(self) -> None:
        """Escape, ^C and the escape key cancel an argument (a key on its own: nothing else to say); an arrow key's ESC [ A is not sent in part."""
        for key in (b"\x1b", b"\x03", b"\x1d"):
            self.client.dataReceived(b"\x1dB96" + key)
            self.assertEqual(text(self.t), "\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                           "\r\n[serialgw: baud rate cancelled]\r\n")
        self.client.dataReceived(b"\x1dR1")
        self.client.dataReceived(b"\x1b[A")
        self.assertEqual(text(self.t), "\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n"
                                       "\r\n[serialgw: replay cancelled; the 2 byte(s) after it were not sent to rack4]\r\n")
        self.client.dataReceived(b"\r")
        self.assertEqual((self.h.device.events, self.h.device.settings.baudrate), ([("write", b"\r")], 115200))

    def test_argumentBounded(self) -> None:
        """An argument is at most 12 keys: the 13th ends it, said; nothing changed, what follows in that read not sent (a paste of digits is not held for ever)."""
        self.client.dataReceived(b"\x1dB" + b"1" * 100)
        self.assertEqual(text(self.t), "\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                       "\r\n[serialgw: baud rate cancelled: more than 12 characters; "
                                       "the 87 byte(s) after it were not sent to rack4]\r\n")
        self.client.dataReceived(b"\r")
        self.assertEqual((self.h.device.events, self.h.device.settings.baudrate), ([("write", b"\r")], 115200))

    def test_controlAndNonAsciiKeysNamed(self) -> None:
        """A control key or a UTF-8 character's byte ending an argument is named readably (^I, byte 0xc3), never sent."""
        self.client.dataReceived(b"\x1dR\t")
        self.client.dataReceived(b"\x1dR\xc3\xa9")
        self.assertEqual(text(self.t), "\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n"
                                       "\r\n[serialgw: replay cancelled: ^I is not a digit]\r\n"
                                       "\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n"
                                       "\r\n[serialgw: replay cancelled: byte 0xc3 is not a digit; "
                                       "the 1 byte(s) after it were not sent to rack4]\r\n")
        self.assertEqual(self.h.device.events, [])

    def test_setBaudRefused(self) -> None:
        """^] B 9600 from a read-only client, or a watcher: refused, said so, the device's settings untouched."""
        client, t = self.h.telnet("telnet,ro,escape=^]+4444", port=1001)
        client.dataReceived(b"\x1dB9600\r")
        self.assertEqual(t.value(), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                    b"\r\n[serialgw: read-only: nothing changed, rack4 stays at 115200,8N1]\r\n")
        self.h.line.mode = "exclusive"
        watcher, w = self.h.telnet(port=1002)
        watcher.role = Role.WATCHER
        watcher.dataReceived(b"\x1dB9600\r")
        self.assertEqual(w.value(), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                    b"\r\n[serialgw: you only watch: take write first: nothing changed, "
                                    b"rack4 stays at 115200,8N1]\r\n")
        self.assertEqual((self.h.device.settings.baudrate, self.h.line.settings.baudrate), (115200, 115200))
        self.assertEqual([e for e in self.h.device.events if e[0] == "apply"], [])

    def test_setBaudLineLetGo(self) -> None:
        """^] B 9600 from a writer while the line is let go (the gateway stopping): refused, and the reason is that, not read-only."""
        self.h.line.letGo()
        self.t.clear()
        self.client.dataReceived(b"\x1dB9600\r")
        self.assertEqual(self.t.value(), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                         b"\r\n[serialgw: rack4 is closing: nothing changed, rack4 stays at 115200,8N1]\r\n")
        self.assertEqual([e for e in self.h.device.events if e[0] == "apply"], [])

    def test_replay(self) -> None:
        """^] r replays the last lines of output."""
        self.h.line.deviceDataReceived(b"".join(b"line %d\r\n" % i for i in range(30)))
        self.t.clear()
        self.client.dataReceived(b"\x1dr")
        out = self.t.value()
        self.assertIn(b"line 29\r\n", out)
        self.assertIn(b"line 10\r\n", out)
        self.assertNotIn(b"line 9\r\n", out)

    def test_replayCount(self) -> None:
        """^] R 3 Enter replays the last 3 lines."""
        self.h.line.deviceDataReceived(b"".join(b"line %d\r\n" % i for i in range(10)))
        self.t.clear()
        self.client.dataReceived(b"\x1dR3\r")
        self.assertEqual(
            self.t.value(),
            b"\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n\r\n[serialgw: last 3 lines of rack4:]\r\n"
            b"line 7\r\nline 8\r\nline 9\r\n",
        )

    def test_replayOne(self) -> None:
        """^] R 1 Enter replays the last line, said 'last 1 line' (it said 'last 1 lines')."""
        self.h.line.deviceDataReceived(b"".join(b"line %d\r\n" % i for i in range(10)))
        self.t.clear()
        self.client.dataReceived(b"\x1dR1\r")
        self.assertEqual(
            self.t.value(),
            b"\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n\r\n[serialgw: last 1 line of rack4:]\r\n"
            b"line 9\r\n",
        )

    def test_replayZero(self) -> None:
        """^] R 0 Enter (or R 00) replays nothing and says so: it replayed one line."""
        self.h.line.deviceDataReceived(b"".join(b"line %d\r\n" % i for i in range(10)))
        self.t.clear()
        self.client.dataReceived(b"\x1dR0\r\x1dR00\r")
        self.assertEqual(
            self.t.value(),
            b"\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n\r\n[serialgw: 0 lines: nothing replayed]\r\n" * 2,
        )
        self.assertEqual(self.h.device.events, [])

    def test_enterAsCrLf(self) -> None:
        """Enter sent as CR LF (a terminal's telnet New Line, a raw client's CR LF) ends R N and B RATE whole: no LF reaches the device (a boot loader repeats its last command on an empty line)."""
        self.client.dataReceived(b"\x1dR3\r\nls\r\n\x1dB9600\r")
        self.client.dataReceived(b"\n\x1dB19200\r\x00\x1dw")
        self.assertEqual(self.h.device.events[0], ("write", b"ls\r\n"))
        self.assertEqual([e for e in self.h.device.events if e[0] == "write"], [("write", b"ls\r\n")])
        self.assertEqual(self.h.device.settings.baudrate, 19200)
        self.assertTrue(text(self.t).endswith("\r\n[serialgw: rack4: 192.0.2.9:1000 (writer)]\r\n"))

    def test_watchAndDisconnect(self) -> None:
        """^] o gives up write; ^] d disconnects."""
        self.client.dataReceived(b"\x1do")
        self.assertEqual(self.client.role, Role.WATCHER)
        self.client.dataReceived(b"\x1dd")
        self.assertTrue(self.t.disconnecting)

    def test_offByDefault(self) -> None:
        """Without escape=, 0x1d is data (8-bit clean)."""
        client, _ = self.h.telnet("telnet+4444", port=7)
        client.dataReceived(b"\x1db")
        self.assertEqual(self.h.device.events[-1], ("write", b"\x1db"))


class NotSentTests(SynchronousTestCase):
    """A watcher or read-only person who types is told that it goes nowhere: once, then at most every 10 s."""

    def test_readOnly(self) -> None:
        """A read-only telnet user's typing: one notice, none within 10 s of it, another after."""
        h = Harness()
        client, t = h.telnet("telnet,ro+4444")
        client.dataReceived(b"ls\r")
        self.assertEqual(t.value(), b"\r\n[serialgw: read-only: what you type is not sent to rack4]\r\n")
        t.clear()
        h.line.clock.advance(9.9)
        client.dataReceived(b"ls\r")
        self.assertEqual(t.value(), b"")
        h.line.clock.advance(0.1)
        client.dataReceived(b"q")
        self.assertEqual(t.value(), b"\r\n[serialgw: read-only: what you type is not sent to rack4]\r\n")
        self.assertEqual((h.device.events, h.line.refused), ([], 7))

    def test_clockSteppedBack(self) -> None:
        """The clock stepped back (NTP) after a notice: the next typing is told at once, not kept silent until the clock is back where it was."""
        h = Harness()
        client, t = h.telnet("telnet,ro+4444")
        h.line.clock.advance(3600)
        client.dataReceived(b"ls\r")
        t.clear()
        h.line.clock.rightNow -= 600
        client.dataReceived(b"q")
        self.assertEqual(t.value(), b"\r\n[serialgw: read-only: what you type is not sent to rack4]\r\n")

    def test_watcher(self) -> None:
        """A watcher (exclusive mode) is told, with the key that takes write; once it writes, nothing."""
        h = Harness("exclusive")
        h.telnet(port=1)
        bob, t = h.telnet(port=2)
        bob.dataReceived(b"ls")
        self.assertEqual(t.value(), b"\r\n[serialgw: you only watch: what you type is not sent to rack4; ^] t takes write]\r\n")
        t.clear()
        bob.dataReceived(b"\x1dt")
        t.clear()
        bob.dataReceived(b"ls")
        self.assertEqual((t.value(), h.device.events), (b"", [("write", b"ls")]))

    def test_lineLetGo(self) -> None:
        """A writer typing on a line let go (the gateway stopping, its close-string under way) is told it goes nowhere, and nothing reaches the device."""
        h = Harness()
        client, t = h.telnet()
        h.line.closeString = (b"exit\r",)
        h.line.letGo()
        h.device.events.clear()
        client.dataReceived(b"ls\r")
        self.assertEqual(t.value(), b"\r\n[serialgw: rack4 is closing: what you type is not sent]\r\n")
        self.assertEqual((h.device.events, h.line.refused), ([], 3))

    def test_escapeCommandsAreNotTyping(self) -> None:
        """A watcher's escape command (^] w) is not input: no not-sent notice."""
        h = Harness("exclusive")
        h.telnet(port=1)
        bob, t = h.telnet(port=2)
        bob.dataReceived(b"\x1dw")
        self.assertEqual(t.value(), b"\r\n[serialgw: rack4: 192.0.2.9:1 (writer), 192.0.2.9:2 (watcher)]\r\n")

    def test_typingBeforeAnEscapeCommand(self) -> None:
        """Typing that ends in an escape command (a paste, a line-mode client) is refused with the notice too."""
        h = Harness()
        client, t = h.telnet("telnet,ro,escape=^]+4444")
        client.dataReceived(b"reboot\x1dw")
        self.assertEqual(t.value(), b"\r\n[serialgw: read-only: what you type is not sent to rack4]\r\n"
                                    b"\r\n[serialgw: rack4: 192.0.2.9:1000 (read-only)]\r\n")
        self.assertEqual((h.device.events, h.line.refused), ([], 6))

    def test_programsGetNoText(self) -> None:
        """A read-only RFC 2217 program's bytes are refused without text in its data stream."""
        h = Harness()
        client, t = h.telnet("telnet,ro+4444", agree=bytes([255, 251, 44]))
        self.assertIsNotNone(client.comPort)
        client.dataReceived(b"AT\r")
        self.assertEqual((t.value(), h.device.events, h.line.refused), (b"", [], 3))


class QuietConnectionTests(SynchronousTestCase):
    """A connection that closes within a second without a byte is not announced; a longer or talking one is."""

    def setUp(self) -> None:
        self.events: list[dict[str, object]] = []
        observeLog(self, self.events.append)
        self.h = Harness()
        self.alice, self.aliceT = self.h.telnet(port=1)

    def test_healthCheck(self) -> None:
        """Connect, nothing, close after 0.9 s: alice hears nothing, the console log nothing; the gateway's log says it."""
        check, _ = self.h.telnet("telnet+4444", port=2, agree=b"")
        self.h.line.clock.advance(0.9)
        check.connectionLost()
        self.h.line.clock.advance(5)
        self.assertEqual(self.aliceT.value(), b"")
        self.assertEqual(self.h.line.clients, [self.alice])
        self.assertEqual([e["peer"] for e in self.events if "came and went" in str(e.get("log_format", ""))],
                         ["192.0.2.9:2"])
        self.assertFalse([e for e in self.events if "192.0.2.9:2 attached" in str(e.get("text", ""))])

    def test_stays(self) -> None:
        """Connect, nothing for a second: announced then; its leaving too."""
        quiet, _ = self.h.telnet("raw+4445", port=2, agree=b"")
        self.h.line.clock.advance(0.99)
        self.assertEqual(self.aliceT.value(), b"")
        self.h.line.clock.advance(0.01)
        self.assertEqual(text(self.aliceT), "\r\n[serialgw: 192.0.2.9:2 attached as writer]\r\n")
        quiet.connectionLost()
        self.assertEqual(text(self.aliceT), "\r\n[serialgw: 192.0.2.9:2 detached]\r\n")
        self.assertEqual(self.h.line.clock.getDelayedCalls(), [])

    def test_talks(self) -> None:
        """The first byte (telnet negotiation counts) announces it at once, and only once."""
        talker, _ = self.h.telnet("telnet+4444", port=2, agree=b"")
        talker.dataReceived(AGREE[:3])
        self.assertEqual(text(self.aliceT), "\r\n[serialgw: 192.0.2.9:2 attached as writer]\r\n")
        talker.dataReceived(AGREE[3:] + WONT_COM_PORT + b"x")
        self.h.line.clock.advance(2)
        self.assertEqual(self.aliceT.value(), b"")
        self.assertEqual(self.h.line.clock.getDelayedCalls(), [])
        talker.connectionLost()
        self.assertEqual(text(self.aliceT), "\r\n[serialgw: 192.0.2.9:2 detached]\r\n")


class MonKeysTests(SynchronousTestCase):
    """QEMU's mon: form: h, x, b and C-a C-a mean what they mean in QEMU; the other keys stay ours."""

    def setUp(self) -> None:
        self.h = Harness()
        self.client, self.t = self.h.telnet("mon:telnet::4444,server,nowait")

    def test_help(self) -> None:
        """C-a h answers QEMU's help, naming the escape key."""
        self.client.dataReceived(b"\x01h")
        self.assertEqual(self.t.value(), b"\r\n[serialgw: " + QEMU_HELP.format(key="^A").encode() + b"]\r\n")
        self.assertIn("h help, x disconnect, b break, ^A ^A sends ^A;", QEMU_HELP.format(key="^A"))

    def test_disconnect(self) -> None:
        """C-a x disconnects, as it ends QEMU."""
        self.client.dataReceived(b"ab\x01x")
        self.assertEqual(self.h.device.events, [("write", b"ab")])
        self.assertEqual(self.t.value(), b"\r\n[serialgw: bye]\r\n")
        self.assertTrue(self.t.disconnecting)

    def test_breakAndEscapeTwice(self) -> None:
        """C-a b sends a break; C-a C-a sends one C-a; s is still our status."""
        self.client.dataReceived(b"\x01b\x01\x01")
        self.assertEqual(self.h.device.events, [("break", None), ("write", b"\x01")])
        self.client.dataReceived(b"\x01s")
        self.assertEqual(self.t.value(), b"\r\n[serialgw: rack4:  up, 115200,8N1, 0 bytes in, 1 out, 0 breaks, "
                                         b"0 dropped while down, mode shared]\r\n")

    def test_oddKeysShownReadably(self) -> None:
        """escape=^? (DEL) is named ^? in notices, not sent raw (invisible); an unknown command that is a control key or a byte past ASCII is named ^X or byte 0xNN, not as a Latin-1 character."""
        client, t = self.h.telnet("telnet,escape=^?+4444", port=2)
        client.dataReceived(b"\x7fz\x7f\x01\x7f\xff\xff")
        self.assertEqual(t.value(), b"\r\n[serialgw: unknown escape command 'z'; ^? ? for help]\r\n"
                                    b"\r\n[serialgw: unknown escape command ^A; ^? ? for help]\r\n"
                                    b"\r\n[serialgw: unknown escape command byte 0xff; ^? ? for help]\r\n")
        self.assertEqual(self.h.device.events, [])

    def test_unknownUtf8CommandNotHalfSent(self) -> None:
        """An unknown command that is a UTF-8 character (^] é, ^] €): none of its bytes reach the device, even split across reads; what follows is typing, or a command after the escape key."""
        client, t = self.h.telnet("telnet,escape=^]+4444", port=2)
        client.dataReceived("\x1dé".encode() + b"ls")
        client.dataReceived(b"\x1d\xe2")
        client.dataReceived(b"\x82")
        client.dataReceived(b"\xacid\x1d\xc3\x1dx")
        self.assertEqual(self.h.device.events, [("write", b"ls"), ("write", b"id")])
        self.assertEqual(t.value(), b"\r\n[serialgw: unknown escape command byte 0xc3; ^] ? for help]\r\n"
                                    b"\r\n[serialgw: unknown escape command byte 0xe2; ^] ? for help]\r\n"
                                    b"\r\n[serialgw: unknown escape command byte 0xc3; ^] ? for help]\r\n"
                                    b"\r\n[serialgw: unknown escape command 'x'; ^] ? for help]\r\n")

    def test_escapeThenEnterNotHalfSent(self) -> None:
        """The escape key then Enter (CR LF, or telnet's CR NUL, split or not): an unknown command, and none of Enter reaches the device."""
        client, t = self.h.telnet("telnet,escape=^]+4444", port=2)
        client.dataReceived(b"\x1d\r\nls\r\n")
        client.dataReceived(b"\x1d\r")
        client.dataReceived(b"\x00id")
        self.assertEqual(self.h.device.events, [("write", b"ls\r\n"), ("write", b"id")])
        self.assertEqual(t.value(), b"\r\n[serialgw: unknown escape command ^M; ^] ? for help]\r\n" * 2)

    def test_xOnlyUnderMon(self) -> None:
        """escape=^A without mon: keeps our menu: x is an unknown command, not a disconnect."""
        client, t = self.h.telnet("telnet,escape=^A+4444", port=2)
        client.dataReceived(b"\x01x")
        self.assertEqual(t.value(), b"\r\n[serialgw: unknown escape command 'x'; ^A ? for help]\r\n")
        self.assertFalse(t.disconnecting)
        client.dataReceived(b"\x01h")
        self.assertEqual(t.value().split(b"\r\n")[-2], b"[serialgw: " + HELP.encode() + b"]")


class WhoTests(SynchronousTestCase):
    """w and the banner name at most WHO_LIMIT clients and count the rest by role: bounded however many are on."""

    def test_manyClients(self) -> None:
        """With 201 people on, a newcomer's banner and ^] w name 20 and count the others (181, 182) by role."""
        h = Harness("exclusive")
        for port in range(1, 201):
            h.telnet("telnet+4444", port=port)
        alice, t = h.telnet("telnet,escape=^]+4444", port=201)
        named = ", ".join(f"192.0.2.9:{port} ({'writer' if port == 1 else 'watcher'})" for port in range(1, 21))
        bob = TelnetClient(h.line, listener=parseListener("telnet,banner+4444"))
        bobT = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 202))
        bob.makeConnection(bobT)
        self.assertEqual(bobT.value().split(b"\r\n")[-2].decode(),
                         f"[serialgw: rack4: 115200,8N1, you are watcher; also here: {named} and 181 more (181 watcher)]")
        alice.dataReceived(b"\x1dw")
        self.assertEqual(text(t), f"\r\n[serialgw: rack4: {named} and 182 more (182 watcher)]\r\n")


class ConnectTests(SynchronousTestCase):
    def test_bannerAndReplay(self) -> None:
        """banner and replay: the line's name, settings, who is on, then the backlog."""
        h = Harness()
        h.line.deviceDataReceived(b"login: ")
        h.telnet("telnet+4444", port=1)
        client = TelnetClient(h.line, listener=parseListener("telnet,banner,replay+4444"))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 2))
        client.makeConnection(transport)
        value = transport.value()
        self.assertIn(b"[serialgw: rack4: 115200,8N1, you are writer; also here: 192.0.2.9:1 (writer)]\r\n", value)
        self.assertTrue(value.endswith(b"login: "))

    def test_bannerWithoutNotices(self) -> None:
        """banner is sent when a listener asks for it, also where notices are off (raw's default, no-notices)."""
        banner = b"\r\n[serialgw: rack4: 115200,8N1, you are writer; also here: nobody]\r\n"
        for listener in ("raw,banner+4444", "telnet,banner,no-notices+4444"):
            h = Harness()
            spec = parseListener(listener)
            client = (RawClient if spec.protocol.value == "raw" else TelnetClient)(h.line, listener=spec)
            transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1))
            client.makeConnection(transport)
            self.assertTrue(transport.value().endswith(banner), (listener, transport.value()))

    def test_maxClients(self) -> None:
        """max-clients: the next connection is refused (told why, closed, never on the line)."""
        h = Harness()
        h.line.maxClients = 1
        factory = LineFactory(h.line, parseListener("telnet+4444"))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 1)))
        h.telnet(port=1)
        refused = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 2))
        self.assertNotIsInstance(refused, TelnetClient)
        refused.makeConnection(StringTransport())
        self.assertEqual(len(h.line.clients), 1)

    def test_noHandshakeSetWithoutTLS(self) -> None:
        """Listeners without TLS share one empty handshake set (no set a line), and their clients never go into it."""
        h = Harness()
        telnet, raw = (LineFactory(h.line, parseListener(text)) for text in ("telnet+4444", "raw+4445"))
        self.assertIs(telnet.handshakes, raw.handshakes)
        for port, factory in enumerate((telnet, raw, telnet), start=1):
            factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", port)).makeConnection(StringTransport())
        self.assertEqual((len(h.line.clients), telnet.handshakes), (3, set()))


class RealTCPTests(TestCase):
    timeout = 30

    async def test_everyClientListed(self) -> None:
        """The banner and ^] w list every client: the console log, a pty, a file, a pipe and the people."""
        import os

        from serialgw.config.logspec import LogSpec
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import closeClients, connect, listenerPort, startedPty, startGateway

        pty = startedPty(self)
        log, link, out, fifo = (os.path.abspath(self.mktemp()) for _ in range(4))
        os.mkfifo(fifo)
        config = LineConfig("rack4", DeviceSpec("tty", pty.slaveName), log=LogSpec(log), listeners=(
            parseListener("raw,escape=^],banner+tcp:0:interface=127.0.0.1"), parseListener(f"pty:{link}"),
            parseListener(f"file:{out}"), parseListener(f"pipe:{fifo}")), lockDir=testLockDir())
        service = startGateway(self, config)
        settings = service.lines["rack4"].settings.describe()
        others = f"log:{log} (read-only), pty:{link} (writer), file:{out} (read-only), pipe:{fifo} (writer)"
        first = await connect(listenerPort(service))
        banner = f"\r\n[serialgw: rack4: {settings}, you are writer; also here: {others}; escape key ^]]\r\n".encode()
        self.assertEqual(await first.received.length(len(banner)), banner)
        second = await connect(listenerPort(service))
        me, him = (f"127.0.0.1:{c.transport.getHost().port}" for c in (first, second))  # type: ignore[union-attr]
        await second.received.contains(f"also here: {others}, {me} (writer);".encode())
        second.transport.write(b"\x1dw")  # type: ignore[union-attr]
        who = f"\r\n[serialgw: rack4: {others}, {me} (writer), {him} (writer)]\r\n".encode()
        self.assertEqual((await second.received.contains(who))[-len(who):], who)
        await closeClients(first, second)

    async def test_monKeysOverTCP(self) -> None:
        """A mon: listener over real TCP: C-a h is QEMU's help, C-a C-a one C-a, C-a b a break, C-a x disconnects."""
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import connect, listenerPort, startedPty, startGateway

        pty = startedPty(self)
        config = LineConfig("vm100", DeviceSpec("tty", pty.slaveName),
                            listeners=(parseListener("mon:tcp:127.0.0.1:0,server,nowait"),), lockDir=testLockDir())
        service = startGateway(self, config)
        client = await connect(listenerPort(service))
        client.transport.write(b"\x01h")  # type: ignore[union-attr]
        help = b"\r\n[serialgw: " + QEMU_HELP.format(key="^A").encode() + b"]\r\n"
        self.assertEqual(await client.received.length(len(help)), help)
        client.transport.write(b"a\x01\x01\x01bz")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(3), b"a\x01z")
        self.assertEqual(service.lines["vm100"].device.breaks, 1)
        client.transport.write(b"\x01x")  # type: ignore[union-attr]
        await client.closed
        self.assertEqual(client.received.data, help + b"\r\n[serialgw: bye]\r\n")

    async def test_portScanNotAnnounced(self) -> None:
        """A real connection that opens and closes without a byte is not announced; the next one, which talks, is."""
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import closeClients, connect, listenerPort, startedPty, startGateway

        pty = startedPty(self)
        config = LineConfig("rack4", DeviceSpec("tty", pty.slaveName),
                            listeners=(parseListener("raw,notices+tcp:0:interface=127.0.0.1"),), lockDir=testLockDir())
        service = startGateway(self, config)
        port = listenerPort(service)
        alice = await connect(port)
        alice.transport.write(b"a")  # type: ignore[union-attr]
        await pty.received.length(1)
        scan = await connect(port)
        await closeClients(scan)
        bob = await connect(port)
        bob.transport.write(b"b")  # type: ignore[union-attr]
        await pty.received.length(2)
        peer = f"127.0.0.1:{bob.transport.getHost().port}"  # type: ignore[union-attr]
        notice = f"\r\n[serialgw: {peer} attached as writer]\r\n".encode()
        self.assertEqual(await alice.received.length(len(notice)), notice)
        await closeClients(bob)
        gone = f"\r\n[serialgw: {peer} detached]\r\n".encode()
        self.assertEqual(await alice.received.length(len(notice + gone)), notice + gone)
        await closeClients(alice)

    async def test_escapeCommandsOverTCP(self) -> None:
        """Every escape command over a real TCP connection, with the exact text it answers."""
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import connect, listenerPort, startedPty, startGateway

        pty = startedPty(self)
        config = LineConfig("rack4", DeviceSpec("tty", pty.slaveName),
                            listeners=(parseListener("raw,escape=^],notices+tcp:0:interface=127.0.0.1"),),
                            lockDir=testLockDir())
        service = startGateway(self, config)
        client = await connect(listenerPort(service))
        peer = f"127.0.0.1:{client.transport.getHost().port}"  # type: ignore[union-attr]
        device = service.lines["rack4"].device

        async def command(keys: bytes, answer: bytes) -> None:
            start = len(client.received.data)
            client.transport.write(keys)  # type: ignore[union-attr]
            await client.received.length(start + len(answer))
            self.assertEqual(client.received.data[start:], answer)

        client.transport.write(b"x")  # type: ignore[union-attr]
        await pty.received.length(1)
        await command(b"\x1dw", f"\r\n[serialgw: rack4: {peer} (writer)]\r\n".encode())
        pty.write(b"one\r\ntwo\r\n")
        await client.received.contains(b"two\r\n")
        await command(b"\x1dr", b"\r\n[serialgw: last 20 lines of rack4:]\r\none\r\ntwo\r\n")
        await command(b"\x1dB9600\r", b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n\r\n[serialgw: rack4 now at 9600,8N1]\r\n")
        await command(b"\x1ds", f"\r\n[serialgw: rack4: {pty.slaveName} up, 9600,8N1, 10 bytes in, 1 out, "
                                "0 breaks, 0 dropped while down, mode shared]\r\n".encode())
        await command(b"\x1do", f"\r\n[serialgw: {peer} now only watches]\r\n".encode())
        await command(b"\x1db", b"\r\n[serialgw: no break: you only watch: take write first]\r\n")
        await command(b"\x1dt", f"\r\n[serialgw: {peer} took write]\r\n".encode())
        client.transport.write(b"\x1dk")  # type: ignore[union-attr]
        client.transport.write(b"h\x1d\x1d")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(3), b"xh\x1d")
        self.assertEqual(device.breaks, 1)
        await command(b"\x1d?", b"\r\n[serialgw: " + HELP.encode() + b"]\r\n")
        await command(b"\x1dz", b"\r\n[serialgw: unknown escape command 'z'; ^] ? for help]\r\n")
        # A paste after ^] R: neither swallowed up to Enter nor sent; said.
        await command(b"\x1dR", b"\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n")
        await command(b"reboot -f\r", b"\r\n[serialgw: replay cancelled: 'r' is not a digit; the 9 byte(s) after it "
                                       b"were not sent to rack4]\r\n")
        client.transport.write(b"y")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(4), b"xh\x1dy")
        client.transport.write(b"\x1dd")  # type: ignore[union-attr]
        await client.closed
        self.assertTrue(client.received.data.endswith(b"\r\n[serialgw: bye]\r\n"))


class TextGateTests(SynchronousTestCase):
    def test_noticeWaitsForTheEscapeSequence(self) -> None:
        """A notice does not land inside device output cut in an escape sequence or a UTF-8 character: it follows the rest."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        h.line.deviceDataReceived(b"ok \x1b[3")
        h.telnet(port=2)
        h.line.deviceDataReceived(b"1mRED\x1b[0m \xe2\x82")
        h.telnet(port=3)
        h.line.deviceDataReceived(b"\xac\r\n")
        self.assertEqual(text(aliceT), "ok \x1b[31mRED\x1b[0m \u20ac\r\n"
                                       "\r\n[serialgw: 192.0.2.9:2 attached as writer]\r\n"
                                       "\r\n[serialgw: 192.0.2.9:3 attached as writer]\r\n")

    def test_heldAtMostHalfASecond(self) -> None:
        """A device that stops inside a sequence holds a notice 0.5 s at most; clean output sends it at once; no call is left."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        h.line.deviceDataReceived(b"\x1b")
        text(aliceT)
        alice.dataReceived(b"\x1dw")
        self.assertEqual(aliceT.value(), b"")
        h.line.clock.advance(0.5)
        self.assertEqual(text(aliceT), "\r\n[serialgw: rack4: 192.0.2.9:1 (writer)]\r\n")
        h.line.deviceDataReceived(b"\x1b]0;title\x07")
        alice.dataReceived(b"\x1dw")
        self.assertEqual(text(aliceT), "\x1b]0;title\x07\r\n[serialgw: rack4: 192.0.2.9:1 (writer)]\r\n")
        self.assertEqual(h.line.clock.getDelayedCalls(), [])

    def test_aytAnswerWaitsForTheEscapeSequence(self) -> None:
        """AYT's answer does not land inside device output cut in an escape sequence (it did: ESC [ 3 then '\\r\\n[' ended it, the device's 1m shown as text): it follows the rest, or goes after 0.5 s; with the output clean it goes at once, and negotiation answers never wait."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        h.line.deviceDataReceived(b"ok \x1b[3")
        text(aliceT)
        alice.dataReceived(b"\xff\xf6\xff\xfd\x63")
        self.assertEqual(aliceT.value(), b"\xff\xfc\x63")
        aliceT.clear()
        h.line.deviceDataReceived(b"1mRED")
        self.assertEqual(text(aliceT), "1mRED\r\n[serialgw: yes]\r\n")
        alice.dataReceived(b"\xff\xf6")
        self.assertEqual(text(aliceT), "\r\n[serialgw: yes]\r\n")
        h.line.deviceDataReceived(b"\xe2\x82")
        text(aliceT)
        alice.dataReceived(b"\xff\xf6")
        self.assertEqual(aliceT.value(), b"")
        h.line.clock.advance(0.5)
        self.assertEqual(text(aliceT), "\r\n[serialgw: yes]\r\n")
        self.assertEqual(h.line.clock.getDelayedCalls(), [])

    def test_leavingTakesTheTimer(self) -> None:
        """The last person with text held leaves (a hang-up mid-sequence, then a stop): the half-second timer goes with them."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        h.line.deviceDataReceived(b"\x1b[")
        alice.dataReceived(b"\x1dw")
        self.assertEqual([c.func.__name__ for c in h.line.clock.getDelayedCalls()], ["release"])
        alice.connectionLost()
        self.assertEqual(h.line.clock.getDelayedCalls(), [])

    def test_byeNotHeld(self) -> None:
        """Escape d mid-sequence: bye is written before the connection closes."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        h.line.deviceDataReceived(b"\xe2")
        text(aliceT)
        alice.dataReceived(b"\x1dd")
        self.assertEqual((text(aliceT), aliceT.disconnecting), ("\r\n[serialgw: bye]\r\n", True))


class EndsOpenTests(SynchronousTestCase):
    @settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=80) | st.lists(st.sampled_from(
        [b"\x1b", b"[", b"]", b"\x07", b"3", b"1m", b" ", b"(", b"\xc3", b"\xe2", b"\x82", b"\xf0", b"\x9f", b"a"]),
        max_size=90).map(b"".join))
    def test_sameAsTheWholeTail(self, data: bytes) -> None:
        """endsOpen's shortcut answers as the expression searched over the whole tail does, for any output."""
        self.assertEqual(endsOpen(data), OPEN.search(data[-TAIL:]) is not None)


class ComingsFloodTests(SynchronousTestCase):
    def test_churnNoticesBounded(self) -> None:
        """500 connections that talk and close within 10 s: 20 arrivals told (alice's own the first), each with its departure, then one count; the log the same."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        events: list[str] = []
        observeLog(self, lambda e: events.append(str(e.get("text", ""))) if "text" in e else None)
        for port in range(2, 502):
            other, _ = h.telnet(port=port)
            other.connectionLost()
            h.line.clock.advance(0.01)
        said = text(aliceT)
        self.assertEqual((said.count(" attached as writer]"), said.count(" detached]")), (19, 19))
        self.assertEqual(said.count("[serialgw: "), 38)
        h.line.clock.advance(10)
        self.assertEqual(text(aliceT), "\r\n[serialgw: 481 more connections came and went (not each announced)]\r\n")
        self.assertEqual(h.line.clock.getDelayedCalls(), [])
        later, _ = h.telnet(port=600)
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:600 attached as writer]\r\n")
        self.assertEqual(len([e for e in events if "attached" in e or "detached" in e or "came and went" in e]), 40)

    def test_letGoSendsHeldText(self) -> None:
        """The line let go (a stop) with a notice held and arrivals untold: the notice goes at once, no call is left on the clock."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        for port in range(2, 40):
            h.telnet(port=port)[0].connectionLost()
        h.line.deviceDataReceived(b"\x1b[")
        text(aliceT)
        alice.dataReceived(b"\x1dw")
        h.line.letGo()
        self.assertIn("[serialgw: rack4: ", text(aliceT))
        self.assertEqual(h.line.clock.getDelayedCalls(), [])
