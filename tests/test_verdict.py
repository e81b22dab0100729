"""The checks kit and the grader's judgment, without kernels."""

import ast
import importlib
import json

import pytest

from autograder.in_notebook import kit
from autograder.worker import report
from autograder.worker.graded_source import CHECK_KINDS, perturbed
from autograder.worker.report import KINDS, BadReport, Observation, Report
from autograder.worker.verdict import error_name, judge, observations, reports

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
    """The reports of a cell that runs `body` on its checks, read as the reference's are."""
    check = kit_module.Checks("add")
    body(check)
    check.done()
    text = capsys.readouterr().out
    return reports([{"output_type": "stream", "name": "stdout", "text": text}])


def _seen(found):
    """Reports read as a submission's observations are."""
    return [r.observation for r in found]


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
    assert graded.REPORT == report.REPORT, "the grader reads what the notebook's checks print"
    found = _observe(
        graded, capsys, lambda c: (c.close(3.0, 999.0, "m"), c.equal(["a", 2], ["b"], "t"), c.close("x", 1, "n"))
    )
    assert [(r.kind, r.value) for r in found] == [
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
    return [Observation(n, k, v) for n, (k, v) in enumerate(values)]


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
    assert student[0].wrong == (), "the student's kernel is handed no wrong answer"
    assert judge("step", ref, _seen(student), None, True).message == "step: moved up"
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


def test_a_cell_that_stopped_with_an_error_never_passes(reference):
    """`check.done()` is a test cell's last statement: a cell that raised never reached it, so a
    full set of reports beside an error was printed by the student's code before it stopped the
    cell, not by the checks."""
    forged = _student([("close", 2.0), ("equal", "Value"), ("below", 0.07), ("done", None)])
    for error in ("ValueError", "", "HiddenSourceLeak"):
        verdict = judge("__add__", reference, forged, error, False)
        assert not verdict.passed and "did not finish" in verdict.message, error
    stopped = [{"output_type": "error", "ename": "", "evalue": "", "traceback": []}]
    assert error_name(stopped) is not None, "an error without a name is still an error"


def test_a_cell_without_reference_never_passes():
    assert not judge("x", [], _student([("done", None)]), None, False).passed


def test_a_submissions_observations_ignore_other_output_and_broken_lines():
    text = "hello\n@@check {broken\n@@check [0]\n@@check " + json.dumps({"n": [0], "kind": "done"}) + "\n"
    text += "@@check " + json.dumps({"n": 0, "kind": "done", "value": None}) + "\n"
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": text},
        {"output_type": "stream", "name": "stderr", "text": "@@check " + json.dumps({"n": 1})},
    ]
    assert observations(outputs) == [Observation(0, "done", None)]


def test_a_submissions_line_is_judged_on_what_it_observed_alone(reference):
    """The message, tolerance, bound and wrong answers are the reference's: a line of a submission's
    kernel that leaves them out, or gives others, is judged as the kit's own line would be."""
    lines = [
        {"n": 0, "kind": "close", "value": 2.0},
        {"n": 1, "kind": "equal", "value": "Value", "message": "anything", "tol": 1e9},
        {"n": 2, "kind": "below", "value": 0.07, "bound": 1e300},
        {"n": 3, "kind": "done"},
    ]
    text = "".join(report.REPORT + json.dumps(line) + "\n" for line in lines)
    seen = observations([{"output_type": "stream", "name": "stdout", "text": text}])
    assert judge("__add__", reference, seen, None, False).passed
    seen[2] = Observation(2, "below", 0.5)  # past the reference's bound, whatever bound it says
    assert not judge("__add__", reference, seen, None, False).passed


def _every_check(check):
    """Each check of the kit, once with all its arguments (the reference's kernel) and once as a
    submission's kernel calls it, with its first argument only; and a failing call."""
    check.close(2.5, 2.5, "close", tol=1e-3, wrong=((1.5, "a known slip"), ("x", "not a number")))
    check.close(float("nan"))
    check.equal([1, [2.0, "a"], None, True], [1, [2.0, "a"], None, True], "equal")
    check.equal("Value")
    check.equal(3)
    check.equal(object())
    check.below(0.01, 0.1, "below")
    check.below(0.01)
    check.above(5, 1, "above")
    check.above("x")
    check.equal(check.calls(lambda: 1 / 0, "divides by zero"), 1.0, "the call's result")


