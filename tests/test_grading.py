"""The grader, proven on the bundled samples: full marks, zero, and known bugs losing points."""

import csv
import html
import io
import re
import shutil
from pathlib import Path

import pytest

from autograder.authoring.bugs import CLASSIC
from autograder.authoring.samples import BUGS
from autograder.course.assignment import assignment
from autograder.course.notebooks import HIDDEN_TESTS, SOLUTION, secret_lines
from autograder.course.paths import SOLUTIONS, assignments
from autograder.grading import discovery, grade
from autograder.worker import charge

pytestmark = pytest.mark.kernel  # every test here grades or runs notebooks in kernels


def _failed(sub):
    return {name for name, (score, max_score) in sub.tests.items() if score < max_score}


@pytest.mark.parametrize("aid", assignments())
def test_reference_gets_full_marks(graded_samples, aid):
    sub = graded_samples[0][("reference", aid)]
    assert sub.status == "graded", sub.status
    assert sub.max_score > 0 and sub.score == sub.max_score - sub.pending, _failed(sub)


@pytest.mark.parametrize("aid", assignments())
def test_untouched_stub_gets_zero(graded_samples, aid):
    sub = graded_samples[0][("stub", aid)]
    assert sub.status == "graded", sub.status
    assert sub.score == 0, {k: v for k, v in sub.tests.items() if v[0]}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_known_bug_loses_points_on_the_test_it_breaks(graded_samples, bug):
    aid, breaks = BUGS[bug].assignment, BUGS[bug].breaks
    sub = graded_samples[0][(f"bug-{bug}", aid)]
    assert sub.status == "graded", sub.status
    assert sub.score < sub.max_score, f"{bug} got full marks"
    assert breaks <= _failed(sub), f"{bug} should fail {breaks}, failed {_failed(sub)}"


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_a_bug_is_charged_only_in_its_own_methods_cells_and_whole_run_cells(graded_samples, bug):
    aid, cell = BUGS[bug].assignment, BUGS[bug].cell
    sub = graded_samples[0][(f"bug-{bug}", aid)]
    answers = list(assignment(aid).answer_ids)
    own = {gid for gid in sub.tests if charge.method(gid, answers) == cell}
    lost = {gid for gid in _failed(sub) if gid.startswith("test_")}  # hand-graded write-ups wait for a person
    assert lost <= own | assignment(aid).whole_run, (
        f"{bug} in {cell} also lost {lost - own - assignment(aid).whole_run}"
    )


def test_tests_edited_to_assert_true_are_restored(graded_samples, aid="02_value_backward"):
    answered = graded_samples[0][("tamper-tests", aid)]
    stub = graded_samples[0][("tamper-stub", aid)]
    reference = graded_samples[0][("reference", aid)]
    assert answered.max_score == reference.max_score, "points edited in a test cell must not count"
    assert answered.score == reference.score
    assert stub.score == 0, "a stub whose tests were replaced by `assert True` must still score 0"


def test_grades_csv_has_one_row_per_submission(graded_samples):
    subs, out = graded_samples
    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"student", "assignment", "score", "max_score", "status"} <= set(rows[0])
    assert {(r["student"], r["assignment"]) for r in rows} == set(subs)
    for r in rows:
        assert float(r["score"]) == subs[(r["student"], r["assignment"])].score


def test_feedback_shows_visible_messages_but_no_hidden_test_source(graded_samples):
    subs, out = graded_samples
    for student, aid in subs:
        if not student.startswith("bug-"):
            continue
        page = (out / "feedback" / student / f"{aid}.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))  # the words a student reads
        leaked = [line for line in hidden_lines(aid) if line in text]
        assert not leaked, f"feedback for {student} shows hidden test lines: {leaked[:3]}"
        assert "✓ hidden tests for" in text or "TestFailed" in text
    page = (out / "feedback" / "bug-add-assigns-grad" / "02_value_backward.html").read_text()
    assert "gradients must accumulate with +=" in html.unescape(page), (
        "a hidden test's own message should reach the student"
    )


def hidden_lines(aid):
    """The secret lines of the hidden tests of `aid`, less those of its reference answers: the
    page shows the student's own answers, which may well hold them."""
    source = [SOLUTIONS / f"{aid}.ipynb"]
    return secret_lines(source, [HIDDEN_TESTS]).keys() - secret_lines(source, [SOLUTION]).keys()


def test_manual_points_stay_pending_until_entered_and_survive_a_rerun(graded_samples, tmp_path):
    subs, out = graded_samples
    manual = [(aid, s) for (student, aid), s in subs.items() if student == "reference" and s.pending]
    assert manual, "the capstone's write-up should be graded by hand"
    aid, reference = manual[0]
    shutil.copytree(out / "results", tmp_path / "results")
    writeup = next(name for name, (score, max_score) in reference.tests.items() if name.startswith("writeup"))
    (tmp_path / "manual_grades.csv").write_text(f"student,assignment,grade_id,points\nreference,{aid},{writeup},2\n")
    again = grade.grade(discovery.find_submissions([reference.path], "reference"), tmp_path)[0]
    assert again.score == reference.score + 2
    assert again.pending == reference.pending - reference.tests[writeup][1]
    with open(tmp_path / "grades.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["pending_manual"]) == again.pending


def test_the_bundled_samples_keep_their_grades(graded_samples):
    """tests/sample_grades.csv holds the grades of the bundled samples: a change of grader must not
    change them. Regenerate it only when the points or the tests of a notebook change, on purpose."""
    subs, _ = graded_samples
    with open(Path(__file__).with_name("sample_grades.csv")) as f:
        expected = {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}
    got = {
        key: {"score": f"{s.score:g}", "max_score": f"{s.max_score:g}", "pending_manual": f"{s.pending:g}"}
        for key, s in subs.items()
        if key in expected
    }
    assert set(got) == set(expected)
    changed = {
        key: (got[key], row)
        for key, row in expected.items()
        if got[key] != {k: row[k] for k in ("score", "max_score", "pending_manual")}
    }
    assert not changed, changed


def test_the_samples_grades_csv_is_byte_identical_to_its_pin(graded_samples):
    """The same pin, read as bytes: grades.csv's rows of the bundled samples, in its first five
    columns, are tests/sample_grades.csv exactly (the tampered samples of this batch are not in it)."""
    _, out = graded_samples
    pin = Path(__file__).with_name("sample_grades.csv")
    pinned = {row[0] for row in csv.reader(pin.open(newline=""))}
    written = io.StringIO(newline="")
    with open(out / "grades.csv", newline="") as f:
        csv.writer(written).writerows(row[:5] for row in csv.reader(f) if row[0] in pinned)
    assert written.getvalue().encode() == pin.read_bytes()


@pytest.mark.parametrize("bug", sorted(CLASSIC))
def test_a_visible_test_catches_each_classic_mistake_and_names_its_cause(graded_samples, bug):
    """The student sees these fail before submitting: a visible test loses points, and the message
    the notebook and the feedback show says why."""
    subs, out = graded_samples
    aid, breaks = BUGS[bug].assignment, BUGS[bug].breaks
    visible = {name for name in breaks if not name.endswith("_hidden")}
    assert visible, f"{bug}: the catalogue lists no visible test that catches it"
    assert visible <= _failed(subs[(f"bug-{bug}", aid)])
    page = html.unescape((out / "feedback" / f"bug-{bug}" / f"{aid}.html").read_text())
    assert CLASSIC[bug] in page, f"{bug}: the feedback does not say {CLASSIC[bug]!r}"
