"""Run a student's notebook kernel inside a bubblewrap sandbox.

A submitted notebook is untrusted code: it must not read the solutions or the grader's files, reach
the network, write beside the grader's output, outlive its grading, or starve the other workers.
Each kernel therefore starts as

    [unshare -m] sh (joins the cgroups) -> prlimit -> [nice] -> [setpriv: uid 61000+slot] -> bwrap -> python

* the uid is dropped *before* bwrap, because bwrap started by root maps the sandbox uid to root
  outside (see /work/shared/sandbox-notes.md); bwrap then runs unprivileged in a user namespace;
* bwrap builds a fresh read-only root with only /usr, the Python install and the venv, private
  size-capped tmpfs for /tmp and the work folder, and no network, PIDs or IPC of the host;
* the kernel talks to the grader over Unix sockets in a private folder (TCP would need the network);
* memory, processes and CPU time are capped for the whole process tree by cgroups, or, where cgroups
  cannot be created, by a watchdog thread that sums the tree with psutil; the cgroup also gives the
  sandbox the CPU weight of one process (`nice` stands in without one);
* bwrap loads a seccomp filter (`seccomp_filter()`) that fails DENIED_SYSCALLS with EPERM.

That is level "full". Level "uid" is for a root grader on a machine that refuses bwrap (a Docker
container's seccomp profile refuses user namespaces, as on Gradescope): no bwrap, no namespaces,

    sh (joins the cgroups) -> prlimit -> [nice] -> setpriv (uid 61000+slot) -> env -i -> python
    (loads the seccomp filter, then execs) -> python

the same uid, limits and socket folder, and a work folder on the host's disk. See `Sandbox`
for what it does not hide. `best_level()` says which level this machine allows; the
MICROGRAD_SANDBOX_LEVEL environment variable ("full" or "uid") picks the level of every Sandbox
made without an explicit `level`, and the level `unavailable()` answers for (Gradescope's
run_autograder sets it to what `best_level()` found before it grades).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import queue
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # psutil ships no type hints, and types-psutil is not installed
from jupyter_client import AsyncKernelClient, AsyncKernelManager, KernelManager

from autograder.course.limits import LOCK_WAIT_SECONDS, Limits

KERNEL_UID_BASE = 61000
PROBE_UID = KERNEL_UID_BASE - 1  # the availability probes: a uid no sandbox's kernel has
# Read-only system folders the kernel needs; a symlink (merged /usr) is recreated as a symlink.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64")
# Only what the dynamic loader, time functions and the /usr/bin -> /etc/alternatives links need:
# the rest of /etc (shadow, ssh keys, the grader's configuration) stays out.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
POLL_SECONDS = 0.25
LEVELS = ("full", "uid")
LEVEL_VAR = "MICROGRAD_SANDBOX_LEVEL"
# World-writable folders where a level "uid" kernel may leave files behind: emptied of its files at close.
STRAY_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Root-only folder of the per-uid locks (see _hold_uid); LOCK_WAIT_SECONDS: how long to wait for one.
LOCK_DIRS = ("/run/micrograd-sandbox", os.path.join(tempfile.gettempdir(), "micrograd-sandbox-locks"))
# Syscalls a notebook never needs, each a door into the host's kernel (debugging other processes,
# BPF, perf, io_uring, keyrings, mounts, modules, kexec, userfaultfd, namespaces, clocks): the
# kernel's seccomp filter fails them with EPERM. Everything else is allowed.
DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key",
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at", "quotactl", "swapon", "swapoff",
    "unshare", "setns", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "syslog", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "iopl", "ioperm", "lookup_dcookie", "fanotify_init", "vhangup", "nfsservctl", "uselib",
)  # fmt: skip
# Debian's python3-seccomp (libseccomp's own binding) builds the filter: it is for the system
# Python only, so a small program of it runs there once per machine and the result is kept.
SECCOMP_PYTHON = "/usr/bin/python3"
_BUILD_FILTER = (
    "import errno, sys, seccomp\n"
    "f = seccomp.SyscallFilter(seccomp.ALLOW)\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        f.add_rule(seccomp.ERRNO(errno.EPERM), name)\n"
    "    except Exception:\n"  # a syscall this architecture does not have
    "        pass\n"
    "f.export_bpf(sys.stdout)\n"
)
# Level "uid" has no bwrap to load the filter: the launcher's last step, as the kernel uid (setpriv
# has set no_new_privs), loads it from an inherited fd and execs the kernel, which keeps it.
_LOAD_FILTER = (
    "import ctypes, os, sys\n"
    "fd = int(sys.argv[1])\n"
    "prog = b''.join(iter(lambda: os.read(fd, 65536), b''))\n"
    "os.close(fd)\n"
    "class Prog(ctypes.Structure):\n"
    "    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_char_p)]\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "p = Prog(len(prog) // 8, prog)\n"
    "if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(p), 0, 0):\n"  # NO_NEW_PRIVS, SECCOMP FILTER
    "    sys.exit('cannot load the seccomp filter: ' + os.strerror(ctypes.get_errno()))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
WORKER_CGROUP = "micrograd-worker-"  # the name of a grading worker's own cgroup, then its pid
# A sandbox's CPU weight: that of one ordinary process, whatever the number of its processes.
CPU_SHARES, CPU_WEIGHT, NICE = 1024, 100, 10


def _tool(name: str) -> str | None:
    return shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")


def _exe(name: str) -> str:
    """The tool a command runs: `unavailable()` has made sure that it is installed."""
    return _tool(name) or name


def _python_dirs() -> list[str]:
    """The Python install and the venv, not their parents: the repository beside the venv stays out."""
    return list(dict.fromkeys([sys.base_prefix, sys.prefix]))


# Packages a graded kernel never imports: PyTorch would compute every expected gradient beside
# the student's code. Inside bwrap an empty tmpfs covers each; at level "uid" they become root's
# alone (0700). The grader puts its stand-in (`torch_stand_in.py`) in the work folder instead.
HIDDEN_PACKAGES = ("torch", "functorch", "torchgen")


def _hidden_dirs() -> list[str]:
    """The folders of HIDDEN_PACKAGES in this Python's site-packages."""
    roots = dict.fromkeys(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p))
    return [os.path.join(r, n) for r in roots for n in HIDDEN_PACKAGES if os.path.isdir(os.path.join(r, n))]


