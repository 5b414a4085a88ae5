"""
The servers under test and how each is set up: serialgw (one line, a farm
from one --config file, several --shard processes), socat, ser2net (plain
and tuned), bench/relay.py, and the neighbour scenario's controls (line B
served by a process of its own).  Each starts on given devices and ports
and is stopped with everything it made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

from .machine import waitListening, waitOpen

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def ensurePeers() -> None:
    missing = [p for p, exe in (("socat", "socat"), ("ser2net", "ser2net")) if not shutil.which(exe)]
    if missing:
        print(f"installing {' '.join(missing)} ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["systemctl", "stop", "ser2net"], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    subprocess.run(["pkill", "-x", "ser2net"], stderr=subprocess.DEVNULL)


def ensureStuckPeers() -> None:
    """socat and ser2net for the stuck scenario run alone (installed if missing; other runs left alone)."""
    missing = [exe for exe in ("socat", "ser2net") if not shutil.which(exe)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


class Server:
    name = "?"
    telnet = False

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.dir = tempfile.mkdtemp(prefix="serialgw-bench-")

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        raise NotImplementedError

    def logfile(self, name: str = "twistd.log") -> str:
        """
        twistd's --logfile option: a file in this server's own directory.
        Never /dev/null: twistd rotates its log at 1 MB by renaming it, and
        as root that renamed the machine's /dev/null (s29).
        """
        return "--logfile=" + os.path.join(self.dir, name)

    def pids(self) -> list[int]:
        """The processes serving (one; serialgw's shards are several)."""
        assert self.proc is not None
        return [self.proc.pid]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Serialgw(Server):
    name = "serialgw"
    telnet = True
    extra: list[str] = []
    # A single line's listeners: lossless, as socat and ser2net are (below).
    policy = "block"

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        env = dict(os.environ, PYTHONPATH=REPO)
        if len(devices) == 1:
            # Lossless, as socat and ser2net are (policy=block: the line
            # stops reading its device while the client is behind); with the
            # default (drop) a reader that stalls for a few milliseconds
            # (the GIL, a busy machine) loses output and the transfer fails.
            options = f",policy={self.policy}" if self.policy else ""
            argv = TWISTD + ["-n", "--pidfile=", self.logfile(), "serialgw", "--device", devices[0],
                             "--port", f"raw{options}+tcp:{ports[0]}:interface=127.0.0.1", *self.extra]
            if telnetPort:
                argv += ["--listen", f"telnet{options}+tcp:{telnetPort}:interface=127.0.0.1"]
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        else:
            # A console server farm as users run one: twistd with a configuration file.
            config = os.path.join(self.dir, "farm.toml")
            with open(config, "w") as f:
                for i, (device, port) in enumerate(zip(devices, ports, strict=True)):
                    f.write(f'[lines.line{i}]\ndevice = "{device}"\nlisten = "raw+tcp:{port}:interface=127.0.0.1"\n\n')
            argv = TWISTD + ["-n", "--pidfile=", self.logfile(), "serialgw", "--config", config, *self.extra]
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        waitListening(ports[-1])


class SerialgwCoalesced(Serialgw):
    name = "serialgw-coalesce"
    telnet = False
    extra = ["--coalesce", "2,20"]


class Socat(Server):
    name = "socat"

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        assert len(devices) == 1
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{ports[0]},reuseaddr,nodelay,bind=127.0.0.1", f"{devices[0]},raw,echo=0"])
        waitListening(ports[0])


class Ser2net(Server):
    name = "ser2net"
    options = ""
    flags: list[str] = []

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        config = os.path.join(self.dir, "ser2net.yaml")
        with open(config, "w") as f:
            for i, (device, port) in enumerate(zip(devices, ports, strict=True)):
                f.write(f"connection: &c{i}\n  accepter: tcp,127.0.0.1,{port}\n"
                        f"  connector: serialdev,{device},115200n81,local\n{self.options}\n")
        self.proc = subprocess.Popen(["ser2net", "-n", *self.flags, "-c", config, "-P", os.path.join(self.dir, "pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        waitListening(ports[-1])


class Ser2netTuned(Ser2net):
    name = "ser2net-tuned"
    options = "  options:\n    chardelay: false\n    dev-to-net-bufsize: 4096\n    net-to-dev-bufsize: 4096\n"


class SerialgwManyClients(Serialgw):
    extra = ["--max-clients", "0"]
    # The default (drop): with block, one client that never reads stops the line.
    policy = ""


class Ser2netManyClients(Ser2net):
    """
    ser2net for the stuck-clients scenario: one port taking every client
    (max-connections), tuned as for the neighbour scenario (no char delay,
    64 KiB buffers, no UUCP lock).
    """

    name = "ser2net-tuned"
    flags = ["-u"]

    def __init__(self, clients: int) -> None:
        super().__init__()
        self.options = ("  options:\n    chardelay: false\n    dev-to-net-bufsize: 65536\n"
                        f"    net-to-dev-bufsize: 65536\n    max-connections: {clients + 1}\n")


class SocatLines(Server):
    """socat as a farm runs it: one process a line."""

    name = "socat"

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[Socat] = []

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        for device, port in zip(devices, ports, strict=True):
            line = Socat()
            self.lines.append(line)
            line.start([device], [port])
        self.proc = self.lines[0].proc

    def stop(self) -> None:
        for line in self.lines:
            line.stop()
        self.proc = None
        super().stop()


class Ser2netNeighbour(Ser2net):
    """
    ser2net as tuned for the neighbour scenario (issue 15): no char delay,
    64 KiB buffers; no UUCP lock (LCK..N of a pty is shared with every
    other /dev/pts/N user on the machine).
    """

    name = "ser2net-tuned"
    options = "  options:\n    chardelay: false\n    dev-to-net-bufsize: 65536\n    net-to-dev-bufsize: 65536\n"
    flags = ["-u"]


class SerialgwNeighbour(Serialgw):
    """serialgw's farm (one --config file), without UUCP locks (as ser2net -u)."""

    # More of its environment (bench/neighbourcpu.py --oneshot: SERIALGW_ONESHOT).
    environ: dict[str, str] = {}

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        config = os.path.join(self.dir, "farm.toml")
        with open(config, "w") as f:
            for i, (device, port) in enumerate(zip(devices, ports, strict=True)):
                f.write(f'[lines.line{i}]\ndevice = "{device}"\nlisten = "raw+tcp:{port}:interface=127.0.0.1"\n'
                        "lock = false\n\n")
        argv = TWISTD + ["-n", "--pidfile=", self.logfile(), "serialgw", "--config", config, *self.extra]
        self.proc = subprocess.Popen(argv, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, **self.environ),
                                     stdout=subprocess.DEVNULL)
        waitListening(ports[-1])


class Apart(Server):
    """
    A control for the neighbour scenario (--control), not a way to run
    serialgw: line A in a serialgw process of its own, line B in another
    process of its own, so that nothing of A's work is B's server's.
    """

    name = "?"

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[Server] = []

    def serverOfB(self) -> Server:
        raise NotImplementedError

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        self.lines = [SerialgwNeighbour(), self.serverOfB()]
        for line, device, port in zip(self.lines, devices, ports, strict=True):
            line.start([device], [port])
        # (A's: the flood's CPU is the one counted.)
        self.proc = self.lines[0].proc

    def stop(self) -> None:
        for line in self.lines:
            line.stop()
        self.proc = None
        super().stop()


class SerialgwApart(Apart):
    """Control: B in a serialgw process of its own (A in another)."""

    name = "control: serialgw apart"

    def serverOfB(self) -> Server:
        return SerialgwNeighbour()


class Relay(Server):
    """bench/relay.py serving one line: the least a Python process does for it."""

    mode = "spin"

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        assert len(devices) == 1
        self.proc = subprocess.Popen([sys.executable, os.path.join(REPO, "bench", "relay.py"), devices[0],
                                      str(ports[0]), self.mode])
        waitListening(ports[0])


class RelaySleeping(Relay):
    mode = "sleep"


class RelayApart(Apart):
    """Control: B served by bench/relay.py spinning (A by serialgw, in another process)."""

    name = "control: relay spinning"

    def serverOfB(self) -> Server:
        return Relay()


class RelaySleepingApart(Apart):
    """Control: B served by bench/relay.py sleeping in poll (A by serialgw, in another process)."""

    name = "control: relay sleeping"

    def serverOfB(self) -> Server:
        return RelaySleeping()


class SerialgwShards(Server):
    """
    serialgw's farm as N processes over one file, process I started with
    --shard I/N (as serialgw@I-N.service runs them); N = 1 is the same file
    and options in one process. No UUCP locks (as ser2net -u).
    """

    name = "serialgw-shards"

    def __init__(self, shards: int) -> None:
        Server.__init__(self)
        self.shards = shards
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, devices: list[str], ports: list[int], telnetPort: Optional[int] = None) -> None:
        config = os.path.join(self.dir, "farm.toml")
        with open(config, "w") as f:
            f.write("[defaults]\nlock = false\n\n")
            for i, (device, port) in enumerate(zip(devices, ports, strict=True)):
                f.write(f'[lines.line{i}]\ndevice = "{device}"\nlisten = "raw+tcp:{port}:interface=127.0.0.1"\n\n')
        for index in range(self.shards):
            argv = TWISTD + ["-n", "--pidfile=", self.logfile(f"twistd-{index}.log"), "serialgw", "--config", config,
                             "--shard", f"{index}/{self.shards}"]
            self.procs.append(subprocess.Popen(argv, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                                               stdout=subprocess.DEVNULL))
        self.proc = self.procs[0]
        try:
            # Every port: each process binds its own share.
            deadline = time.monotonic() + 120
            wanted = {f":{port:04X}" for port in ports}
            while wanted and time.monotonic() < deadline:
                ended = [i for i, proc in enumerate(self.procs) if proc.poll() is not None]
                if ended:
                    # A port of the farm's block taken meanwhile by another program, most likely.
                    raise StartFailed(f"serialgw --shard {ended[0]}/{self.shards} ended at start")
                with open("/proc/net/tcp") as f:
                    wanted -= {line.split()[1][-5:] for line in f if line.split()[3] == "0A"}
                time.sleep(0.1)
            if wanted:
                raise StartFailed(f"{len(wanted)} ports not listening")
            waitOpen(self.pids(), devices, timeout=120)
        except BaseException:
            self.stop()
            raise

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stop(self) -> None:
        for proc in self.procs[1:]:
            proc.terminate()
        for proc in self.procs[1:]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        Server.stop(self)


class StartFailed(RuntimeError):
    pass
