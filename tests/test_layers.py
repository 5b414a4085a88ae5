"""
The import rules between layers (README, Layout): each module of a layer is
imported alone in a fresh interpreter and the serialgw modules that got
loaded with it are checked against what that layer may use.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import os
import subprocess
import sys
from typing import Optional

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

# Owners named under TYPE_CHECKING today, each to go (see test_noOwnerNamedUnderTypeChecking). config.specs'
# is no owner but a value's field (LineConfig.log), whose module takes ConfigError and quote from specs.
KNOWN_OWNERS_NAMED = ["serialgw.config.specs:23 names serialgw.config.logspec under TYPE_CHECKING, which imports it"]

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



# Every import written in a serialgw module, at its top, in a function or under TYPE_CHECKING (the fresh-interpreter
# tests above see only what an import loads at once): which layers each may name besides its own (README, Layout:
# app -> clients -> line -> interfaces <- devices; wire, config and logflood below them all).
MAY_NAME = {
    "serialgw.config": set(),
    "serialgw.logflood": set(),
    "serialgw.hashpw": {"serialgw.config"},
    "serialgw.wire": {"serialgw.config", "serialgw.logflood"},
    "serialgw.interfaces": {"serialgw.config"},
    "serialgw.line": {"serialgw.config", "serialgw.interfaces", "serialgw.logflood"},
    "serialgw.devices": {"serialgw.config", "serialgw.interfaces", "serialgw.logflood", "serialgw.wire"},
    "serialgw.clients": {"serialgw.config", "serialgw.interfaces", "serialgw.line", "serialgw.logflood",
                         "serialgw.wire"},
    "serialgw.app": {"serialgw", "serialgw.clients", "serialgw.config", "serialgw.devices", "serialgw.interfaces",
                     "serialgw.line", "serialgw.logflood", "serialgw.wire"},
}
# Single modules of another layer a module may name besides (README: a client pty's pty helpers, in
# clients/ptylink.py and clients/ptytermios.py only).
MAY_NAME_ALSO = {"serialgw.clients.ptylink": CLIENTS_DEVICES, "serialgw.clients.ptytermios": CLIENTS_DEVICES}


def writtenImports(path: str, name: str, typeChecking: Optional[bool] = None) -> list[tuple[int, str]]:
    """
    The serialgw modules (or packages) a module's source names in its imports,
    each with its line: relative imports resolved, C{from serialgw.devices import
    termio} read as the module serialgw.devices.termio.  With C{typeChecking}
    True only those under C{if TYPE_CHECKING:}, with False only the others
    (those run: at the top or in a function).
    """
    with open(path) as source:
        tree = ast.parse(source.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    underTypeChecking = {id(node) for block in ast.walk(tree)
                         if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                         for top in block.body for node in ast.walk(top)}
    found = []
    for node in ast.walk(tree):
        if typeChecking is not None and (id(node) in underTypeChecking) != typeChecking:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                isModule = os.path.exists(os.path.join(REPO, *sub.split(".")) + ".py") or os.path.isdir(
                    os.path.join(REPO, *sub.split(".")))
                found.append((node.lineno, sub if isModule else base))
    return [(line, m) for line, m in found if m == "serialgw" or m.startswith("serialgw.")]


def allowedName(importer: str, imported: str) -> bool:
    """Whether module C{importer} may name C{imported} (see MAY_NAME, MAY_NAME_ALSO)."""
    own, other = layer(importer), layer(imported)
    return (own == other or imported == "serialgw" or other in MAY_NAME[own]
            or imported in MAY_NAME_ALSO.get(importer, ()))


class ImportDirectionTests(SynchronousTestCase):
    def test_importsWrittenPointDown(self) -> None:
        """
        No serialgw module names a layer above it (or beside it, where the
        README has no arrow) in any import it writes, at its top, in a function
        or under TYPE_CHECKING: the layers' directions as README's Layout draws them.
        """
        wrong = []
        for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
            for f in sorted(files):
                if f.endswith(".py"):
                    path = os.path.join(root, f)
                    name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                    wrong += [f"{name}:{line} imports {imported}" for line, imported in writtenImports(path, name)
                              if name != "serialgw" and not allowedName(name, imported)]
        self.assertEqual(sorted(wrong), [])

    def test_everyLayerHasItsRule(self) -> None:
        """Each serialgw package and top-level module has its entry in MAY_NAME (a new one is placed on purpose)."""
        here = {f"serialgw.{n.removesuffix('.py')}" for n in os.listdir(os.path.join(REPO, "serialgw"))
                if (n.endswith(".py") and n != "__init__.py") or os.path.isdir(os.path.join(REPO, "serialgw", n, ""))
                and os.path.exists(os.path.join(REPO, "serialgw", n, "__init__.py"))}
        self.assertEqual(sorted(here), sorted(MAY_NAME))

    def test_noOwnerNamedUnderTypeChecking(self) -> None:
        """
        No serialgw module names under TYPE_CHECKING a module that imports it
        (at once or through others, at the top or in a function): the class of
        what owns it (applying's GatewayService, linetap's WatchAllClient), an
        import cycle hidden from the run.  What a part uses of its owner is
        declared beside the part (an interface, a typing.Protocol) and the
        owner meets it.
        """
        names = {}
        for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
            for f in sorted(files):
                if f.endswith(".py"):
                    path = os.path.join(root, f)
                    names[os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")] = path
        runs = {name: {m for _, m in writtenImports(path, name, typeChecking=False)} for name, path in names.items()}

        def reaches(start: str, goal: str) -> bool:
            seen, todo = {start}, [start]
            while todo:
                for m in runs.get(todo.pop(), ()):
                    if m == goal:
                        return True
                    if m not in seen:
                        seen.add(m)
                        todo.append(m)
            return False

        found = [f"{name}:{line} names {imported} under TYPE_CHECKING, which imports it"
                 for name, path in sorted(names.items())
                 for line, imported in writtenImports(path, name, typeChecking=True) if reaches(imported, name)]
        self.maxDiff = None
        self.assertEqual(found, KNOWN_OWNERS_NAMED)

    def test_aWrongImportIsSeen(self) -> None:
        """The check sees an upward import written in a function and under TYPE_CHECKING, and a relative one."""
        self.assertFalse(allowedName("serialgw.devices.remote", "serialgw.clients.session"))
        self.assertFalse(allowedName("serialgw.line.hub", "serialgw.devices.termio"))
        self.assertFalse(allowedName("serialgw.clients.raw", "serialgw.devices.ports"))
        self.assertFalse(allowedName("serialgw.clients.raw", "serialgw.devices.termio"))
        self.assertTrue(allowedName("serialgw.clients.ptylink", "serialgw.devices.termio"))
        self.assertFalse(allowedName("serialgw.config.specs", "serialgw.logflood"))
        source = self.mktemp()
        os.makedirs(source)
        path = os.path.join(source, "probe.py")
        with open(path, "w") as f:
            f.write("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from serialgw.app.service import X\n"
                    "def f():\n    import serialgw.clients.raw\n    from ..clients import session\n")
        self.assertEqual(writtenImports(path, "serialgw.devices.probe"),
                         [(3, "serialgw.app.service"), (5, "serialgw.clients.raw"), (6, "serialgw.clients.session")])
        self.assertEqual(writtenImports(path, "serialgw.devices.probe", typeChecking=True), [(3, "serialgw.app.service")])
        self.assertEqual(writtenImports(path, "serialgw.devices.probe", typeChecking=False),
                         [(5, "serialgw.clients.raw"), (6, "serialgw.clients.session")])


@functools.cache
def definedNames(path: str) -> tuple[set[str], set[str]]:
    """
    The names a module's source defines at its top (functions, classes,
    assignments; also inside a top-level if or try), and those it only
    imports there.
    """
    with open(path) as source:
        tree = ast.parse(source.read(), path)
    defined: set[str] = set()
    imported: set[str] = set()
    for top in tree.body:
        for node in ast.walk(top) if isinstance(top, (ast.If, ast.Try)) else [top]:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imported.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
    return defined, imported - defined


def secondHandImports(path: str, name: str) -> list[str]:
    """
    Each C{from serialgw.X import NAME} in a source (at its top, in a
    function, under TYPE_CHECKING) where X only imports NAME from elsewhere:
    NAME's home is another module, and X would break the importer by no
    longer needing it.
    """
    with open(path) as source:
        tree = ast.parse(source.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
        if base != "serialgw" and not base.startswith("serialgw."):
            continue
        where = os.path.join(REPO, *base.split("."))
        home = os.path.join(where, "__init__.py") if os.path.isdir(where) else where + ".py"
        _, onlyImported = definedNames(home)
        for alias in node.names:
            isModule = os.path.exists(os.path.join(where, alias.name + ".py")) or os.path.isdir(
                os.path.join(where, alias.name))
            if alias.name in onlyImported and not isModule:
                found.append(f"{name}:{node.lineno} takes {alias.name} from {base}, which only imports it")
    return found


class SecondHandImportTests(SynchronousTestCase):
    def test_namesImportedFromTheirHome(self) -> None:
        """
        No module of serialgw, tests or twisted/plugins takes a name from a
        serialgw module that only imports it (Role from line.hub, a telnet
        code from wire.telnet, CLOSE_GRACE from clients.session): each name
        comes from the module that defines it, so that a module's imports
        are its own business.
        """
        found = []
        for top in ("serialgw", "tests", "twisted"):
            for root, dirs, files in os.walk(os.path.join(REPO, top)):
                dirs[:] = [d for d in dirs if not d.startswith("_trial_temp")]
                for f in sorted(files):
                    if f.endswith(".py"):
                        path = os.path.join(root, f)
                        name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                        found += secondHandImports(path, name)
        self.assertEqual(sorted(found), [])

    def test_aSecondHandImportIsSeen(self) -> None:
        """The check sees a name taken from a module that only imports it, at the top or in a function, absolute or
        relative; a name the module defines, and a submodule, pass."""
        source = self.mktemp()
        os.makedirs(source)
        path = os.path.join(source, "probe.py")
        with open(path, "w") as f:
            f.write("from serialgw.line.hub import Line, Role\nfrom serialgw.devices import termio\n"
                    "def f():\n    from ..wire.telnet import IAC, TelnetProtocol\n")
        self.assertEqual(secondHandImports(path, "serialgw.clients.probe"),
                         ["serialgw.clients.probe:1 takes Role from serialgw.line.hub, which only imports it",
                          "serialgw.clients.probe:4 takes IAC from serialgw.wire.telnet, which only imports it"])


def typeCheckingStubs() -> dict[tuple[str, str], list[ast.FunctionDef]]:
    """
    The methods a class of serialgw declares in an C{if TYPE_CHECKING:} block
    of its body (a part of a class made of parts, naming what the other parts
    define), by (module, class).
    """
    stubs: dict[tuple[str, str], list[ast.FunctionDef]] = {}
    for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(root, f)
                name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                with open(path) as source:
                    tree = ast.parse(source.read(), path)
                for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
                    for block in cls.body:
                        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING":
                            stubs.setdefault((name, cls.name), []).extend(
                                node for node in block.body if isinstance(node, ast.FunctionDef))
    return stubs


def subclasses(cls: type) -> set[type]:
    """Every class made with C{cls} among its bases, at any depth."""
    found: set[type] = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


class PartStubTests(SynchronousTestCase):
    """
    A class made of parts (SerialDevice of DeviceControls, LossAndReturn,
    RestAndWake, ...; RemoteDevice of DialAndLink; TelnetProtocol of
    TelnetOptions) has each part declare what it uses of the others under
    TYPE_CHECKING: for mypy alone, since at run time a stub in a part would
    come before the real method in the class's MRO and shadow it, and the
    part cannot name the class it is part of (the class imports its parts:
    a cycle).  So nothing but this test holds a stub to the method it stands for.
    """

    def test_stubsStandForRealMethods(self) -> None:
        """
        Each method a part declares under TYPE_CHECKING is, in every class made
        with that part (devices, wire and clients imported) that is not a part
        itself, a method another class defines, with the stub's parameters (a
        property for a property).
        """
        import importlib

        for package in ("devices", "wire", "clients"):
            for name in modules(package):
                importlib.import_module(name)
        wrong = []
        stubs = typeCheckingStubs()
        self.assertIn(("serialgw.devices.controls", "DeviceControls"), stubs)
        # A class made with a part that is a part itself (SessionEnd, of InputReading) is checked in the classes
        # made with it (Session and its kinds).
        parts = {getattr(importlib.import_module(moduleName), className) for moduleName, className in stubs}
        for (moduleName, className), declared in sorted(stubs.items()):
            part = getattr(importlib.import_module(moduleName), className)
            made = subclasses(part)
            if not made - parts:
                wrong.append(f"{moduleName}.{className}: no class is made with it")
            for cls in sorted(made - parts, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
                for stub in declared:
                    where = f"{moduleName}.{className}.{stub.name} in {cls.__module__}.{cls.__qualname__}"
                    real = inspect.getattr_static(cls, stub.name, None)
                    owner = next((c for c in cls.__mro__ if stub.name in vars(c)), None)
                    isProperty = any(ast.unparse(d) == "property" for d in stub.decorator_list)
                    if real is None or owner is part:
                        wrong.append(f"{where}: not defined")
                    elif isProperty != isinstance(real, property):
                        wrong.append(f"{where}: {'not ' if isProperty else ''}a property")
                    elif not isProperty:
                        stubParameters = [a.arg for a in stub.args.posonlyargs + stub.args.args + stub.args.kwonlyargs]
                        stubParameters += [f"*{stub.args.vararg.arg}"] if stub.args.vararg else []
                        stubParameters += [f"**{stub.args.kwarg.arg}"] if stub.args.kwarg else []
                        realParameters = [("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD
                                           else "") + p.name for p in inspect.signature(real).parameters.values()]
                        if stubParameters != realParameters:
                            wrong.append(f"{where}: {stubParameters} stands for {realParameters}")
        self.assertEqual(wrong, [])

    def test_noRunTimeStandIns(self) -> None:
        """
        No part defines, at run time, a method that only raises
        NotImplementedError where a class made with it has the real one
        (InputReading's notice, SessionEnd's _writeHeldLog, TelnetOutput's
        localEnabled): such a stand-in is right only while the real one comes
        first in the MRO; a part declares what it uses under TYPE_CHECKING.
        """
        import importlib

        for package in ("devices", "wire", "clients", "app"):
            for name in modules(package):
                importlib.import_module(name)
        found = []
        for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                path = os.path.join(root, f)
                name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                with open(path) as source:
                    tree = ast.parse(source.read(), path)
                for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
                    defined = getattr(importlib.import_module(name), cls.name)
                    made = subclasses(defined) if isinstance(defined, type) else set()
                    for method in (node for node in cls.body if isinstance(node, ast.FunctionDef)):
                        body = [n for n in method.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
                        raises = (len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None
                                  and ast.unparse(body[0].exc).removesuffix("()") == "NotImplementedError")
                        if raises and any(method.name in vars(c) for c in made):
                            found.append(f"{name}.{cls.name}.{method.name}")
        self.assertEqual(sorted(found), [])


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
