"""Grading mode on every notebook: inputs moved by another secret still give a correct answer
full marks, and every test cell reports at least one number that moves with its inputs (so its
expected numbers cannot be read off the notebook the student sees)."""

import dataclasses

import nbformat
import pytest

from autograder.authoring import samples
from autograder.course.assignment import assignment
from autograder.course.notebooks import is_test, read
from autograder.course.paths import SOLUTIONS, assignments
from autograder.worker import execute
from autograder.worker.verdict import error_name, judge, observations, reports

pytestmark = pytest.mark.kernel

# Test cells whose checks can only be properties of a whole training run or of data drawn in ways
# the contract leaves open (a trained model's accuracy, the loss going down, points on a circle):
# a forged report can pass them. They carry at most 10% of an assignment's autograded points
# (tests/test_graded_source.py checks it). Every other test cell reports a number that moves
# with its inputs.
PROPERTY_CELLS = {
    "06_training": {"test_xor_run"},
    "07_capstone": {"test_make_moons", "test_make_moons_hidden", "test_moons_trained", "test_moons_trained_hidden"},
}


def _reports(nb, aid, reference=False):
    run, reason = execute.run_graded(nb, aid, reference)
    assert reason is None, reason
    return {c.metadata.nbgrader.grade_id: c for c in run.cells if is_test(c)}


@pytest.mark.parametrize("aid", assignments())
def test_another_secret_still_gives_a_correct_answer_full_marks(aid, monkeypatch):
    source = read(SOLUTIONS / f"{aid}.ipynb")
    tests = {c.metadata.nbgrader.grade_id: c.source for c in source.cells if is_test(c)}
    usual = execute.expected_reports(aid)  # cached when the samples were graded
    monkeypatch.setattr(execute, "assignment", lambda aid: dataclasses.replace(assignment(aid), salt="another secret"))
    moved = {gid: reports(c.outputs) for gid, c in _reports(source, aid, reference=True).items()}

    answered = nbformat.reads(nbformat.writes(nbformat.from_dict(samples.filled(aid))), as_version=4)
    for cell in answered.cells:  # as nbgrader does: the test cells come from the source
        if is_test(cell):
            cell.source = tests[cell.metadata.nbgrader.grade_id]
    for gid, cell in _reports(answered, aid).items():
        verdict = judge(gid, moved[gid], observations(cell.outputs), error_name(cell.outputs), False)
        assert verdict.passed, verdict.message
        numbers = lambda found: [r.value for r in found if r.kind == "close"]  # noqa: E731
        moves = numbers(usual[gid]) != numbers(moved[gid])
        assert moves != (gid in PROPERTY_CELLS.get(aid, set())), f"{gid}: a reported number moves: {moves}"
