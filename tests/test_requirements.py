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
