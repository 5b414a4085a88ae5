"""
A local tty opened on demand (a line's C{on-demand = true}: conserver's
C{options ondemand}, ser2net's own way): its line has it open only while
a client wants it, so that another program (cu, minicom, a flasher) may
open the port meanwhile.

L{RestAndWake.rest} closes it until it is wanted again: what a mover moved
(its output read before) is delivered first; what is still queued for it
is dropped and counted (its line waits for what it can take first: see
L{serialgw.line.ondemand}); its descriptor and UUCP lock are let go; it is
down, C{downReason} L{RESTING}, and no reopen follows.  L{RestAndWake.wake}
opens it again as a first open is (off the reactor thread, what is typed
meanwhile held: see L{serialgw.devices.early}); an open that fails is told
to its line and tried again with backoff while it is wanted.  An open
still under way when it is rested is let run and what it opens closed at
once; woken again meanwhile, that open is the wake's: never two.

L{RestAndWake} is a part of L{serialgw.devices.device.SerialDevice}, kept
apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from serialgw.devices.reopen import OPENING, Reopener
from serialgw.interfaces import RESTING


class RestAndWake:
    """The on-demand closes and opens of a L{serialgw.devices.device.SerialDevice} (see the module)."""

    # The device's, which this part works on.
    name: str
    port: Any
    reopener: Reopener
    up: bool
    closed: bool
    downReason: Optional[str]
    lockedBy: Optional[int]
    dropped: int
    unsent: int
    # Whether it is closed until a client wants it (see rest).
    resting = False

    if TYPE_CHECKING:
        # (The device's other parts': declared for mypy alone, as a stub at run time would shadow the real one in
        # SerialDevice's MRO, and naming SerialDevice would be an import cycle; tests.test_layers.PartStubTests.)
        def _movedBeforeLoss(self) -> bool: ...
        def _settleSettings(self) -> None: ...
        def _shutdownPort(self) -> None: ...
        def _purgeBeforeClosing(self) -> None: ...
        def _dropEarly(self) -> None: ...

    def rest(self) -> None:
        """
        Closed until L{wake}: down (C{downReason} L{RESTING}), its
        descriptor and lock let go, no reopening; what a mover moved is
        delivered first, what is queued dropped (counted unsent).
        """
        if self.closed or self.resting:
            return
        if self.up:
            self._movedBeforeLoss()
            if self.closed or self.resting:
                return  # (closed, or rested, by what the delivery set off; lost by it: rested below)
        self.reopener.stop()
        if self.up:
            self._purgeBeforeClosing()
            self._settleSettings()
            self.up = False
            self._shutdownPort()
        self._dropEarly()
        # (lockedBy kept: None if it was open; else the holder its last open found, said once while it stays, not
        # once a client: one connecting in a loop while another program held the lock logged a line each time.)
        self.resting, self.downReason = True, RESTING

    def wake(self) -> None:
        """
        Wanted again after L{rest}: opened now as a first open is (see
        L{Reopener.wanted}): up when the open returns; one that fails is
        told to its line (C{deviceNotOpened}) and tried again with backoff.
        """
        if self.closed or not self.resting:
            return
        self.resting, self.downReason = False, OPENING
        assert self.reopener.opener is not None
        self.reopener.wanted(self.reopener.opener)
