"""
examples/: every configuration file and every twistd command in it passes
twistd serialgw --check; the front ends and the VMs they pair with agree
on ports.
"""

from __future__ import annotations

import glob
import os
import re
import shlex

from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.startchecks import listenerKey
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from tests.config.test_check import checked
from tests.realio import REPO

EXAMPLES = os.path.join(REPO, "examples")


def commands() -> list[tuple[str, list[str]]]:
    """Every `twistd ... serialgw ARGS` line in examples/, as (file, ARGS)."""
    found = []
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "**", "*"), recursive=True)):
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                text = line.strip().lstrip("#").strip()
                if text.startswith("twistd ") and " serialgw" in text:
                    words = shlex.split(text)
                    found.append((path, words[words.index("serialgw") + 1:]))
    return found


class ExampleTests(SynchronousTestCase):
    def test_everyFile(self) -> None:
        """Every .toml file in examples/ passes --check: exit 0, nothing but warnings (devices absent here)."""
        paths = sorted(glob.glob(os.path.join(EXAMPLES, "**", "*.toml"), recursive=True))
        self.assertTrue({"farm.toml", "proxmox.toml", "conserver.toml"} <= {os.path.basename(p) for p in paths})
        for path in paths:
            code, out, err = checked("--config", path)
            self.assertEqual(code, 0, f"{path}: {err}")
            self.assertTrue(out.startswith(f"serialgw: {path}: "), out)
            self.assertEqual([line for line in err.splitlines() if not line.startswith("serialgw: warning: ")], [],
                             path)

    def test_everyCommand(self) -> None:
        """Every twistd serialgw command written in examples/ passes --check with its own options."""
        found = commands()
        self.assertGreaterEqual(len(found), 3, found)
        for path, args in found:
            if "--config" in args:
                index = args.index("--config") + 1
                name = os.path.basename(args[index])
                args[index] = os.path.join(EXAMPLES, name if os.path.exists(os.path.join(EXAMPLES, name))
                                           else "farm.toml")
            args = [a for a in args if a != "--check"]
            code, _, err = checked(*args)
            self.assertEqual(code, 0, f"{path}: {args}: {err}")

    def test_conserverPorts(self) -> None:
        """conserver.cf's consoles are on exactly the ports conserver.toml's lines listen on."""
        with open(os.path.join(EXAMPLES, "conserver.cf")) as f:
            consoles = dict(re.findall(r"console (\S+)\s*\{[^}]*port (\d+);", f.read()))
        lines = loadConfig(os.path.join(EXAMPLES, "conserver.toml"))
        listening = {line.name: listenerKey(line.listeners[0]) for line in lines}
        self.assertEqual(listening, {name: ("tcp", "127.0.0.1", port) for name, port in consoles.items()})
        self.assertTrue(all(not line.listeners[0].rfc2217 for line in lines))

    def test_proxmoxPairs(self) -> None:
        """Each VM's -serial string pairs with its serialgw line: telnet host/port, the UDP ports crossed."""
        with open(os.path.join(EXAMPLES, "proxmox.toml")) as f:
            serial = [parseListener(s) for s in re.findall(r"-serial (\S+)", f.read()) if not s.startswith("chardev:")]
        lines = {line.name: line for line in loadConfig(os.path.join(EXAMPLES, "proxmox.toml"))}
        telnet = next(s for s in serial if s.protocol.value == "telnet")
        self.assertEqual((lines["vm101"].device.kind, lines["vm101"].device.host, lines["vm101"].device.port),
                         ("telnet", telnet.host, telnet.port))
        qemu = next(s.udp for s in serial if s.udp is not None)
        ours = next(s.udp for s in lines["vm102-board"].listeners if s.udp is not None)
        assert qemu is not None and ours is not None
        self.assertEqual((qemu.remotePort, qemu.sourcePort), (ours.sourcePort, ours.remotePort))
        self.assertEqual((ours.remotePort, ours.sourcePort), (4555, 4556))

    def test_logrotateLeavesTheNewFileToTheGateway(self) -> None:
        """
        The logrotate stanza makes no new file (nocreate): the shipped unit's
        DynamicUser could not reopen one logrotate made as root, and would
        write on to the renamed file, later compressed.
        """
        with open(os.path.join(EXAMPLES, "logrotate.d", "serialgw")) as f:
            directives = [line.split()[0] for line in f if line.strip() and not line.lstrip().startswith("#")]
        self.assertIn("nocreate", directives)
        self.assertNotIn("create", directives)
        self.assertNotIn("copytruncate", directives)

    def test_logrotateSignalsEveryProcess(self) -> None:
        """The stanza's postrotate signals the one-process unit and every process of the template (--shard): logs of serialgw@ processes were never reopened."""
        with open(os.path.join(EXAMPLES, "logrotate.d", "serialgw")) as f:
            text = f.read()
        for unit in ("serialgw.service", "'serialgw@*.service'"):
            self.assertIn(f"systemctl kill --kill-whom=main --signal=USR1 {unit} 2>/dev/null || true", text)
