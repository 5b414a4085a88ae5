"""
How a device's failures are told: the errors opening a local device
raises (L{DeviceError}, L{DeviceLocked}: the reopener and the start tell
the two apart), and the words for people of an OS, termios or pyserial
error (L{errorReason}, L{whyNotOpened}).

Apart from the ports themselves because every part of the serial side
words its errors so (the device's writes and breaks, the reopener), and
none of those needs a port to do it.
"""

from __future__ import annotations

import errno
import os
import stat
import termios

import serial

from serialgw.devices.access import accessHint


class DeviceError(Exception):
    """
    A device could not be opened or set up; the message names it.
    """


class DeviceLocked(DeviceError):
    """
    A live process holds the device's UUCP lock (C{pid}; 0: a lock being
    written, its maker not known yet): the line waits.
    """

    def __init__(self, message: str, pid: int) -> None:
        DeviceError.__init__(self, message)
        self.pid = pid


_NOT_DEVICES = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                (stat.S_ISSOCK, "a unix socket"), (stat.S_ISBLK, "a block device"))


def whyNotOpened(path: str, e: BaseException) -> str:
    """
    Why a tty did not open, for people: what the path is when it is no
    character device at all, "not a tty" for one that is not (/dev/null),
    where pyserial says "Could not configure port: (25, '...')".
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    for test, what in _NOT_DEVICES:
        if mode and test(mode):
            return f"it is {what}, not a serial device"
    reason = errorReason(e)
    if os.strerror(errno.ENOTTY) in reason:
        return f"it is not a tty ({os.strerror(errno.ENOTTY)})"
    if reason == os.strerror(errno.EACCES):
        return reason + accessHint(path)
    if reason == os.strerror(errno.ENOENT) and os.path.dirname(path) != DEV:
        # ttyS0 for /dev/ttyS0 (Taylor cu takes it so), read as a path from where the gateway started.
        meant = os.path.join(DEV, os.path.basename(path))
        if os.path.exists(meant):
            return (f"{reason} (did you mean {meant}? a relative device path is read from the directory the gateway "
                    "started in, or the configuration file's)")
    return reason


# Where device nodes are (tests put their own).
DEV = "/dev"


def errorReason(e: BaseException) -> str:
    """What an error from termios, pyserial or the OS says, for people (C{No such file or directory})."""
    if isinstance(e, termios.error) and len(e.args) == 2:
        return str(e.args[1])
    if isinstance(e, serial.SerialException) and isinstance(e.errno, int):
        return os.strerror(e.errno)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e)
    # pyserial: "[Errno 2] could not open port /dev/x: [Errno 2] No such file..."
    if "] " in text:
        text = text.rsplit("] ", 1)[-1]
    return text
