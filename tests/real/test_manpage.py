"""
The manual page, serialgw(8), kept in step with the code: every option,
every configuration key and every listener option is in it; it renders
without warnings; pip installs it; --help points to it.  And README's
Layout section names every module.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from serialgw.app import tap
from serialgw.config.linetable import LINE_KEYS
from serialgw.config.listeners import LISTENER_OPTIONS, parseListener
from tests.realio import REPO

PAGE = os.path.join(REPO, "man", "serialgw.8")


def pageText() -> str:
    """The page's source with roff's escaped hyphens as plain ones."""
    with open(PAGE) as f:
        return f.read().replace("\\-", "-")


def optionNames() -> list[str]:
    """Every long option serialgw's Options takes, as --name."""
    options = tap.Options()
    names = [p[0] for p in options.optParameters] + [f[0] for f in options.optFlags]
    names += [name[len("opt_"):].replace("_", "-") for name in dir(options) if name.startswith("opt_")]
    return sorted({f"--{name}" for name in names if len(name) > 1})


def missing(words: list[str]) -> list[str]:
    text = pageText()
    before = {True: "", False: r"(?<![\w-])"}
    return [word for word in words
            if not re.search(before[word.startswith("-")] + re.escape(word) + r"(?![\w-])", text)]


class ManPageTests(SynchronousTestCase):
    def test_everyOption(self) -> None:
        """Every option of serialgw.app.tap.Options appears in man/serialgw.8."""
        names = optionNames()
        self.assertIn("--device", names)
        self.assertIn("--listen", names)
        absent = missing(names)
        self.assertEqual(absent, [], f"man/serialgw.8 does not mention these options of serialgw.app.tap.Options: "
                                     f"{', '.join(absent)}; add each to the OPTIONS section")

    def test_everyFileKey(self) -> None:
        """Every key a [lines.NAME] table takes appears in the page."""
        absent = missing(sorted(LINE_KEYS))
        self.assertEqual(absent, [], f"man/serialgw.8 does not mention these configuration keys: {', '.join(absent)}; "
                                     "add each to the CONFIGURATION FILE section")

    def test_everyListenerOption(self) -> None:
        """Every listener option (ro, allow=, policy=, escape=, ...) appears in the page."""
        words = sorted({re.split(r"[=|]", option.strip())[0] for option in LISTENER_OPTIONS.split(",")})
        absent = missing(words)
        self.assertEqual(absent, [], f"man/serialgw.8 does not mention these listener options: {', '.join(absent)}; "
                                     "add each to the LISTENERS section")

    def test_everyStatusField(self) -> None:
        """Every field of the status page's JSON (a line's, its settings', its clients') is named in README's table and in the page."""
        from twisted.internet.testing import StringTransport

        from serialgw.app.status import lineStatus
        from serialgw.clients.telnet import TelnetClient
        from serialgw.line.hub import Line
        from tests.fakes import RecordingDevice

        line = Line("rack1", RecordingDevice())
        TelnetClient(line, listener=parseListener("telnet+4444")).makeConnection(StringTransport())
        status = lineStatus(line)
        fields = {"serialgw", "lines", *status, *status["settings"], *status["modem_lines"], *status["clients"][0]}
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        table = readme[readme.index("| status field |"):]
        table = table[:table.index("\n\n")]
        self.assertEqual(sorted(f for f in fields if f"`{f}`" not in table), [],
                         "README's status field table does not name these fields")
        self.assertEqual(missing(sorted(fields)), [], "man/serialgw.8 does not name these status fields")

    def test_grammarExamplesAndSignals(self) -> None:
        """The page shows the listener forms the issue names, and the signals."""
        text = pageText()
        for needle in ("udp::4555@4556", "mon:telnet::4444,server,nowait", "pty:", "ro", "allow=", "escape=",
                       "SIGHUP", "SIGUSR1", "SIGTERM", ".SH FILES", ".SH SESSIONS AND THE ESCAPE MENU"):
            self.assertIn(needle, text)

    def test_renders(self) -> None:
        """groff renders the page without a warning."""
        groff = shutil.which("groff")
        if groff is None:
            raise SkipTest("groff not installed")
        result = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", PAGE], capture_output=True, timeout=30)
        self.assertEqual((result.returncode, result.stderr), (0, b""))

    def test_installed(self) -> None:
        """pip install . puts the page in share/man/man8 (setup.cfg's data_files)."""
        from setuptools.config.setupcfg import read_configuration

        options = read_configuration(os.path.join(REPO, "setup.cfg"))["options"]
        self.assertIn(("share/man/man8", ["man/serialgw.8"]), [(d, list(f)) for d, f in options["data_files"]])

    def test_docsInstalled(self) -> None:
        """pip install . puts README, LICENSE, every file of examples/ and contrib/ in share/doc/serialgw (an error names examples/ser2net.toml; the README's systemd set-up copies contrib/ units): none left out, none named twice."""
        from setuptools.config.setupcfg import read_configuration

        options = read_configuration(os.path.join(REPO, "setup.cfg"))["options"]
        installed = sorted((d, f) for d, files in options["data_files"] for f in files)
        shipped = []
        for top in ("examples", "contrib"):
            for folder, _, files in os.walk(os.path.join(REPO, top)):
                for name in files:
                    path = os.path.relpath(os.path.join(folder, name), REPO)
                    shipped.append((os.path.join("share/doc/serialgw", os.path.dirname(path)), path))
        shipped += [("share/doc/serialgw", "LICENSE"), ("share/doc/serialgw", "README.md"),
                    ("share/man/man8", "man/serialgw.8")]
        self.assertIn(("share/doc/serialgw/examples", "examples/ser2net.toml"), shipped)
        self.assertIn(("share/doc/serialgw/contrib", "contrib/serialgw@.service"), shipped)
        self.assertEqual(installed, sorted(shipped))

    def test_helpPointsToPage(self) -> None:
        """twistd serialgw --help has the listener grammar in brief and points to the page."""
        text = str(tap.Options())
        for needle in ("[PROTOCOL[,OPTION...]+]ENDPOINT", "udp::4555@4556", "mon:telnet::4444,server,nowait",
                       "systemd:domain=INET6:index=0", "man 8 serialgw"):
            self.assertIn(needle, text)


