"""Gradescope: an autograder zip that grades one submission with this course's own grader.

`bundle(["02_value_backward"], "02.zip")` writes a zip laid out as Gradescope's autograder
specification asks: `setup.sh` and `run_autograder` at its root, beside a copy of what grading
needs (this package, solutions/ with the hidden tests, the released exercises/ and capstone/
that intake matches submissions against, requirements.txt, pyproject.toml). Gradescope unpacks
it into /autograder/source; for each submission, `run_autograder` runs
`python -m autograder.gradescope`, which hands the files in /autograder/submission to
`grade.find_submissions` and `grade.grade` (intake, nbgrader, the hidden tests, the limits) and
turns the result into /autograder/results/results.json. Nothing here grades by itself.

One zip per assignment. Gradescope attaches one autograder to each of its assignments and
records a score out of that assignment's points, so each zip is told which assignment it grades:
a student who uploads exercise 3 to the exercise 2 assignment gets 0 with a message saying so,
not exercise 3's points under exercise 2's name. Every zip still carries all of solutions/,
because intake recognises a notebook among all the course's assignments and a later exercise's
reference engine is built from the earlier solutions (it is built here, once, and shipped, so
no submission waits for it). `bundle` accepts several ids for a single Gradescope assignment
that takes several notebooks at once.

The zip holds the hidden tests and reference solutions: upload it only to Gradescope, where
students never see it. Students see each test cell's score and the message the course's
feedback shows (a visible test's failure, "Hidden tests passed" or a hidden test's own
assertion message), never a hidden test's source.

Set AUTOGRADER_ROOT to run `run_autograder` on a folder laid out like Gradescope's
(`source/`, `submission/`, `results/`) instead of /autograder.
"""

import html
import json
import re
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from autograder import grade
from autograder.course import CAPSTONE, EXERCISES, ROOT, SOLUTIONS, WORK, assignments, release_path
from autograder.engine import reference_engine
from autograder.intake import intake, released

CONFIG = "gradescope.json"
STUDENT = "student"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root on its Ubuntu image, when it builds the autograder.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

apt-get update
# graphviz: the `dot` program that draws computation graphs. bubblewrap: the sandbox of the
# student's kernel, where the image allows it (run_autograder falls back to a separate user).
apt-get install -y --no-install-recommends python3 python3-venv python3-pip graphviz bubblewrap

# The grader needs Python 3.11 or newer; Ubuntu 22.04's python3 is 3.10.
PY=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
    PY=python3.11
fi

"$PY" -m venv .venv
.venv/bin/pip install --upgrade pip
# PyTorch from its CPU wheel index, explicitly: from PyPI, pip would fetch a CUDA build of
# several GB that this machine cannot use.
.venv/bin/pip install "{torch}" --index-url {index}
.venv/bin/pip install -r requirements.txt
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades $ROOT/submission with the course's
# grader and writes $ROOT/results/results.json. AUTOGRADER_ROOT replaces /autograder (tests).
set -euo pipefail
# Whatever the grader writes is root's alone. Before grading, autograder.gradescope also makes
# source/ (hidden tests, solutions) and results/ unreadable by other users, then runs the
# student's kernel in bubblewrap, or else as a separate user, or not at all.
umask 077
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
if [ -x "$SOURCE/.venv/bin/python" ]; then
    PY="$SOURCE/.venv/bin/python"
else
    PY="$(command -v python3)"