def _hide_from_other_users(dirs: list[str]) -> None:
    """Level "uid": make each folder of `dirs` root's alone (the grader itself never imports them)."""
    for d in dirs:
        st = os.stat(d)
        if st.st_uid == 0 and st.st_mode & 0o077:
            os.chmod(d, 0o700)


def _world_reachable(path: str) -> bool:
    """Can any uid walk to `path`? bwrap resolves bind sources as the unprivileged kernel uid."""
    p = Path(path)
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in [p, *p.parents])


def _needs_detour(path: str) -> bool:
    # The pyenv Python sits under /root (mode 0700): as uid 61000 bwrap cannot even resolve it,
    # and --ro-bind-fd does not help (bwrap realpath()s the fd's target). The launcher, still root,
    # bind-mounts it onto a reachable folder in a private mount namespace of its own instead.
    return os.geteuid() == 0 and not _world_reachable(path)


def _level(level: str | None = None) -> str:
    return level or os.environ.get(LEVEL_VAR, "").strip() or "full"


def unavailable(level: str | None = None) -> str | None:
    """Why a sandbox cannot be set up on this machine (e.g. 'bwrap is not installed', 'user
    namespaces are disabled'), or None. Cheap; cache the answer.

    For `level` ("full" or "uid"); by default the level named by MICROGRAD_SANDBOX_LEVEL, else
    "full". So with MICROGRAD_SANDBOX_LEVEL=uid it is None where a root grader can run kernels at
    level "uid" (bwrap or not), and the grader grades at that level."""
    level = _level(level)
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


def hide_from_kernels(*paths: str | Path) -> None:
    """`chmod -R go-rwx` each of `paths` (files stay their owner's: a root grader keeps reading
    them), except what a kernel must run: the Python install and the venv (`sys.base_prefix`,
    `sys.prefix`) stay as they are. A level "uid" kernel reads what any user may read: run this
    over the grader's own files (the repository, hidden tests, solutions, .work/, results) before
    any kernel runs. Its launcher then reaches a Python folder hidden below them through a private
    mount of its own (see `_uncover_steps`); only where a private mount namespace is refused (a
    container without CAP_SYS_ADMIN) do the folders on the way down to it stay traversable, not
    listable (o+x). Symlinks are not followed; a missing path is skipped."""
    keep = {os.path.realpath(d) for d in _python_dirs()}
    way_down = not _private_mounts()
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


def default_level() -> str:
    """The level of a Sandbox made without one: MICROGRAD_SANDBOX_LEVEL, else "full"."""
    return _level()


