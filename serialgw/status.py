"""
The status endpoint (C{--status}): HTTP GET of C{/} answers JSON with every
line, its device and settings, its clients (address, role, protocol) and
its counters.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource

from serialgw import __version__


def lineStatus(line: Any) -> dict[str, Any]:
    device = line.device
    settings = line.settings
    return {
        "name": line.name,
        "device": getattr(getattr(device, "port", None), "name", None) or getattr(device, "name", ""),
        "up": bool(getattr(device, "up", True)),
        "down_reason": getattr(device, "downReason", None),
        "settings": {
            "baudrate": settings.baudrate,
            "bytesize": settings.bytesize,
            "parity": settings.parity,
            "stopbits": settings.stopbits,
            "xonxoff": settings.xonxoff,
            "rtscts": settings.rtscts,
            "text": settings.describe(),
        },
        "modem_lines": dict(line.modemLines),
        "clients": [
            {
                "peer": client.peer,
                "role": client.role.value,
                "protocol": type(client).__name__.replace("Client", "").lower(),
                "rfc2217": getattr(client, "comPort", None) is not None,
                "dropped": getattr(getattr(client, "guard", None), "dropped", 0),
            }
            for client in line.clients
        ],
        "bytes_to_device": line.bytesToDevice,
        "bytes_from_device": line.bytesFromDevice,
        "breaks": getattr(device, "breaks", 0),
        "dropped_while_down": getattr(device, "dropped", 0),
        "refused_bytes": line.refused,
    }


class StatusResource(Resource):
    isLeaf = True

    def __init__(self, service: Any) -> None:
        Resource.__init__(self)
        self.service = service

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        body = {
            "serialgw": __version__,
            "lines": [lineStatus(line) for line in self.service.lines.values()],
        }
        return json.dumps(body, indent=2).encode() + b"\n"
