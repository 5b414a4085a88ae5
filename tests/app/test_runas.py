"""
twistd -u/-g: the ptys the gateway makes before privileges drop (pty:
devices and listeners) are given to the user it runs as, links too; they
were root's, 0600, and nobody but root could open them.
"""

from __future__ import annotations

import os

import attrs
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import tap
from serialgw.app.process import TwistdGatewayService
from serialgw.app.runas import giveFiles, givePtys
from serialgw.app.service import GatewayService
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import DeviceSpec, LineConfig
from tests.shortpaths import shortDirectory


class RunAsTests(SynchronousTestCase):
    def test_fromTwistdOptions(self) -> None:
        """-u and -g as twistd reads them; a group left out is the user's (as twistd takes it); neither: unchanged (-1)."""
        import pwd

        nobody = pwd.getpwnam("nobody")
        for argv, expected in ((["-u", "nobody", "-g", "0"], (nobody.pw_uid, 0)),
                               (["-u", "nobody"], (nobody.pw_uid, nobody.pw_gid)),
                               ([], (-1, -1))):
            options = ServerOptions()
            options.parseOptions([*argv, "serialgw", "--device", "pty:/tmp/x"])
            self.assertEqual(tap.runAs(options.subOptions.parent), expected)
        self.assertEqual(tap.runAs(None), (-1, -1))

    def test_ptysGivenAway(self) -> None:
        """A pty: device and a pty: listener made as root are the -u user's and group's, their links too."""
        if os.geteuid() != 0:
            self.skipTest("giving files away takes root")
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        device, listener = os.path.join(directory, "dev"), os.path.join(directory, "cl")
        line = LineConfig("t", DeviceSpec("pty", device), listeners=(parseListener(f"pty:{listener}"),))
        service = TwistdGatewayService([line])
        GatewayService.privilegedStartService(service)
        self.addCleanup(service.stopService)
        service.runAs = (65534, 65533)
        givePtys(service)
        for link in (device, listener):
            self.assertEqual([(st.st_uid, st.st_gid) for st in (os.stat(link), os.lstat(link))],
                             [(65534, 65533), (65534, 65533)])

    def test_directoriesTheUserCannotWrite(self) -> None:
        """Under -u, each directory the user may not write where a line's log, file: output, pty link or unix socket is, is named once with what that costs; one it may write, none."""
        from serialgw.app.runas import unwritable

        shut, open_ = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        for directory, mode in ((shut, 0o755), (open_, 0o777)):
            os.makedirs(directory)
            os.chmod(directory, mode)
        me = os.geteuid()
        other = 65534 if me != 65534 else 65533
        line = LineConfig("t", DeviceSpec("pty", f"{shut}/dev"), log=LogSpec(f"{shut}/t.log"),
                          listeners=(parseListener(f"unix:{shut}/t.sock"), parseListener(f"file:{open_}/out"),
                                     parseListener(f"pty:{shut}/cl")))
        self.assertEqual(unwritable([line], other, [other]), [
            f"line t: uid {other} may not write {shut} (where its log {shut}/t.log, pty link {shut}/dev, unix socket "
            f"{shut}/t.sock, pty link {shut}/cl are): the log cannot be rotated nor made again at SIGUSR1, the "
            "links and sockets are left there at stop; give the directory to that user, or use one it owns"])
        self.assertEqual(unwritable([line], me, [other]), [])
        os.chmod(shut, 0o775)
        self.assertEqual(unwritable([line], other, [os.getegid()]), [])
        self.assertEqual(unwritable([attrs.evolve(line, log=None, listeners=(parseListener(f"unix:{shut}/t.sock"),),
                                                  device=DeviceSpec("tty", "/dev/ttyS0"))], other, [other]),
                         [f"line t: uid {other} may not write {shut} (where its unix socket {shut}/t.sock is): the "
                          "sockets are left there at stop; give the directory to that user, or use one it owns"])

    def test_gatewaySocketsInADirectoryTheUserCannotWrite(self) -> None:
        """Under -u, the status page's, watch-all's and SSH's unix sockets are warned of as a line's are (a status socket in a root-owned directory was left at stop without a word)."""
        from serialgw.app.runas import unwritable

        shut = os.path.abspath(self.mktemp())
        os.makedirs(shut)
        os.chmod(shut, 0o755)
        other = 65534 if os.geteuid() != 65534 else 65533
        gateway = [("status socket", f"{shut}/st.sock"), ("watch-all socket", f"{shut}/wa.sock")]
        self.assertEqual(unwritable([], other, [other], gateway=gateway), [
            f"the gateway: uid {other} may not write {shut} (where its status socket {shut}/st.sock, watch-all socket "
            f"{shut}/wa.sock are): the sockets are left there at stop; give the directory to that user, or use one "
            "it owns"])
        line = LineConfig("t", DeviceSpec("tty", "/dev/ttyS0"), log=LogSpec(f"{shut}/t.log"))
        self.assertEqual(unwritable([line], other, [other], gateway=gateway[:1]), [
            f"line t and the gateway: uid {other} may not write {shut} (where its log {shut}/t.log, status socket "
            f"{shut}/st.sock are): the log cannot be rotated nor made again at SIGUSR1, the sockets are left there at "
            "stop; give the directory to that user, or use one it owns"])

    def test_farmSharingADirectoryWarnedOnce(self) -> None:
        """Under -u, a farm whose 1000 lines log into one directory the user may not write is one warning naming a few of them and how many more (it was one warning a line: 1000 at every start)."""
        from serialgw.app.runas import unwritable

        shut = os.path.abspath(self.mktemp())
        os.makedirs(shut)
        os.chmod(shut, 0o755)
        other = 65534 if os.geteuid() != 65534 else 65533
        lines = [LineConfig(f"l{i}", DeviceSpec("tty", f"/dev/ttyS{i}"), log=LogSpec(f"{shut}/l{i}.log"))
                 for i in range(1000)]
        self.assertEqual(unwritable(lines, other, [other]), [
            f"lines l0, l1, l2, l3 and 996 more: uid {other} may not write {shut} (where its log {shut}/l0.log, log "
            f"{shut}/l1.log, log {shut}/l2.log, log {shut}/l3.log and 996 more are): the log cannot be rotated nor "
            "made again at SIGUSR1; give the directory to that user, or use one it owns"])


