"""Hand grades: the scores and comments given in formgrader, and the rows of manual_grades.csv."""

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

from autograder.grading.submission import Submission
from autograder.worker import cohort_course
from autograder.worker.result import Status


def apply_manual_grades(submissions: list[Submission], out: Path, feedback: bool = False) -> None:
    """Hand grades: the manual scores and comments of OUT's gradebook (given in formgrader, on
    any cell), and the rows of manual_grades.csv (student,assignment,grade_id,points, for the
    cells graded by hand only), clamped to 0..the cell's points. A row of the CSV file is written
    into the gradebook as a manual score; a later formgrader edit of that score wins. A row that
    cannot be used is skipped with a note on its submission, never a crash."""
    path = out / "manual_grades.csv"
    by_key = {(s.student, s.assignment): s for s in submissions if s.assignment and s.state is not Status.SUPERSEDED}
    from_csv: dict[tuple[str, str], dict[str, float]] = {}
    for line, entry in enumerate(_manual_grades(path), start=2):
        student, aid, gid = ((entry.get(k) or "").strip() for k in ("student", "assignment", "grade_id"))
        s = by_key.get((student, aid))
        if s is None:
            print(
                f"warning: {path.name} line {line}: no graded submission of {aid or '?'} by {student or '?'}; ignored",
                file=sys.stderr,
            )
            continue
        points = _manual_points(s, entry, line, path.name)
        if isinstance(points, str):
            s.notes.append(points)
        else:
            from_csv.setdefault((student, aid), {})[gid] = points  # entered again: the last row counts
    written = _read_json(out / MANUAL_WRITTEN)
    for (student, aid), s in by_key.items():
        if s.state is Status.GRADED and s.result is not None:
            _hand_grades(s, out, from_csv.get((student, aid), {}), written, feedback)
    if written:
        (out / MANUAL_WRITTEN).write_text(json.dumps(written, indent=1, sort_keys=True))


def _hand_grades(s: Submission, out: Path, from_csv: dict[str, float], written: dict[str, Any], feedback: bool) -> None:
    """Apply to `s` the hand grades of OUT's gradebook and `from_csv` ({grade_id: points} of
    manual_grades.csv), writing the latter into the gradebook (recorded in `written`)."""
    assert s.assignment is not None
    hand = cohort_course.hand_grades(out, s.student, s.assignment)
    scores = {gid: (v, "formgrader") for gid, (v, _) in hand.items() if v is not None}
    for gid, given in from_csv.items():
        key = f"{s.student}/{s.assignment}/{gid}"
        before = written.get(key)  # [the CSV's value, the score it wrote] when last applied
        now = scores.get(gid, (None, ""))[0]
        if before and now is not None and now != before[1] and given == before[0]:
            s.notes.append(f"{gid}: formgrader's {now:g} counts, entered after manual_grades.csv's {given:g}")
            continue
        value = min(max(given, 0.0), float(s.tests[gid][1]))
        if cohort_course.set_hand_score(out, s.student, s.assignment, gid, value):
            written[key] = [given, value]
        scores[gid] = (given, "manual_grades.csv")
    for gid, (given, source) in sorted(scores.items()):
        if gid in s.tests and given is not None:
            _set_manual_grade(s, gid, given, source)
    s.notes += [f"comment on {gid}: {text}" for gid, (_, text) in sorted(hand.items()) if text]
    if feedback and hand:  # the page the worker made has neither
        cohort_course.feedback(out, s.student, s.assignment)


MANUAL_WRITTEN = "manual_grades.applied.json"  # what manual_grades.csv last wrote into the gradebook


def _read_json(path: Path) -> dict[str, Any]:
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}


def _manual_grades(path: Path) -> list[dict[str | None, Any]]:
    """The rows of manual_grades.csv; none if it is missing or unreadable."""
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        print(f"warning: {path} could not be read ({e}); no manual grades applied", file=sys.stderr)
        return []


def _manual_points(s: Submission, entry: dict[str | None, Any], line: int, name: str) -> float | str:
    """The points an entry of manual_grades.csv gives a hand-graded cell of `s`, or the note
    saying why the entry is ignored."""
    gid, points = ((entry.get(k) or "").strip() for k in ("grade_id", "points"))
    what = f"manual grade for {gid or f'line {line}'} ignored"
    if None in entry or any(entry.get(k) is None for k in ("student", "assignment", "grade_id", "points")):
        return f"{what}: line {line} of {name} does not have the 4 columns student,assignment,grade_id,points"
    if s.state is not Status.GRADED or s.result is None:
        return f"{what}: the submission was not graded ({s.status})"
    if gid not in s.tests:
        return f"{what}: {s.assignment} has no graded cell {gid!r}"
    if gid not in s.result.manual:
        return f"{what}: {gid} is graded automatically"
    try:
        given = float(points)
    except ValueError:
        given = math.nan
    return given if math.isfinite(given) else f"{what}: {points!r} is not a number"


def _set_manual_grade(s: Submission, gid: str, given: float, source: str) -> None:
    """Give cell `gid` of `s` `given` points by hand, clamped to what it is worth; notes say
    where the grade comes from, and what an autograded cell had scored."""
    assert s.result is not None
    current, most = s.tests[gid]
    value = min(max(given, 0.0), float(most))
    if value != given:
        s.notes.append(f"manual grade for {gid} of {given:g} clamped to {value:g} (the cell is worth {most:g})")
    s.hand[gid] = value
    if gid in s.result.manual:
        s.notes.append(f"{gid}: {value:g} by hand ({source})")
    else:
        s.notes.append(f"{gid}: autograded {current or 0:g}, overridden by hand to {value:g} ({source})")
