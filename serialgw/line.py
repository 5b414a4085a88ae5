"""
One serial line and the clients attached to it.

The line is the hub of the data path: device output goes to every client,
each of which encodes it for its own wire; client input and commands go to
the device if the client's role allows.  The line knows its device only
through the device's methods and its clients only through L{IClient}.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from serialgw.device import IDeviceSink

log = Logger()


class Role(Enum):
    """
    What a client may do on its line.

      - C{WRITER}: send data, breaks and settings;
      - C{WATCHER}: read only for now, may become a writer (take-over);
      - C{READONLY}: read only, always.
    """

    WRITER = "writer"
    WATCHER = "watcher"
    READONLY = "read-only"


class IClient(Interface):
    """
    One network client as its line sees it.
    """

    peer = Attribute("The client's address, for messages.")
    role = Attribute("The client's L{Role}.")

    def deliver(data: bytes) -> None:
        """Send device output to the client, encoded for its wire."""

    def pauseInput() -> None:
        """Stop reading from the client (the device is behind)."""

    def resumeInput() -> None:
        """Read from the client again."""


class IDevice(Interface):
    """
    What a line needs of its device.
    """

    def write(data: bytes) -> None:
        """Queue bytes for the device."""

    def sendBreak(duration: Optional[float] = None) -> bool:
        """Send a break after queued output; C{False} if one is under way."""


@implementer(IDeviceSink)
class Line:
    """
    A serial line shared by any number of clients.
    """

    def __init__(self, name: str, device: Any) -> None:
        self.name = name
        self.device = device
        self.clients: list[Any] = []
        self.writable = True
        self.bytesToDevice = 0
        self.bytesFromDevice = 0
        self.refused = 0

    # Clients

    def attach(self, client: Any) -> None:
        self.clients.append(client)
        if not self.writable and self._mayWrite(client):
            client.pauseInput()
        log.info(
            "{line}: {peer} attached as {role} ({count} client(s))",
            line=self.name,
            peer=client.peer,
            role=client.role.value,
            count=len(self.clients),
        )

    def detach(self, client: Any) -> None:
        if client in self.clients:
            self.clients.remove(client)
            log.info(
                "{line}: {peer} detached ({count} client(s))",
                line=self.name,
                peer=client.peer,
                count=len(self.clients),
            )

    def _mayWrite(self, client: Any) -> bool:
        return bool(client.role is Role.WRITER)

    def clientData(self, client: Any, data: bytes) -> None:
        """Data from a client, for the device."""
        if not self._mayWrite(client):
            self.refused += len(data)
            return
        self.bytesToDevice += len(data)
        self.device.write(data)

    def clientBreak(self, client: Any, duration: Optional[float] = None) -> bool:
        """A client asks for a break; C{True} if one was started."""
        if not self._mayWrite(client):
            log.info("{line}: break from {peer} refused: {role}", line=self.name, peer=client.peer, role=client.role.value)
            return False
        started = bool(self.device.sendBreak(duration))
        if started:
            log.info("{line}: BREAK from {peer}", line=self.name, peer=client.peer)
        else:
            log.info("{line}: BREAK from {peer} ignored: a break is under way", line=self.name, peer=client.peer)
        return started

    # IDeviceSink

    def deviceDataReceived(self, data: bytes) -> None:
        self.bytesFromDevice += len(data)
        for client in self.clients:
            client.deliver(data)

    def deviceWritable(self, writable: bool) -> None:
        self.writable = writable
        for client in self.clients:
            if self._mayWrite(client):
                if writable:
                    client.resumeInput()
                else:
                    client.pauseInput()

    def deviceLost(self, reason: Failure) -> None:
        log.error("{line}: device lost; clients stay connected", line=self.name)



def describeAddress(address: Any) -> str:
    """
    An address for messages: C{127.0.0.1:5000}, C{[::1]:5000}, C{unix:/path}.
    """
    host: Optional[str] = getattr(address, "host", None)
    port: Optional[int] = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return f"unix:{name}" if name is not None else str(address)


def peerName(transport: Any) -> str:
    """A transport's peer, for messages."""
    try:
        return describeAddress(transport.getPeer())
    except Exception:
        return "?"
