"""
The systemd units as shipped (contrib/): systemd-analyze verify finds
nothing to say; socket activation through systemd-socket-activate carries
bytes; a systemd: listener without its socket is refused with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from twisted.internet import utils
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from serialgw.app.systemdsockets import systemdProblem
from serialgw.config.specs import DEFAULT_LOCK_DIR
from tests.realio import REPO, TWISTD, connectUnix, socketPath, spawn, startedPty, testLockDir

CONTRIB = os.path.join(REPO, "contrib")


class ProblemTests(SynchronousTestCase):
    def test_messages(self) -> None:
        """Each way a systemd: listener can miss its socket has its own message naming what systemd passed."""
        none: dict[str, str] = {}
        two = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web1:db1"}
        self.assertEqual(systemdProblem("tcp:4444", none), None)
        self.assertEqual(systemdProblem("systemd:domain=INET:index=0", none),
                         "systemd passed no sockets: start the gateway through its .socket unit "
                         "(each ListenStream= there is one socket, index=0 the first)")
        self.assertEqual(systemdProblem("systemd:domain=INET:index=1", two), None)
        self.assertEqual(systemdProblem("systemd:domain=INET:index=2", two),
                         "index=2: systemd passed 2 socket(s), index=0 to index=1")
        self.assertEqual(systemdProblem("systemd:domain=INET:name=db1", two), None)
        self.assertEqual(systemdProblem("systemd:domain=INET:name=mail", two),
                         "name=mail: the sockets systemd passed are named db1, web1 "
                         "(FileDescriptorName= in the .socket unit)")
        self.assertEqual(systemdProblem("systemd:domain=INET", two),
                         "name=NAME or index=N is needed to pick one of the sockets systemd passed")
        other = {**two, "LISTEN_PID": "1"}
        self.assertIsNotNone(systemdProblem("systemd:domain=INET:index=0", other))

    def test_domainOfThePassedSocket(self) -> None:
        """A domain= other than the passed socket's is refused naming both (ListenStream=4001 is INET6: Twisted read its addresses as INET's, garbage); the same domain passes."""
        two = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web1:db1"}
        sockets = {3: ("INET6", "[::]:4001"), 4: ("UNIX", "/run/serialgw/db1.sock")}
        self.assertEqual(systemdProblem("systemd:domain=INET:index=0", two, sockets.get),
                         "domain=INET, but the socket systemd passed as index=0 is an INET6 one, [::]:4001 "
                         "(ListenStream=PORT is an INET6 socket, taking IPv4 too): write domain=INET6")
        self.assertEqual(systemdProblem("systemd:INET:1", two, sockets.get),
                         "domain=INET, but the socket systemd passed as index=1 is a UNIX one, "
                         "/run/serialgw/db1.sock: write domain=UNIX")
        self.assertEqual(systemdProblem("systemd:domain=INET6:name=web1", two, sockets.get), None)
        self.assertEqual(systemdProblem("systemd:domain=UNIX:name=db1", two, sockets.get), None)
        self.assertEqual(systemdProblem("systemd:domain=INET:index=0", two, lambda fd: None), None)


class UnitTests(TestCase):
    timeout = 60

    async def test_verify(self) -> None:
        """systemd-analyze verify passes the units, and an instance of the template, without a word (the venv's twistd stands in for /opt/serialgw's)."""
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise SkipTest("systemd-analyze not installed (Debian package systemd)")
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        if not os.access(twistd, os.X_OK):
            twistd = "/bin/true"
        for name in ("serialgw.service", "serialgw.socket", "serialgw@.service"):
            with open(os.path.join(CONTRIB, name)) as f:
                text = f.read()
            with open(os.path.join(directory, name), "w") as f:
                f.write(text.replace("/opt/serialgw/bin/twistd", twistd))
        out, err, code = await utils.getProcessOutputAndValue(
            analyze, ["verify", "--man=no", "./serialgw.service", "./serialgw.socket", "./serialgw@1-2.service"],
            path=directory, env=os.environ)
        if code != 0 and b"Failed to initialize" in err:
            raise SkipTest(f"systemd-analyze cannot run here: {err.decode(errors='replace')}")
        self.assertEqual((code, out, err), (0, b"", b""))

    def test_unitRunsWhatIsDocumented(self) -> None:
        """The unit runs the venv's twistd in /opt/serialgw with the file it checks first and its status page on loopback (README's scrape job), and reloads with SIGHUP."""
        with open(os.path.join(CONTRIB, "serialgw.service")) as f:
            lines = f.read().splitlines()
        settings = [line for line in lines if line and not line.startswith("#")]
        options = "--config /etc/serialgw/serialgw.toml --status tcp:8440:interface=127.0.0.1"
        self.assertIn(f"ExecStartPre=/opt/serialgw/bin/twistd serialgw --check {options}", settings)
        self.assertIn(f"ExecStart=/opt/serialgw/bin/twistd --nodaemon --pidfile= serialgw {options}", settings)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", settings)
        for key in ("LogsDirectory=serialgw", "StateDirectory=serialgw", "Type=notify", "DynamicUser=yes",
                    "ProtectSystem=strict", "WatchdogSec=30s"):
            self.assertIn(key, settings)

    def test_templateRunsItsShare(self) -> None:
        """serialgw@I-N.service checks and runs the one file as process I/N (%I) with its own status port; its processes share one user and the runtime directory."""
        with open(os.path.join(CONTRIB, "serialgw@.service")) as f:
            settings = [line for line in f.read().splitlines() if line and not line.startswith("#")]
        options = "--config /etc/serialgw/serialgw.toml --shard %I --status tcp:8440:interface=127.0.0.1"
        self.assertIn(f"ExecStartPre=/opt/serialgw/bin/twistd serialgw --check {options}", settings)
        self.assertIn(f"ExecStart=/opt/serialgw/bin/twistd --nodaemon --pidfile= serialgw {options}", settings)
        for key in ("ExecReload=/bin/kill -HUP $MAINPID", "Type=notify", "DynamicUser=yes", "User=serialgw",
                    "RuntimeDirectoryPreserve=yes", "Conflicts=serialgw.service", "ReadWritePaths=-/run/lock"):
            self.assertIn(key, settings)
        # systemd escapes "/" in an instance name as "-": serialgw@1-2 runs --shard 1/2.
        escape = shutil.which("systemd-escape")
        if escape is not None:
            self.assertEqual(subprocess.run([escape, "--unescape", "1-2"], capture_output=True, check=True).stdout,
                             b"1/2\n")

    def test_oddInstanceNotRestarted(self) -> None:
        """An instance name that is no I-N (serialgw@x, @1-0, @-1-2: %I is x, 1/0, /1/2) fails the template's ExecStartPre= with exit 2, which neither unit restarts."""
        for name in ("serialgw.service", "serialgw@.service"):
            with open(os.path.join(CONTRIB, name)) as f:
                settings = [line for line in f.read().splitlines() if line and not line.startswith("#")]
            self.assertIn("Restart=on-failure", settings)
            self.assertIn("RestartPreventExitStatus=2", settings, name)
        with open(os.path.join(CONTRIB, "serialgw@.service")) as f:
            pre = next(line for line in f.read().splitlines() if line.startswith("ExecStartPre="))
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/null"\nlisten = "tcp:0"\nlock = false\n')
        argv = pre.split()[1:]
        argv[argv.index("/etc/serialgw/serialgw.toml")] = path
        shown = {"x": "expected I/N, this process's number (from 0) of N processes, e.g. 0/2",
                 "1/0": "the number of processes must be 1 to 1024, not 0",
                 "/1/2": "expected I/N, this process's number (from 0) of N processes, e.g. 0/2"}
        for instance, message in shown.items():
            done = subprocess.run(TWISTD + [instance if a == "%I" else a for a in argv], capture_output=True,
                                  cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
            self.assertEqual((done.returncode, done.stdout, done.stderr),
                             (2, b"", f"serialgw: error: --shard {instance!r}: {message}\n".encode()), instance)

    def test_lockDirectoryWritable(self) -> None:
        """Under ProtectSystem=strict (/run read-only) the unit opens /run/lock for the ttys' UUCP locks."""
        with open(os.path.join(CONTRIB, "serialgw.service")) as f:
            settings = [line for line in f.read().splitlines() if line and not line.startswith("#")]
        self.assertIn(os.path.realpath(DEFAULT_LOCK_DIR), ("/run/lock", "/var/lock"))
        self.assertIn("ReadWritePaths=-/run/lock", settings)


class ActivationTests(TestCase):
    timeout = 60

    def activate(self, socketPath: str, *args: str) -> object:
        activate = shutil.which("systemd-socket-activate")
        if activate is None:
            raise SkipTest("systemd-socket-activate not installed (Debian package systemd)")
        return spawn([activate, "-l", socketPath, "--fdname=console", "-E", f"PYTHONPATH={REPO}",
                      "--", *TWISTD, "-n", "--pidfile=", "serialgw", *args])

    async def test_socketActivated(self) -> None:
        """Under systemd-socket-activate the gateway adopts the socket by name; the first connection reaches the device."""
        pty = startedPty(self)
        path = socketPath(self)
        proc = self.activate(path, "--device", pty.slaveName, "--lock-dir", testLockDir(),
                             "--port", "raw+systemd:domain=UNIX:name=console")
        self.addCleanup(proc.stop)  # type: ignore[attr-defined]
        await proc.output.contains(b"Listening on")  # type: ignore[attr-defined]
        client = await connectUnix(path)
        client.transport.write(b"hello device")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(12), b"hello device")
        pty.write(b"hello client")
        self.assertEqual(await client.received.length(12), b"hello client")
        client.transport.loseConnection()  # type: ignore[union-attr]

    async def test_wrongDomain(self) -> None:
        """domain=INET on the unix socket systemd-socket-activate passed: exit 2 naming what was passed, not a listener with garbage addresses."""
        path = socketPath(self)
        proc = self.activate(path, "--device", "/dev/null", "--port", "systemd:domain=INET:name=console")
        await proc.output.contains(b"Listening on")  # type: ignore[attr-defined]
        client = await connectUnix(path)
        self.assertEqual(await proc.ended, 2)  # type: ignore[attr-defined]
        self.assertIn(f"serialgw: error: line 'null': listener 'systemd:domain=INET:name=console': domain=INET, but the socket "
                      f"systemd passed as name=console is a UNIX one, {path}: write domain=UNIX\n".encode(),
                      proc.output.data)  # type: ignore[attr-defined]
        client.transport.loseConnection()  # type: ignore[union-attr]

    async def test_noSuchSocket(self) -> None:
        """index=1 when one socket was passed: exit 2 with the reason, not "list index out of range"."""
        path = socketPath(self)
        proc = self.activate(path, "--device", "/dev/null", "--port", "systemd:domain=UNIX:index=1")
        await proc.output.contains(b"Listening on")  # type: ignore[attr-defined]
        client = await connectUnix(path)
        self.assertEqual(await proc.ended, 2)  # type: ignore[attr-defined]
        self.assertIn(b"serialgw: error: line 'null': listener 'systemd:domain=UNIX:index=1': index=1: systemd passed 1 "
                      b"socket(s), index=0 to index=0\n", proc.output.data)  # type: ignore[attr-defined]
        client.transport.loseConnection()  # type: ignore[union-attr]
