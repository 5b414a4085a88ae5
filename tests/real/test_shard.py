"""
Two real twistd gateways over one configuration file, --shard 0/2 and
1/2: each opens only its own lines' devices and listeners, carries their
bytes both ways, lists only them on its own status page and its own
watch-all view, and takes a line added by a reload only if the line is its
own.
"""

from __future__ import annotations

import os
import re
import signal

from twisted.trial.unittest import TestCase

from serialgw.config.shard import shardOf
from tests.realio import (
    ProcessOutput,
    PtyPair,
    closeClients,
    connect,
    gatewayArgv,
    linePort,
    startedPty,
    startProcess,
    statusPage,
    testLockDir,
    writeTemp,
)

# By their names: rack4-db1 and vm100 are process 0's, rack4-web1 and vm101
# process 1's; vm102 (added by the reload) is process 0's.
SHARES = {0: ["rack4-db1", "vm100"], 1: ["rack4-web1", "vm101"]}
ADDED = "vm102"


def lineTable(name: str, pty: PtyPair) -> str:
    return (f'[lines.{name}]\ndevice = "{pty.slaveName}"\nlock-dir = "{testLockDir()}"\n'
            'listen = "raw+tcp:0:interface=127.0.0.1"\n\n')


def openDevices(pid: int) -> set[str]:
    """The /dev/pts paths a process holds open."""
    paths = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/dev/pts/"):
            paths.add(target)
    return paths


def pidOf(proc: ProcessOutput) -> int:
    assert proc.transport is not None
    return int(proc.transport.pid)


class ShardTests(TestCase):
    timeout = 90

    def test_sharesMatchTheHash(self) -> None:
        """The names this test uses go where the hash says (so the test below checks what it means to)."""
        for index, names in SHARES.items():
            self.assertEqual([shardOf(name, 2, {}) for name in names], [index] * len(names))
        self.assertEqual(shardOf(ADDED, 2, {}), 0)

    async def test_twoProcessesOneFile(self) -> None:
        """Each of two processes serves its share only, bytes both ways, its own status page; a reload adds a line to its owner alone."""
        ptys = {name: startedPty(self) for names in SHARES.values() for name in names}
        order = ["rack4-web1", "rack4-db1", "vm100", "vm101"]
        # The locks left on (each process locks its own ptys): without
        # them, another gateway on this machine that reopens a /dev/pts/N it
        # lost opens this test's pty given that number and reads what the
        # test types there (seen: a gateway left on a closed pty took the
        # next /dev/pts/10 within seconds); the flock taken with the lock
        # keeps it out (the UUCP lock file is in this run's own directory).
        path = os.path.abspath(writeTemp(self, '[watch-all]\nlisten = "tcp:0:interface=127.0.0.1"\n\n'
                                               + "".join(lineTable(name, ptys[name]) for name in order)))
        procs = {}
        for index in SHARES:
            proc = startProcess(self, gatewayArgv("--config", path, "--shard", f"{index}/2", "--status", "tcp:0:interface=127.0.0.1"))
            procs[index] = proc
        logs = {}
        for index, proc in procs.items():
            # The watch-all listener comes last, after every line and the status page.
            logs[index] = await proc.output.contains(b"watch-all listener ready on 127.0.0.1:")
            announced = re.findall(rb"line ([\w.-]+): raw listener ready", logs[index])
            self.assertEqual([name.decode() for name in announced], SHARES[index])
            self.assertIn(f"--shard {index}/2: this process serves 2 of the 4 line(s) of {path}".encode(), logs[index])
            self.assertEqual(openDevices(pidOf(proc)), {ptys[name].slaveName for name in SHARES[index]})
            port = int(re.findall(rb"status page \(JSON\) on http://127\.0\.0\.1:(\d+)/", logs[index])[0])
            self.assertEqual([line["name"] for line in (await statusPage(port))["lines"]], SHARES[index])

        watchers = {}
        for index in SHARES:
            found = re.findall(rb"watch-all listener ready on 127\.0\.0\.1:(\d+)", logs[index])
            watchers[index] = await connect(int(found[0]))
        for index, names in SHARES.items():
            for name in names:
                client = await connect(linePort(logs[index], name, "raw"))
                client.transport.write(f"to {name}".encode())  # type: ignore[union-attr]
                self.assertEqual(await ptys[name].received.length(3 + len(name)), f"to {name}".encode())
                ptys[name].write(f"from {name}".encode())
                self.assertEqual(await client.received.length(5 + len(name)), f"from {name}".encode())
                await closeClients(client)

        # Each process's watch-all view: its own lines, no other's (a watcher of every line connects to each).
        for index, names in SHARES.items():
            for name in names:
                await watchers[index].received.contains(f"{name}: from {name}\r\n".encode())
            for name in SHARES[1 - index]:
                self.assertNotIn(name.encode(), watchers[index].received.data)
        await closeClients(*watchers.values())

        added = startedPty(self)
        with open(path, "a") as f:
            f.write(lineTable(ADDED, added))
        for proc in procs.values():
            proc.transport.signalProcess(signal.SIGHUP)  # type: ignore[union-attr]
        ownerLog = await procs[0].output.contains(b"reload: added ['vm102'], changed none, removed none, 2 unchanged")
        await procs[1].output.contains(b"reload: added none, changed none, removed none, 2 unchanged")
        # A line a reload adds is opened off the reactor thread: typed before it is up, bytes would be dropped.
        await procs[0].output.contains(b"line vm102: device ")
        self.assertNotIn(b"vm102", procs[1].output.data)
        self.assertEqual(openDevices(pidOf(procs[1])), {ptys[n].slaveName for n in SHARES[1]})
        client = await connect(linePort(ownerLog, ADDED, "raw"))
        client.transport.write(b"added")  # type: ignore[union-attr]
        self.assertEqual(await added.received.length(5), b"added")
        await closeClients(client)
