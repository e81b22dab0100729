"""The one nbgrader course folder a graded cohort leaves in OUT, for formgrader and nbgrader's own commands.

Each grading worker has a course and a gradebook of its own, copied from one template, so their
uuids say nothing across gradebooks: the parent records every result into OUT's gradebook by
name (assignment, notebook, cell, student) as it arrives. Only the automatic part of a grade is
ever written here; `manual_score` and `manual_comment` belong to the instructor (formgrader,
manual_grades.csv) and are read back by the next `grade`. `merge` makes one course of many
shards' the same way: each shard's gradebook is copied in by name, its hand grades included.

formgrader renders a submission as HTML without sanitising it, so the notebooks kept here hold
only the text and image outputs of their cells and their markdown sanitised as the feedback page
sanitises it, and OUT's configuration turns sanitising on for what else honours it.
"""

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from autograder.course.files import replaced_whole, write_whole
from autograder.course.nbgrader_setup import _course_template, _one_engine_per_gradebook
from autograder.course.paths import COURSE_ID, ROOT
from autograder.worker.feedback import SanitizeMarkdown
from autograder.worker.result import Result, Status

# What a browser can show without running anything: no HTML, SVG or JavaScript outputs.
SAFE_OUTPUTS = ("text/plain", "image/png", "image/jpeg")

CONFIG = f'''"""nbgrader's configuration of this graded cohort (written by `python -m autograder grade`)."""
import sys

# The feedback preprocessors live in the course's repository.
sys.path.insert(0, {str(ROOT)!r})

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {COURSE_ID!r}
c.GenerateFeedback.preprocessors = {{preprocessors!r}}
# `nbgrader export` would otherwise overwrite the grader's own grades.csv in this folder.
c.ExportPlugin.to = "nbgrader_grades.csv"
# formgrader renders students' notebooks in the instructor's browser.
c.HTMLExporter.sanitize_html = True
'''


def autograded(out: Path, student: str, aid: str) -> Path:
    """Where the autograded notebook of a submission is kept (nbgrader's layout)."""
    return out / "autograded" / student / aid / f"{aid}.ipynb"


def url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'gradebook.db'}"


def prepare(out: Path, aids: list[str]) -> None:
    """Make `out` an nbgrader course that knows `aids`: the gradebook of the workers' template
    when it has none, else its missing assignments copied in by name."""
    from autograder.course.nbgrader_setup import nbgrader_config

    preprocessors = list(nbgrader_config(out).GenerateFeedback.preprocessors)
    config = CONFIG.replace("{preprocessors!r}", repr(preprocessors))
    if not (out / "nbgrader_config.py").exists() or (out / "nbgrader_config.py").read_text() != config:
        (out / "nbgrader_config.py").write_text(config)
    if not aids:
        return
    template = _course_template(aids)
    for aid in aids:
        if not (out / "source" / aid).exists():
            shutil.copytree(template / "source" / aid, out / "source" / aid)
    if not (out / "gradebook.db").exists():
        with replaced_whole(out / "gradebook.db", private=True) as partial:
            shutil.copy(template / "gradebook.db", partial)
        return
    _one_engine_per_gradebook()
    with Gradebook(url(template), COURSE_ID) as src, Gradebook(url(out), COURSE_ID) as dst:
        known = {a.name for a in dst.assignments}
        for aid in aids:
            if aid not in known:
                _copy_assignment(src, dst, aid)


def _copy_assignment(src: Gradebook, dst: Gradebook, aid: str) -> None:
    a = src.find_assignment(aid)
    dst.update_or_create_assignment(aid, duedate=a.duedate)
    for nb in a.notebooks:
        dst.update_or_create_notebook(nb.name, aid)
        for c in nb.grade_cells:
            dst.update_or_create_grade_cell(c.name, nb.name, aid, max_score=c.max_score, cell_type=c.cell_type)
        for c in nb.solution_cells:
            dst.update_or_create_solution_cell(c.name, nb.name, aid)
        for c in nb.task_cells:
            dst.update_or_create_task_cell(c.name, nb.name, aid, max_score=c.max_score, cell_type=c.cell_type)
        for c in nb.source_cells:
            dst.update_or_create_source_cell(
                c.name, nb.name, aid, cell_type=c.cell_type, locked=c.locked, source=c.source, checksum=c.checksum
            )


def record(out: Path, result: Result) -> None:
    """Record a graded result in OUT's gradebook by name: one submission per student and
    assignment, its automatic scores replaced, the instructor's scores and comments kept. A cell
    the gradebook does not know is left out (the totals stay in grades.csv)."""
    if result.status is not Status.GRADED or not (out / "gradebook.db").exists():
        return
    _one_engine_per_gradebook()
    with Gradebook(url(out), COURSE_ID) as gb, warnings.catch_warnings():
        # nbgrader builds a new submission's rows in an order SQLAlchemy warns about, harmlessly.
        warnings.simplefilter("ignore", SAWarning)
        sub = _submission(gb, result.assignment, result.student)
        if sub is None:
            return
        for nb in sub.notebooks:
            for g in nb.grades:
                t = result.tests.get(g.name)
                if t is None:
                    continue
                waiting = g.name in result.awaiting
                g.auto_score = None if waiting else t.score
                g.needs_manual_grade = waiting and g.manual_score is None
        gb.db.commit()


