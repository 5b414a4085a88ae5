"""
Settings changes in order with the output around them: a change (RFC 2217
SET-BAUDRATE and the others, the settings put back when the last RFC 2217
client leaves) asked while output is still on its way to the device (the
device's own write queue, what a break holds, the driver's output queue)
is applied once that output has gone, as tcsetattr's TCSADRAIN orders it,
without blocking: the break sequencer's drain (L{BreakSequencer.retime}),
what is written meanwhile held and written after it.  It was applied at
once, and bytes typed before a rate change went at the new rate.

The change is answered at once with the settings asked for; if the port
then takes less (a pty forces 8 bits) its line is told (C{deviceSettings}),
as for a device back with less than was kept for it.  A second change
while one waits replaces it when nothing was written between them, else
waits for what was (one such at a time: a third replaces the second).  A
break asked for while a change waits is refused as one under way is.
"""

from __future__ import annotations

import termios
from typing import TYPE_CHECKING, Any, Optional

from twisted.logger import Logger

from serialgw.config.specs import SerialSettings
from serialgw.devices.breaks import IDLE
from serialgw.devices.errors import errorReason
from serialgw.devices.sources import Held, joined

log = Logger()


class SettingsInOrder:
    """The device's L{apply}, in order with its output (see the module); mixed into L{SerialDevice}."""

    # (The device's; see SerialDevice.)
    settings: SerialSettings
    closed: bool
    port: Any
    sink: Any
    _breaks: Any
    _out: bytearray
    _held: Held
    # A change asked while another waited with bytes written since: applied after those (the
    # first _nextAt chunks held), before what was written after it.
    _nextSettings: Optional[SerialSettings] = None
    _nextAt = 0

    if TYPE_CHECKING:
        # (The device's other parts': declared for mypy alone, as a stub at run time would shadow the real one in
        # SerialDevice's MRO, and naming SerialDevice would be an import cycle; tests.test_layers.PartStubTests.)
        @property
        def usable(self) -> bool: ...
        def _gone(self, e: BaseException) -> bool: ...
        def write(self, data: bytes, source: Any = None) -> None: ...

    def apply(self, settings: SerialSettings) -> SerialSettings:
        """
        Apply settings, after the output on its way (see the module);
        return (and remember) those now in effect, or, waiting, those asked
        for.  While the device is down they are remembered and applied when
        it is back.  A device found gone here (termios fails with EIO: it
        hung up while nobody read it) takes the loss path, the settings kept.
        """
        if self.usable:
            if self._afterOutput(settings):
                return self.settings
            try:
                self.settings = self.port.apply(settings)
                return self.settings
            except (OSError, termios.error) as e:
                if not self._gone(e):
                    raise
        if not self.closed:
            self.settings = settings
        return self.settings

    def _afterOutput(self, settings: SerialSettings) -> bool:
        """Whether the change must wait for output on its way; if so, it waits (see the module)."""
        breaks = self._breaks
        if breaks.state is IDLE:
            if not self._out and self.port.outputPending() <= 0:
                return False
            breaks.retime(settings, queued=bool(self._out))
        elif breaks.settings is not None and not self._held:
            breaks.settings = settings  # (the waiting one: nothing was written between them)
        else:
            if self._nextSettings is None:
                self._nextAt = len(self._held)
            self._nextSettings = settings  # (after what a break or the waiting change holds)
        self.settings = settings
        return True

    def retimed(self, settings: SerialSettings) -> bool:
        """(The break sequencer's target.)  The output before the change has gone: applied; False if gone."""
        try:
            effective = self.port.apply(settings)
        except (OSError, termios.error) as e:
            if self._gone(e):
                return False
            log.warn("{device}: cannot apply {settings}: {reason}", device=self.port.name,
                     settings=settings.describe(), reason=errorReason(e))
            return True
        if self._nextSettings is None:
            self.settings = effective
            if effective != settings:
                try:
                    self.sink.deviceSettings(settings)
                except Exception:
                    log.failure("{device}: handling the settings in effect failed", device=self.port.name)
        return True

    def _settleSettings(self) -> None:
        """
        The device closes, what is queued dropped: a change waiting for it
        (the settings put back at a line's close) is applied now, not lost
        with it.
        """
        if self._breaks.settings is None and self._nextSettings is None:
            return
        self._breaks.settings, self._nextSettings = None, None
        try:
            self.settings = self.port.apply(self.settings)
        except (OSError, termios.error) as e:
            log.warn("{device}: cannot apply {settings} before closing: {reason}", device=self.port.name,
                     settings=self.settings.describe(), reason=errorReason(e))

    def _splitHeld(self, held: Held) -> tuple[Held, Held]:
        """What a break or a change held: written before the change asked after it, and after it."""
        at = self._nextAt if self._nextSettings is not None else len(held)
        self._nextAt = 0
        return held[:at], held[at:]

    def _applyNext(self, after: Held) -> None:
        """
        What was held before it has been written (a break's or a change's):
        a change asked after it, now in its turn, then what came after it
        (held again while the change waits).
        """
        settings, self._nextSettings = self._nextSettings, None
        if settings is not None and self.usable:
            self.apply(settings)
        for source, data in joined(after):
            self.write(data, source)
