"""Gradescope: an autograder zip that grades one submission with this course's own grader.

`bundle(["02_value_backward"], "02.zip")` writes a zip laid out as Gradescope's autograder
specification asks: `setup.sh` and `run_autograder` (gradescope_files/, setup.sh with the torch
pin of requirements.txt filled in) at its root, beside a copy of what grading needs (this
package, solutions/ with the hidden tests, the released exercises/ and capstone/ that intake
matches submissions against, requirements.txt, pyproject.toml). Gradescope unpacks it into
/autograder/source; for each submission, `run_autograder` runs `python -m autograder.delivery.gradescope`,
which takes in the notebooks in /autograder/submission (`intake`), grades those of its
assignment with `grade.grade` (nbgrader, the hidden tests, the limits) and maps their
results, each test's verdict included, to /autograder/results/results.json. Nothing here grades
by itself.

One zip per assignment. Gradescope attaches one autograder to each of its assignments and
records a score out of that assignment's points, so each zip is told which assignment it grades:
a student who uploads exercise 3 to the exercise 2 assignment gets 0 with a message saying so,
not exercise 3's points under exercise 2's name. Every zip still carries all of solutions/,
because intake recognises a notebook among all the course's assignments and a later exercise's
reference engine is built from the earlier solutions (it is built here, once, and shipped, so
no submission waits for it). `bundle` accepts several ids for a single Gradescope assignment
that takes several notebooks at once.

The zip holds the hidden tests and reference solutions: upload it only to Gradescope, where
students never see it. Students see each test cell's score and the verdict the course's
feedback shows (the failed check's message, or how many checks passed), never a hidden
test's source. A submission the review flags keeps its score, as `grade` keeps it; why it was
flagged goes into a test worth 0 points that Gradescope shows instructors only (visibility
"hidden"), never into what the student reads.

Set AUTOGRADER_ROOT to run `run_autograder` on a folder laid out like Gradescope's
(`source/`, `submission/`, `results/`) instead of /autograder.
"""

import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from autograder.course import notebooks
from autograder.course.paths import CAPSTONE, EXERCISES, ROOT, SOLUTIONS, WORK, assignments, release_path, requirements
from autograder.course.reference import reference_engine
from autograder.grading import grade
from autograder.grading.discovery import find_submissions
from autograder.grading.intake import intake, released
from autograder.grading.submission import Submission
from autograder.worker import execute
from autograder.worker.result import Status

CONFIG = "gradescope.json"
STUDENT = "student"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# setup.sh and run_autograder, as they go into the zip (setup.sh with its @TORCH@ lines filled in).
SCRIPTS = Path(__file__).parent / "gradescope_files"


def bundle(assignment_ids: list[str], out_zip: str | Path) -> Path:
    """Write the Gradescope autograder zip for `assignment_ids` to `out_zip`; return its path."""
    assignment_ids = list(assignment_ids)
    _check(assignment_ids)
    files = _files(assignment_ids)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        _add(z, "setup.sh", _setup_sh(), 0o755)
        _add(z, "run_autograder", (SCRIPTS / "run_autograder").read_text(), 0o755)
        _add(z, CONFIG, json.dumps({"assignments": assignment_ids}, indent=1) + "\n", 0o644)
        for name, path in files.items():
            _add(z, name, path.read_bytes(), 0o644)
    return out_zip


def _check(assignment_ids: list[str]) -> None:
    unknown = [a for a in assignment_ids if a not in assignments()]
    if not assignment_ids or unknown:
        raise ValueError(f"unknown assignment(s) {unknown or assignment_ids}; known: {', '.join(assignments())}")
    missing = [a for a in assignment_ids if not release_path(a).exists()]
    if missing:
        raise FileNotFoundError(f"no released notebook for {missing}: run `python -m autograder build` first")


def _files(assignment_ids: list[str]) -> dict[str, Path]:
    """{path in the zip: path on disk} of what grading needs besides the two scripts."""
    files = {}
    for path in sorted((ROOT / "autograder").rglob("*.py")):
        if "student_files" not in path.parts:
            files[path.relative_to(ROOT).as_posix()] = path
    for folder in (SOLUTIONS, EXERCISES, CAPSTONE):
        for path in sorted(folder.glob("*.ipynb")):
            files[path.relative_to(ROOT).as_posix()] = path
    for name in ("requirements.txt", "pyproject.toml"):
        files[name] = ROOT / name
    for aid in assignment_ids:
        engine = reference_engine(aid)  # cached where engine.reference_engine looks for it
        if engine:
            files[engine.relative_to(ROOT).as_posix()] = engine
    return files


