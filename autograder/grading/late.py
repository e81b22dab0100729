"""Due dates and late penalties, applied to the scores when grades.csv is written.

A penalty is no part of a graded result: results stay cached as they are, and a new due date,
extension or penalty only changes what grades.csv (and so every export) says, without grading
anything again. The penalties are nbgrader's late-submission plugin: `none` and `zero` are its
own, and `per-day:P` (P% of the assignment's points per started 24 hours late, the score never
below 0) is a subclass of it, which an nbgrader course can name as `AssignLatePenalties.plugin_class`.

When a notebook was handed in: `timestamp.txt` beside it (nbgrader's, written by its exchange,
or by whoever collected the files), else Gradescope's submission metadata when grading runs
there, else the file's modification time, which a copy or a download can change.
"""

import csv
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Float

from autograder.grading.submission import Submission
from autograder.worker.result import Status

TIMESTAMP = "timestamp.txt"
GRADESCOPE_METADATA = Path("/autograder/submission_metadata.json")
DAY = 24 * 3600
PENALTY = re.compile(r"none|zero|per-day:(\d+(?:\.\d+)?)")


class PerDayPenalty(LateSubmissionPlugin):  # type: ignore[misc]  # nbgrader has no type hints
    """P% of the assignment's points per started 24 hours late; the score never goes below 0."""

    percent = Float(10.0, help="percent of the maximum score taken per started day late").tag(config=True)
    max_score = Float(0.0, help="the assignment's points").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        days = math.ceil(total_seconds_late / DAY) if total_seconds_late > 0 else 0
        return min(score, days * self.percent / 100 * self.max_score)


@dataclass
class Policy:
    due: dict[str, datetime]  # by assignment; "" for every assignment of the run
    penalty: str = "none"  # none, zero or per-day:P
    extensions: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (student, assignment)

    def due_for(self, student: str, assignment: str) -> datetime | None:
        return self.extensions.get((student, assignment)) or self.due.get(assignment) or self.due.get("")

    def deduction(self, student: str, score: float, max_score: float, seconds_late: float) -> float:
        """The points a submission `seconds_late` loses (nbgrader's plugin, or `PerDayPenalty`)."""
        if seconds_late <= 0:
            return 0.0
        per_day = PENALTY.fullmatch(self.penalty)
        if per_day and per_day.group(1):
            plugin = PerDayPenalty(percent=float(per_day.group(1)), max_score=max_score)
        else:
            plugin = LateSubmissionPlugin(penalty_method=self.penalty)
        return float(plugin.late_submission_penalty(student, score, seconds_late) or 0.0)


def when(text: str) -> datetime:
    """An ISO 8601 date and time with its offset (2026-10-05T23:59:00+02:00, or Z for UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time (such as 2026-10-05T23:59:00+02:00)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset from UTC: add one, such as +02:00 or Z")
    return moment


def policy(due: list[str], penalty: str = "none", extensions: str | Path | None = None) -> Policy | None:
    """The policy that `grade --due ... --late-penalty ... --extensions FILE` describes, or None
    without a due date. ValueError says what is wrong with an argument."""
    if not PENALTY.fullmatch(penalty):
        raise ValueError(f"--late-penalty {penalty!r}: use none, zero or per-day:P (P percent of the points per day)")
    dates = {}
    for value in due:
        aid, _, moment = value.rpartition("=") if re.match(r"^[^=]+=\d", value) else ("", "", value)
        dates[aid] = when(moment)
    if not dates:
        return None
    return Policy(dates, penalty, read_extensions(Path(extensions)) if extensions else {})


def read_extensions(path: Path) -> dict[tuple[str, str], datetime]:
    """{(student, assignment): new due date} from a CSV with the columns student,assignment,due."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    found = {}
    for line, row in enumerate(rows, start=2):
        if not all(row.get(k) for k in ("student", "assignment", "due")):
            raise ValueError(f"{path} line {line}: needs student, assignment and due")
        found[(row["student"].strip(), row["assignment"].strip())] = when(row["due"])
    return found


def submitted(path: Path) -> tuple[datetime, str]:
    """When the notebook at `path` was handed in, and where that was read."""
    stamp = path.parent / TIMESTAMP
    if stamp.is_file():
        try:
            return parse_utc(stamp.read_text().strip()).replace(tzinfo=UTC), TIMESTAMP
        except (ValueError, OverflowError):
            pass  # unreadable: the next source tells
    if GRADESCOPE_METADATA.is_file() and path.is_relative_to("/autograder/submission"):
        meta: dict[str, Any] = json.loads(GRADESCOPE_METADATA.read_text())
        return datetime.fromisoformat(meta["created_at"]), "Gradescope's submission metadata"
    return datetime.fromtimestamp(path.stat().st_mtime, UTC), "the file's modification time"


def _span(seconds: float) -> str:
    days, rest = divmod(int(seconds), DAY)
    hours, rest = divmod(rest, 3600)
    return f"{days} d {hours} h" if days else f"{hours} h {rest // 60} min"


def apply(submissions: list[Submission], rule: Policy) -> None:
    """Take the late penalty off each graded submission and say in its notes
    when it was handed in, from where, and, if late, by how much and what it cost."""
    for s in submissions:
        if s.assignment is None or s.state not in (Status.GRADED, Status.REVIEW):
            continue
        due = rule.due_for(s.student, s.assignment)
        if due is None:
            continue
        moment, source = submitted(s.path)
        note = f"submitted {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC (from {source})"
        late = (moment - due).total_seconds()
        if late > 0:
            cost = rule.deduction(s.student, s.score, s.max_score, late)
            s.late_penalty = cost
            extended = " (extended)" if (s.student, s.assignment) in rule.extensions else ""
            note += (
                f"; LATE by {_span(late)} after the due date{extended} {due.isoformat()}: -{cost:g} ({rule.penalty})"
            )
        s.notes.append(note)
