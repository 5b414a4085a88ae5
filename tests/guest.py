"""
A real Linux guest for integration tests: QEMU running Debian's cloud kernel
with a busybox initramfs whose interactive shell sits on the first serial port.

Build the image once with ``bash tests/guest/build.sh``; it is cached outside
the repository (see L{cacheDir}).  The guest prints L{READY_MARKER} when its
init starts and then shows the prompt L{PROMPT} on ttyS0.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Optional, Union

from twisted.internet import defer, protocol, reactor
from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.trial.unittest import SkipTest

BUILD_COMMAND = "bash tests/guest/build.sh"
READY_MARKER = b"SERIALGW-GUEST-READY"
PROMPT = b"guest# "
KERNEL_CMDLINE = "console=ttyS0 sysrq_always_enabled=1 quiet panic=-1 no_timer_check"
QEMU = "qemu-system-x86_64"
# QEMU prints this on stdout for "-serial pty".
PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+) \(label serial0\)")


def cacheDir() -> str:
    """
    The guest image directory, as used by C{tests/guest/build.sh}:
    C{${SERIALGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serialgw}/guest}.
    """
    base = os.environ.get("SERIALGW_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "serialgw")
    return os.path.join(base, "guest")


def qemuBinary() -> str:
    """
    The path of C{qemu-system-x86_64}, or raise L{SkipTest}.
    """
    path = shutil.which(QEMU)
    if path is None:
        raise SkipTest(f"{QEMU} not found on PATH (Debian: apt-get install qemu-system-x86)")
    return path


def guestImage() -> tuple[str, str]:
    """
    The (kernel, initrd) paths of the built guest, or raise L{SkipTest}
    saying why the guest can't be run.
    """
    qemuBinary()
    d = cacheDir()
    kernel = os.path.join(d, "vmlinuz")
    initrd = os.path.join(d, "initrd.img")
    missing = [p for p in (kernel, initrd) if not os.path.isfile(p)]
    if missing:
        raise SkipTest(f"guest image not built (missing {', '.join(missing)}); run: {BUILD_COMMAND}")
    return kernel, initrd


def kvmUsable() -> bool:
    """
    Whether QEMU can use KVM here: C{/dev/kvm} opens read-write and the CPU
    exposes hardware virtualization (C{vmx} or C{svm} in C{/proc/cpuinfo}).

    The flag check matters: some sandboxes (e.g. Firecracker VMs with the
    C{kvm_pvm} module) offer a working C{/dev/kvm} that can only run
    PVM-enabled guest kernels; a stock kernel hangs there silently.
    Set C{SERIALGW_QEMU_ACCEL} to C{kvm} or C{tcg} to override.
    """
    forced = os.environ.get("SERIALGW_QEMU_ACCEL")
    if forced:
        return forced == "kvm"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        pass
    return False


def qemuCommand(serial: str) -> list[str]:
    """
    The full argv to boot the guest with its ttyS0 attached to the QEMU
    character device C{serial} (e.g. C{"pty"},
    C{"telnet:127.0.0.1:5555,server,nowait"}).  Uses KVM when usable,
    else TCG.  Raises L{SkipTest} if QEMU or the image is missing.
    """
    kernel, initrd = guestImage()
    return [
        qemuBinary(),
        "-M", "pc",
        "-accel", "kvm" if kvmUsable() else "tcg",
        "-m", "256",
        "-nodefaults",
        "-no-reboot",
        "-display", "none",
        "-monitor", "none",
        "-serial", serial,
        "-kernel", kernel,
        "-initrd", initrd,
        "-append", KERNEL_CMDLINE,
    ]  # fmt: skip


# --- waiting on output, without sleeps ------------------------------------


class ExpectTimeout(AssertionError):
    """
    Awaited output did not come in time.
    """


class Output:
    """
    Bytes arriving over time, read forward like expect(1): L{expect} fires
    with the first match of a pattern after what earlier matches consumed.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.data = b""
        self.pos = 0
        self.ended: Optional[str] = None
        self._waiter: Optional[tuple[re.Pattern[bytes], defer.Deferred[re.Match[bytes]], Any]] = None

    def _tail(self) -> bytes:
        return self.data[-2000:]

    def add(self, data: bytes) -> None:
        self.data += data
        self._check()

    def end(self, why: str) -> None:
        """
        No more data will come; a pending L{expect} fails at once.
        """
        self.ended = why
        self._check()

    def skip(self) -> None:
        """
        Consider everything received so far as read.
        """
        self.pos = len(self.data)

    def expect(self, pattern: Union[bytes, re.Pattern[bytes]], timeout: float) -> defer.Deferred[re.Match[bytes]]:
        """
        Fire with the first match of C{pattern} (a regex, or literal bytes)
        in the unread data, marking it read through the match; fail with
        L{ExpectTimeout} after C{timeout} seconds or when the stream ends.
        """
        if self._waiter is not None:
            raise RuntimeError(f"{self.name}: already waiting for {self._waiter[0].pattern!r}")
        if isinstance(pattern, bytes):
            pattern = re.compile(re.escape(pattern))
        d: defer.Deferred[re.Match[bytes]] = defer.Deferred()
        call = reactor.callLater(timeout, self._timedOut, timeout)  # type: ignore[attr-defined]
        self._waiter = (pattern, d, call)
        self._check()
        return d

    def _finish(self) -> tuple[re.Pattern[bytes], defer.Deferred[re.Match[bytes]]]:
        assert self._waiter is not None
        pattern, d, call = self._waiter
        self._waiter = None
        if call.active():
            call.cancel()
        return pattern, d

    def _timedOut(self, timeout: float) -> None:
        pattern, d = self._finish()
        d.errback(
            ExpectTimeout(
                f"{self.name}: no {pattern.pattern!r} within {timeout}s; "
                f"unread: {self.data[self.pos :][-2000:]!r}; last output: {self._tail()!r}"
            )
        )

    def _check(self) -> None:
        if self._waiter is None:
            return
        match = self._waiter[0].search(self.data, self.pos)
        if match is not None:
            self.pos = match.end()
            self._finish()[1].callback(match)
        elif self.ended is not None:
            pattern, d = self._finish()
            d.errback(
                ExpectTimeout(
                    f"{self.name} ended ({self.ended}) before {pattern.pattern!r}; last output: {self._tail()!r}"
                )
            )


