"""
An RFC 2217 SET-BAUDRATE behind bytes still on their way to a real tty (a
pty pair whose far end is not read yet): the rate changes only once those
bytes have reached the device, as tcsetattr's TCSADRAIN orders it, and
the gateway answers at once meanwhile.
"""

from __future__ import annotations

import os
import termios
import tty

from twisted.trial.unittest import TestCase

from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnetcodes import IAC, WILL
from tests.realio import PtyPair, closeClients, connect, listenerPort, startGateway, testLockDir, until
from tests.telnetpeer import sb


def ptyHolds() -> int:
    """
    How much a raw pty's slave takes before a write would block, nobody
    reading its master: 15-18 KiB on the kernels seen here, more on others
    (the tty's buffers are the kernel's choice).
    """
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        os.set_blocking(slave, False)
        held = 0
        try:
            while True:
                held += os.write(slave, b"x" * 1024)
        except BlockingIOError:
            return held
    finally:
        os.close(slave)
        os.close(master)


# Past what a pty holds, by 24 KiB: short of what stops the line reading its
# writer (the gateway's queue past its high-water mark, 64 KiB): the rest waits
# in the gateway's queue, and the command after it is read (checked before it
# is sent).
MORE = 24 * 1024


class RetimeOnPtyTests(TestCase):
    timeout = 60

    async def test_rateChangeAfterTheBytesBeforeIt(self) -> None:
        """24 KiB more than the pty holds typed, then SET-BAUDRATE 9600 (answered at once): the pty stays at 115200 until all that has been read from it, then is at 9600."""
        TYPED = b"x" * (ptyHolds() + MORE)
        pty = PtyPair()
        self.addCleanup(pty.close)
        config = LineConfig("t", DeviceSpec("tty", pty.slaveName), settings=SerialSettings(115200),
                            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),),
                            lockDir=testLockDir())
        service = startGateway(self, config)
        client = await connect(listenerPort(service))
        device = service.lines["t"].device
        client.transport.write(bytes([IAC, WILL, COM_PORT_OPTION]) + TYPED)  # type: ignore[union-attr]
        await until(self, lambda: device.bytesWritten + len(device._out) == len(TYPED),  # type: ignore[attr-defined]
                    "all the typing taken by the gateway")
        self.assertGreater(len(device._out), 0)  # type: ignore[attr-defined]
        client.transport.write(sb(1, *(9600).to_bytes(4, "big")))  # type: ignore[union-attr]
        await client.received.contains(sb(101, *(9600).to_bytes(4, "big")))

        def speed() -> int:
            return int(termios.tcgetattr(pty.master)[5])

        # Answered; the bytes before it not all read from the pty yet (nobody reads it): the old rate.
        self.assertEqual(speed(), termios.B115200)
        pty.startReading()
        self.assertEqual(await pty.received.length(len(TYPED)), TYPED)
        await until(self, lambda: speed() == termios.B9600, "the pty at 9600")
        await closeClients(client)
