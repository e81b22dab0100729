"""Resource accounting for a sandbox's process tree: its cgroups (memory, pids, CPU time and CPU
weight), a grading worker's own memory cgroup beside them, and the psutil watchdog that stands in
where no cgroup can be made."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import psutil

from autograder.course.limits import Limits

WORKER_CGROUP = "micrograd-worker-"  # the name of a grading worker's own cgroup, then its pid
# A sandbox's CPU weight: that of one ordinary process, whatever the number of its processes.
CPU_SHARES, CPU_WEIGHT = 1024, 100


@functools.cache
def limits_enforced_by() -> str:
    """How memory, pids and CPU limits will be enforced: "cgroup v1", "cgroup v2" or "watchdog"."""
    try:
        cg = Cgroups.create(f"sandbox-probe-{os.getpid()}", Limits())
    except OSError:
        return "watchdog"
    cg.remove()
    return cg.version


def procs_files_for(name: str) -> list[Path]:
    """The cgroup.procs files that `Cgroups.create(name, ...)` would make, without making them."""
    return [d / name / "cgroup.procs" for d in Cgroups.own()[1].values()]


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


class Cgroups:
    """Memory, pids and CPU-time accounting for one sandbox, created under the grader's own cgroup
    (so that it also works inside a container that delegates only its own subtree)."""

    def __init__(self, version: str, dirs: dict[str, Path]) -> None:
        self.version, self.dirs = version, dirs

    @staticmethod
    def own() -> tuple[str, dict[str, Path]]:
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
    def create(cls, name: str, limits: Limits) -> Cgroups:
        """Make the cgroups and set the limits; OSError (and nothing left behind) if we may not."""
        version, own = cls.own()
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
    def for_worker(cls, name: str, memory_mb: int) -> Cgroups:
        """A memory cgroup for a grading worker, beside its kernels' cgroups; OSError if we may not."""
        version, own = cls.own()
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


def confine_worker(pid: int, memory_mb: int) -> Cgroups | None:
    """Put the grading worker `pid` (just started, not yet grading) under a memory limit of its own,
    separate from its kernels' (their cgroups are made beside its own, never inside). Returns the
    cgroup (remove() it once the worker is gone), or None where no cgroup can be made: the caller's
    watchdog then stands in."""
    try:
        cg = Cgroups.for_worker(f"{WORKER_CGROUP}{pid}", memory_mb)
    except OSError:
        return None
    try:
        for f in cg.procs_files():
            f.write_text(str(pid))
    except OSError:
        cg.remove()
        return None
    return cg


def watchdog_over(procs: list[psutil.Process], limits: Limits) -> str | None:
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


def dead(p: psutil.Process) -> bool:
    try:
        return bool(p.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
