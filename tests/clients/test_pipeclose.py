"""
A pipe: listener's FIFOs closed with it: the real reactor, a pty pair as
the line's device, real FIFOs.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from twisted.trial.unittest import TestCase

from serialgw.config.file import loadConfig
from tests.realio import ptyLine, startedPty, startGateway, testLockDir, until, writeTemp


def attached(service: Any, line: str, path: str, other: Any = None) -> bool:
    """Whether C{line}'s pipe: client on C{path} (not C{other}) is there (its FIFOs opened by a thread, then handed to the reactor's)."""
    return any(client.peer == f"pipe:{path}" and client is not other for client in service.lines[line].clients)


def heldBy(paths: set[str]) -> list[str]:
    """This process's descriptors of C{paths} (what each descriptor names, as /proc/self/fd says)."""
    held = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # (closed meanwhile: the listing's own)
        if target in paths:
            held.append(target)
    return sorted(held)


class PipeCloseTests(TestCase):
    timeout = 30

    def fifos(self) -> tuple[str, set[str]]:
        path = os.path.abspath(self.mktemp())
        for end in (".in", ".out"):
            os.mkfifo(path + end)
        return path, {path + ".in", path + ".out"}

    async def test_stopClosesTheFifos(self) -> None:
        """The stop closes the gateway's descriptors of a pipe: listener's FIFOs (it left both open)."""
        path, fifos = self.fifos()
        service = startGateway(self, ptyLine(startedPty(self), f"pipe:{path}"))
        await until(self, lambda: attached(service, "t", path), "the pipe: client attached")
        self.assertEqual(heldBy(fifos), sorted(fifos))
        await service.stopService()
        await until(self, lambda: not heldBy(fifos), "the gateway's descriptors of the FIFOs closed")

    async def test_reloadsLeaveNone(self) -> None:
        """Reloads changing a pipe: listener (a new client each time, the old one gone) leave the FIFOs held once, not once more a reload."""
        path, fifos = self.fifos()
        pty = startedPty(self)

        def config(outbuf: int) -> list:  # type: ignore[type-arg]
            return loadConfig(writeTemp(self, f'[lines.a]\ndevice = "{pty.slaveName}"\nlock-dir = "{testLockDir()}"\n'
                                              f'listen = "raw,outbuf={outbuf}+pipe:{path}"\n'))

        service = startGateway(self, *config(4096))
        for outbuf in (8192, 16384, 32768):
            await until(self, lambda: attached(service, "a", path), "the pipe: client attached")
            old = next(c for c in service.lines["a"].clients if c.peer == f"pipe:{path}")
            self.assertEqual(await service.reload(config(outbuf)), {"added": [], "changed": ["a"], "removed": []})
            await until(self, partial(attached, service, "a", path, old), "the new pipe: client attached")
        await until(self, lambda: heldBy(fifos) == sorted(fifos), "the old pipe: clients' descriptors closed")
