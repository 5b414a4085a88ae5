"""
The lowest releases CI runs the suite on (.ci/oldest.txt, the second
environment of .ci/run) are the floors setup.cfg gives, so that a floor
raised or lowered in one place cannot leave CI testing something else.
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from tests.realio import REPO


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _release(text: str) -> tuple[int, ...]:
    numbers = [int(n) for n in text.split(".")]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


class OldestTests(SynchronousTestCase):
    def test_pinsAreTheFloors(self) -> None:
        """Every install_requires floor is pinned at exactly that release in .ci/oldest.txt; only setuptools besides."""
        from setuptools.config.setupcfg import read_configuration

        floors = {}
        for requirement in read_configuration(os.path.join(REPO, "setup.cfg"))["options"]["install_requires"]:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z,]+\])?\s*>=\s*([0-9.]+)", requirement.strip())
            self.assertIsNotNone(match, f"no floor in {requirement!r}")
            assert match is not None
            floors[_name(match.group(1))] = _release(match.group(3))
        pins = {}
        with open(os.path.join(REPO, ".ci", "oldest.txt")) as f:
            for line in f:
                line = line.split("#")[0].strip()
                if line:
                    name, _, version = line.partition("==")
                    pins[_name(name)] = _release(version)
        self.assertIn("twisted", floors)
        self.assertLess(pins.pop("setuptools"), (81,))  # it still has pkg_resources
        self.assertEqual(pins, floors)

    def test_importedDistributionsHaveFloors(self) -> None:
        """Every distribution whose modules serialgw imports has a floor in install_requires (cryptography and pyOpenSSL came with Twisted's tls extra at any release: with cryptography 38 every TLS listener was refused, 'holds no PEM certificate'), but zope.interface, which Twisted's floor brings."""
        import ast
        import sys

        from setuptools.config.setupcfg import read_configuration

        declared = {_name(re.split(r"[\[\s>=]", requirement.strip())[0])
                    for requirement in read_configuration(os.path.join(REPO, "setup.cfg"))["options"]["install_requires"]}
        modules: set[str] = set()
        for folder in ("serialgw", os.path.join("twisted", "plugins")):
            for root, _, files in os.walk(os.path.join(REPO, folder)):
                for f in files:
                    if f.endswith(".py"):
                        with open(os.path.join(root, f)) as source:
                            tree = ast.parse(source.read())
                        for node in ast.walk(tree):
                            if isinstance(node, ast.Import):
                                modules.update(alias.name for alias in node.names)
                            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                                modules.add(node.module)
        third = {m for m in modules if m.split(".")[0] not in set(sys.stdlib_module_names) | {"serialgw", "__future__"}
                 and not m.startswith("twisted.plugins")}
        self.assertEqual(self.distributionsOf({"zope.interface"}), {"zope-interface"})
        self.assertEqual(sorted(self.distributionsOf(third) - declared), ["zope-interface"])

    def distributionsOf(self, modules: set[str]) -> set[str]:
        """The distributions the modules (dotted names) are installed from, by the file each is loaded from."""
        import importlib
        import importlib.metadata

        owners = importlib.metadata.packages_distributions()
        found = set()
        for module in modules:
            origin = os.path.realpath(importlib.import_module(module).__file__ or "")
            for name in owners.get(module.split(".")[0], []):
                files = importlib.metadata.distribution(name).files or []
                if any(os.path.realpath(str(f.locate())) == origin for f in files):
                    found.add(_name(name))
        return found
