"""`export OUT --to canvas|wide`, from the output folder `grade` writes (grades.csv and results/)."""

import csv
import json

import pytest

from autograder import cli
from autograder.grading import roster
from autograder.grading.output import COLUMNS


def write_out(out, rows, results):
    """A made-up output folder of `grade`: grades.csv `rows` and results/ `results`."""
    (out / "results").mkdir(parents=True)
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    for (student, aid), tests in results.items():
        manual = [gid for gid in tests if gid.startswith("writeup")]
        row = {"student": student, "assignment": aid, "tests": tests, "manual": manual}
        (out / "results" / f"{student}__{aid}.json").write_text(json.dumps(row))
    return out


@pytest.fixture
def out(tmp_path):
    return write_out(
        tmp_path / "out",
        [
            ["ada", "02_value_backward", "16", "21", "0", "graded", ""],
            ["ada", "07_capstone", "45", "63", "0", "graded", ""],
            ["bob", "02_value_backward", "0", "21", "0", "error: superseded by new.ipynb", ""],
            ["bob", "02_value_backward", "21", "21", "0", "review: reads the grader", ""],
            ["cy", "02_value_backward", "0", "21", "0", "error: the notebook stopped", ""],
            ["cy", "", "0", "0", "0", "error: notes.txt is not a notebook (.ipynb)", ""],
        ],
        {
            ("ada", "02_value_backward"): {"test_add": [0.0, 2.0], "test_mul": [1.0, 1.0]},
            ("ada", "07_capstone"): {"test_sigmoid": [2.0, 2.0], "writeup_bug": [3.0, 3.0]},
            ("bob", "02_value_backward"): {"test_add": [2.0, 2.0], "test_mul": [1.0, 1.0]},
        },
    )


def read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def test_canvas_without_a_roster_has_canvas_columns_and_a_column_per_assignment(out, capsys):
    assert cli.main(["export", str(out), "--to", "canvas"]) == 0
    lines = read_csv(out / "canvas.csv")
    assert lines[0] == roster.IDENTITY + ["02_value_backward", "07_capstone"]
    assert lines[1][0].strip() == "Points Possible" and lines[1][5:] == ["21", "63"]
    by_student = {line[0]: line for line in lines[2:]}
    assert by_student["ada"][5:] == ["16", "45"]
    assert by_student["bob"][5:] == ["21", ""]  # the graded file, not the superseded one
    assert by_student["cy"][5:] == ["", ""]  # an error is no score
    assert "cy 02_value_backward: error: the notebook stopped" in capsys.readouterr().err


def test_canvas_with_a_roster_fills_our_columns_and_keeps_the_rest(out, tmp_path, capsys):
    exported = tmp_path / "Grades-MICRO101.csv"
    exported.write_text(
        "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (881),02_value_backward (902),Current Score\n"
        "    Points Possible,,,,,10,21,(read only)\n"
        '"Lovelace, Ada",1001,S-1,ada,MICRO101-A,9,,80\n'
        '"Babbage, Charles",1002,bob,cb@uni.example,MICRO101-A,7,3,70\n'
        '"Student, Test",1003,,,MICRO101-A,,,\n',
        encoding="utf-8",
    )
    dest = tmp_path / "import.csv"
    assert cli.main(["export", str(out), "--to", "canvas", "--roster", str(exported), "--output", str(dest)]) == 0
    lines = read_csv(dest)
    assert lines[0] == read_csv(exported)[0] + ["07_capstone"]
    assert lines[1] == ["    Points Possible", "", "", "", "", "10", "21", "(read only)", "63"]
    assert lines[2] == ["Lovelace, Ada", "1001", "S-1", "ada", "MICRO101-A", "9", "16", "80", "45"]
    assert lines[3] == ["Babbage, Charles", "1002", "bob", "cb@uni.example", "MICRO101-A", "7", "21", "70", ""]
    assert lines[4] == ["Student, Test", "1003", "", "", "MICRO101-A", "", "", "", ""]
    assert "not in the roster, left out: cy" in capsys.readouterr().err


def test_a_file_that_is_no_canvas_export_is_refused(out, tmp_path, capsys):
    (tmp_path / "names.csv").write_text("name,email\nada,ada@uni.example\n")
    assert cli.main(["export", str(out), "--to", "canvas", "--roster", str(tmp_path / "names.csv")]) == 2
    assert "not a Canvas gradebook export" in capsys.readouterr().err


def test_wide_has_a_column_per_test_cell_and_per_assignment_total(out):
    assert cli.main(["export", str(out), "--to", "wide"]) == 0
    header, *rows = read_csv(out / "wide.csv")
    # in the notebooks' order; the hand-graded write-up is no test cell
    assert header == [
        "student",
        "02_value_backward/test_add",
        "02_value_backward/test_mul",
        "02_value_backward total",
        "07_capstone/test_sigmoid",
        "07_capstone total",
    ]
    assert rows == [
        ["ada", "0", "1", "16", "2", "45"],
        ["bob", "2", "1", "21", "", ""],
        ["cy", "", "", "", "", ""],
    ]


@pytest.mark.kernel
def test_wide_test_cells_add_up_to_each_graded_total(graded_samples, tmp_path):
    subs, out = graded_samples
    dest = tmp_path / "wide.csv"
    assert cli.main(["export", str(out), "--to", "wide", "--output", str(dest)]) == 0
    header, *rows = read_csv(dest)
    checked = 0
    for line in rows:
        for (student, aid), s in subs.items():
            if student != line[0] or s.pending or s.result is None or s.result.manual or aid is None:
                continue
            cells = [v for h, v in zip(header, line, strict=True) if h.startswith(f"{aid}/")]
            total = line[header.index(f"{aid} total")]
            assert float(total) == s.score == sum(float(v) for v in cells if v), (student, aid)
            checked += 1
    assert checked > 20
