"""
A test case that writes a configuration file and reads it: what the key
tests of tests.config share.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.specs import ConfigError, LineConfig
from tests.realio import writeTemp


class ConfigFileCase(SynchronousTestCase):
    """L{load} a file's text into its lines, or say why it is L{refused} (its path shown as FILE)."""

    def load(self, text: str) -> list[LineConfig]:
        return loadConfig(writeTemp(self, text))

    def refused(self, text: str) -> str:
        path = writeTemp(self, text)
        return str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
