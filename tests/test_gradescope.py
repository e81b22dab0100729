"""The Gradescope zip grades exactly as `python -m autograder grade` does, and shows no hidden test.

The tests marked `kernel` grade or run the autograder; the others only build the zip or map results."""

import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.authoring import samples
from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.notebooks import HIDDEN_TESTS, SOLUTION, secret_lines
from autograder.course.paths import ROOT, SOLUTIONS, release_path
from autograder.delivery.gradescope import mapping, run
from autograder.delivery.gradescope.bundle import CONFIG, bundle
from autograder.grading import discovery, grade, intake
from autograder.grading.intake import released
from autograder.worker.result import CellResult, Result, Status

AID = "02_value_backward"
SAID = {"full": "Sandbox: bubblewrap", "uid": "Sandbox: separate user only (this image does not allow bubblewrap)"}


def _messy():
    """The reference answers in a renamed copy whose cells lost all their metadata, and a cell of
    the student's own that imports numpy: honest, and flagged for review (exercise 2 allows math
    and random only)."""
    nb = samples.filled(AID)
    for cell in nb["cells"]:
        cell["metadata"] = {}
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "source": "import numpy as np"})
    return nb


SUBMISSIONS = {  # student: (file name, notebook)
    "reference": (f"{AID}.ipynb", lambda: samples.filled(AID)),
    "stub": (f"{AID}.ipynb", lambda: samples.stub(AID)),
    # A bug whose grade does not vary: add-assigns-grad passes or fails the diamond of test_backward
    # depending on the order of a set, so two gradings of it can differ.
    "buggy": (f"{AID}.ipynb", lambda: samples.filled(AID, "rsub-wrong-order")),
    "messy": (f"Copy of {AID} (1).ipynb", _messy),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Each submission graded twice: by run_autograder in a Gradescope-like root, and by the
    course's grader in one batch. Returns {student: (results.json, Submission)}."""
    tmp = tmp_path_factory.mktemp("gradescope")
    zip_path = bundle([AID], tmp / "autograder.zip")
    roots = {}
    for student, (name, make) in SUBMISSIONS.items():
        path = tmp / "in" / student / name
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(make()))
        roots[student] = _gradescope_root(zip_path, tmp / f"root-{student}", path)
    subs = grade.grade(discovery.find_submissions([tmp / "in"]), tmp / "out", jobs=2)
    with ThreadPoolExecutor(2) as pool:  # two cores: two submissions at a time
        results = dict(zip(roots, pool.map(_run_autograder, roots.values()), strict=True))
    by_student = {s.student: s for s in subs}
    return {student: (results[student], by_student[student]) for student in SUBMISSIONS}


def _gradescope_root(zip_path, root, submission):
    """A folder laid out as Gradescope's /autograder: source/ (the zip), submission/, results/."""
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    (root / "submission" / submission.name).write_bytes(submission.read_bytes())
    run = root / "run_autograder"  # Gradescope copies it here and runs it from here
    run.write_bytes((root / "source" / "run_autograder").read_bytes())
    run.chmod(0o755)
    return root


def _run_autograder(root):
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    }
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_zip_follows_gradescope_layout(tmp_path):
    zip_path = bundle([AID], tmp_path / "a.zip")
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        setup = z.read("setup.sh").decode()
    assert {
        "setup.sh",
        "run_autograder",
        "requirements.txt",
        "pyproject.toml",
        "autograder/grading/grade.py",
        "autograder/delivery/gradescope/run.py",
        "autograder/delivery/gradescope/__main__.py",
        f"solutions/{AID}.ipynb",
        f"exercises/{AID}.ipynb",
    } <= names
    assert all(f"solutions/{p.name}" in names for p in SOLUTIONS.glob("*.ipynb"))
    assert not any(n.startswith((".venv/", "tests/", ".git/")) or "__pycache__" in n for n in names)
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert setup.startswith("#!/usr/bin/env bash")
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup, "torch must come from the CPU index"
    assert "graphviz" in setup and "python3-venv" in setup and "-r requirements.txt" in setup
    install = [line.split() for line in setup.splitlines() if line.startswith("apt-get install")]
    assert any("bubblewrap" in words for words in install), "setup.sh must install bubblewrap"
    for script in ("setup.sh", "run_autograder"):
        (tmp_path / script).write_text(z_text(zip_path, script))
        done = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert done.returncode == 0, f"{script}: {done.stderr}"
    torch_pin = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("torch"))
    assert torch_pin.split("#")[0].strip() in setup
    scripts = ROOT / "autograder" / "delivery" / "gradescope" / "scripts"
    assert z_text(zip_path, "run_autograder") == (scripts / "run_autograder").read_text()
    assert [line for line in setup.splitlines() if "--index-url" not in line] == [
        line for line in (scripts / "setup.sh").read_text().splitlines() if "@TORCH" not in line
    ]


