"""
init-command (conserver's initcmd, serialgw.line.initcommand) on a real
pty device: a real /bin/sh runs the command, its standard input and output
the device's.  Its time is the test's clock (the process, its pipes and
the device are real): a command that hangs is killed when the test moves
the clock, not after a wait.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from serialgw.app.status import lineStatus
from serialgw.line import initrun
from serialgw.line.hub import Line
from serialgw.line.initcommand import SPIN_MOST, SPIN_WINDOW
from serialgw.line.initrun import KEEPER_LOOK, KILL_WAIT, LEFT_WAIT, STDERR_KEPT, STDERR_MOST, WRITE_MOST, InitRun
from serialgw.line.initsession import KEEPER_SH
from tests.fakes import LogEvents
from tests.realio import (
    Collector,
    closeClients,
    connect,
    gatewayArgv,
    listenerPort,
    ptyLine,
    startedPty,
    startGateway,
    startProcess,
    until,
)


def _state(pid: int) -> str:
    """Process C{pid}'s state (/proc/PID/stat: R, S, T, Z...), or "" if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


def _gone(pid: int) -> bool:
    """Whether process C{pid} has ended (gone, or a zombie its new parent has still to collect)."""
    return _state(pid) in ("", "Z")


def _killLeft(pid: int) -> None:
    """A process a failing test left running: SIGKILL'd."""
    try:
        os.kill(pid, 9)
    except OSError:
        pass


