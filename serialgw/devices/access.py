"""
Why this process may not open a device node, for people: whose it is,
its mode, and the group the gateway's user is not in.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat


def name(lookup: str, number: int) -> str:
    """A user's or group's name (C{lookup}: "user" or "group"), or its number when it has none."""
    try:
        return pwd.getpwuid(number).pw_name if lookup == "user" else grp.getgrgid(number).gr_name
    except (KeyError, OverflowError):
        return str(number)


def accessHint(path: str) -> str:
    """
    C{" (crw-rw---- root:dialout; this process, user serialgw, is not in
    group dialout)"}: why a node's open was refused (EACCES) when this
    process is neither its owner nor in its group; empty otherwise (in the
    group: its mode, or a sandbox, refuses it) or when it cannot be looked at.
    """
    try:
        st = os.stat(path)
    except OSError:
        return ""
    uid = os.geteuid()
    if uid == st.st_uid or st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        return ""
    group = name("group", st.st_gid)
    return (f" ({stat.filemode(st.st_mode)} {name('user', st.st_uid)}:{group}; this process, user "
            f"{name('user', uid)}, is not in group {group})")


def stickyHint(path: str) -> str:
    """
    C{" (it is user uucp's, in a sticky directory: only uucp or root may
    remove it)"}: why a file could not be removed or renamed (EPERM) when
    its directory is sticky and the file another user's; empty otherwise.
    """
    try:
        st = os.lstat(path)
        sticky = os.stat(os.path.dirname(path) or ".").st_mode & stat.S_ISVTX
    except OSError:
        return ""
    if not sticky or st.st_uid == os.geteuid():
        return ""
    owner = name("user", st.st_uid)
    return f" (it is user {owner}'s, in a sticky directory: only {owner} or root may remove it)"