# What a grading module of the zip may not import: the instructor's tools stay on the instructor's machine.
NOT_SHIPPED = re.compile(
    r"autograder\.(authoring|reports|cli)\b|autograder\.delivery\.(release|site|solutions_release)\b"
)


def test_the_zip_holds_the_grading_layers_only_and_they_import_from_it_alone(tmp_path):
    zip_path = bundle([AID], tmp_path / "a.zip")
    source = tmp_path / "source"
    with zipfile.ZipFile(zip_path) as z:
        modules = sorted(n for n in z.namelist() if n.endswith(".py"))
        z.extractall(source)
    assert {n.split("/")[1] for n in modules if n.count("/") > 1} == {
        "course",
        "worker",
        "sandbox",
        "grading",
        "in_notebook",
        "delivery",
    }
    assert not [n for n in modules if n.startswith(("autograder/authoring/", "autograder/reports/"))]
    assert not {n for n in modules if n.startswith("autograder/delivery/")} - {
        "autograder/delivery/__init__.py",
        *(f"autograder/delivery/gradescope/{p.name}" for p in (ROOT / "autograder/delivery/gradescope").glob("*.py")),
    }
    assert "autograder/cli.py" not in modules and "autograder/__main__.py" not in modules
    assert not [n for n in modules if NOT_SHIPPED.search((source / n).read_text())]
    # The runner and a grading worker import from the unpacked zip alone, not from this checkout
    # (which the venv's editable install would otherwise supply).
    code = (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(f)]; "
        "import autograder.delivery.gradescope.run, autograder.worker.serve; "
        "print('\\n'.join(m.__file__ for n, m in sorted(sys.modules.items()) if n.startswith('autograder')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "autograder/grading/grade.py" in {Path(f).relative_to(source).as_posix() for f in loaded}
    assert all(Path(f).is_relative_to(source) for f in loaded), loaded


def z_text(zip_path, name):
    with zipfile.ZipFile(zip_path) as z:
        return z.read(name).decode()


def test_a_zip_for_several_assignments_names_them(tmp_path):
    zip_path = bundle(["01_numerical_gradients", AID], tmp_path / "b.zip")
    with zipfile.ZipFile(zip_path) as z:
        assert json.loads(z.read(CONFIG))["assignments"] == ["01_numerical_gradients", AID]
    with pytest.raises(ValueError):
        bundle(["99_nope"], tmp_path / "c.zip")


def test_each_notebook_is_taken_in_once_and_its_results_become_results_json(tmp_path, monkeypatch):
    """No kernel: the grading step is replaced by results a worker could have sent."""
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / f"{AID}.ipynb").write_text(json.dumps(samples.filled(AID)))
    (submission / "03_more_ops.ipynb").write_text(release_path("03_more_ops").read_text())
    (submission / "broken.ipynb").write_text('{"cells": [')
    taken_in, recognise = [], intake.recognise
    monkeypatch.setattr(intake, "recognise", lambda path: taken_in.append(path.name) or recognise(path))
    points = {g: p for g, p in assignment(AID).points.items() if g not in assignment(AID).hand_graded}

    def graded_by_a_worker(subs, out):
        tests = {gid: CellResult(p, p, f"✓ {gid}: all checks passed") for gid, p in points.items()}
        tests["test_add"] = CellResult(0.0, points["test_add"], "TestFailed: __add__: a + b should be a Value")
        tests["test_mul"].message = ""  # no verdict: the test says only whether it passed
        for s in subs:
            score = sum(t.score for t in tests.values())
            s.take(Result(s.student, AID, Status.GRADED, score=score, max_score=sum(points.values()), tests=tests))
        return subs

    monkeypatch.setattr(grade, "grade", graded_by_a_worker)
    results = run.graded(submission, [AID])
    assert sorted(taken_in) == ["02_value_backward.ipynb", "03_more_ops.ipynb", "broken.ipynb"]
    total = assignment(AID).autograded_points
    assert results["score"] == total - points["test_add"]
    assert results["output"].splitlines() == [
        f"{AID}: {total - points['test_add']:g} / {total:g} points",
        f"03_more_ops.ipynb is the notebook of 03_more_ops, not of {AID}.ipynb",
        "broken.ipynb: not a readable notebook: broken JSON at line 1",
        mapping.WAIT_FOR_PUBLISHING,
    ]
    tests = {t["name"]: t for t in results["tests"]}
    assert [t["number"] for t in results["tests"]] == [str(n) for n in range(1, len(points) + 1)]
    assert tests["test_add"] == {
        "name": "test_add",
        "score": 0.0,
        "max_score": points["test_add"],
        "status": "failed",
        "output": "TestFailed: __add__: a + b should be a Value",
        "number": tests["test_add"]["number"],
    }
    assert tests["test_mul"]["output"] == "Passed." and tests["test_neg"]["output"] == "✓ test_neg: all checks passed"
    flagged = discovery.find_submissions([submission / f"{AID}.ipynb"], run.STUDENT)[0]
    flagged.take(Result(flagged.student, AID, Status.GRADED, score=3.0, tests={"test_add": CellResult(1, 1)}))
    flagged.assignment, flagged.state, flagged.reason = AID, Status.REVIEW, "answer cell add uses os"
    flagged.review = ["answer cell add uses os", "cell 40 uses exit"]
    flagged.notes += [f"review: {r}" for r in flagged.review]
    review = mapping.report([flagged], [AID], [])
    assert review["score"] == 3.0, "scored as the course's grader scores it: the score stands"
    shown = [t for t in review["tests"] if t.get("visibility") != "hidden"]
    assert (
        shown[0]["output"] == "Passed."
        and review["output"] == f"{AID}: 3 / {total:g} points\n{mapping.WAIT_FOR_PUBLISHING}"
    )
    assert "uses" not in json.dumps([review["output"], shown]), "the reasons are the instructor's"
    hidden = [t for t in review["tests"] if t.get("visibility") == "hidden"]
    assert len(hidden) == 1 and hidden[0]["max_score"] == 0
    assert "answer cell add uses os" in hidden[0]["output"] and "cell 40 uses exit" in hidden[0]["output"]