def test_every_line_the_kit_prints_at_grading_is_a_report_of_the_schema(monkeypatch, capsys):
    """The kit is copied into notebooks byte for byte, so it cannot import the schema: this proves
    that the two agree. The kit runs in grading mode here, each check of every kind reports, and
    each line it prints parses strictly and prints back as it was."""
    graded = _grading_kit(monkeypatch)
    methods = {name for name in vars(graded.Checks) if not name.startswith("_")}
    assert methods - {"builds_on", "calls", "done"} == CHECK_KINDS, "a check of the kit that the grader does not know"
    check = graded.Checks("every kind")
    _every_check(check)
    check.done()
    importlib.reload(kit)
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(report.REPORT) for line in lines)
    found = [report.parse(json.loads(line.removeprefix(report.REPORT))) for line in lines]
    assert {r.kind for r in found} == set(KINDS)
    assert [r.n for r in found] == list(range(len(found)))
    assert [r.to_json() for r in found] == [json.loads(line.removeprefix(report.REPORT)) for line in lines]
    assert found[0].wrong == ((1.5, "a known slip"),) and found[0].tol == 1e-3
    assert (found[1].value, found[6].bound, found[7].bound) == (None, 0.1, None)


GOOD = {"name": "add", "n": 0, "kind": "close", "value": 1.0, "message": "m", "tol": 1e-6, "wrong": [[2.0, "c"]]}


@pytest.mark.parametrize(
    "change",
    [
        {"message": None},  # missing
        {"tol": None},
        {"wrong": None},
        {"bound": 1.0},  # extra for its kind
        {"secret": "x"},
        {"kind": "equal"},  # then tol and wrong are extra
        {"kind": "true"},
        {"n": "0"},  # wrong types
        {"n": True},
        {"n": -1},
        {"name": 3},
        {"message": ["m"]},
        {"value": "1.0"},
        {"value": float("nan")},
        {"value": True},
        {"tol": "1e-6"},
        {"tol": -1.0},
        {"wrong": [[2.0]]},
        {"wrong": [["2.0", "c"]]},
        {"wrong": [[2.0, 3]]},
    ],
)
def test_a_report_with_a_field_missing_extra_or_of_the_wrong_type_is_refused(change):
    record = {k: v for k, v in (GOOD | change).items() if v is not None or k == "value"}
    with pytest.raises(BadReport):
        report.parse(record)


@pytest.mark.parametrize(
    "record",
    [
        [GOOD],
        {"name": "add", "n": 1, "kind": "below", "value": 0.5, "message": "m", "bound": "1"},
        {"name": "add", "n": 1, "kind": "equal", "value": {"a": 1.0}, "message": "m"},
        {"name": "add", "n": 1, "kind": "equal", "value": 2, "message": "m"},
        {"name": "add", "n": 1, "kind": "done", "value": 0.0, "message": ""},
    ],
)
def test_a_report_that_no_check_prints_is_refused(record):
    with pytest.raises(BadReport):
        report.parse(record)


def test_the_report_of_a_good_line_keeps_its_fields():
    assert report.parse(GOOD) == Report("add", 0, "close", 1.0, "m", 1e-6, ((2.0, "c"),))


def test_a_broken_line_in_the_references_output_stops_the_grader_instead_of_passing_unseen():
    outputs = [{"output_type": "stream", "name": "stdout", "text": "@@check {broken\n"}]
    with pytest.raises(BadReport):
        reports(outputs)


def test_a_report_glued_to_earlier_output_is_still_read(reference):
    """Output printed without a newline just before a check (a progress bar, or a student's code
    that wants the kit's report of a check gone) runs into the kit's line: the report in it still
    counts, so a line printed by hand for the same check is a second report, not a substitute."""
    kit_lines = [
        {"name": "__add__", "n": 0, "kind": "close", "value": 2.0, "message": ""},
        {"name": "__add__", "n": 1, "kind": "equal", "value": "@@check ", "message": ""},
        {"name": "__add__", "n": 2, "kind": "below", "value": 0.07, "message": ""},
        {"name": "__add__", "n": 3, "kind": "done", "value": None, "message": ""},
    ]
    glued = "".join(
        prefix + report.REPORT + json.dumps(line) + "\n"
        for prefix, line in zip(["...", "", "@@check ", ""], kit_lines, strict=True)
    )
    seen = observations([{"output_type": "stream", "name": "stdout", "text": glued}])
    assert [(o.n, o.value) for o in seen] == [(0, 2.0), (1, "@@check "), (2, 0.07), (3, None)]
    forged = '@@check {"n": 2, "kind": "below", "value": 0.0}\n'
    seen = observations([{"output_type": "stream", "name": "stdout", "text": forged + glued}])
    assert not judge("__add__", reference, seen, None, False).passed
