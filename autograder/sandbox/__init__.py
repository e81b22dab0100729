"""Run a student's notebook kernel inside a sandbox.

A submitted notebook is untrusted code: it must not read the solutions or the grader's files, reach
the network, write beside the grader's output, outlive its grading, or starve the other workers.
At level "full" bubblewrap builds each kernel a fresh read-only root (the Python install and the
venv, size-capped tmpfs for /tmp and the work folder, no network, PIDs or IPC of the host), after a
root grader has dropped to a uid of its own (61000 + slot; bwrap started by root maps the sandbox
uid to root outside, see /work/shared/sandbox-notes.md). Level "uid", for a root grader on a
machine that refuses bwrap (Gradescope's Docker image), keeps the uid, the limits, the seccomp
filter and the private socket folder, without namespaces (`Sandbox` says what it does not hide).
Memory, processes and CPU time are capped for the whole process tree by cgroups, or by a psutil
watchdog where none can be made.

`policy.Policy` holds what a kernel sees and may use, `argv.command` derives the launcher's command
line from it, and `python -m autograder sandbox --explain` prints both. `best_level()` says which
level this machine allows; MICROGRAD_SANDBOX_LEVEL ("full" or "uid") picks the level of every
Sandbox made without an explicit `level`, and the level `unavailable()` answers for.
"""

from autograder.course.limits import Limits
from autograder.sandbox.argv import command
from autograder.sandbox.cgroups import CPU_SHARES, CPU_WEIGHT, WORKER_CGROUP, confine_worker, limits_enforced_by
from autograder.sandbox.explain import explain
from autograder.sandbox.host import STRAY_DIRS, hide_from_kernels
from autograder.sandbox.kernel import Sandbox
from autograder.sandbox.policy import HIDDEN_PACKAGES, KERNEL_UID_BASE, NICE, Policy, policy_for
from autograder.sandbox.probe import LEVEL_VAR, LEVELS, best_level, default_level, unavailable
from autograder.sandbox.seccomp import DENIED_SYSCALLS, SECCOMP_PYTHON, seccomp_filter, seccomp_unavailable

__all__ = [
    "CPU_SHARES",
    "CPU_WEIGHT",
    "DENIED_SYSCALLS",
    "HIDDEN_PACKAGES",
    "KERNEL_UID_BASE",
    "LEVELS",
    "LEVEL_VAR",
    "NICE",
    "SECCOMP_PYTHON",
    "STRAY_DIRS",
    "WORKER_CGROUP",
    "Limits",
    "Policy",
    "Sandbox",
    "best_level",
    "command",
    "confine_worker",
    "default_level",
    "explain",
    "hide_from_kernels",
    "limits_enforced_by",
    "policy_for",
    "seccomp_filter",
    "seccomp_unavailable",
    "unavailable",
]
