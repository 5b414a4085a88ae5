"""
The gateway stopping, or a reload removing a line, with people on it: the
line is left as when the last person leaves (close-string, breaks
included, then the idle DTR/RTS) while its device is still open, the
device is closed once it has taken that (at most LET_GO_LIMIT s), and the
people leaving afterwards send nothing more.
"""

from __future__ import annotations

import signal
from typing import Any, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.binding import StartupError
from serialgw.app.process import TwistdGatewayService
from serialgw.app.service import GatewayService
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import WatchAllSpec
from serialgw.config.logspec import LogSpec
from serialgw.config.parsers import parseSendString
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.line.hub import Line
from serialgw.line.strings import LET_GO_LIMIT
from tests.fakes import LogEvents, RecordingClient, RecordingPort, ThreadedReactorClock
from tests.line.test_attach import person


class StopTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        self.log = LogEvents(self)

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0  # a tty with modem lines
        self.ports.append(port)
        return port

    def gateway(self, closeString: str = r"exit\r", openString: str = r"login\r",
                **config: Any) -> tuple[GatewayService, Line]:
        """A started gateway of one line "t" (open-string login\\r) on a recording port."""
        line = LineConfig("t", DeviceSpec("tty", "/dev/fake"), openString=parseSendString(openString),
                          closeString=parseSendString(closeString), **config)
        service = GatewayService([line], reactor=self.clock, openPort=self.openPort)
        service.startService()
        return service, service.lines["t"]

    def calls(self, index: int = 0) -> list[tuple[float, str, Any]]:
        """What port C{index} was asked, with the time, the reading side's watching left out."""
        return [event for event in self.ports[index].events if event[1] != "watch"]

    def logged(self, text: str) -> list[str]:
        return [e["log_format"] for e in self.log.events if text in (e.get("log_format") or "")]

    def test_closeStringThenClose(self) -> None:
        """Stop with a person attached: the close-string is written, then the port closed; the person leaving afterwards sends nothing."""
        service, line = self.gateway()
        client = person()
        line.attach(client)
        stopped = service.stopService()
        self.assertEqual(self.calls(), [(0, "write", b"login\r"), (0, "write", b"exit\r"), (0, "close", None)])
        self.assertTrue(stopped.called)
        line.detach(client)
        self.assertEqual(len(self.calls()), 3)
        self.assertEqual((line.people, line.bytesToDevice, line.device.dropped,
                          line.device.bytesWritten),  # type: ignore[attr-defined]
                         (0, 11, 0, 11))
        self.assertEqual(len(self.logged("{what} sent")), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_breakBeforeClose(self) -> None:
        """A close-string with \\b: data, break, break off, data, then the idle DTR once that is sent, then the close."""
        service, line = self.gateway(r"bye\r\bz", idleDtr=False)
        client = person()
        line.attach(client)
        stopped = service.stopService()
        self.assertFalse(stopped.called)
        self.clock.advance(0.25)
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        self.assertEqual(self.calls(), [
            (0, "dtr", False), (0, "dtr", True), (0, "write", b"login\r"),
            (0, "write", b"bye\r"), (0, "break", True),
            (0.25, "break", False), (0.25, "write", b"z"), (0.3, "dtr", False), (0.3, "close", None)])
        line.detach(client)
        self.assertEqual(len(self.calls()), 9)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_neverDrains(self) -> None:
        """A device that takes nothing (held by flow control): the stop ends after LET_GO_LIMIT s, logged naming the line; what it never took is dropped, not counted sent."""
        service, line = self.gateway()
        client = person()
        line.attach(client)
        self.ports[0].accept = 0
        stopped = service.stopService()
        self.clock.advance(LET_GO_LIMIT - 0.05)
        self.assertFalse(stopped.called)
        self.assertEqual(self.calls()[-1], (0, "write", b"login\r"))
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        self.assertEqual(self.calls()[-1], (LET_GO_LIMIT, "close", None))
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "within {limit} s" in e["log_format"]]
        self.assertEqual((warning["line"], warning["limit"], warning["left"]), ("t", LET_GO_LIMIT, "5 byte(s) queued"))
        self.assertEqual((line.bytesToDevice, line.device.dropped), (6, 5))
        line.detach(client)
        self.assertEqual((line.bytesToDevice, line.device.dropped), (6, 5))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_noCloseStringNoWait(self) -> None:
        """No close-string: the stop closes a device that takes nothing at once (typing stuck in its queue holds nothing); those bytes are dropped, not counted as reaching it."""
        service, line = self.gateway("")
        client = person()
        line.attach(client)
        self.ports[0].accept = 0
        line.clientData(client, b"ls\r")
        self.assertTrue(service.stopService().called)
        self.assertEqual(self.calls()[-1], (0, "close", None))
        self.assertEqual((line.bytesToDevice, line.device.dropped), (6, 3))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_downDeviceNoWait(self) -> None:
        """The device down at the stop (unplugged) with a person on it and an open-string unfinished: no close-string, no wait, each said in the log with why."""
        service, line = self.gateway(openString=r"a\b\bb")
        line.attach(person())
        self.assertEqual(len(line._stringItems), 2)  # the second break and b wait for the first break's end
        self.ports[0].error = OSError(5, "Input/output error")
        line.device.doRead()  # type: ignore[attr-defined]
        self.assertTrue(service.stopService().called)
        self.assertEqual(line._stringItems, [])
        self.assertEqual([(e["log_format"], e["what"]) for e in self.log.events if "not sent" in e["log_format"]],
                         [("{line}: {what} not sent: the device is down ({reason}){later}", "close-string"),
                          ("{line}: {what}: {left} not sent: the device is {state}", "open-string")])
        self.assertEqual([(e.get("reason"), e.get("state"), e.get("left")) for e in self.log.events
                          if "not sent" in e["log_format"]],
                         [("Input/output error", None, None), (None, "down (Input/output error)", "1 byte(s) and 1 break(s)")])
        self.assertEqual((line.bytesToDevice, line.device.dropped), (1, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nobodyAttached(self) -> None:
        """No person on the line (a file client, a quiet connection never announced, the last person gone before): no close-string at stop, the port closes at once."""
        service, line = self.gateway(idleDtr=False)
        earlier = person("a")
        line.attach(earlier)
        line.detach(earlier)
        line.attach(RecordingClient("file:/x"))
        line.attach(person("b"), quiet=True)
        before = len(self.calls())
        self.assertTrue(service.stopService().called)
        self.assertEqual(self.calls()[before:], [(0, "close", None)])
        self.assertEqual(len(self.logged("{what} sent")), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nothingAfterTheStop(self) -> None:
        """After the stop's close-string, people leaving, a quiet one announced and an RFC 2217 writer leaving send nothing: one close-string, idle DTR once, no open-string, nothing dropped."""
        service, line = self.gateway(idleDtr=False)
        a, b, quiet = person("a"), person("b"), person("c")
        line.attach(a)
        line.attach(b)
        line.addController(b)
        line.attach(quiet, quiet=True)
        service.stopService()
        line.detach(a)
        line.introduce(quiet)
        line.detach(quiet)
        line.detach(b)
        self.assertEqual([(what, value) for _, what, value in self.calls()[3:]],
                         [("write", b"exit\r"), ("dtr", False), ("close", None)])
        self.assertEqual((line.bytesToDevice, line.device.dropped), (11, 0))
        self.assertEqual(self.logged("not sent"), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_rfc2217WriterPutBack(self) -> None:
        """An RFC 2217 writer holding a break and its own speed at the stop: the break ended and the configured settings back (as when it leaves), then the close-string, then the close."""
        service, line = self.gateway()
        client = person()
        line.attach(client)
        line.addController(client)
        line.clientSettings(client, SerialSettings(baudrate=9600))
        line.clientBreakHold(client, True)
        before = len(self.calls())
        self.assertTrue(service.stopService().called)
        self.assertEqual([(what, value) for _, what, value in self.calls()[before:]], [
            ("break", False), ("apply", SerialSettings()), ("write", b"exit\r"), ("close", None)])
        line.detach(client)
        self.assertEqual(len(self.calls()), before + 4)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reloadRemovesLine(self) -> None:
        """A reload removing a line with a person on it: close-string (break included) and idle DTR, then the close; the reload answers after."""
        service, line = self.gateway(r"bye\r\bz", idleDtr=False)
        client = person()
        line.attach(client)
        result = service.reload([])
        self.assertFalse(result.called)
        self.assertEqual(client.notices, ["this line was removed from the configuration"])
        self.clock.advance(0.25)
        self.clock.advance(0.05)
        self.assertEqual(self.successResultOf(result), {"added": [], "changed": [], "removed": ["t"]})
        self.assertEqual([(what, value) for _, what, value in self.calls()[3:]], [
            ("write", b"bye\r"), ("break", True), ("break", False), ("write", b"z"), ("dtr", False),
            ("close", None)])
        line.detach(client)
        self.assertEqual(len(self.calls()), 9)
        self.assertTrue(service.stopService().called)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reloadHandsOverWhatWasReadFirst(self) -> None:
        """A reload removing a line: what its device read and had not handed on (a mover's pipe) reaches its people before they are sent away, not after (then to nobody)."""
        service, line = self.gateway(closeString="")
        client = person()
        line.attach(client)
        events: list[str] = []

        def deliverRead() -> None:
            events.append("read")
            line.deviceDataReceived(b"moved")

        def disconnect(why: Optional[str] = None) -> None:
            events.append("gone")
            line.detach(client)

        line.device.deliverRead = deliverRead  # type: ignore[method-assign]
        client.disconnect = disconnect  # type: ignore[method-assign]
        service.reload([])
        self.assertEqual(events, ["read", "gone"])
        self.assertEqual(client.received, [b"moved"])

    def test_reloadHandsOverWhatWasReadFirstCoalesced(self) -> None:
        """The same on a line that coalesces its output: what the device hands over is not held to coalesce (then flushed after they were sent away: lost to them) but reaches them first."""
        service, line = self.gateway(closeString="")
        line.coalesce(0.05, 0.5)
        client = person()
        line.attach(client)
        received: list[list[bytes]] = []
        line.device.deliverRead = lambda: line.deviceDataReceived(b"moved")  # type: ignore[method-assign]

        def disconnect(why: Optional[str] = None) -> None:
            received.append(list(client.received))
            line.detach(client)

        client.disconnect = disconnect  # type: ignore[method-assign]
        service.reload([])
        self.assertEqual(received, [[b"moved"]])

    def test_reloadReopensAfterCloseString(self) -> None:
        """A reload changing a line's device: the old device takes the close-string and closes before the new one is opened."""
        service, line = self.gateway(r"bye\r\bz")
        line.attach(person())
        new = LineConfig("t", DeviceSpec("tty", "/dev/other"), openString=parseSendString(r"login\r"),
                         closeString=parseSendString(r"bye\r\bz"))
        result = service.reload([new])
        self.assertEqual(len(self.ports), 1)
        self.clock.advance(0.25)
        self.assertEqual(len(self.ports), 1)
        self.clock.advance(0.05)
        self.assertEqual(self.successResultOf(result), {"added": [], "changed": ["t"], "removed": []})
        self.assertEqual(self.calls()[-2:], [(0.25, "write", b"z"), (0.3, "close", None)])
        self.assertEqual(len(self.ports), 2)
        service.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopWaitsForAReloadsClose(self) -> None:
        """A stop while a line a reload removed still takes its close-string: the stop ends when that device is closed too."""
        service, line = self.gateway()
        line.attach(person())
        self.ports[0].accept = 0
        service.reload([])
        self.clock.advance(1.0)
        stopped = service.stopService()
        self.assertFalse(stopped.called)
        self.clock.advance(1.0)
        self.assertTrue(stopped.called)
        self.assertEqual(self.calls()[-1], (LET_GO_LIMIT, "close", None))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nothingFromPeopleWhileLetGo(self) -> None:
        """People still connected while the stop waits for the close-string: their typing, breaks, settings, DTR and purges do not reach the device (nothing lands inside or after the close-string); the typing is counted refused."""
        service, line = self.gateway(r"bye\r\bz")
        client = person()
        line.attach(client)
        line.addController(client)
        stopped = service.stopService()
        before = len(self.calls())
        self.assertFalse(line.clientData(client, b"ls\r"))
        self.assertFalse(line.clientBreak(client))
        line.clientSettings(client, SerialSettings(baudrate=9600))
        line.clientModemLine(client, "dtr", False)
        self.assertFalse(line.clientPurge(client, False, True))
        line.clientBreakHold(client, False)
        self.assertEqual(self.calls()[before:], [])
        self.clock.advance(0.25)
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        self.assertEqual([(what, value) for _, what, value in self.calls()[before:]],
                         [("break", False), ("write", b"z"), ("close", None)])
        self.assertEqual((line.bytesToDevice, line.refused), (11, 3))
        self.assertEqual(client.notices, ["the gateway is stopping", "no break: t is closing"])
        line.detach(client)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pausedWriterResumed(self) -> None:
        """A writer paused by a full device is resumed when the device drains or is closed, the line let go: what it sends is read and refused, not left unread (its connection could not close)."""
        service, line = self.gateway("")
        client = person()
        line.attach(client)
        line.deviceWritable(False)
        self.assertTrue(service.stopService().called)
        line.deviceWritable(True)
        self.assertEqual((client.paused, client.resumed), (1, 1))
        self.assertFalse(line.clientData(client, b"x"))

    def test_hurried(self) -> None:
        """The stop hurried (SIGTERM again) while two devices take their close-strings (one of a line a reload removed, held by flow control; one in its breaks): both closed at once, named in the log, nothing left on the clock."""
        t = LineConfig("t", DeviceSpec("tty", "/dev/t"), closeString=parseSendString(r"exit\r"))
        u = LineConfig("u", DeviceSpec("tty", "/dev/u"), closeString=parseSendString(r"x\b\b\b\bx"))
        service = GatewayService([t, u], reactor=self.clock, openPort=self.openPort)
        service.startService()
        for line in service.lines.values():
            line.attach(person())
        self.ports[0].accept = 0
        reloaded = service.reload([u])
        self.clock.advance(0.5)
        stopped = service.stopService()
        self.clock.advance(0.1)
        self.assertFalse(stopped.called)
        service.hurry("SIGTERM")
        self.assertTrue(stopped.called)
        self.assertEqual(self.successResultOf(reloaded), {"refused": ["the gateway stopped before the reload was done"]})
        self.assertEqual([self.calls(i)[-1] for i in (0, 1)], [(0.6, "close", None), (0.6, "close", None)])
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "during the stop" in e["log_format"]]
        self.assertEqual((warning["why"], warning["count"], warning["lines"]), ("SIGTERM", 2, "t u"))
        self.assertEqual([(e["line"], e["left"]) for e in self.log.at(LogLevel.warn) if "hurried" in e["log_format"]],
                         [("t", "5 byte(s) queued"),
                          ("u", "close-string: 1 byte(s) and 3 break(s) not sent yet, a break under way")])
        service.hurry("SIGINT")
        self.assertEqual(self.logged("nothing is waited for"), ["{why} during the stop: nothing is waited for"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_secondSignalUnderTwistd(self) -> None:
        """Under twistd, SIGTERM or SIGINT while the stop waits for a close-string hurries it (Twisted's handler stopped the stopping reactor again: a traceback, and the wait went on); the handlers before are back once it has stopped."""
        before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        for signum, handler in before.items():
            self.addCleanup(signal.signal, signum, handler)
        self.clock = ThreadedReactorClock()
        service = TwistdGatewayService([LineConfig("t", DeviceSpec("tty", "/dev/t"), closeString=parseSendString(r"exit\r"))],
                                       reactor=self.clock, openPort=self.openPort)
        # (Not TwistdGatewayService's own: they would take SIGHUP and SIGUSR1, and freeze the collector.)
        GatewayService.privilegedStartService(service)
        GatewayService.startService(service)
        service.lines["t"].attach(person())
        self.ports[0].accept = 0
        stopped = service.stopService()
        self.clock.advance(0.5)
        handler = signal.getsignal(signal.SIGTERM)
        self.assertNotEqual((handler, signal.getsignal(signal.SIGINT)), (before[signal.SIGTERM], before[signal.SIGINT]))
        assert callable(handler)
        handler(signal.SIGTERM, None)
        self.assertFalse(stopped.called)
        self.clock.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(self.calls()[-1], (0.5, "close", None))
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "during the stop" in e["log_format"]]
        self.assertEqual((warning["why"], warning["lines"]), ("SIGTERM", "t"))
        self.assertEqual({signum: signal.getsignal(signum) for signum in before}, before)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_quickStopKeepsSignals(self) -> None:
        """Under twistd, a stop with nothing to wait for leaves SIGTERM and SIGINT to Twisted."""
        before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        service = TwistdGatewayService([], reactor=self.clock)
        self.successResultOf(service.stopService())
        self.assertEqual({signum: signal.getsignal(signum) for signum in before}, before)

    def test_stoppingToldQuietly(self) -> None:
        """A line with a console log and nobody on it: its log records the stop, with no line in the gateway's log; a line with people: both."""
        logPath = self.mktemp()
        service, line = self.gateway(log=LogSpec(logPath, format=""))
        service.stopService()
        with open(logPath, "rb") as f:
            self.assertEqual(f.read(), b"[serialgw: the gateway is stopping]\n")
        self.assertEqual(self.logged("{text}"), [])

    def test_failedStartWritesNoStop(self) -> None:
        """A start that fails (a listener that cannot open) writes nothing in a console log: it may be a running gateway's, which is not stopping."""
        logPath = self.mktemp()
        with open(logPath, "wb") as f:
            f.write(b"the other gateway's\n")
        line = LineConfig("t", DeviceSpec("tty", "/dev/fake"), log=LogSpec(logPath, format=""),
                          listeners=(parseListener(f"file:{self.mktemp()}/missing/out"),))
        service = GatewayService([line], reactor=self.clock, openPort=self.openPort)
        self.assertRaises(StartupError, service.startService)
        with open(logPath, "rb") as f:
            self.assertEqual(f.read(), b"the other gateway's\n")

    def test_recordsTakeTheAnswer(self) -> None:
        """At stop the people are told and the console log says so; what the device says while the stop waits for its close-string (its answer to it) is in the console log and a file: listener too, as the people still connected get it; both close after the device."""
        logPath, outPath = self.mktemp(), self.mktemp()
        service, line = self.gateway(r"bye\r\bz", log=LogSpec(logPath, format=""),
                                     listeners=(parseListener(f"file:{outPath}"),))
        client = person()
        line.attach(client)
        stopped = service.stopService()
        self.ports[0].incoming.append(b"logout\r\n")
        line.device.doRead()  # type: ignore[attr-defined]
        self.clock.advance(0.25)
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        self.assertEqual((client.received, client.notices), ([b"logout\r\n"], ["the gateway is stopping"]))
        with open(logPath, "rb") as f:
            self.assertEqual(f.read(), b"[serialgw: p:1 attached as writer]\n[serialgw: the gateway is stopping]\nlogout\r\n")
        with open(outPath, "rb") as f:
            self.assertEqual(f.read(), b"logout\r\n")
        self.assertEqual((line.logs, [c.peer for c in line.clients]), ([], ["p:1"]))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_watchAllTakesTheAnswer(self) -> None:
        """A watch-all view stays at a stop until its lines' devices are closed: it gets a device's answer to its close-string (a partial last line flushed), and closes after the last of them, not at once."""
        configs = [LineConfig("t", DeviceSpec("tty", "/dev/t"), closeString=parseSendString(r"bye\r\bz")),
                   LineConfig("u", DeviceSpec("tty", "/dev/u"))]
        service = GatewayService(configs, reactor=self.clock, openPort=self.openPort,
                                 watchAll=WatchAllSpec((parseListener("tcp:0:interface=127.0.0.1"),)))
        service.startService()
        factory = service.watchers[0]
        watcher = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        watcher.makeConnection(transport)
        line = service.lines["t"]
        line.attach(person())
        stopped = service.stopService()
        self.assertEqual(self.calls(1)[-1], (0, "close", None))
        self.assertEqual((sorted(watcher.taps), transport.disconnecting), (["t"], False))
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001)))
        self.ports[0].incoming.append(b"logout\r\nlogin: ")
        line.device.doRead()  # type: ignore[attr-defined]
        self.clock.advance(0.25)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        self.assertEqual(self.calls(0)[-1], (0.3, "close", None))
        self.assertEqual((transport.value(), transport.disconnecting, watcher.taps), (b"t: logout\r\nt: login: \r\n", True, {}))
        self.assertEqual(line.clients[1:], [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_watchAllHurried(self) -> None:
        """A stop hurried while a line takes its close-string: the watch-all view watching it closes with its device, at once."""
        configs = [LineConfig("t", DeviceSpec("tty", "/dev/t"), closeString=parseSendString(r"exit\r"))]
        service = GatewayService(configs, reactor=self.clock, openPort=self.openPort,
                                 watchAll=WatchAllSpec((parseListener("tcp:0:interface=127.0.0.1"),)))
        service.startService()
        watcher = service.watchers[0].buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        watcher.makeConnection(transport)
        service.lines["t"].attach(person())
        self.ports[0].accept = 0
        stopped = service.stopService()
        self.clock.advance(0.5)
        self.assertFalse(transport.disconnecting)
        service.hurry("SIGTERM")
        self.assertTrue(stopped.called)
        self.assertEqual((transport.disconnecting, watcher.taps), (True, {}))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reloadRecordsTakeTheAnswer(self) -> None:
        """A reload removing the line: its console log gets the device's answer to the close-string and closes after the device; a stop meanwhile closes it once."""
        logPath = self.mktemp()
        service, line = self.gateway(r"bye\r\bz", log=LogSpec(logPath, format=""))
        line.attach(person())
        service.reload([])
        self.ports[0].incoming.append(b"logout\r\n")
        line.device.doRead()  # type: ignore[attr-defined]
        stopped = service.stopService()
        self.clock.advance(0.25)
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        with open(logPath, "rb") as f:
            self.assertEqual(f.read(), b"[serialgw: p:1 attached as writer]\nlogout\r\n")
        self.assertEqual(line.logs, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_driverHoldsCloseString(self) -> None:
        """The close-string taken by the driver but not sent yet (TIOCOUTQ: a port held by flow control): the stop waits until the driver has sent it, then closes without a purge."""
        service, line = self.gateway()
        line.attach(person())
        self.ports[0].pending = 5
        stopped = service.stopService()
        self.clock.advance(1.0)
        self.assertFalse(stopped.called)
        self.ports[0].pending = 0
        self.clock.advance(0.05)
        self.assertTrue(stopped.called)
        self.assertEqual([(what, value) for _, what, value in self.calls()[-2:]], [("write", b"exit\r"), ("close", None)])
        self.assertEqual((line.bytesToDevice, line.device.dropped), (11, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_driverNeverSends(self) -> None:
        """A port whose driver never sends the close-string (CTS held low): after LET_GO_LIMIT s its output queue is purged before the close (Linux's close would wait closing_wait, 30 s, the reactor with it); what the driver and our queue held is dropped, counted, not sent."""
        service, line = self.gateway()
        line.attach(person())
        self.ports[0].accept, self.ports[0].pending = 2, 2
        stopped = service.stopService()
        self.clock.advance(LET_GO_LIMIT)
        self.assertTrue(stopped.called)
        self.assertEqual([(what, value) for _, what, value in self.calls()[-3:]],
                         [("write", b"ex"), ("purge", (False, True)), ("close", None)])
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "within {limit} s" in e["log_format"]]
        self.assertEqual((warning["line"], warning["left"]), ("t", "5 byte(s) queued"))
        self.assertEqual((line.bytesToDevice, line.device.dropped), (6, 5))
        self.assertEqual(self.clock.getDelayedCalls(), [])
