"""What a grading worker hands the parent, and what the parent keeps in results/: one `Result` per
submission, read from and written to JSON here only (`to_json`, `from_json`)."""

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class Status(Enum):
    """What became of a submission. grades.csv prints it as "graded", "not graded" or
    "review: REASON" / "error: REASON" (`Submission.status`)."""

    NOT_GRADED = "not graded"
    GRADED = "graded"
    REVIEW = "review"  # graded, the score stands, and the instructor reads the code
    ERROR = "error"
    SUPERSEDED = "superseded"  # a newer file of the same assignment counts; printed as an error


@dataclass
class CellResult:
    score: float
    max_score: float
    message: str = ""  # the grader's verdict as the student's feedback shows it


@dataclass
class Task:
    """One submission for a worker to grade: its repaired notebook and reference engine, staged."""

    student: str
    assignment: str
    notebook: str
    engine: str | None
    sandbox: bool
    slot: int = 0
    feedback: bool = False  # render the feedback page too

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "Task":
        return cls(**row)


def feedback_page(out: Path, student: str, assignment: str) -> Path:
    """Where a graded notebook's feedback page goes in the output folder."""
    return out / "feedback" / student / f"{assignment}.html"


@dataclass
class Result:
    student: str
    assignment: str
    status: Status  # GRADED or ERROR
    reason: str = ""  # why it is an error
    score: float = 0.0
    max_score: float = 0.0
    pending: float = 0.0  # the points of hand-graded cells that have no score yet
    tests: dict[str, CellResult] = field(default_factory=dict)  # by grade_id
    manual: list[str] = field(default_factory=list)  # grade_ids a person grades
    awaiting: list[str] = field(default_factory=list)  # those still without a score
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None
    # Set by the parent: the digest of what was graded, whether it was sandboxed, and by which slot.
    input: str | None = None
    sandbox: bool | None = None
    slot: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "assignment": self.assignment,
            "status": self.status.value,
            "reason": self.reason,
            "score": self.score,
            "max_score": self.max_score,
            "pending": self.pending,
            "tests": {gid: [t.score, t.max_score] for gid, t in self.tests.items()},
            "messages": {gid: t.message for gid, t in self.tests.items() if t.message},
            "manual": self.manual,
            "awaiting": self.awaiting,
            "notes": self.notes,
            "seconds": self.seconds,
            "input": self.input,
            "sandbox": self.sandbox,
            "slot": self.slot,
        }

    @classmethod
    def from_json(cls, row: object) -> "Result":
        """The Result a row describes; ValueError saying what is wrong with a row that cannot be one."""
        if not isinstance(row, dict):
            raise ValueError("a row must be a JSON object")
        problem = _problem(row)
        if problem:
            raise ValueError(problem)
        messages = row.get("messages", {})
        manual = row.get("manual", [])
        return cls(
            student=row["student"],
            assignment=row["assignment"],
            status=Status(row["status"]),
            reason=row.get("reason", ""),
            score=row["score"],
            max_score=row["max_score"],
            pending=row.get("pending", 0.0),
            tests={gid: CellResult(v[0], v[1], messages.get(gid, "")) for gid, v in row["tests"].items()},
            manual=manual,
            awaiting=row["awaiting"] if "awaiting" in row else manual,
            notes=[str(n) for n in row.get("notes", [])],
            seconds=row.get("seconds"),
            input=row.get("input"),
            sandbox=row.get("sandbox"),
            slot=row.get("slot"),
        )


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _problem(row: dict[str, Any]) -> str | None:
    """Why `row` is not a Result, or None."""
    if not all(isinstance(row.get(k), str) for k in ("student", "assignment")):
        return "student and assignment must be strings"
    if not all(_number(row.get(k)) for k in ("score", "max_score")):
        return "score and max_score must be numbers"
    if not isinstance(row.get("pending", 0.0), (int, float)) or row.get("status") not in ("graded", "error"):
        return "pending must be a number and status graded or error"
    tests = row.get("tests")
    if not isinstance(tests, dict) or not all(
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) for v in tests.values()
    ):
        return "tests must map grade ids to [score, max_score]"
    if not all(isinstance(row.get(k, []), list) for k in ("manual", "awaiting", "notes")):
        return "manual, awaiting and notes must be lists"
    messages = row.get("messages", {})
    if not isinstance(messages, dict) or not all(isinstance(m, str) for m in messages.values()):
        return "messages must map grade ids to text"
    if not isinstance(row.get("reason", ""), str):
        return "reason must be a string"
    return None
