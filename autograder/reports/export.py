"""`export OUT --to canvas|wide`: the grades of an output folder of `grade`, for an LMS or a sheet.

canvas: Canvas's gradebook CSV, one column per assignment. Given the class's own export from
Canvas (`--roster`), that file comes back with our columns filled in, matched by Canvas id, SIS
id, login or name, and everything else in it kept, its Points Possible line included.
wide: one row per student, one column per autograded test cell and one per assignment total.

A submission that ended in an error gets no score here: an empty cell, and a warning.
"""

import csv
import sys
from pathlib import Path

from autograder.grading import roster
from autograder.reports import graded
from autograder.reports.graded import Graded

KINDS = ("canvas", "wide")


def export(out: str | Path, to: str, roster_file: str | Path | None = None, dest: str | Path | None = None) -> Path:
    """Write the export of kind `to` (default OUT/canvas.csv or OUT/wide.csv); return its path."""
    out = Path(out)
    rows = graded.read(out)
    _warn(rows)
    dest = Path(dest) if dest else out / f"{to}.csv"
    if to == "canvas":
        return roster.write(canvas(rows, roster.read(roster_file) if roster_file else None), dest)
    if to == "wide":
        return _write_wide(rows, dest)
    raise ValueError(f"unknown export {to!r}: one of {', '.join(KINDS)}")


def assignments(rows: list[Graded]) -> list[str]:
    return sorted({g.assignment for g in rows})


def _score(g: Graded) -> str:
    return f"{g.score:g}" if g.counts else ""


def canvas(rows: list[Graded], given: roster.Roster | None = None) -> roster.Roster:
    """`given` (or a new roster of the students in `rows`) with one column per assignment filled."""
    r = given or roster.empty()
    most = {aid: max(g.max_score for g in rows if g.assignment == aid) for aid in assignments(rows)}
    columns = {aid: r.column(aid, most[aid]) for aid in assignments(rows)}
    missing = set()
    for g in rows:
        row = r.find(g.student)
        if row is None and given is not None:
            missing.add(g.student)
            continue
        if row is None:
            row = {"Student": g.student, "SIS User ID": g.student}
            r.rows.append(row)
        row[columns[g.assignment]] = _score(g)
    if missing:
        print(
            f"warning: {len(missing)} student(s) not in the roster, left out: {', '.join(sorted(missing))}",
            file=sys.stderr,
        )
    return r


def wide(rows: list[Graded]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the wide export: student, then per assignment its test cells and total."""
    header, cells = ["student"], []
    for aid in assignments(rows):
        ids = graded.autograded_cells(aid, rows)
        header += [f"{aid}/{gid}" for gid in ids] + [f"{aid} total"]
        cells.append((aid, ids))
    by_key = {(g.student, g.assignment): g for g in rows}
    table = []
    for student in sorted({g.student for g in rows}):
        line = [student]
        for aid, ids in cells:
            g = by_key.get((student, aid))
            if g is None:
                line += [""] * (len(ids) + 1)
                continue
            line += [f"{g.tests[gid][0]:g}" if gid in g.tests else "" for gid in ids] + [_score(g)]
        table.append(line)
    return header, table


def _write_wide(rows: list[Graded], dest: Path) -> Path:
    header, table = wide(rows)
    with open(dest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(table)
    return dest


def _warn(rows: list[Graded]) -> None:
    errors = [g for g in rows if not g.counts]
    if errors:
        print(f"warning: {len(errors)} submission(s) ended in an error and get no score:", file=sys.stderr)
        for g in errors:
            print(f"  {g.student} {g.assignment}: {g.status}", file=sys.stderr)
    pending = [g for g in rows if g.counts and g.pending]
    if pending:
        print(f"note: {len(pending)} submission(s) still have points to grade by hand", file=sys.stderr)