class ClockedProcesses:
    """The real reactor's processes, on a test's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def spawnProcess(self, *args: Any, **kw: Any) -> Any:
        return reactor.spawnProcess(*args, **kw)  # type: ignore[attr-defined]

    def callLater(self, *args: Any, **kw: Any) -> Any:
        return self.clock.callLater(*args, **kw)

    def seconds(self) -> float:
        return self.clock.seconds()


class InitCommandPtyTests(TestCase):
    timeout = 60

    def start(self, command: str, timeout: float = 60.0, listen: str = "raw", **config: Any) -> tuple[Any, Line, Clock]:
        """A gateway whose line 't' on a pty runs C{command}; its runs on a clock of the test's."""
        self.log = LogEvents(self)
        self.pty = startedPty(self)
        service = startGateway(self, ptyLine(self.pty, f"{listen}+tcp:0:interface=127.0.0.1", initCommand=command,
                                             initTimeout=timeout, **config))
        line = service.lines["t"]
        clock = Clock()
        # (Before the reactor's next turn: the run, due then, is made on it.)
        line.initReactor = ClockedProcesses(clock)
        return service, line, clock

    async def running(self, line: Line) -> InitRun:
        await until(self, lambda: line.initLast is not None and line.initLast.pid is not None, "the init-command runs")
        run = line.initLast
        assert run is not None

        def over() -> Any:
            run.kill("the test is over")  # (nothing if it has ended)
            run.killNow()  # (not on the test's clock: one that takes no SIGTERM is not left running)
            return run.ended

        self.addCleanup(over)
        return run

    def said(self, level: LogLevel = LogLevel.warn) -> list[str]:
        return [formatEvent(e) for e in self.log.at(level) if "init-command" in formatEvent(e)]

    async def test_loginMadeTypingWaits(self) -> None:
        """A script reads the board's first line and answers root CR: the device gets exactly that; a client's typing meanwhile waits, then follows it; the device's output reached the client too; the end is told, no warning."""
        script = self.mktemp()
        with open(script, "w") as f:
            f.write('IFS= read -r banner\ntest "$banner" = "Welcome to $SERIALGW_LINE"\nprintf "root\\r"\n')
        service, line, clock = self.start(f"sh {script}")
        run = await self.running(line)
        client = await connect(listenerPort(service))
        self.addCleanup(closeClients, client)
        await until(self, lambda: len(line.clients) == 1, "the client attached")
        client.transport.write(b"x")  # type: ignore[union-attr]
        self.pty.write(b"Welcome to t\n")
        await run.ended
        self.assertEqual(await self.pty.received.length(6), b"root\rx")
        self.assertEqual(await client.received.length(13), b"Welcome to t\n")
        self.assertEqual((run.outcome, run.written, line.initRun, line.writable), ("done (exit 0, 0.0 s)", 5, None, True))
        self.assertEqual(self.said(), [])
        self.assertEqual(self.said(LogLevel.info)[-1], "t: init-command done (exit 0, 0.0 s)")

    async def test_hangsKilled(self) -> None:
        """A command that never ends is killed at init-timeout (the clock's), said naming the line; people type again; the status page says it runs, then how it ended."""
        service, line, clock = self.start("echo waiting >&2; exec sleep 1000", timeout=5)
        run = await self.running(line)
        self.assertEqual(line.writable, False)
        command = "echo waiting >&2; exec sleep 1000"
        self.assertEqual(lineStatus(line)["init_command"], {"command": command, "running": True, "state": "running",
                                                            "pid": run.pid, "runs": 1, "last_outcome": None, "held_until": None})
        await until(self, lambda: run.stderr == b"waiting\n", "its standard error read")
        clock.advance(4.9)
        self.assertIsNone(run.outcome)
        clock.advance(0.1)
        await run.ended
        self.assertEqual((run.outcome, line.initRun, line.writable, clock.getDelayedCalls()),
                         ("killed: still running after 5 s (init-timeout)", None, True, []))
        self.assertEqual(self.said(), ["line t: init-command killed: still running after 5 s (init-timeout); it said: "
                                       "'waiting' (the command: 'echo waiting >&2; exec sleep 1000')"])
        self.assertEqual(lineStatus(line)["init_command"], {
            "command": command, "running": False, "state": "ended", "pid": None, "runs": 1,
            "last_outcome": "killed: still running after 5 s (init-timeout)", "held_until": None})

    async def test_floodCut(self) -> None:
        """A command that writes without end is killed once it has written WRITE_MOST bytes: exactly those reach the device."""
        service, line, clock = self.start("yes")
        run = await self.running(line)
        await run.ended
        self.assertEqual(await self.pty.received.length(WRITE_MOST), b"y\n" * (WRITE_MOST // 2))
        self.assertEqual((run.outcome, run.written), (f"killed: wrote more than {WRITE_MOST} bytes to the device",
                                                      WRITE_MOST))
        self.assertEqual(line.bytesToDevice, WRITE_MOST)

    async def test_standardErrorFloodCut(self) -> None:
        """
        A command that writes to its standard error without end is killed
        once it has written STDERR_MOST bytes there (before, each byte was
        read on the reactor's thread until init-timeout: seen live, 'yes >&2'
        under init-timeout = 10 kept the gateway at 96 % of a core, 6383312384
        bytes read and dropped); the log keeps its first STDERR_KEPT bytes.
        """
        service, line, clock = self.start("yes >&2")
        run = await self.running(line)
        await until(self, lambda: run.outcome is not None or run.stderrMore > 4 * STDERR_MOST, "killed, or read on")
        self.assertEqual(run.outcome, f"killed: wrote more than {STDERR_MOST} bytes to its standard error")
        await run.ended
        read = len(run.stderr) + run.stderrMore
        self.assertEqual((run.outcome, run.stderr, STDERR_MOST < read <= STDERR_MOST + 65536, line.bytesToDevice),
                         (f"killed: wrote more than {STDERR_MOST} bytes to its standard error",
                          b"y\n" * (STDERR_KEPT // 2), True, 0))
        kept = "y\n" * (STDERR_KEPT // 2 - 1) + "y"
        self.assertEqual(self.said(), [f"line t: init-command killed: wrote more than {STDERR_MOST} bytes to its "
                                       f"standard error; it said: {kept!r} (and {read - STDERR_KEPT} byte(s) more) "
                                       "(the command: 'yes >&2')"])

    async def test_failureLogged(self) -> None:
        """A command that exits 3 after a word on its standard error: a warning naming the line, with what it said."""
        service, line, clock = self.start("echo 'no such board' >&2; exit 3")
        run = await self.running(line)
        await run.ended
        self.assertEqual(self.said(), ["line t: init-command failed: exit status 3 (0.0 s); it said: 'no such board' "
                                       "(the command: \"echo 'no such board' >&2; exit 3\")"])
        self.assertEqual((line.initRun, line.writable, line.bytesToDevice), (None, True, 0))

    async def test_notReadingItsInput(self) -> None:
        """A command that never reads while the device talks a lot: what its pipe cannot take is dropped for it (counted), the clients get it all."""
        service, line, clock = self.start("exec sleep 1000", timeout=5)
        run = await self.running(line)
        client: Collector = await connect(listenerPort(service))
        self.addCleanup(closeClients, client)
        await until(self, lambda: len(line.clients) == 1, "the client attached")
        chunk = os.urandom(4096)
        for n in range(1, 65):
            self.pty.write(chunk)
            await client.received.length(n * 4096)
        self.assertEqual(client.received.data, chunk * 64)
        self.assertGreater(run.dropped, 0)
        clock.advance(5)
        await run.ended
        self.assertIn("byte(s) of device output it did not read were not kept for it", self.said()[0])

    async def test_stopWaitsForIt(self) -> None:
        """The gateway stops while it runs: it is killed, and the stop is over only once it is gone."""
        service, line, clock = self.start("printf u; exec sleep 1000")
        run = await self.running(line)
        self.assertEqual(await self.pty.received.length(1), b"u")  # (its shell runs: a SIGTERM sent while the keeper forks it is lost)
        stopping = service.stopService()
        self.assertEqual(run.outcome, "killed: the line is let go")
        await stopping
        self.assertEqual((run.ended.called, clock.getDelayedCalls()), (True, []))

    async def test_stopAsItStarts(self) -> None:
        """
        A run killed as it starts, before its keeper has forked the shell
        (the keeper made to wait 0.5 s there): the shell is sent SIGTERM once
        it runs and ends by it, the test's clock never moved.  Before, that
        SIGTERM went to the group before the shell was in it (the keeper's
        trap took it) and only the SIGKILL KILL_WAIT s later ended the run.
        """
        marker = "exec 3<&-\n"  # (the shell's fork follows)
        self.assertIn(marker, KEEPER_SH)
        slow = KEEPER_SH.replace(marker, marker + "sleep 0.5\n", 1)
        self.patch(initrun, "KEEPER", initrun.KEEPER.replace(repr(KEEPER_SH), repr(slow)))
        self.assertIn(repr(slow), initrun.KEEPER)
        service, line, clock = self.start("exec sleep 1000")
        run = await self.running(line)
        run.kill("the test stops it")
        await until(self, lambda: run.ended.called, "the run's end (the test's clock not moved)")
        self.assertEqual((run.outcome, run.shellEnd, line.writable, clock.getDelayedCalls()),
                         ("killed: the test stops it", ("signal", 15), True, []))

    async def test_keeperKilledFromOutside(self) -> None:
        """
        The run's keeper SIGKILLed from outside (kill -9 of its pid): the run
        ends at once, the test's clock never moved, what its shell runs is
        gone, said naming the line and the keeper; people type again and a
        client's typing reaches the device.  Before, its shell ran on until
        init-timeout (nobody left to say how it ended).
        """
        service, line, clock = self.start("sleep 1000 & echo $$ $! >&2; wait")
        run = await self.running(line)
        await until(self, lambda: run.stderr.endswith(b"\n"), "the pids said")
        shell, started = (int(word) for word in run.stderr.split())
        for pid in (shell, started):
            self.addCleanup(_killLeft, pid)
        client = await connect(listenerPort(service))
        self.addCleanup(closeClients, client)
        await until(self, lambda: len(line.clients) == 1, "the client attached")
        keeper = run.pid
        assert keeper is not None
        os.kill(keeper, 9)
        await until(self, lambda: run.ended.called, "the run's end (the test's clock not moved)")
        await until(self, lambda: _gone(shell) and _gone(started), f"processes {shell} and {started} gone")
        clock.advance(KILL_WAIT)  # (what its session still runs looked at: nothing, its reader ended it)
        outcome = f"killed: its keeper (pid {keeper}) was ended by signal 9, not by serialgw"
        self.assertEqual((run.outcome, line.initRun, line.writable, clock.getDelayedCalls()), (outcome, None, True, []))
        warned = [(e["line"], e["outcome"], e["pid"]) for e in self.log.at(LogLevel.warn) if "outcome" in e]
        self.assertEqual(warned, [("t", f"init-command {outcome}", keeper)])
        client.transport.write(b"x")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"x")

    async def test_keeperStoppedAlone(self) -> None:
        """
        The run's keeper alone stopped from outside (SIGSTOP to its pid, not
        its group) while its shell runs; the shell then ends by itself: the
        keeper, which holds the command's output until it tells the shell's
        end, is found stopped at the next look (KEEPER_LOOK s on the test's
        clock), sent SIGCONT and said naming the line and its pid; the run
        ends as the shell did, people type again.  Before, the gateway saw
        nothing: the run lasted until init-timeout, then KILL_WAIT s more
        (seen live: init-timeout 6, the shell gone at 1 s, the run over at
        8.01 s, 'killed: still running after 6 s').
        """
        service, line, clock = self.start("echo $$ >&2; IFS= read -r _; exit 4", timeout=60)
        run = await self.running(line)
        await until(self, lambda: run.stderr.endswith(b"\n"), "the shell's pid said")
        shell = int(run.stderr)
        self.addCleanup(_killLeft, shell)
        keeper = run.pid
        assert keeper is not None
        self.addCleanup(_killLeft, keeper)  # (a failing test's keeper: SIGKILL ends it stopped)
        os.kill(keeper, signal.SIGSTOP)
        await until(self, lambda: _state(keeper) == "T", f"the keeper {keeper} stopped")
        self.pty.write(b"go\n")
        await until(self, lambda: _gone(shell), f"the shell {shell} gone (a zombie its stopped keeper holds)")
        clock.advance(KEEPER_LOOK - 0.1)
        self.assertEqual((run.outcome, _state(keeper)), (None, "T"))
        clock.advance(0.1)
        await until(self, lambda: run.ended.called, "the run's end once its keeper is continued")
        self.assertEqual((run.outcome, run.shellEnd, line.initRun, line.writable, clock.getDelayedCalls()),
                         ("failed: exit status 4 (1.0 s)", ("exit", 4), None, True, []))
        warned = [(e["line"], e["pid"]) for e in self.log.at(LogLevel.warn) if "stopped" in formatEvent(e)]
        self.assertEqual(warned, [("t", keeper)])

    async def test_keeperAndReaderKilledFromOutside(self) -> None:
        """
        The run's keeper and its reader of requests both SIGKILLed from
        outside (as `pkill -9 -f serialgw-init` does): the run ends at once;
        KILL_WAIT s later (the test's clock) what its session still runs,
        the shell and what it started, nobody left in it to signal them, is
        sent SIGKILL by the gateway, by pidfd, said naming the line, the
        keeper and the pids.  Before, they ran on for good.
        """
        service, line, clock = self.start("sleep 1000 & echo $$ $! >&2; wait")
        run = await self.running(line)
        await until(self, lambda: run.stderr.endswith(b"\n"), "the pids said")
        shell, started = (int(word) for word in run.stderr.split())
        for pid in (shell, started):
            self.addCleanup(_killLeft, pid)
        keeper = run.pid
        assert keeper is not None
        with open(f"/proc/{keeper}/task/{keeper}/children") as f:
            readers = [int(word) for word in f.read().split() if int(word) != shell]
        self.assertEqual(len(readers), 1, f"the keeper's children besides its shell: {readers}")
        os.kill(readers[0], 9)
        await until(self, lambda: _gone(readers[0]), "the reader gone")
        os.kill(keeper, 9)
        await until(self, lambda: run.ended.called, "the run's end (the test's clock not moved)")
        outcome = f"killed: its keeper (pid {keeper}) was ended by signal 9, not by serialgw"
        self.assertEqual((run.outcome, line.writable, _gone(shell), _gone(started)), (outcome, True, False, False))
        clock.advance(KILL_WAIT)
        await until(self, lambda: _gone(shell) and _gone(started), f"processes {shell} and {started} gone")
        warned = [(e["line"], e["pid"], {shell, started} <= set(e["pids"])) for e in self.log.at(LogLevel.warn)
                  if "pids" in e]
        self.assertEqual((warned, clock.getDelayedCalls()), ([("t", keeper, True)], []))

    async def test_stoppedSessionKilled(self) -> None:
        """
        The run's whole group stopped (SIGSTOP to it: its keeper and the
        keeper's reader of requests too) as the gateway stops: the SIGKILL
        KILL_WAIT s after the SIGTERM ends it, sent to the group by the
        gateway (the keeper, its child not reaped, keeps the group's id its
        own), and the stop is over.  Before, no request was read: the run,
        and the stop, never ended.
        """
        service, line, clock = self.start("echo up >&2; exec sleep 1000")
        run = await self.running(line)
        await until(self, lambda: run.stderr == b"up\n", "the command runs")
        keeper = run.pid
        assert keeper is not None
        os.killpg(keeper, signal.SIGSTOP)

        def left() -> None:
            if not run.ended.called:
                os.killpg(keeper, signal.SIGKILL)  # (not reaped: the group is still the keeper's)

        self.addCleanup(left)
        await until(self, lambda: _state(keeper) == "T", f"the keeper {keeper} stopped")
        stopping = service.stopService()
        self.assertEqual(run.outcome, "killed: the line is let go")
        clock.advance(KILL_WAIT)
        await until(self, lambda: run.ended.called, "the run's end after its SIGKILL")
        await stopping
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_deviceDownKillsIt(self) -> None:
        """The device goes while it runs: it is killed, said naming the line; people type again."""
        service, line, clock = self.start("printf u; exec sleep 1000")
        run = await self.running(line)
        self.assertEqual(await self.pty.received.length(1), b"u")  # (its shell runs: a SIGTERM sent while the keeper forks it is lost)
        self.pty.close()
        self.pty.fd = os.open(os.devnull, os.O_RDONLY)  # (what its cleanup closes now)
        await run.ended
        self.assertEqual((run.outcome, line.initRun, line.writable), ("killed: the device is down", None, True))
        self.assertEqual(self.said(), ["line t: init-command killed: the device is down (the command: "
                                       "'printf u; exec sleep 1000')"])

    async def test_onDemand(self) -> None:
        """On demand: the client's coming opens the device and runs it, the client told; a second one is told it runs; their leaving closes the device and kills it."""
        service, line, clock = self.start("printf u; exec sleep 1000", listen="raw,notices", onDemand=True)
        client = await connect(listenerPort(service))
        run = await self.running(line)
        self.assertEqual(await self.pty.received.length(1), b"u")  # (its shell runs: a SIGTERM sent while the keeper forks it is lost)
        told = b"\r\n[serialgw: init-command started: what you type waits until it ends]\r\n"
        self.assertEqual(await client.received.length(len(told)), told)
        second = await connect(listenerPort(service))
        running = b"\r\n[serialgw: init-command running: what you type waits until it ends]\r\n"
        self.assertEqual(await second.received.length(len(running)), running)
        await closeClients(client, second)
        await run.ended
        self.assertEqual((run.outcome, line.closedOnDemand), ("killed: the device is closed (on demand)", True))

    async def test_oneRunAtATime(self) -> None:
        """
        On demand, a run killed at a close that takes no SIGTERM lives until
        its SIGKILL: a client opening the device again meanwhile starts no
        second run beside it (before, each open started one: a client in a
        loop chose how many ran); it starts once the first is reaped.
        """
        service, line, clock = self.start("trap '' TERM; echo up >&2; while :; do sleep 1; done",
                                          listen="raw", onDemand=True)
        client = await connect(listenerPort(service))
        first = await self.running(line)
        await until(self, lambda: first.stderr == b"up\n", "the trap set")
        await closeClients(client)
        await until(self, lambda: first.outcome is not None, "the first killed at the close")
        again = await connect(listenerPort(service))
        await until(self, lambda: line.up and len(line.clients) == 1, "the device open again")
        self.assertEqual((line.initRuns, line.initLast, first.ended.called), (1, first, False))
        clock.advance(KILL_WAIT)
        await first.ended
        clock.advance(0)
        second = await self.running(line)
        self.assertEqual((line.initRuns, second is not first, second.outcome), (2, True, None))
        await closeClients(again)
        await until(self, lambda: second.outcome is not None, "the second killed at the close")
        clock.advance(KILL_WAIT)
        await second.ended

    async def test_killReachesWhatItStarted(self) -> None:
        """A shell that started a process of its own and waits: the kill reaches that process too (its session's group), none left behind."""
        service, line, clock = self.start("sleep 1000 & echo $! >&2; wait", timeout=5)
        run = await self.running(line)
        await until(self, lambda: run.stderr.endswith(b"\n"), "the started process's pid said")
        started = int(run.stderr)
        clock.advance(5)
        await run.ended
        await until(self, lambda: _gone(started), f"process {started} gone")

    async def test_killReachesOneThatTakesNoTerm(self) -> None:
        """
        The shell goes at the kill's SIGTERM, a process it started ignores
        it: that process is sent SIGKILL as the shell's end is seen (before,
        the shell's end cancelled the SIGKILL: seen live, left running for good).
        """
        service, line, clock = self.start("sh -c \"trap '' TERM; exec sleep 1000\" & echo $! >&2; wait", timeout=5)
        run = await self.running(line)
        await until(self, lambda: run.stderr.endswith(b"\n"), "the started process's pid said")
        started = int(run.stderr)
        self.addCleanup(_killLeft, started)
        clock.advance(5)
        await run.ended
        self.assertEqual(run.outcome, "killed: still running after 5 s (init-timeout)")
        await until(self, lambda: _gone(started), f"process {started} gone")
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_doneWithWordsLoggedOnce(self) -> None:
        """A command that ends well after a word on its standard error: one info line naming the line, with what it said."""
        service, line, clock = self.start("echo fine >&2")
        run = await self.running(line)
        await run.ended
        self.assertEqual([s for s in self.said(LogLevel.info) if "done" in s],
                         ["line t: init-command done (exit 0, 0.0 s); it said: 'fine'"])

    async def test_heldRunSaidToOneArriving(self) -> None:
        """
        On demand, a client opening the device again and again: past
        SPIN_MOST runs within SPIN_WINDOW s no process is started; the one
        arriving then, and one arriving after, are told a run is held (they
        type meanwhile); it runs
        once the window has passed, the device still open.
        """
        service, line, clock = self.start("IFS= read -r _", listen="raw,notices", onDemand=True)
        for n in range(1, SPIN_MOST + 1):
            client = await connect(listenerPort(service))
            await until(self, lambda: line.initRun is not None and line.initRuns == n, f"run {n}")  # noqa: B023
            run = await self.running(line)
            self.pty.write(b"login:\n")
            await run.ended
            await closeClients(client)
            await until(self, lambda: not line.up, "the device closed")
            clock.advance(1)
        client = await connect(listenerPort(service))
        self.addCleanup(closeClients, client)
        told = (b"\r\n[serialgw: init-command held: 5 runs started in the last 10 s; it runs in 5.0 s if the device "
                b"is still up]\r\n")
        await client.received.contains(told)  # (after the replay of the last output: 'login:' 5 times)
        self.assertEqual((line.initRuns, line.initRun, line.writable, line.initHeldUntil),
                         (SPIN_MOST, None, True, SPIN_WINDOW))
        second = await connect(listenerPort(service))
        self.addCleanup(closeClients, second)
        await second.received.contains(b"\r\n[serialgw: init-command held: too many runs lately; it runs soon (what "
                                       b"you type goes meanwhile)]\r\n")
        client.transport.write(b"x")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"x")
        clock.advance(SPIN_WINDOW - SPIN_MOST)
        await until(self, lambda: line.initRun is not None, "the held run")
        run = await self.running(line)
        self.assertEqual((line.initRuns, run.began, line.writable), (SPIN_MOST + 1, SPIN_WINDOW, False))

    async def test_gatewaySignalsNoGroupItself(self) -> None:
        """
        The shell ends at once, a process it started holds its output: the
        run ends LEFT_WAIT s after the shell (before: it went on until
        init-timeout, people's typing held), and what it left is ended.  The
        gateway calls no killpg (its keeper, alive and in the group, signals
        it): before, it sent killpg(the shell's pid) after the shell's reap,
        a pid another process could have been given meanwhile.
        """
        signalled: list[tuple[int, int]] = []
        killpg = os.killpg

        def recorded(group: int, number: int) -> None:
            signalled.append((group, number))
            killpg(group, number)

        self.patch(os, "killpg", recorded)
        service, line, clock = self.start("sleep 1000 & echo $$ $! >&2", timeout=5)
        run = await self.running(line)
        await until(self, lambda: run.stderr.endswith(b"\n"), "the pids said")
        shell, started = (int(word) for word in run.stderr.split())
        self.addCleanup(_killLeft, started)
        await until(self, lambda: _gone(shell), "the shell gone")
        self.assertEqual((run.outcome, _gone(started), line.writable), (None, False, False))
        await until(self, lambda: run.shellEnd is not None, "the shell's end told")
        clock.advance(LEFT_WAIT)
        self.assertEqual((run.outcome, line.writable),
                         ("done (exit 0, 0.5 s); what it left running holding its output was ended", True))
        await run.ended
        await until(self, lambda: _gone(started), f"process {started} gone")
        self.assertEqual((signalled, clock.getDelayedCalls()), ([], []))

    async def test_gatewayKilledEndsItsSession(self) -> None:
        """
        A real gateway (twistd serialgw --init-command) SIGKILLed while its
        init-command runs: the command's shell and what it started are
        gone (its keeper reads the end of its control pipe and SIGKILLs the
        group); before, they ran on for good, their parent PID 1.
        """
        pids = os.path.abspath(self.mktemp())
        device = os.path.abspath(self.mktemp())
        gateway = startProcess(self, gatewayArgv(
            "--device", f"pty:{device}", "--port", "raw+tcp:0:interface=127.0.0.1",
            "--init-command", f"sleep 1000 & echo $$ $! > {pids}.new; mv {pids}.new {pids}; wait"))
        await until(self, lambda: os.path.exists(pids), "the command's pids written")
        with open(pids) as f:
            shell, started = (int(word) for word in f.read().split())
        for pid in (shell, started):
            self.addCleanup(_killLeft, pid)
        self.assertEqual((_gone(shell), _gone(started)), (False, False))
        gateway.transport.signalProcess("KILL")  # type: ignore[union-attr]
        await gateway.ended
        await until(self, lambda: _gone(shell) and _gone(started), f"processes {shell} and {started} gone")
