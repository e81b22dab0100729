"""A grading worker: one process, one nbgrader course folder and gradebook of its own.

`python -m autograder.worker TASKS.json` grades each task in turn and prints one JSON line per
result on stdout, so that one writer (the parent) merges the rows of all workers. A watchdog
kills the notebook's kernel when it passes the assignment's wall-time or memory limit, so one
submission cannot hold the batch or the machine.
"""
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from nbgrader.api import Gradebook
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
                    self.reason = (f"stopped after the time limit of {self.wall:g} s" if over_time
                                   else f"stopped: the notebook used more than {self.memory // 2**20} MB of memory")
                    kernel.kill()


def grade_tasks(tasks, out):
    """Grade [{student, assignment, notebook, engine}] in one course folder; yield result rows."""
    WORK.mkdir(exist_ok=True)
    course = Path(tempfile.mkdtemp(prefix="worker-", dir=WORK))
    try:
        aids = sorted({t["assignment"] for t in tasks})
        fresh_course(course, aids)
        for t in tasks:
            if t.get("engine"):
                # nbgrader copies non-notebook files of the source folder over the submission's.
                shutil.copy(t["engine"], course / "source" / t["assignment"] / Path(t["engine"]).name)
        apis = {}
        for aid in aids:
            config = nbgrader_config(course, limits(aid)["cell_timeout"])
            apis[aid] = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        for t in tasks:
            yield grade_one(course, apis[t["assignment"]], t, Path(out))
    finally:
        shutil.rmtree(course, ignore_errors=True)


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
    row = {"student": student, "assignment": aid, "seconds": round(time.monotonic() - started, 2),
           "score": 0.0, "max_score": 0.0, "pending": 0.0, "tests": {}}
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
    tasks_file, out = argv
    for row in grade_tasks(json.loads(Path(tasks_file).read_text()), out):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
