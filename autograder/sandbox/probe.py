"""Which sandbox this machine allows: each level tried once with a real launcher, the answers cached."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from autograder.course.limits import Limits
from autograder.sandbox.argv import BWRAP_BASE, command, drop_privileges, mount_args, resolve
from autograder.sandbox.cgroups import limits_enforced_by
from autograder.sandbox.host import exe, needs_detour, python_dirs, tool
from autograder.sandbox.policy import KERNEL_UID_BASE, policy_for, system_mounts

PROBE_UID = KERNEL_UID_BASE - 1  # the availability probes: a uid no sandbox's kernel has
LEVELS = ("full", "uid")
LEVEL_VAR = "MICROGRAD_SANDBOX_LEVEL"


def level_or_default(level: str | None = None) -> str:
    return level or os.environ.get(LEVEL_VAR, "").strip() or "full"


def default_level() -> str:
    """The level of a Sandbox made without one: MICROGRAD_SANDBOX_LEVEL, else "full"."""
    return level_or_default()


def unavailable(level: str | None = None) -> str | None:
    """Why a sandbox cannot be set up on this machine (e.g. 'bwrap is not installed', 'user
    namespaces are disabled'), or None. Cheap; cache the answer.

    For `level` ("full" or "uid"); by default the level named by MICROGRAD_SANDBOX_LEVEL, else
    "full". So with MICROGRAD_SANDBOX_LEVEL=uid it is None where a root grader can run kernels at
    level "uid" (bwrap or not), and the grader grades at that level."""
    level = level_or_default(level)
    if level == "full":
        return _bwrap_unavailable()
    if level == "uid":
        return _uid_unavailable()
    return f"{LEVEL_VAR} must be 'full' or 'uid', not {level!r}"


def _clear_caches() -> None:
    _bwrap_unavailable.cache_clear()
    _uid_unavailable.cache_clear()


unavailable.cache_clear = _clear_caches  # type: ignore[attr-defined]  # the answers are cached per level; this forgets them


def best_level() -> str | None:
    """The strongest sandbox this machine allows: "full" (bwrap), "uid" (a root grader that can
    run kernels as another uid, within cgroups or the watchdog), or None (grade nothing).
    MICROGRAD_SANDBOX_LEVEL does not change the answer."""
    if _bwrap_unavailable() is None:
        return "full"
    if _uid_unavailable() is None:
        return "uid"
    return None


@functools.cache
def _bwrap_unavailable() -> str | None:
    """Why level "full" cannot run here, or None."""
    root = os.geteuid() == 0
    for name in ["bwrap", "prlimit"] + (["setpriv", "unshare", "mount"] if root else []):
        if not tool(name):
            return f"{name} is not installed"
    try:
        if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
            return "user namespaces are disabled"
    except OSError:
        pass
    # Namespaces can still be refused (a container's seccomp profile, AppArmor): try one.
    bwrap = [exe("bwrap"), *BWRAP_BASE, *mount_args(system_mounts()), "--", "/bin/true"]
    probe = [*(drop_privileges(PROBE_UID) if root else []), *map(str, bwrap)]
    if any(needs_detour(d) for d in python_dirs()):
        probe = [exe("unshare"), "--mount", "--propagation", "private", *probe]
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap cannot start: {e}"
    if run.returncode:
        return f"bwrap cannot build a sandbox here: {(run.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


@functools.cache
def _uid_unavailable() -> str | None:
    """Why level "uid" cannot run here, or None: it tries one kernel interpreter as the kernel uid."""
    if os.geteuid() != 0:
        return "level 'uid' needs a grader running as root (it gives each kernel a uid of its own)"
    hidden = [d for d in python_dirs() if needs_detour(d)]
    for name in ["setpriv", "prlimit", "env"] + (["unshare", "mount"] if hidden else []):
        if not tool(name):
            return f"{name} is not installed"
    if limits_enforced_by() == "watchdog":
        try:
            me = psutil.Process()
            me.memory_info(), me.cpu_times(), me.num_threads()
            list(psutil.process_iter(["uids"]))
        except (psutil.Error, OSError) as e:
            return f"neither cgroups nor the psutil watchdog work here: {e}"
    tmp = Path(tempfile.mkdtemp(prefix="sandbox-probe-"))
    try:
        tmp.chmod(0o711)
        detours = {d: tmp / f"ro-{i}" for i, d in enumerate(hidden)}
        for stage in detours.values():
            stage.mkdir()
        # The same launcher a kernel gets, for an interpreter that imports something of the venv's.
        policy = policy_for("uid", {}, Limits(), {}, PROBE_UID, True, tmp, detours, "/", [], None)
        policy = dataclasses.replace(policy, env=(("PATH", "/usr/bin:/bin"),), nice=None)
        probe, _ = resolve(command(policy, [sys.executable, "-I", "-c", "import encodings, site"]))
        run = subprocess.run(probe, capture_output=True, text=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot start Python as uid {PROBE_UID}: {e}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["?"])[-1]
        if hidden and "unshare" in last:
            return (
                f"Python ({', '.join(hidden)}) is not reachable by other users and "
                f"a private mount namespace is refused: {last}"
            )
        return f"cannot start Python as uid {PROBE_UID}: {last}"
    return None
