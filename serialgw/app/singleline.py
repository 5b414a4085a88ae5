"""
The one line C{twistd serialgw} serves when no C{--config} is given, from
its options: the device, the serial settings (C{-s} and the single
options over it), the listeners (C{--port}, C{--listen}), the rest of the
line's options; C{--ssh} and its key files as the people that may log in;
and the name the line takes when C{--name} is left out.

Apart from L{serialgw.app.tap} (the option table and what runs after
parsing, with or without a file) because it is the whole of one case:
with C{--config}, the file says all of this.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any, Callable, Optional, TypeVar

import attrs
from twisted.python import usage

from serialgw.config.banner import parseBanner
from serialgw.config.devicekeys import (
    SERIAL_ONLY,
    deviceKeyRefusal,
    ptySerialRefusal,
    serialOnlyRefusal,
    stringBreakRefusal,
)
from serialgw.config.foreign import OPTIONS, deviceWithSettings
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.linetable import MAX_NAME, initCommandRefusal, initTimeoutRefusal, initTimeoutSeconds, nameProblem
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.loops import ptyLoop
from serialgw.config.parsers import (
    SINGLE_SETTINGS,
    applySingle,
    parseCoalesce,
    parseCompact,
    parseDevice,
    parseLockDir,
    parseMaxClients,
    parseMilliseconds,
    parseOnOff,
    parseSeconds,
    parseSendString,
    writtenNumber,
)
from serialgw.config.paths import absolute, absoluteDevice, absoluteListener, identity, placeKeys, whereWritten
from serialgw.config.people import DEFAULT_HOST_KEY, Rights, SSHSpec
from serialgw.config.sharing import dialledTwice
from serialgw.config.specs import DEFAULT_LOCK_DIR, DEFAULT_MAX_CLIENTS, ConfigError, LineConfig, SerialSettings, quote
from serialgw.config.sshkeys import readAtStart, usersFromFile

# The line with no --device, --port or --listen, --break-duration given.
DEFAULT_DEVICE = "pty:/tmp/serialgw0"
DEFAULT_PORT = "tcp:4444:interface=127.0.0.1"
DEFAULT_BREAK_DURATION = "250"
# The options of the single line's SSH (with --config: [ssh] and [users.NAME]).
SSH_OPTIONS = ("ssh", "ssh-host-key", "authorized-keys", "readonly-keys")


_T = TypeVar("_T")


def byOption(option: str, parse: Callable[..., _T], *args: Any) -> _T:
    """C{parse(*args)}, its L{ConfigError} prefixed with the option that gave the value (as --serial's)."""
    try:
        return parse(*args)
    except ConfigError as e:
        if str(e).startswith(f"--{option} "):
            raise  # (it says so itself)
        raise ConfigError(f"--{option}: {e}") from None


def singleSSH(options: usage.Options) -> tuple[Optional[SSHSpec], Rights]:
    """--ssh and its keys: the people come from the key files, named by each key's comment."""
    if options["ssh"] is None:
        extra = [name for name in SSH_OPTIONS[1:] if options[name] is not None]
        if extra:
            raise ConfigError(f"--{extra[0]} needs --ssh (an SSH listener)")
        return None, Rights()

    # (Named as --status's and --port's are; before the key files are read.)
    listener = absoluteListener(byOption("ssh", parseSSHListener, options["ssh"]), os.getcwd())
    if options["authorized-keys"] is None and options["readonly-keys"] is None:
        raise ConfigError("--ssh needs --authorized-keys or --readonly-keys: who may log in (passwords are a --config file's: "
                          "[users.NAME] password)")
    # Both read at once, off this thread, 5 s at most (a file on a hung file system hung the start).
    read = readAtStart({path for path in (options["authorized-keys"], options["readonly-keys"]) if path is not None})
    writers = usersFromFile(options["authorized-keys"], read[options["authorized-keys"]]) \
        if options["authorized-keys"] is not None else []
    readers = usersFromFile(options["readonly-keys"], read[options["readonly-keys"]]) \
        if options["readonly-keys"] is not None else []
    both = sorted({u.name for u in writers} & {u.name for u in readers})
    if both:
        raise ConfigError(f"{quote(both[0])} names keys in --authorized-keys {quote(options['authorized-keys'])} and in "
                          f"--readonly-keys {quote(options['readonly-keys'])}: give the keys distinct comments")
    # One key, one person (as in a farm): the same key under two comments would be whichever came last.
    writerKeys = {base64.b64decode(k.split()[1]) for u in writers for k in u.keys}
    for reader in readers:
        for key in reader.keys:
            if base64.b64decode(key.split()[1]) in writerKeys:
                raise ConfigError(f"a key of {quote(reader.name)} is in --authorized-keys {quote(options['authorized-keys'])} "
                                  f"and in --readonly-keys {quote(options['readonly-keys'])}: put it in one of them")
    rights = Rights(write=tuple(u.name for u in writers), read=tuple(u.name for u in readers))
    if options["ssh-host-key"] is not None and not options["ssh-host-key"].strip():
        raise ConfigError(f"--ssh-host-key is empty: expected a path (leave it out for {DEFAULT_HOST_KEY})")
    spec = SSHSpec(listener,
                   absolute(options["ssh-host-key"] or DEFAULT_HOST_KEY, os.getcwd()), tuple(writers + readers))
    return spec, rights


def singleLine(options: usage.Options) -> LineConfig:
    """The line the options describe; a L{ConfigError} naming the option that is wrong."""
    settings = SerialSettings()
    # Each message names its option: --baud 0 said "baud rate must be ...", which of -s and --baud unsaid.
    for key in ("serial", *SINGLE_SETTINGS):
        if options[key] is not None:
            try:
                settings = (parseCompact(options[key], settings) if key == "serial"
                            else applySingle(settings, key, options[key]))
            except ConfigError as e:
                raise ConfigError(f"--{key}: {e}") from None
    if options["xonxoff"] or options["rtscts"]:
        settings = attrs.evolve(settings, xonxoff=settings.xonxoff or bool(options["xonxoff"]),
                                rtscts=settings.rtscts or bool(options["rtscts"]))

    # socat's form on the command line is said in options (the file's reading says it in keys).
    spelled = deviceWithSettings(options["device"], OPTIONS) if options["device"] is not None else None
    if spelled is not None:
        raise ConfigError(f"--device: cannot read device {quote(options['device'])}: a device with its settings "
                          f"(socat's form); serialgw takes it as {spelled}")
    # An empty value (a shell variable left unset) is refused, not the default.
    typed = byOption("device", parseDevice, DEFAULT_DEVICE if options["device"] is None else options["device"])
    # Relative paths from the directory at start (twistd's --rundir changes it afterwards).
    device = absoluteDevice(typed, os.getcwd())
    given = next((key for key in SERIAL_ONLY if options[key]), None)  # (a flag not given is 0)
    if given is not None and serialOnlyRefusal(device):
        raise ConfigError(f"--{given}: {serialOnlyRefusal(device)}")
    # (A value that is none is said as such before a refusal of the option.)
    duration = options["break-duration"] if options["break-duration"] is not None else DEFAULT_BREAK_DURATION
    try:
        milliseconds = writtenNumber(duration)
    except ValueError:
        milliseconds = -1
    if not 1 <= milliseconds <= 10000:
        raise ConfigError(f"--break-duration: break duration must be 1 to 10000 milliseconds, not {quote(duration)}")
    # The options of the keys a remote device (or a pty: one) may not mean anything to (they were ignored silently).
    for option, key in (("no-lock", "lock"), ("lock-dir", "lock-dir"), ("no-restore", "restore"), ("on-demand", "on-demand"),
                        ("on-demand-linger", "on-demand-linger"),
                        ("break-duration", "break-duration"), ("dtr", "dtr"), ("rts", "rts"),
                        ("idle-dtr", "idle-dtr"), ("idle-rts", "idle-rts"), ("rtscts", "rtscts")):
        if option in ("dtr", "rts", "idle-dtr", "idle-rts"):
            _onOff(options, option)  # (a value that is none is said as such first)
        if options[option] not in (None, 0) and deviceKeyRefusal(key, device):
            raise ConfigError(f"--{option}: {deviceKeyRefusal(key, device)}")
    if options["serial"] is not None and ptySerialRefusal(options["serial"], device):
        raise ConfigError(f"--serial: {ptySerialRefusal(options['serial'], device)}")
    texts = ([("port", options["port"])] if options["port"] is not None else []) + [("listen", t) for t in options["listen"]]
    listeners = tuple(absoluteListener(byOption(option, parseListener, text), os.getcwd())
                      for option, text in texts or [("port", DEFAULT_PORT)])
    if sum(spec.kind is ListenerKind.STDIO for spec in listeners) > 1:
        raise ConfigError("stdio is given twice: the gateway has one terminal")
    twice = dialledTwice(listeners)
    if twice is not None:
        raise ConfigError(f"listener {quote(twice[1].text)} dials {twice[2]}, as listener {quote(twice[0].text)} does: "
                          "the far end would get every byte twice, and both would type")
    files: dict[object, ListenerSpec] = {}
    for spec in listeners:
        if spec.kind is not ListenerKind.FILE:
            continue
        # One file by two paths (a symlink, or where one leads while not made yet).
        for seen in (os.path.normpath(spec.path), whereWritten(spec.path, identity(spec.path))):
            first = files.setdefault(seen, spec)
            if first is not spec:
                how = "" if seen == os.path.normpath(spec.path) else f" by another path ({quote(first.path)})"
                raise ConfigError(f"listener {quote(spec.text)} writes {quote(spec.path)}, as listener "
                                  f"{quote(first.text)} does{how}: two writers would interleave in one file")

    if options["name"] is not None and not options["name"].strip():
        raise ConfigError("--name is empty: give the line a name, or leave --name out for the device's")
    # The rule of a [lines.NAME]: a name reaches logs, the status page and SSH user names.
    problem = nameProblem(options["name"]) if options["name"] is not None else None
    if problem is not None:
        raise ConfigError(f"--name: {problem}")
    name = options["name"] or lineName(typed.describe())
    maxClients = DEFAULT_MAX_CLIENTS if options["max-clients"] is None else parseMaxClients(options["max-clients"])
    if options["kick-old-user"] and not maxClients:
        raise ConfigError("--kick-old-user means nothing with --max-clients 0 (no limit): the line is never full")
    coalesce = byOption("coalesce", parseCoalesce, "off" if options["coalesce"] is None else options["coalesce"])
    strings = {key: parseSendString(options[key] or "", f"--{key}") for key in ("open-string", "close-string")}
    if options["idle-string"] is not None:
        strings["idle-string"] = parseSendString(options["idle-string"], "--idle-string")
        if not strings["idle-string"]:
            raise ConfigError("--idle-string is empty: nothing to send; leave --idle-timeout out for no idle-string")
    seconds = {key: byOption(key, lambda t, least=least: parseSeconds(t, least), options[key] or "0")
               for key, least in (("on-demand-linger", 0.0), ("idle-timeout", 1.0))}
    initCommand = "" if options["init-command"] is None else options["init-command"]
    refusal = initCommandRefusal(initCommand, "leave --init-command out") if options["init-command"] is not None else None
    if refusal is not None:
        raise ConfigError(f"--init-command: {refusal}")
    initTimeout = 60.0 if options["init-timeout"] is None else initTimeoutSeconds(options["init-timeout"])
    if initTimeout is None:
        raise ConfigError(f"--init-timeout: {initTimeoutRefusal(quote(options['init-timeout']))}")
    for key, needs, needed in (("on-demand-linger", "--on-demand", options["on-demand"]),
                               ("idle-string", "--idle-timeout", seconds["idle-timeout"]),
                               ("init-timeout", "--init-command", initCommand)):
        if options[key] is not None and not needed:
            raise ConfigError(f"--{key} means nothing without {needs}")
    for key, parts in strings.items():
        if stringBreakRefusal(parts, device):
            raise ConfigError(f"--{key}: {stringBreakRefusal(parts, device)}")
    config = LineConfig(
        name=name,
        device=device,
        settings=settings,
        listeners=listeners,
        breakDuration=milliseconds / 1000.0,
        restoreSettings=not options["no-restore"],
        coalesceMin=coalesce[0],
        coalesceMax=coalesce[1],
        coalesceOn=coalesce[2],
        signature=options["signature"],
        banner=parseBanner(options["banner"], "--banner") if options["banner"] is not None else None,
        notices=not options["no-notices"],
        maxClients=maxClients,
        openString=strings["open-string"],
        closeString=strings["close-string"],
        dtr=_onOff(options, "dtr"),
        rts=_onOff(options, "rts"),
        idleDtr=_onOff(options, "idle-dtr"),
        idleRts=_onOff(options, "idle-rts"),
        pace=parseMilliseconds(0 if options["pace"] is None else options["pace"], "--pace"),
        paceLine=parseMilliseconds(0 if options["pace-line"] is None else options["pace-line"], "--pace-line"),
        lock=not options["no-lock"],
        onDemand=bool(options["on-demand"]),
        onDemandLinger=seconds["on-demand-linger"],
        idleTimeout=seconds["idle-timeout"],
        idleString=strings.get("idle-string", (b"\n",)),
        initCommand=initCommand,
        initTimeout=initTimeout,
        kickOldUser=bool(options["kick-old-user"]),
        lockDir=parseLockDir(options["lock-dir"], "--lock-dir") if options["lock-dir"] is not None else DEFAULT_LOCK_DIR,
    )
    loop = ptyLoop([config], placeKeys)
    if loop is not None:
        raise ConfigError(f"--device {loop[1]}")
    return config


def _onOff(options: usage.Options, option: str) -> Optional[bool]:
    return None if options[option] is None else parseOnOff(options[option], f"--{option}")


def lineName(device: str) -> str:
    """
    The line's name when --name is left out: the device's, by the rule of a
    [lines.NAME] (letters, digits, '.', '_', '-', a letter or digit first):
    what else it holds becomes '-' (C{/dev/pts/3}: C{pts-3}).  A '/', ':',
    a newline or an escape sequence in a path reached logs, the status page
    and SSH user names as they were.
    """
    if device.startswith("pty:"):
        name = os.path.basename(device[4:])
    elif device.startswith("rfc2217://"):
        # Its scheme kept, as telnet:'s and tcp:'s are (it was HOST-PORT alone, a tcp: line's name but for its prefix).
        name = "rfc2217:" + device[len("rfc2217://"):]
    elif device.startswith("/dev/"):
        name = device[len("/dev/"):]
    else:
        name = os.path.basename(device) or device
    name = _NOT_IN_A_NAME.sub("-", name).lstrip("._-")[:MAX_NAME].rstrip("-")
    return name or ("pty" if device.startswith("pty:") else "line")


# What a line's name cannot hold (serialgw.config.file.NAME), a run of it.
_NOT_IN_A_NAME = re.compile(r"[^A-Za-z0-9._-]+")
