"""
Loops a configuration would make: a line's device that leads back to the
line (a tty path that is the link of its own pty: listener, or of a line's
whose device leads back to it; a remote device that is one of the
gateway's own listeners, at loopback or at another of this host's
addresses; a watch-all listener, or a process's copy of one under
--shard, that watches the line or a line whose device leads back to it;
a [by-name] listener that may give it such a line):
a byte typed on it goes round for ever.  No name is looked up (no DNS
where a configuration is read): a host name is this host's when
/etc/hosts gives it one of this host's addresses, or it is this host's
own name (gethostname); one only DNS gives this host is not caught
(README): L{serialgw.config.thishost}.
"""

from __future__ import annotations

from collections import deque
from fnmatch import fnmatchcase
from os.path import normpath
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from serialgw.config.listenerspecs import ByNameSpec, ListenerKind, ListenerSpec, WatchAllSpec
from serialgw.config.shard import shardOf, shiftListener
from serialgw.config.specs import ConfigError, DeviceSpec, LineConfig, isAbstract, quote
from serialgw.config.thishost import _reaches


def _asWritten(path: str) -> list[str]:
    return [normpath(path)]


def ptyLoop(lines: Sequence[LineConfig],
            hops: Callable[[str], list[str]] = _asWritten) -> Optional[tuple[str, str]]:
    """
    A line whose device (a tty path) is the link of a pty: listener of its
    own, or of a line whose device leads back to it: what is typed on it
    goes to that pty, whose client hands it to the device again, for ever
    (one byte kept a core a quarter busy).  So with a remote device that is
    one of the gateway's own listeners (L{_ownListener}).  The first such
    line's name and why, or None.  C{hops}: a path, then those its symlinks
    lead to in turn (L{serialgw.config.paths.placeKeys}, which looks at the
    disk: each said by what its directory is); the first is where a pty:
    link is made.
    """
    feeds = _feeds(lines, hops)
    for start, first in feeds.items():
        chain, step = [start], first
        while step is not None and step[0] not in chain:
            chain.append(step[0])
            step = feeds.get(step[0])
        if step is not None and step[0] == start:
            device = dict((c.name, c.device) for c in lines)[start]
            path = quote(device.path if device.kind == "tty" else device.describe())
            how = first[1] if first is not None else ""
            ring = "".join(f", line {quote(a)}'s device is line {quote(b)}'s"
                           for a, b in zip(chain[1:], chain[2:] + [start], strict=True)) if len(chain) > 1 else ""
            if how == "pty":
                whose = "its own pty: listener" if len(chain) == 1 else f"line {quote(chain[1])}'s pty: listener"
                return start, f"{path} is the link of {whose}{ring}: {_LOOP}"
            whose = "its own listener" if len(chain) == 1 else f"line {quote(chain[1])}'s listener"
            return start, f"{path} is {whose} {quote(how)}{ring}: {_LOOP}"
    return None


def _feeds(lines: Sequence[LineConfig], hops: Callable[[str], list[str]]) -> dict[str, Optional[tuple[str, str]]]:
    """
    For each line whose device leads to another line (or its own): that
    line, and how (C{"pty"}: the link of its pty: listener; else the
    listener, as written, its remote device dials), whose output it gets.
    """
    links = {hops(spec.path)[0]: config.name for config in lines for spec in config.listeners
             if spec.kind is ListenerKind.PTY and spec.path}
    sockets: Optional[dict[str, tuple[str, str]]] = None
    feeds: dict[str, Optional[tuple[str, str]]] = {}
    for config in lines:
        device = config.device
        if device.kind == "tty" and device.path:
            line = next((links[hop] for hop in hops(device.path) if hop in links), None)
            feeds[config.name] = None if line is None else (line, "pty")
        elif device.remote:
            own = _ownListener(device, lines)
            if own is None and device.kind == "unix" and device.path and not isAbstract(device.path):
                # Its connect follows symlinks: unix:/var/run/x.sock reaches a listener made at /run/x.sock
                # (Debian's /var/run is a link to /run), where the paths as written differ.
                if sockets is None:
                    sockets = _unixListenerPlaces(lines, hops)
                own = next((sockets[hop] for hop in hops(device.path) if hop in sockets), None)
            feeds[config.name] = own
    return feeds


def _unixListenerPlaces(lines: Sequence[LineConfig], hops: Callable[[str], list[str]]) -> dict[str, tuple[str, str]]:
    """Where each unix listener's socket is made (C{hops}' first: its directory resolved): its line and listener (as written)."""
    places: dict[str, tuple[str, str]] = {}
    for config in lines:
        for spec in config.listeners:
            if spec.kind is ListenerKind.LISTEN and spec.tls is None and spec.path and not isAbstract(spec.path):
                places.setdefault(hops(spec.path)[0], (config.name, spec.text))
    return places


_LOOP = "what is written to it would come back to it for ever (a loop)"


