"""The grader's judgment of a test cell, made outside the student's process.

At grading time every check of `autograder/in_notebook/kit.py` only reports what it observed. The grader
compares each observation with the reference solution's observation for the same check, run on
the same moved inputs (`graded_source`): the expected numbers, bounds and messages never enter
the student's kernel.
"""

import builtins
import json
import math
from dataclasses import dataclass

# The prefix of a graded observation on stdout: kit.py's REPORT (kit.py runs inside notebooks and
# imports PyTorch when not grading, so the grader does not import it).
REPORT = "@@check "

# Builtin exception names the feedback may repeat; any other name comes from the student's code.
_BUILTIN_ERRORS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str  # what the student may read: the grader's words, never the student's output


def reports(outputs: list[dict]) -> list[dict]:
    """The check reports in a cell's outputs, in order."""
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    found = []
    for line in text.splitlines():
        if line.startswith(REPORT):
            try:
                record = json.loads(line[len(REPORT) :])
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                found.append(record)
    return found


def error_name(outputs: list[dict]) -> str | None:
    names = [o.get("ename") for o in outputs if o.get("output_type") == "error"]
    return names[0] if names else None


def judge(name: str, expected: list[dict], observed: list[dict], error: str | None, hidden: bool) -> Verdict:
    """Compare the student's reports of one test cell with the reference's. Every word of the
    verdict is the grader's: the check's message from the reference run, and for a visible test
    the name of a built-in exception that stopped it. A hidden test's verdict names nothing the
    student's code chose, so its source cannot be read back from the feedback."""
    by_n = {}
    for record in observed:
        if record.get("n") in by_n:
            return Verdict(False, f"{name}: its checks reported more than once (the test cell was tampered with)")
        by_n[record.get("n")] = record
    checks = [r for r in expected if r["kind"] != "done"]
    if len(checks) == len(expected):
        return Verdict(False, f"{name}: the grader has no reference for this test")
    because = "" if hidden else _because(error)
    for ref in expected:
        got = by_n.get(ref["n"])
        if got is None or got.get("kind") != ref["kind"]:
            if ref["kind"] == "done":
                return Verdict(False, f"{name}: the test cell did not finish{because}")
            return Verdict(False, f"{name}: {ref['message']} (the check did not run{because})")
        if not _holds(ref, got.get("value")):
            return Verdict(False, f"{name}: {_cause(ref, got.get('value'))}")
    if hidden:
        return Verdict(True, f"✓ hidden tests for {name}: {len(checks)} checks passed")
    return Verdict(True, f"✓ {name}: {len(checks)} check{'s' * (len(checks) != 1)} passed")


def _because(error):
    if not error:
        return ""
    return f": it stopped with {error}" if error in _BUILTIN_ERRORS else ": it stopped with an error"


def _cause(ref, value):
    """The check's message, or the cause of the known wrong answer that `value` is (the
    reference's run of the whole cell reports them; the last that matches names it, as while
    the student works)."""
    message = ref["message"]
    for wrong, cause in ref.get("wrong") or []:
        if _is_number(value) and math.isclose(value, wrong, rel_tol=ref["tol"], abs_tol=ref["tol"]):
            message = cause
    return message


def _holds(ref, value):
    """Does the student's observation `value` agree with the reference's report `ref`?"""
    kind = ref["kind"]
    if kind == "done":
        return True
    if kind == "equal":
        return _same(value, ref["value"])
    if not _is_number(value):
        return False
    if kind == "close":
        return _is_number(ref["value"]) and math.isclose(value, ref["value"], rel_tol=ref["tol"], abs_tol=ref["tol"])
    if kind == "below":
        return value < ref["bound"]
    if kind == "above":
        return value > ref["bound"]
    return False


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _same(a, b):
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
