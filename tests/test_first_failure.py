"""While a student works (no grading, PyTorch present, cells run from the top), the first visible
test that fails is the one of the method that holds the slip, and its message names the fix: a
test that builds on a failing method says so instead of failing with its own message, and an error
such as a RecursionError reaches the student as a course message, not as a long traceback."""

import json
import os
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

import autograder
from autograder.authoring import samples
from autograder.authoring.bugs import BUGS, CLASSIC
from autograder.course import notebooks
from autograder.course.reference import reference_engine

# The classic first tries of an engine; each must stop the notebook in its own method's test.
FIRST_TRIES = [
    "add-number-not-wrapped",
    "mul-missing-out-grad",
    "backward-not-reversed",
    "backward-grad-not-seeded",
    "neg-new-leaf",
    "radd-recursion",
    "rsub-recursion",
    "rtruediv-recursion",
    "tanh-grad-uses-input",
]


def first_failure(bug, folder):
    """(grade_id, error text) of the first cell that fails in the filled notebook with `bug`."""
    aid = BUGS[bug].assignment
    engine = reference_engine(aid)
    if engine:
        with zipfile.ZipFile(engine) as z:
            z.extractall(folder)
    nb = nbformat.reads(json.dumps(samples.filled(aid, bug)), as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ("MICROGRAD_GRADING", "MICROGRAD_SEED")}
    with pytest.raises(CellExecutionError):  # cells run until the first failure, as a student's do
        notebooks.run(nb, folder, timeout=60, env=env)
    (cell,) = [c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    return notebooks.grade_id(cell), f"{error.ename}: {error.evalue}", len(error.traceback)


@pytest.mark.kernel
@pytest.mark.parametrize("bug", FIRST_TRIES)
def test_a_first_try_fails_first_in_its_own_test_with_a_message_that_names_the_fix(bug, tmp_path):
    grade_id, error, frames = first_failure(bug, tmp_path)
    assert grade_id == f"test_{BUGS[bug].cell}", f"{bug} first fails in {grade_id}: {error}"
    assert CLASSIC[bug] in error, f"{bug}: {error}"
    assert error.startswith("AssertionError"), f"{bug} reaches the student as a raw error: {error}"
    assert frames < 10, f"{bug}: a traceback of {frames} lines"


def test_each_first_try_is_catalogued_with_the_words_its_message_must_say():
    assert set(FIRST_TRIES) <= set(CLASSIC)


def kit(monkeypatch, grading):
    """A fresh copy of the checks kit, as the setup cell defines it."""
    if grading:
        monkeypatch.setenv("MICROGRAD_GRADING", "1")
    else:
        monkeypatch.delenv("MICROGRAD_GRADING", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # these checks need no PyTorch: skip its slow import
    names: dict = {}
    exec(compile((Path(autograder.__file__).parent / "in_notebook" / "kit.py").read_text(), "kit.py", "exec"), names)
    return names


def test_a_test_that_builds_on_a_failing_method_names_that_method_until_its_test_passes(monkeypatch):
    k = kit(monkeypatch, grading=False)
    with pytest.raises(AssertionError):
        k["Checks"]("__mul__").close(4.0, -6.0, "a.grad")
    with pytest.raises(AssertionError, match="uses your __mul__, which fails its own test: fix __mul__ first"):
        k["Checks"]("backward").builds_on("__add__", "__mul__")
    # a test stopped that way blames the same root, not itself
    with pytest.raises(AssertionError, match="fix __mul__ first"):
        k["Checks"]("__neg__").builds_on("backward")
    k["Checks"]("__mul__").done()
    k["Checks"]("backward").builds_on("__add__", "__mul__")


def test_at_grading_builds_on_reports_nothing_and_a_failed_call_gives_none(monkeypatch, capsys):
    k = kit(monkeypatch, grading=True)
    check = k["Checks"]("__radd__")
    k["_FAILED"]["__add__"] = "__add__"
    check.builds_on("__add__")

    def recurse():
        return recurse()

    assert check.calls(recurse, "other + self calls __radd__ again") is None
    assert capsys.readouterr().out == ""
