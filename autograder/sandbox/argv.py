"""The command line that starts a kernel, derived from its `Policy` by `command` and nothing else:

    [unshare -m] sh (joins the cgroups) -> prlimit -> [nice] -> [setpriv: uid 61000+slot] -> bwrap -> python

at level "full", and at level "uid"

    sh (joins the cgroups) -> prlimit -> [nice] -> setpriv (uid 61000+slot) -> env -i -> python
    (loads the seccomp filter, then execs) -> python

Files the launcher inherits (copies of the work folder's files, /etc/passwd, the seccomp filter)
appear in it as `Fd` values; `resolve` opens them and puts their numbers in their place.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.sandbox.host import exe, setpriv_has_pdeathsig
from autograder.sandbox.policy import Mount, Policy
from autograder.sandbox.seccomp import LOAD_FILTER

# --unshare-all: no network, no host PIDs/IPC; --unshare-user explicitly, also when started
# via setpriv; --disable-userns: the notebook cannot nest namespaces to widen the kernel surface;
# --new-session: no TIOCSTI into a terminal; --die-with-parent: a dead grader leaves nothing.
BWRAP_BASE = ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session")

# What `python -m ipykernel_launcher` does (the cwd off sys.path, then the kernel app), without the
# debugger: ipykernel imports debugpy, a fifth of a kernel's start-up CPU, only to offer Jupyter's
# debugger, which a graded notebook never uses.
_LAUNCH = (
    "import sys\n"
    "if sys.path[0] == '':\n    del sys.path[0]\n"
    "sys.modules['debugpy'] = None\n"
    "from ipykernel import kernelapp\n"
    "kernelapp.launch_new_instance()"
)


@dataclass(frozen=True)
class Fd:
    """An argument naming a file descriptor the launcher inherits: a copy of the host file `path`
    (opened, never bound: the notebook may change its copy, the host file stays as it was), or
    `data` in a memory file."""

    what: str  # what it holds, for a reader
    path: str = ""
    data: bytes = b""

    def __str__(self) -> str:
        return f"<fd: {self.what}>"


Arg = str | Fd


def kernel_command(connection_file: str) -> list[str]:
    """The kernel itself: always the grader's own interpreter, as only its install and venv are there."""
    return [sys.executable, "-c", _LAUNCH, "-f", connection_file]


def command(policy: Policy, kernel_cmd: Sequence[str]) -> list[Arg]:
    """The launcher's command line that runs `kernel_cmd` under `policy`."""
    if policy.level == "uid":
        return _uid_command(policy, list(kernel_cmd))
    bw: list[Arg] = [exe("bwrap"), *BWRAP_BASE, *(["--share-net"] if policy.network else [])]
    bw += mount_args(policy.mounts) + ["--bind", policy.sockets, policy.sockets]
    for name, src in policy.files:
        for parent in reversed(Path(name).parents[:-1]):
            bw += ["--dir", f"{policy.workdir}/{parent}"]
        bw += ["--perms", "0644", "--file", Fd(f"a copy of {src}", path=src), f"{policy.workdir}/{name}"]
    for path, content in policy.written:
        bw += ["--perms", "0644", "--file", Fd(f"{path} of its own", data=content.encode()), path]
    bw += ["--remount-ro", "/", "--chdir", policy.workdir, "--clearenv"]
    for k, v in policy.env:
        bw += ["--setenv", k, v]
    bw += ["--seccomp", Fd("the seccomp filter", data=policy.seccomp)] if policy.seccomp else []
    bw += ["--", *kernel_cmd]
    cmd = [*_prlimit(policy), *_nice(policy), *(drop_privileges(policy.uid) if policy.switch_user else []), *bw]
    # Join the cgroups (and mount the detours) while still the grader's uid, then exec onwards.
    q, mount = shlex.quote, exe("mount")
    steps = _join_steps(policy) + [f"{mount} --bind -o ro {q(src)} {q(dst)}" for src, dst in policy.detours]
    return _launcher(steps, bool(policy.detours), cmd)


def _uid_command(policy: Policy, kernel_cmd: list[Arg]) -> list[Arg]:
    """Level "uid": `kernel_cmd` as the kernel uid in its work folder with only its environment,
    under the seccomp filter (loaded by a small Python program of its own, which then execs it)."""
    if policy.seccomp:
        filter_fd = Fd("the seccomp filter", data=policy.seccomp)
        kernel_cmd = [sys.executable, "-I", "-S", "-c", LOAD_FILTER, filter_fd, *kernel_cmd]
    cmd: list[Arg] = [
        *_prlimit(policy),
        *_nice(policy),
        *drop_privileges(policy.uid, die_with_parent=True),
        exe("env"),
        "-i",
        f"--chdir={policy.workdir}",
        "--",
        *(f"{k}={v}" for k, v in policy.env),
        *kernel_cmd,
    ]
    return _launcher(_join_steps(policy) + _uncover_steps(policy), bool(policy.detours), cmd)


