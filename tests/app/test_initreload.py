"""
init-command from a line's configuration to its line (makeLine) and
through a reload (retuneLine), on a fake of the reactor's processes: run
once the device is up (a turn after the line is made), a reload's new
command run at the next coming up (one under way goes on), taken out.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from twisted.internet.error import ConnectionLost, ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IReactorProcess
from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from serialgw.app.lines import makeLine, retuneLine
from serialgw.app.status import lineStatus, stamp
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.initrun import LEFT_WAIT, SHELL, leadsItsGroup
from tests.fakes import LogEvents, RecordingDevice


class ProcessTransport:
    """What a run uses of its process: its pid, its standard input, what it asks its keeper (no real signal is sent)."""

    pid = 4321

    def __init__(self) -> None:
        self.asked: list[tuple[int, bytes]] = []
        self.written = b""
        self.paused = False

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written += data

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def writeToChild(self, childFD: int, data: bytes) -> None:
        self.asked.append((childFD, data))

    def loseConnection(self) -> None:
        pass


@implementer(IReactorProcess)
class Processes(Clock):
    """A clock that records the processes spawned (their shell's command) and connects each to a fake transport."""

    def __init__(self) -> None:
        Clock.__init__(self)
        self.spawned: list[tuple[str, str]] = []
        self.runs: list[Any] = []
        self.transports: list[ProcessTransport] = []
        self.envs: list[dict[str, str]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: Any, env: Any = None, **kw: Any) -> Any:  # type: ignore[override]
        self.spawned.append((args[args.index(SHELL) + 1], env["SERIALGW_LINE"]))
        self.envs.append(env)
        self.runs.append(protocol)
        transport = ProcessTransport()
        protocol.makeConnection(transport)
        self.transports.append(transport)
        return transport


class InitReloadTests(SynchronousTestCase):
    def test_startAndReload(self) -> None:
        """Made with a command, its device up: run a turn later (with SERIALGW_LINE); a reload's new one waits for the device's next coming up, then runs; taken out, nothing runs; each change logged."""
        log = LogEvents(self)
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        device = RecordingDevice(config.settings)
        line = makeLine(config, device, reactor)
        self.assertEqual(reactor.spawned, [])
        reactor.advance(0)
        self.assertEqual(reactor.spawned, [("login-a", "web1")])
        changed = attrs.evolve(config, initCommand="login-b", initTimeout=5.0)
        retuneLine(line, config, changed)
        self.assertIs(line.initRun, reactor.runs[0])
        reactor.runs[0].processEnded(Failure(ProcessDone(0)))
        self.assertEqual((line.initRun, reactor.runs[0].outcome), (None, "done (exit 0, 0.0 s)"))
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        line.deviceUp()
        self.assertEqual(reactor.spawned, [("login-a", "web1"), ("login-b", "web1")])
        reactor.advance(5)
        self.assertEqual(reactor.runs[1].outcome, "killed: still running after 5 s (init-timeout)")
        reactor.runs[1].processEnded(Failure(ProcessDone(0)))
        retuneLine(line, changed, attrs.evolve(changed, initCommand=""))
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        line.deviceUp()
        self.assertEqual((len(reactor.spawned), reactor.getDelayedCalls()), (2, []))
        said = [formatEvent(e) for e in log.events if "(reload)" in formatEvent(e)]
        self.assertEqual(said, ["line web1: init-command 'login-b' (reload): run the next time the device comes up",
                                "line web1: init-command none (reload)"])

    def test_takenOutWithItsBoundNoBoundSaid(self) -> None:
        """init-command taken out by a reload with its init-spin-max: the log says it is none, and no bound on the starts of a command there is not (it said 'init-command starts at most 5 runs within 10 s')."""
        log = LogEvents(self)
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a", initSpinMost=3)
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        reactor.runs[0].processEnded(Failure(ProcessDone(0)))
        bare = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"))
        retuneLine(line, config, bare)
        retuneLine(line, bare, attrs.evolve(bare, initCommand="login-b", initSpinMost=4))
        said = [formatEvent(e) for e in log.events if "(reload)" in formatEvent(e)]
        self.assertEqual(said, ["line web1: init-command none (reload)",
                                "line web1: init-command 'login-b' (reload): run the next time the device comes up",
                                "line web1: init-command starts at most 4 runs within 10 s (reload)"])
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_behindWhenItStarts(self) -> None:
        """The device behind (its queue past the high-water mark) when the command starts: its output is not read until the device takes input again."""
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        line.deviceWritable(False)
        reactor.advance(0)
        self.assertEqual(reactor.transports[0].paused, True)
        line.deviceWritable(True)
        self.assertEqual((reactor.transports[0].paused, line.writable), (False, False))
        reactor.runs[0].processEnded(Failure(ProcessDone(0)))
        self.assertEqual(line.writable, True)

    def test_killedWhileBehind(self) -> None:
        """Killed while the device is behind (the process's pipes not read): read again, so that its keeper's word of the shell's end, on a pipe the kill leaves open, is read (else the run never ended)."""
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        reactor.runs[0].childDataReceived(4, b"r\n")  # (its shell runs)
        line.deviceWritable(False)
        self.assertEqual(reactor.transports[0].paused, True)
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        self.assertEqual((reactor.transports[0].paused, reactor.transports[0].asked), (False, [(3, b"T")]))
        reactor.runs[0].processEnded(Failure(ProcessDone(0)))

    def test_systemdsEnvironmentKept(self) -> None:
        """The command's environment is the gateway's with SERIALGW_LINE and SERIALGW_DEVICE, without what systemd gave the gateway alone (its notify socket, watchdog, sockets)."""
        given = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000", "LISTEN_FDNAMES": "web",
                 "SERIALGW_TEST_KEPT": "yes"}
        for key, value in given.items():
            self.patch(os, "environ", {**os.environ, key: value})
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        device = RecordingDevice(config.settings)
        device.name = "/dev/ttyUSB0"
        makeLine(config, device, reactor)
        reactor.advance(0)
        env = reactor.envs[0]
        self.assertEqual([key for key in given if key in env], ["SERIALGW_TEST_KEPT"])
        self.assertEqual((env["SERIALGW_LINE"], env["SERIALGW_DEVICE"]), ("web1", "/dev/ttyUSB0"))

    def test_startsBounded(self) -> None:
        """
        A device that comes up again and again (an on-demand line a client
        opens in a loop): SPIN_MOST runs within SPIN_WINDOW s, the next held
        until the oldest start is SPIN_WINDOW s old (said once to the log and
        the people, on the status page), then run; one held is dropped when
        the device goes; before, each coming up forked one.
        """
        log = LogEvents(self)
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)

        def cycle() -> None:
            reactor.advance(0.5)
            line.deviceLost(Failure(ConnectionLost("unplugged")))
            if line.initLast is not None and not line.initLast.ended.called:
                line.initLast.processEnded(Failure(ProcessDone(0)))
            line.deviceUp()

        for _n in range(40):
            cycle()  # (every 0.5 s for 20 s: 41 runs before)
        self.assertEqual([run.began for run in reactor.runs], [0, 0.5, 1, 1.5, 2, 10, 10.5, 11, 11.5, 12, 20])
        self.assertEqual((line.initRuns, line.initHeldUntil), (11, 20.5))
        self.assertEqual(lineStatus(line)["init_command"]["held_until"], stamp(20.5))
        held = [formatEvent(e) for e in log.events if "held" in formatEvent(e)]
        self.assertEqual(held, 2 * ["line web1: init-command held: 5 runs started in the last 10 s; it runs in 7.5 s if "
                                    "the device is still up"])
        reactor.advance(0.5)  # (the device still up: the held one runs)
        self.assertEqual((len(reactor.runs), reactor.runs[-1].began, line.initHeldUntil), (12, 20.5, None))
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        reactor.runs[-1].processEnded(Failure(ProcessDone(0)))
        line.deviceUp()
        self.assertEqual((len(reactor.runs), line.initHeldUntil), (12, 21.0))
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        self.assertEqual((line.initHeldUntil, lineStatus(line)["init_command"]["held_until"]), (None, None))
        for run in reactor.runs:
            if not run.ended.called:
                run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_keeperAsked(self) -> None:
        """
        The gateway signals nothing itself: a run ending well lets its keeper
        go (X) once the shell's end is told and its output closed, its outcome
        the shell's; a kill asks SIGTERM (T), and the shell's end told then
        asks SIGKILL (K) for what it left; the SIGKILL's timer asks K too.
        """
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        run, keeper = reactor.runs[0], reactor.transports[0]
        run.childDataReceived(4, b"76")
        run.childDataReceived(4, b"8\n")  # (exit status 3, in two reads)
        run.childConnectionLost(1)
        self.assertEqual((run.shellEnd, keeper.asked), (("exit", 3), []))
        run.childConnectionLost(2)
        self.assertEqual(keeper.asked, [(3, b"X")])
        run.processEnded(Failure(ProcessDone(0)))  # (the keeper's own end: exit 0)
        self.assertEqual(run.outcome, "failed: exit status 3 (0.0 s)")
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        line.deviceUp()
        run, keeper = reactor.runs[1], reactor.transports[1]
        run.childDataReceived(4, b"r\n")  # (its shell runs: a SIGTERM to the group reaches it)
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        self.assertEqual(keeper.asked, [(3, b"T")])
        run.childConnectionLost(1)
        run.childConnectionLost(2)
        run.childDataReceived(4, b"15\n")  # (the shell gone at SIGTERM)
        self.assertEqual((run.shellEnd, keeper.asked), (("signal", 15), [(3, b"T"), (3, b"K")]))
        run.childConnectionLost(3)
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual((run.outcome, reactor.getDelayedCalls()), ("killed: the device is down", []))
        line.deviceUp()
        run, keeper = reactor.runs[2], reactor.transports[2]
        run.childDataReceived(4, b"r\n")
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        reactor.advance(2)  # (its shell takes no SIGTERM)
        self.assertEqual(keeper.asked, [(3, b"T"), (3, b"K")])
        run.processEnded(Failure(ProcessDone(0)))

    def test_termHeldUntilTheShellRuns(self) -> None:
        """
        A kill before the keeper has said its shell runs (SHELL_RUNS, 'r'):
        SIGTERM (T) is asked once it says so, not before (a SIGTERM to the
        group then ends nothing: the shell is not forked yet, or carries the
        keeper's trap); the SIGKILL's timer asks K whether or not it was said.
        """
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        run, keeper = reactor.runs[0], reactor.transports[0]
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        self.assertEqual((run.outcome, keeper.asked), ("killed: the device is down", []))
        run.childDataReceived(4, b"r")
        self.assertEqual(keeper.asked, [])
        run.childDataReceived(4, b"\n")
        self.assertEqual(keeper.asked, [(3, b"T")])
        run.childDataReceived(4, b"15\n")
        run.childConnectionLost(1)
        run.childConnectionLost(2)
        self.assertEqual((run.shellEnd, keeper.asked), (("signal", 15), [(3, b"T"), (3, b"K")]))
        run.processEnded(Failure(ProcessDone(0)))
        line.deviceUp()
        run, keeper = reactor.runs[1], reactor.transports[1]
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        reactor.advance(2)  # (the keeper never says its shell runs)
        self.assertEqual(keeper.asked, [(3, b"K")])
        run.childDataReceived(4, b"r\n9\n")
        self.assertEqual((run.shellEnd, keeper.asked), (("signal", 9), [(3, b"K")]))
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_keeperEndedFromOutside(self) -> None:
        """
        Its keeper reaped, ended by SIGKILL nobody asked for, before it told
        the shell's end: the run is over at once (people type), K asked (the
        keeper's reader kills the rest of the session), no timer left, a
        later kill asks nothing more.  A keeper's end by the SIGKILL asked of
        it (K), or after it told the shell's end, is no surprise.
        """
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        run, keeper = reactor.runs[0], reactor.transports[0]
        run.childDataReceived(4, b"r\n")
        run.processExited(Failure(ProcessTerminated(signal=9)))
        self.assertEqual((run.outcome, line.initRun, line.writable, keeper.asked, reactor.getDelayedCalls()),
                         ("killed: its keeper (pid 4321) was ended by signal 9, not by serialgw", None, True,
                          [(3, b"K")], []))
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        run.kill("the stop is hurried")
        self.assertEqual((keeper.asked, reactor.getDelayedCalls()), ([(3, b"K")], []))
        run.processEnded(Failure(ProcessTerminated(signal=9)))
        line.deviceUp()
        run, keeper = reactor.runs[1], reactor.transports[1]
        run.childDataReceived(4, b"r\n")
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        reactor.advance(2)
        run.processExited(Failure(ProcessTerminated(signal=9)))
        self.assertEqual((run.outcome, keeper.asked), ("killed: the device is down", [(3, b"T"), (3, b"K")]))
        run.processEnded(Failure(ProcessTerminated(signal=9)))
        line.deviceUp()
        run, keeper = reactor.runs[2], reactor.transports[2]
        run.childDataReceived(4, b"r\n0\n")
        run.processExited(Failure(ProcessTerminated(signal=9)))
        self.assertEqual((run.outcome, keeper.asked), (None, []))
        run.childConnectionLost(1)
        run.childConnectionLost(2)
        run.processEnded(Failure(ProcessTerminated(signal=9)))
        self.assertEqual((run.outcome, reactor.getDelayedCalls()), ("done (exit 0, 0.0 s)", []))

    def test_groupSignalledOnlyIfItsOwnChildLeadsIt(self) -> None:
        """
        The gateway SIGKILLs a run's group itself only where its keeper is
        its child leading that group: not this process (its parent's child),
        not PID 1, not a pid nobody has (the fakes' keepers' 4321 is not its
        child either).
        """
        self.assertEqual([leadsItsGroup(pid) for pid in (os.getpid(), 1, 2**22 + 1, ProcessTransport.pid)],
                         [False, False, False, False])

    def test_statusWhileKilledNotReaped(self) -> None:
        """The status page says what is true of a run killed and not reaped yet (its SIGKILL up to KILL_WAIT s away): not running (people type), its pid still its process's, 'killed, waiting for its exit'; once reaped, no pid, 'ended'."""
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        self.assertEqual(lineStatus(line)["init_command"]["state"], "not run yet")
        reactor.advance(0)
        status = lineStatus(line)["init_command"]
        self.assertEqual((status["running"], status["pid"], status["state"]), (True, 4321, "running"))
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        status = lineStatus(line)["init_command"]
        self.assertEqual((status["running"], status["pid"], status["state"], status["last_outcome"]),
                         (False, 4321, "killed, waiting for its exit", "killed: the device is down"))
        reactor.advance(2)
        reactor.runs[0].processEnded(Failure(ProcessDone(0)))
        status = lineStatus(line)["init_command"]
        self.assertEqual((status["running"], status["pid"], status["state"]), (False, None, "ended"))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_leftHoldingItsOutput(self) -> None:
        """
        The shell ends while a process it started (cmd &) holds its output:
        the run ends LEFT_WAIT s later, as conserver's ends at its shell's
        end (before: people's typing waited until init-timeout, then it was
        killed), the outcome the shell's, and what it left there is ended
        (T, then K once its output is closed); a shell whose output closes
        within LEFT_WAIT ends as ever (X).
        """
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="sleep 1000 & echo x")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        run, keeper = reactor.runs[0], reactor.transports[0]
        run.childDataReceived(4, b"0\n")
        reactor.advance(LEFT_WAIT - 0.01)
        self.assertEqual((run.outcome, line.writable, keeper.asked), (None, False, []))
        reactor.advance(0.01)
        self.assertEqual((run.outcome, line.writable, keeper.asked),
                         (f"done (exit 0, {LEFT_WAIT:.1f} s); what it left running holding its output was ended",
                          True, [(3, b"T")]))
        run.childConnectionLost(1)
        run.childConnectionLost(2)
        self.assertEqual(keeper.asked, [(3, b"T"), (3, b"K")])
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(reactor.getDelayedCalls(), [])
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        line.deviceUp()
        run, keeper = reactor.runs[1], reactor.transports[1]
        run.childDataReceived(4, b"0\n")
        run.childConnectionLost(1)
        run.childConnectionLost(2)
        self.assertEqual(keeper.asked, [(3, b"X")])
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual((run.outcome, reactor.getDelayedCalls()), ("done (exit 0, 0.0 s)", []))

    def test_startsBoundedAsConfigured(self) -> None:
        """init-spin-max and init-spin-window (conserver's initspinmax, initspintimer) set the bound on starts: 2 within 3 s here; a reload's new bound applies to the next start, the starts counted so far kept."""
        log = LogEvents(self)
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a", initSpinMost=2,
                            initSpinWindow=3.0)
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)

        def cycles(count: int) -> None:
            for _n in range(count):
                reactor.advance(0.5)
                line.deviceLost(Failure(ConnectionLost("unplugged")))
                if line.initLast is not None and not line.initLast.ended.called:
                    line.initLast.processEnded(Failure(ProcessDone(0)))
                line.deviceUp()

        cycles(12)  # (every 0.5 s for 6 s)
        self.assertEqual([run.began for run in reactor.runs], [0, 0.5, 3, 3.5, 6])
        held = [formatEvent(e) for e in log.events if "held" in formatEvent(e)]
        self.assertEqual(held[0], "line web1: init-command held: 2 runs started in the last 3 s; it runs in 2.0 s if "
                                  "the device is still up")
        retuneLine(line, config, attrs.evolve(config, initSpinMost=4))
        cycles(4)  # (6.5 to 8: the held one runs at 6.5, and with room for 4 the next at once; then 7; 7.5 held)
        self.assertEqual([run.began for run in reactor.runs][5:], [6.5, 6.5, 7])
        self.assertIn("line web1: init-command starts at most 4 runs within 3 s (reload)",
                      [formatEvent(e) for e in log.events])
        line.deviceLost(Failure(ConnectionLost("unplugged")))
        for run in reactor.runs:
            if not run.ended.called:
                run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_notTakenForLeftWhileNotRead(self) -> None:
        """The device behind when LEFT_WAIT is up (the run's pipes not read then, their end unseen): the run is not taken for one that left a process running; read again, it has LEFT_WAIT s from then for its output's end to be read, which ends it as ever (X)."""
        reactor = Processes()
        config = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"), initCommand="login-a")
        line = makeLine(config, RecordingDevice(config.settings), reactor)
        reactor.advance(0)
        run, keeper = reactor.runs[0], reactor.transports[0]
        run.childDataReceived(4, b"0\n")
        line.deviceWritable(False)
        for step in (1, 1, 0.5):
            reactor.advance(LEFT_WAIT * step)  # (looked at, not read, at 1 and 2 times LEFT_WAIT)
        self.assertEqual((run.outcome, keeper.asked, keeper.paused), (None, [], True))
        line.deviceWritable(True)
        reactor.advance(LEFT_WAIT * 0.6)  # (past the look that was due at 3 * LEFT_WAIT)
        self.assertEqual((run.outcome, keeper.asked, keeper.paused), (None, [], False))
        run.childConnectionLost(1)
        run.childConnectionLost(2)
        run.processEnded(Failure(ProcessDone(0)))
        self.assertEqual((run.outcome, keeper.asked, reactor.getDelayedCalls()),
                         (f"done (exit 0, {reactor.seconds():.1f} s)", [(3, b"X")], []))
