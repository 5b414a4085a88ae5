"""
A console log under any mix of device output, events, marks, clock steps,
SIGUSR1 (same file, or after a rename), copytruncate, reloads (a new log on
the same file) and rotations by size or day: every line of every file is
stamped, no byte of output is lost or doubled, and the events are there in
order.  (It found the unstamped first line after copytruncate then SIGUSR1,
or then a reload.)
"""

from __future__ import annotations

import os
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.logmarks import CUT
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice

OPS = st.lists(st.one_of(
    st.tuples(st.just("out"), st.text(alphabet="ab\n", min_size=1, max_size=12)),
    st.tuples(st.just("event"), st.just("")),
    st.tuples(st.just("advance"), st.sampled_from([0.1, 0.5, 1.0, 2.0, 30.0, 86400.0])),
    st.tuples(st.just("reopenSame"), st.just("")),
    st.tuples(st.just("renameReopen"), st.just("")),
    st.tuples(st.just("copytruncate"), st.just("")),
    st.tuples(st.just("reload"), st.sampled_from([0, 7, 20])),
), max_size=40)

STAMP = b"S "
KEEP = 50


class ConsoleLogPropertyTests(SynchronousTestCase):
    # No deadline nor speed check: on a loaded machine (CI's two cores shared) input generation is slow.
    @settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
    @given(OPS, st.sampled_from([0, 7, 20]), st.booleans(), st.sampled_from([0, 1]))
    def test_everyLineStampedNothingLost(self, ops: list[tuple[str, object]], maxSize: int, daily: bool,
                                         mark: int) -> None:
        """Any run of output, events, reopens, truncations, reloads and rotations: lines stamped, output whole, events in order."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        try:
            self.play(directory, ops, maxSize, daily, mark)
        finally:
            shutil.rmtree(directory)

    def play(self, directory: str, ops: list[tuple[str, object]], maxSize: int, daily: bool,
            mark: int) -> None:
        clock = Clock()
        clock.advance(1000)
        line = Line("t", RecordingDevice(), clock=clock)
        path = os.path.join(directory, "l.log")

        def spec(size: int) -> LogSpec:
            return LogSpec(path, format=STAMP.decode(), maxSize=size, daily=daily, keep=KEEP, mark=mark)

        log = ConsoleLog(line, spec(maxSize), clock)
        # The files' contents in the order written (each rotated, renamed or copied file taken as it goes).
        journal: list[bytes] = []
        output, events = b"", []

        def take(name: str) -> None:
            with open(name, "rb") as f:
                journal.append(f.read())
            os.unlink(name)

        def rotated() -> None:
            for i in range(KEEP, 0, -1):
                if os.path.exists(f"{path}.{i}"):
                    take(f"{path}.{i}")

        for n, (op, arg) in enumerate(ops):
            if op == "out":
                assert isinstance(arg, str)
                output += arg.encode()
                line.deviceDataReceived(arg.encode())
            elif op == "event":
                events.append(f"E{n}")
                line.recordEvent(f"E{n}")
            elif op == "advance":
                assert isinstance(arg, float)
                clock.advance(arg)
            elif op == "reopenSame":
                log.reopen()
            elif op == "renameReopen":
                rotated()
                os.rename(path, path + ".moved")
                log.reopen()
                take(path + ".moved")
            elif op == "copytruncate":
                rotated()
                with open(path, "rb") as f:
                    journal.append(f.read())
                os.truncate(path, 0)
            elif op == "reload":
                assert isinstance(arg, int)
                new = ConsoleLog(line, spec(arg), clock)
                log.close()
                log = new
            rotated()
        log.close()
        rotated()
        take(path)
        logged, told = b"", []
        for chunk in journal:
            for i, text in enumerate(chunk.split(b"\n")):
                if not text and i == chunk.count(b"\n"):
                    continue  # (after the file's last newline)
                self.assertTrue(text.startswith(STAMP), (text, journal))
                body = text[len(STAMP):].removesuffix(CUT.encode())
                if body.startswith(b"[-- MARK -- "):
                    self.assertTrue(body.endswith(b"]"), body)
                elif body.startswith(b"[serialgw: "):
                    self.assertTrue(body.endswith(b"]"), body)
                    told.append(body[len(b"[serialgw: "):-1].decode())
                else:
                    logged += body
        self.assertEqual(logged, output.replace(b"\n", b""), journal)
        if not any("more event" in text for text in told):
            self.assertEqual([text for text in told if text.startswith("E")], events, journal)
