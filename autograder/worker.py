"""A grading worker: one process, one nbgrader course folder and gradebook of its own.

`python -m autograder.worker OUT --slot K --assignments A1,A2` reads one JSON task a line on
stdin and prints one JSON result row a line on stdout, so that one writer (the parent) deals
the tasks and merges the rows of all workers. A watchdog
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
from pathlib import Path

import psutil
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder import execute
from autograder.course import WORK, fresh_course, limits, nbgrader_config


class Watchdog:
    """Kills this process's kernels once the notebook under way passes its limits."""

    def __init__(self, wall_seconds, memory_mb):
        self.wall, self.memory = wall_seconds, memory_mb * 2**20
        self.reason = None
        self._done = threading.Event()

    def __enter__(self):
        self.start = time.monotonic()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._done.set()

    def _watch(self):
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


def grade_tasks(tasks, out, aids=None, ready=None):
    """Grade {student, assignment, notebook, engine, ...} tasks, taken one at a time from `tasks`
    (a list, or an iterator that waits for the next), in one course folder made for `aids` (by
    default the tasks' assignments); yield one result row per task. `ready()` is called once the
    course folder is built."""
    WORK.mkdir(exist_ok=True)
    course = Path(tempfile.mkdtemp(prefix="worker-", dir=WORK))
    try:
        if aids is None:
            tasks = list(tasks)
            aids = sorted({t["assignment"] for t in tasks})
        fresh_course(course, aids)
        apis = {}
        for aid in aids:
            config = nbgrader_config(course, limits(aid)["cell_timeout"])
            apis[aid] = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        by_hand = {aid: _hand_graded_cells(course, aid) for aid in aids}
        if ready:
            ready()
        for t in tasks:
            if t.get("engine"):
                # nbgrader copies non-notebook files of the source folder over the submission's.
                shutil.copy(t["engine"], course / "source" / t["assignment"] / Path(t["engine"]).name)
            row = grade_one(course, apis[t["assignment"]], t, Path(out))
            # An unfinished run leaves every grade "needing" a person: only a graded one says which.
            manual, awaiting = (
                _awaiting_hand_grade(course, t["assignment"], t["student"])
                if row.get("status") == "graded"
                else (set(), set())
            )
            row["manual"] = sorted(by_hand[t["assignment"]] | manual)
            row["awaiting"] = sorted(awaiting)
            yield row
    finally:
        shutil.rmtree(course, ignore_errors=True)


def _gradebook(course):
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", "micrograd")


def _hand_graded_cells(course, aid):
    """grade_ids of `aid` that a person grades: answer cells that carry points (solution and
    grade at once, as the capstone's write-up) and task cells."""
    with _gradebook(course) as gb:
        cells = set()
        for nb in gb.find_assignment(aid).notebooks:
            answers = {c.name for c in nb.solution_cells}
            cells |= {c.name for c in nb.grade_cells if c.name in answers} | {c.name for c in nb.task_cells}
        return cells


def _awaiting_hand_grade(course, aid, student):
    """(grades nbgrader left to a person, the subset still without a score) of one submission."""
    with _gradebook(course) as gb:
        try:
            sub = gb.find_submission(aid, student)
        except MissingEntry:
            return set(), set()
        pending = {g.name for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade}
        return pending, pending


def grade_one(course, api, task, out):
    student, aid = task["student"], task["assignment"]
    dest = course / "submitted" / student / aid / f"{aid}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(task["notebook"], dest)
    lim = limits(aid)
    started = time.monotonic()
    execute.settings.update(slot=task.get("slot", 0), sandboxed=task.get("sandbox", True))
    execute.last_stop["reason"] = None
    # A backstop: the executor stops a notebook at its own wall time, the sandbox at its memory.
    with Watchdog(lim["wall_seconds"] + 30, lim["memory_mb"]) as dog:
        result = api.autograde(aid, student, force=True, create=True)
    row = {
        "student": student,
        "assignment": aid,
        "seconds": round(time.monotonic() - started, 2),
        "score": 0.0,
        "max_score": 0.0,
        "pending": 0.0,
        "tests": {},
    }
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "micrograd") as gb:
        row["max_score"] = gb.find_assignment(aid).max_score
        reason = execute.last_stop["reason"] or dog.reason
        if reason or not result["success"]:
            row["status"] = f"error: {reason or _nbgrader_error(result)}"
            return row
        sub = gb.find_submission(aid, student)
        row["score"] = sub.score
        row["tests"] = {g.name: [g.score, g.max_score] for nb in sub.notebooks for g in nb.grades}
        row["pending"] = sum(g.max_score for nb in sub.notebooks for g in nb.grades if g.needs_manual_grade)
        row["status"] = "graded"
    api.generate_feedback(aid, student, force=True)
    html = course / "feedback" / student / aid / f"{aid}.html"
    if html.exists():
        target = out / "feedback" / student / f"{aid}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(html, target)
    return row


def _nbgrader_error(result):
    text = (result.get("error") or result.get("log") or "nbgrader failed").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "nbgrader failed")[:200]


def main(argv):
    """`python -m autograder.worker OUT --slot K --assignments A1,A2`: read one JSON task a line
    on stdin, answer one JSON row a line on stdout, exit at the end of the input. Says
    {"ready": K} once its course folder is built, or {"fatal": why} if it cannot be built."""
    parser = argparse.ArgumentParser(prog="python -m autograder.worker")
    parser.add_argument("out")
    parser.add_argument("--slot", type=int, default=0, help="this worker's number, 0..jobs-1")
    parser.add_argument("--assignments", required=True, help="comma-separated assignment ids")
    args = parser.parse_args(argv)
    # Only rows go to the parent: whatever else writes to stdout (nbgrader, a kernel) lands in
    # stderr, the log, and no child inherits the parent's pipe.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def send(obj):
        channel.write(json.dumps(obj) + "\n")
        channel.flush()

    def tasks():
        for line in iter(sys.stdin.readline, ""):
            if line.strip():
                yield {**json.loads(line), "slot": args.slot}

    started = []

    def ready():
        started.append(True)
        send({"ready": args.slot})

    try:
        for row in grade_tasks(tasks(), args.out, [a for a in args.assignments.split(",") if a], ready):
            send(row)
    except Exception as e:
        if not started:
            send({"fatal": f"{type(e).__name__}: {e}"[:500]})
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
