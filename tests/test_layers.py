"""
The import rules between layers (README, Layout): each module of a layer is
imported alone in a fresh interpreter and the serialgw modules that got
loaded with it are checked against what that layer may use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each package may load besides itself (serialgw/__init__ always comes).
ALLOWED = {
    "config": {"serialgw"},
    "wire": {"serialgw", "serialgw.config", "serialgw.logflood"},
    "line": {"serialgw", "serialgw.config", "serialgw.interfaces", "serialgw.logflood"},
    "devices": {"serialgw", "serialgw.config", "serialgw.interfaces", "serialgw.logflood", "serialgw.wire"},
}

# What clients may load besides itself (README's arrows: clients -> line, wire, interfaces; config and
# logflood below all), and of devices only the pty helpers a client pty uses (clients/ptylink.py, ptytermios.py).
CLIENTS_MAY = {"serialgw", "serialgw.clients", "serialgw.config", "serialgw.interfaces", "serialgw.line",
               "serialgw.logflood", "serialgw.wire"}
CLIENTS_DEVICES = {"serialgw.devices", "serialgw.devices.links", "serialgw.devices.ptywatch", "serialgw.devices.termio"}

# Imports that break the rules today, each to go (issue 14); the test fails
# when one goes and stays listed here as well as when a new one comes.
KNOWN: dict[str, set[str]] = {}

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m == "serialgw" or m.startswith("serialgw."))))
"""


def modules(package: str) -> list[str]:
    """The modules of one serialgw package, dotted."""
    directory = os.path.join(REPO, "serialgw", package)
    names = [f"serialgw.{package}"]
    names += [f"serialgw.{package}.{n[:-3]}" for n in sorted(os.listdir(directory))
              if n.endswith(".py") and n != "__init__.py"]
    return names


def layer(name: str) -> str:
    """serialgw.devices.remote -> serialgw.devices; serialgw.interfaces stays."""
    parts = name.split(".")
    return ".".join(parts[:2])


class LayerTests(SynchronousTestCase):
    def loaded(self, names: list[str], whole: bool = False) -> dict[str, set[str]]:
        """Import each module in its own fresh interpreter (all at once); the layers of the serialgw modules that
        came with it (with C{whole}, those modules' names)."""
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        running = {n: subprocess.Popen([sys.executable, "-c", _PROBE, n], cwd=REPO, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for n in names}
        result = {}
        for n, process in running.items():
            out, err = process.communicate(timeout=120)
            self.assertEqual(process.returncode, 0, f"import {n}: {err.decode()}")
            result[n] = {m if whole else layer(m) for m in json.loads(out)}
        return result

    def test_layersImportOnlyWhatTheyMay(self) -> None:
        """config, wire, line and devices modules, each imported alone, load only the layers the README allows."""
        names = [n for package in ALLOWED for n in modules(package)]
        seen = self.loaded(names)
        broken = {}
        for n, layers in seen.items():
            package = n.split(".")[1]
            extra = layers - ALLOWED[package] - {f"serialgw.{package}"}
            if extra:
                broken[n] = extra
        self.assertEqual(broken, KNOWN)

    def test_clientsLoadNoApp(self) -> None:
        """clients modules, each imported alone, load no app module, and of devices only a client pty's helpers."""
        seen = self.loaded(modules("clients"), whole=True)
        broken = {n: sorted(m for m in loaded if layer(m) not in CLIENTS_MAY and m not in CLIENTS_DEVICES)
                  for n, loaded in seen.items()}
        self.assertEqual({n: m for n, m in broken.items() if m}, {})

    def test_runningGatewayLoadsNoCheck(self) -> None:
        """twistd's makeService and the service it makes load no --check module (what the start and a reload
        refuse alike is app/startchecks.py): app.check is imported by --check alone."""
        seen = self.loaded(["serialgw.app.tap", "serialgw.app.process"], whole=True)
        self.assertEqual({n: sorted(m for m in loaded if m == "serialgw.app.check") for n, loaded in seen.items()},
                         {"serialgw.app.tap": [], "serialgw.app.process": []})

    def test_noPyserialOutsideDevices(self) -> None:
        """pyserial is imported only by serialgw.devices (config's maps are its own)."""
        offenders = []
        for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
            for f in files:
                path = os.path.join(root, f)
                if f.endswith(".py") and os.sep + "devices" + os.sep not in path:
                    with open(path) as source:
                        text = source.read()
                    if "import serial\n" in text or "from serial " in text or "from serial." in text:
                        offenders.append(os.path.relpath(path, REPO))
        self.assertEqual(sorted(offenders), KNOWN_PYSERIAL)


# pyserial importers outside devices today, each to go (issue 14).
KNOWN_PYSERIAL: list[str] = []


# Modules over the limit today, each to be split (issue 14): none left.
KNOWN_LONG: list[str] = []

MAX_LINES = 600


class SizeTests(SynchronousTestCase):
    def test_noModuleOverTheLimit(self) -> None:
        """No serialgw module is longer than MAX_LINES lines: a module that grows past it splits."""
        long = []
        for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(root, f)
                    with open(path) as source:
                        if sum(1 for _ in source) > MAX_LINES:
                            long.append(os.path.relpath(path, REPO))
        self.assertEqual(sorted(long), KNOWN_LONG)
