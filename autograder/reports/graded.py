"""What an output folder of `grade` says about a cohort, read once for `export` and `report`.

grades.csv has the final score of each submission (hand grades included) and its status; the
result each worker wrote into results/ adds the score and the verdict of every test cell, and
OUT's gradebook the score an instructor gave an autograded cell by hand in formgrader.
"""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course.assignment import assignment as course_assignment
from autograder.course.paths import assignments
from autograder.worker import cohort_course


@dataclass
class Graded:
    student: str
    assignment: str
    score: float
    max_score: float
    pending: float  # points still to grade by hand
    status: str  # as grades.csv prints it: graded, review: ..., error: ...
    notes: str = ""
    tests: dict[str, tuple[float, float]] = field(default_factory=dict)  # autograded test cells by grade_id
    messages: dict[str, str] = field(default_factory=dict)  # a test cell's verdict, when it has one

    @property
    def counts(self) -> bool:
        """Whether the score is a grade: graded, or graded and flagged for review (not an error)."""
        return not self.status.startswith("error")


def read(out: str | Path) -> list[Graded]:
    """One `Graded` per student and assignment in `out` (the graded file, when a student handed
    in two), sorted by student and assignment. FileNotFoundError without grades.csv."""
    out = Path(out)
    chosen: dict[tuple[str, str], Graded] = {}
    with open(out / "grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("assignment"):
                continue  # a file that is no notebook of the course belongs to no assignment
            g = Graded(
                row["student"],
                row["assignment"],
                float(row["score"]),
                float(row["max_score"]),
                float(row.get("pending_manual") or 0),
                row["status"],
                row.get("notes", ""),
            )
            key = (g.student, g.assignment)
            if key not in chosen or (g.counts and not chosen[key].counts):
                chosen[key] = g
    for g in chosen.values():
        if g.counts:
            _add_tests(g, out / "results" / f"{g.student}__{g.assignment}.json")
            # an autograded cell the instructor scored by hand in formgrader counts that score
            for gid, (score, _) in cohort_course.hand_grades(out, g.student, g.assignment).items():
                if gid in g.tests and score is not None:
                    g.tests[gid] = (score, g.tests[gid][1])
    return sorted(chosen.values(), key=lambda g: (g.student, g.assignment))


def _add_tests(g: Graded, path: Path) -> None:
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # graded by an older grader, or removed: the totals still stand
    manual = set(row.get("manual", []))
    messages = row.get("messages", {})
    for gid, value in row.get("tests", {}).items():
        if gid not in manual and isinstance(value, list) and len(value) == 2:
            g.tests[gid] = (float(value[0] or 0), float(value[1]))
            if messages.get(gid):
                g.messages[gid] = str(messages[gid])


def autograded_cells(assignment: str, graded: list[Graded]) -> list[str]:
    """The grade_ids of the autograded test cells of `assignment`, in the notebook's order (those
    of an assignment no longer in solutions/ in the order first seen)."""
    seen = list(dict.fromkeys(gid for g in graded if g.assignment == assignment for gid in g.tests))
    if assignment not in assignments():
        return seen
    order = course_assignment(assignment).cell_order()
    return sorted(seen, key=lambda gid: order.index(gid) if gid in order else len(order))
