"""
What every link of a remote device (L{serialgw.devices.remote}) shares: the
device as a link sees it (L{LinkedDevice}), why a link is not read and the
bound on what its console has not taken, links without com port control
(L{NoPortControl}), and the far end as the log limiter's peer.  The links
themselves are L{serialgw.devices.remotelinks} (raw, telnet) and
L{serialgw.devices.comportlink} (RFC 2217).
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.device import HIGH_WATER
from serialgw.logflood import peerLimiter

# The gateway's own errors in handling what a far end says (a traceback:
# a bug its answers reach), limited as those in handling a client's doing
# are (logflood: one budget for them all, OWN_ERRORS, 20 a minute): a far
# end answering the same again and again made one traceback an answer.
# (Its namespace is the links' module's, as before they had a module of their own.)
farEndLog = Logger(namespace="serialgw.devices.remotelinks", observer=peerLimiter)


class LinkedDevice(typing.Protocol):
    """
    What a link uses of its device (L{serialgw.devices.remote.RemoteDevice}):
    declared here, beside the links, since the device imports them (naming
    the device back was an import cycle, hidden under TYPE_CHECKING).
    """

    name: str
    reactor: Any
    spec: DeviceSpec
    settings: SerialSettings
    modemLines: dict[str, bool]
    modem: Optional[int]
    sink: Any

    def _linkUp(self, link: Any) -> None: ...
    def _linkDown(self, link: Any, reason: Failure) -> None: ...
    def _holdLink(self, why: int) -> None: ...
    def _releaseLink(self, why: int) -> None: ...
    def _checkWatermark(self) -> None: ...
    def _remoteSettings(self, **changes: Any) -> None: ...


class Named(typing.Protocol):
    """A device with its name (L{farEnd}'s; the device's dialing part is one: L{serialgw.devices.remotedial})."""

    name: str


def farEnd(device: Named) -> str:
    """A remote device's far end, as the log limiter's peer."""
    return f"{device.name} (its far end)"


# Past this many bytes a console has not taken (our telnet answers to its
# negotiation: typing stops at HIGH_WATER), it is not read until it takes
# them, so one that sends and never reads costs bounded memory.
LINK_LIMIT = 4 * HIGH_WATER
# Why a link is not read (RemoteDevice._held): the line is behind, the
# rest of a busy read waits for the next turn, LINK_LIMIT bytes wait.
HELD_LINE, HELD_BUSY, HELD_FULL = 1, 2, 4


class NoPortControl:
    """Links without com port control: settings, DTR/RTS and purges stay here."""

    # Whether the remote asked us to stop sending (RFC 2217 FLOWCONTROL-SUSPEND).
    suspended = False

    def heldBytes(self) -> int:
        """Typed bytes held back while suspended."""
        return 0

    def control(self, code: int) -> None:
        pass

    def applySettings(self, settings: SerialSettings) -> None:
        pass

    def purge(self, which: int) -> None:
        pass

    def endBreak(self) -> None:
        """A break's time is up (only RFC 2217 has a break that lasts: SET-CONTROL BREAK-ON, then OFF)."""

    def holdInput(self, held: bool) -> None:
        """LINK_LIMIT bytes wait for the console (or no longer): parse nothing more meanwhile."""


def linkHeldBytes(link: Any) -> int:
    """Typed bytes a link holds back (RFC 2217 suspension); any other protocol holds none."""
    return link.heldBytes() if isinstance(link, NoPortControl) else 0
