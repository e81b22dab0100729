"""The student repository's workflow: visible tests only, points per exercise in the job summary
and a JSON file kept with the run; it needs no GitHub Classroom (discontinued on 28 August 2026),
and the workflow file passes actionlint and the schema."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder.authoring import samples
from autograder.course import notebooks
from autograder.course.paths import ROOT, SOLUTIONS, assignments, release_path, requirements
from autograder.delivery.release import STUDENT_FILES, release

WORKFLOW = STUDENT_FILES / ".github" / "workflows" / "visible-tests.yml"
BIN = Path(sys.executable).parent


def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def steps():
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def visible_points(aid):
    """Points of the test cells of `aid` that are not hidden, read from the source notebook."""
    cells = notebooks.read(SOLUTIONS / f"{aid}.ipynb").cells
    return sum(
        c.metadata.nbgrader.get("points", 0)
        for c in cells
        if notebooks.is_graded(c) and not notebooks.is_answer(c) and not notebooks.is_hidden_test(c)
    )


def released_assignments():
    return [aid for aid in assignments() if release_path(aid).exists()]


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """Run the workflow's own test command in an untouched and in a filled-in release, side by
    side. Returns {kind: (results JSON, job summary, log)}."""
    tmp = tmp_path_factory.mktemp("visible-tests")
    command = next(s["run"] for s in steps() if s.get("id") == "visible")
    trees = {"untouched": tmp / "untouched", "filled": tmp / "filled"}
    for tree in trees.values():
        release(tree, allow_placeholder=True)  # the committed badges name the placeholder repository
    for aid in released_assignments():
        (trees["filled"] / release_path(aid).relative_to(ROOT)).write_text(json.dumps(samples.filled(aid)))
    procs = {}
    for kind, tree in trees.items():
        files = {"GITHUB_STEP_SUMMARY": tmp / f"{kind}.summary.md"}
        env = {
            **os.environ,
            **{k: str(v) for k, v in files.items()},
            "PATH": str(BIN) + os.pathsep + os.environ["PATH"],
        }
        log = open(tmp / f"{kind}.log", "w")
        # GitHub runs a `run:` step with bash --noprofile --norc -eo pipefail.
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs[kind] = (proc, tree, files, log)
    got = {}
    for kind, (proc, tree, files, log) in procs.items():
        code = proc.wait(timeout=900)
        log.close()
        output = (tmp / f"{kind}.log").read_text()
        assert code == 0, output
        got[kind] = (
            json.loads((tree / _results_file()).read_text()),
            files["GITHUB_STEP_SUMMARY"].read_text(),
            output,
        )
    return got


@pytest.mark.kernel
def test_filled_release_earns_every_visible_point(reported):
    results = reported["filled"][0]
    assert set(results) == {f"ex{aid}" for aid in released_assignments()}
    for aid in released_assignments():
        r = results[f"ex{aid}"]
        failed = [(t["name"], t["message"]) for t in r["tests"] if t["status"] != "pass"]
        assert r["status"] == "pass" and not failed, failed
        assert r["max_score"] == visible_points(aid) > 0
        assert sum(t["score"] for t in r["tests"]) == r["max_score"]


@pytest.mark.kernel
def test_untouched_release_earns_nothing(reported):
    results = reported["untouched"][0]
    for aid in released_assignments():
        r = results[f"ex{aid}"]
        assert r["status"] == "fail"
        assert r["max_score"] == visible_points(aid)
        assert sum(t["score"] for t in r["tests"]) == 0, [t["name"] for t in r["tests"] if t["score"]]


@pytest.mark.kernel
def test_hidden_tests_are_neither_run_nor_counted(reported):
    for r in reported["filled"][0].values():
        assert not any(t["name"].endswith("_hidden") for t in r["tests"])


@pytest.mark.kernel
def test_results_reach_the_job_summary_and_the_log(reported):
    for results, summary, log in reported.values():
        for r in results.values():
            assert r["version"] == 1 and r["status"] in ("pass", "fail", "error")
            assert all({"name", "status", "score", "message"} <= set(t) for t in r["tests"])
        total = sum(r["max_score"] for r in results.values())
        earned = sum(t["score"] for r in results.values() for t in r["tests"])
        assert re.search(rf"^total\s+{earned:g} / {total:g}$", log, re.M), log[-2000:]
        assert f"{earned:g} / {total:g}" in summary and all(f"| {runner} |" in summary for runner in results)


def _results_file():
    command = next(s["run"] for s in steps() if s.get("id") == "visible")
    return re.search(r"--json (\S+)", command).group(1)


def test_the_workflow_needs_no_classroom_and_runs_in_any_copy():
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" in triggers
    (job,) = wf["jobs"].values()
    # A condition on the job (such as skipping Classroom's bot) could keep it from running in a copy.
    assert "if" not in job and not any("if" in s for s in steps())
    assert not [s["uses"] for s in steps() if "classroom" in s.get("uses", "")]
    assert "classroom" not in WORKFLOW.read_text().lower()
    assert wf["permissions"] == {"contents": "read"}
    kept = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert kept["with"]["path"] == _results_file()


def test_both_readmes_say_how_the_workflow_runs_without_classroom():
    student = (STUDENT_FILES / "README.md").read_text()
    course = (ROOT / "README.md").read_text()
    for text in (student, course):
        assert "Actions" in text and "fork" in text.lower() and "template" in text.lower()
        assert "Classroom link" not in text
    assert "enable" in student.lower() and ".github/workflows/visible-tests.yml" in course


def test_workflow_installs_the_course_pins_and_cpu_torch():
    run = "\n".join(s.get("run", "") for s in steps())
    course = requirements()
    assert f"torch{course['torch']}" in run or course["torch"] == ""
    assert "--index-url https://download.pytorch.org/whl/cpu" in run and "graphviz" in run
    student = requirements(STUDENT_FILES / ".github" / "visible-tests" / "requirements.txt")
    for name, pin in student.items():
        assert name in course and course[name] == pin, f"{name}: pinned differently from requirements.txt"


def _tool(name):
    found = shutil.which(name, path=str(BIN) + os.pathsep + os.environ["PATH"])
    assert found, f"{name} is missing: it comes from requirements-dev.txt (make test installs it)"
    return found


def test_workflow_passes_actionlint():
    done = subprocess.run([_tool("actionlint"), "-no-color", str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_matches_the_github_workflow_schema():
    done = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
