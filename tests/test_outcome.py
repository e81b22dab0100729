"""What GradedExecute decides reaches the worker as it is: through nbgrader's configuration in,
through the Outcome the worker handed it out, and never read back from the notebook."""

import copy

import nbformat
import pytest
from traitlets.config import Config

from autograder.course.limits import VERDICT_CHARS
from autograder.worker import serve
from autograder.worker.execute import GradedExecute, Outcome, Spare, verdict_output
from autograder.worker.feedback import KeepVerdictsOnly
from autograder.worker.verdict import Verdict


def test_graded_execute_is_configured_as_nbgrader_configures_its_preprocessors():
    """nbgrader makes a GradedExecute for every notebook from a deep copy of the configuration: the
    worker's settings reach it, and the worker's Spare and Outcome reach it as themselves."""
    spare, outcome = Spare(), Outcome()
    c = Config()
    c.GradedExecute.slot, c.GradedExecute.sandboxed = 3, False
    c.GradedExecute.spare, c.GradedExecute.outcome = spare, outcome
    made = GradedExecute(config=copy.deepcopy(c))
    assert (made.slot, made.sandboxed) == (3, False)
    assert made.spare is spare and made.outcome is outcome
    assert (GradedExecute().slot, GradedExecute().sandboxed, GradedExecute().spare) == (0, True, None)


def _read_back(verdict):
    """The message the worker used to read from the autograded notebook: the test cell's output as
    the feedback page keeps it, an error by its last line."""
    meta = {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "test_x", "points": 1}}
    cell = nbformat.v4.new_code_cell("check.done()", metadata=meta)
    cell.outputs = [verdict_output(verdict)]
    cell = nbformat.reads(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])), as_version=4).cells[0]
    cell, _ = KeepVerdictsOnly().preprocess_cell(cell, {}, 0)
    texts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            texts.append(str(out.text).strip())
        else:
            text = "\n".join(out.traceback).strip()
            texts.append(next((line for line in reversed(text.splitlines()) if line.strip()), text))
    message = "\n".join(filter(None, texts))
    return message if len(message) <= VERDICT_CHARS else message[:VERDICT_CHARS] + " ..."


@pytest.mark.parametrize(
    "verdict",
    [
        Verdict(True, "✓ __add__: 3 checks passed"),
        Verdict(True, "✓ hidden tests for step: 1 checks passed (with the reference's mul in place of yours)"),
        Verdict(False, "__add__: a.grad: accumulate with += (the check did not run: it stopped with KeyError)"),
        Verdict(False, "two lines:\nthe second"),
        Verdict(False, "\x1b[31mcoloured\x1b[0m and a bell\x07"),
        Verdict(False, "x" * (VERDICT_CHARS + 10)),
        Verdict(True, "y" * (VERDICT_CHARS + 10)),
    ],
)
def test_a_tests_message_is_the_one_its_notebook_and_feedback_page_show(verdict):
    assert serve._message(verdict) == _read_back(verdict)
