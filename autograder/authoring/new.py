"""`new NN_name "Title"`: the source notebook of a new assignment, ready for `build`.

It holds what every source notebook of the course holds, in the course's conventions: the
Colab badge and title, the setup cell with the current checks kit (collapsed under its note, as
`build` keeps it), a markdown cell for the maths, one answer cell named after the assignment
with its reference answer between the solution markers, its progressive hints, and a visible and
a hidden test cell (grade_ids `NAME`, `test_NAME`, `test_NAME_hidden`; one point each, so half
the autograded points are visible). `metadata.course` names the imports an answer may use and
the limits an assignment may raise, at their defaults. Replace the placeholder function, text,
hints and checks with the exercise's own, keeping the cells' metadata.
"""

import re
from pathlib import Path
from typing import Any

from autograder.authoring.build import canonical, collapse, shared_texts
from autograder.course.assignment import DEFAULT_ALLOWED_IMPORTS
from autograder.course.limits import OVERRIDABLE, Limits
from autograder.course.paths import SOLUTIONS, colab_url, release_path

# An assignment id: two digits for its place in the course, then a Python name, which the answer's
# function and its test cells take.
ID = re.compile(r"(\d\d)_([a-z][a-z0-9_]*)")
BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
# The setup cell's own part, below the checks kit: the imports the tests and the answer share.
SETUP_OWN = "# Run this cell first: it defines the checks the test cells use.\nimport math\n"
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}


def scaffold(aid: str, title: str, solutions: Path | None = None) -> Path:
    """Write `solutions` (default solutions/)/`aid`.ipynb, a new source notebook; return its path. ValueError for an id
    that is not NN_name, FileExistsError if the notebook exists."""
    found = ID.fullmatch(aid)
    if not found:
        raise ValueError(f"{aid!r} is no assignment id: two digits, an underscore, a lower-case Python name")
    path = (solutions or SOLUTIONS) / f"{aid}.ipynb"
    if path.exists():
        raise FileExistsError(f"{path} exists")
    number, name = int(found.group(1)), found.group(2)
    cells = [
        _markdown("md-01", f"{BADGE}({colab_url(release_path(aid))})\n\n# Exercise {number} — {title}\n\n{INTRO}"),
        _code("setup", shared_texts()["setup"] + SETUP_OWN, locked=True),
        _markdown("md-02", MATHS.format(name=name)),
        _code(name, ANSWER.format(name=name), solution=True),
        _markdown("hints-" + name, HINTS.format(name=name)),
        _code(f"test_{name}", VISIBLE.format(name=name), points=1),
        _code(f"test_{name}_hidden", HIDDEN.format(name=name), points=1),
    ]
    collapse(cells)
    limits = {key: getattr(Limits(), key) for key in OVERRIDABLE}
    course = {"allowed_imports": list(DEFAULT_ALLOWED_IMPORTS), "limits": limits}
    nb = {"cells": cells, "metadata": {**METADATA, "course": course}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical(nb))
    return path


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").splitlines(keepends=True)


def _markdown(cell_id: str, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _lines(text)}


def _code(grade_id: str, text: str, solution: bool = False, locked: bool = False, points: int = 0) -> dict[str, Any]:
    """A code cell with nbgrader's metadata: an answer (`solution`), a locked given cell, or a
    test cell (`points`), its cell id its grade_id."""
    meta: dict[str, Any] = {
        "grade": bool(points),
        "grade_id": grade_id,
        "locked": locked or bool(points),
        "schema_version": 3,
        "solution": solution,
    }
    if points:
        meta["points"] = points
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": grade_id,
        "metadata": {"nbgrader": meta},
        "outputs": [],
        "source": _lines(text),
    }


INTRO = """\
What this exercise builds, and which lesson to read first.

**What you write:** one function per answer cell, between the given `def` line and the tests.
Run the cells from the top; each test cell says in one line whether your answer passed."""

MATHS = """\
## `{name}`

State the contract and the maths here: what `{name}` takes, what it returns, and the formula,
such as $$y = 2x.$$"""

ANSWER = '''\
def {name}(x):
    """Return 2 * x: replace this contract, and the answer below, with the exercise's own."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
'''

HINTS = """\
<details><summary>Hint 1</summary>

Where the lesson explains the idea, and which question to ask first.

</details>

<details><summary>Hint 2</summary>

A closer step towards `{name}`, without its answer line.

</details>"""

VISIBLE = """\
# Visible tests for {name}
check = Checks("{name}")
check.close({name}(1.5), 3.0, "{name}(1.5) should be 3.0")
check.done()
"""

HIDDEN = """\
# Hidden tests for {name} run when your notebook is graded.
### BEGIN HIDDEN TESTS
check = Checks("{name}")
check.close({name}(-2.0), -4.0, "{name}(-2.0) should be -4.0")
check.done()
### END HIDDEN TESTS
"""
