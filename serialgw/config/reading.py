"""
A configuration file read as TOML: bounded (size, no FIFO or device), UTF-8,
no byte order mark, and tomllib's errors (and the ones it does not turn into
TOMLDecodeError) said as C{FILE:LINE: ...}.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from typing import Any

from serialgw.config.foreign import pastedLine
from serialgw.config.linetable import LINE_KEYS
from serialgw.config.paths import NotRegular, openRegular
from serialgw.config.specs import ConfigError, quote
from serialgw.config.where import fileLines, tomlError

# A configuration file is read whole; a farm of thousands of lines is far below this.
MAX_CONFIG_SIZE = 16 << 20


def readToml(path: str) -> tuple[str, dict[str, Any]]:
    """The text of the file at C{path} and what TOML reads in it; ConfigError naming the file (and line) else."""
    try:
        # Not waiting for a writer: a FIFO at the path would otherwise hang
        # the start, or the whole gateway at a SIGHUP reload.
        # A tty there (not opened) would become the gateway's controlling terminal.
        fd = openRegular(path)
    except NotRegular as e:
        raise ConfigError(f"configuration {quote(path)} is not a regular file ({_kind(e.mode)})") from None
    except OSError as e:
        raise ConfigError(f"cannot read configuration {quote(path)}: {_whyNot(path, e)}") from None
    except ValueError:
        # os.open's "embedded null byte" (a path from an API caller, not a shell); UnicodeEncodeError of a lone surrogate.
        why = "a path cannot hold a NUL character" if "\0" in path else "the path is not one the system can name"
        raise ConfigError(f"cannot read configuration {quote(path)}: {why}") from None
    try:
        with open(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_CONFIG_SIZE + 1)
    except OSError as e:
        raise ConfigError(f"cannot read configuration {quote(path)}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_SIZE:
        # /dev/zero by mistake would otherwise be read until memory runs out.
        raise ConfigError(f"configuration {quote(path)} is larger than {MAX_CONFIG_SIZE >> 20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        # TOML is UTF-8: a stray Latin-1 byte must not become U+FFFD in a path.
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start:e.end].hex(" ")
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte {bad} at column {column}); a TOML file is UTF-8") from None
    if text.startswith("\ufeff"):
        # tomllib's "Invalid statement (at line 1, column 1)" shows nothing wrong.
        raise ConfigError(f"{path}:1: starts with a byte order mark (bytes ef bb bf): a TOML file has none; "
                          "save it as UTF-8 without one")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(_pasted(path, text, e)) from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        raise ConfigError(f"{path}: arrays or tables nested too deep") from None
    except ValueError:
        # tomllib's int() of an integer past Python's limit (4300 digits
        # unless PYTHONINTMAXSTRDIGITS says otherwise; shard = 111...1): no
        # TOMLDecodeError, and no key of ours takes such a number.
        limit = sys.get_int_max_str_digits()
        raise ConfigError(f"{_tooLong(path, text, limit)}: an integer of more than {limit} digits") from None
    return text, data


def _pasted(path: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    """
    tomllib's error, or, on a line pasted from ser2net.yaml, ser2net.conf
    or conserver.cf, that line and what serialgw writes for it (tomllib's
    error after it).
    """
    message = tomlError(path, text, error)
    place = re.search(r"\(at line ([0-9]+), column [0-9]+\)$", str(error))
    lines = fileLines(text)
    if place is None or not 0 < int(place.group(1)) <= len(lines):
        return message
    number = int(place.group(1))
    line = lines[number - 1]
    hint = pastedLine(line, LINE_KEYS)
    if hint is None:
        return message
    return f"{path}:{number}: {quote(line.strip())}: {hint} (TOML: {message.removeprefix(f'{path}:{number}: ')})"


def _whyNot(path: str, error: OSError) -> str:
    """
    Why a configuration path cannot be opened, said of what is there: a
    dangling symlink's open fails as ENOENT, of a file that seems to be
    there.  (A unix socket's is not opened: L{openRegular} refuses it.)
    """
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is None and os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            return str(error.strerror)
        return f"it is a symbolic link to {quote(target)}, which is not there"
    return str(error.strerror)


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def _tooLong(path: str, text: str, limit: int) -> str:
    """C{path:LINE} of the first run of more than C{limit} digits (tomllib reads no other number past Python's limit)."""
    match = re.search(rf"[0-9](?:_?[0-9]){{{limit},}}", text)
    return f"{path}:{text.count(chr(10), 0, match.start()) + 1}" if match else path