def _submission(gb: Gradebook, aid: str, student: str) -> Any:
    """The submission of `student` for `aid` in `gb`, made with its empty grades and comments if
    it has none yet; None when `gb` does not know the assignment."""
    try:
        gb.find_assignment(aid)
    except MissingEntry:
        return None
    gb.update_or_create_student(student)
    return gb.update_or_create_submission(aid, student)


def merge_gradebook(out: Path, db: Path) -> None:
    """Copy every submission of the gradebook `db` (another course's, such as a shard's) into
    OUT's, by assignment, notebook, cell and student name: its automatic scores replace OUT's
    as `record` replaces them; its manual scores, extra credit and comments are copied where it
    has them, and OUT's own are kept where it has none. A cell or assignment OUT does not know is
    left out."""
    _one_engine_per_gradebook()
    with (
        Gradebook(f"sqlite:///{db.resolve()}", COURSE_ID) as src,
        Gradebook(url(out), COURSE_ID) as dst,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", SAWarning)
        for a in src.assignments:
            for given in a.submissions:
                sub = _submission(dst, a.name, given.student.id)
                if sub is not None:
                    _copy_marks(given, sub)
        dst.db.commit()


def _copy_marks(given: Any, sub: Any) -> None:
    """The grades and comments of the submission `given` copied into `sub`, cell by cell name."""
    grades = {(nb.name, g.name): g for nb in sub.notebooks for g in nb.grades}
    comments = {(nb.name, c.name): c for nb in sub.notebooks for c in nb.comments}
    for nb in given.notebooks:
        for g in nb.grades:
            mine = grades.get((nb.name, g.name))
            if mine is None:
                continue
            mine.auto_score = g.auto_score
            if g.manual_score is not None:
                mine.manual_score = g.manual_score
            if g.extra_credit is not None:
                mine.extra_credit = g.extra_credit
            mine.needs_manual_grade = g.needs_manual_grade and mine.manual_score is None
        for c in nb.comments:
            if c.manual_comment and (nb.name, c.name) in comments:
                comments[(nb.name, c.name)].manual_comment = c.manual_comment


def hand_grades(out: Path, student: str, aid: str) -> dict[str, tuple[float | None, str]]:
    """{grade_id: (manual score or None, the instructor's comment)} of one submission in OUT's
    gradebook, for the cells that have either; empty without one."""
    if not (out / "gradebook.db").exists():
        return {}
    _one_engine_per_gradebook()
    found: dict[str, tuple[float | None, str]] = {}
    with Gradebook(url(out), COURSE_ID) as gb:
        try:
            sub = gb.find_submission(aid, student)
        except MissingEntry:
            return {}
        for nb in sub.notebooks:
            comments = {c.name: (c.manual_comment or "").strip() for c in nb.comments}
            for g in nb.grades:
                score = None if g.manual_score is None else float(g.manual_score)
                if score is not None or comments.get(g.name):
                    found[g.name] = (score, comments.get(g.name, ""))
            for name, text in comments.items():
                if text and name not in found:
                    found[name] = (None, text)
    return found


def set_hand_score(out: Path, student: str, aid: str, gid: str, score: float) -> bool:
    """Give cell `gid` of a submission in OUT's gradebook the manual score `score`; False when
    the gradebook has no such grade."""
    if not (out / "gradebook.db").exists():
        return False
    _one_engine_per_gradebook()
    with Gradebook(url(out), COURSE_ID) as gb:
        try:
            sub = gb.find_submission(aid, student)
        except MissingEntry:
            return False
        for nb in sub.notebooks:
            for g in nb.grades:
                if g.name == gid:
                    g.manual_score, g.needs_manual_grade = score, False
                    gb.db.commit()
                    return True
    return False


def keep_safe_outputs(nb: dict[str, Any]) -> dict[str, Any]:
    """`nb` with only the text and image outputs of its cells: nothing a browser would run."""
    for cell in nb.get("cells", []):
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") in ("display_data", "execute_result"):
                data = {k: v for k, v in output.get("data", {}).items() if k in SAFE_OUTPUTS}
                if not data:
                    continue
                output = {**output, "data": data, "metadata": {}}
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
        cell.pop("attachments", None)  # an attached SVG would be drawn by the browser
        if cell.get("cell_type") == "raw":  # a raw cell marked as HTML goes into the page unchanged
            for key in ("raw_mimetype", "format"):
                cell.get("metadata", {}).pop(key, None)
    return nb


def keep_autograded(src: Path, dest: Path) -> None:
    """Copy an autograded notebook to `dest` with safe outputs only, atomically: a retry on
    another worker replaces it whole."""
    nb = keep_safe_outputs(json.loads(src.read_text()))
    # formgrader's own template renders markdown unsanitised, whatever HTMLExporter.sanitize_html says
    sanitized, _ = SanitizeMarkdown().preprocess(nbformat.from_dict(nb), {})  # type: ignore[no-untyped-call]
    nb = dict(sanitized)
    write_whole(dest, json.dumps(nb), private=True)


def feedback(out: Path, student: str, aid: str) -> None:
    """Render a submission's feedback page again from OUT's course, hand grades and comments
    included, where `grade` keeps it."""
    from autograder.course.nbgrader_setup import nbgrader_api
    from autograder.worker.result import feedback_page

    if not autograded(out, student, aid).exists():
        return
    nbgrader_api(out).generate_feedback(aid, student, force=True)
    html = out / "feedback" / student / aid / f"{aid}.html"
    if html.exists():
        shutil.copy(html, feedback_page(out, student, aid))
