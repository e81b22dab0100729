"""What a kernel sees and may use, as data: one `Policy` per kernel start.

`policy_for` makes it from a sandbox's inputs (its level, files, limits, environment, uid, folder,
cgroups) and what this machine holds (where Python lives, the packages to hide, the seccomp
filter); `argv.command` derives the launcher's command line from it, and nothing else does;
`explain.describe` prints it.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.course.limits import Limits
from autograder.sandbox.host import needs_detour, python_dirs
from autograder.sandbox.seccomp import DENIED_SYSCALLS

KERNEL_UID_BASE = 61000
WORKDIR = "/home/student"  # the kernel's cwd and HOME inside the sandbox (level "full")
# Read-only system folders the kernel needs; a symlink (merged /usr) is recreated as a symlink.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64")
# Only what the dynamic loader, time functions and the /usr/bin -> /etc/alternatives links need:
# the rest of /etc (shadow, ssh keys, the grader's configuration) stays out.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
# Packages a graded kernel never imports: PyTorch would compute every expected gradient beside
# the student's code. Inside bwrap an empty tmpfs covers each; at level "uid" they become root's
# alone (0700). The grader puts its stand-in (`torch_stand_in.py`) in the work folder instead.
HIDDEN_PACKAGES = ("torch", "functorch", "torchgen")
# The launcher's whole environment (it runs as the grader's uid until setpriv): no secret passes.
LAUNCHER_ENV = {"PATH": "/usr/bin:/bin"}
NICE = 10  # where no cgroup gives the sandbox a CPU weight of its own, a lower priority stands in
# The environment of every kernel before the sandbox's own `env`; nothing of the grader's passes.
_KERNEL_ENV = {
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True)
class Mount:
    """One step of the filesystem bwrap builds for a kernel (level "full"), in its order."""

    kind: str  # "ro-bind", "ro-bind-try", "bind", "symlink", "proc", "dev" or "tmpfs"
    path: str  # where the kernel sees it
    source: str = ""  # the host path bound, or the symlink's target
    mode: str = ""  # a tmpfs's permissions
    size_mb: int = 0  # a tmpfs's size cap (0: none)


@dataclass(frozen=True)
class Policy:
    """Everything one kernel sees and may use. Level "full" builds the kernel's whole world from
    it (`mounts` is its filesystem); level "uid" runs on the host's, and keeps the rest."""

    level: str  # "full" (bwrap) or "uid" (a uid of its own, no namespaces)
    # user
    uid: int  # the kernel's uid and gid
    switch_user: bool  # a root grader drops to `uid` (setpriv) before anything of the kernel runs
    # filesystem
    mounts: tuple[Mount, ...]  # level "full": all the kernel sees, read-only but its tmpfs
    workdir: str  # its cwd and HOME
    files: tuple[tuple[str, str], ...]  # (name in `workdir`, the host file it is a copy of)
    written: tuple[tuple[str, str], ...]  # (path, content): files of its own, as /etc/passwd
    sockets: str  # the private folder of its Unix sockets (bound writable at level "full")
    hidden: tuple[str, ...]  # the folders of HIDDEN_PACKAGES: covered (full) or root's alone (uid)
    # (Python folder, stage): folders other users cannot reach, mounted by the launcher in a
    # private mount namespace at `stage` (full, bound back inside) or back in place (uid)
    detours: tuple[tuple[str, str], ...]
    covers: tuple[tuple[str, str], ...]  # level "uid": (Python folder, the closed ancestor a tmpfs covers)
    # environment
    env: tuple[tuple[str, str], ...]  # the kernel's whole environment: all else is cleared
    network: bool  # whether it reaches the host's network (level "uid" cannot refuse it)
    # syscalls
    denied_syscalls: tuple[str, ...]  # fail with EPERM under `seccomp`
    seccomp: bytes | None  # the compiled filter; None where this machine cannot build one
    # limits
    limits: Limits
    cgroups: tuple[str, ...]  # the cgroup.procs files the launcher joins; none: the watchdog counts
    nproc: int | None  # RLIMIT_NPROC of the kernel's uid, if any
    nice: int | None  # a lower priority, where no cgroup gives a CPU weight


def kernel_uid(slot: int, root: bool) -> int:
    """A uid of its own per worker: not the grader's, and RLIMIT_NPROC becomes per sandbox."""
    return KERNEL_UID_BASE + slot if root else os.getuid()


