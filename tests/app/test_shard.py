"""
twistd serialgw --shard I/N: options, --check across every process of the
file, and the service each process builds (its lines, its own status, SSH
and watch-all listeners).
"""

from __future__ import annotations

import io
import os
from typing import Any

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config.shard import Shard

# By their names rack4-web1 and vm101 go to process 1 of 2, rack4-db1 and vm100 to process 0 (of 3: 2, 2, 0 and 0,
# none to process 1).
FARM = """\
[defaults]
lock = false

[watch-all]
listen = "tcp:4400:interface=127.0.0.1"

[lines.rack4-web1]
device = "/dev/null"
listen = "tcp:4001:interface=127.0.0.1"

[lines.rack4-db1]
device = "/dev/zero"
listen = "tcp:4002:interface=127.0.0.1"

[lines.vm100]
device = "/dev/full"
listen = "tcp:4003:interface=127.0.0.1"

[lines.vm101]
device = "/dev/random"
listen = "tcp:4004:interface=127.0.0.1"
shard = 0
"""


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.exitOnError = False
    options.parseOptions(list(args))
    return options


def checked(*args: str) -> tuple[int, str, str]:
    """--check's exit status, stdout and stderr."""
    options = parse("--check", *args)
    out, err = io.StringIO(), io.StringIO()
    return options.report(out, err), out.getvalue(), err.getvalue()


class OptionsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        with open(self.path, "w") as f:
            f.write(FARM)

    def test_lines(self) -> None:
        """Each process gets its share in the file's order: by name's hash, vm101 by its shard = 0; together all."""
        zero, one = parse("--config", self.path, "--shard", "0/2"), parse("--config", self.path, "--shard", "1/2")
        self.assertEqual(zero["shardSpec"], Shard(0, 2))
        self.assertEqual([line.name for line in zero["lines"]], ["rack4-db1", "vm100", "vm101"])
        self.assertEqual([line.name for line in one["lines"]], ["rack4-web1"])
        self.assertEqual([line.name for line in one["allLines"]], ["rack4-web1", "rack4-db1", "vm100", "vm101"])
        self.assertEqual([line.name for line in parse("--config", self.path)["lines"]],
                         ["rack4-web1", "rack4-db1", "vm100", "vm101"])

    def test_ownListeners(self) -> None:
        """Process I's status endpoint and watch-all listener take PORT+I; without --shard they are as given."""
        one = parse("--config", self.path, "--shard", "1/2", "--status", "tcp:8440:interface=127.0.0.1")
        self.assertEqual(one["ownStatus"].endpoint, "tcp:8441:interface=127.0.0.1")
        self.assertEqual([s.endpoint for s in one["ownWatchAll"].listeners], ["tcp:4401:interface=127.0.0.1"])
        plain = parse("--config", self.path, "--status", "tcp:8440:interface=127.0.0.1")
        self.assertEqual(plain["ownStatus"].endpoint, "tcp:8440:interface=127.0.0.1")
        self.assertEqual([s.endpoint for s in plain["ownWatchAll"].listeners], ["tcp:4400:interface=127.0.0.1"])

    def test_errors(self) -> None:
        """--shard without --config, a bad I/N, a pin past N, a status port the last process cannot take: usage errors."""
        cases = [
            (["--device", "/dev/null", "--shard", "0/2"],
             "--shard 0/2 needs --config: it shares a file's lines among processes"),
            (["--config", self.path, "--shard", "3/2"], "--shard '3/2': process 3 of 2: the processes are numbered 0 to 1"),
            (["--config", self.path, "--shard", "0/0"], "--shard '0/0': the number of processes must be 1 to 1024, not 0"),
            (["--config", self.path, "--shard", "0/5000"],
             "--shard '0/5000': the number of processes must be 1 to 1024, not 5000"),
            (["--config", self.path, "--shard", "0/3", "--status", "tcp:65534"],
             "--status 'tcp:65534': process 2 would take port 65536, past 65535: give a lower port "
             "(process I listens on PORT+I)"),
            (["--config", self.path, "--shard", "0/2", "--status", "systemd:domain=INET:index=0"],
             "--status 'systemd:domain=INET:index=0': with --shard every process needs one of its own: a tcp: or "
             "tcp6: port (process I listens on PORT+I) or a unix: socket (PATH.I)"),
        ]
        for args, message in cases:
            e = self.assertRaises(UsageError, parse, *args)
            self.assertEqual(str(e), message, args)
        with open(self.path, "a") as f:
            f.write('[lines.extra]\ndevice = "/dev/tty0"\nlisten = "4005"\nshard = 2\n')
        e = self.assertRaises(UsageError, parse, "--config", self.path, "--shard", "1/2")
        self.assertEqual(str(e), f"{self.path}:26: [lines.extra] shard: 2, but --shard runs 2 process(es), "
                                 "numbered 0 to 1")


class CheckTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        with open(self.path, "w") as f:
            f.write(FARM)

    def test_share(self) -> None:
        """--check --shard: the whole file is checked, and this process's share named, line by line."""
        self.assertEqual(checked("--config", self.path, "--shard", "0/2", "--status", "tcp:8440:interface=127.0.0.1"), (
            0, f"serialgw: {self.path}: shard 0/2: 3 of 4 line(s), 3 listener(s): OK\n"
               "serialgw: shard 0/2 serves: rack4-db1 vm100 vm101\n", ""))
        self.assertEqual(checked("--config", self.path, "--shard", "1/2")[1],
                         f"serialgw: {self.path}: shard 1/2: 1 of 4 line(s), 1 listener(s): OK\n"
                         "serialgw: shard 1/2 serves: rack4-web1\n")

    def test_everyProcessListeners(self) -> None:
        """Every process's copy of the status and watch-all listeners is checked against every line, whichever process runs --check."""
        for shard in ("0/2", "1/2"):
            self.assertEqual(checked("--config", self.path, "--shard", shard, "--status", "tcp:4000:interface=127.0.0.1"), (
                2, "",
                "serialgw: error: the status endpoint of process 1/2: listener 'tcp:4001:interface=127.0.0.1' takes "
                "TCP port 4001, as line 'rack4-web1', listener 'tcp:4001:interface=127.0.0.1' already does\n"
                f"serialgw: {self.path}: 1 error(s)\n"))
        # Without --shard, one status endpoint: port 4000 is free.
        self.assertEqual(checked("--config", self.path, "--status", "tcp:4000:interface=127.0.0.1")[0], 0)
        self.assertEqual(checked("--config", self.path, "--shard", "0/2", "--status", "tcp:4399:interface=127.0.0.1"), (
            2, "",
            "serialgw: error: the status endpoint of process 1/2: listener 'tcp:4400:interface=127.0.0.1' takes TCP "
            "port 4400, as watch-all of process 0/2, listener 'tcp:4400:interface=127.0.0.1' already does\n"
            f"serialgw: {self.path}: 1 error(s)\n"))

    def test_systemdListenerUnderShard(self) -> None:
        """A process of --shard whose line has a systemd: listener is refused at start naming the line, its place, and why (the template has no socket units), not told to use a .socket unit."""
        with open(self.path) as f:
            at = len(f.read().splitlines()) + 1
        with open(self.path, "a") as f:
            f.write('[lines.sock]\ndevice = "/dev/tty0"\nlisten = "systemd:domain=INET6:index=0"\nshard = 1\n')
        e = self.assertRaises(UsageError, parse, "--config", self.path, "--shard", "1/2")
        self.assertEqual(str(e), f"{self.path}:{at}: line 'sock': listener 'systemd:domain=INET6:index=0': systemd "
                         "passed no sockets: start the gateway through its .socket unit (each ListenStream= there is "
                         "one socket, index=0 the first); a process of --shard has none (the template unit "
                         "serialgw@.service has no socket units): give the line a tcp: or unix: listener")

    def test_everyLinesEndpoint(self) -> None:
        """--check --shard 0/2 refuses another process's line whose endpoint Twisted cannot read, as 1/2's does; process 0 itself starts."""
        with open(self.path) as f:
            self.extraAt = len(f.read().splitlines()) + 1
        with open(self.path, "a") as f:
            f.write('[lines.extra]\ndevice = "/dev/tty0"\nlisten = "nosuch:4005"\nshard = 1\n')
        for shard in ("0/2", "1/2"):
            e = self.assertRaises(UsageError, checked, "--config", self.path, "--shard", shard)
            self.assertEqual(str(e), f"{self.path}:{self.extraAt}: line 'extra': bad listener 'nosuch:4005': Unknown "
                             "endpoint type: 'nosuch'", shard)
        self.assertEqual([line.name for line in parse("--config", self.path, "--shard", "0/2")["lines"]],
                         ["rack4-db1", "vm100", "vm101"])

    def test_everyLinesTwistedString(self) -> None:
        """A tcp: string that cannot be read (backlog=many), in another process's line, is refused on reading the file, by every process."""
        with open(self.path, "a") as f:
            f.write('[lines.extra]\ndevice = "/dev/tty0"\nlisten = "tcp:4005:backlog=many"\nshard = 1\n')
        for args in (["--check", "--shard", "0/2"], ["--check", "--shard", "1/2"], ["--shard", "0/2"]):
            e = self.assertRaises(UsageError, parse, "--config", self.path, *args)
            self.assertEqual(str(e), f"{self.path}:25: [lines.extra] listen: backlog='many' in listener "
                                     "'tcp:4005:backlog=many': expected a number, 0 to 65535 (the kernel takes at most "
                                     "net.core.somaxconn)", args)

    def test_emptyShard(self) -> None:
        """A process whose share is empty: a warning, exit 0 (a reload may give it lines)."""
        status, out, err = checked("--config", self.path, "--shard", "1/3")
        self.assertEqual((status, err), (0, "serialgw: warning: --shard 1/3: none of the file's 4 line(s) is this "
                                            "process's: it serves its status endpoint alone until a reload adds one\n"))
        self.assertEqual(out, f"serialgw: {self.path}: shard 1/3: 0 of 4 line(s), 0 listener(s): OK, 1 warning(s)\n"
                              "serialgw: shard 1/3 serves: no line\n")


class ServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = os.path.abspath(self.mktemp())
        with open(self.path, "w") as f:
            f.write(FARM)

    def test_service(self) -> None:
        """makeService builds process I's lines, its status endpoint at PORT+I, and says its share in the log."""
        options = parse("--config", self.path, "--shard", "1/2", "--status", "tcp:8440:interface=127.0.0.1")
        with capturedLogs() as events:
            service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual([c.name for c in service.configs], ["rack4-web1"])
        self.assertEqual(service.status, "tcp:8441:interface=127.0.0.1")
        assert service.watchAll is not None
        self.assertEqual([s.endpoint for s in service.watchAll.listeners], ["tcp:4401:interface=127.0.0.1"])
        self.assertEqual(service.shard, Shard(1, 2))  # type: ignore[attr-defined]
        self.assertIn(f"--shard 1/2: this process serves 1 of the 4 line(s) of {self.path}",
                      [formatEvent(e) for e in events])

    def test_emptyShardStarts(self) -> None:
        """A process with no line still makes its service (status endpoint alone) and warns."""
        options = parse("--config", self.path, "--shard", "1/3")
        self.assertIsNone(options["line"])
        with capturedLogs() as events:
            service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(service.configs, [])
        self.assertIn(f"--shard 1/3: none of the 4 line(s) of {self.path} is this process's: it serves its status "
                      "endpoint alone until a reload adds one", [formatEvent(e) for e in events])

    def test_reloadTakesItsShare(self) -> None:
        """SIGHUP's reload re-reads the file and applies this process's share of it only; a pin past N refuses it."""
        options = parse("--config", self.path, "--shard", "0/2")
        service = tap.makeService(options, reactor=MemoryReactorClock())
        applied: list[list[str]] = []

        def reload(lines: list[Any]) -> defer.Deferred[dict[str, list[str]]]:
            applied.append([line.name for line in lines])
            return defer.succeed({"added": [], "changed": [], "removed": []})

        self.patch(service, "_reload", reload)
        with open(self.path, "a") as f:
            f.write('[lines.vm102]\ndevice = "/dev/tty0"\nlisten = "4005"\n'
                    '[lines.rack4-web2]\ndevice = "/dev/tty1"\nlisten = "4006"\n')
        self.successResultOf(service.reloadFile())  # type: ignore[attr-defined]
        # vm102 is process 0's by its name, rack4-web2 process 1's.
        self.assertEqual(applied, [["rack4-db1", "vm100", "vm101", "vm102"]])

        with open(self.path, "a") as f:
            f.write("shard = 2\n")
        with capturedLogs() as events:
            self.successResultOf(service.reloadFile())  # type: ignore[attr-defined]
        self.assertEqual(len(applied), 1)
        self.assertIn(f"reload refused, the running configuration stays: {self.path}:29: [lines.rack4-web2] shard: 2, "
                      "but --shard runs 2 process(es), numbered 0 to 1", [formatEvent(e) for e in events])
