"""
pyserial as a L{serialgw.devices.ports.TtyPort} uses it: our settings
(config's parity letters and stop-bit numbers) as pyserial's fields and
constants, what the kernel has in effect read back through termios, and
the pyserial port class that keeps the input waiting at its open and
honours another program's TIOCEXCL.

Apart from the port because it is the one place pyserial's names and
quirks are known: the port only reads, writes and asks for settings.
"""

from __future__ import annotations

import errno
import termios
from typing import Any

import serial

from serialgw.config.specs import SerialSettings
from serialgw.devices.ptyslave import heldExclusively
from serialgw.devices.termio import readTermios

# The fields a port sets, in the order it sets them.
FIELDS = ("baudrate", "bytesize", "parity", "stopbits", "xonxoff", "rtscts")

# What pyserial raises when a device refuses a setting.
SETTING_ERRORS = (serial.SerialException, OSError, ValueError, OverflowError, termios.error)


# Our parities and stop bits (config's letters and numbers) as pyserial's constants.
_PYSERIAL_PARITIES = {
    "N": serial.PARITY_NONE,
    "E": serial.PARITY_EVEN,
    "O": serial.PARITY_ODD,
    "M": serial.PARITY_MARK,
    "S": serial.PARITY_SPACE,
}
_PYSERIAL_STOPBITS = {1: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2: serial.STOPBITS_TWO}


def pyserialValues(settings: SerialSettings) -> dict[str, Any]:
    """Settings as pyserial's fields (in FIELDS order) and values."""
    return {
        "baudrate": settings.baudrate,
        "bytesize": settings.bytesize,
        "parity": _PYSERIAL_PARITIES[settings.parity],
        "stopbits": _PYSERIAL_STOPBITS[settings.stopbits],
        "xonxoff": settings.xonxoff,
        "rtscts": settings.rtscts,
    }


def pyserialCurrent(ser: serial.Serial) -> dict[str, Any]:
    """What a pyserial port has now, as L{pyserialValues} gives it."""
    return {"baudrate": ser.baudrate, "bytesize": ser.bytesize, "parity": ser.parity, "stopbits": ser.stopbits,
            "xonxoff": ser.xonxoff, "rtscts": ser.rtscts}


def configure(ser: serial.Serial, settings: SerialSettings) -> None:
    """Set every field on a closed pyserial port (open() applies them)."""
    for field, value in pyserialValues(settings).items():
        setattr(ser, field, value)


def readBack(ser: serial.Serial) -> SerialSettings:
    """
    The settings in effect, as the kernel has them (termios), not as
    pyserial remembers them; a speed termios cannot name (BOTHER) is
    pyserial's.
    """
    return readTermios(ser.fd, int(ser.baudrate), ser.stopbits == 1.5)


class KeepInputSerial(serial.Serial):
    """
    pyserial's port without the input flush (TCIFLUSH) its open() ends
    with: what the device sent before we opened it (a guest's boot
    messages, what came between an unplug and the reopen) is read like any
    other output.  Purges go through termios directly (L{serialgw.devices.ports.TtyPort.purge}).
    """

    def _reset_input_buffer(self) -> None:
        pass

    # Whether another program's TIOCEXCL keeps us out (as the kernel keeps out all but root).
    honoursExclusive = False

    def _reconfigure_port(self, force_update: bool = False) -> None:
        # At open (force_update), before anything is set.
        if force_update and self.honoursExclusive and heldExclusively(self.fd, self.port):
            raise serial.SerialException(errno.EBUSY, "held exclusively")
        super()._reconfigure_port(force_update)
