"""
The signals an init-command (serialgw.line.initcommand, run by the
keeper of serialgw.line.initsession) starts with: as any program's start
has them, not as Python has them (it ignores SIGPIPE and SIGXFSZ, and an
ignored signal stays ignored across exec).  A real /bin/sh on a pty line.
"""

from __future__ import annotations

import signal
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from tests.real.test_initcommand import ClockedProcesses
from tests.realio import ptyLine, startedPty, startGateway, until


class InitSignalsTests(TestCase):
    timeout = 60

    async def test_pipeSignalsAsAProgramStartsWithThem(self) -> None:
        """
        A pipeline's writer whose reader is gone ends by SIGPIPE (yes's
        status 141), and nothing the command runs ignores SIGPIPE or SIGXFSZ
        (sed's SigIgn): before, both were ignored, yes was told 'Broken
        pipe' and exited 1.
        """
        command = ('{ yes || echo "yes $?" >&2; } | head -c 1 >/dev/null; '
                   "sed -n 's/^SigIgn:[[:space:]]*//p' /proc/self/status >&2; exit 3")
        service = startGateway(self, ptyLine(startedPty(self), "raw+tcp:0:interface=127.0.0.1", initCommand=command))
        line = service.lines["t"]
        line.initReactor = ClockedProcesses(Clock())
        await until(self, lambda: line.initLast is not None and line.initLast.outcome is not None, "the run's end")
        run = line.initLast
        assert run is not None
        await run.ended
        said, mask = (run.stderr.decode().splitlines() + ["", ""])[:2]
        self.assertEqual((run.outcome, said), ("failed: exit status 3 (0.0 s)", "yes 141"))
        ignored = {s.name for s in (signal.SIGPIPE, signal.SIGXFSZ) if int(mask, 16) & 1 << (s - 1)}
        self.assertEqual(ignored, set())

    async def test_keeperHoldsLittle(self) -> None:
        """
        The keeper a run's session is kept by holds little memory of its
        own while the command runs: a shell's, under 1 MiB anonymous (a
        Python keeper held 3.8 MB a run, seen live: 380 MB for 100 lines
        whose init-command ran at start, 11 MB before the keeper).
        """
        service = startGateway(self, ptyLine(startedPty(self), "raw+tcp:0:interface=127.0.0.1",
                                             initCommand="echo up >&2; exec sleep 1000"))
        line = service.lines["t"]
        line.initReactor = ClockedProcesses(Clock())
        await until(self, lambda: line.initLast is not None and line.initLast.stderr == b"up\n", "the command runs")
        run = line.initLast
        assert run is not None and run.pid is not None

        def over() -> Any:
            run.kill("the test is over")
            run.killNow()  # (not on the test's clock)
            return run.ended

        self.addCleanup(over)
        with open(f"/proc/{run.pid}/smaps_rollup") as f:
            anonymous = next(int(row.split()[1]) for row in f if row.startswith("Anonymous:"))
        self.assertLess(anonymous, 1024, f"the keeper holds {anonymous} kB anonymous")
