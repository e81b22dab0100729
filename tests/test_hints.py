"""The student builds the engine rather than copying it: the text states the contract, the help
waits in collapsed hints, no answer line shows anywhere a student reads, and enough points are
visible to learn from before submitting."""

import re

import pytest

from autograder.course import notebooks
from autograder.course.paths import LESSONS, SOLUTIONS, assignments, release_path

HINT = re.compile(r"<details><summary>Hint (\d)</summary>\n\n.+?\n\n</details>", re.S)


def _norm(text):
    return " ".join(text.replace("'", '"').split())


def _cells(path):
    return notebooks.read(path).cells


def answer_lines(aid):
    """Every line of 12+ characters in the reference answers of `aid`, except those the student's
    notebook shows anyway (the def line and docstring above each stub)."""
    lines = set()
    for cell in _cells(SOLUTIONS / f"{aid}.ipynb"):
        for body in notebooks.regions(cell.source, [notebooks.SOLUTION]):
            lines |= {_norm(line) for line in body.splitlines() if len(_norm(line)) >= 12}
    stubs = _norm("\n".join(c.source for c in _cells(release_path(aid)) if c.cell_type == "code"))
    return {line for line in lines if line not in stubs}


def test_the_scan_finds_answer_lines():
    assert "self.grad += out.grad" in answer_lines("02_value_backward")


@pytest.mark.parametrize("aid", assignments())
def test_every_answer_has_two_or_three_progressive_hints_under_it(aid):
    hints_under_every_answer(_cells(release_path(aid)))


def hints_under_every_answer(cells):
    """Each code answer of a released notebook's `cells` has hints 1, 2 (and 3) before the next graded cell."""
    answers = [i for i, c in enumerate(cells) if notebooks.is_answer(c) and c.cell_type == "code"]
    assert answers
    for i in answers:
        below = []
        for cell in cells[i + 1 :]:
            if notebooks.is_graded(cell):
                break
            below.append(cell.source if cell.cell_type == "markdown" else "")
        numbers = [int(n) for n in HINT.findall("\n".join(below))]
        assert numbers in ([1, 2], [1, 2, 3]), f"{notebooks.grade_id(cells[i])}: hints {numbers}"


@pytest.mark.parametrize("aid", assignments())
def test_no_answer_line_shows_in_the_text_or_the_hints(aid):
    lines = answer_lines(aid)
    for cell in _cells(release_path(aid)):
        if cell.cell_type == "markdown":
            text = _norm(cell.source)
            shown = sorted(line for line in lines if line in text)
            assert not shown, f"{cell.get('id')} shows answer lines {shown}"


def test_lesson_4_teaches_the_sort_without_handing_over_backward():
    backward = answer_lines("02_value_backward")
    lesson = _norm("\n".join(c.source for c in _cells(LESSONS / "04_autodiff.ipynb")))
    assert not {line for line in backward if line in lesson}
    code = "\n".join(c.source for c in _cells(LESSONS / "04_autodiff.ipynb") if c.cell_type == "code")
    assert not re.search(r"\b(seen|visited)\b", code), (
        "the lesson asks why a visited set is needed: it must not show one"
    )


@pytest.mark.parametrize("aid", assignments())
def test_at_least_forty_percent_of_the_autograded_points_are_visible(aid):
    enough_visible_points(_cells(SOLUTIONS / f"{aid}.ipynb"))


def enough_visible_points(cells):
    """At least 40% of the test points of a source notebook's `cells` are visible."""
    points = {"visible": 0.0, "hidden": 0.0}
    for cell in cells:
        if notebooks.is_test(cell):
            kind = "hidden" if notebooks.is_hidden_test(cell) else "visible"
            points[kind] += notebooks.nbgrader_metadata(cell)["points"]
    assert points["visible"] >= 0.4 * (points["visible"] + points["hidden"]), points
