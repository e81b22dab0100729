"""Grade a cohort: intake, nbgrader workers fed one submission at a time, one writer for grades.csv.

Each submission is taken in (recognised and repaired), given its verified cached result or graded
by a worker of the pool, given its hand grades, reviewed, charged its late penalty, and written
as a row of grades.csv.
"""

import shutil
import sys
import tempfile
from pathlib import Path

from autograder.course.paths import ROOT, WORK
from autograder.course.reference import reference_engine
from autograder.grading import cache
from autograder.grading.intake import intake
from autograder.grading.late import Policy
from autograder.grading.late import apply as apply_late_penalties
from autograder.grading.manual import apply_manual_grades
from autograder.grading.output import write_csv
from autograder.grading.pool import Workers
from autograder.grading.review import review
from autograder.grading.submission import Submission
from autograder.worker import cohort_course
from autograder.worker.result import Status, Task, feedback_page


def grade(
    submissions: list[Submission],
    out: str | Path,
    jobs: int = 1,
    force: bool = False,
    progress: bool = False,
    unsafe_no_sandbox: bool = False,
    feedback: bool = False,
    late: Policy | None = None,
    key_file: str | Path | None = None,
) -> list[Submission]:
    """Grade `submissions`, taking in those not taken in yet; write grades.csv and results/ into
    `out`, and with `feedback` one feedback page per graded notebook into `out`/feedback/; return
    them. `late`: the due dates and penalty that grades.csv applies (the cached results stay as
    graded). `key_file`: the key that signs the results (default .work/grader.key), one that shards
    of a cohort share.

    Refuses (SystemExit) when student code cannot be sandboxed, unless `unsafe_no_sandbox`."""
    intake(submissions)
    sandboxed = _sandbox_or_refuse(unsafe_no_sandbox)
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if sandboxed:
        _hide_grader_files(out)
    cohort_course.prepare(out, sorted({s.assignment for s in submissions if s.assignment}))
    key = cache.signing_key(key_file)
    staging = Path(tempfile.mkdtemp(prefix="staged-", dir=WORK))
    try:
        todo = _tasks(submissions, staging, out, force, key, sandboxed, feedback)
        if todo:
            Workers(todo, out, jobs, progress, key, sandboxed).run()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    apply_manual_grades(submissions, out, feedback)
    _flag_for_review(submissions)
    if late:
        apply_late_penalties(submissions, late)
    write_csv(submissions, out / "grades.csv")
    return submissions


def _flag_for_review(submissions: list[Submission]) -> None:
    """Mark graded answers whose code reaches for the interpreter or the grader: the score
    stands, and the instructor reads the code."""
    for s in submissions:
        if s.assignment is None or s.state is Status.SUPERSEDED or (nb := s.notebook) is None:
            continue
        try:
            s.review = review(nb, s.assignment)
        except Exception as e:  # code the review cannot read is code to read by hand
            s.review = [f"the review could not read its cells ({type(e).__name__})"]
        s.notes += [f"review: {r}" for r in s.review]
        if s.review and s.state is Status.GRADED:  # an error status says more, and stays
            more = len(s.review) - 1
            s.state, s.reason = Status.REVIEW, s.review[0] + (f" (+{more} more)" if more else "")


def _hide_grader_files(out: Path) -> None:
    """A level "uid" kernel reads what any user may read: before one runs, the repository (hidden
    tests, solutions), .work/ (the reference's reports, the key) and `out` become root's alone."""
    from autograder import sandbox

    if sandbox.default_level() == "uid":
        sandbox.hide_from_kernels(ROOT, WORK, out)


def _sandbox_or_refuse(unsafe_no_sandbox: bool) -> bool:
    """True when kernels will be sandboxed; False when the caller explicitly accepted none."""
    try:
        from autograder import sandbox

        reason = sandbox.unavailable()
    except ImportError as e:
        reason = f"the sandbox module is missing ({e})"
    if reason is None:
        weaker = sandbox.seccomp_unavailable()
        if weaker:
            print(f"warning: {weaker}; kernels run without the seccomp filter", file=sys.stderr)
        return True
    if not unsafe_no_sandbox:
        raise SystemExit(
            f"cannot grade: {reason}. Install bubblewrap (apt-get install bubblewrap) "
            "or pass --unsafe-no-sandbox to grade without a sandbox"
        )
    print(f"warning: {reason}; grading WITHOUT a sandbox (--unsafe-no-sandbox)", file=sys.stderr)
    return False


def _tasks(
    submissions: list[Submission], staging: Path, out: Path, force: bool, key: bytes, sandboxed: bool, feedback: bool
) -> list[tuple[Submission, Task]]:
    """Reuse verified results (with their feedback pages, when those are asked for); stage the
    others and return their tasks."""
    tasks = []
    for s in submissions:
        if s.state is not Status.NOT_GRADED or s.assignment is None or not s.has_notebook:
            continue  # not a notebook of the course, or superseded
        try:
            task = _task(s, staging, out, force, key, sandboxed, feedback)
        except Exception as e:  # this file's own error row; the others are graded
            s.state, s.reason = Status.ERROR, f"could not be staged for grading ({type(e).__name__})"
            continue
        if task is not None:
            tasks.append((s, task))
    return tasks


def _task(
    s: Submission, staging: Path, out: Path, force: bool, key: bytes, sandboxed: bool, feedback: bool
) -> Task | None:
    """The task that grades `s`, staged; None when a verified earlier result is reused."""
    assert s.assignment is not None and s.spooled is not None
    s.digest = cache.input_digest(s)
    if (
        not force
        and (not feedback or feedback_page(out, s.student, s.assignment).exists())
        and cache.reuse(out, s, key, sandboxed)
    ):
        return None
    staged = staging / s.student / f"{s.assignment}.ipynb"
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(s.spooled, staged)  # the repaired notebook's bytes, as intake wrote them
    engine = reference_engine(s.assignment)
    engine_path = str(engine) if engine else None
    return Task(s.student, s.assignment, str(staged), engine_path, sandboxed, feedback=feedback)