class GiveFilesTests(TestCase):
    def test_filesAndSocketsGivenAway(self) -> None:
        """
        Under -u, a console log (and LOG.typed), a file: output and a unix
        socket (its lock too) made as root before privileges drop are the
        user's and group's: root's 0640 log could not be opened again by
        the user (SIGUSR1 with nothing moved: 'Permission denied'; a reload
        changing a log key was refused), nor its 0600 socket connected to
        by it or its group.  A file is given only in a directory that user
        may write (it could replace it anyway), with one link; a symlinked
        or another user's file is left as it is.
        """
        if os.geteuid() != 0:
            self.skipTest("giving files away takes root")

        given, shut = shortDirectory(self), os.path.abspath(self.mktemp())  # (a unix socket's path is short)
        os.chown(given, 65534, -1)
        os.makedirs(shut)
        log, out, sock = (os.path.join(given, n) for n in ("a.log", "a.out", "a.sock"))
        theirs, elsewhere, shutOut = os.path.join(given, "b.out"), os.path.join(shut, "target"), os.path.join(shut, "c.out")
        open(theirs, "w").close()
        os.chown(theirs, 1234, 1234)
        open(elsewhere, "w").close()
        os.symlink(elsewhere, os.path.join(given, "d.out"))
        listeners = tuple(parseListener(s) for s in (f"file:{out}", f"unix:{sock}", f"file:{theirs}",
                                                     f"file:{given}/d.out", f"file:{shutOut}"))
        line = LineConfig("t", DeviceSpec("pty", os.path.join(given, "dev")), listeners=listeners,
                          log=LogSpec(log, typed="text"))
        service = TwistdGatewayService([line])
        GatewayService.privilegedStartService(service)
        self.addCleanup(service.stopService)  # (waited for: its unix socket is removed before its directory)
        service.runAs = (65534, 65533)
        giveFiles(service)
        owners = {path: (os.lstat(path).st_uid, os.lstat(path).st_gid)
                  for path in (log, log + ".typed", out, sock, sock + ".lock", theirs, elsewhere, shutOut)}
        self.assertEqual(owners, {log: (65534, 65533), log + ".typed": (65534, 65533), out: (65534, 65533),
                                  sock: (65534, 65533), sock + ".lock": (65534, 65533), theirs: (1234, 1234),
                                  elsewhere: (0, 0), shutOut: (0, 0)})

    def test_swappedForAHardLinkNotGiven(self) -> None:
        """
        What giveFiles looks at is what it gives: a log swapped for a hard
        link to a root file between the look and the change (the user may
        write there), or a socket's path made a link to one, leaves that
        root file root's; before, the change went by path and gave it away.
        """
        if os.geteuid() != 0:
            self.skipTest("giving files away takes root")

        from serialgw.app import runas

        # Both in /tmp (a hard link is made from one to the other): a
        # checkout's temporary directory and /tmp may be on two file
        # systems ('Invalid cross-device link' with /tmp a tmpfs).
        given, shut = shortDirectory(self), shortDirectory(self)
        os.chown(given, 65534, -1)
        victim = os.path.join(shut, "shadow")
        open(victim, "w").close()
        log, sock = os.path.join(given, "a.log"), os.path.join(given, "a.sock")
        line = LineConfig("t", DeviceSpec("pty", os.path.join(given, "dev")), listeners=(parseListener(f"unix:{sock}"),),
                          log=LogSpec(log))
        service = TwistdGatewayService([line])
        GatewayService.privilegedStartService(service)
        self.addCleanup(service.stopService)
        os.unlink(sock)
        os.link(victim, sock)
        mayWrite = runas._mayWrite

        def swapping(directory: str, uid: int, gids: list[int]) -> bool:
            if os.path.exists(log) and os.stat(log).st_ino != os.stat(victim).st_ino:
                os.unlink(log)
                os.link(victim, log)  # (The user's move between the look and the change.)
            return mayWrite(directory, uid, gids)

        self.patch(runas, "_mayWrite", swapping)
        service.runAs = (65534, 65533)
        giveFiles(service)
        # (Linked twice: both moves were made; still root's.)
        self.assertEqual((os.stat(victim).st_uid, os.stat(victim).st_gid, os.stat(victim).st_nlink), (0, 0, 3))

