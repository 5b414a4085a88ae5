"""
A reload applied to the running gateway (L{serialgw.app.service.GatewayService.reload}),
in turns of the reactor: first the checks that make it all or nothing
(L{serialgw.app.reload}: nothing running is touched before they all
pass), then the lines removed and those whose device changes closed, the
others retuned in place, and once the closed ones have let go of their
ports and devices, the retuned lines' new listeners and the lines added or
reopened opened.  It does a bounded amount of work a turn, all its steps
together (L{CHANGES_PER_TURN} listeners checked, lines closed or retuned,
or L{serialgw.app.reload.LINES_PER_TURN} lines opened, or a mix), the
reactor serving every other line in between: a reload changing a farm's
1000 lines held every other line 40-100 ms in one turn (binding 1000 new
unix listeners to check them, 260 ms).  What it did is reported once,
when it is done (the reload log line, its result); a stop between turns
leaves the rest undone and says so.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any, Callable, Optional, Protocol

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from serialgw.app import reload as plans
from serialgw.app.binding import StartupError
from serialgw.app.reload import (
    bindChecker,
    checkFiles,
    checkLocks,
    listenerChanges,
    movedAway,
    namesBrief,
    planReload,
    releasedPorts,
    sharesAddress,
)
from serialgw.app.reloadlooks import LookedGateway, LookingAside, readTLSFile, tlsFiles
from serialgw.app.retuning import RetunedGateway, reopenParts, retune
from serialgw.app.startchecks import unixDeviceProblem
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.specs import LineConfig
from serialgw.devices.reopenpool import FirstOpen

log = Logger()

# Lines a reload closes, or retunes in place, or listeners it binds to
# check them, in one turn of the reactor (one takes 0.02-0.3 ms, a close
# more with many clients: 1000 at once held the other lines up to 0.1 s,
# 0.6 s under load).  In units of the work a turn may do (WORK_PER_TURN):
# such a change is CHANGE of them, a line opened OPEN (one takes 1-5 ms:
# LINES_PER_TURN a turn), a look (a lock directory, a file's path, a
# listener that needs no bind) one.
CHANGES_PER_TURN = 32
CHANGE = 8
WORK_PER_TURN = CHANGES_PER_TURN * CHANGE
OPEN = WORK_PER_TURN // plans.LINES_PER_TURN

STOPPED = "the gateway stopped before the reload was done"

# The listeners whose files (checkFiles), and those whose addresses or TLS files (bindChecker), a reload checks.
FILES = frozenset((ListenerKind.FILE, ListenerKind.PIPE, ListenerKind.PTY))
BINDS = frozenset((ListenerKind.UDP, ListenerKind.CONNECT, ListenerKind.LISTEN))


class ReloadedGateway(RetunedGateway, LookedGateway, Protocol):
    """
    What a reload uses of the gateway (L{serialgw.app.service.GatewayService}):
    declared here, since the service imports this module; its retuning's and
    its look's besides.
    """

    configs: list[LineConfig]
    # The file the lines come from (a FileConfig), or None.
    source: Any
    _stopped: bool
    _owned: dict[str, list[tuple[str, Any]]]
    statusPort: Any
    sshPort: Any
    watchAllPorts: list[Any]
    byNameFactories: list[Any]

    def closeLine(self, name: str, notice: str = ...) -> list[Any]: ...
    def _openLine(self, config: LineConfig, offThread: bool = False, begun: Optional[FirstOpen] = None) -> None: ...


def applyReload(service: ReloadedGateway, configs: list[LineConfig]) -> Any:
    """Apply C{configs} to C{service} (see L{GatewayService.reload}); what changed, or C{{"refused": [why]}}."""
    if service._stopped:
        log.info("reload refused: the gateway is stopping")
        return {"refused": ["the gateway is stopping"]}
    return Applying(service, configs).begin()


class Applying(LookingAside):
    """One reload under way: its plan, and what it has done so far."""

    def __init__(self, service: ReloadedGateway, configs: list[LineConfig]) -> None:
        self.service = service
        self.plan = planReload(service.configs, configs)
        self.old = {c.name: c for c in service.configs}
        self.new = {c.name: c for c in configs}
        # What the closes and the retunes' closes give to wait for.
        self.waits: list[Any] = []
        # Who writes each console log's path now, kept as the retunes change it.
        self.written: defaultdict[str, set[str]] = defaultdict(set)
        self.opened: list[str] = []
        self.leftOut: list[str] = []
        # The work done this turn (see inTurns).
        self.spent = 0
        # What the checks bound (see bindChecker), and the first problem they found.
        self.probes: list[Any] = []
        self.problem: Optional[str] = None
        # A retuned line's listeners that went: the ports each was bound to (read before it closes),
        # and those moved to another address, closed only once the new ones listen (see settle).
        self.bound: dict[str, dict[ListenerSpec, set[int]]] = {}
        self.later: dict[str, list[ListenerSpec]] = {}

    def stopped(self) -> bool:
        return self.service._stopped

    def begin(self) -> Any:
        """The checks, in turns; then, if they pass, the probes they bound closed and the lines closed."""
        service, plan, new = self.service, self.plan, self.new
        released = {spec.path for _, spec in plan.releasing if spec.kind is ListenerKind.PTY and spec.path}
        binds = bindChecker(plan.releasing, plans.releasedPorts(service._keyed, plan.releasing),
                            service.listeners.endpoint, self.probes,
                            plans.boundPorts(service._keyed, service.statusPort, service.sshPort, *service.watchAllPorts,
                                             *(factory.port for factory in service.byNameFactories)))
        # A unix: device's path too long (no I/O: checked at once), as the open would refuse it first.
        self.problem = next((service.placed(name, "device", problem) for name in plan.changed + plan.added
                             if (problem := unixDeviceProblem(new[name])) is not None), None)
        # In the order they were made at once: the problem reported is the same.
        # Each step: its items (a line's name first), the check, and the key of the line it is about.
        steps: list[tuple[list[Any], Callable[[Any], Optional[str]], str]] = [
            ([(config.name, config) for config in (new[name] for name in plan.changed + plan.added)
              if config.lock and config.device.kind == "tty"], lambda item: checkLocks([item[1]]), "lock-dir"),
            (plan.logs, lambda item: checkFiles([], [item], released), "log"),
            ([item for item in plan.opening if item[1].kind in FILES], lambda item: checkFiles([item], [], released),
             "listen"),
            # (Read again on the reactor's thread by the bind check and the open: read aside first, a TLS
            # file on a file system that does not answer held every line there.)
            ([file for name, spec in plan.opening if spec.kind in BINDS for file in tlsFiles(name, spec)],
             readTLSFile, "listen"),
            ([item for item in plan.opening if item[1].kind in BINDS], lambda item: binds(*item), "listen"),
        ]
        checked: defer.Deferred[Any] = defer.succeed(None)
        for index, (items, check, key) in enumerate(steps):
            # (The lock directories, files and TLS files looked at off the reactor's thread: see reloadlooks.)
            checked.addCallback(self.lookAside if index in (0, 1, 2, 3) else self.checkAll, items, check, key)
        return checked.addCallback(self.checked)

    def checkAll(self, _: Any, items: list[Any], check: Callable[[Any], Optional[str]],
                 key: str) -> defer.Deferred[None]:
        return self.inTurns(items, partial(self.check, check, key), cost=1)

    def check(self, check: Callable[[Any], Optional[str]], key: str, item: Any) -> int:
        """
        One check (its problem noted, begun with the file's line of the
        line's C{key}); a look, or a change if it bound a listener (see
        bindChecker's probes).
        """
        probes = len(self.probes)
        problem = check(item)
        self.problem = None if problem is None else self.service.placed(item[0], key, problem)
        return CHANGE if len(self.probes) > probes else 1

    def checked(self, _: Any) -> Any:
        problem = self.problem
        if problem is None and not self.stopped():
            # What the checks bound is closed (a few a turn: each one's end is a call of the next turn).
            closing = self.inTurns(self.probes, self.unprobe, halts=False)
            closing.addCallback(lambda _: self.inTurns(self.plan.removed + self.plan.changed, self.close))
            return closing.addCallback(self.closedAll)
        self.waits += [probe.stopListening() for probe in self.probes]
        probed = defer.gatherResults([w for w in self.waits if isinstance(w, defer.Deferred)], consumeErrors=True)
        if problem is None:
            return probed.addBoth(lambda _: self.notDone())
        log.error("reload refused, the running configuration stays: {reason}", reason=problem)
        # Answered once what the check bound is closed again.
        return probed.addBoth(lambda _: {"refused": [problem]})

    def unprobe(self, probe: Any) -> None:
        self.waits.append(probe.stopListening())

    def inTurns(self, items: list[Any], work: Callable[[Any], Optional[int]], cost: int = CHANGE,
                halts: bool = True) -> defer.Deferred[None]:
        """
        C{work(item)} for each of C{items}, each C{cost} (or what it
        returns) of the WORK_PER_TURN this reload may do a turn (what its
        step before did in this turn counts); with C{halts}, until the
        gateway stops or a check finds a problem.  Fires once all are done
        or it halted (errs, and does no more, if one raises).
        """
        done: defer.Deferred[None] = defer.Deferred()

        def turn(start: int, resumed: bool) -> None:
            if resumed:
                self.spent = 0
            for index in range(start, len(items)):
                if halts and (self.stopped() or self.problem is not None):
                    done.callback(None)
                    return
                if self.spent >= WORK_PER_TURN:
                    self.service.reactor.callLater(0, turn, index, True)
                    return
                try:
                    spent = work(items[index])
                except Exception:
                    done.errback()
                    return
                self.spent += cost if spent is None else spent
            done.callback(None)

        turn(0, False)
        return done

    def close(self, name: str) -> None:
        """A line removed, or closed to be opened again: its device (or its lock setting) changes."""
        if name in self.new:
            # Closed and opened again: its sessions are told why, not that the line is gone.
            what = "device" if self.old[name].device != self.new[name].device else "lock setting"
            self.waits += self.service.closeLine(name, f"{name}: {what} changed by a reload; reconnect")
        elif self.service.source is not None and name in self.service.source.disabled:
            # Its table is still in the file: "removed from the configuration" sent people to look for what is there.
            self.waits += self.service.closeLine(name, "this line was turned off by a reload (enable = false)")
        else:
            self.waits += self.service.closeLine(name)

    def closedAll(self, _: Any) -> Any:
        if self.stopped():
            return self.notDone()
        for writer, consoleLog in ((line, log) for line in self.service.lines.values() for log in line.logs):
            self.written[consoleLog.spec.path].add(writer.name)
        return self.inTurns(self.plan.retuned, self.retune).addCallback(self.retunedAll)

    def retune(self, name: str) -> None:
        service, old, new = self.service, self.old[name], self.new[name]
        gone = listenerChanges(old, new)[0]
        bound = self.bound[name] = {spec: {port for _, port in releasedPorts(service._keyed, [(name, spec)])}
                                    for spec in gone}
        # (Only a line that opens new listeners leaves its old ones for later: see settle.)
        self.later[name] = movedAway(gone, self.plan.opening, bound.__getitem__) if self.plan.reopened[name] else []
        self.waits += retune(service, old, new, self.written, self.later[name])

    def retunedAll(self, _: Any) -> Any:
        service, plan = self.service, self.plan
        if self.stopped():
            return self.notDone()
        gone = set(plan.removed) | set(plan.changed)
        service.configs = [self.new[c.name] if c.name in plan.reopened else c for c in service.configs
                           if c.name not in gone]
        closed = defer.gatherResults([w for w in self.waits if isinstance(w, defer.Deferred)], consumeErrors=True)
        closed.addErrback(lambda f: log.failure("reload: closing lines", f))
        return closed.addCallback(self.reopen)

    def reopen(self, _: Any) -> Any:
        if self.stopped():
            log.info("reload: the gateway stopped before the reload was done; nothing opened")
            return {"refused": [STOPPED]}
        # The running lines' new parts first: a listener moved comes back at once.
        old, new = self.old, self.new
        parts = self.inTurns([name for name in self.plan.retuned
                              if self.plan.reopened[name] or old[name].log != new[name].log], self.reopenParts)
        parts.addCallback(lambda _: self.stopped() or self.inTurns(self.plan.changed + self.plan.added, self.openOne, OPEN))
        return parts.addCallback(lambda _: self.report())

    def reopenParts(self, name: str) -> None:
        self.settle(name, reopenParts(self.service, self.old[name], self.new[name], self.plan.reopened[name]))

    def settle(self, name: str, failed: list[tuple[ListenerSpec, StartupError]]) -> None:
        """
        A retuned line's listeners once its new ones are opened (C{failed}:
        those that could not be, and why). One moved to another address was
        left open (see L{movedAway}): closed now, or kept if a new listener
        failed. One changed on its own address was closed first: if its new
        settings fail, its old ones are put back if they can be. What the
        line runs on is said, naming it and the listener, and recorded (the
        running configuration: a reload of the same file tries again).
        """
        service, line, old, new = self.service, self.service.lines[name], self.old[name], self.new[name]
        later, bound = self.later.pop(name, []), self.bound.pop(name, {})
        gone = listenerChanges(old, new)[0]
        dropped: list[ListenerSpec] = []
        back: list[ListenerSpec] = []
        for spec, error in failed:
            reason = service.placed(name, error.key, str(error))
            same = [g for g in gone if g not in later and sharesAddress(g, spec, bound.get(g, set()))]
            restored: list[ListenerSpec] = []
            problems: list[str] = []
            for previous in same:
                service._opening = name
                try:
                    service._listen(line, new, previous)
                except StartupError as e:
                    problems.append(str(e))
                else:
                    restored.append(previous)
                finally:
                    service._opening = None
            kept = restored if same else later if spec.kind is ListenerKind.LISTEN else []
            if kept:
                dropped.append(spec)
                back += [k for k in kept if k not in back]
                texts = ", ".join(repr(k.text) for k in kept)
                log.error("reload: {reason}; the line keeps listener {kept} as it was", reason=reason, kept=texts)
            elif problems:
                log.error("reload: {reason}; line {line!r} is now WITHOUT that listener, nor its old one ({problems})",
                          reason=reason, line=name, problems="; ".join(problems))
            else:
                log.error("reload: {reason}; line {line!r} runs without that listener", reason=reason, line=name)
        for spec in later:
            if spec in back:
                service.listeners.unretire(name, spec)
            else:
                for wait in service._closeKeyed(name, spec):
                    if isinstance(wait, defer.Deferred):
                        wait.addErrback(lambda f: log.failure("reload: closing a listener", f))
        if dropped:
            service.configs = [attrs.evolve(c, listeners=tuple([s for s in c.listeners if s not in dropped] + back))
                               if c.name == name else c for c in service.configs]

    def openOne(self, name: str) -> None:
        service, config = self.service, self.new[name]
        try:
            service._openLine(config, offThread=True)  # (an open can hang: see makeDevice)
        except StartupError as e:
            log.error("reload: {reason}; line {line} left out", reason=service.placed(name, e.key, str(e)), line=name)
            service.closeLine(name)
            self.leftOut.append(name)
            return
        self.opened.append(name)
        service.configs.append(config)
        line = service.lines[name]
        if service.running and not line.waitForClient:
            line.device.start()
        for kind, thing in service._owned.get(name, []):
            if kind == "dialer" and service.running:
                thing.startService()

    def notDone(self) -> dict[str, list[str]]:
        log.info("reload: the gateway stopped before the reload was done; nothing more applied")
        return {"refused": [STOPPED]}

    def report(self) -> dict[str, list[str]]:
        plan, opened, leftOut = self.plan, self.opened, self.leftOut
        opening = plan.changed + plan.added
        if self.stopped():  # (between two turns: what was left is not done)
            log.info("reload: the gateway stopped before the reload was done; {count} line(s) not opened",
                     count=len(opening) - len(opened) - len(leftOut))
            return {"refused": [STOPPED]}
        # A line left out is neither added nor changed: it is not running.
        addedNow = [n for n in plan.added if n not in leftOut]
        changedNow = [n for n in plan.changed + plan.retuned if n not in leftOut]
        log.info("reload: added {added}, changed {changed}, removed {removed}, {kept} unchanged{more}",
                 added=namesBrief(addedNow), changed=namesBrief(changedNow), removed=namesBrief(plan.removed),
                 addedCount=len(addedNow), changedCount=len(changedNow), removedCount=len(plan.removed),
                 kept=plan.kept, more=f", left out {namesBrief(leftOut)}" if leftOut else "")
        result = {"added": addedNow, "changed": changedNow, "removed": plan.removed}
        if leftOut:
            result["left out"] = leftOut
        return result

