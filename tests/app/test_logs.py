"""
Logs as an administrator reads them: the journal's format under systemd,
Twisted's noise left out, start-up errors as one line.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import fail, succeed
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, globalLogPublisher
from twisted.python import log as legacyLog
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody

from serialgw.app.logs import JournalObserver, TidyObserver, journalStream, tidy
from serialgw.devices.backoff import DialEndpoint
from serialgw.line.hub import Line
from tests.fakes import CallObserver, RecordingClient, RecordingDevice
from tests.realio import TWISTD, spawn, startProcess
from tests.shortpaths import shortDirectory


def captured(emit: Any) -> list[dict[str, Any]]:
    """The events that C{emit()} publishes, as observers see them."""
    events: list[dict[str, Any]] = []
    observer = CallObserver(events.append)
    globalLogPublisher.addObserver(observer)
    try:
        emit()
    finally:
        globalLogPublisher.removeObserver(observer)
    return events


class JournalStreamTests(SynchronousTestCase):
    def test_matchesDeviceAndInode(self) -> None:
        """JOURNAL_STREAM names our stream when DEVICE:INODE is the file at that descriptor, and only then."""
        with open(self.mktemp(), "w") as f:
            st = os.fstat(f.fileno())
            self.assertTrue(journalStream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f.fileno()))
            self.assertFalse(journalStream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f.fileno()))
            self.assertFalse(journalStream({"JOURNAL_STREAM": "garbage"}, f.fileno()))
            for garbage in ("\u00b2:1", "1:\u00b2", ":", "-1:5", " 1:5"):
                self.assertFalse(journalStream({"JOURNAL_STREAM": garbage}, f.fileno()), garbage)
            self.assertFalse(journalStream({}, f.fileno()))


class ObserverTests(SynchronousTestCase):
    def test_priorities(self) -> None:
        """Each line starts with its syslog priority (<3> error, <4> warn, <6> info, <7> debug) and has no timestamp."""
        out = io.StringIO()
        observer = JournalObserver(out)
        log = Logger(namespace="serialgw.app.service", observer=observer)
        log.error("line {line}: device lost", line="a")
        log.warn("careful")
        log.info("listener ready")
        log.debug("details")
        Logger(namespace="twisted.internet.base", observer=observer).info("Received SIGTERM, shutting down.")
        self.assertEqual(out.getvalue(), "<3>line a: device lost\n<4>careful\n<6>listener ready\n<7>details\n"
                                         "<6>Received SIGTERM, shutting down.\n")

    def test_tracebackLineByLine(self) -> None:
        """A failure's traceback: every line carries the priority, so journald keeps it at that level."""
        out = io.StringIO()
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            Logger(namespace="serialgw.line.hub", observer=JournalObserver(out)).failure("handler failed")
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], "<2>handler failed")
        self.assertEqual(lines[-1], "<2>builtins.ZeroDivisionError: division by zero")
        self.assertTrue(all(line.startswith("<2>") for line in lines), lines)

    def test_noise(self) -> None:
        """Twisted's "X starting on N" (a TLS listener's "LineFactory (TLS) starting on N" too) and "(TCP Port N Closed)" go; other legacy messages stay."""
        events = captured(lambda: (legacyLog.msg("LineFactory starting on 4444"), legacyLog.msg("(TCP Port 4444 Closed)"),
                                   legacyLog.msg("Site starting on 8440"), legacyLog.msg("LineFactory (TLS) starting on 4443"),
                                   legacyLog.msg("something else"), legacyLog.msg("a line (with words) starting on 4443")))
        self.assertEqual([tidy(e) is None for e in events], [True, True, True, True, False, False])

    def retryLine(self, path: str, attempt: int, delay: float, endpoint: Any = None) -> str:
        """The journal line for ClientService's retry message about a dial-out to unix C{path} (or C{endpoint})."""
        endpoint = endpoint or UNIXClientEndpoint(reactor, path)
        events = captured(lambda: Logger(namespace="twisted.application._client_service.ClientService").info(
            "Scheduling retry {attempt} to connect {endpoint} in {delay} seconds.", attempt=attempt, endpoint=endpoint,
            delay=delay))
        out = io.StringIO()
        TidyObserver(JournalObserver(out), toStdout=False)(events[0])
        return out.getvalue()

    def test_retryMessage(self) -> None:
        """A dial-out's retry names its endpoint and rounds its delay (no <... object at 0x...>)."""
        self.assertEqual(self.retryLine("/run/qemu/100.serial0", 3, 1.7888181167492454),
                         "<6>/run/qemu/100.serial0: cannot connect; retry 3 in 1.8 s\n")

    def test_retryMessageAbstractName(self) -> None:
        """A dial-out to an abstract unix name is named @NAME in the retry message: no NUL byte reaches the log."""
        self.assertEqual(self.retryLine("\0qemu-100", 1, 1.0), "<6>@qemu-100: cannot connect; retry 1 in 1.0 s\n")

    def test_retryMessageSaysWhy(self) -> None:
        """A failed dial's retry message says why (here: refused), and its endpoint is still named."""
        endpoint = DialEndpoint(FailingEndpoint(ConnectionRefusedError(string="Connection refused")))
        self.failureResultOf(endpoint.connect(Factory()), ConnectionRefusedError)
        self.assertEqual(self.retryLine("", 2, 2.0, endpoint),
                         "<6>/run/x.sock: cannot connect: Connection was refused by other side: Connection refused;"
                         " retry 2 in 2.0 s\n")

    def test_retryMessageAfterConnection(self) -> None:
        """A redial after a connection that was made and lost says so: no 'cannot connect' for a peer that accepted and closed."""
        endpoint = DialEndpoint(FailingEndpoint(None))
        self.successResultOf(endpoint.connect(Factory()))
        self.assertEqual(self.retryLine("", 1, 1.25, endpoint), "<6>/run/x.sock: connection closed; retry 1 in 1.2 s\n")

    def test_retryCountIsTheBackoffs(self) -> None:
        """The retry message counts as the dial-out's backoff does, not as ClientService (which starts again at every connection), past 100 attempts too (the delay's input is bounded there, the count is not)."""
        from twisted.application.internet import backoffPolicy

        from serialgw.devices.backoff import CarriedBackoff

        backoff = CarriedBackoff(Clock(), backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0, jitter=lambda: 0))
        endpoint = DialEndpoint(FailingEndpoint(ConnectionRefusedError(string="Connection refused")), backoff)
        self.failureResultOf(endpoint.connect(Factory()), ConnectionRefusedError)
        self.assertEqual([backoff(n) for n in range(1, 151)][-1], 30.0)
        self.assertEqual(self.retryLine("", 1, 30.0, endpoint),
                         "<6>/run/x.sock: cannot connect: Connection was refused by other side: Connection refused;"
                         " retry 150 in 30.0 s\n")

    def test_startupErrorOneLine(self) -> None:
        """twistd's stderr text for our SystemExit goes to the terminal as the one line it is, not to the log as well."""
        events = captured(lambda: Logger(namespace="stderr").error(
            "{log_io}", log_io="serialgw: error: line 'a': cannot open device '/dev/x': No such file or directory"))
        inner: list[dict[str, Any]] = []
        stderr = io.StringIO()
        TidyObserver(inner.append, toStdout=True, stderr=stderr)(events[0])
        self.assertEqual(stderr.getvalue(), "serialgw: error: line 'a': cannot open device '/dev/x': No such file or directory\n")
        self.assertEqual(inner, [])
        events[0]["log_level"] = LogLevel.error
        journal = io.StringIO()
        TidyObserver(JournalObserver(journal), toStdout=False)(events[0])
        self.assertEqual(journal.getvalue(), "<3>serialgw: error: line 'a': cannot open device '/dev/x': No such file or directory\n")


