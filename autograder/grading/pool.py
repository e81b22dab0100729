"""The worker processes that grade, and their deadlines.

The parent process deals the work: each worker (`python -m autograder.worker OUT --slot K
--assignments A1,A2`) reads one JSON task a line on stdin and answers one JSON result a line on
stdout; it gets its next task only when it has answered the last, so a worker that finishes
early takes the next submission. A worker that dies, stalls or passes its task's deadline is
killed with everything it started and replaced; the submission it was grading is tried once
more, then marked as an error, and the batch goes on. Only this process writes results.
"""

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import psutil

from autograder.course.assignment import assignment

# A worker's own memory (WORKER_MEMORY_MB; its kernels have limits of their own): a cgroup where one
# can be made, and this process's watchdog in any case.
from autograder.course.limits import EXIT_SECONDS, MARGIN_SECONDS, STARTUP_SECONDS, TRIES, WORKER_MEMORY_MB
from autograder.course.paths import ROOT
from autograder.grading import cache
from autograder.grading.submission import Submission
from autograder.worker import cohort_course
from autograder.worker.result import Result, Status, Task

# The worker program; tests put a fake one in its place. Its arguments follow: OUT --slot K --assignments A,B
WORKER = [sys.executable, "-m", "autograder.worker"]

WORKER_STOPPED = "the grading worker stopped while grading this submission (see logs/)"
NO_WORKER = "no grading worker could start (see logs/)"


def _longest_first(todo: list[tuple[Submission, Task]]) -> list[Task]:
    """Tasks in the order they are dealt: the assignments allowed the longest wall time first,
    later assignments (the capstone) first among equals, then by student."""
    wall = {aid: assignment(aid).limits.wall_seconds for aid in {t.assignment for _, t in todo}}
    order = sorted((t for _, t in todo), key=lambda t: t.student)
    order.sort(key=lambda t: t.assignment, reverse=True)
    order.sort(key=lambda t: wall[t.assignment], reverse=True)
    return order


@dataclass
class _Slot:
    """One worker place (0..jobs-1) and the worker that holds it now."""

    k: int
    proc: "subprocess.Popen[str] | None" = None
    log: TextIO | None = None
    gen: int = 0  # lines from an older worker of this slot are ignored
    task: Task | None = None
    deadline: float = math.inf
    ready: bool = False
    fatal: str | None = None  # why the worker could not set up
    setup_failures: int = 0
    cgroup: Any = None  # the worker's memory cgroup (sandbox.cgroups.Cgroups), if one could be made


