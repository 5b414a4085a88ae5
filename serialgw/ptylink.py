"""
A pseudo-terminal as a client of a line (remserial C{-l}, QEMU's C{pty}):
a local program opens the slave (through a stable symlink) as if it were
the serial port.  When the program changes the pty's termios (speed, stop
bits, ...), the change goes to the line's device as a settings request, so a
remote RFC 2217 port follows what the program asked for.

Changes are seen with packet mode (TIOCPKT) and EXTPROC on the slave: the
kernel then tells the master side of every termios change.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
import tty
from typing import Any

from twisted.internet import abstract, fdesc
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.device import readTermios, removeSymlink, replaceSymlink
from serialgw.line import ClientEvents, IClient, Line, Role

log = Logger()

EXTPROC = getattr(termios, "EXTPROC", 0o200000)
TIOCPKT = getattr(termios, "TIOCPKT", 0x5420)
TIOCPKT_DATA = 0
TIOCPKT_IOCTL = 0x40
OUTBUF = 256 * 1024


@implementer(IClient)
class PtyClient(ClientEvents, abstract.FileDescriptor):
    """
    The master side of a pty, in the reactor, attached to a line.
    """

    def __init__(self, line: Line, link: str, reactor: Any) -> None:
        abstract.FileDescriptor.__init__(self, reactor)
        self.line = line
        self.role = Role.WRITER
        self.link = link
        master, slave = os.openpty()
        self.slaveName = os.ttyname(slave)
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[3] |= EXTPROC
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            fcntl.ioctl(master, TIOCPKT, struct.pack("i", 1))
            fdesc.setNonBlocking(master)
            if link:
                replaceSymlink(self.slaveName, link)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # Kept open: the program may close and reopen the slave freely.
        self._master, self._slave = master, slave
        self.peer = f"pty:{link or self.slaveName}"
        self.settings = readTermios(slave)
        self.dropped = 0
        self._dropping = False
        # A FileDescriptor writes nothing until it is marked connected.
        self.connected = 1
        self.startReading()
        line.attach(self)

    def fileno(self) -> int:
        return self._master

    def logPrefix(self) -> str:
        return self.peer

    def doRead(self) -> Any:
        try:
            packet = os.read(self._master, 65537)
        except BlockingIOError:
            return None
        except OSError as e:
            if e.errno == errno.EIO:
                return None
            raise
        if not packet:
            return None
        status, data = packet[0], packet[1:]
        if status == TIOCPKT_DATA:
            if data:
                self.line.clientData(self, data)
        elif status & TIOCPKT_IOCTL:
            self._termiosChanged()
        return None

    def _termiosChanged(self) -> None:
        settings = readTermios(self._slave, self.settings.baudrate)
        if settings == self.settings:
            return
        log.info("{line}: the program on {peer} set {settings}", line=self.line.name, peer=self.peer,
                 settings=settings.describe())
        self.settings = settings
        self.line.clientSettings(self, settings)

    def writeSomeData(self, data: bytes) -> Any:
        return fdesc.writeToFD(self._master, data)

    # IClient

    def deliver(self, data: bytes) -> None:
        # While no program reads the slave, keep at most OUTBUF bytes here
        # (beyond what the kernel holds); newer output is dropped and counted.
        if len(self.dataBuffer) + self._tempDataLen + len(data) > OUTBUF:
            if not self._dropping:
                self._dropping = True
                log.info("{line}: nobody reads {peer}; its output is dropped until someone does",
                         line=self.line.name, peer=self.peer)
            self.dropped += len(data)
            return
        self._dropping = False
        self.write(data)


    def pauseInput(self) -> None:
        self.stopReading()

    def resumeInput(self) -> None:
        self.startReading()

    def close(self) -> None:
        self.line.detach(self)
        self.stopReading()
        self.stopWriting()
        removeSymlink(self.link, self.slaveName)
        os.close(self._master)
        os.close(self._slave)
