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

All of it is data first: `policy.Policy` holds what a kernel sees and may use, `argv.command`
derives the launcher's command line from it, and `python -m autograder sandbox --explain` prints
both.

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