class Workers:
    """Deals the tasks one at a time to `jobs` worker processes; this process alone writes results."""

    def __init__(
        self, todo: list[tuple[Submission, Task]], out: Path, jobs: int, progress: bool, key: bytes, sandboxed: bool
    ) -> None:
        self.subs = {(s.student, s.assignment): s for s, _ in todo}
        self.waiting = deque(_longest_first(todo))
        self.aids = sorted({t.assignment for _, t in todo})
        self.budget = {aid: assignment(aid).limits.wall_seconds + MARGIN_SECONDS for aid in self.aids}
        self.out, self.progress, self.key, self.sandboxed = out, progress, key, sandboxed
        self.events: queue.Queue[tuple[int, int, str | None]] = queue.Queue()
        self.slots = [_Slot(k) for k in range(max(1, min(jobs, len(todo))))]
        self.tries: Counter[tuple[str, str]] = Counter()
        self.total, self.done, self.failed = len(todo), 0, 0

    def run(self) -> None:
        (self.out / "logs").mkdir(exist_ok=True)
        try:
            for slot in self.slots:
                self.start(slot, self.waiting.popleft())
            while any(slot.proc for slot in self.slots):
                self.next_event()
                self.enforce_deadlines()
        finally:
            for slot in self.slots:  # on an interruption too: no worker outlives the grader
                if slot.proc is not None:
                    self.retire(slot, kill=True)
        for task in self.waiting:  # every worker failed to start
            self.finish(task, _error_result(task, NO_WORKER))
        if self.progress:
            print(file=sys.stderr)

    def next_event(self) -> None:
        """Wait up to a second, or the nearest deadline, for a line from a worker, and act on it."""
        wait = min(slot.deadline for slot in self.slots) - time.monotonic()
        try:
            k, gen, line = self.events.get(timeout=min(max(wait, 0), 1.0))
        except queue.Empty:
            return
        slot = self.slots[k]
        if gen != slot.gen or slot.proc is None:
            return
        if line is not None:
            self.heard(slot, line)
        elif slot.task is None and slot.fatal is None:
            self.retire(slot, kill=False)  # done, and gone as asked
            if self.waiting:  # put back by a slot whose workers could not start
                self.start(slot, self.waiting.popleft())
        else:
            self.fail(slot, "stopped")

    def enforce_deadlines(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is not None and _rss_mb(slot.proc) > WORKER_MEMORY_MB:
                self.fail(slot, f"used more than {WORKER_MEMORY_MB} MB of memory and was killed")
            if slot.proc is None or now <= slot.deadline:
                continue
            if slot.task is None:
                self.say(slot, "worker did not exit when told to")
                self.retire(slot, kill=True)
            else:
                self.fail(slot, "passed the deadline of its task and was killed")

    def finish(self, task: Task, result: Result, slot: _Slot | None = None) -> None:
        s = self.subs[(task.student, task.assignment)]
        result.input, result.sandbox, result.slot = s.digest, self.sandboxed, slot.k if slot else None
        cache.save(result, cache.result_path(self.out, s), self.key)
        cohort_course.record(self.out, result)
        s.take(result)
        self.done += 1
        self.failed += s.state is not Status.GRADED
        if self.progress:
            _progress(self.done, self.total, self.failed)

    def say(self, slot: _Slot, text: str) -> None:
        assert slot.log is not None
        slot.log.write(f"[grader {time.strftime('%H:%M:%S')}] {text}\n")
        slot.log.flush()

    def start(self, slot: _Slot, task: Task) -> None:
        slot.log = open(self.out / "logs" / f"worker-{slot.k}.log", "a")
        self.say(slot, f"starting a worker for slot {slot.k}")
        slot.gen += 1
        slot.ready, slot.fatal = False, None
        slot.proc = subprocess.Popen(
            WORKER + [str(self.out), "--slot", str(slot.k), "--assignments", ",".join(self.aids)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=slot.log,
            text=True,
            env=_worker_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        if self.sandboxed:
            from autograder import sandbox

            slot.cgroup = sandbox.confine_worker(slot.proc.pid, WORKER_MEMORY_MB)
        threading.Thread(target=_pump, args=(slot.proc, slot.k, slot.gen, self.events), daemon=True).start()
        self.give(slot, task)

    def give(self, slot: _Slot, task: Task) -> None:
        assert slot.proc is not None and slot.proc.stdin is not None
        slot.task = task
        slot.deadline = time.monotonic() + self.budget[task.assignment] + (0 if slot.ready else STARTUP_SECONDS)
        task.slot = slot.k
        try:
            slot.proc.stdin.write(json.dumps(task.to_json()) + "\n")
            slot.proc.stdin.flush()
        except OSError:
            pass  # it has died: the end of its output says so

    def give_next(self, slot: _Slot) -> None:
        assert slot.proc is not None and slot.proc.stdin is not None
        if self.waiting:
            self.give(slot, self.waiting.popleft())
            return
        slot.task, slot.deadline = None, time.monotonic() + EXIT_SECONDS
        try:
            slot.proc.stdin.close()  # no more work: the worker exits at the end of its input
        except OSError:
            pass

    def retire(self, slot: _Slot, kill: bool) -> None:
        proc = slot.proc
        assert proc is not None and proc.stdin is not None and slot.log is not None
        if kill:
            _kill_tree(proc)
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            proc.wait()
        self.say(slot, f"worker pid {proc.pid} ended with exit code {proc.returncode}")
        if slot.cgroup is not None:
            if slot.cgroup.oom_killed():
                self.say(slot, f"worker pid {proc.pid} used more than {WORKER_MEMORY_MB} MB of memory and was killed")
            slot.cgroup.remove()
            slot.cgroup = None
        slot.log.close()
        slot.proc, slot.log, slot.task, slot.deadline = None, None, None, math.inf
        slot.gen += 1  # whatever the old worker still had in its pipe is ignored

    def fail(self, slot: _Slot, why: str) -> None:
        """The worker of `slot` died or stalled: kill it, then retry or give up its task."""
        assert slot.proc is not None
        task, fatal = slot.task, slot.fatal
        grading = f" while grading {task.student}/{task.assignment}" if task else ""
        self.say(slot, f"worker pid {slot.proc.pid} {why}{grading}")
        self.retire(slot, kill=True)
        next_task = self.after_failure(slot, task, fatal)
        if next_task is not None:
            self.start(slot, next_task)

    def after_failure(self, slot: _Slot, task: Task | None, fatal: str | None) -> Task | None:
        """The task the replacement worker of `slot` takes, if one is started."""
        if task is None:
            return self.waiting.popleft() if self.waiting else None
        if fatal is not None:  # it could not even set up: not the submission's fault
            slot.setup_failures += 1
            self.waiting.appendleft(task)
            # After TRIES, this slot gives up; the others (if any) take the rest.
            return self.waiting.popleft() if slot.setup_failures < TRIES else None
        self.tries[(task.student, task.assignment)] += 1
        if self.tries[(task.student, task.assignment)] < TRIES:
            return task  # tried once more, on the replacement
        self.finish(task, _error_result(task, WORKER_STOPPED), slot)
        return self.waiting.popleft() if self.waiting else None

    def heard(self, slot: _Slot, line: str) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.say(slot, f"ignored output: {line.rstrip()[:200]}")
        elif "ready" in msg or "fatal" in msg:
            self.started(slot, msg)
        elif slot.task is None or cache.about(msg) != (slot.task.student, slot.task.assignment):
            self.fail(slot, f"answered for a submission it was not grading: {line.rstrip()[:200]}")
        else:
            self.answered(slot, slot.task, msg, line)

    def started(self, slot: _Slot, msg: dict[str, Any]) -> None:
        if "fatal" in msg:
            slot.fatal = str(msg["fatal"])
            self.say(slot, f"worker could not start: {slot.fatal}")
            return
        slot.ready, slot.setup_failures = True, 0
        if slot.task is not None:
            slot.deadline = time.monotonic() + self.budget[slot.task.assignment]

    def answered(self, slot: _Slot, task: Task, msg: dict[str, Any], line: str) -> None:
        try:
            result = Result.from_json(msg)
        except ValueError as e:
            self.fail(slot, f"sent a malformed row ({e}): {line.rstrip()[:200]}")
            return
        slot.ready, slot.setup_failures = True, 0
        self.finish(task, result, slot)
        self.give_next(slot)


def _worker_env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def _pump(proc: "subprocess.Popen[str]", k: int, gen: int, events: "queue.Queue[tuple[int, int, str | None]]") -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        events.put((k, gen, line))
    events.put((k, gen, None))


def _rss_mb(proc: "subprocess.Popen[str]") -> float:
    """The worker's own resident memory, its kernels not counted (they have limits of their own)."""
    try:
        return float(psutil.Process(proc.pid).memory_info().rss / 2**20)
    except psutil.Error:
        return 0.0


def _kill_tree(proc: "subprocess.Popen[str]") -> None:
    """SIGKILL a worker, its process group and whatever else it started (kernels run in sessions
    of their own). Done before the worker is reaped, so its pid and group cannot be reused yet."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for kill in [lambda: os.killpg(proc.pid, signal.SIGKILL), *(c.kill for c in children)]:
        try:
            kill()
        except (OSError, psutil.Error):
            pass


def _error_result(task: Task, reason: str) -> Result:
    return Result(task.student, task.assignment, Status.ERROR, reason, max_score=assignment(task.assignment).max_score)


def _progress(done: int, total: int, failed: int) -> None:
    bar = "#" * (30 * done // total)
    print(f"\r[{bar:<30}] {done}/{total} graded, {failed} with errors", end="", file=sys.stderr, flush=True)
