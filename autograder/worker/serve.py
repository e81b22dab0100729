"""A grading worker: one process, one nbgrader course folder and gradebook of its own.

`python -m autograder.worker OUT --slot K --assignments A1,A2` reads one JSON task a line on
stdin and prints one JSON result a line on stdout, so that one writer (the parent) deals
the tasks and merges the results of all workers. A watchdog
kills the notebook's kernel when it passes the assignment's wall-time or memory limit, so one
submission cannot hold the batch or the machine.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI

from autograder.course.assignment import assignment
from autograder.course.limits import VERDICT_CHARS
from autograder.course.nbgrader_setup import fresh_course, nbgrader_api
from autograder.course.paths import COURSE_ID, WORK
from autograder.worker.cohort_course import autograded, keep_autograded
from autograder.worker.execute import Outcome, Spare, verdict_output
from autograder.worker.feedback import shown
from autograder.worker.result import CellResult, Result, Status, Task, feedback_page
from autograder.worker.verdict import Verdict


class Watchdog:
    """Kills this process's kernels once the notebook under way passes its limits."""

    def __init__(self, wall_seconds: float, memory_mb: int) -> None:
        self.wall, self.memory = wall_seconds, memory_mb * 2**20
        self.reason: str | None = None
        self._done = threading.Event()

    def __enter__(self) -> "Watchdog":
        self.start = time.monotonic()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._done.wait(0.25):
            over_time = time.monotonic() - self.start > self.wall
            for kernel in me.children(recursive=True):
                try:
                    rss = kernel.memory_info().rss
                except psutil.Error:
                    continue
                if over_time or rss > self.memory:
                    self.reason = (
                        f"stopped after the time limit of {self.wall:g} s"
                        if over_time
                        else f"stopped: the notebook used more than {self.memory // 2**20} MB of memory"
                    )
                    kernel.kill()


def grade_tasks(
    tasks: Iterable[Task], out: str | Path, aids: list[str] | None = None, ready: Callable[[], None] | None = None
) -> Iterator[Result]:
    """Grade tasks, taken one at a time from `tasks` (a list, or an iterator that waits for the
    next), in one course folder made for `aids` (by default the tasks' assignments); yield one
    Result per task. `ready()` is called once the course folder is built."""
    course = Path(tempfile.mkdtemp(prefix="worker-", dir=_scratch()))
    spare = Spare()  # each notebook's kernel starts while nbgrader records the one before
    try:
        if aids is None:
            tasks = list(tasks)
            aids = sorted({t.assignment for t in tasks})
        fresh_course(course, aids, reuse=True)
        apis = {aid: _api(course, aid, spare) for aid in aids}
        by_hand = {aid: _hand_graded_cells(course, aid) for aid in aids}
        if ready:
            ready()
        for t in tasks:
            if t.engine:
                # nbgrader copies non-notebook files of the source folder over the submission's.
                shutil.copy(t.engine, course / "source" / t.assignment / Path(t.engine).name)
            result = grade_one(course, apis[t.assignment], t, Path(out))
            # An unfinished run leaves every grade "needing" a person: only a graded one says which.
            manual, awaiting = (
                _awaiting_hand_grade(course, t.assignment, t.student)
                if result.status is Status.GRADED
                else (set(), set())
            )
            result.manual = sorted(by_hand[t.assignment] | manual)
            result.awaiting = sorted(awaiting)
            graded = course / "autograded" / t.student / t.assignment / f"{t.assignment}.ipynb"
            if result.status is Status.GRADED and graded.exists():  # for formgrader, in OUT's course
                keep_autograded(graded, autograded(Path(out), t.student, t.assignment))
            for step in ("submitted", "autograded", "feedback"):  # what the result holds; memory is bounded
                shutil.rmtree(course / step / t.student / t.assignment, ignore_errors=True)
            yield result
    finally:
        spare.discard()
        shutil.rmtree(course, ignore_errors=True)


