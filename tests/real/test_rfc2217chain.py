"""
One serialgw's C{rfc2217://} device on another serialgw: what the far
gateway says to people (its notices) is not its device's output.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.realio import listenerPort, startedPty, startGateway, testLockDir, until


class ChainTests(TestCase):
    timeout = 60

    async def test_downNoticeNotDeviceOutput(self) -> None:
        """
        serialgw B's rfc2217:// device is serialgw A, whose device is not
        there yet: A's notice that it is down is no output of B's device
        (B's file: listener took A's '[serialgw: a is down ...]' in as
        console output); once A's device appears, its output is all B has.
        """
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        link = os.path.join(directory, "dev")
        a = startGateway(self, LineConfig("a", DeviceSpec("tty", link),
                                          listeners=(ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),),
                                          lockDir=testLockDir()),
                         waitForDevices=True)
        output = os.path.join(directory, "b.out")
        b = startGateway(self, LineConfig("b", DeviceSpec("rfc2217", host="127.0.0.1", port=listenerPort(a)),
                                          listeners=(ListenerSpec(f"file:{output}", Protocol.RAW, kind=ListenerKind.FILE,
                                                                  path=output),)))
        line = a.lines["a"]
        # B's link is on A's line and has taken COM-PORT-OPTION.
        await until(self, lambda: any(client.comPort is not None for client in line.clients),
                    "B's link on A's line to have taken COM-PORT-OPTION")
        far = startedPty(self)
        os.symlink(far.slaveName, link)
        await until(self, lambda: line.up, "line a to be up on the pty behind the link")
        far.write(b"fence\r\n")

        def fenced() -> bool:
            try:
                with open(output, "rb") as f:
                    return f.read().endswith(b"fence\r\n")
            except FileNotFoundError:
                return False

        await until(self, fenced, f"{output} to end with b'fence\\r\\n'")
        with open(output, "rb") as f:
            self.assertEqual(f.read(), b"fence\r\n")
        self.assertTrue(b.lines["b"].up)