@functools.cache
def _private_mounts() -> bool:
    """Can this grader, as root, give a launcher a mount namespace of its own?"""
    if os.geteuid() != 0 or not (_tool("unshare") and _tool("mount")):
        return False
    try:
        run = subprocess.run(
            [_exe("unshare"), "--mount", "--propagation", "private", "--", "/bin/true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


@functools.cache
def _bwrap_unavailable() -> str | None:
    """Why level "full" cannot run here, or None."""
    root = os.geteuid() == 0
    for tool in ["bwrap", "prlimit"] + (["setpriv", "unshare", "mount"] if root else []):
        if not _tool(tool):
            return f"{tool} is not installed"
    try:
        if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
            return "user namespaces are disabled"
    except OSError:
        pass
    # Namespaces can still be refused (a container's seccomp profile, AppArmor): try one.
    probe = [*_drop_privileges(PROBE_UID), _exe("bwrap"), *_bwrap_base(), *_system_binds(), "--", "/bin/true"]
    if any(_needs_detour(d) for d in _python_dirs()):
        probe = [_exe("unshare"), "--mount", "--propagation", "private", *probe]
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
    hidden = [d for d in _python_dirs() if _needs_detour(d)]
    for tool in ["setpriv", "prlimit", "env"] + (["unshare", "mount"] if hidden else []):
        if not _tool(tool):
            return f"{tool} is not installed"
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
        probe = _uid_launcher(
            PROBE_UID,
            Limits(),
            [],
            detours,
            "/",
            {"PATH": "/usr/bin:/bin"},
            [sys.executable, "-I", "-c", "import encodings, site"],
        )
        run = subprocess.run(probe, capture_output=True, text=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot start Python as uid {PROBE_UID}: {e}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["?"])[-1]
        if any(_needs_detour(d) for d in _python_dirs()) and "unshare" in last:
            return (
                f"Python ({', '.join(hidden)}) is not reachable by other users and "
                f"a private mount namespace is refused: {last}"
            )
        return f"cannot start Python as uid {PROBE_UID}: {last}"
    return None


@functools.cache
def limits_enforced_by() -> str:
    """How memory, pids and CPU limits will be enforced: "cgroup v1", "cgroup v2" or "watchdog"."""
    try:
        cg = _Cgroups.create(f"sandbox-probe-{os.getpid()}", Limits())
    except OSError:
        return "watchdog"
    cg.remove()
    return cg.version


def seccomp_filter() -> bytes | None:
    """The kernel's seccomp filter (a compiled BPF program that fails DENIED_SYSCALLS with EPERM),
    or None where it cannot be built here (`seccomp_unavailable()` says why): kernels then run
    without one, and everything else of their sandbox holds."""
    return _seccomp()[0]


def seccomp_unavailable() -> str | None:
    """Why kernels run without the seccomp filter on this machine, or None."""
    return _seccomp()[1]


@functools.cache
def _seccomp() -> tuple[bytes | None, str | None]:
    # Data, made once per machine: kept in a folder only this uid can write, named by what built it.
    key = hashlib.sha256(f"{_BUILD_FILTER}{DENIED_SYSCALLS}{os.uname().machine}".encode()).hexdigest()[:16]
    try:
        kept = Path(_private_dir()) / f"seccomp-{key}.bpf"
        if kept.is_file():
            return kept.read_bytes(), None
    except (OSError, RuntimeError) as e:
        return None, f"no private folder to keep the seccomp filter in ({e})"
    if not os.access(SECCOMP_PYTHON, os.X_OK):
        return None, f"{SECCOMP_PYTHON} is missing (apt-get install python3-seccomp)"
    try:
        run = subprocess.run(
            [SECCOMP_PYTHON, "-I", "-c", _BUILD_FILTER, *DENIED_SYSCALLS], capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"cannot build the seccomp filter: {e}"
    program = run.stdout
    if run.returncode or not program or len(program) % 8:
        why = (run.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        return None, f"cannot build the seccomp filter (apt-get install python3-seccomp): {why}"
    partial = kept.with_suffix(f".{os.getpid()}")
    partial.write_bytes(program)
    partial.replace(kept)  # atomic: a concurrent grader never reads half a filter
    return program, None


def _private_dir() -> str:
    """A folder only this uid may write to: the uid locks' folder for root, else one in /tmp."""
    if os.geteuid() == 0:
        return _lock_dir()
    d = os.path.join(tempfile.gettempdir(), f"micrograd-sandbox-{os.getuid()}")
    os.makedirs(d, mode=0o700, exist_ok=True)
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RuntimeError(f"{d} is not this user's private folder")
    return d


def _drop_privileges(uid: int, die_with_parent: bool = False) -> list[str]:
    """setpriv arguments that make a root launcher an ordinary user with no way back; [] if not root.
    `die_with_parent`: SIGKILL when the grader's thread that started it ends (bwrap's --die-with-parent)."""
    if os.geteuid() != 0:
        return []
    death = ["--pdeathsig", "KILL"] if die_with_parent and _setpriv_has_pdeathsig() else []
    return [
        _exe("setpriv"),
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


@functools.cache
def _setpriv_has_pdeathsig() -> bool:  # util-linux 2.33 or newer
    try:
        return (
            "--pdeathsig"
            in subprocess.run([_exe("setpriv"), "--help"], capture_output=True, text=True, timeout=10).stdout
        )
    except (OSError, TypeError, subprocess.TimeoutExpired):
        return False


def _data_fd(fds: list[int], data: bytes) -> int:
    """A memory file holding `data`, for the launcher to inherit; added to `fds` (the caller closes)."""
    fd = os.memfd_create("sandbox-data")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    fds.append(fd)
    return fd


def _nice(lower: bool) -> list[str]:
    """Where no cgroup gives the sandbox a CPU weight of its own, a lower priority stands in."""
    return [_exe("nice"), "-n", str(NICE)] if lower else []


def _launcher(steps: list[str], private_mounts: bool, cmd: list[str]) -> list[str]:
    """`cmd`, after shell `steps` run as the grader's uid (joining cgroups, mounting), all in a
    private mount namespace of their own if `private_mounts`."""
    if steps:
        cmd = ["/bin/sh", "-c", " && ".join(steps + ['exec "$@"']), "sandbox", *cmd]
    if private_mounts:
        cmd = [_exe("unshare"), "--mount", "--propagation", "private", "--", *cmd]
    return cmd


def _join_steps(procs_files: list[Path]) -> list[str]:
    return [f"echo $$ > {shlex.quote(str(f))}" for f in procs_files]


def _uncover_steps(detours: dict[str, Path]) -> list[str]:
    """Level "uid", as root in a private mount namespace: make each Python folder `src` of
    `detours` reachable by the kernel uid at its own path. Its highest ancestor that other users
    cannot cross (/root for pyenv) is covered by a tmpfs (its other contents vanish) holding only
    the way down to `src`, and `src` is bound there read-only, from a copy of its mount made
    before the cover (`detours[src]`)."""
    if not detours:
        return []
    q, mount = shlex.quote, _exe("mount")
    steps = [f"{mount} --bind -o ro {q(src)} {q(str(stage))}" for src, stage in detours.items()]
    covers: dict[str, list[str]] = {}
    for src in detours:
        closed = [a for a in reversed(Path(src).parents) if not os.stat(a).st_mode & stat.S_IXOTH]
        if closed:
            covers.setdefault(str(closed[0]), []).append(src)
    for cover in covers:
        steps.append(f"{mount} -t tmpfs -o mode=0711,size=1m,nosuid,nodev sandbox-cover {q(cover)}")
    for cover, srcs in covers.items():
        for src in sorted(srcs, key=len):
            rel = Path(src).relative_to(cover).parts
            steps += [f"mkdir -p -m 0711 {q(str(Path(cover, *rel[:i])))}" for i in range(1, len(rel) + 1)]
            steps.append(f"{mount} --bind -o ro {q(str(detours[src]))} {q(src)}")
    return steps


def _uid_launcher(
    uid: int,
    limits: Limits,
    procs_files: list[Path],
    detours: dict[str, Path],
    workdir: str,
    env: dict[str, str],
    kernel_cmd: list[str],
    seccomp_fd: int | None = None,
    nice: bool = False,
) -> list[str]:
    """Level "uid": the command that runs `kernel_cmd` as `uid` in `workdir` with only `env`,
    under the seccomp filter read from `seccomp_fd` if given, at a lower priority if `nice`."""
    if seccomp_fd is not None:
        kernel_cmd = [sys.executable, "-I", "-S", "-c", _LOAD_FILTER, str(seccomp_fd), *kernel_cmd]
    # RLIMIT_NPROC counts the tasks of the uid, which are all this sandbox's: a cap at fork time.
    # Beside a pids cgroup it sits one above, so that the cgroup (which counts its refusals) refuses first.
    nproc = limits.pids + (1 if procs_files else 0)
    cmd = [
        _exe("prlimit"),
        f"--fsize={limits.file_mb * 2**20}",
        "--core=0",
        f"--nproc={nproc}",
        "--",
        *_nice(nice),
        *_drop_privileges(uid, die_with_parent=True),
        _exe("env"),
        "-i",
        f"--chdir={workdir}",
        "--",
        *(f"{k}={v}" for k, v in env.items()),
        *kernel_cmd,
    ]
    return _launcher(_join_steps(procs_files) + _uncover_steps(detours), bool(detours), cmd)


def _bwrap_base() -> list[str]:
    # --unshare-all: no network, no host PIDs/IPC; --unshare-user explicitly, also when started
    # via setpriv; --disable-userns: the notebook cannot nest namespaces to widen the kernel surface;
    # --new-session: no TIOCSTI into a terminal; --die-with-parent: a dead grader leaves nothing.
    return ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]


def _system_binds() -> list[str]:
    args = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in ETC_FILES:
        args += ["--ro-bind-try", f, f]
    return args + ["--proc", "/proc", "--dev", "/dev"]


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


def _hold_uid(uid: int, exclusive: bool) -> int:
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


def _own_paths() -> dict[str, str]:
    """{controller ("" for v2): the path of this process's cgroup}; a grading worker's own cgroup
    counts as its parent, so that its kernels' cgroups are its siblings, never under its limit."""
    mine = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if Path(path).name.startswith(WORKER_CGROUP):
            path = str(Path(path).parent)
        for c in ctrls.split(",") if ctrls else [""]:
            mine[c] = path
    return mine


class _Cgroups:
    """Memory, pids and CPU-time accounting for one sandbox, created under the grader's own cgroup
    (so that it also works inside a container that delegates only its own subtree)."""

    def __init__(self, version: str, dirs: dict[str, Path]):
        self.version, self.dirs = version, dirs

    @staticmethod
    def _own() -> tuple[str, dict[str, Path]]:
        """("cgroup v1" | "cgroup v2", {controller, "" for v2: the folder of our own cgroup}),
        from /proc/self/cgroup and the cgroup mounts (a container mounts its own subtree as root)."""
        mine = _own_paths()
        mounts = {}  # controller ("" for v2) -> (mount root, mount point)
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, right = line.split(" - ")
            fields, (fstype, _, opts) = left.split(), right.split()
            if fstype == "cgroup2":
                mounts[""] = (fields[3], fields[4])
            elif fstype == "cgroup":
                for o in opts.split(","):
                    mounts.setdefault(o, (fields[3], fields[4]))

        def folder(ctrl: str) -> Path:
            root, point = mounts[ctrl]
            return Path(point) / os.path.relpath(mine[ctrl], root)

        if all(c in mine and c in mounts for c in ("memory", "pids", "cpuacct")):
            found: dict[str, Path] = {
                c: folder(c) for c in ("memory", "pids", "cpuacct", "cpu") if c in mine and c in mounts
            }
            if found.get("cpu") == found["cpuacct"]:  # co-mounted (cpu,cpuacct): one folder, made once
                del found["cpu"]
            return "cgroup v1", found
        if "" in mine and "" in mounts:
            return "cgroup v2", {"": folder("")}
        raise OSError("no usable cgroup hierarchy")

    @classmethod
    def create(cls, name: str, limits: Limits) -> _Cgroups:
        """Make the cgroups and set the limits; OSError (and nothing left behind) if we may not."""
        version, own = cls._own()
        made = cls(version, {})
        try:
            if version == "cgroup v2":
                # Controllers must be enabled for our children; fails (EBUSY) if our own cgroup
                # holds processes and is not the root: then the watchdog takes over.
                ctl = own[""] / "cgroup.subtree_control"
                if not {"memory", "pids"} <= set(ctl.read_text().split()):
                    ctl.write_text("+memory +pids")
                if "cpu" not in ctl.read_text().split():
                    try:  # the weight is welcome, not required
                        ctl.write_text("+cpu")
                    except OSError:
                        pass
            for ctrl, parent in own.items():
                (parent / name).mkdir()
                made.dirs[ctrl] = parent / name
            mb = limits.memory_mb * 2**20
            if version == "cgroup v1":
                made._write("memory", "memory.limit_in_bytes", mb)
                made._write("memory", "memory.memsw.limit_in_bytes", mb, optional=True)  # no swap either
                made._write("pids", "pids.max", limits.pids)
                made._write("cpu" if "cpu" in made.dirs else "cpuacct", "cpu.shares", CPU_SHARES, optional=True)
            else:
                made._write("", "memory.max", mb)
                made._write("", "memory.swap.max", 0, optional=True)
                made._write("", "pids.max", limits.pids)
                made._write("", "cpu.weight", CPU_WEIGHT, optional=True)
        except (OSError, KeyError) as e:
            made.remove()
            raise OSError(f"cannot create cgroups: {e}") from e
        return made

    @classmethod
    def for_worker(cls, name: str, memory_mb: int) -> _Cgroups:
        """A memory cgroup for a grading worker, beside its kernels' cgroups; OSError if we may not."""
        version, own = cls._own()
        ctrl, mb = ("memory" if version == "cgroup v1" else ""), memory_mb * 2**20
        made = cls(version, {})
        try:
            if version == "cgroup v2":
                ctl = own[""] / "cgroup.subtree_control"
                if "memory" not in ctl.read_text().split():
                    ctl.write_text("+memory")
            (own[ctrl] / name).mkdir()
            made.dirs[ctrl] = own[ctrl] / name
            if version == "cgroup v1":
                made._write(ctrl, "memory.limit_in_bytes", mb)
                made._write(ctrl, "memory.memsw.limit_in_bytes", mb, optional=True)
            else:
                made._write(ctrl, "memory.max", mb)
                made._write(ctrl, "memory.swap.max", 0, optional=True)
        except (OSError, KeyError) as e:
            made.remove()
            raise OSError(f"cannot create a cgroup: {e}") from e
        return made

    def oom_killed(self) -> bool:
        v1 = self.version == "cgroup v1"
        try:
            return bool(self._stat("memory" if v1 else "", "memory.oom_control" if v1 else "memory.events", "oom_kill"))
        except (OSError, KeyError):
            return False

    def _write(self, ctrl: str, file: str, value: int, optional: bool = False) -> None:
        try:
            (self.dirs[ctrl] / file).write_text(str(value))
        except OSError:
            if not optional:
                raise

    def _stat(self, ctrl: str, file: str, key: str) -> int:
        for line in (self.dirs[ctrl] / file).read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
        return 0

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def pids(self) -> set[int]:
        found = set()
        for f in self.procs_files():
            try:
                found |= {int(p) for p in f.read_text().split()}
            except OSError:
                pass
        return found

    def over(self, limits: Limits) -> str | None:
        """Which limit the tree has hit, from the kernel's own counters (exact, even after a death)."""
        v1 = self.version == "cgroup v1"
        if self._stat("memory" if v1 else "", "memory.oom_control" if v1 else "memory.events", "oom_kill"):
            return f"the notebook used more than {limits.memory_mb} MB of memory"
        if self._stat("pids" if v1 else "", "pids.events", "max"):
            return f"the notebook started more than {limits.pids} processes"
        cpu = (
            int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
            if v1
            else self._stat("", "cpu.stat", "usage_usec") / 1e6
        )
        if cpu > limits.cpu_seconds:
            return f"the notebook used more than {limits.cpu_seconds} s of CPU time"
        return None

    def remove(self) -> None:
        for d in self.dirs.values():
            for _ in range(50):  # rmdir fails with EBUSY until the killed tasks are gone
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def confine_worker(pid: int, memory_mb: int) -> _Cgroups | None:
    """Put the grading worker `pid` (just started, not yet grading) under a memory limit of its own,
    separate from its kernels' (their cgroups are made beside its own, never inside). Returns the
    cgroup (remove() it once the worker is gone), or None where no cgroup can be made: the caller's
    watchdog then stands in."""
    try:
        cg = _Cgroups.for_worker(f"{WORKER_CGROUP}{pid}", memory_mb)
    except OSError:
        return None
    try:
        for f in cg.procs_files():
            f.write_text(str(pid))
    except OSError:
        cg.remove()
        return None
    return cg


def _watchdog_over(procs: list[psutil.Process], limits: Limits) -> str | None:
    """Without cgroups: sum memory, threads and CPU (reaped children included) over the tree."""
    rss = tasks = cpu = 0
    for p in procs:
        try:
            with p.oneshot():
                rss += p.memory_info().rss
                tasks += p.num_threads()
                t = p.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    if rss > limits.memory_mb * 2**20:
        return f"the notebook used more than {limits.memory_mb} MB of memory"
    if tasks >= limits.pids:
        return f"the notebook started more than {limits.pids} processes"
    if cpu > limits.cpu_seconds:
        return f"the notebook used more than {limits.cpu_seconds} s of CPU time"
    return None


def _dead(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


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


class _ReadyClient(AsyncKernelClient):
    """jupyter_client's client, less a fixed wait. Its wait_for_ready ends by draining IOPub until
    IOPub has been quiet for 0.2 s: a quarter of an exercise notebook's grading, spent idle. Nothing
    needs draining: nbclient reads only the IOPub messages that answer its own requests."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # the kernel also published its status: IOPub is connected, or ask again
                    await self.iopub_channel.get_msg(timeout=0.2)
                except queue.Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class _SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel process is launched through its Sandbox."""

    sandbox: Sandbox

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        # Always the grader's own interpreter: only its install and venv are bound inside.
        return [sys.executable, "-c", _LAUNCH, "-f", self.connection_file, *(extra_arguments or [])]

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        self.sandbox._give_to_kernel(self.connection_file)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # SIGINT to the launcher's process group would kill bwrap, not interrupt the kernel
        # (which has a session of its own): interrupt through the control channel instead.
        self.kernel_spec.interrupt_mode = "message"  # type: ignore[union-attr]  # python3 always has a spec
        cmd, fds = self.sandbox._command(kernel_cmd, self.ip)
        try:
            with open(self.sandbox.log, "ab") as log:
                # Own stdout/stderr: an IPython kernel keeps writing to what it inherits, and the
                # grader's stdout carries result rows. The launcher gets no secrets in its env.
                kw.update(env={"PATH": "/usr/bin:/bin"}, cwd="/", stdout=log, stderr=log, pass_fds=fds, close_fds=True)
                await super()._async_launch_kernel(cmd, **kw)
        finally:
            for fd in fds:
                os.close(fd)
        self.sandbox._started(self.provisioner.process)  # type: ignore[union-attr]  # the local provisioner has one


class Sandbox:
    """One notebook's sandbox, at `level` "full" (bwrap) or "uid"; by default the level named by
    the environment variable MICROGRAD_SANDBOX_LEVEL, else "full".

    Level "uid" (a root grader only; for machines that refuse bwrap): the kernel runs as uid and
    gid 61000+slot (setpriv: groups cleared, capabilities dropped, no_new_privs, killed when the
    grader's thread that started it ends), in the same cgroups or under the same watchdog (which
    there sums every process of that uid), with RLIMIT_FSIZE, RLIMIT_NPROC, a clean environment,
    no inherited files, its cwd and HOME a fresh folder `workdir` on the host's disk (mode 0700,
    its own) holding only copies of `files`, TMPDIR inside it, and Unix sockets in the same private
    folder as level "full". close() kills every process of its uid (it owns no others: a level
    "uid" sandbox holds its uid alone, so it first waits until no other sandbox of that uid, of
    either level, is open on the machine) and removes the files of that uid from /tmp, /var/tmp
    and /dev/shm.

    What level "uid" does NOT do: it hides nothing that any user may read. The kernel sees the
    host's whole filesystem with ordinary file permissions (make the grader's own files private
    first: `hide_from_kernels`), the host's processes and their command lines, and the network.
    It can write into world-writable folders, and its disk use is not capped (`disk_mb`); only
    each file's size (`file_mb`) is. The only namespace it may use is a private mount namespace
    of the launcher, and only where the Python install is otherwise unreachable by other users
    (pyenv under /root: there a tmpfs covers that folder with only the way to Python in it).
    """

    WORKDIR = "/home/student"  # the kernel's cwd and HOME inside the sandbox (level "full")

    def __init__(
        self,
        files: dict[str, Path],
        limits: Limits,
        slot: int = 0,
        env: dict[str, str] | None = None,
        level: str | None = None,
    ):
        level = _level(level)
        if level not in LEVELS:
            raise ValueError(f"sandbox level must be one of {LEVELS} ({LEVEL_VAR}), not {level!r}")
        if level == "uid" and os.geteuid() != 0:
            raise ValueError("sandbox level 'uid' needs a grader running as root")
        for name in files:
            if os.path.isabs(name) or ".." in Path(name).parts or Path(name).parts[:1] == (".tmp",):
                raise ValueError(f"file name must stay inside the work folder: {name}")
        self.files, self.limits, self.slot, self.env = dict(files), limits, slot, dict(env or {})
        self.level = level
        self.root = os.geteuid() == 0
        # A uid of its own per worker: not the grader's, and RLIMIT_NPROC becomes per sandbox.
        self.uid = KERNEL_UID_BASE + slot if self.root else os.getuid()
        self._uid_lock = _hold_uid(self.uid, exclusive=level == "uid") if self.root else None
        self._dir = Path(tempfile.mkdtemp(prefix="sandbox-"))
        # The kernel uid must walk through to its socket folder, but not list or read the rest.
        self._dir.chmod(0o711)
        self.log = self._dir / "kernel.log"
        self._conn = self._dir / "conn"
        self._conn.mkdir(mode=0o700)
        self._give_to_kernel(self._conn)
        self._detours = {d: self._dir / f"ro-{i}" for i, d in enumerate(_python_dirs()) if _needs_detour(d)}
        for mountpoint in self._detours.values():
            mountpoint.mkdir()
        self._launched: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._closed = threading.Event()
        self._watch: threading.Thread | None = None
        self._kms = 0
        self._sockets, self._sealed = "", True
        self._workdir = self.WORKDIR if level == "full" else ""
        try:
            self._cgroups: _Cgroups | None = _Cgroups.create(self._dir.name, limits)
        except OSError:
            self._cgroups = None
        self.enforced_by = self._cgroups.version if self._cgroups else "watchdog"

    @property
    def workdir(self) -> str:
        """The kernel's cwd and HOME: WORKDIR inside bwrap; at level "uid" a folder on the host,
        fresh for each kernel start ("" before the first)."""
        return self._workdir

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kernel_manager(self) -> KernelManager:
        """A KernelManager for nbclient: NotebookClient(nb, km=sandbox.kernel_manager(), ...). It
        starts an IPython kernel (`_LAUNCH`, `-f CONNECTION_FILE`) inside the sandbox, with transport
        'ipc' (Unix sockets) in a private connection folder that only this sandbox and the grader see.

        It is an AsyncKernelManager (a KernelManager subclass), because nbclient drives its client
        asynchronously. The kernel's own stdout/stderr (and bwrap's errors) go to `self.log`."""
        self._kms += 1
        km = _SandboxKernelManager(
            kernel_name="python3",
            transport="ipc",
            cache_ports=False,
            ip=str(self._conn / f"k{self._kms}"),
            connection_file=str(self._conn / f"k{self._kms}.json"),
            client_factory=_ReadyClient,
        )
        km.sandbox = self
        return km

    def stop_reason(self) -> str | None:
        """Why the sandbox killed the notebook: 'the notebook used more than N MB of memory', 'the
        notebook used more than N s of CPU time', 'the notebook started more than N processes' ...
        or None."""
        with self._lock:
            if self._reason is None and self._cgroups and not self._closed.is_set():
                # The kernel may have died of the OOM killer before the watch thread looked.
                self._reason = self._cgroups.over(self.limits)
            return self._reason

    def close(self) -> None:
        """Kill everything the notebook started (its PID namespace; at level "uid" every process of
        its uid), remove the cgroups and the temporary folders. Idempotent."""
        if self._closed.is_set():
            return
        self.stop_reason()  # last look at the counters before they go
        self._closed.set()
        self._kill_all()
        if self._watch:
            self._watch.join()
        if self._cgroups:
            self._cgroups.remove()
        if self.level == "uid" and self._launched:
            self._remove_strays()
        self._conn.chmod(0o700)  # a sealed folder (non-root) cannot be emptied otherwise
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._uid_lock is not None:
            os.close(self._uid_lock)  # last: until now, any process of its uid may still be its own
            self._uid_lock = None

    # -- internals ---------------------------------------------------------------------------

    def _give_to_kernel(self, path: str | Path) -> None:
        if self.root:
            os.chown(path, self.uid, self.uid)

    def _kernel_env(self, home: str = WORKDIR, tmp: str = "/tmp") -> dict[str, str]:
        return {
            "PATH": f"{sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.env,
        }

    def _command(self, kernel_cmd: list[str], ip: str) -> tuple[list[str], list[int]]:
        """The launcher command around `kernel_cmd`, and the fds it must inherit (caller closes)."""
        if self._closed.is_set() or self.stop_reason():
            # Its counters (OOM kills, refused forks, CPU) belong to this notebook: no second life.
            raise RuntimeError(f"sandbox closed: {self.stop_reason() or 'close() was called'}")
        # (Re)open the socket folder to the kernel, without the sockets of an earlier start.
        with self._lock:
            self._give_to_kernel(self._conn)
            self._conn.chmod(0o700)
            for f in self._conn.glob(f"{Path(ip).name}-*"):
                f.unlink()
            self._sockets, self._sealed = ip, False
        fds: list[int] = []
        data_fd = functools.partial(_data_fd, fds)
        program = seccomp_filter()
        if self.level == "uid":
            return self._uid_command(kernel_cmd, ip, data_fd(program) if program else None), fds

        disk = str(self.limits.disk_mb * 2**20)
        # /tmp first: a later mount on it would hide a Python or venv that lives below /tmp.
        bw = [
            _exe("bwrap"),
            *_bwrap_base(),
            *_system_binds(),
            "--size",
            disk,
            "--perms",
            "1777",
            "--tmpfs",
            "/dev/shm",
            "--size",
            disk,
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
        ]
        bw += self._python_binds()
        bw += ["--size", disk, "--perms", "0700", "--tmpfs", self.WORKDIR, "--bind", str(self._conn), str(self._conn)]
        # Copies, never binds: the notebook may change its files, the host ones stay as they were.
        for name, src in self.files.items():
            for parent in reversed(Path(name).parents[:-1]):
                bw += ["--dir", f"{self.WORKDIR}/{parent}"]
            fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            bw += ["--perms", "0644", "--file", str(fd), f"{self.WORKDIR}/{name}"]
        # A passwd entry of its own, so getpass/pwd work without the host's user list.
        bw += [
            "--perms",
            "0644",
            "--file",
            str(data_fd(f"student:x:{self.uid}:{self.uid}::{self.WORKDIR}:/bin/sh\n".encode())),
            "/etc/passwd",
            "--perms",
            "0644",
            "--file",
            str(data_fd(f"student:x:{self.uid}:\n".encode())),
            "/etc/group",
            "--remount-ro",
            "/",
            "--chdir",
            self.WORKDIR,
            "--clearenv",
        ]
        for k, v in self._kernel_env().items():
            bw += ["--setenv", k, v]
        bw += ["--seccomp", str(data_fd(program))] if program else []
        bw += ["--", *kernel_cmd]

        lim = [_exe("prlimit"), f"--fsize={self.limits.file_mb * 2**20}", "--core=0"]
        if self.root and not self._cgroups:
            # No pids cgroup: the uid is this sandbox's alone, so RLIMIT_NPROC caps the tree at fork time.
            lim.append(f"--nproc={self.limits.pids}")
        cmd = [*lim, "--", *_nice(self._cgroups is None), *_drop_privileges(self.uid), *bw]

        # Join the cgroups (and mount the detours) while still the grader's uid, then exec onwards.
        steps = _join_steps(self._cgroups.procs_files() if self._cgroups else [])
        steps += [
            f"{_exe('mount')} --bind -o ro {shlex.quote(src)} {shlex.quote(str(dst))}"
            for src, dst in self._detours.items()
        ]
        return _launcher(steps, bool(self._detours), cmd), fds

    def _python_binds(self) -> list[str]:
        """Python and the venv read-only, with HIDDEN_PACKAGES covered by empty folders."""
        args = []
        for d in _python_dirs():
            args += ["--ro-bind", str(self._detours.get(d, d)), d]
        for d in _hidden_dirs():
            args += ["--perms", "0555", "--tmpfs", d]
        return args

    def _uid_command(self, kernel_cmd: list[str], ip: str, seccomp_fd: int | None) -> list[str]:
        """Level "uid": a fresh work folder, filled while it is still root's alone (nothing the
        kernel uid does can redirect the copies), then given to the kernel uid."""
        _hide_from_other_users(_hidden_dirs())
        work = self._dir / f"work-{Path(ip).name}"
        if work.exists():  # a restart: the notebook's earlier folder goes
            shutil.rmtree(work)
        work.mkdir(mode=0o700)
        for name, src in self.files.items():
            dest = work / name
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(src, dest)  # a copy: the notebook may change it, the grader's stays
            dest.chmod(0o644)
        (work / ".tmp").mkdir(mode=0o700)
        for d, dirs, names in os.walk(work):
            for entry in [d, *(os.path.join(d, n) for n in dirs + names)]:
                os.chown(entry, self.uid, self.uid, follow_symlinks=False)
        work.chmod(0o700)
        self._workdir = str(work)
        return _uid_launcher(
            self.uid,
            self.limits,
            self._cgroups.procs_files() if self._cgroups else [],
            self._detours,
            str(work),
            self._kernel_env(str(work), str(work / ".tmp")),
            kernel_cmd,
            seccomp_fd,
            self._cgroups is None,
        )

    def _started(self, process: subprocess.Popen) -> None:
        self._launched.append(process)
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_loop, daemon=True, name="sandbox-watch")
            self._watch.start()

    def _tree(self) -> list[psutil.Process]:
        """The launchers (now bwrap) and every process below them, PID namespace included."""
        procs = []
        for popen in self._launched:
            if popen.poll() is None:
                try:
                    p = psutil.Process(popen.pid)
                    procs += [p, *p.children(recursive=True)]
                except psutil.Error:
                    pass
        return procs

    def _uid_procs(self) -> list[psutil.Process]:
        """Level "uid": every process of the kernel uid (zombies included)."""
        return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == self.uid]

    def _procs(self) -> list[psutil.Process]:
        """What the watchdog sums: the tree, and at level "uid" also whatever of its uid left the tree."""
        procs = {p.pid: p for p in self._tree()}
        if self.level == "uid":
            procs.update((p.pid, p) for p in self._uid_procs())
        return list(procs.values())

    def _kill_uid(self) -> None:
        """Level "uid": SIGKILL every process of the kernel uid. kill(-1) as that uid reaches them
        all at once (the kernel holds the task list for it, so a fork bomb cannot outrun it)."""
        for _ in range(20):
            try:
                subprocess.run(
                    ["/bin/sh", "-c", "kill -9 -1"],
                    user=self.uid,
                    group=self.uid,
                    extra_groups=[],
                    env={"PATH": "/usr/bin:/bin"},
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=10,
                )
            except (OSError, subprocess.SubprocessError):
                pass
            if all(map(_dead, self._uid_procs())):
                return
            time.sleep(0.01)

    def _remove_strays(self) -> None:
        """Level "uid": what the kernel uid left in the world-writable scratch folders."""
        for folder in STRAY_DIRS:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid != self.uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)  # never follows a symlink out of it
                    else:
                        os.unlink(entry.path)
                except OSError:
                    pass

    def _kill_all(self) -> None:
        launchers = {popen.pid for popen in self._launched}
        procs = [p for p in self._procs() if p.pid not in launchers]
        for pid in self._cgroups.pids() if self._cgroups else ():
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        # The namespace first: its init dies, the kernel takes everything in it along, and the
        # outer bwrap reaps it and exits. Killing the outer bwrap first would leave its child to
        # be reaped by the host's init, whenever that gets round to it.
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        if self.level == "uid" and self._launched:
            self._kill_uid()
        for popen in self._launched:
            try:
                popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                popen.kill()  # --die-with-parent then takes the whole PID namespace down
                popen.wait()

        # Dead means gone or a zombie: the namespace's processes are reaped by whoever inherits
        # them (the host's init), and waiting for that can take a second.
        def gone() -> bool:
            return (
                all(map(_dead, procs))
                and not (self._cgroups and self._cgroups.pids())
                and not (self.level == "uid" and self._launched and not all(map(_dead, self._uid_procs())))
            )

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not gone():
            time.sleep(0.01)

    def _seal(self) -> None:
        """Once the kernel has made its sockets, take its socket folder back: the only host disk it
        could write to (its tmpfs are size-capped; this folder is not)."""
        if self._sealed or len(list(self._conn.glob(f"{Path(self._sockets).name}-*"))) < 5:
            return
        # The connection file stays the kernel's: it re-reads it right after making the sockets.
        if self.root:
            os.chown(self._conn, 0, 0)
        self._conn.chmod(0o711 if self.root else 0o500)
        self._sealed = True

    def _watch_loop(self) -> None:
        while not self._closed.wait(POLL_SECONDS if self._sealed else 0.02):
            with self._lock:
                self._seal()
                if self._reason is None:
                    try:
                        self._reason = (
                            self._cgroups.over(self.limits)
                            if self._cgroups
                            else _watchdog_over(self._procs(), self.limits)
                        )
                    except OSError:
                        pass
                reason = self._reason
            if reason:
                self._kill_all()
                return
