"""nbgrader on a course folder of our own: its configuration, its API, a course built once and copied."""

import functools
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from traitlets.config import Config

from autograder.course.paths import COURSE_ID, PACKAGE, SOLUTIONS, WORK


def nbgrader_config(course_root: str | Path) -> Config:
    """An nbgrader configuration for a course folder of our own (nbgrader has no --config flag)."""
    _put_venv_on_path()
    c = Config()
    c.CourseDirectory.root = str(course_root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{Path(course_root) / 'gradebook.db'}"
    # Our executor replaces nbgrader's Execute: a sandboxed kernel, verdicts judged outside it.
    # nbgrader's default list ends with a second CheckCellMetadata; the sanitizing step already
    # checked the metadata, and the steps after it only remove metadata that is not nbgrader's,
    # so that second check (a tenth of nbgrader's time on a notebook) is left out.
    c.Autograde.autograde_preprocessors = [
        "autograder.worker.execute.GradedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
    ]
    # A deleted test cell is put back and run instead of silently leaving its grade empty.
    c.OverwriteCells.add_missing_cells = True
    # The feedback page is built from a hostile notebook: see autograder/worker/feedback.py.
    c.GenerateFeedback.preprocessors = [
        "autograder.worker.feedback.KeepVerdictsOnly",
        "autograder.worker.feedback.TruncateOutputs",
        "autograder.worker.feedback.ClearHiddenTestCells",
        "autograder.worker.feedback.LeaveOutGivenCode",
        "autograder.worker.feedback.CapNotebook",
        "autograder.worker.feedback.SanitizeMarkdown",
        "autograder.worker.feedback.KeepNbgraderMetadata",
        "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    c.HTMLExporter.sanitize_html = True  # a second line of defence where the template honours it
    # nbgrader's feedback template, lighter and with each graded cell named (autograder/worker/templates).
    c.HTMLExporter.template_file = "course_feedback.html.j2"
    c.HTMLExporter.extra_template_basedirs = [str(PACKAGE / "worker" / "templates"), _nbgrader_templates()]
    return c


def _nbgrader_templates() -> str:
    import nbgrader

    return str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")


def _put_venv_on_path() -> None:
    # nbgrader shells out to `alembic` to create a gradebook; it sits beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    if shutil.which("alembic") is None or bindir not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ["PATH"]


def nbgrader_api(course_root: str | Path) -> Any:
    """nbgrader's API on a course folder of our own, configured by `nbgrader_config`."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _one_engine_per_gradebook()
    config = nbgrader_config(course_root)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _one_engine_per_gradebook() -> None:
    """nbgrader opens its gradebook about a dozen times per graded notebook, each time with a new
    SQLAlchemy engine, and a new engine compiles every query again: a fifth of a grading worker's
    CPU. One engine per database URL keeps the queries compiled; Gradebook.close only empties the
    engine's pool of connections, so each Gradebook still opens and closes its own."""
    import nbgrader.api
    import sqlalchemy

    if nbgrader.api.create_engine is sqlalchemy.create_engine:
        nbgrader.api.create_engine = functools.cache(sqlalchemy.create_engine)


def fresh_course(course_root: str | Path, assignment_ids: list[str], reuse: bool = False) -> Any:
    """A new nbgrader course folder with the given assignments generated into its gradebook; returns
    `nbgrader_api` on it. With `reuse`, a copy of the one nbgrader built earlier from the same
    source notebooks (building takes nbgrader seconds, which every grading worker would otherwise pay)."""
    course_root = Path(course_root)
    if reuse:
        shutil.copytree(_course_template(assignment_ids), course_root, dirs_exist_ok=True)
        return nbgrader_api(course_root)
    for aid in assignment_ids:
        dest = course_root / "source" / aid
        dest.mkdir(parents=True)
        shutil.copy(SOLUTIONS / f"{aid}.ipynb", dest / f"{aid}.ipynb")
    api = nbgrader_api(course_root)
    for aid in assignment_ids:
        result = api.generate_assignment(aid, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {aid} failed:\n{result['log']}\n{result['error']}")
    return api


def _course_template(assignment_ids: list[str]) -> Path:
    """WORK/courses/DIGEST: a course folder built once for these assignments, named by what it
    is built from (their source notebooks, this configuration, nbgrader's version)."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("nbgrader").encode() + Path(__file__).read_bytes())
    for aid in assignment_ids:
        digest.update(aid.encode() + (SOLUTIONS / f"{aid}.ipynb").read_bytes())
    template = WORK / "courses" / digest.hexdigest()[:20]
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix="building-", dir=template.parent))
        fresh_course(building, assignment_ids)
        try:
            building.rename(template)  # atomic: a worker never copies half a course
        except OSError:  # another worker built it first
            shutil.rmtree(building, ignore_errors=True)
    return template