class WatchedProcess(protocol.ProcessProtocol):
    """
    A child process whose stdout and stderr go together into L{output}.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.output = Output(name)
        self.reason: Optional[Any] = None
        self._ended: list[defer.Deferred[None]] = []

    def outReceived(self, data: bytes) -> None:
        self.output.add(data)

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.reason = reason
        self.output.end(str(reason.value))
        waiters, self._ended = self._ended, []
        for d in waiters:
            d.callback(None)

    def whenEnded(self) -> defer.Deferred[None]:
        if self.reason is not None:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._ended.append(d)
        return d

    def stop(self, grace: float = 10.0) -> defer.Deferred[None]:
        """
        SIGTERM, then SIGKILL after C{grace} seconds; fires when it has ended.
        """
        if self.reason is not None:
            return defer.succeed(None)

        def signal(name: str) -> None:
            try:
                self.transport.signalProcess(name)  # type: ignore[union-attr]
            except ProcessExitedAlready:
                pass

        signal("TERM")
        kill = reactor.callLater(grace, signal, "KILL")  # type: ignore[attr-defined]
        d = self.whenEnded()

        def cancel(result: Any) -> Any:
            if kill.active():
                kill.cancel()
            return result

        return d.addBoth(cancel)

    def exitedCleanly(self) -> bool:
        return self.reason is not None and isinstance(self.reason.value, ProcessDone)


def spawn(testCase: Any, name: str, argv: list[str], **kwargs: Any) -> WatchedProcess:
    """
    Start C{argv} (environment inherited unless C{env} is given) and have
    C{testCase} stop it on cleanup.
    """
    proc = WatchedProcess(name)
    kwargs.setdefault("env", dict(os.environ))
    reactor.spawnProcess(proc, argv[0], argv, **kwargs)  # type: ignore[attr-defined]
    testCase.addCleanup(proc.stop)
    return proc


async def bootOnPty(testCase: Any, timeout: float = 30.0) -> tuple[WatchedProcess, str]:
    """
    Start the guest with its ttyS0 on a new pty; return QEMU's process and
    the pty's slave path (e.g. C{/dev/pts/3}) once QEMU has printed it.
    QEMU drops console output while no one has the pty open, so readers
    should poke the shell (send C{\\r}) rather than wait for the banner.
    """
    qemu = spawn(testCase, "qemu", qemuCommand("pty"))
    match = await qemu.output.expect(PTY_LINE, timeout)
    return qemu, match.group(1).decode()


async def pokeUntil(
    send: Any, output: Output, pattern: Union[bytes, re.Pattern[bytes]], timeout: float, every: float = 3.0
) -> re.Match[bytes]:
    """
    Send C{\\r} with C{send} every C{every} seconds until C{pattern} shows
    in C{output} (e.g. a shell prompt); give up after C{timeout} seconds.
    """
    waited = 0.0
    while True:
        send(b"\r")
        try:
            return await output.expect(pattern, min(every, timeout - waited))
        except ExpectTimeout:
            waited += every
            if output.ended is not None or waited >= timeout:
                raise


# --- telnet -------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240


class TelnetStripper:
    """
    Decode the data of a telnet stream, dropping commands and negotiation
    (IAC ..., IAC SB ... IAC SE), undoing IAC IAC and NVT's CR NUL; keeps
    state across chunks.
    """

    def __init__(self) -> None:
        self._state = "data"

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        state = self._state
        for b in data:
            if state == "data":
                if b == IAC:
                    state = "iac"
                else:
                    out.append(b)
                    if b == 13:
                        state = "cr"
            elif state == "cr":
                state = "data"
                if b == IAC:
                    state = "iac"
                elif b != 0:
                    out.append(b)
                    if b == 13:
                        state = "cr"
            elif state == "iac":
                if b == IAC:
                    out.append(IAC)
                    state = "data"
                elif b in (WILL, WONT, DO, DONT):
                    state = "option"
                elif b == SB:
                    state = "sb"
                else:
                    state = "data"
            elif state == "option":
                state = "data"
            elif state == "sb":
                if b == IAC:
                    state = "sb-iac"
            elif state == "sb-iac":
                state = "data" if b == SE else "sb"
        self._state = state
        return bytes(out)


class TelnetClient(protocol.Protocol):
    """
    A TCP client of a telnet server that answers no negotiation and keeps
    the decoded data in L{output}.
    """

    def __init__(self, name: str = "telnet") -> None:
        self.output = Output(name)
        self._stripper = TelnetStripper()
        self.lost = False
        self._closed: list[defer.Deferred[None]] = []

    def dataReceived(self, data: bytes) -> None:
        self.output.add(self._stripper.feed(data))

    def connectionLost(self, reason: Any = None) -> None:
        self.output.end(f"connection lost: {reason.value if reason else None}")
        self.lost = True
        waiters, self._closed = self._closed, []
        for d in waiters:
            d.callback(None)

    def send(self, data: bytes) -> None:
        self.transport.write(data.replace(b"\xff", b"\xff\xff"))  # type: ignore[union-attr]

    def close(self) -> defer.Deferred[None]:
        """
        Close the connection; fires when it is closed.
        """
        if self.lost:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._closed.append(d)
        self.transport.loseConnection()  # type: ignore[union-attr]
        return d
