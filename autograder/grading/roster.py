"""A class roster in the format of Canvas's gradebook CSV, read and written without losing a column.

Canvas exports its gradebook as `Student, ID, SIS User ID, SIS Login ID, Section`, then one column
per assignment (named `Title (canvas id)`) and a few read-only totals; the second line is
`Points Possible`. Importing the same file back sets the grades of the assignment columns it has,
and creates an assignment for each new column. Intake and export read the same file.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "Points Possible"
# The columns a student can be known by, in the order they are tried.
KEYS = ["ID", "SIS User ID", "SIS Login ID", "Student"]


@dataclass
class Roster:
    header: list[str]
    rows: list[dict[str, str]]  # one per student, by column name
    points: dict[str, str] = field(default_factory=dict)  # the Points Possible line, if any

    def find(self, student: str) -> dict[str, str] | None:
        """The row of `student` (a Canvas id, SIS id or login, or name, as a grader's student id
        may be), or None. Case and surrounding spaces do not count; the first match wins."""
        wanted = student.strip().casefold()
        for key in KEYS:
            for row in self.rows:
                if row.get(key, "").strip().casefold() == wanted and wanted:
                    return row
        return None

    def column(self, name: str, points: float | None = None) -> str:
        """The header of the column of assignment `name`: an existing one called `name` or
        `name (canvas id)`, else a new column, added at the end with its points possible."""
        for h in self.header:
            if h == name or (h.startswith(f"{name} (") and h.endswith(")")):
                return h
        self.header.append(name)
        if points is not None:
            self.points[name] = f"{points:g}"
        return name


def empty() -> Roster:
    """A roster with Canvas's identity columns and no one in it."""
    return Roster(list(IDENTITY), [])


def read(path: str | Path) -> Roster:
    """The roster in the Canvas gradebook CSV at `path`. ValueError if it has no Student column."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # Canvas writes a byte-order mark
        lines = list(csv.reader(f))
    if not lines or "Student" not in [h.strip() for h in lines[0]]:
        raise ValueError(f"{path} is not a Canvas gradebook export: its first line has no Student column")
    header = [h.strip() for h in lines[0]]
    roster = Roster(header, [])
    for values in lines[1:]:
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(header, values + [""] * (len(header) - len(values)), strict=False))
        if row["Student"].strip() == POINTS_POSSIBLE:
            roster.points = row
        else:
            roster.rows.append(row)
    return roster


def write(roster: Roster, path: str | Path) -> Path:
    """Write `roster` as a Canvas gradebook CSV (its Points Possible line second, when it has one)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(roster.header)
        if roster.points:
            points = {**roster.points, "Student": f"    {POINTS_POSSIBLE}"}
            writer.writerow([points.get(h, "") for h in roster.header])
        for row in roster.rows:
            writer.writerow([row.get(h, "") for h in roster.header])
    return path
