"""What the sandbox needs of the host, and does to it: its tools, where Python lives, the grader's
folders made private, the per-uid locks, and what a level "uid" kernel leaves behind."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.course.limits import LOCK_WAIT_SECONDS

# World-writable folders where a level "uid" kernel may leave files behind: emptied of its files at close.
STRAY_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Root-only folder of the per-uid locks (see hold_uid); LOCK_WAIT_SECONDS: how long to wait for one.
LOCK_DIRS = ("/run/micrograd-sandbox", os.path.join(tempfile.gettempdir(), "micrograd-sandbox-locks"))


def tool(name: str) -> str | None:
    return shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")


def exe(name: str) -> str:
    """The tool a command runs: `unavailable()` has made sure that it is installed."""
    return tool(name) or name


def python_dirs() -> list[str]:
    """The Python install and the venv, not their parents: the repository beside the venv stays out."""
    return list(dict.fromkeys([sys.base_prefix, sys.prefix]))


def hide_from_other_users(dirs: tuple[str, ...] | list[str]) -> None:
    """Level "uid": make each folder of `dirs` root's alone (the grader itself never imports them)."""
    for d in dirs:
        st = os.stat(d)
        if st.st_uid == 0 and st.st_mode & 0o077:
            os.chmod(d, 0o700)


def _world_reachable(path: str) -> bool:
    """Can any uid walk to `path`? bwrap resolves bind sources as the unprivileged kernel uid."""
    p = Path(path)
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])


def needs_detour(path: str) -> bool:
    # The pyenv Python sits under /root (mode 0700): as uid 61000 bwrap cannot even resolve it,
    # and --ro-bind-fd does not help (bwrap realpath()s the fd's target). The launcher, still root,
    # bind-mounts it onto a reachable folder in a private mount namespace of its own instead.
    return os.geteuid() == 0 and not _world_reachable(path)


def hide_from_kernels(*paths: str | Path) -> None:
    """`chmod -R go-rwx` each of `paths` (files stay their owner's: a root grader keeps reading
    them), except what a kernel must run: the Python install and the venv (`sys.base_prefix`,
    `sys.prefix`) stay as they are. A level "uid" kernel reads what any user may read: run this
    over the grader's own files (the repository, hidden tests, solutions, .work/, results) before
    any kernel runs. Its launcher then reaches a Python folder hidden below them through a private
    mount of its own (see `argv._uncover_steps`); only where a private mount namespace is refused
    (a container without CAP_SYS_ADMIN) do the folders on the way down to it stay traversable, not
    listable (o+x). Symlinks are not followed; a missing path is skipped."""
    keep = {os.path.realpath(d) for d in python_dirs()}
    way_down = not private_mounts()
    for top in paths:
        top = os.path.realpath(top)
        if not os.path.lexists(top) or any(top == k or top.startswith(k + os.sep) for k in keep):
            continue
        todo = [top]
        while todo:
            path = todo.pop()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or path in keep:
                continue
            mode = stat.S_IMODE(st.st_mode) & ~0o077
            if stat.S_ISDIR(st.st_mode):
                if way_down and any(k.startswith(path + os.sep) for k in keep):
                    mode |= 0o001
                todo += [os.path.join(path, name) for name in os.listdir(path)]
            os.chmod(path, mode)


@functools.cache
def private_mounts() -> bool:
    """Can this grader, as root, give a launcher a mount namespace of its own?"""
    if os.geteuid() != 0 or not (tool("unshare") and tool("mount")):
        return False
    try:
        run = subprocess.run(
            [exe("unshare"), "--mount", "--propagation", "private", "--", "/bin/true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


@functools.cache
def setpriv_has_pdeathsig() -> bool:  # util-linux 2.33 or newer
    try:
        return (
            "--pdeathsig"
            in subprocess.run([exe("setpriv"), "--help"], capture_output=True, text=True, timeout=10).stdout
        )
    except (OSError, TypeError, subprocess.TimeoutExpired):
        return False


def private_dir() -> str:
    """A folder only this uid may write to: the uid locks' folder for root, else one in /tmp."""
    if os.geteuid() == 0:
        return _lock_dir()
    d = os.path.join(tempfile.gettempdir(), f"micrograd-sandbox-{os.getuid()}")
    os.makedirs(d, mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RuntimeError(f"{d} is not this user's private folder")
    return d


def _lock_dir() -> str:
    """A folder for the uid locks that only root can write to (never one a kernel could plant)."""
    for d in LOCK_DIRS:
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            st = os.lstat(d)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return d
    raise RuntimeError(f"no root-only folder for the sandbox uid locks among {LOCK_DIRS}")


def hold_uid(uid: int, exclusive: bool) -> int:
    """Lock the kernel uid for one sandbox; close the returned fd to let go. Level "full" holds
    it shared (it never acts on the whole uid), level "uid" exclusive (its close() kills, and its
    watchdog counts, every process of the uid): two graders on one machine that use the same
    slot never kill or count each other's kernels. Waits up to LOCK_WAIT_SECONDS."""
    fd = os.open(
        os.path.join(_lock_dir(), f"uid-{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(f"uid {uid} stayed in use by another sandbox for {LOCK_WAIT_SECONDS} s") from None
            time.sleep(0.1)


def remove_strays(uid: int) -> None:
    """Level "uid": what the kernel uid left in the world-writable scratch folders."""
    for folder in STRAY_DIRS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # never follows a symlink out of it
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
