"""Which files were handed in, and whose they are: a folder per student, or loose files named by
`--student` or by an LMS download's prefix looked up in the roster."""

import csv
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from autograder.grading.late import TIMESTAMP
from autograder.grading.submission import Submission


def find_submissions(
    paths: Iterable[str | Path], student: str | None = None, roster: str | Path | None = None
) -> list[Submission]:
    """Submissions under `paths`: folders laid out STUDENT/NOTEBOOK.ipynb or
    STUDENT/ASSIGNMENT/NOTEBOOK.ipynb (nbgrader's own layout), and loose files (given as paths,
    or lying directly in a given folder). Every file counts, so that a student who handed in
    something that is not a notebook is told so.

    A loose file's name is the student's choice, so it never names the student: all loose files
    are `student`'s, or each is named by the LMS prefix `name_userid_` of a download, looked up
    in `roster` (see `read_roster`). Anything else is refused (SystemExit saying which files)."""
    found, loose = [], []
    for path in map(Path, paths):
        if not path.is_dir():
            loose.append(path)
            continue
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f.relative_to(path)
            if any(part.startswith(".") for part in rel.parts) or f.name == TIMESTAMP:
                continue
            if len(rel.parts) >= 2:
                found.append(Submission(rel.parts[0], f))
            else:
                loose.append(f)
    if loose:
        found += _owned(loose, student, roster)
    elif student or roster:
        raise SystemExit("--student and --roster name the owner of loose files; these folders have none")
    return found


def _owned(loose: list[Path], student: str | None, roster: str | Path | None) -> list[Submission]:
    """Loose files as submissions of `student`, or of the roster's students their LMS prefix names."""
    if student and roster:
        raise SystemExit("give --student or --roster, not both")
    if student:
        return [Submission(_safe_id(student, "--student"), path) for path in loose]
    names = ", ".join(p.name for p in loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
    if roster is None:
        raise SystemExit(
            f"whose work is {names}? A file's name is its student's choice, so it never names the student: "
            "give --student ID (every loose file is that student's), or --roster ROSTER.csv for files "
            "downloaded from an LMS (named name_userid_...), or lay the files out as STUDENT/NOTEBOOK.ipynb"
        )
    by_lms = {r["lms_id"]: r["student"] for r in read_roster(roster) if r.get("lms_id")}
    subs, unknown = [], []
    for path in loose:
        lms_id = lms_user_id(path.name)
        if lms_id in by_lms:
            subs.append(Submission(by_lms[lms_id], path))
        else:
            unknown.append(f"{path.name} ({'user ' + lms_id + ' is not in the roster' if lms_id else 'no LMS prefix'})")
    if unknown:
        raise SystemExit(f"cannot tell whose work these files are, so nothing was graded: {'; '.join(unknown)}")
    return subs


# An LMS download's prefix: Canvas `name_userid_submissionid_file` (`name_LATE_userid_...` when
# late), Moodle `Full Name_userid_assignsubmission_file_...`. Only the start of a name is read,
# which the LMS writes; the student's own file name follows it.
_LMS_PREFIX = re.compile(r"^[^_]+_(?:late_)?(\d+)_(?:\d+|assignsubmission)_", re.IGNORECASE)
ROSTER_COLUMNS = ("student", "lms_id", "name")


def lms_user_id(filename: str) -> str | None:
    """The LMS user id of a downloaded file's `name_userid_` prefix, or None."""
    m = _LMS_PREFIX.match(filename)
    return m.group(1) if m else None


def read_roster(path: str | Path) -> list[dict[str, str]]:
    """The roster: a CSV file with the columns student (the id grades.csv uses), lms_id (the user
    id of the LMS, in its download names and its grade export) and name, one row a student.
    SystemExit, saying why, for a roster that could attribute a file to two students."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SystemExit(f"cannot read the roster {path}: {e}") from None
    if not rows or "student" not in rows[0] or "lms_id" not in rows[0]:
        raise SystemExit(f"the roster {path} needs a header row with the columns {','.join(ROSTER_COLUMNS)}")
    rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in rows]
    for column in ("student", "lms_id"):
        seen = Counter(r[column] for r in rows if r.get(column))
        twice = sorted(v for v, n in seen.items() if n > 1)
        if twice:
            raise SystemExit(f"the roster {path} lists {column} {', '.join(twice)} more than once")
    for r in rows:
        _safe_id(r.get("student", ""), f"the roster {path}")
    return rows


def _safe_id(student: str, where: str) -> str:
    """`student`, if it can name a folder of OUT/feedback/; else SystemExit naming `where`."""
    if not student or student.startswith(".") or "/" in student or "\\" in student:
        raise SystemExit(f"{where}: {student!r} cannot be a student id (empty, or a path)")
    return student
