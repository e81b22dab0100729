"""The grader's judgment of a test cell, made outside the student's process.

At grading time every check of `autograder/in_notebook/kit.py` only reports what it observed. The grader
compares each observation with the reference solution's observation for the same check, run on
the same moved inputs (`graded_source`): the expected numbers, bounds and messages never enter
the student's kernel.
"""

import builtins
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from autograder.worker.report import REPORT, BadReport, Json, Observation, Report, observe, parse

# Builtin exception names the feedback may repeat; any other name comes from the student's code.
_BUILTIN_ERRORS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str  # what the student may read: the grader's words, never the student's output


def reports(outputs: list[dict[str, Any]]) -> list[Report]:
    """The check reports in the outputs of a reference's cell, in order; BadReport if a line that
    starts like one is not one."""
    found = []
    for line in _report_lines(outputs):
        try:
            found.append(parse(json.loads(line)))
        except json.JSONDecodeError as e:
            raise BadReport(f"a report is JSON, not {line!r}") from e
    return found


def observations(outputs: list[dict[str, Any]]) -> list[Observation]:
    """What the checks in a submission's cell observed, in order: its lines that carry an
    observation (`report.observe`); every other line is the kernel's own, and is left out.
    A report is read wherever REPORT starts in a line, not only at its start: output printed
    without a newline just before a check would otherwise hide the kit's report of it, and a
    line printed by hand for the same check would stand in for it unseen."""
    found = []
    for line in _report_lines(outputs, anywhere=True):
        try:
            found.append(observe(json.loads(line)))
        except (json.JSONDecodeError, BadReport):
            continue
    return found


def _report_lines(outputs: list[dict[str, Any]], anywhere: bool = False) -> Iterator[str]:
    """What follows REPORT to the end of each line of a cell's stdout that starts with it (or,
    `anywhere`, at each place in a line where it starts)."""
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    for line in text.splitlines():
        start = 0 if line.startswith(REPORT) else line.find(REPORT) if anywhere else -1
        while start >= 0:
            yield line[start + len(REPORT) :]
            start = line.find(REPORT, start + 1) if anywhere else -1


def error_name(outputs: list[dict[str, Any]]) -> str | None:
    """The name of the first error among a cell's outputs, as text (a kernel may send any JSON):
    "" for an error without one, None if the cell raised none."""
    names = [o.get("ename") for o in outputs if o.get("output_type") == "error"]
    return str(names[0] or "") if names else None


def judge(
    name: str, expected: Sequence[Report], observed: Sequence[Observation], error: str | None, hidden: bool
) -> Verdict:
    """Compare the student's observations in one test cell with the reference's reports. Every word
    of the verdict is the grader's: the check's message from the reference run, and for a visible test
    the name of a built-in exception that stopped it. A hidden test's verdict names nothing the
    student's code chose, so its source cannot be read back from the feedback."""
    by_n: dict[object, Observation] = {}
    for seen in observed:
        if seen.n in by_n:
            return Verdict(False, f"{name}: its checks reported more than once (the test cell was tampered with)")
        by_n[seen.n] = seen
    checks = [r for r in expected if r.kind != "done"]
    if len(checks) == len(expected):
        return Verdict(False, f"{name}: the grader has no reference for this test")
    because = "" if hidden else _because(error)
    for ref in expected:
        got = by_n.get(ref.n)
        if got is None or got.kind != ref.kind:
            if ref.kind == "done":
                return Verdict(False, f"{name}: the test cell did not finish{because}")
            return Verdict(False, f"{name}: {ref.message} (the check did not run{because})")
        if not _holds(ref, got.value):
            return Verdict(False, f"{name}: {_cause(ref, got.value)}")
    if error is not None:  # `done` is the cell's last statement: the student's code printed these and raised
        return Verdict(False, f"{name}: the test cell did not finish{because}")
    if hidden:
        return Verdict(True, f"✓ hidden tests for {name}: {len(checks)} checks passed")
    return Verdict(True, f"✓ {name}: {len(checks)} check{'s' * (len(checks) != 1)} passed")


def _because(error: str | None) -> str:
    if not error:
        return ""
    return f": it stopped with {error}" if error in _BUILTIN_ERRORS else ": it stopped with an error"


def _cause(ref: Report, value: Json) -> str:
    """The check's message, or the cause of the known wrong answer that `value` is (the
    reference's run of the whole cell reports them; the last that matches names it, as while
    the student works)."""
    message = ref.message
    for wrong, cause in ref.wrong:
        if _is_number(value) and math.isclose(value, wrong, rel_tol=ref.tol, abs_tol=ref.tol):
            message = cause
    return message


def _holds(ref: Report, value: Json) -> bool:
    """Does the student's observation `value` agree with the reference's report `ref`?"""
    if ref.kind == "done":
        return True
    if ref.kind == "equal":
        return _same(value, ref.value)
    if not _is_number(value):
        return False
    if ref.kind == "close":
        return _is_number(ref.value) and math.isclose(value, ref.value, rel_tol=ref.tol, abs_tol=ref.tol)
    if ref.bound is None:  # a reference that bounds nothing: no answer holds
        return False
    return value < ref.bound if ref.kind == "below" else value > ref.bound


def _is_number(x: Json) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _same(a: Json, b: Json) -> bool:
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
