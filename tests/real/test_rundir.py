"""
A real twistd that changes directory after reading the configuration
(--rundir): relative paths in the file stay the file's directory's, at
start and at a reload.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.trial.unittest import TestCase

from tests.realio import REPO, TWISTD, TtyEnd, closeClients, connect, listeningPort, startProcess, until


class RundirTests(TestCase):
    timeout = 30

    def directory(self) -> str:
        path = tempfile.mkdtemp(prefix="serialgw-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    async def test_rundirMovesNothing(self) -> None:
        """twistd --rundir=ELSEWHERE, a relative --config with relative paths: the pty link, file: output and console log are the file's directory's, and SIGHUP reads the file again there; nothing lands in ELSEWHERE."""
        here, elsewhere = self.directory(), self.directory()
        config = os.path.join(here, "farm.toml")
        text = ('[lines.a]\ndevice = "pty:dev"\nlog = "console.log"\n'
                'listen = ["raw+tcp:0:interface=127.0.0.1", "file:out.log"{more}]\n')
        with open(config, "w") as f:
            f.write(text.format(more=""))
        # The gateway runs from the repository: the file is named relative to it.
        proc = startProcess(self, TWISTD + ["-n", "--pidfile=", f"--rundir={elsewhere}", "serialgw",
                                            "--config", os.path.relpath(config, REPO)])
        await proc.output.contains(f"line a: output appended to {here}/out.log".encode())
        client = await connect(await listeningPort(proc, "raw"))
        far = TtyEnd(os.path.join(here, "dev"))
        self.addCleanup(far.close)
        far.write(b"hello\n")
        await client.received.contains(b"hello\n")
        self.assertEqual(sorted(os.listdir(here)), ["console.log", "dev", "farm.toml", "out.log"])
        with open(config, "w") as f:
            f.write(text.format(more=', "file:more.log"'))
        proc.transport.signalProcess("HUP")  # type: ignore[union-attr]
        await proc.output.contains(f"line a: output appended to {here}/more.log".encode())
        await proc.output.contains(b"reload: added none, changed ['a'], removed none, 0 unchanged")
        # (Opened by its writer thread, once the reload is done.)
        await until(self, lambda: os.path.exists(os.path.join(here, "more.log")), "more.log to be made")
        self.assertEqual(sorted(os.listdir(here)), ["console.log", "dev", "farm.toml", "more.log", "out.log"])
        self.assertEqual(os.listdir(elsewhere), [])
        self.assertNotIn(b"Traceback", proc.output.data)
        await closeClients(client)
