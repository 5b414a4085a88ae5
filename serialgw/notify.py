"""
systemd's notify protocol (sd_notify): READY=1 and STATUS= on the socket
named by $NOTIFY_SOCKET, if any.  No dependency: one datagram.
"""

from __future__ import annotations

import os
import socket

from twisted.logger import Logger

log = Logger()


def notify(message: str) -> bool:
    """Send C{message} to systemd; False when not run by systemd (or it fails)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as e:
        log.warn("cannot notify systemd at {address}: {reason}", address=address, reason=e.strerror)
        return False
