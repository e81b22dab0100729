"""Grade a cohort: intake, parallel nbgrader workers, one writer for grades.csv."""
import csv
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import ROOT, SOLUTIONS, WORK, assignments
from autograder.engine import reference_engine
from autograder.intake import assignment_from_name, intake

COLUMNS = ["student", "assignment", "score", "max_score", "pending_manual", "status", "notes"]


@dataclass
class Submission:
    student: str
    path: Path
    assignment: str = None
    score: float = 0.0
    max_score: float = 0.0
    pending: float = 0.0
    status: str = "not graded"
    notes: list = field(default_factory=list)
    tests: dict = field(default_factory=dict)  # grade_id -> (score, max_score)


def find_submissions(paths, student=None):
    """Submissions under `paths`: files, or folders laid out STUDENT/NOTEBOOK.ipynb or
    STUDENT/ASSIGNMENT/NOTEBOOK.ipynb (nbgrader's own layout). Every file counts, so that a
    student who handed in something that is not a notebook is told so."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = f.relative_to(path)
                if len(rel.parts) >= 2 and not any(part.startswith(".") for part in rel.parts):
                    found.append(Submission(rel.parts[0], f))
        else:
            found.append(Submission(student or _student_from_name(path), path))
    return found


def _student_from_name(path):
    """`alice_02_value_backward.ipynb` -> alice; a bare notebook name -> its folder's name."""
    aid = assignment_from_name(path, assignments())
    rest = re.sub(r"^copy of |\s*\(\d+\)$", "", path.stem.lower())
    if aid:
        rest = rest.replace(aid, "").replace(aid.split("_", 1)[-1], "")
    rest = re.sub(r"[\s_\-]+", " ", rest).strip()
    return rest.replace(" ", "_") if rest and not rest.isdigit() else path.parent.name


def grade(submissions, out, jobs=1, force=False, progress=False):
    """Grade `submissions`; write grades.csv, feedback/ and results/ into `out`; return them."""
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    WORK.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staged-", dir=WORK))
    try:
        todo = _intake_all(submissions, staging, out, force)
        if todo:
            _run_workers(todo, out, jobs, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _apply_manual_grades(submissions, out / "manual_grades.csv")
    write_csv(submissions, out / "grades.csv")
    return submissions


def _intake_all(submissions, staging, out, force):
    """Recognise and repair each file; return the tasks nbgrader still has to grade."""
    newest = {}
    for s in submissions:
        if s.path.suffix != ".ipynb":
            s.status = f"error: {s.path.name} is not a notebook (.ipynb)"
            continue
        got = intake(s.path)
        s.notes += got.notes
        if got.error:
            s.status = f"error: {got.error}"
            continue
        s.assignment = got.assignment
        s._notebook = got.notebook
        key = (s.student, s.assignment)
        if key in newest:  # two files for one assignment: the newest counts
            old = newest[key]
            keep, drop = (s, old) if s.path.stat().st_mtime >= old.path.stat().st_mtime else (old, s)
            drop.status = f"error: superseded by {keep.path.name}"
            newest[key] = keep
        else:
            newest[key] = s
    tasks = []
    for s in newest.values():
        s._input = _digest(json.dumps(s._notebook, sort_keys=True).encode() + (SOLUTIONS / f"{s.assignment}.ipynb").read_bytes())
        cached = _result_path(out, s)
        if not force and cached.exists():
            row = json.loads(cached.read_text())
            if row.get("input") == s._input and row["status"] == "graded":
                _fill(s, row)
                continue
        staged = staging / s.student / f"{s.assignment}.ipynb"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(json.dumps(s._notebook))
        engine = reference_engine(s.assignment)
        tasks.append((s, {"student": s.student, "assignment": s.assignment,
                          "notebook": str(staged), "engine": str(engine) if engine else None}))
    return tasks


def _run_workers(todo, out, jobs, progress):
    """Split the tasks over `jobs` worker processes; this process alone writes the results."""
    jobs = max(1, min(jobs, len(todo)))
    by_key = {(s.student, s.assignment): s for s, _ in todo}
    # Students, not notebooks, are dealt round-robin, so each worker's gradebook sees whole students.
    worker_of = {student: k % jobs for k, student in enumerate(sorted({s.student for s, _ in todo}))}
    shards = [[t for s, t in todo if worker_of[s.student] == k] for k in range(jobs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rows, workers = queue.Queue(), []
    (out / "logs").mkdir(exist_ok=True)
    for k, shard in enumerate(s for s in shards if s):
        tasks_file = out / "logs" / f"worker-{k}.tasks.json"
        tasks_file.write_text(json.dumps(shard))
        log = open(out / "logs" / f"worker-{k}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "autograder.worker", str(tasks_file), str(out)],
                                stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
        threading.Thread(target=_pump, args=(proc, rows), daemon=True).start()
        workers.append((proc, shard, log))
    done, failed, total = 0, 0, len(todo)
    finished = 0
    while finished < len(workers):
        row = rows.get()
        if row is None:
            finished += 1
            continue
        s = by_key[(row["student"], row["assignment"])]
        row["input"] = s._input
        _result_path(out, s).write_text(json.dumps(row))
        _fill(s, row)
        done += 1
        failed += s.status != "graded"
        if progress:
            _progress(done, total, failed)
    for proc, shard, log in workers:
        proc.wait()
        log.close()
    for s, _ in todo:  # a worker that died leaves its remaining rows ungraded, never lost
        if s.status == "not graded":
            s.status = "error: the grading worker stopped before this submission (see logs/)"
    if progress:
        print(file=sys.stderr)


def _pump(proc, rows):
    for line in proc.stdout:
        if line.startswith("{"):
            rows.put(json.loads(line))
    rows.put(None)


def _progress(done, total, failed):
    bar = "#" * (30 * done // total)
    print(f"\r[{bar:<30}] {done}/{total} graded, {failed} with errors", end="", file=sys.stderr, flush=True)


def _fill(s, row):
    s.score, s.max_score, s.pending = row["score"], row["max_score"], row.get("pending", 0.0)
    s.status, s.tests = row["status"], {k: tuple(v) for k, v in row["tests"].items()}


def _result_path(out, s):
    return out / "results" / f"{s.student}__{s.assignment}.json"


def _digest(data):
    return hashlib.sha256(data).hexdigest()[:20]


def _apply_manual_grades(submissions, path):
    """Add points an instructor entered by hand (student,assignment,grade_id,points)."""
    if not path.exists():
        return
    with open(path) as f:
        entries = list(csv.DictReader(f))
    for s in submissions:
        for e in entries:
            if (e["student"], e["assignment"]) == (s.student, s.assignment) and s.status == "graded":
                cell = s.tests.get(e["grade_id"])
                if cell is not None:
                    points = min(float(e["points"]), cell[1])
                    s.score += points
                    s.pending = max(0.0, s.pending - cell[1])
                    s.tests[e["grade_id"]] = (points, cell[1])


def write_csv(submissions, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "", str(s.path))):
            writer.writerow([s.student, s.assignment or "", f"{s.score:g}", f"{s.max_score:g}",
                             f"{s.pending:g}", s.status, "; ".join(s.notes)])


def table(submissions):
    """The score table printed after grading."""
    rows = [("student", "assignment", "score", "status")]
    for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "", str(s.path))):
        pending = f" (+{s.pending:g} to grade by hand)" if s.pending else ""
        rows.append((s.student, s.assignment or s.path.name, f"{s.score:g} / {s.max_score:g}{pending}", s.status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
