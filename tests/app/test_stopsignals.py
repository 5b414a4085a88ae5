"""
SIGTERM and SIGINT under twistd before the stop has begun: Twisted's
handler asks the reactor to stop on its next turn, so two signals in one
turn asked it twice (the second a critical ReactorNotRunning traceback).
"""

from __future__ import annotations

import signal
from typing import Any, Callable

from twisted.internet.error import ReactorNotRunning
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.process import TwistdGatewayService
from serialgw.app.service import GatewayService
from serialgw.config.parsers import parseSendString
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.fakes import LogEvents, RecordingPort, ThreadedReactorClock
from tests.line.test_attach import person

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


class TwoStopSignalsTests(SynchronousTestCase):
    def setUp(self) -> None:
        before = {signum: signal.getsignal(signum) for signum in SIGNALS}
        for signum, handler in before.items():
            self.addCleanup(signal.signal, signum, handler)
        self.clock = ThreadedReactorClock()
        self.log = LogEvents(self)
        self.ports: list[RecordingPort] = []
        # Twisted's handler, as the reactor's start installs it: reactor.stop on the next turn.
        self.stops: list[float] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: self.clock.callFromThread(self.reactorStop))

    def reactorStop(self) -> None:
        """The reactor's stop, as Twisted's: a second one raises."""
        if self.stops:
            raise ReactorNotRunning("Can't stop reactor that isn't running.")
        self.stops.append(self.clock.seconds())

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0
        self.ports.append(port)
        return port

    def running(self) -> TwistdGatewayService:
        """A gateway of one line "t" (a close-string, a person on it, a device that takes nothing), its reactor running."""
        config = LineConfig("t", DeviceSpec("tty", "/dev/t"), closeString=parseSendString(r"exit\r"))
        service = TwistdGatewayService([config], reactor=self.clock, openPort=self.openPort)
        self.patch(service, "startService", lambda: GatewayService.startService(service))
        service.privilegedStartService()
        service.startService()
        for hook, args, kwargs in self.clock.whenRunningHooks:  # (the reactor's start: Twisted's handlers are in)
            hook(*args, **kwargs)
        service.lines["t"].attach(person())
        self.ports[0].accept = 0
        return service

    def handler(self, signum: int) -> Callable[[int, Any], Any]:
        handler = signal.getsignal(signum)
        assert callable(handler)
        return handler

    def test_twoInOneTurn(self) -> None:
        """Two SIGTERMs before the reactor's next turn stop it once (the second stop raised ReactorNotRunning, logged critical); the second hurries the stop once it begins: the device taking its close-string is closed at once, said."""
        service = self.running()
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        self.assertEqual(self.stops, [0])
        stopped = service.stopService()  # (the reactor's shutdown)
        self.successResultOf(stopped)
        self.assertEqual(self.ports[0].events[-1], (0, "close", None))
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "during the stop" in e["log_format"]]
        self.assertEqual((warning["why"], warning["lines"]), ("SIGTERM", "t"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sigintThenSigterm(self) -> None:
        """SIGINT, then SIGTERM in the same turn: one stop, the SIGTERM hurrying it."""
        service = self.running()
        self.handler(signal.SIGINT)(signal.SIGINT, None)
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        self.assertEqual(self.stops, [0])
        self.successResultOf(service.stopService())
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "during the stop" in e["log_format"]]
        self.assertEqual(warning["why"], "SIGTERM")

    def test_oneSignalWaits(self) -> None:
        """One SIGTERM: one stop, which waits for the close-string as ever (nothing hurried); a second during the stop hurries it, as before."""
        service = self.running()
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        self.assertEqual(self.stops, [0])
        stopped = service.stopService()
        self.assertNoResult(stopped)
        self.assertEqual([e for e in self.log.at(LogLevel.warn) if "during the stop" in e["log_format"]], [])
        # A third, during the stop: hurried as before.
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(self.stops, [0])

    def test_afterTheStop(self) -> None:
        """A SIGTERM once the stop is over (the reactor shutting down) asks no stop again either."""
        service = self.running()
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        stopped = service.stopService()
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        self.successResultOf(stopped)
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.clock.advance(0)
        self.assertEqual(self.stops, [0])

    def test_twistedsHandlerOutsideTheSignal(self) -> None:
        """Twisted's handler (it logs 'Received SIGTERM') runs on the reactor's next turn, never inside the signal handler: a SIGTERM that came while the main thread was inside twistd's log observer (its lock, a pure-Python RLock, half taken) deadlocked the gateway for ever (seen on CI, Twisted 22.10)."""
        called: list[int] = []
        signal.signal(signal.SIGTERM, lambda signum, frame: called.append(signum))
        self.running()
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.assertEqual(called, [])
        self.clock.advance(0)
        self.assertEqual(called, [signal.SIGTERM])

    def test_whatTwistedInstallsIsOurs(self) -> None:
        """The reactor's start installs Twisted's handlers (reactor.sigTerm and sigInt, read as it starts) before our hook runs: what it installs is ours already, so a SIGTERM in between runs Twisted's handler (it logs) on the next turn, not inside the signal handler, and a second one hurries the stop rather than stopping the reactor again."""
        called: list[int] = []

        def twisteds(number: int, frame: Any = None) -> None:
            called.append(number)
            self.clock.callFromThread(self.reactorStop)

        self.clock.sigTerm = self.clock.sigInt = twisteds  # type: ignore[attr-defined]
        config = LineConfig("t", DeviceSpec("tty", "/dev/t"), closeString=parseSendString(r"exit\r"))
        service = TwistdGatewayService([config], reactor=self.clock, openPort=self.openPort)
        self.patch(service, "startService", lambda: GatewayService.startService(service))
        service.privilegedStartService()
        service.startService()
        # The reactor starts: Twisted installs its handlers, as it has them then.
        signal.signal(signal.SIGTERM, self.clock.sigTerm)  # type: ignore[attr-defined]
        signal.signal(signal.SIGINT, self.clock.sigInt)  # type: ignore[attr-defined]
        self.handler(signal.SIGTERM)(signal.SIGTERM, None)
        self.assertEqual(called, [])
        for hook, args, kwargs in self.clock.whenRunningHooks:
            hook(*args, **kwargs)
        self.assertEqual(self.clock.sigTerm, twisteds)  # type: ignore[attr-defined]
        service.lines["t"].attach(person())
        self.ports[0].accept = 0
        self.handler(signal.SIGINT)(signal.SIGINT, None)
        self.clock.advance(0)
        self.assertEqual((called, self.stops), ([signal.SIGTERM], [0]))
        self.successResultOf(service.stopService())
        (warning,) = [e for e in self.log.at(LogLevel.warn) if "during the stop" in e["log_format"]]
        self.assertEqual(warning["why"], "SIGINT")