def _setup_sh() -> str:
    text = (SCRIPTS / "setup.sh").read_text()
    return text.replace("@TORCH@", "torch" + requirements().get("torch", "")).replace("@TORCH_INDEX@", TORCH_CPU_INDEX)


def autograded_points(aid: str) -> float:
    """The points the autograder can give for `aid` (what to enter as the Gradescope
    assignment's autograder points): every test cell, not the written answers graded by hand."""
    return sum(p for g, p in _points(aid).items() if g not in _manual_cells(aid))


def _add(z: zipfile.ZipFile, name: str, data: str | bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
    z.writestr(info, data)


# ---- grading one Gradescope submission -------------------------------------------------------

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
    expected = json.loads((ROOT / CONFIG).read_text())["assignments"]  # only an unpacked zip has it
    umask = os.umask(0o077)
    level_before = os.environ.get(sandbox.LEVEL_VAR)
    try:
        sandbox.hide_from_kernels(ROOT, root / "results", root / "submission_metadata.json")
        level = _sandbox_level()
        os.environ[sandbox.LEVEL_VAR] = level
        results = _results(root / "submission", expected)
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


def _results(submission: Path, expected: list[str]) -> dict[str, Any]:
    """results.json for the notebooks in `submission`: those of `expected` are graded."""
    notebooks = sorted(
        p
        for p in submission.rglob("*.ipynb")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(submission).parts)
    )
    if not notebooks:
        found = sorted(p.name for p in submission.rglob("*") if p.is_file())
        where = f" (found: {', '.join(found[:10])})" if found else ""
        return _zero(f"No .ipynb notebook in the submission{where}. Upload the notebook of {_names(expected)}.")
    subs = intake(find_submissions(notebooks, STUDENT))
    mine = [s for s in subs if s.assignment in expected]
    problems = [_problem(s, expected) for s in subs if s.assignment not in expected]
    if not mine:
        return _zero("Nothing was graded.\n" + "\n".join(problems))
    out = Path(tempfile.mkdtemp(prefix="gradescope-", dir=_work()))
    try:
        grade.grade(mine, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return _report(mine, expected, problems)


def _problem(s: Submission, expected: list[str]) -> str:
    """Why a notebook of the submission is not graded."""
    if s.assignment is None:
        return f"{s.path.name}: {s.reason}"
    return f"{s.path.name} is the notebook of {s.assignment}, not of {_names(expected)}"


def _report(subs: list[Submission], expected: list[str], problems: list[str]) -> dict[str, Any]:
    """results.json for the graded `subs`: the score, the output the student reads, one test per
    autograded test cell."""
    score, lines, tests = 0.0, [], []
    for aid in expected:
        candidates = [s for s in subs if s.assignment == aid]
        chosen = next((s for s in candidates if s.state is not Status.SUPERSEDED), None)
        if chosen is None:
            lines.append(f"{aid}: not submitted")
            continue
        score += chosen.score if chosen.state in SCORED else 0.0
        lines += _summary(aid, chosen, [s for s in candidates if s is not chosen])
        tests += _tests(aid, chosen, prefix=len(expected) > 1)
        if chosen.review:
            tests.append(_for_the_instructor(aid, chosen))
    lines += problems
    for number, test in enumerate(tests, 1):
        test["number"] = str(number)
    if any(t.get("visibility") == AFTER_PUBLISHED for t in tests):
        lines.append(WAIT_FOR_PUBLISHING)
    results: dict[str, Any] = {"score": score, "output": "\n".join(lines), "tests": tests}
    if WAIT_FOR_PUBLISHING in lines:
        # Gradescope shows the total as soon as it has one, and the total less the visible tests'
        # points is the hidden tests' verdict: everything waits for publishing. The visible tests
        # stay with the student, who runs them in the notebook and in the repository's workflow.
        results["visibility"] = AFTER_PUBLISHED
    return results


AFTER_PUBLISHED = "after_published"
WAIT_FOR_PUBLISHING = "The hidden tests' results, and so the score, show once your instructor publishes the grades."


# Scored as `grade` scores them: a submission flagged for review keeps its score, and only the
# instructor reads why (a student told which line tripped the review learns how to hide it).
SCORED = (Status.GRADED, Status.REVIEW)


def _for_the_instructor(aid: str, sub: Submission) -> dict[str, Any]:
    """A test worth nothing that Gradescope shows the instructor only: why to read the answers."""
    return {
        "name": f"{aid}: to review (instructors only)",
        "score": 0.0,
        "max_score": 0.0,
        "status": "failed",
        "visibility": "hidden",
        "output": "The score stands; read the cells named:\n" + "\n".join(sub.review),
    }


def _summary(aid: str, chosen: Submission, superseded: list[Submission]) -> list[str]:
    line = f"{aid}: {chosen.score:g} / {autograded_points(aid):g} points"
    if chosen.state not in SCORED:
        line += f" ({chosen.status})"
    notes = [n for n in chosen.notes if not n.startswith("review:")]
    lines = [line, *(f"  note: {n}" for n in notes), *(f"  {s.path.name}: {s.status}" for s in superseded)]
    manual = _manual_cells(aid)
    if manual:
        hand = sum(_points(aid).get(g, 0) for g in manual)
        lines.append(f"  {hand:g} more points of written answers are graded by hand")
    return lines


def _tests(aid: str, sub: Submission, prefix: bool) -> list[dict[str, Any]]:
    """One Gradescope test per autograded test cell of `aid`, in notebook order, with the
    verdict the student's feedback shows as its output."""
    order = [c["metadata"]["nbgrader"]["grade_id"] for c in released(aid)]
    points, manual = _points(aid), _manual_cells(aid)
    ids = [g for g in order if g in points and g not in manual]
    hidden = {notebooks.grade_id(c) for c in released(aid) if notebooks.is_hidden_test(c)}
    ids += sorted(g for g in sub.tests if g not in ids and g not in manual)
    messages = {gid: t.message for gid, t in sub.result.tests.items()} if sub.result else {}
    tests = []
    for gid in ids:
        got, most = sub.tests.get(gid, (0.0, points.get(gid, 0.0)))
        got = got or 0.0
        graded = sub.state in SCORED
        passed = graded and got >= most
        tests.append(
            {
                **({"visibility": AFTER_PUBLISHED} if gid in hidden and graded else {}),
                "name": f"{aid}: {gid}" if prefix else gid,
                "score": got,
                "max_score": most,
                "status": "passed" if passed else "failed",
                "output": (messages.get(gid) or ("Passed." if passed else "Failed."))
                if graded
                else f"Not graded: {sub.status}",
            }
        )
    return tests


def _points(aid: str) -> dict[str, float]:
    """{grade_id: points} of the graded cells of the released notebook."""
    return {
        c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"].get("points", 0))
        for c in released(aid)
        if c["metadata"]["nbgrader"].get("grade")
    }


def _manual_cells(aid: str) -> set[str]:
    """Grade ids of written answers: graded by hand, not by the autograder."""
    return {
        c["metadata"]["nbgrader"]["grade_id"]
        for c in released(aid)
        if c["metadata"]["nbgrader"].get("grade") and c["metadata"]["nbgrader"].get("solution")
    }


def _names(expected: list[str]) -> str:
    return " or ".join(f"{a}.ipynb" for a in expected)


def _zero(output: str) -> dict[str, Any]:
    return {"score": 0.0, "output": output, "tests": []}


def _work() -> Path:
    WORK.mkdir(exist_ok=True)
    return WORK


def warm() -> None:
    """Compute, once when the image is built (setup.sh), what the first grading in a fresh
    container would otherwise compute before it grades anything: the reference solutions' check
    reports (`execute.expected_reports`, run in the sandbox) and the nbgrader course template
    that each worker copies. Both are kept in this source folder's .work/."""
    from autograder import sandbox
    from autograder.course.nbgrader_setup import _course_template
    from autograder.worker.execute import expected_reports

    expected = json.loads((ROOT / CONFIG).read_text())["assignments"]
    level = sandbox.best_level()
    if level is None:  # grading refuses too, and says why, per submission
        print("no sandbox in this image: nothing computed ahead", file=sys.stderr)
        return
    os.environ[sandbox.LEVEL_VAR] = level
    for aid in expected:
        expected_reports(aid)
    _course_template(sorted(expected))
    execute.discard_spare()


def main(argv: list[str] | None = None) -> int:
    """`python -m autograder.delivery.gradescope [ROOT]` grades ROOT/submission (ROOT: /autograder);
    `python -m autograder.delivery.gradescope --warm` computes ahead what every submission needs."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--warm"]:
        warm()
        return 0
    root = Path(argv[0]) if argv else Path("/autograder")
    run(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