class HelpPageTests(SynchronousTestCase):
    def test_helpSaysWhereThePageIs(self) -> None:
        """--help names the page pip installed in this environment (man -l PATH): man 8 serialgw finds it only with the environment's bin on PATH, and the README's commands run .venv/bin/twistd."""
        import sys

        prefix = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(prefix, "share", "man", "man8"))
        page = os.path.join(prefix, "share", "man", "man8", "serialgw.8")
        self.patch(sys, "prefix", prefix)
        self.assertNotIn("man -l", str(tap.Options()))  # (not installed there)
        open(page, "w").close()
        self.assertIn(f"man 8 serialgw (or man -l {page})", str(tap.Options()))


class ReadmeLayoutTests(SynchronousTestCase):
    def test_layoutNamesEveryModule(self) -> None:
        """README's Layout section names every serialgw module under its package's heading, and every test helper (a tests/ module that is not test_*)."""
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
        sections = re.split(r"^    (serialgw/\w+/|tests/)", layout, flags=re.M)
        named: dict[str, set[str]] = {"": set(re.findall(r"[\w/-]+\.py\b", sections[0]))}
        for directory, text in zip(sections[1::2], sections[2::2], strict=True):
            named.setdefault(directory, set()).update(re.findall(r"[\w/-]+\.py\b", text))
        left = []
        for root, _, files in os.walk(os.path.join(REPO, "serialgw")):
            directory = os.path.relpath(root, REPO) + "/"
            for n in files:
                if n.endswith(".py") and n != "__init__.py":
                    full = directory + n
                    if full not in named[""] and n not in named.get(directory, set()):
                        left.append(full)
        helpers = [n for n in os.listdir(os.path.join(REPO, "tests")) if n.endswith(".py") and not n.startswith("test_")]
        left += [f"tests/{n}" for n in helpers if n != "__init__.py" and n not in named.get("tests/", set())]
        self.assertEqual(sorted(left), [])

    def test_layoutNamesNoModuleGone(self) -> None:
        """Each .py file README's Layout section names is there: in its heading's directory, or as a path from the repository, serialgw/, tests/ or bench/compare/ (a module split away or renamed was still listed)."""
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
        sections = re.split(r"^    (serialgw/\w+/|tests/)", layout, flags=re.M)
        gone = []
        for directory, text in zip([""] + sections[1::2], sections[::2], strict=True):
            for name in re.findall(r"[\w/-]+\.py\b", text):
                places = [directory + name, name, "serialgw/" + name, "tests/" + name, "bench/compare/" + name]
                if not any(os.path.isfile(os.path.join(REPO, place)) for place in places):
                    gone.append(f"{directory}{name}")
        self.assertEqual(gone, [])

    def test_debianPackagesAsCIInstallsThem(self) -> None:
        """README's list of the Debian packages the tests need names each one .ci/run installs (expect, cpio, systemd were left out)."""
        with open(os.path.join(REPO, ".ci", "run")) as f:
            packages = re.search(r"^packages=\(([^)]*)\)", f.read(), re.M)
        assert packages is not None
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        listed = readme[readme.index("(Debian packages: "):readme.index("Python packages;")]
        self.assertEqual([p for p in packages.group(1).split() if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])",
                                                                                  listed)], [])
