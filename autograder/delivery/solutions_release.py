"""An assignment's solution notebook as students read it after the deadline.

nbgrader's `generate_solution` runs the source notebook and keeps everything in it: the hidden
tests, the `### BEGIN SOLUTION` markers and, in the write-up cells graded by hand, the rubric
for the instructor. Here the same converter runs with three more steps before the notebook is
executed: the hidden tests go (their outputs then cannot tell them either), the rubric of each
hand-graded answer gives way to a line saying it is graded by hand, and the markers go.
"""

import shutil
import tempfile
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

from autograder.course import notebooks
from autograder.course.nbgrader_setup import fresh_course, nbgrader_config
from autograder.course.paths import WORK, assignments
from autograder.course.reference import reference_engine

HAND_GRADED = "*Graded by hand: your feedback has your points and the instructor's comments.*"
CELL_TIMEOUT = 300  # a training cell of the capstone, on a busy machine


class ClearRubrics(Preprocessor):
    """A hand-graded answer's solution region (the instructor's rubric) becomes `HAND_GRADED`;
    elsewhere only the region markers go, so every answer reads as plain code or text."""

    enabled = Bool(True)  # a Preprocessor that is not enabled is silently skipped

    def preprocess_cell(
        self, cell: NotebookNode, resources: dict[str, Any], index: int
    ) -> tuple[NotebookNode, dict[str, Any]]:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
            cell.source = notebooks.outside_regions(cell.source).rstrip() + "\n\n" + HAND_GRADED
        else:
            cell.source = "\n".join(line for line in cell.source.split("\n") if line.strip() not in _MARKERS)
        return cell, resources


_MARKERS = {"### BEGIN SOLUTION", "### END SOLUTION"}


def release_solutions(aid: str, dest: str | Path, execute: bool = True) -> Path:
    """Write `dest`/`aid`.ipynb, the solution of `aid` for students, run top to bottom (unless
    not `execute`: the text only); return its path."""
    if aid not in assignments():
        raise ValueError(f"no assignment {aid!r}; the assignments are {', '.join(assignments())}")
    from nbgrader.converters import GenerateSolution
    from nbgrader.coursedir import CourseDirectory

    WORK.mkdir(exist_ok=True)
    course = Path(tempfile.mkdtemp(prefix="solutions-", dir=WORK))
    try:
        fresh_course(course, [aid], reuse=True)
        engine = reference_engine(aid) if execute else None
        if engine:  # the notebook loads the package an earlier exercise saved
            shutil.copy(engine, course / "source" / aid)
        c = nbgrader_config(course)
        c.CourseDirectory.assignment_id = aid
        c.GenerateSolution.preprocessors = [
            "nbgrader.preprocessors.IncludeHeaderFooter",
            "nbgrader.preprocessors.LockCells",
            "nbgrader.preprocessors.ClearOutput",
            "nbgrader.preprocessors.ClearMarkScheme",
            "autograder.worker.feedback.ClearHiddenTestCells",
            "autograder.delivery.solutions_release.ClearRubrics",
            *(["nbgrader.preprocessors.Execute"] if execute else []),
        ]
        c.Execute.timeout = CELL_TIMEOUT
        c.Execute.allow_errors = False  # a solution that fails to run is not released
        c.merge(notebooks.private_ipc())
        GenerateSolution(coursedir=CourseDirectory(config=c), config=c).start()
        made = next((course / "solution").rglob(f"{aid}.ipynb"))
        out = Path(dest) / f"{aid}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made, out)
        return out
    finally:
        shutil.rmtree(course, ignore_errors=True)
