"""A messy cohort graded in one batch: every bad input gets a clear status and a fair score,
the batch never stops, and a serial and a parallel run agree."""

import json
import subprocess
import sys
import time

import pytest

from autograder.authoring import samples
from autograder.course import notebooks
from autograder.grading import discovery, grade
from autograder.worker.serve import Watchdog

pytestmark = pytest.mark.kernel  # every test here grades or runs notebooks in kernels

AID = "02_value_backward"


def _set_answer(nb, grade_id, text):
    for cell in nb["cells"]:
        if notebooks.grade_id(cell) == grade_id:
            cell["source"] = text + "\n" + "".join(cell["source"])
    return nb


def _write(root, rel, content):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, dict):
        content = json.dumps(content, indent=1)
    path.write_text(content)
    return path


def _colab_shaped(nb):
    """What a Colab download looks like: nbformat 4.0, no cell ids, colab metadata, outputs."""
    nb = json.loads(json.dumps(nb))
    nb["nbformat_minor"] = 0
    nb["metadata"] = {"colab": {"provenance": []}, "kernelspec": {"name": "python3", "display_name": "Python 3"}}
    for cell in nb["cells"]:
        cell.pop("id", None)
        cell["metadata"]["id"] = (
            "x" + str(abs(hash(cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"]))))[:8]
        )
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "old output\n"}]
    return nb


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    sub = root / "in"
    ref = samples.filled(AID)
    # Not add-assigns-grad: it passes or fails the diamond of test_backward depending on the order of a set.
    buggy = samples.filled(AID, "rsub-wrong-order")
    _write(sub, f"alice/{AID}.ipynb", ref)
    _write(sub, f"bob/Copy of {AID} (1).ipynb", ref)
    _write(sub, f"carol/carol_{AID}.ipynb", ref)
    _write(sub, f"dan/{AID}.ipynb", _colab_shaped(ref))
    stripped = json.loads(json.dumps(ref))
    for cell in stripped["cells"]:
        cell["metadata"] = {}
    _write(sub, f"erin/{AID}.ipynb", stripped)
    altered = json.loads(json.dumps(ref))
    for cell in altered["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta:
            meta.update(grade=False, locked=False, solution=False)
            meta.pop("checksum", None)
    _write(sub, f"frank/{AID}.ipynb", altered)
    no_tests = json.loads(json.dumps(buggy))
    no_tests["cells"] = [c for c in no_tests["cells"] if not notebooks.is_graded(c)]
    _write(sub, f"gina/{AID}.ipynb", no_tests)
    _write(sub, f"gina-control/{AID}.ipynb", buggy)
    _write(sub, f"hank/{AID}.ipynb", '{"cells": [ {"cell_type": "code", ')
    _write(sub, f"ivy/{AID}.ipynb", "")
    _write(sub, "jack/answers.txt", "I did it on paper")
    _write(sub, f"kim/{AID}.ipynb", _set_answer(json.loads(json.dumps(ref)), "neg", "while True:\n    pass"))
    _write(sub, f"lee/{AID}.ipynb", _set_answer(json.loads(json.dumps(ref)), "neg", "hog = bytearray(3 * 2**30)"))
    _write(sub, f"mia/{AID}.ipynb", _set_answer(json.loads(json.dumps(ref)), "neg", "print('spam ' * 2_000_000)"))
    older = _write(sub, f"nora/{AID}.ipynb", samples.stub(AID))
    newer = _write(sub, f"nora/{AID} (2).ipynb", ref)
    now = time.time()
    import os

    os.utime(older, (now - 100, now - 100))
    os.utime(newer, (now, now))
    serial = grade.grade(discovery.find_submissions([sub]), root / "serial", jobs=1, feedback=True)
    parallel = grade.grade(discovery.find_submissions([sub]), root / "parallel", jobs=2)
    return {(s.student, s.path.name): s for s in serial}, root, parallel


def _one(cohort, student, name=None):
    subs = [s for (st, n), s in cohort[0].items() if st == student and (name is None or n == name)]
    assert len(subs) == 1, subs
    return subs[0]


@pytest.mark.parametrize("student", ["alice", "bob", "carol", "dan", "erin", "frank"])
def test_correct_work_gets_full_marks_however_it_was_renamed_or_stripped(cohort, student):
    s = _one(cohort, student)
    assert s.status == "graded" and s.assignment == AID
    assert s.score == s.max_score == 21


def test_lost_metadata_is_restored_and_said(cohort):
    assert any("restored the nbgrader metadata" in n for n in _one(cohort, "erin").notes)
    assert any("restored the nbgrader metadata" in n for n in _one(cohort, "frank").notes)


def test_deleted_test_cells_are_put_back_and_run(cohort):
    gina, control = _one(cohort, "gina"), _one(cohort, "gina-control")
    assert gina.status == "graded"
    assert gina.score == control.score < gina.max_score
    assert any("missing, put back" in n for n in gina.notes)


@pytest.mark.parametrize("student,reason", [("hank", "broken JSON"), ("ivy", "empty"), ("jack", "not a notebook")])
def test_unreadable_input_gets_a_clear_error_and_zero(cohort, student, reason):
    s = _one(cohort, student)
    assert s.status.startswith("error: ") and reason in s.status
    assert s.score == 0


def test_an_infinite_loop_costs_only_the_cells_it_stops(cohort):
    kim = _one(cohort, "kim")
    assert kim.status == "graded"
    assert 0 < kim.score < kim.max_score
    assert kim.tests["test_neg"][0] == 0 and kim.tests["test_add"][0] == kim.tests["test_add"][1] > 0


def test_a_memory_bomb_is_stopped_with_a_clear_status(cohort):
    lee = _one(cohort, "lee")
    assert lee.status.startswith("error: ") and "memory" in lee.status
    assert lee.score == 0 and lee.max_score == 21


def test_an_output_flood_is_truncated_and_graded(cohort):
    mia = _one(cohort, "mia")
    assert mia.status == "graded" and mia.score == mia.max_score
    html = (cohort[1] / "serial" / "feedback" / "mia" / f"{AID}.html").read_text()
    assert len(html) < 3_000_000


def test_of_two_files_for_one_assignment_the_newest_counts(cohort):
    assert _one(cohort, "nora", f"{AID} (2).ipynb").score == 21
    assert "superseded" in _one(cohort, "nora", f"{AID}.ipynb").status


def test_serial_and_parallel_runs_write_the_same_grades(cohort):
    root = cohort[1]
    assert (root / "serial" / "grades.csv").read_text() == (root / "parallel" / "grades.csv").read_text()


def test_a_second_run_reuses_results_unless_forced(cohort, tmp_path):
    root = cohort[1]
    started = time.monotonic()
    again = grade.grade(discovery.find_submissions([root / "in" / "alice" / f"{AID}.ipynb"], "alice"), root / "serial")
    assert again[0].score == 21 and time.monotonic() - started < 5  # no kernel was started


def test_the_watchdog_stops_a_runaway_child_process():
    with Watchdog(wall_seconds=1, memory_mb=10_000) as dog:
        child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        child.wait(timeout=30)
    assert "time limit" in dog.reason