fi
cd "$SOURCE"
exec "$PY" -m autograder.gradescope "$ROOT"
"""


def bundle(assignment_ids, out_zip):
    """Write the Gradescope autograder zip for `assignment_ids` to `out_zip`; return its path."""
    assignment_ids = list(assignment_ids)
    unknown = [a for a in assignment_ids if a not in assignments()]
    if not assignment_ids or unknown:
        raise ValueError(f"unknown assignment(s) {unknown or assignment_ids}; known: {', '.join(assignments())}")
    missing = [a for a in assignment_ids if not release_path(a).exists()]
    if missing:
        raise FileNotFoundError(f"no released notebook for {missing}: run `python -m autograder build` first")
    files = {}  # path in the zip -> path on disk
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

    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        _add(
            z, "setup.sh", SETUP_SH.replace("{torch}", _torch_requirement()).replace("{index}", TORCH_CPU_INDEX), 0o755
        )
        _add(z, "run_autograder", RUN_AUTOGRADER, 0o755)
        _add(z, CONFIG, json.dumps({"assignments": assignment_ids}, indent=1) + "\n", 0o644)
        for name, path in files.items():
            _add(z, name, path.read_bytes(), 0o644)
    return out_zip


def autograded_points(aid):
    """The points the autograder can give for `aid` (what to enter as the Gradescope
    assignment's autograder points): every test cell, not the written answers graded by hand."""
    return sum(p for g, p in _points(aid).items() if g not in _manual_cells(aid))


def _add(z, name, data, mode):
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
    z.writestr(info, data)


def _torch_requirement():
    """The torch line of requirements.txt (its pin), or plain `torch`."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if re.match(r"torch\b(?![-_])", line):
            return line.replace(" ", "")
    return "torch"


# ---- grading one Gradescope submission -------------------------------------------------------


def run(root):
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
    import os

    from autograder import sandbox

    root = Path(root)
    started = time.monotonic()
    expected = json.loads((ROOT / CONFIG).read_text())["assignments"]  # only an unpacked zip has it
    umask = os.umask(0o077)
    level_before = os.environ.get(sandbox.LEVEL_VAR)
    try:
        sandbox.hide_from_kernels(ROOT, root / "results", root / "submission_metadata.json")
        level = sandbox.best_level()
        if level is None:
            raise SystemExit(
                "cannot grade: this image allows no sandbox for the student's notebook, and it is never "
                f"run without one (bubblewrap: {sandbox.unavailable('full')}; separate user: "
                f"{sandbox.unavailable('uid')}). Nothing was graded and no results.json was written."
            )
        os.environ[sandbox.LEVEL_VAR] = level
        results = _results(root / "submission", expected)
        said = {
            "full": "Sandbox: bubblewrap",
            "uid": "Sandbox: separate user only (this image does not allow bubblewrap)",
        }[level]
        results["output"] = f"{results['output']}\n{said}" if results["output"] else said
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


def _results(submission, expected):
    notebooks = sorted(
        p
        for p in submission.rglob("*.ipynb")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(submission).parts)
    )
    if not notebooks:
        found = sorted(p.name for p in submission.rglob("*") if p.is_file())
        where = f" (found: {', '.join(found[:10])})" if found else ""
        return _zero(f"No .ipynb notebook in the submission{where}. Upload the notebook of {_names(expected)}.")
    mine, problems = [], []
    for path in notebooks:  # keep the notebooks of this assignment; grade.grade repairs them
        got = intake(path)
        if got.error:
            problems.append(f"{path.name}: {got.error}")
        elif got.assignment in expected:
            mine.append(path)
        else:
            problems.append(f"{path.name} is the notebook of {got.assignment}, not of {_names(expected)}")
    if not mine:
        return _zero("Nothing was graded.\n" + "\n".join(problems))

    out = Path(tempfile.mkdtemp(prefix="gradescope-", dir=_work()))
    try:
        subs = grade.grade(grade.find_submissions(mine, STUDENT), out)
        messages = {aid: _messages(out / "feedback" / STUDENT / f"{aid}.html") for aid in expected}
    finally:
        shutil.rmtree(out, ignore_errors=True)

    score, lines, tests = 0.0, [], []
    for aid in expected:
        candidates = [s for s in subs if s.assignment == aid]
        chosen = next((s for s in candidates if not s.status.startswith("error: superseded")), None)
        if chosen is None:
            lines.append(f"{aid}: not submitted")
            continue
        score += chosen.score if chosen.status == "graded" else 0.0
        line = f"{aid}: {chosen.score:g} / {autograded_points(aid):g} points"
        if chosen.status != "graded":
            line += f" ({chosen.status})"
        lines.append(line)
        lines += [f"  note: {n}" for n in chosen.notes]
        lines += [f"  {s.path.name}: {s.status}" for s in candidates if s is not chosen]
        manual = _manual_cells(aid)
        if manual:
            lines.append(
                f"  {sum(_points(aid).get(g, 0) for g in manual):g} more points of written answers are graded by hand"
            )
        tests += _tests(aid, chosen, messages[aid], manual, prefix=len(expected) > 1)
    lines += problems
    for number, test in enumerate(tests, 1):
        test["number"] = str(number)
    return {"score": score, "output": "\n".join(lines), "tests": tests}


def _tests(aid, sub, messages, manual, prefix):
    """One Gradescope test per autograded test cell of `aid`, in notebook order."""
    order = [c["metadata"]["nbgrader"]["grade_id"] for c in released(aid)]
    points = _points(aid)
    ids = [g for g in order if g in points and g not in manual]
    ids += sorted(g for g in sub.tests if g not in ids and g not in manual)
    tests = []
    for gid in ids:
        got, most = sub.tests.get(gid, (0.0, points.get(gid, 0.0)))
        got = got or 0.0
        passed = sub.status == "graded" and got >= most
        if sub.status != "graded":
            output = f"Not graded: {sub.status}"
        else:
            output = messages.get(gid) or ("Passed." if passed else "Failed.")
        tests.append(
            {
                "name": f"{aid}: {gid}" if prefix else gid,
                "score": got,
                "max_score": most,
                "status": "passed" if passed else "failed",
                "output": output,
            }
        )
    return tests


def _points(aid):
    """{grade_id: points} of the graded cells of the released notebook."""
    return {
        c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"].get("points", 0))
        for c in released(aid)
        if c["metadata"]["nbgrader"].get("grade")
    }


def _manual_cells(aid):
    """Grade ids of written answers: graded by hand, not by the autograder."""
    return {
        c["metadata"]["nbgrader"]["grade_id"]
        for c in released(aid)
        if c["metadata"]["nbgrader"].get("grade") and c["metadata"]["nbgrader"].get("solution")
    }


_CELL = re.compile(r'<a name="([^"]+)"></a>(.*?)(?=<div class="cell |\Z)', re.S)
_OUTPUT = re.compile(r'<div class="output_subarea ([^"]*)">\s*<pre>(.*?)</pre>', re.S)


def _messages(feedback_html, limit=2000):
    """{grade_id: the text of its outputs} from the feedback page a student would read.

    The page already went through the feedback preprocessors: a test cell's outputs are the
    grader's verdict only, and a hidden test never shows its source. Only outputs are read here,
    never a cell's input; an error is cut to its last line, the failure message.
    """
    if not feedback_html.exists():
        return {}
    messages = {}
    for gid, body in _CELL.findall(feedback_html.read_text(errors="replace")):
        texts = []
        for kind, pre in _OUTPUT.findall(body):
            text = html.unescape(re.sub(r"<[^>]+>", "", pre)).strip()
            if "output_error" in kind:
                text = next((line for line in reversed(text.splitlines()) if line.strip()), text)
            if text:
                texts.append(text)
        message = "\n".join(texts)
        if message:
            messages[gid] = message if len(message) <= limit else message[:limit] + " ..."
    return messages


def _names(expected):
    return " or ".join(f"{a}.ipynb" for a in expected)


def _zero(output):
    return {"score": 0.0, "output": output, "tests": []}


def _work():
    WORK.mkdir(exist_ok=True)
    return WORK


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path("/autograder")
    run(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
