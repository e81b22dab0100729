"""Grade submitted notebooks with nbgrader against the hidden tests."""
import csv
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.course import WORK, assignments, fresh_course
from autograder.engine import reference_engine

COLUMNS = ["student", "assignment", "score", "max_score", "status"]


@dataclass
class Submission:
    student: str
    path: Path
    assignment: str = None
    score: float = 0.0
    max_score: float = 0.0
    status: str = "not graded"
    tests: dict = field(default_factory=dict)  # grade_id -> (score, max_score)


def find_submissions(paths, student=None):
    """Submissions under `paths`: files, or folders laid out STUDENT/NOTEBOOK.ipynb or
    STUDENT/ASSIGNMENT/NOTEBOOK.ipynb (nbgrader's own layout)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            for nb in sorted(path.rglob("*.ipynb")):
                rel = nb.relative_to(path)
                if ".ipynb_checkpoints" not in rel.parts and len(rel.parts) >= 2:
                    found.append(_recognise(Submission(rel.parts[0], nb)))
        else:
            found.append(_recognise(Submission(student or path.parent.name, path)))
    return found


def _recognise(sub):
    known = assignments()
    for name in (sub.path.stem, sub.path.parent.name):
        if name in known:
            sub.assignment = name
            return sub
    sub.status = f"error: {sub.path.name} is not a notebook of this course (expected one of: {', '.join(known)})"
    return sub


def grade(submissions, out):
    """Autograde `submissions`, write feedback and grades.csv into `out`; return the submissions."""
    out = Path(out)
    todo = [s for s in submissions if s.assignment]
    if todo:
        _grade_batch(todo, out)
    write_csv(submissions, out / "grades.csv")
    return submissions


def _grade_batch(subs, out):
    WORK.mkdir(exist_ok=True)
    course = Path(tempfile.mkdtemp(prefix="grade-", dir=WORK))
    try:
        _grade_in(course, subs, out)
    finally:
        shutil.rmtree(course, ignore_errors=True)


def _grade_in(course, subs, out):
    aids = sorted({s.assignment for s in subs})
    api = fresh_course(course, aids)
    for aid in aids:
        engine = reference_engine(aid)
        if engine:
            # nbgrader copies non-notebook files of the source folder over the submission's.
            shutil.copy(engine, course / "source" / aid / engine.name)
    for s in subs:
        dest = course / "submitted" / s.student / s.assignment / f"{s.assignment}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(s.path, dest)
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    for s in subs:
        result = api.autograde(s.assignment, s.student, force=True, create=True)
        s.status = "graded" if result["success"] else f"error: {_last_line(result)}"
        with Gradebook(db_url, "micrograd") as gb:
            try:
                submission = gb.find_submission(s.assignment, s.student)
            except Exception:  # nbgrader recorded nothing: the status says why
                continue
            s.score, s.max_score = submission.score, submission.max_score
            s.tests = {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}
        if s.status == "graded":
            api.generate_feedback(s.assignment, s.student, force=True)
            html = course / "feedback" / s.student / s.assignment / f"{s.assignment}.html"
            if html.exists():
                target = out / "feedback" / s.student / f"{s.assignment}.html"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(html, target)


def _last_line(result):
    text = (result.get("error") or result.get("log") or "nbgrader failed").strip()
    return text.splitlines()[-1][:200]


def write_csv(submissions, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "")):
            writer.writerow([s.student, s.assignment or "", f"{s.score:g}", f"{s.max_score:g}", s.status])


def table(submissions):
    """The score table printed after grading."""
    rows = [("student", "assignment", "score", "status")]
    for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "")):
        rows.append((s.student, s.assignment or "?", f"{s.score:g} / {s.max_score:g}", s.status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