@pytest.mark.kernel
@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_results_json_scores_equal_the_course_grader(graded, student):
    results, sub = graded[student]
    assert sub.status == ("review: cell 54 imports numpy" if student == "messy" else "graded"), sub.status
    assert results["score"] == sub.score
    shown = [t for t in results["tests"] if t.get("visibility") != "hidden"]
    assert {t["name"]: (t["score"], t["max_score"]) for t in shown} == sub.tests
    assert sum(t["max_score"] for t in results["tests"]) == sub.max_score
    assert all(t["output"] and t["status"] in ("passed", "failed") for t in results["tests"])


@pytest.mark.kernel
def test_scores_are_those_expected(graded):
    assert graded["reference"][0]["score"] == graded["reference"][1].max_score == assignment(AID).autograded_points > 0
    assert graded["stub"][0]["score"] == 0
    assert 0 < graded["buggy"][0]["score"] < graded["buggy"][1].max_score
    assert graded["messy"][0]["score"] == graded["reference"][0]["score"]
    assert "restored the nbgrader metadata" in graded["messy"][0]["output"]


@pytest.mark.kernel
def test_a_flagged_submission_keeps_its_score_and_only_the_instructor_reads_why(graded):
    results, sub = graded["messy"]
    assert sub.review == ["cell 54 imports numpy"]
    assert results["score"] == sub.score == assignment(AID).autograded_points
    shown = json.dumps([results["output"], [t for t in results["tests"] if t.get("visibility") != "hidden"]])
    assert "numpy" not in shown and "review" not in shown
    hidden = [t for t in results["tests"] if t.get("visibility") == "hidden"]
    assert len(hidden) == 1 and "cell 54 imports numpy" in hidden[0]["output"]


@pytest.mark.kernel
def test_messages_are_the_feedback_a_student_reads(graded):
    tests = {t["name"]: t for t in graded["buggy"][0]["tests"]}
    assert tests["test_rsub"]["status"] == tests["test_rsub_hidden"]["status"] == "failed"
    assert "mind the order in __rsub__" in tests["test_rsub"]["output"]
    assert tests["test_rsub_hidden"]["output"] == "TestFailed: __rsub__: 1 - a*a", "the hidden check's own message"
    assert tests["test_add"]["status"] == "passed" and tests["test_add"]["output"] == "✓ __add__: 7 checks passed"
    stub = {t["name"]: t for t in graded["stub"][0]["tests"]}
    assert "NotImplementedError" in stub["test_add"]["output"]


@pytest.mark.kernel
def test_no_hidden_test_source_reaches_results_json(graded):
    source = [SOLUTIONS / f"{AID}.ipynb"]
    hidden = secret_lines(source, [HIDDEN_TESTS]).keys() - secret_lines(source, [SOLUTION]).keys()
    assert hidden
    for student in SUBMISSIONS:
        text = json.dumps(graded[student][0])
        text = text.replace("\\n", "\n").replace('\\"', '"')
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: {leaked[:3]}"


@pytest.mark.kernel
def test_a_notebook_of_another_assignment_gets_zero_with_a_reason(tmp_path):
    zip_path = bundle([AID], tmp_path / "a.zip")
    other = tmp_path / "03_more_ops.ipynb"
    other.write_text(release_path("03_more_ops").read_text())
    results = _run_autograder(_gradescope_root(zip_path, tmp_path / "root", other))
    assert results["score"] == 0 and results["tests"] == []
    assert f"not of {AID}.ipynb" in results["output"]


