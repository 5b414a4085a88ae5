"""
Twistd's private endpoint attributes (C{_address}, C{_port}, ...) are read
in one module, serialgw.config.endpointstrings, as its docstring says: a
Twisted release that renames one then breaks one place, its tests first.
"""

from __future__ import annotations

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.endpointstrings import unixEndpointFor, unixServerPath

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "serialgw")
PRIVATE = {"_port", "_interface", "_address", "_backlog", "_mode", "_wantPID"}


def readers() -> list[str]:
    """Where in serialgw a private endpoint attribute is read: FILE:LINE, of another object than self."""
    found = []
    for directory, _, names in os.walk(PACKAGE):
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                named = None
                if isinstance(node, ast.Attribute) and node.attr in PRIVATE and not (
                        isinstance(node.value, ast.Name) and node.value.id == "self"):
                    named = node.attr
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                      and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in PRIVATE):
                    named = node.args[1].value
                if named is not None:
                    found.append(f"{os.path.relpath(path, os.path.dirname(PACKAGE))}:{getattr(node, 'lineno', 0)}")
    return found


class OnePlaceTests(SynchronousTestCase):
    def test_onlyEndpointStrings(self) -> None:
        """Only serialgw/config/endpointstrings.py reads them (app/ownlisteners.py read _address, config/paths.py _mode, _backlog and _wantPID, though its docstring said it was the one place)."""
        self.assertEqual([place for place in readers() if not place.startswith("serialgw/config/endpointstrings.py:")],
                         [])

    def test_unixServerPath(self) -> None:
        """The path a unix: server string binds, as Twisted reads it (escapes too); None for another kind or a string Twisted does not read."""
        self.assertEqual([unixServerPath(text) for text in ("unix:/run/s.sock", "unix:address=/run/a\\:b:mode=600",
                                                            "tcp:0", "unix:", "nonsense:x", "")],
                         ["/run/s.sock", "/run/a:b", None, None, None, None])

    def test_unixEndpointFor(self) -> None:
        """A unix: server string for another path with the original's mode, backlog and lock file."""
        self.assertEqual(unixEndpointFor("unix:/a:mode=640:backlog=7:lockfile=0", "/run/b:c=d"),
                         "unix:address=/run/b\\:c\\=d:mode=640:backlog=7:lockfile=0")
