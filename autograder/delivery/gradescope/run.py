"""Grading one Gradescope submission, in Gradescope's container (see the package's docstring).

Imports only the package's grading layers: the zip holds nothing else.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autograder.course.paths import ROOT, WORK
from autograder.delivery.gradescope import mapping
from autograder.delivery.gradescope.bundle import CONFIG
from autograder.grading import grade
from autograder.grading.discovery import find_submissions
from autograder.grading.intake import intake
from autograder.grading.submission import Submission
from autograder.worker import execute

STUDENT = "student"
SAID = {
    "full": "Sandbox: bubblewrap",
    "uid": "Sandbox: separate user only (this image does not allow bubblewrap)",
}


def run(root: str | Path) -> dict[str, Any]:
    """Grade `root`/submission with the course's grader; write `root`/results/results.json.

    A submission that cannot be graded (no notebook, another assignment's, broken JSON, over
    its time limit) gets 0 and the reason. A failure of the grader itself raises, so no
    results.json is written and Gradescope reports the autograder as failed (rerun it there)
    instead of recording a 0.

    Before grading, the autograder's own files (this source folder with the hidden tests and
    solutions, results/, submission_metadata.json) become unreadable by other users
    (`sandbox.hide_from_kernels`: the venv the kernel runs stays readable) and everything the
    grader writes is root's alone (umask 077). The student's kernel then runs in the strongest
    sandbox the image allows (`sandbox.best_level()`): bubblewrap, or else, where the Docker
    container refuses the user namespaces bubblewrap needs, a separate unprivileged user. It is
    passed to the grader's workers in MICROGRAD_SANDBOX_LEVEL, and results.json's output names
    it. Where neither is possible nothing is graded: SystemExit with the reasons on stderr, no
    results.json (Gradescope shows the autograder as failed).
    """
    from autograder import sandbox

    root = Path(root)
    started = time.monotonic()
    expected = _expected()
    umask = os.umask(0o077)
    level_before = os.environ.get(sandbox.LEVEL_VAR)
    try:
        sandbox.hide_from_kernels(ROOT, root / "results", root / "submission_metadata.json")
        level = _sandbox_level()
        os.environ[sandbox.LEVEL_VAR] = level
        results = graded(root / "submission", expected)
        results["output"] = f"{results['output']}\n{SAID[level]}" if results["output"] else SAID[level]
        results["execution_time"] = round(time.monotonic() - started)
        (root / "results").mkdir(parents=True, exist_ok=True)
        (root / "results" / "results.json").write_text(json.dumps(results, indent=1))
    finally:
        os.umask(umask)
        if level_before is None:
            os.environ.pop(sandbox.LEVEL_VAR, None)
        else:
            os.environ[sandbox.LEVEL_VAR] = level_before
    print(results["output"])
    return results


def _expected() -> list[str]:
    """The assignments this zip grades (only an unpacked zip names them)."""
    found: list[str] = json.loads((ROOT / CONFIG).read_text())["assignments"]
    return found


def _sandbox_level() -> str:
    """The strongest sandbox this image allows; SystemExit if none."""
    from autograder import sandbox

    level = sandbox.best_level()
    if level is None:
        raise SystemExit(
            "cannot grade: this image allows no sandbox for the student's notebook, and it is never "
            f"run without one (bubblewrap: {sandbox.unavailable('full')}; separate user: "
            f"{sandbox.unavailable('uid')}). Nothing was graded and no results.json was written."
        )
    return level


def graded(submission: Path, expected: list[str]) -> dict[str, Any]:
    """results.json for the notebooks in `submission`: those of `expected` are graded."""
    found = sorted(
        p
        for p in submission.rglob("*.ipynb")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(submission).parts)
    )
    if not found:
        files = sorted(p.name for p in submission.rglob("*") if p.is_file())
        where = f" (found: {', '.join(files[:10])})" if files else ""
        return mapping.zero(
            f"No .ipynb notebook in the submission{where}. Upload the notebook of {mapping.names(expected)}."
        )
    subs = intake(find_submissions(found, STUDENT))
    mine = [s for s in subs if s.assignment in expected]
    problems = [_problem(s, expected) for s in subs if s.assignment not in expected]
    if not mine:
        return mapping.zero("Nothing was graded.\n" + "\n".join(problems))
    WORK.mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="gradescope-", dir=WORK))
    try:
        grade.grade(mine, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return mapping.report(mine, expected, problems)


def _problem(s: Submission, expected: list[str]) -> str:
    """Why a notebook of the submission is not graded."""
    if s.assignment is None:
        return f"{s.path.name}: {s.reason}"
    return f"{s.path.name} is the notebook of {s.assignment}, not of {mapping.names(expected)}"


def warm() -> None:
    """Compute, once when the image is built (setup.sh), what the first grading in a fresh
    container would otherwise compute before it grades anything: the reference solutions' check
    reports (`execute.expected_reports`, run in the sandbox) and the nbgrader course template
    that each worker copies. Both are kept in this source folder's .work/."""
    from autograder import sandbox
    from autograder.course.nbgrader_setup import _course_template

    expected = _expected()
    level = sandbox.best_level()
    if level is None:  # grading refuses too, and says why, per submission
        print("no sandbox in this image: nothing computed ahead", file=sys.stderr)
        return
    os.environ[sandbox.LEVEL_VAR] = level
    for aid in expected:
        execute.expected_reports(aid)
    _course_template(sorted(expected))


def main(argv: list[str] | None = None) -> int:
    """`python -m autograder.delivery.gradescope [ROOT]` grades ROOT/submission (ROOT: /autograder);
    `python -m autograder.delivery.gradescope --warm` computes ahead what every submission needs."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--warm"]:
        warm()
        return 0
    run(Path(argv[0]) if argv else Path("/autograder"))
    return 0
