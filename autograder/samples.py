"""Sample submissions made from the release: the reference answers, the untouched stub, and a
catalogue of realistic bugs, each of which must lose points on the test it breaks."""

import json
from pathlib import Path

from autograder.bugs import BUGS
from autograder.course import SOLUTIONS, assignments, release_path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _answers(aid):
    """The reference answer of every solution cell, markers removed, by grade_id."""
    answers = {}
    for cell in json.loads((SOLUTIONS / f"{aid}.ipynb").read_text())["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            source = "".join(cell["source"])
            lines = [line for line in source.splitlines(keepends=True) if line.strip() not in (BEGIN, END)]
            answers[meta["grade_id"]] = "".join(lines)
    return answers


def filled(aid, bug=None):
    """The release notebook of `aid` with the reference answers typed in, as a student would,
    optionally with one catalogued bug; returns the notebook as a dict."""
    nb = json.loads(release_path(aid).read_text())
    answers = _answers(aid)
    if bug:
        bug_aid, grade_id, old, new, _ = BUGS[bug]
        assert bug_aid == aid and old in answers[grade_id], f"bug {bug} no longer applies to {aid}"
        answers[grade_id] = answers[grade_id].replace(old, new)
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return nb


def write_samples(dest):
    """Write dest/STUDENT/ASSIGNMENT.ipynb for the reference, the stub and every bug."""
    dest = Path(dest)
    notebooks = {}
    for aid in assignments():
        notebooks[("reference", aid)] = filled(aid)
        notebooks[("stub", aid)] = json.loads(release_path(aid).read_text())
    for bug, (aid, *_) in BUGS.items():
        notebooks[(f"bug-{bug}", aid)] = filled(aid, bug)
    written = []
    for (student, aid), nb in notebooks.items():
        path = dest / student / f"{aid}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1))
        written.append(path)
    return written
