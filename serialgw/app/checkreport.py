"""
What C{twistd serialgw}'s options report: C{--check}'s summary (the
looks at every line's files and devices, their errors and warnings, the
exit status, which lines a --shard process serves), and a message about
a line of a --config file placed at that line's table (C{farm.toml:20:
line 'a': ...}), as --check and the start's refusals say it.  The base
of L{serialgw.app.tap.Options}.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from twisted.python import usage

from serialgw.config.shard import Shard
from serialgw.config.specs import quote
from serialgw.config.where import tablePlaces


class CheckReport(usage.Options):
    """--check's report and placed messages (the options are L{serialgw.app.tap.Options}'s)."""

    def report(self, out: Any, err: Any) -> int:
        """--check: what is wrong across lines and on disk; the exit status (0 or 2)."""
        from serialgw.app.check import LookHung, checkLines, lookedAtAside, passwordsSaid
        from serialgw.clients.watchall import matches

        # Every line of the file: the processes of --shard share one machine.
        lines = self["allLines"]
        shard: Optional[Shard] = self["shardSpec"]
        watchAll = self["watchAllSpec"].listeners if self["watchAllSpec"] is not None else ()
        byName = self["byNameSpec"].listeners if self.get("byNameSpec") is not None else ()
        try:
            # (On a thread of its own, each look at a path bounded: see check.LOOK_WAIT.)
            errors, warnings = lookedAtAside(lambda looking: checkLines(
                lines, self["statusSpec"], self["sshSpec"], watchAll, shards=shard.count if shard is not None else 0,
                looking=looking, byName=byName))
        except LookHung as e:
            err.write(f"serialgw: error: {self.placed(str(e))}\n")
            err.write(f"serialgw: {self['config'] or 'options'}: 1 error(s)\n")
            return 2
        names = ", ".join(line.name for line in lines[:5]) + (", ..." if len(lines) > 5 else "")
        spec = self["watchAllSpec"]
        if spec is not None and not any(matches(line.name, spec.lines) for line in lines):
            # As the start warns: its watchers would see nothing.
            warnings.append(f"watch-all: lines {' '.join(spec.lines)} match no line of the file ({names}): its "
                            "watchers would see nothing until a line that matches is added")
        named = self.get("byNameSpec")
        if named is not None and not any(matches(line.name, named.lines) for line in lines):
            # As the start warns (a line with enable = false is none): its clients would find no console.
            warnings.append(f"by-name: lines {' '.join(named.lines)} match no line of the file ({names}): its "
                            "clients would find no console until a line that matches is added")
        if shard is not None and not self["lines"]:
            warnings.append(f"--shard {shard}: none of the file's {len(lines)} line(s) is this process's: it serves "
                            "its status endpoint alone until a reload adds one")
        for warning in warnings:
            err.write(f"serialgw: warning: {self.placed(warning)}\n")
        for error in errors:
            err.write(f"serialgw: error: {self.placed(error)}\n")
        source = self["config"] or "options"
        if errors:
            err.write(f"serialgw: {source}: {len(errors)} error(s)\n")
            return 2
        listeners = sum(len(line.listeners) for line in self["lines"])
        extra = f", {len(warnings)} warning(s)" if warnings else ""
        share = f"shard {shard}: {len(self['lines'])} of " if shard is not None else ""
        out.write(f"serialgw: {source}: {share}{len(lines)} line(s), {listeners} listener(s): OK{extra}\n")
        said = passwordsSaid(self["sshSpec"])
        if said is not None:
            out.write(f"serialgw: {said}\n")
        if shard is not None:
            # Which process serves a line: grep for its name.
            out.write(f"serialgw: shard {shard} serves: {' '.join(line.name for line in self['lines']) or 'no line'}\n")
        return 0

    def placed(self, message: str) -> str:
        """
        A message about a line of a --config file (C{line 'a': ...}, found
        on disk after the file was read) begins with the file's line of the
        line's table: C{farm.toml:20: line 'a': ...}.
        """
        loaded = self.get("configFile")
        name = re.match(r"line ('(?:[^'\\]|\\.)*')[:,]", message)
        if loaded is None or name is None:
            return message
        if "places" not in self:
            self["places"] = {quote(n): place for n, place in tablePlaces(loaded.path, loaded.text).items()}
        place = self["places"].get(name.group(1))
        return f"{place}: {message}" if place else message
