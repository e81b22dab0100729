"""The Gradescope mapping: how graded notebooks become results.json.

One Gradescope test per autograded test cell, in notebook order, with the verdict the student's
feedback shows as its output; the hidden tests' visibility, and the whole result's, wait for
publishing; a flagged submission's reasons go into a test only instructors see. To change what
Gradescope shows, change this module.
"""

from typing import Any

from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.grading.submission import Submission
from autograder.worker.result import Status

AFTER_PUBLISHED = "after_published"
WAIT_FOR_PUBLISHING = "The hidden tests' results, and so the score, show once your instructor publishes the grades."

# Scored as `grade` scores them: a submission flagged for review keeps its score, and only the
# instructor reads why (a student told which line tripped the review learns how to hide it).
SCORED = (Status.GRADED, Status.REVIEW)


def report(subs: list[Submission], expected: list[str], problems: list[str]) -> dict[str, Any]:
    """results.json for the graded `subs`: the score, the output the student reads, one test per
    autograded test cell."""
    score, lines, tests = 0.0, [], []
    for aid in expected:
        candidates = [s for s in subs if s.assignment == aid]
        chosen = next((s for s in candidates if s.state is not Status.SUPERSEDED), None)
        if chosen is None:
            lines.append(f"{aid}: not submitted")
            continue
        score += chosen.score if chosen.state in SCORED else 0.0
        lines += _summary(aid, chosen, [s for s in candidates if s is not chosen])
        tests += _tests(aid, chosen, prefix=len(expected) > 1)
        if chosen.review:
            tests.append(_for_the_instructor(aid, chosen))
    lines += problems
    for number, test in enumerate(tests, 1):
        test["number"] = str(number)
    if any(t.get("visibility") == AFTER_PUBLISHED for t in tests):
        lines.append(WAIT_FOR_PUBLISHING)
    results: dict[str, Any] = {"score": score, "output": "\n".join(lines), "tests": tests}
    if WAIT_FOR_PUBLISHING in lines:
        # Gradescope shows the total as soon as it has one, and the total less the visible tests'
        # points is the hidden tests' verdict: everything waits for publishing. The visible tests
        # stay with the student, who runs them in the notebook and in the repository's workflow.
        results["visibility"] = AFTER_PUBLISHED
    return results


def zero(output: str) -> dict[str, Any]:
    """results.json of a submission that could not be graded: 0, and why."""
    return {"score": 0.0, "output": output, "tests": []}


def names(expected: list[str]) -> str:
    """The notebooks a submission to this Gradescope assignment should hold, for a message."""
    return " or ".join(f"{a}.ipynb" for a in expected)


def _for_the_instructor(aid: str, sub: Submission) -> dict[str, Any]:
    """A test worth nothing that Gradescope shows the instructor only: why to read the answers."""
    return {
        "name": f"{aid}: to review (instructors only)",
        "score": 0.0,
        "max_score": 0.0,
        "status": "failed",
        "visibility": "hidden",
        "output": "The score stands; read the cells named:\n" + "\n".join(sub.review),
    }


def _summary(aid: str, chosen: Submission, superseded: list[Submission]) -> list[str]:
    a = assignment(aid)
    line = f"{aid}: {chosen.score:g} / {a.autograded_points:g} points"
    if chosen.state not in SCORED:
        line += f" ({chosen.status})"
    notes = [n for n in chosen.notes if not n.startswith("review:")]
    lines = [line, *(f"  note: {n}" for n in notes), *(f"  {s.path.name}: {s.status}" for s in superseded)]
    if a.hand_graded:
        hand = sum(a.points[g] for g in a.hand_graded)
        lines.append(f"  {hand:g} more points of written answers are graded by hand")
    return lines


def _tests(aid: str, sub: Submission, prefix: bool) -> list[dict[str, Any]]:
    """One Gradescope test per autograded test cell of `aid`, in notebook order, with the
    verdict the student's feedback shows as its output."""
    a = assignment(aid)
    ids = [g for g in a.cell_order() if g in a.points and g not in a.hand_graded]
    hidden = {notebooks.grade_id(c) for c in a.notebook.cells if notebooks.is_hidden_test(c)}
    ids += sorted(g for g in sub.tests if g not in ids and g not in a.hand_graded)
    messages = {gid: t.message for gid, t in sub.result.tests.items()} if sub.result else {}
    graded = sub.state in SCORED
    tests = []
    for gid in ids:
        got, most = sub.tests.get(gid, (0.0, a.points.get(gid, 0.0)))
        got = got or 0.0
        passed = graded and got >= most
        tests.append(
            {
                **({"visibility": AFTER_PUBLISHED} if gid in hidden and graded else {}),
                "name": f"{aid}: {gid}" if prefix else gid,
                "score": got,
                "max_score": most,
                "status": "passed" if passed else "failed",
                "output": (messages.get(gid) or ("Passed." if passed else "Failed."))
                if graded
                else f"Not graded: {sub.status}",
            }
        )
    return tests
