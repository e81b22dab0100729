"""The checks kit and the grader's judgment, without kernels."""

import ast
import importlib
import json

import pytest

from autograder.in_notebook import kit
from autograder.worker import verdict
from autograder.worker.graded_source import perturbed
from autograder.worker.verdict import judge, reports

CELL = (
    "a, b = Value(2.0), Value(-3)\n"
    'check.close(c.data, -6.0, "got 1.5 wrong", tol=1e-6)\n'
    "z = 0.0 + 1e3 * x ** 2\n"
    "c.grad = 1.0\n"
)


def _floats(source):
    return [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, float)]


def test_perturbation_moves_every_float_but_zero_and_one_and_nothing_else():
    moved = perturbed(CELL, "salt")
    for was, got in zip(_floats(CELL), _floats(moved), strict=True):
        if was in (0.0, 1.0):
            assert got == was
        else:
            assert 0.01 <= abs(got / was - 1) <= 0.05, (was, got)
    assert "Value(-3)" in moved and '"got 1.5 wrong"' in moved and "** 2" in moved


def test_perturbation_is_fixed_by_the_salt():
    assert perturbed(CELL, "one") == perturbed(CELL, "one") != perturbed(CELL, "two")


def _grading_kit(monkeypatch):
    monkeypatch.setenv("MICROGRAD_GRADING", "1")
    try:
        return importlib.reload(kit)
    finally:
        monkeypatch.delenv("MICROGRAD_GRADING")


def _observe(kit_module, capsys, body):
    check = kit_module.Checks("add")
    body(check)
    check.done()
    text = capsys.readouterr().out
    return reports([{"output_type": "stream", "name": "stdout", "text": text}])


def test_while_working_a_check_asserts_and_a_passing_cell_says_so(capsys):
    check = importlib.reload(kit).Checks("__add__")
    check.close(1.0, 1.0, "fine")
    check.equal(len([1, 2]), 2, "fine")
    check.done()
    assert capsys.readouterr().out == "✓ __add__: 2 checks passed\n"
    with pytest.raises(AssertionError, match="used = instead of"):
        check.close(3.0, 6.0, "a + a", wrong=((3.0, "used = instead of +="),))
    with pytest.raises(AssertionError, match="is below"):
        check.below(2.0, 1.0, "is below")


def test_when_graded_a_check_reports_and_never_raises(monkeypatch, capsys):
    graded = _grading_kit(monkeypatch)
    assert graded.GRADING and graded.torch is None
    assert graded.REPORT == verdict.REPORT, "the grader reads what the notebook's checks print"
    found = _observe(
        graded, capsys, lambda c: (c.close(3.0, 999.0, "m"), c.equal(["a", 2], ["b"], "t"), c.close("x", 1, "n"))
    )
    assert [(r["kind"], r["value"]) for r in found] == [
        ("close", 3.0),
        ("equal", ["a", 2.0]),
        ("close", None),
        ("done", None),
    ]
    importlib.reload(kit)


@pytest.fixture
def reference(monkeypatch, capsys):
    graded = _grading_kit(monkeypatch)
    found = _observe(
        graded,
        capsys,
        lambda c: (
            c.close(2.0, 0, "a.grad: accumulate with +="),
            c.equal("Value", "Value", "a Value"),
            c.below(0.05, 0.1, "loss under 0.1"),
        ),
    )
    importlib.reload(kit)
    return found


def _student(values):
    found = [{"n": n, "kind": k, "value": v} for n, (k, v) in enumerate(values)]
    return found


def test_the_same_numbers_pass(reference):
    verdict = judge(
        "__add__",
        reference,
        _student([("close", 2.0), ("equal", "Value"), ("below", 0.07), ("done", None)]),
        None,
        False,
    )
    assert verdict.passed and verdict.message == "✓ __add__: 3 checks passed"


@pytest.mark.parametrize(
    "values,expected",
    [
        ([("close", 1.0), ("equal", "Value"), ("below", 0.07), ("done", None)], "accumulate with +="),
        ([("close", 2.0), ("equal", "Valu"), ("below", 0.07), ("done", None)], "a Value"),
        ([("close", 2.0), ("equal", None), ("below", 0.07), ("done", None)], "a Value"),
        ([("close", 2.0), ("equal", "Value"), ("below", 0.2), ("done", None)], "loss under 0.1"),
        ([("close", float("nan")), ("equal", "Value"), ("below", 0.07), ("done", None)], "accumulate"),
        ([("close", 2.0), ("equal", "Value"), ("below", 0.07)], "did not finish"),
        ([("close", 2.0)], "a Value (the check did not run"),
        ([], "accumulate with += (the check did not run"),
    ],
)
def test_a_wrong_missing_or_unfinished_report_fails_with_the_checks_own_message(reference, values, expected):
    verdict = judge("__add__", reference, _student(values), None, False)
    assert not verdict.passed and expected in verdict.message


def test_a_known_wrong_answer_is_named_by_its_cause_from_the_references_run(monkeypatch, capsys):
    graded = _grading_kit(monkeypatch)
    ref = _observe(graded, capsys, lambda c: c.close(0.35, 0.35, "w after one step", wrong=((0.65, "moved up"),)))
    student = _observe(graded, capsys, lambda c: c.close(0.65))
    importlib.reload(kit)
    assert "wrong" not in student[0] or student[0]["wrong"] == [], "the student's kernel is handed no wrong answer"
    assert judge("step", ref, student, None, True).message == "step: moved up"
    assert (
        judge("step", ref, _student([("close", 0.5), ("done", None)]), None, True).message == "step: w after one step"
    )


def test_reports_given_twice_fail_the_cell(reference):
    doubled = _student([("close", 2.0), ("equal", "Value"), ("below", 0.07), ("done", None)]) * 2
    assert not judge("__add__", reference, doubled, None, False).passed


def test_the_feedback_names_only_builtin_errors(reference):
    assert "NotImplementedError" in judge("x", reference, [], "NotImplementedError", False).message
    secret = judge("x", reference, [], "HiddenSourceLeak", False).message
    assert "HiddenSourceLeak" not in secret and "an error" in secret


def test_a_cell_without_reference_never_passes():
    assert not judge("x", [], _student([("done", None)]), None, False).passed


def test_reports_ignore_other_output_and_broken_lines():
    text = "hello\n@@check {broken\n@@check " + json.dumps({"n": 0, "kind": "done", "value": None}) + "\n"
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": text},
        {"output_type": "stream", "name": "stderr", "text": "@@check " + json.dumps({"n": 1})},
    ]
    assert reports(outputs) == [{"n": 0, "kind": "done", "value": None}]