def _sandbox_lines(results):
    return [line for line in results["output"].splitlines() if line.startswith("Sandbox:")]


@pytest.mark.kernel
def test_results_json_names_the_sandbox_level(graded):
    level = sandbox.best_level()
    assert level == "full"  # bwrap runs on this machine
    for student in SUBMISSIONS:
        assert _sandbox_lines(graded[student][0]) == [SAID[level]], graded[student][0]["output"]


@pytest.mark.kernel
def test_the_autograders_files_are_private_before_grading(tmp_path):
    """After run_autograder: hidden tests, solutions and results are root's alone, and the
    source folder can be crossed (to its venv, on Gradescope) but not listed."""
    zip_path = bundle([AID], tmp_path / "a.zip")
    other = tmp_path / "03_more_ops.ipynb"
    other.write_text(release_path("03_more_ops").read_text())
    root = _gradescope_root(zip_path, tmp_path / "root", other)
    (root / "submission_metadata.json").write_text("{}")
    results = _run_autograder(root)
    assert _sandbox_lines(results) == [SAID[sandbox.best_level()]]
    source = root / "source"
    for path in [
        *source.rglob("*"),
        root / "results",
        *(root / "results").rglob("*"),
        root / "submission_metadata.json",
    ]:
        assert not path.stat().st_mode & 0o077, f"{path} is readable by other users"
    assert stat.S_IMODE(source.stat().st_mode) & 0o077 in (0, 0o001)


def _main_with(root, patch):
    """What run_autograder runs (`python -m autograder.delivery.gradescope ROOT`, from the unpacked
    source, umask 077), after `patch` makes autograder.sandbox see another machine."""
    code = (
        f"import os, sys; os.umask(0o077); from autograder.sandbox import probe as sandbox; {patch}; "
        f"from autograder.delivery.gradescope import run; sys.exit(run.main([{str(root)!r}]))"
    )
    env = {k: v for k, v in os.environ.items() if k != sandbox.LEVEL_VAR}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=root / "source", env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.kernel
def test_without_any_sandbox_nothing_is_graded(tmp_path):
    zip_path = bundle([AID], tmp_path / "a.zip")
    reference = tmp_path / f"{AID}.ipynb"
    reference.write_text(json.dumps(samples.filled(AID)))
    root = _gradescope_root(zip_path, tmp_path / "root", reference)
    done = _main_with(
        root,
        "sandbox._bwrap_unavailable = lambda: 'userns refused by the test'; "
        "sandbox._uid_unavailable = lambda: 'setpriv refused by the test'",
    )
    assert done.returncode != 0
    assert "cannot grade" in done.stderr and "userns refused by the test" in done.stderr
    assert "setpriv refused by the test" in done.stderr
    assert not (root / "results" / "results.json").exists()


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="level 'uid' needs a grader running as root")
def test_where_bwrap_is_refused_a_root_grader_grades_as_a_separate_user(tmp_path, graded):
    """Gradescope's Docker image may refuse bwrap: the same scores at level uid, and it says so."""
    zip_path = bundle([AID], tmp_path / "a.zip")
    buggy = tmp_path / f"{AID}.ipynb"
    buggy.write_text(json.dumps(samples.filled(AID, "rsub-wrong-order")))
    root = _gradescope_root(zip_path, tmp_path / "root", buggy)
    done = _main_with(root, "sandbox._bwrap_unavailable = lambda: 'userns refused by the test'")
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert _sandbox_lines(results) == [SAID["uid"]]
    expected, sub = graded["buggy"]
    assert results["score"] == expected["score"] == sub.score
    assert [(t["name"], t["score"], t["status"]) for t in results["tests"]] == [
        (t["name"], t["score"], t["status"]) for t in expected["tests"]
    ]


@pytest.mark.kernel
def test_hidden_tests_and_the_score_wait_for_publishing(graded):
    """Gradescope shows a submission's total at once: the total less the visible tests' points
    would be the hidden tests' verdict, so a graded result waits for publishing as a whole."""
    hidden = {notebooks.grade_id(c) for c in released(AID) if notebooks.is_hidden_test(c)}
    assert hidden
    for student in ("reference", "buggy"):
        results, _ = graded[student]
        assert results["visibility"] == "after_published"
        assert {t["name"] for t in results["tests"] if t.get("visibility") == "after_published"} == hidden
        assert not [t for t in results["tests"] if t["name"] not in hidden and t.get("visibility") == "after_published"]
        assert mapping.WAIT_FOR_PUBLISHING in results["output"]