def resolve(argv: Sequence[Arg]) -> tuple[list[str], list[int]]:
    """`argv` with each `Fd` opened, and the fds the launcher must inherit (the caller closes them)."""
    fds: list[int] = []
    out = []
    try:
        for arg in argv:
            if isinstance(arg, Fd):
                fd = os.open(arg.path, os.O_RDONLY | os.O_CLOEXEC) if arg.path else os.memfd_create("sandbox-data")
                fds.append(fd)
                if not arg.path:
                    os.write(fd, arg.data)
                    os.lseek(fd, 0, os.SEEK_SET)
                arg = str(fd)
            out.append(arg)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return out, fds


def mount_args(mounts: Sequence[Mount]) -> list[Arg]:
    """bwrap's arguments that build `mounts`, in order."""
    args: list[Arg] = []
    for m in mounts:
        if m.kind == "tmpfs":
            args += [*(["--size", str(m.size_mb * 2**20)] if m.size_mb else []), "--perms", m.mode, "--tmpfs", m.path]
        elif m.kind in ("proc", "dev"):
            args += [f"--{m.kind}", m.path]
        else:
            args += [f"--{m.kind}", m.source, m.path]
    return args


def drop_privileges(uid: int, die_with_parent: bool = False) -> list[str]:
    """setpriv arguments that make a root launcher an ordinary user with no way back.
    `die_with_parent`: SIGKILL when the grader's thread that started it ends (bwrap's --die-with-parent)."""
    death = ["--pdeathsig", "KILL"] if die_with_parent and setpriv_has_pdeathsig() else []
    return [
        exe("setpriv"),
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        *death,
        "--",
    ]


def _prlimit(policy: Policy) -> list[str]:
    nproc = [] if policy.nproc is None else [f"--nproc={policy.nproc}"]
    return [exe("prlimit"), f"--fsize={policy.limits.file_mb * 2**20}", "--core=0", *nproc, "--"]


def _nice(policy: Policy) -> list[str]:
    return [] if policy.nice is None else [exe("nice"), "-n", str(policy.nice)]


def _launcher(steps: list[str], private_mounts: bool, cmd: list[Arg]) -> list[Arg]:
    """`cmd`, after shell `steps` run as the grader's uid (joining cgroups, mounting), all in a
    private mount namespace of their own if `private_mounts`."""
    if steps:
        cmd = ["/bin/sh", "-c", " && ".join(steps + ['exec "$@"']), "sandbox", *cmd]
    if private_mounts:
        cmd = [exe("unshare"), "--mount", "--propagation", "private", "--", *cmd]
    return cmd


def _join_steps(policy: Policy) -> list[str]:
    return [f"echo $$ > {shlex.quote(f)}" for f in policy.cgroups]


def _uncover_steps(policy: Policy) -> list[str]:
    """Level "uid", as root in a private mount namespace: make each Python folder `src` of the
    policy's detours reachable by the kernel uid at its own path. Its highest ancestor that other
    users cannot cross (/root for pyenv) is covered by a tmpfs (its other contents vanish) holding
    only the way down to `src`, and `src` is bound there read-only, from a copy of its mount made
    before the cover (its stage)."""
    q, mount = shlex.quote, exe("mount")
    stages = dict(policy.detours)
    steps = [f"{mount} --bind -o ro {q(src)} {q(stage)}" for src, stage in policy.detours]
    covers: dict[str, list[str]] = {}
    for src, cover in policy.covers:
        covers.setdefault(cover, []).append(src)
    for cover in covers:
        steps.append(f"{mount} -t tmpfs -o mode=0711,size=1m,nosuid,nodev sandbox-cover {q(cover)}")
    for cover, srcs in covers.items():
        for src in sorted(srcs, key=len):
            rel = Path(src).relative_to(cover).parts
            steps += [f"mkdir -p -m 0711 {q(str(Path(cover, *rel[:i])))}" for i in range(1, len(rel) + 1)]
            steps.append(f"{mount} --bind -o ro {q(stages[src])} {q(src)}")
    return steps