def _ownListener(device: DeviceSpec, lines: Sequence[LineConfig]) -> Optional[tuple[str, str]]:
    """
    The line and listener (as written) of this gateway's that a remote
    device reaches, if it is one: a unix: socket at a unix listener's path
    (as written: one through symlinks is found by L{_feeds});
    a TCP address on a listener's port that is that listener's own
    (one of this host's where it listens on every address; the very
    address it is bound to: L{_reaches}).  A TLS listener is no loop (no handshake).
    """
    for config in lines:
        for spec in config.listeners:
            if _isListener(device, spec):
                return config.name, spec.text
    return None


def _isListener(device: DeviceSpec, spec: ListenerSpec) -> bool:
    """Whether a remote device dials that listener (see L{_ownListener})."""
    if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
        return False
    if device.kind == "unix":
        return bool(spec.path) and normpath(spec.path) == normpath(device.path)
    return not spec.path and spec.port == device.port and _reaches(device.host, spec.host)


def watchAllLoop(lines: Sequence[LineConfig], watchAll: Optional[WatchAllSpec], shards: Optional[int] = None,
                 pins: Optional[Mapping[str, int]] = None,
                 hops: Callable[[str], list[str]] = _asWritten) -> Optional[tuple[str, str]]:
    """
    A line whose remote device dials a watch-all listener that watches
    it, or watches a line whose device leads back to it (its listener, a
    pty: link, another watch-all): each line of its output comes back to
    it, prefixed, for ever (one line typed on another line kept the
    gateway at 99 % of a core).  With C{shards} (--shard I/N: N) each
    process has its own copy of each watch-all listener (PORT+I, PATH.I;
    L{shiftListener}), watching that process's lines only.  Its name and
    why, or None.  C{hops}: as L{ptyLoop}'s (a unix: device reaching a
    watch-all listener, or a pty: link, through symlinks).
    """
    if watchAll is None:
        return None
    copies: list[tuple[Optional[int], ListenerSpec, ListenerSpec]] = []
    for spec in watchAll.listeners:
        if shards is None:
            copies.append((None, spec, spec))
            continue
        for process in range(shards):
            try:
                copies.append((process, shiftListener(spec, process, "--watch-all"), spec))
            except ConfigError:
                break  # (one that cannot be copied is refused where the copies are made)
    names = [config.name for config in lines]

    def watched(index: Optional[int]) -> list[str]:
        assert watchAll is not None
        return [name for name in names if any(fnmatchcase(name, p) for p in watchAll.lines)
                and (index is None or shardOf(name, shards or 1, pins or {}) == index)]

    # Each line whose device dials a watch-all listener (a process's copy): which, and the lines it watches.
    dials = {name: (*found, watched(found[0])) for name, found in _dialling(lines, copies, hops).items()}
    if not dials:
        return None
    feeds = _feeds(lines, hops)
    for config in lines:
        if config.name not in dials:
            continue
        at, copy, spec, seen = dials[config.name]
        path = _pathBack(config.name, seen, feeds, dials)
        if path is None:
            continue
        whose = f" (process {at}'s copy of {quote(spec.text)})" if copy.text != spec.text else ""
        return config.name, (f"{quote(config.device.describe())} is the watch-all listener {quote(copy.text)}{whose}, "
                             f"which watches line {quote(path[0])}{''.join(_step(*step) for step in path[1:])}: "
                             "each line of its output would come back to it from there, prefixed, for ever (a loop)")
    return None


def _dialling(lines: Sequence[LineConfig], copies: Sequence[tuple[Optional[int], ListenerSpec, ListenerSpec]],
              hops: Callable[[str], list[str]]) -> dict[str, tuple[Optional[int], ListenerSpec, ListenerSpec]]:
    """Each line whose remote device dials one of C{copies}' listeners (a unix: one through symlinks too): which."""
    dials: dict[str, tuple[Optional[int], ListenerSpec, ListenerSpec]] = {}
    # Where each unix listener (copy) is made, for a unix: device through symlinks (as in _feeds).
    places: Optional[dict[str, tuple[Optional[int], ListenerSpec, ListenerSpec]]] = None
    for config in lines:
        device = config.device
        if not device.remote:
            continue
        found = next(((at, copy, spec) for at, copy, spec in copies if _isListener(device, copy)), None)
        if found is None and device.kind == "unix" and device.path and not isAbstract(device.path):
            if places is None:
                places = {}
                for at, copy, spec in copies:
                    if copy.kind is ListenerKind.LISTEN and copy.tls is None and copy.path and not isAbstract(copy.path):
                        places.setdefault(hops(copy.path)[0], (at, copy, spec))
            found = next((places[hop] for hop in hops(device.path) if hop in places), None) if places else None
        if found is not None:
            dials[config.name] = found
    return dials


