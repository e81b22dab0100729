"""Due dates and late penalties: applied when grades.csv is written, so a new due date regrades nothing."""

import csv
import os
import shutil
from datetime import UTC, datetime

import pytest

from autograder import cli
from autograder.grading import late
from autograder.grading.submission import Submission
from autograder.worker.result import Result, Status

DUE = "2026-10-05T23:59:00+02:00"  # 21:59 UTC


def _submission(tmp_path, student, stamp=None, score=10.0, state=Status.GRADED):
    folder = tmp_path / student
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "02_value_backward.ipynb"
    path.write_text("{}")
    if stamp:
        (folder / late.TIMESTAMP).write_text(stamp)
    result = Result(student, "02_value_backward", state, score=score, max_score=20.0)
    return Submission(student, path, "02_value_backward", state=state, result=result)


def test_per_day_takes_a_share_of_the_points_per_started_day_and_never_goes_below_zero(tmp_path):
    rule = late.policy([DUE], "per-day:10")
    on_time = _submission(tmp_path, "ada", "2026-10-05 21:58:59 UTC")
    one_minute = _submission(tmp_path, "bob", "2026-10-05 22:00:00 UTC")
    a_day_and_more = _submission(tmp_path, "cy", "2026-10-06T22:00:00+00:00")  # in the second day
    weeks = _submission(tmp_path, "dee", "2026-10-30 12:00:00 UTC", score=3.0)
    late.apply([on_time, one_minute, a_day_and_more, weeks], rule)
    assert [s.score for s in (on_time, one_minute, a_day_and_more, weeks)] == [10, 8, 6, 0]
    assert "LATE" not in on_time.notes[0] and "from timestamp.txt" in on_time.notes[0]
    assert "LATE by 0 h 1 min" in one_minute.notes[0] and "-2 (per-day:10)" in one_minute.notes[0]
    assert "LATE by 1 d 0 h" in a_day_and_more.notes[0]


def test_zero_and_none_are_nbgraders_own_and_an_extension_moves_the_due_date(tmp_path):
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("student,assignment,due\nbob,02_value_backward,2026-10-08T12:00:00Z\n")
    zero = late.policy([f"02_value_backward={DUE}"], "zero", extensions)
    ada = _submission(tmp_path, "ada", "2026-10-06 10:00:00 UTC")
    bob = _submission(tmp_path, "bob", "2026-10-06 10:00:00 UTC")
    errored = _submission(tmp_path, "cy", "2026-10-09 10:00:00 UTC", state=Status.ERROR)
    late.apply([ada, bob, errored], zero)
    assert (ada.score, bob.score, errored.notes) == (0, 10, [])
    none = late.policy([DUE])
    ada = _submission(tmp_path, "ada", "2026-10-06 10:00:00 UTC")
    late.apply([ada], none)
    assert ada.score == 10 and "LATE" in ada.notes[0] and "-0 (none)" in ada.notes[0]


def test_without_a_timestamp_the_file_time_counts_and_the_notes_say_so(tmp_path):
    s = _submission(tmp_path, "ada")
    moment = datetime(2026, 10, 7, 9, 0, tzinfo=UTC).timestamp()
    os.utime(s.path, (moment, moment))
    late.apply([s], late.policy([DUE], "per-day:25"))
    assert s.score == 10 - 2 * 5 and "from the file's modification time" in s.notes[0]


def test_due_dates_without_an_offset_and_unknown_penalties_are_refused(capsys):
    assert late.policy([]) is None
    assert cli.main(["grade", "nowhere", "--due", "2026-10-05T23:59"]) == 2
    assert "no offset from UTC" in capsys.readouterr().err
    assert cli.main(["grade", "nowhere", "--due", DUE, "--late-penalty", "half"]) == 2
    assert "none, zero or per-day:P" in capsys.readouterr().err


@pytest.mark.kernel
def test_a_new_due_date_regrades_nothing_and_reaches_grades_csv_and_the_export(graded_samples, tmp_path):
    subs, graded_out = graded_samples
    inputs, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(graded_out.parent / "in", inputs)
    shutil.copytree(graded_out, out)
    cached = {p.name: p.read_bytes() for p in (out / "results").iterdir()}
    (inputs / "reference" / late.TIMESTAMP).write_text("2026-10-07 08:00:00 UTC")  # 1 d 10 h late
    due = ["--due", f"02_value_backward={DUE}", "--due", "01_numerical_gradients=2026-10-10T00:00:00Z"]
    assert cli.main(["grade", str(inputs), "--out", str(out), *due, "--late-penalty", "per-day:10"]) == 0
    assert {p.name: p.read_bytes() for p in (out / "results").iterdir()} == cached  # nothing graded again
    with open(out / "grades.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert not [r for r in lines if late.TIMESTAMP in r["status"]]  # not taken for a submission
    rows = {(r["student"], r["assignment"]): r for r in lines}
    ref = rows[("reference", "02_value_backward")]
    assert float(ref["score"]) == subs[("reference", "02_value_backward")].score - 2 * 0.1 * 21
    assert "LATE by 1 d 10 h" in ref["notes"] and "from timestamp.txt" in ref["notes"]
    early = rows[("reference", "01_numerical_gradients")]
    assert "from timestamp.txt" in early["notes"] and "LATE" not in early["notes"]
    assert cli.main(["export", str(out), "--to", "canvas"]) == 0
    with open(out / "canvas.csv", newline="") as f:
        reference = next(line for line in csv.reader(f) if line[0] == "reference")
    assert float(reference[5 + 1]) == float(ref["score"])  # 02_value_backward, after 01
