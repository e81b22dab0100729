"""One slip is charged once: a method's mistake costs points in its own test cells only.

A test cell runs the methods written above it, so a wrong `__mul__` also fails the tests of
`backward`, `__neg__` and `__rmul__`. When a notebook's failing test cells belong to more than one
method, the earliest of those methods is charged for its own cells, and the notebook runs again
in a fresh sandbox with that method's answer taken from the reference. A later cell that passes
in that run was failing only because of the earlier method, and scores the better of the two runs;
a later method that still fails is charged next, and so on. A cell is only ever scored from a run
in which its own method is the student's code: no reference code enters a kernel whose verdicts
count for the method under test. Whole-run cells (a training run that uses everything, declared
in `metadata.course.whole_run` of the source notebook) are never run again, and only notebooks
with failing tests pay for the second run.
"""

import copy
from collections.abc import Callable

from nbformat import NotebookNode

from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.limits import MAX_RERUNS
from autograder.course.paths import release_path
from autograder.worker.verdict import Verdict


def method(test_gid: str, answers: list[str]) -> str | None:
    """The answer cell a test cell tests: `test_mul_hidden` tests `mul`."""
    name = test_gid.removeprefix("test_").removesuffix("_hidden")
    return name if name in answers else None


def _answers(nb: NotebookNode) -> dict[str, str]:
    """{grade_id: source} of the answer cells of `nb`."""
    return {notebooks.grade_id(c): c.source for c in nb.cells if notebooks.is_answer(c)}


def with_reference(nb: NotebookNode, aid: str, replaced: list[str]) -> NotebookNode:
    """A copy of `nb` whose answer cells in `replaced` hold the reference's answer."""
    answers = assignment(aid).reference_answers
    changed = copy.deepcopy(nb)
    for cell in changed.cells:
        if notebooks.is_answer(cell) and notebooks.grade_id(cell) in replaced:
            cell.source = answers[notebooks.grade_id(cell)]
    return changed


def charged_once(
    nb: NotebookNode,
    aid: str,
    verdicts: dict[str, Verdict],
    rerun: Callable[[NotebookNode], dict[str, Verdict] | None],
) -> dict[str, Verdict]:
    """`verdicts` with every later cell that failed only because of an earlier method's mistake
    turned into a pass; `rerun(notebook)` grades a notebook in a fresh sandbox (None if stopped)."""
    answers = list(assignment(aid).answer_ids)
    keep = assignment(aid).whole_run
    stub = _answers(notebooks.read(release_path(aid)))
    mine = _answers(nb)
    verdicts, replaced = dict(verdicts), []
    for _ in range(MAX_RERUNS):
        failing = [m for gid, v in verdicts.items() if not v.passed and gid not in keep if (m := method(gid, answers))]
        order = [m for m in answers if m in failing and m not in replaced]
        later = [m for m in order[1:] if mine.get(m, "").strip() != stub.get(m, "").strip()]
        if not later:  # one method left failing, or only untouched stubs after it: nothing to rescue
            break
        replaced.append(order[0])
        again = rerun(with_reference(nb, aid, replaced))
        if again is None:
            break
        rescued = False
        for gid, verdict in again.items():
            if gid in keep or method(gid, answers) in replaced or verdicts[gid].passed or not verdict.passed:
                continue
            note = f"with the reference's {', '.join(replaced)} in place of yours, which lost only its own points"
            verdicts[gid] = Verdict(True, f"{verdict.message} ({note})")
            rescued = True
        if not rescued:
            break
    return verdicts