def byNameLoop(lines: Sequence[LineConfig], byName: Optional[ByNameSpec],
               hops: Callable[[str], list[str]] = _asWritten) -> Optional[tuple[str, str]]:
    """
    A line whose remote device dials a [by-name] listener that may give
    it, or a line whose device leads back to it: once that name is typed
    on the line (it reaches the prompt as the device's input), the
    device's connection is that line's client, and what is written to it
    comes back to it for ever (seen: one byte typed kept the gateway at a
    whole core, --check said OK).  Every line the table's C{lines} match
    counts (whether one of the line's own listeners would admit the
    connection is the connection's, not known here).  Its name and why, or
    None.  C{hops}: as L{ptyLoop}'s.
    """
    if byName is None:
        return None
    found = _dialling(lines, [(None, spec, spec) for spec in byName.listeners], hops)
    if not found:
        return None
    given = [config.name for config in lines if any(fnmatchcase(config.name, p) for p in byName.lines)]
    dials = {name: (*at, given) for name, at in found.items()}
    feeds = _feeds(lines, hops)
    for config in lines:
        if config.name not in dials:
            continue
        path = _pathBack(config.name, given, feeds, dials)
        if path is None:
            continue
        steps = "".join(_step(line, other, how, "[by-name]") for line, other, how in path[1:])
        return config.name, (f"{quote(config.device.describe())} is the [by-name] listener {quote(dials[config.name][1].text)}, "
                             f"which gives line {quote(path[0])}{steps}: once {quote(path[0])} is typed there, "
                             f"{_LOOP}")
    return None


def runningWatchAllLoop(lines: Sequence[LineConfig], new: Optional[WatchAllSpec], inFile: Optional[WatchAllSpec],
                        byOption: Optional[WatchAllSpec], shards: Optional[int] = None,
                        pins: Optional[Mapping[str, int]] = None,
                        hops: Callable[[str], list[str]] = _asWritten) -> Optional[tuple[str, str]]:
    """
    A reload's C{lines} against the watch-all listeners that run once it
    is done (L{watchAllLoop}'s words), where the file's new [watch-all]
    (C{new}, checked as the file is read) is not all of them: the file's
    listeners as they run (C{inFile}: one the file moves or adds waits for
    a restart, its table removed closes them) and --watch-all's
    (C{byOption}), each with the lines filter the reload leaves it: the new
    file's where it takes it (the table's listeners as many as before:
    L{serialgw.app.filereload} _retuneWatchAll), else the one it has.  (A
    reload checked against the file's table alone let a line dial --watch-all's
    listener, or where the file's ran before it moved.)
    """
    retuned = inFile is not None and new is not None and len(inFile.listeners) == len(new.listeners)
    specs: list[WatchAllSpec] = []
    if inFile is not None and new is not None:
        specs.append(WatchAllSpec(inFile.listeners, new.lines if retuned else inFile.lines))
    if byOption is not None:
        specs.append(WatchAllSpec(byOption.listeners, new.lines) if retuned and new is not None else byOption)
    if len(specs) == 2 and specs[0].lines == specs[1].lines:
        # (One filter: checked together, a ring through both found too.)
        specs = [WatchAllSpec(specs[0].listeners + specs[1].listeners, specs[0].lines)]
    for spec in specs:
        loop = watchAllLoop(lines, spec, shards, pins, hops)
        if loop is not None:
            return loop
    return None


# A step of a ring: from a line to the line whose output its device gets, and how (a feed's, or a watch-all's).
_Step = tuple[str, str, Union[str, ListenerSpec]]


def _pathBack(start: str, seen: Sequence[str], feeds: Mapping[str, Optional[tuple[str, str]]],
              dials: Mapping[str, tuple[Optional[int], ListenerSpec, ListenerSpec, list[str]]]) -> Optional[list[Any]]:
    """
    The way from a line watched (one of C{seen}) back to C{start}, each
    line's device leading to the next (L{_feeds}, or another watch-all):
    the first line watched, then each step; None if there is none.
    """
    came: dict[str, Optional[_Step]] = {}
    queue: deque[str] = deque()
    for name in seen:
        if name not in came:
            came[name] = None
            queue.append(name)
    while queue:
        name = queue.popleft()
        if name == start:
            steps: list[_Step] = []
            step = came[name]
            while step is not None:
                steps.append(step)
                step = came[step[0]]
            steps.reverse()
            return [steps[0][0] if steps else name, *steps]
        nexts: list[_Step] = []
        feed = feeds.get(name)
        if feed is not None:
            nexts.append((name, feed[0], feed[1]))
        if name in dials:
            nexts += [(name, other, dials[name][1]) for other in dials[name][3]]
        for step in nexts:
            if step[1] not in came:
                came[step[1]] = step
                queue.append(step[1])
    return None


def _step(line: str, other: str, how: Union[str, ListenerSpec], table: str = "watch-all") -> str:
    """A step of a ring, said: how C{line}'s device gets C{other}'s output (C{table}: whose listener C{how} is)."""
    if isinstance(how, ListenerSpec):
        gives = "watches" if table == "watch-all" else "gives"
        return f", line {quote(line)}'s device is the {table} listener {quote(how.text)}, which {gives} line {quote(other)}"
    if how == "pty":
        return f", line {quote(line)}'s device is the link of line {quote(other)}'s pty: listener"
    return f", line {quote(line)}'s device is line {quote(other)}'s listener {quote(how)}"
