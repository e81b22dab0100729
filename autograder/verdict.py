"""The grader's judgment of a test cell, made outside the student's process.

At grading time every check of `autograder/kit.py` only reports the number it observed. The
grader compares those numbers with the reference solution's numbers for the same cell, run on
the same inputs. The inputs are the test cell's own float literals, each moved by a small
factor that depends on a secret of the grader: a student who reads or rewrites a test cell
before it runs still has to compute the right numbers to pass it.
"""

import builtins
import functools
import hashlib
import io
import json
import math
import tokenize
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


@functools.lru_cache(maxsize=256)  # a worker grades the same restored test cells, notebook after notebook
def perturbed(source: str, salt: str) -> str:
    """`source` with each float literal multiplied by 1 ± (1% to 5%), the factor drawn from
    `salt` and the literal's position. Signs, zeros, ±1.0, integers and strings are left alone:
    `out.grad = 1.0` seeds a gradient, and a visible test must mean at grading what it meant
    while the student worked."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits, k = [], 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.NUMBER or tok.string.endswith(("j", "J")) or _is_int(tok.string):
            continue
        value = float(tok.string)
        if abs(value) not in (0.0, 1.0):
            digest = hashlib.sha256(f"{salt}:{k}".encode()).digest()
            u = int.from_bytes(digest[:8], "big") / 2**64
            factor = 1 + (0.01 + 0.04 * u) * (1 if digest[8] & 1 else -1)
            (row, col), (end_row, end_col) = tok.start, tok.end
            edits.append((starts[row - 1] + col, starts[end_row - 1] + end_col, repr(value * factor)))
        k += 1
    for begin, end, text in reversed(edits):
        source = source[:begin] + text + source[end:]
    return source


def _is_int(text):
    try:
        int(text, 0)
        return True
    except ValueError:
        return False


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
    """Compare the student's reports of one test cell with the reference's."""
    by_n = {}
    for record in observed:
        if record.get("n") in by_n:
            return Verdict(False, f"{name}: its checks reported more than once (the test cell was tampered with)")
        by_n[record.get("n")] = record
    checks = [r for r in expected if r["kind"] != "done"]
    if len(checks) == len(expected):
        return Verdict(False, f"{name}: the grader has no reference for this test")
    for ref in expected:
        got = by_n.get(ref["n"])
        if got is None or got.get("kind") != ref["kind"]:
            if ref["kind"] == "done":
                return Verdict(False, f"{name}: the test cell did not finish{_because(error)}")
            return Verdict(False, f"{name}: {ref['message']} (the check did not run{_because(error)})")
        if not _holds(ref, got.get("value")):
            return Verdict(False, f"{name}: {ref['message']}")
    if hidden:
        return Verdict(True, f"✓ hidden tests for {name}: {len(checks)} checks passed")
    return Verdict(True, f"✓ {name}: {len(checks)} check{'s' * (len(checks) != 1)} passed")


def _because(error):
    if not error:
        return ""
    return f": it stopped with {error}" if error in _BUILTIN_ERRORS else ": it stopped with an error"


def _holds(ref, value):
    kind = ref["kind"]
    if kind == "done":
        return True
    if kind == "true":
        return value is True
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if kind == "close":
        return isinstance(ref["value"], (int, float)) and math.isclose(
            value, ref["value"], rel_tol=ref["tol"], abs_tol=ref["tol"]
        )
    if kind == "below":
        return value < ref["bound"]
    if kind == "above":
        return value > ref["bound"]
    return False
