"""The graded cohort is one nbgrader course that formgrader opens, and hand grades given there count.

A Jupyter server with nbgrader's formgrader extension runs in a copy of the samples' OUT folder
(127.0.0.1 only, stopped by the test); scores and a comment are written through formgrader's own
HTTP API, and the next `grade` (which reuses the cached results) shows them."""

import csv
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.grading import discovery, grade
from autograder.worker.cohort_course import autograded, url
from autograder.worker.result import Status, feedback_page

CAPSTONE = "07_capstone"
SERVER_SECONDS = 90


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Formgrader:
    """formgrader's HTTP API, served from `course` by a Jupyter server of its own."""

    def __init__(self, course: Path):
        self.token, port = secrets.token_hex(16), _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(course.parent / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1"]
            + [f"--ServerApp.port={port}", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={course}"]
            + ["--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': True}"],
            cwd=course,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + SERVER_SECONDS
        while True:
            try:
                if self.call("GET", "/formgrader/api/status")["status"]:
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, (course.parent / "server.log").read_text()
            time.sleep(0.5)

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _rows(out):
    with open(out / "grades.csv") as f:
        return {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}


@pytest.mark.kernel
def test_out_is_one_nbgrader_course_of_every_graded_submission(graded_samples):
    subs, out = graded_samples
    graded = [s for s in subs.values() if s.state in (Status.GRADED, Status.REVIEW)]
    assert graded
    assert not [s for s in graded if not autograded(out, s.student, s.assignment).exists()]
    with Gradebook(url(out), "micrograd") as gb:
        recorded = {(s.student.id, a.name): s.score for a in gb.assignments for s in a.submissions}
    assert recorded.keys() == {(s.student, s.assignment) for s in graded}
    # nbgrader's own score is the autograded one (grades.csv adds what only this grader knows)
    assert all(recorded[(s.student, s.assignment)] == pytest.approx(s.result.score) for s in graded if s.result)
    assert "c.HTMLExporter.sanitize_html = True" in (out / "nbgrader_config.py").read_text()


@pytest.mark.kernel
def test_scores_and_comments_given_in_formgrader_count_in_the_next_grade(graded_samples, tmp_path):
    subs, samples_out = graded_samples
    reference = subs[("reference", CAPSTONE)]
    out = tmp_path / "out"
    shutil.copytree(samples_out, out, ignore=shutil.ignore_patterns("logs"))
    assert reference.result is not None
    writeups = sorted(reference.result.awaiting)
    assert len(writeups) >= 2, "the capstone has write-ups graded by hand"
    by_csv, by_formgrader = writeups[0], writeups[1]
    overridden = next(g for g, (score, most) in sorted(reference.tests.items()) if score == most and most > 1)
    # a grade from manual_grades.csv lands in the gradebook as a manual score
    (out / "manual_grades.csv").write_text(f"student,assignment,grade_id,points\nreference,{CAPSTONE},{by_csv},1\n")
    again = grade.grade([s for s in discovery.find_submissions([reference.path], "reference")], out, feedback=True)[0]
    assert again.score == reference.score + 1

    server = Formgrader(out)
    try:
        notebooks = server.call("GET", f"/formgrader/api/submitted_notebooks/{CAPSTONE}/{CAPSTONE}")
        mine = next(nb for nb in notebooks if nb["student"] == "reference")
        grades = {g["name"]: g for g in server.call("GET", f"/formgrader/api/grades?submission_id={mine['id']}")}
        assert grades[by_csv]["manual_score"] == 1  # the CSV's grade, as formgrader shows it
        server.call("PUT", f"/formgrader/api/grade/{grades[by_formgrader]['id']}", {"manual_score": 2})
        server.call("PUT", f"/formgrader/api/grade/{grades[by_csv]['id']}", {"manual_score": 0.5})  # edited later
        server.call("PUT", f"/formgrader/api/grade/{grades[overridden]['id']}", {"manual_score": 1})
        comments = {c["name"]: c for c in server.call("GET", f"/formgrader/api/comments?submission_id={mine['id']}")}
        server.call("PUT", f"/formgrader/api/comment/{comments[by_formgrader]['id']}", {"manual_comment": "Clear ROC."})
    finally:
        server.stop()

    final = grade.grade([s for s in discovery.find_submissions([reference.path], "reference")], out, feedback=True)[0]
    most = reference.tests[overridden][1]
    assert final.score == reference.score + 2 + 0.5 + (1 - most)
    assert final.tests[by_formgrader][0] == 2 and final.tests[overridden] == (1, most)
    notes = "; ".join(final.notes)
    assert f"{by_formgrader}: 2 by hand (formgrader)" in notes
    assert f"{by_csv}: formgrader's 0.5 counts, entered after manual_grades.csv's 1" in notes
    assert f"{overridden}: autograded {most:g}, overridden by hand to 1 (formgrader)" in notes
    assert f"comment on {by_formgrader}: Clear ROC." in notes
    row = _rows(out)[("reference", CAPSTONE)]
    assert float(row["score"]) == final.score and "Clear ROC." in row["notes"]
    assert "Clear ROC." in feedback_page(out, "reference", CAPSTONE).read_text()
