"""What a check of the kit reports at grading, typed once.

At grading (`MICROGRAD_GRADING=1`) every check of `autograder/in_notebook/kit.py` prints one line,
`REPORT` and a JSON object, instead of asserting. The kit runs inside notebooks and is copied into
them byte for byte (and PyTorch is imported there when not grading), so the grader does not import
it: this module spells out the same format, and tests/test_verdict.py proves that every line the
kit prints parses here.

Two readers, for two sources:
- `parse`: a report of the reference solution, read strictly. A line of ours that does not fit
  is the grader's own fault, and grading stops rather than judge against it.
- `observe`: a line of a submission's kernel, which is hostile and may print anything. The grader
  compares only three of its fields with the reference's report (which check, its kind, the value
  it saw); the message, tolerance, bound and known wrong answers are the reference's to give, so a
  submission's are never read, and a line that leaves them out is judged as one that has them.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeGuard, get_args

# The prefix of a graded observation on stdout: the kit's REPORT.
REPORT = "@@check "

Kind = Literal["close", "equal", "below", "above", "done"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# What JSON can carry, and what the kit's `_plain` makes of an observed quantity.
Json: TypeAlias = "None | bool | int | float | str | Sequence[Json] | Mapping[str, Json]"
Plain: TypeAlias = "None | bool | float | str | Sequence[Plain]"

_COMMON = ("name", "n", "kind", "value", "message")
# The fields a report of each kind carries beside the common ones, as the kit prints them.
EXTRA: dict[Kind, tuple[str, ...]] = {
    "close": ("tol", "wrong"),
    "equal": (),
    "below": ("bound",),
    "above": ("bound",),
    "done": (),
}


class BadReport(ValueError):
    """A line that starts like a report and is not one."""


@dataclass(frozen=True)
class Report:
    """One check's report, as the kit prints it at grading."""

    name: str  # the test's name: `Checks(name)`
    n: int  # the check's place in its cell, from 0; `done` comes last
    kind: Kind
    value: Plain  # a finite number or None (close, below, above), a plain value (equal), None (done)
    message: str  # what the student reads when the check fails; empty in a submission's kernel
    tol: float = 0.0  # close: the relative and absolute tolerance
    wrong: tuple[tuple[float, str], ...] = ()  # close: known wrong answers, each with its cause
    bound: float | None = None  # below, above: None in a submission's kernel, which is not handed it

    @property
    def observation(self) -> "Observation":
        return Observation(self.n, self.kind, self.value)

    def to_json(self) -> dict[str, Json]:
        """The report as the kit printed it, field for field."""
        extra: dict[str, Json] = {"tol": self.tol, "wrong": [list(w) for w in self.wrong], "bound": self.bound}
        common: dict[str, Json] = {
            "name": self.name,
            "n": self.n,
            "kind": self.kind,
            "value": self.value,
            "message": self.message,
        }
        return common | {key: extra[key] for key in EXTRA[self.kind]}


@dataclass(frozen=True)
class Observation:
    """What a submission's kernel says one of its checks observed: the fields the grader compares."""

    n: None | bool | int | float | str  # matched with a report's n by equality
    kind: Json
    value: Json


def parse(record: Json) -> Report:
    """The report `record` (a parsed JSON line) is; BadReport saying why, if it is not exactly one:
    a field missing or extra for its kind, or a field of the wrong type."""
    if not isinstance(record, dict):
        raise BadReport(f"a report is a JSON object, not {record!r}")
    kind = record.get("kind")
    if not _is_kind(kind):
        raise BadReport(f"a report's kind is one of {', '.join(KINDS)}, not {kind!r}")
    fields = (*_COMMON, *EXTRA[kind])
    if set(record) != set(fields):
        raise BadReport(f"a report of kind {kind} has the fields {', '.join(fields)}, not {', '.join(record)}")
    name, n, value, message = record["name"], record["n"], record["value"], record["message"]
    if not isinstance(name, str) or not isinstance(message, str):
        raise BadReport("a report's name and message are text")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise BadReport(f"a report's n is a count, not {n!r}")
    if not _fits(value, kind):
        raise BadReport(f"a report of kind {kind} cannot have observed {value!r}")
    if kind == "close":
        return Report(name, n, kind, value, message, _tolerance(record["tol"]), _wrong_answers(record["wrong"]))
    if kind in ("below", "above"):
        return Report(name, n, kind, value, message, bound=_bound(record["bound"]))
    return Report(name, n, kind, value, message)


def observe(record: Json) -> Observation:
    """The observation a line of a submission's kernel carries; BadReport if it carries none."""
    if not isinstance(record, dict):
        raise BadReport(f"a report is a JSON object, not {record!r}")
    n = record.get("n")
    if isinstance(n, (list, dict)):  # not a key any report can be matched by
        raise BadReport(f"a report's n is a count, not {n!r}")
    return Observation(n, record.get("kind"), record.get("value"))


def _tolerance(tol: Json) -> float:
    if not (_finite(tol) and tol >= 0):
        raise BadReport(f"a tolerance is a number not below zero, not {tol!r}")
    return tol


def _wrong_answers(wrong: Json) -> tuple[tuple[float, str], ...]:
    if not isinstance(wrong, list):
        raise BadReport(f"known wrong answers are a list, not {wrong!r}")
    pairs = []
    for pair in wrong:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise BadReport(f"a known wrong answer is a [number, cause] pair, not {pair!r}")
        value, cause = pair
        if not (_finite(value) and isinstance(cause, str)):
            raise BadReport(f"a known wrong answer is a [number, cause] pair, not {pair!r}")
        pairs.append((value, cause))
    return tuple(pairs)


def _bound(bound: Json) -> float | None:
    if bound is not None and not _finite(bound):
        raise BadReport(f"a bound is a number, not {bound!r}")
    return bound


def _is_kind(kind: Json) -> TypeGuard[Kind]:
    return kind in KINDS


def _fits(value: Json, kind: Kind) -> TypeGuard[Plain]:
    """Can a check of `kind` have observed `value`, as the kit reports it?"""
    if kind == "done":
        return value is None
    if kind == "equal":
        return _plain(value)
    return value is None or _finite(value) and isinstance(value, float)


def _plain(value: Json) -> TypeGuard[Plain]:
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, str)) or _finite(value) and isinstance(value, float)


def _finite(x: Json) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