class FailingEndpoint:
    """A client endpoint to /run/x.sock whose connect fails with C{error}, or gives a protocol if it is None."""

    def __init__(self, error: Any) -> None:
        self._path = "/run/x.sock"
        self.error = error

    def connect(self, factory: Any) -> Any:
        """The outcome at once."""
        return fail(self.error) if self.error is not None else succeed(Protocol())


class MessageTests(SynchronousTestCase):
    def test_oneStop(self) -> None:
        """A reason that ends in a full stop does not stand before "; waiting" with it."""
        line = Line("vm100", RecordingDevice(), clock=Clock())
        client = RecordingClient()
        line.attach(client)
        line.deviceLost(Failure(ConnectionDone()))
        self.assertEqual(client.deviceStates, [
            (False, b"\r\n[serialgw: vm100 is down: Connection was closed cleanly; waiting for it]\r\n")])


JOURNAL = "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/1) exec "
STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class TwistdTests(TestCase):
    timeout = 30

    async def test_underJournal(self) -> None:
        """twistd under systemd's journal: <N> prefixes, no timestamps, no access log or "starting on" lines."""
        argv = ["/bin/sh", "-c", JOURNAL + " ".join(TWISTD[:2]) + " 'from twisted.scripts.twistd import run; run()'"
                " -n --pidfile= serialgw --device pty: --port tcp:0:interface=127.0.0.1"
                " --status tcp:0:interface=127.0.0.1"]
        proc = startProcess(self, argv)
        data = await proc.output.contains(b"Prometheus metrics on /metrics\n")
        port = re.search(rb"status page \(JSON\) on http://127\.0\.0\.1:(\d+)/", data)
        assert port is not None
        response = await Agent(reactor).request(b"GET", b"http://127.0.0.1:%s/metrics" % port.group(1))
        await readBody(response)
        await proc.stop()
        lines = proc.output.data.decode().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[2-7]>")
        self.assertNotRegex(proc.output.data, STAMP)
        self.assertNotIn(b"starting on", proc.output.data)
        self.assertNotIn(b"GET /metrics", proc.output.data)
        self.assertIn(b"\n<6>line pty: telnet listener ready on 127.0.0.1:", proc.output.data)

    async def test_startupErrorUnderJournal(self) -> None:
        """A start-up error under the journal: one <3> line, exit status 1."""
        argv = ["/bin/sh", "-c", JOURNAL + " ".join(TWISTD[:2]) + " 'from twisted.scripts.twistd import run; run()'"
                " -n --pidfile= serialgw --device /dev/nonexistent-tty --port tcp:0:interface=127.0.0.1"]
        proc = spawn(argv)
        self.assertEqual(await proc.ended, 1)
        errors = [line for line in proc.output.data.splitlines() if line.startswith(b"<3>")]
        self.assertEqual(errors, [b"<3>serialgw: error: line 'nonexistent-tty': cannot open device "
                                  b"'/dev/nonexistent-tty': No such file or directory (not there now: --wait-for-device "
                                  b"starts the line down and opens it once it is there)"])

    async def test_startupErrorOnTerminal(self) -> None:
        """Outside the journal a start-up error is printed bare, once, not as [stderr#error]."""
        proc = spawn(TWISTD + ["-n", "--pidfile=", "serialgw", "--device", "/dev/nonexistent-tty", "--port",
                               "tcp:0:interface=127.0.0.1"])
        self.assertEqual(await proc.ended, 1)
        self.assertNotIn(b"stderr#error", proc.output.data)
        self.assertEqual(proc.output.data.count(b"serialgw: error:"), 1)
        self.assertIn(b"\nserialgw: error: line 'nonexistent-tty': cannot open device '/dev/nonexistent-tty': "
                      b"No such file or directory (not there now: --wait-for-device starts the line down and opens it "
                      b"once it is there)\n", b"\n" + proc.output.data)




