"""
Who hears the line's notices (someone attached, detached, took write; the
device down and back): people at terminals by default, and as a
listener's C{notices} / C{no-notices} says; the escape menu's own answers
go to whoever typed the command, whatever the listener says of notices.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnetcodes import IAC, WILL
from tests.fakes import RecordingDevice
from tests.telnetpeer import AGREE, WONT_COM_PORT

DOWN = b"\r\n[serialgw: rack4 is down: hung up; waiting for it]\r\n"
BACK = b"\r\n[serialgw: rack4 is back]\r\n"


class Notices:
    """A line and its clients over StringTransports."""

    def __init__(self) -> None:
        self.device = RecordingDevice(SerialSettings(115200))
        self.line = Line("rack4", self.device, clock=Clock())

    def raw(self, listener: str, port: int) -> tuple[RawClient, StringTransport]:
        client = RawClient(self.line, listener=parseListener(listener))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", port))
        client.makeConnection(transport)
        client.dataReceived(b"")  # (said something: announced)
        client.introduce()
        transport.clear()
        return client, transport

    def telnet(self, listener: str, port: int, agree: bytes = AGREE + WONT_COM_PORT) -> tuple[TelnetClient, StringTransport]:
        spec = parseListener(listener)
        client = TelnetClient(self.line, Role.READONLY if spec.readOnly else Role.WRITER, listener=spec)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", port))
        client.makeConnection(transport)
        client.dataReceived(agree)
        transport.clear()
        return client, transport

    def someoneComes(self, port: int = 99) -> None:
        other, _ = self.telnet("telnet+4444", port)
        other.dataReceived(b"x")

    def unplugAndReplug(self) -> None:
        self.line.deviceLost(Failure(OSError("hung up")))
        self.line.deviceUp()


class RawNoticesTests(SynchronousTestCase):
    def test_rawNoticesHearTheDevice(self) -> None:
        """A raw client whose listener says notices hears the device go and come back, as a telnet user does."""
        n = Notices()
        client, transport = n.raw("raw,notices+4446", 1)
        n.unplugAndReplug()
        self.assertEqual(transport.value(), DOWN + BACK)

    def test_rawNoticesHearTheDownAtConnect(self) -> None:
        """A raw client with notices that connects while the device is down is told so at once."""
        n = Notices()
        n.line.deviceLost(Failure(OSError("hung up")))
        n.device.up, n.device.downReason = False, "hung up"
        client = RawClient(n.line, listener=parseListener("raw,notices+4446"))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1))
        client.makeConnection(transport)
        self.assertEqual(transport.value(), DOWN)

    def test_plainRawHearsNothing(self) -> None:
        """A raw client without notices (the default) gets only device data: no arrivals, no down and up."""
        n = Notices()
        client, transport = n.raw("raw+4446", 1)
        n.someoneComes()
        n.unplugAndReplug()
        n.line.deviceDataReceived(b"data")
        self.assertEqual(transport.value(), b"data")


class NoNoticesWithMenuTests(SynchronousTestCase):
    def test_noNoticesSilencesArrivalsWithAMenu(self) -> None:
        """no-notices on a listener with an escape menu: no arrivals, no down and up; the menu still answers (w)."""
        for listener, make in (("raw,escape=^],no-notices+4446", Notices.raw),
                               ("telnet,escape=^],no-notices+4444", Notices.telnet)):
            n = Notices()
            client, transport = make(n, listener, 1)
            n.someoneComes()
            n.unplugAndReplug()
            self.assertEqual(transport.value(), b"", listener)
            client.dataReceived(b"\x1dw")
            self.assertEqual(transport.value(), b"\r\n[serialgw: rack4: 192.0.2.9:1 (writer), 192.0.2.9:99 (writer)]\r\n",
                             listener)

    def test_menuWithoutNoticesKeyHearsArrivals(self) -> None:
        """A raw client with an escape menu (a person at a terminal) hears arrivals and the device by default, as before."""
        n = Notices()
        client, transport = n.raw("raw,escape=^]+4446", 1)
        n.someoneComes()
        n.unplugAndReplug()
        self.assertEqual(transport.value(), b"\r\n[serialgw: 192.0.2.9:99 attached as writer]\r\n" + DOWN + BACK)

    def test_takerOfWriteIsToldWithNoNotices(self) -> None:
        """^] t and ^] o answer the one who typed them, no-notices or not; the others' no-notices keeps it from them."""
        n = Notices()
        n.line.mode = "exclusive"
        writer, writerT = n.telnet("telnet,escape=^],no-notices+4444", 1)
        watcher, watcherT = n.telnet("telnet,escape=^],no-notices+4444", 2)
        writerT.clear()
        watcher.dataReceived(b"\x1dt")
        self.assertEqual((writer.role, watcher.role), (Role.WATCHER, Role.WRITER))
        self.assertEqual((writerT.value(), watcherT.value()), (b"", b"\r\n[serialgw: 192.0.2.9:2 took write]\r\n"))
        watcherT.clear()
        watcher.dataReceived(b"\x1do")
        self.assertEqual((writerT.value(), watcherT.value()), (b"", b"\r\n[serialgw: 192.0.2.9:2 now only watches]\r\n"))


class ComPortWithMenuTests(SynchronousTestCase):
    def test_rfc2217ProgramGetsNoArrivals(self) -> None:
        """An RFC 2217 program on a listener with an escape menu gets no arrivals in its data (data stays data); its menu answers."""
        n = Notices()
        client, transport = n.telnet("telnet,escape=^]+4444", 1, agree=AGREE + bytes((IAC, WILL, COM_PORT_OPTION)))
        self.assertIsNotNone(client.comPort)
        transport.clear()
        n.someoneComes()
        self.assertNotIn(b"attached", transport.value())
        client.dataReceived(b"\x1dw")
        self.assertIn(b"[serialgw: rack4: 192.0.2.9:1 (writer), 192.0.2.9:99 (writer)]", transport.value())