def detours(folder: Path) -> dict[str, Path]:
    """{Python folder other users cannot reach: where in `folder` the launcher mounts it}."""
    return {d: folder / f"ro-{i}" for i, d in enumerate(python_dirs()) if needs_detour(d)}


def hidden_dirs() -> list[str]:
    """The folders of HIDDEN_PACKAGES in this Python's site-packages."""
    roots = dict.fromkeys(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p))
    return [os.path.join(r, n) for r in roots for n in HIDDEN_PACKAGES if os.path.isdir(os.path.join(r, n))]


def system_mounts() -> list[Mount]:
    """The host's system folders read-only (merged /usr links as links), a few /etc files, /proc, /dev."""
    mounts = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            mounts.append(Mount("symlink", d, os.readlink(d)))
        elif os.path.isdir(d):
            mounts.append(Mount("ro-bind", d, d))
    mounts += [Mount("ro-bind-try", f, f) for f in ETC_FILES]
    return mounts + [Mount("proc", "/proc"), Mount("dev", "/dev")]


def _covers(detours: Mapping[str, Path]) -> list[tuple[str, str]]:
    """(folder, its highest ancestor that other users cannot cross: /root for pyenv) of `detours`."""
    covers = []
    for src in detours:
        closed = [a for a in reversed(Path(src).parents) if not os.stat(a).st_mode & stat.S_IXOTH]
        if closed:
            covers.append((src, str(closed[0])))
    return covers


def policy_for(
    level: str,
    files: Mapping[str, Path],
    limits: Limits,
    env: Mapping[str, str],
    uid: int,
    switch_user: bool,
    sockets: Path,
    detours: Mapping[str, Path],
    workdir: str,
    cgroups: Sequence[Path],
    seccomp: bytes | None,
) -> Policy:
    """The policy of one kernel start of a sandbox at `level` with these inputs. `workdir`:
    WORKDIR at level "full", the fresh host folder at level "uid"; `cgroups`: the cgroup.procs
    files of the sandbox's cgroups (none where the watchdog counts)."""
    full = level == "full"
    hidden = hidden_dirs()
    mounts: list[Mount] = []
    if full:
        disk = limits.disk_mb
        # /tmp first: a later mount on it would hide a Python or venv that lives below /tmp.
        mounts = system_mounts() + [
            Mount("tmpfs", "/dev/shm", mode="1777", size_mb=disk),
            Mount("tmpfs", "/tmp", mode="1777", size_mb=disk),
        ]
        mounts += [Mount("ro-bind", d, str(detours.get(d, d))) for d in python_dirs()]
        mounts += [Mount("tmpfs", d, mode="0555") for d in hidden]  # empty: the package is not there
        mounts.append(Mount("tmpfs", workdir, mode="0700", size_mb=disk))
    kernel_env = {
        "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": "/tmp" if full else f"{workdir}/.tmp",
        **_KERNEL_ENV,
        **env,
    }
    if full:
        # RLIMIT_NPROC counts the uid's tasks: a cap of the tree only where the uid is this sandbox's alone.
        nproc = limits.pids if switch_user and not cgroups else None
    else:
        # The uid's tasks are all this sandbox's: a cap at fork time. Beside a pids cgroup it sits
        # one above, so that the cgroup (which counts its refusals) refuses first.
        nproc = limits.pids + (1 if cgroups else 0)
    return Policy(
        level=level,
        uid=uid,
        switch_user=switch_user,
        mounts=tuple(mounts),
        workdir=workdir,
        files=tuple((name, str(src)) for name, src in files.items()),
        # A passwd entry of its own, so getpass/pwd work without the host's user list.
        written=(
            (("/etc/passwd", f"student:x:{uid}:{uid}::{workdir}:/bin/sh\n"), ("/etc/group", f"student:x:{uid}:\n"))
            if full
            else ()
        ),
        sockets=str(sockets),
        hidden=tuple(hidden),
        detours=tuple((d, str(stage)) for d, stage in detours.items()),
        covers=() if full else tuple(_covers(detours)),
        env=tuple(kernel_env.items()),
        network=not full,
        denied_syscalls=DENIED_SYSCALLS,
        seccomp=seccomp,
        limits=limits,
        cgroups=tuple(str(f) for f in cgroups),
        nproc=nproc,
        nice=None if cgroups else NICE,
    )