class DialOutRetryTests(TestCase):
    async def test_retryNamesTheLineAndWhatIsThere(self) -> None:
        """A line's dial-out retry message names the line, and for a unix path that is no socket, what is there: it said only '/run/x: cannot connect: Connection was refused ...', alike for every line dialling it, as a unix: device's did."""
        from tests.realio import ptyLine, startedPty, startGateway, until

        # (Short: a trial temp path is past a unix socket name's 107 bytes.)
        directory = shortDirectory(self, "serialgw-dial-")
        events: list[dict[str, Any]] = []
        observer = CallObserver(events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        startGateway(self, ptyLine(startedPty(self), f"unix:{directory},nowait", name="vm7"))
        retries = lambda: [e for e in events if str(e.get("log_format", "")).startswith("Scheduling retry")]  # noqa: E731
        await until(self, retries, "the dial-out's retry message")
        out = io.StringIO()
        TidyObserver(JournalObserver(out), toStdout=False)(retries()[0])
        self.assertRegex(out.getvalue(), rf"^<6>line vm7: {re.escape(directory)}: cannot connect: "
                                         rf"'{re.escape(directory)}' is a directory, not a unix socket; retry 1 in \d\.\d s\n$")

    async def test_dialingOutNamesAnIPv6PeerInBrackets(self) -> None:
        """'dialing out to' names an IPv6 peer as the retry message does, [::1]:1 (it said ::1:1)."""
        from twisted.logger import formatEvent

        from tests.realio import ptyLine, startedPty, startGateway, until

        events: list[dict[str, Any]] = []
        observer = CallObserver(events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        startGateway(self, ptyLine(startedPty(self), "tcp:[::1]:1", "telnet:[::1]:2", name="vm6"))
        said = [formatEvent(e) for e in events if "dialing out" in str(e.get("log_format", ""))]
        # (Their lookups and connects done before the test ends: refused at once, each is to be dialled again.)
        await until(self, lambda: len([e for e in events if str(e.get("log_format", "")).startswith("Scheduling retry")]) >= 2,
                    "both dial-outs' retry messages")
        self.assertEqual(said, ["line vm6: dialing out to [::1]:1 (raw), reconnecting with backoff",
                                "line vm6: dialing out to [::1]:2 (telnet), reconnecting with backoff"])