def _scratch() -> Path:
    """Where a worker's course folder goes: memory (/dev/shm) where there is some. nbgrader commits
    to its gradebook several times a notebook, each commit waits for the disk, and two workers'
    waits queue behind each other; the folder is thrown away at the end anyway."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    WORK.mkdir(exist_ok=True)
    return WORK


def _api(course: Path, aid: str, spare: Spare) -> NbGraderAPI:
    api = nbgrader_api(course)
    api.config.GradedExecute.spare = spare
    return api


def _gradebook(course: Path) -> Gradebook:
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID)


def _hand_graded_cells(course: Path, aid: str) -> set[str]:
    """grade_ids of `aid` that a person grades: answer cells that carry points (solution and
    grade at once, as the capstone's write-up) and task cells."""
    with _gradebook(course) as gb:
        cells = set()
        for nb in gb.find_assignment(aid).notebooks:
            answers = {c.name for c in nb.solution_cells}
            cells |= {c.name for c in nb.grade_cells if c.name in answers} | {c.name for c in nb.task_cells}
        return cells


def _awaiting_hand_grade(course: Path, aid: str, student: str) -> tuple[set[str], set[str]]:
    """(grades nbgrader left to a person, the subset still without a score) of one submission."""
    with _gradebook(course) as gb:
        try:
            sub = gb.find_submission(aid, student)
        except MissingEntry:
            return set(), set()
        pending = {g.name for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade}
        return pending, pending


def grade_one(course: Path, api: NbGraderAPI, task: Task, out: Path) -> Result:
    """Autograde one submission in `course`; copy its feedback page into `out`/feedback/."""
    student, aid = task.student, task.assignment
    dest = course / "submitted" / student / aid / f"{aid}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(task.notebook, dest)
    started = time.monotonic()
    outcome = Outcome()
    error = _autograde(api, task, outcome)
    seconds = round(time.monotonic() - started, 2)
    result = _from_gradebook(course, task, error)
    result.seconds = seconds
    if result.status is Status.GRADED:
        for gid, verdict in outcome.verdicts.items():
            if gid in result.tests:
                result.tests[gid].message = _message(verdict)
        if task.feedback:
            _copy_feedback(course, api, task, out)
    return result


def _autograde(api: NbGraderAPI, task: Task, outcome: Outcome) -> str | None:
    """Run nbgrader's autograde on the submitted notebook, its verdicts decided into `outcome`;
    why it failed, or None."""
    lim = assignment(task.assignment).limits
    config = api.config.GradedExecute
    config.slot, config.sandboxed, config.outcome = task.slot, task.sandbox, outcome
    # A backstop: the executor stops a notebook at its own wall time, the sandbox at its memory.
    # A process's RSS counts shared library pages that its cgroup does not, so with a sandbox the
    # backstop waits a margin above the limit: the cgroup's own verdict comes first.
    memory_mb = int(lim.memory_mb * (1.25 if task.sandbox else 1))
    with Watchdog(int(lim.wall_seconds) + 30, memory_mb) as dog:
        ran = api.autograde(task.assignment, task.student, force=True, create=True)
    # The watchdog's reason first: when it kills, the executor only sees a dead kernel.
    reason = dog.reason or outcome.stopped
    if reason or not ran["success"]:
        if not reason:  # the whole traceback goes to this worker's log; the result keeps its last line
            print(f"nbgrader failed on {task.student}/{task.assignment}:\n{ran.get('log') or ''}", file=sys.stderr)
        return reason or _nbgrader_error(ran)
    return None


def _from_gradebook(course: Path, task: Task, error: str | None) -> Result:
    """The scores nbgrader recorded for the submission, or the error that stopped it."""
    student, aid = task.student, task.assignment
    with _gradebook(course) as gb:
        max_score = gb.find_assignment(aid).max_score
        if error:
            return Result(student, aid, Status.ERROR, error, max_score=max_score)
        sub = gb.find_submission(aid, student)
        grades = [g for nb in sub.notebooks for g in nb.grades]
        return Result(
            student,
            aid,
            Status.GRADED,
            score=sub.score,
            max_score=max_score,
            pending=sum(g.max_score for g in grades if g.needs_manual_grade),
            tests={g.name: CellResult(g.score, g.max_score) for g in grades},
        )


def _message(verdict: Verdict) -> str:
    """The verdict as the feedback page shows the output it gives its cell (`verdict_output`,
    `shown`): plain text, an error's last line; at most VERDICT_CHARS of it."""
    output = shown(verdict_output(verdict))
    assert output is not None, "a verdict's output is a stream or an error"
    if output.output_type == "stream":
        message = str(output.text).strip()
    else:
        text = "\n".join(output.traceback).strip()
        message = next((line for line in reversed(text.splitlines()) if line.strip()), text)
    return message if len(message) <= VERDICT_CHARS else message[:VERDICT_CHARS] + " ..."


def _copy_feedback(course: Path, api: NbGraderAPI, task: Task, out: Path) -> None:
    student, aid = task.student, task.assignment
    api.generate_feedback(aid, student, force=True)
    html = course / "feedback" / student / aid / f"{aid}.html"
    if html.exists():
        target = feedback_page(out, student, aid)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(html, target)


def _nbgrader_error(result: dict[str, Any]) -> str:
    text = (result.get("error") or result.get("log") or "nbgrader failed").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "nbgrader failed")[:200]


def main(argv: list[str]) -> int:
    """`python -m autograder.worker OUT --slot K --assignments A1,A2`: read one JSON task a line
    on stdin, answer one JSON result a line on stdout, exit at the end of the input. Says
    {"ready": K} once its course folder is built, or {"fatal": why} if it cannot be built."""
    parser = argparse.ArgumentParser(prog="python -m autograder.worker")
    parser.add_argument("out")
    parser.add_argument("--slot", type=int, default=0, help="this worker's number, 0..jobs-1")
    parser.add_argument("--assignments", required=True, help="comma-separated assignment ids")
    args = parser.parse_args(argv)
    # Only results go to the parent: whatever else writes to stdout (nbgrader, a kernel) lands in
    # stderr, the log, and no child inherits the parent's pipe.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def send(obj: dict[str, Any]) -> None:
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    def tasks() -> Iterator[Task]:
        for line in iter(sys.stdin.readline, ""):
            if line.strip():
                yield Task.from_json({**json.loads(line), "slot": args.slot})

    started = []

    def ready() -> None:
        started.append(True)
        send({"ready": args.slot})

    try:
        for result in grade_tasks(tasks(), args.out, [a for a in args.assignments.split(",") if a], ready):
            send(result.to_json())
    except Exception as e:
        if not started:
            send({"fatal": f"{type(e).__name__}: {e}"[:500]})
        raise
    return 0
