"""The kernel's seccomp filter: which syscalls fail, the filter built once per machine as data, and
the loader a level "uid" launcher runs to apply it."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

from autograder.course.files import write_whole
from autograder.sandbox.host import private_dir

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
LOAD_FILTER = (
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
        kept = Path(private_dir()) / f"seccomp-{key}.bpf"
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
    write_whole(kept, program)  # a concurrent grader never reads half a filter
    return program, None
