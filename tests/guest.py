"""
A real Linux guest for integration tests: QEMU running Debian's cloud kernel
with a busybox initramfs whose interactive shell sits on the first serial port.

Build the image once with ``bash tests/guest/build.sh``; it is cached outside
the repository (see L{cacheDir}).  The guest prints L{READY_MARKER} when its
init starts and then shows the prompt L{PROMPT} on ttyS0.
"""

import os
import shutil

from twisted.trial.unittest import SkipTest

BUILD_COMMAND = "bash tests/guest/build.sh"
READY_MARKER = b"SERIALGW-GUEST-READY"
PROMPT = b"guest# "
KERNEL_CMDLINE = "console=ttyS0 sysrq_always_enabled=1 quiet panic=-1"
QEMU = "qemu-system-x86_64"


def cacheDir() -> str:
    """
    The guest image directory, as used by C{tests/guest/build.sh}:
    C{${SERIALGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serialgw}/guest}.
    """
    base = os.environ.get("SERIALGW_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache"
        )
        base = os.path.join(xdg, "serialgw")
    return os.path.join(base, "guest")


def qemuBinary() -> str:
    """
    The path of C{qemu-system-x86_64}, or raise L{SkipTest}.
    """
    path = shutil.which(QEMU)
    if path is None:
        raise SkipTest(
            f"{QEMU} not found on PATH (Debian: apt-get install qemu-system-x86)"
        )
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
        raise SkipTest(
            f"guest image not built (missing {', '.join(missing)}); "
            f"run: {BUILD_COMMAND}"
        )
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
