"""Sample submissions made from the release: the reference answers, the untouched stub, and a
catalogue of realistic bugs, each of which must lose points on the test it breaks."""

import json
from pathlib import Path
from typing import Any

from autograder.authoring.bugs import BUGS
from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.paths import assignments, release_path


def stub(aid: str) -> dict[str, Any]:
    """The release notebook of `aid` untouched, as a student who answered nothing hands it in
    (raw JSON, not nbformat's reading: a sample is that file byte for byte)."""
    nb: dict[str, Any] = json.loads(release_path(aid).read_text())
    return nb


def filled(aid: str, bug: str | None = None) -> dict[str, Any]:
    """The release notebook of `aid` with the reference answers typed in, as a student would,
    optionally with one catalogued bug; returns the notebook as a dict."""
    nb = stub(aid)
    answers = dict(assignment(aid).reference_answers)
    if bug:
        b = BUGS[bug]
        assert b.assignment == aid and b.reference in answers[b.cell], f"bug {bug} no longer applies to {aid}"
        answers[b.cell] = answers[b.cell].replace(b.reference, b.bug)
    for cell in nb["cells"]:
        if notebooks.grade_id(cell) in answers:
            cell["source"] = answers[notebooks.grade_id(cell)]
    return nb


def write_samples(dest: str | Path) -> list[Path]:
    """Write dest/STUDENT/ASSIGNMENT.ipynb for the reference, the stub and every bug."""
    dest = Path(dest)
    samples = {}
    for aid in assignments():
        samples[("reference", aid)] = filled(aid)
        samples[("stub", aid)] = stub(aid)
    for bug, b in BUGS.items():
        samples[(f"bug-{bug}", b.assignment)] = filled(b.assignment, bug)
    written = []
    for (student, aid), nb in samples.items():
        path = dest / student / f"{aid}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb, indent=1))
        written.append(path)
    return written
