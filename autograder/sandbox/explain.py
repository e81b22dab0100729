"""`python -m autograder sandbox --explain`: the policy of a kernel in readable form, one section
per kind, then the exact command line derived from it."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from autograder.course.limits import Limits
from autograder.sandbox.argv import Arg, Fd, command, kernel_command
from autograder.sandbox.cgroups import CPU_SHARES, CPU_WEIGHT, limits_enforced_by, procs_files_for
from autograder.sandbox.policy import LAUNCHER_ENV, WORKDIR, Policy, detours, kernel_uid, policy_for
from autograder.sandbox.probe import level_or_default
from autograder.sandbox.seccomp import seccomp_filter, seccomp_unavailable

# A sandbox's folder is made by mkdtemp when it opens; until then, its name is not known.
PLACEHOLDER = "sandbox-XXXXXXXX"


def planned(
    files: Mapping[str, Path],
    limits: Limits,
    env: Mapping[str, str],
    level: str | None = None,
    slot: int = 0,
    folder: Path | None = None,
) -> tuple[Policy, list[Arg]]:
    """The policy and command line of the first kernel of a Sandbox(files, limits, slot, env, level)
    made on this machine, whose folder is `folder` (a placeholder by default)."""
    level = level_or_default(level)
    root = os.geteuid() == 0
    if level == "uid" and not root:
        raise ValueError("sandbox level 'uid' needs a grader running as root")
    folder = folder or Path(tempfile.gettempdir(), PLACEHOLDER)
    cgroups = [] if limits_enforced_by() == "watchdog" else procs_files_for(folder.name)
    workdir = WORKDIR if level == "full" else str(folder / "work-k1")
    uid = kernel_uid(slot, root)
    policy = policy_for(
        level, files, limits, env, uid, root, folder / "conn", detours(folder), workdir, cgroups, seccomp_filter()
    )
    return policy, command(policy, kernel_command(str(folder / "conn" / "k1.json")))


def explain(
    files: Mapping[str, Path], limits: Limits, env: Mapping[str, str], level: str | None = None, slot: int = 0
) -> str:
    """What `planned` finds, as `describe` prints it."""
    return describe(*planned(files, limits, env, level, slot))


def describe(policy: Policy, argv: Sequence[Arg]) -> str:
    """`policy` in readable form, one section per kind, then `argv`, the command line derived from it."""
    full = policy.level == "full"
    out = [f'sandbox level "{policy.level}" ({"bubblewrap" if full else "a uid of its own, no namespaces"})']
    out += ["", "user"]
    out.append(f"  uid and gid {policy.uid}")
    if policy.switch_user:
        out.append(
            "  set by setpriv before anything of the kernel runs: groups cleared, capabilities dropped, no_new_privs"
        )
    else:
        out.append("  the grader's own (it does not run as root)")
    out += [f"  {path}: {content.strip()}" for path, content in policy.written]
    out += ["", "filesystem"]
    if full:
        out += [f"  {_mount(m.kind, m.path, m.source, m.mode, m.size_mb)}" for m in policy.mounts]
        out.append(f"  bind         {policy.sockets}  (writable until its sockets exist: the kernel's Unix sockets)")
        out.append("  everything else read-only (--remount-ro /)")
    else:
        out.append("  the host's, with ordinary file permissions: nothing is hidden that any user may read")
        out.append(f"  work folder {policy.workdir} (0700, the kernel's own, on the host's disk)")
        out.append(f"  sockets in {policy.sockets}")
        out += [f"  root's alone (0700): {d}" for d in policy.hidden]
    out += [f"  copy         {policy.workdir}/{name}  (of {src})" for name, src in policy.files]
    for src, stage in policy.detours:
        out.append(
            f"  {src} is not reachable by other users: the launcher mounts it ({stage}) in a mount namespace of its own"
        )
    out += ["", "environment (everything else is cleared)"]
    out += [f"  {k}={v}" for k, v in policy.env]
    out.append(f"  (the launcher itself runs with {' '.join(f'{k}={v}' for k, v in LAUNCHER_ENV.items())} alone)")
    out += ["", "network"]
    out.append(
        "  the host's (level 'uid' cannot refuse it)" if policy.network else "  none: a network namespace of its own"
    )
    out += ["", "limits"]
    out += _limits(policy)
    out += ["", "syscalls"]
    if policy.seccomp:
        loader = "bwrap --seccomp" if full else "the launcher, before it execs the kernel"
        out.append(f"  {len(policy.denied_syscalls)} fail with EPERM (seccomp filter loaded by {loader}):")
        out += [f"    {line}" for line in _wrapped(policy.denied_syscalls)]
    else:
        out.append(f"  no seccomp filter: {seccomp_unavailable() or 'none given'}")
    out += ["", "command line (<fd: ...>: a file descriptor the launcher inherits)", render(argv)]
    return "\n".join(out) + "\n"


def render(argv: Sequence[Arg]) -> str:
    """`argv` as a shell would read it, an option to a line."""
    words = [str(a) if isinstance(a, Fd) else shlex.quote(a) for a in argv]
    lines = [words[0]]
    for before, word in zip(words, words[1:], strict=False):
        if (word.startswith("--") and word != "--") or before == "--":
            lines.append(word)
        else:
            lines[-1] += f" {word}"
    return " \\\n    ".join(lines)


def _mount(kind: str, path: str, source: str, mode: str, size_mb: int) -> str:
    if kind == "tmpfs":
        size = f", {size_mb} MB" if size_mb else ", empty: hides what is below"
        return f"{'tmpfs':<12} {path}  (mode {mode}{size})"
    if kind == "symlink":
        return f"{'symlink':<12} {path} -> {source}"
    if kind in ("proc", "dev"):
        return f"{kind:<12} {path}"
    return f"{kind:<12} {path}" + (f"  (from {source})" if source != path else "")


def _limits(policy: Policy) -> list[str]:
    lim, full = policy.limits, policy.level == "full"
    tree = f"the whole process tree, by {'cgroups' if policy.cgroups else 'the psutil watchdog'}"
    if policy.cgroups:
        tree += (
            f" ({limits_enforced_by()}; CPU weight of one process: cpu.shares {CPU_SHARES} / cpu.weight {CPU_WEIGHT})"
        )
    else:
        tree += f" (at nice {policy.nice})"
    nproc = f", and RLIMIT_NPROC {policy.nproc} of its uid" if policy.nproc is not None else ""
    return [
        f"  cell_timeout  {lim.cell_timeout} s a cell (the grader's notebook client)",
        f"  wall_seconds  {lim.wall_seconds} s the whole notebook (the grader's notebook client)",
        f"  memory_mb     {lim.memory_mb} MB, {tree}",
        f"  cpu_seconds   {lim.cpu_seconds} s of CPU time, the same tree",
        f"  pids          {lim.pids} processes and threads, the same tree{nproc}",
        f"  file_mb       {lim.file_mb} MB the largest file it writes (RLIMIT_FSIZE)",
        f"  disk_mb       {lim.disk_mb} MB "
        + ("each of its tmpfs (/tmp, /dev/shm, the work folder)" if full else "not capped at level 'uid'"),
    ]


def _wrapped(names: Sequence[str], width: int = 92) -> list[str]:
    lines = [""]
    for name in names:
        if lines[-1] and len(lines[-1]) + len(name) + 2 > width:
            lines.append("")
        lines[-1] += f"{name}, " if name != names[-1] else name
    return lines
