"""What grading prints: grades.csv, one row a submission, and the table shown after a run."""

import csv
from pathlib import Path

from autograder.grading.submission import Submission
from autograder.worker.result import Status

COLUMNS = ["student", "assignment", "score", "max_score", "pending_manual", "status", "notes"]


def write_csv(submissions: list[Submission], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "", str(s.path))):
            writer.writerow(
                [
                    s.student,
                    s.assignment or "",
                    f"{s.score:g}",
                    f"{s.max_score:g}",
                    f"{s.pending:g}",
                    s.status,
                    "; ".join(s.notes),
                ]
            )


def table(submissions: list[Submission]) -> str:
    """The score table printed after grading."""
    rows = [("student", "assignment", "score", "status")]
    for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "", str(s.path))):
        pending = f" (+{s.pending:g} to grade by hand)" if s.pending else ""
        rows.append((s.student, s.assignment or s.path.name, f"{s.score:g} / {s.max_score:g}{pending}", s.status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    flagged = [s for s in submissions if s.state is Status.REVIEW]
    if flagged:
        lines += ["", f"To review ({len(flagged)}): the score stands; read the answer cells named"]
        lines += [
            f"  {s.student} {s.assignment}: {', '.join(s.review)}"
            for s in sorted(flagged, key=lambda s: (s.student, s.assignment or ""))
        ]
    return "\n".join(lines)
