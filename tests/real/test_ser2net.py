"""
The gateway's C{rfc2217://} device against a real RFC 2217 server,
ser2net 4 (a C{telnet(rfc2217)} accepter on port 0, a pty pair as its
port): settings reach the pty's termios, every byte value passes both ways
(IAC doubled on both hops), and a client's changes go back when it leaves.
Skipped where ser2net is not installed.
"""

from __future__ import annotations

import os
import termios

import serial
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from tests.realio import closeClients, connect, listenerPort, need, startedPty, startGateway, startProcess, until

ALL = bytes(range(256))


def listeningPorts(pid: int) -> set[int]:
    """The TCP ports (IPv4) process C{pid} listens on, from /proc."""
    inodes = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].split(":")[1], 16))
    return ports


class Ser2netTests(TestCase):
    timeout = 60

    async def test_gatewayDrivesSer2net(self) -> None:
        """
        A line at 57600 8N2 on ser2net: its pty is set so once the gateway
        is connected; 1024 bytes of every value pass both ways; a pyserial
        client's 9600 with XON/XOFF reaches the pty and, when it leaves,
        57600 8N2 without XON/XOFF come back.
        """
        ser2net = need("ser2net")
        pty = startedPty(self)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        conf = os.path.join(directory, "ser2net.yaml")
        with open(conf, "w") as f:
            f.write("connection: &gw\n  accepter: telnet(rfc2217),tcp,127.0.0.1,0\n"
                    f"  connector: serialdev,{pty.slaveName},115200n81,local\n")
        proc = startProcess(self, [ser2net, "-n", "-d", "-c", conf, "-P", os.path.join(directory, "pid")])
        pid = proc.transport.pid  # type: ignore[union-attr]
        await until(self, lambda: listeningPorts(pid), f"ser2net (pid {pid}) to listen")
        (port,) = listeningPorts(pid)
        config = LineConfig("t", DeviceSpec("rfc2217", host="127.0.0.1", port=port),
                            settings=SerialSettings(57600, stopbits=2),
                            listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.RAW),
                                       ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET)))
        service = startGateway(self, config)

        def termiosNow() -> tuple[int, bool, bool]:
            attributes = termios.tcgetattr(pty.master)
            return attributes[5], bool(attributes[2] & termios.CSTOPB), bool(attributes[0] & termios.IXON)

        await until(self, lambda: termiosNow() == (termios.B57600, True, False), "57600 baud, CRTSCTS, no IXON on the pty")

        client = await connect(listenerPort(service, 0))
        client.transport.write(ALL * 4)  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(1024), ALL * 4)
        pty.write(ALL * 4)
        self.assertEqual(await client.received.length(1024), ALL * 4)
        await closeClients(client)

        url = f"rfc2217://127.0.0.1:{listenerPort(service, 1)}"

        pyserial = await deferToThread(serial.serial_for_url, url, baudrate=9600, xonxoff=True, timeout=5)
        try:
            await until(self, lambda: termiosNow() == (termios.B9600, False, True), "9600 baud, IXON, no CRTSCTS on the pty")
        finally:
            await deferToThread(pyserial.close)
        await until(self, lambda: termiosNow() == (termios.B57600, True, False), "57600 baud, CRTSCTS, no IXON on the pty")
