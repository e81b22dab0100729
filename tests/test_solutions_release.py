"""`release-solutions`: the solution as students read it after the deadline."""

import pytest

from autograder import cli
from autograder.course import notebooks
from autograder.course.paths import SOLUTIONS
from autograder.delivery.solutions_release import HAND_GRADED, release_solutions


def _hidden_lines(aid):
    """The telling lines of the hidden tests that the solution's answers do not contain too."""
    path = SOLUTIONS / f"{aid}.ipynb"
    answers = notebooks.secret_lines([path], kinds=[notebooks.SOLUTION])
    return set(notebooks.secret_lines([path], kinds=[notebooks.HIDDEN_TESTS])) - set(answers)


def test_the_capstone_solution_keeps_answers_and_drops_rubrics_hidden_tests_and_markers(tmp_path):
    path = release_solutions("07_capstone", tmp_path, execute=False)
    text = path.read_text()
    nb = notebooks.read(path)
    writeups = [c for c in nb.cells if c.cell_type == "markdown" and notebooks.is_graded(c)]
    assert len(writeups) == 4 and all(c.source.endswith(HAND_GRADED) for c in writeups)
    assert "Rubric for the instructor" not in text
    hidden = _hidden_lines("07_capstone")
    assert hidden and not [line for line in hidden if line in text]
    assert not [m for m in notebooks.MARKERS if m in text]
    # The answers stay: every line of code the source solves with is there.
    source = notebooks.read(SOLUTIONS / "07_capstone.ipynb")
    answers = [
        line
        for c in source.cells
        if c.cell_type == "code"
        for body in notebooks.regions(c.source, [notebooks.SOLUTION])
        for line in body.splitlines()
        if line.strip() and not line.strip().startswith("### ")
    ]
    released = "\n".join(c.source for c in nb.cells if c.cell_type == "code").splitlines()
    assert answers and not [line for line in answers if line not in released]


@pytest.mark.kernel
def test_release_solutions_runs_the_solution_with_the_reference_package(tmp_path, capsys):
    assert cli.main(["release-solutions", "03_more_ops", str(tmp_path)]) == 0
    assert str(tmp_path / "03_more_ops.ipynb") in capsys.readouterr().out
    nb = notebooks.read(tmp_path / "03_more_ops.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    said = {notebooks.grade_id(c): "".join(o.get("text", "") for o in c.outputs) for c in code}
    assert said["load_engine"].startswith("Loaded micrograd")
    visible = [gid for gid in said if gid and gid.startswith("test_") and not gid.endswith("_hidden")]
    assert visible and all(said[gid].startswith("✓ ") for gid in visible)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "\n".join(c.source for c in nb.cells)
    assert not [line for line in _hidden_lines("03_more_ops") if line in text]


def test_release_solutions_names_the_assignments_when_given_another(tmp_path, capsys):
    assert cli.main(["release-solutions", "08_missing", str(tmp_path)]) == 2
    assert "07_capstone" in capsys.readouterr().err
