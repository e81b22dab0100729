"""The grader survives its workers, and its cached results cannot be forged.

No kernel runs here: a fake worker, a small script speaking the worker protocol (one JSON task a
line on stdin, one JSON row a line on stdout), takes the real worker's place and misbehaves on
cue from the student's name: `crash` dies, `once` dies the first time only, `stall` sleeps
forever (with a child of its own and a grandchild in a session of its own, like a kernel),
`stop` sends itself SIGSTOP, `slow` takes 3 s, `hog` holds 400 MB, `bad` answers a malformed row."""

import csv
import dataclasses
import json
import os
import stat
import sys
import time
import types
from pathlib import Path

import psutil
import pytest
from nbgrader.api import Gradebook

import autograder
from autograder import cli
from autograder.authoring import samples
from autograder.course import nbgrader_setup, paths
from autograder.course.assignment import assignment
from autograder.course.limits import Limits
from autograder.grading import cache, discovery, grade, intake, pool, submission
from autograder.worker import cohort_course
from autograder.worker.result import CellResult, Result, Status

AID = "02_value_backward"
STOPPED = f"error: {pool.WORKER_STOPPED}"

FAKE_WORKER = r"""
import json, os, signal, subprocess, sys, time
out = sys.argv[1]
slot = int(sys.argv[sys.argv.index("--slot") + 1])
aids = sys.argv[sys.argv.index("--assignments") + 1]
log = open(os.path.join(out, "fake.jsonl"), "a")
def note(**kw):
    log.write(json.dumps({"pid": os.getpid(), "slot": slot, **kw}) + "\n")
    log.flush()
if os.environ.get("FAKE_FATAL"):
    print(json.dumps({"fatal": "RuntimeError: no gradebook"}), flush=True)
    sys.exit(1)
if not os.environ.get("FAKE_NO_READY"):
    print(json.dumps({"ready": slot}), flush=True)
print("chatter that is not a row", flush=True)
for line in iter(sys.stdin.readline, ""):
    t = json.loads(line)
    st = t["student"]
    note(student=st, assignment=t["assignment"], task_slot=t.get("slot"), sandbox=t.get("sandbox"),
         feedback=t.get("feedback"), assignments=aids)
    if "crash" in st:
        os._exit(1)
    if "once" in st and not os.path.exists(os.path.join(out, "crashed-" + st)):
        open(os.path.join(out, "crashed-" + st), "w").close()
        os._exit(1)
    if "stall" in st:
        child = subprocess.Popen(["sleep", "1000"])
        kernel = subprocess.Popen(["sleep", "1000"], start_new_session=True)
        note(children=[child.pid, kernel.pid])
        time.sleep(1000)
    if "stop" in st:
        os.kill(os.getpid(), signal.SIGSTOP)
    if "slow" in st:
        time.sleep(3)
    if "hog" in st:
        hog = b"x" * (400 * 2**20)
        note(hogging=True)
        time.sleep(30)
    if "bad" in st:
        print(json.dumps({"student": st, "assignment": t["assignment"], "score": "lots"}), flush=True)
        continue
    print(json.dumps({"student": st, "assignment": t["assignment"], "score": 3.0, "max_score": 5.0,
                      "pending": 2.0, "tests": {"test_a": [3.0, 3.0], "writeup": [0.0, 2.0]},
                      "messages": {"test_a": "a: 3 checks passed"},
                      "manual": ["writeup"], "awaiting": ["writeup"], "status": "graded"}), flush=True)
"""


@pytest.fixture(scope="module")
def fake_worker(tmp_path_factory):
    path = tmp_path_factory.mktemp("fake") / "fake_worker.py"
    path.write_text(FAKE_WORKER)
    return path


@pytest.fixture
def sandbox(monkeypatch):
    """sandbox(reason): make autograder.sandbox.unavailable() return `reason` (None: available)."""

    def set_reason(reason):
        try:
            from autograder import sandbox as module
        except ImportError:  # not written yet
            module = types.ModuleType("autograder.sandbox")
            monkeypatch.setitem(sys.modules, "autograder.sandbox", module)
            monkeypatch.setattr(autograder, "sandbox", module, raising=False)
        monkeypatch.setattr(module, "unavailable", lambda: reason, raising=False)

    set_reason(None)
    return set_reason


@pytest.fixture(autouse=True)
def setting(monkeypatch, tmp_path, fake_worker, sandbox):
    monkeypatch.setattr(pool, "WORKER", [sys.executable, str(fake_worker)])
    monkeypatch.setattr(grade, "WORK", tmp_path / "work")  # the staging folder
    monkeypatch.setattr(cache, "WORK", tmp_path / "work")  # the key
    monkeypatch.setattr(grade, "reference_engine", lambda aid: None)  # never build one here
    monkeypatch.setattr(pool, "STARTUP_SECONDS", 5)
    return tmp_path


def tiny_deadlines(monkeypatch):
    tiny = Limits(cell_timeout=1, wall_seconds=0.5, memory_mb=100)
    monkeypatch.setattr(pool, "assignment", lambda aid: dataclasses.replace(assignment(aid), limits=tiny))
    monkeypatch.setattr(pool, "MARGIN_SECONDS", 0.5)


def cohort(root, students, aid=AID):
    nb = json.dumps(samples.filled(aid))
    for student in students:
        path = root / "in" / student / f"{aid}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(nb)
    return root / "in"


def run(root, out="out", jobs=1, **kw):
    subs = grade.grade(discovery.find_submissions([root / "in"]), root / out, jobs=jobs, **kw)
    assert not [s for s in subs if s.status == "not graded"]
    return {s.student: s for s in subs}


def fake_log(root, out="out"):
    path = root / out / "fake.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def tasks_of(log, student):
    return [e for e in log if e.get("student") == student and "children" not in e]


def gone(pid, within=5):
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_worker_that_finishes_early_takes_the_next_submission(setting):
    root = setting
    cohort(root, ["a-slow", "b", "c", "d", "e", "f", "g"])
    subs = run(root, jobs=2)
    assert all(s.status == "graded" for s in subs.values())
    log = fake_log(root)
    slow = tasks_of(log, "a-slow")[0]
    quick = {e["pid"] for e in log if e["student"] != "a-slow"}
    assert len(quick) == 1 and slow["pid"] not in quick, "the six quick ones all go to the other worker"
    assert [e["student"] for e in log if e["pid"] == slow["pid"]] == ["a-slow"]
    assert {e["slot"] for e in log} == {0, 1} and all(e["task_slot"] == e["slot"] for e in log)


def test_a_dead_worker_is_replaced_and_its_submission_tried_once_more(setting):
    root = setting
    cohort(root, ["a", "b-crash", "c", "d-once", "e"])
    subs = run(root, jobs=1)
    assert subs["b-crash"].status == STOPPED
    assert subs["b-crash"].score == 0 and subs["b-crash"].max_score > 0
    for student in ["a", "c", "d-once", "e"]:
        assert subs[student].status == "graded" and subs[student].score == 3, student
    log = fake_log(root)
    crashed = tasks_of(log, "b-crash")
    assert len(crashed) == 2 and crashed[0]["pid"] != crashed[1]["pid"], "tried once more, on a new worker"
    assert len(tasks_of(log, "d-once")) == 2
    assert len({e["pid"] for e in log}) == 4, "one worker, then a replacement after each of three deaths"
    assert {e["slot"] for e in log} == {0}
    text = (root / "out" / "logs" / "worker-0.log").read_text()
    assert text.count("starting a worker for slot 0") == 4 and "stopped while grading b-crash" in text
    # OUT's nbgrader course: one submission per graded student, the retried one too, after a rerun as well
    for _ in range(2):
        with Gradebook(cohort_course.url(root / "out"), paths.COURSE_ID) as gb:
            assert sorted(s.student.id for s in gb.find_assignment(AID).submissions) == ["a", "c", "d-once", "e"]
        run(root, jobs=1)


def test_a_stalled_or_stopped_worker_is_killed_at_its_deadline(setting, monkeypatch):
    root = setting
    tiny_deadlines(monkeypatch)
    cohort(root, ["a-stall", "b-stop", "c", "d", "e"])
    started = time.monotonic()
    subs = run(root, jobs=2)
    assert time.monotonic() - started < 15
    assert subs["a-stall"].status == subs["b-stop"].status == STOPPED
    assert all(subs[s].status == "graded" for s in "cde")
    log = fake_log(root)
    assert len(tasks_of(log, "a-stall")) == len(tasks_of(log, "b-stop")) == 2
    for e in log:  # every worker, stopped ones included, is gone, and so is all it started
        assert gone(e["pid"]), e
        for child in e.get("children", []):
            assert gone(child), f"{child} started by a stalled worker survived it"
    assert "passed the deadline" in (root / "out" / "logs" / "worker-0.log").read_text()


@pytest.mark.parametrize("limit_by", ["cgroup", "watchdog"])
def test_a_worker_past_its_own_memory_limit_is_killed_and_the_batch_goes_on(setting, monkeypatch, limit_by):
    from autograder import sandbox

    if limit_by == "cgroup" and sandbox.limits_enforced_by() == "watchdog":
        pytest.skip("cannot create cgroups here")
    if limit_by == "watchdog":
        monkeypatch.setattr(sandbox, "confine_worker", lambda pid, mb: None)
    monkeypatch.setattr(pool, "WORKER_MEMORY_MB", 200)
    root = setting
    cohort(root, ["a", "b-hog", "c"])
    subs = run(root, jobs=1)
    assert subs["b-hog"].status == STOPPED
    assert subs["a"].status == subs["c"].status == "graded"
    assert len(tasks_of(fake_log(root), "b-hog")) == 2
    text = (root / "out" / "logs" / "worker-0.log").read_text()
    assert text.count("used more than 200 MB of memory and was killed") >= 2, text


def test_at_level_uid_the_grader_files_are_hidden_before_any_worker_starts(setting, monkeypatch):
    root = setting
    repo = root / "repo"
    (repo / "solutions").mkdir(parents=True)
    (repo / "solutions" / "answers.ipynb").write_text("{}")
    (grade.WORK / "expected").mkdir(parents=True)
    (grade.WORK / "expected" / "reports.json").write_text("{}")
    (root / "out").mkdir()
    (root / "out" / "grades.csv").write_text("")
    for p in [repo, repo / "solutions", grade.WORK, grade.WORK / "expected", root / "out"]:
        p.chmod(0o755)
    monkeypatch.setattr(grade, "ROOT", repo)
    monkeypatch.setenv("MICROGRAD_SANDBOX_LEVEL", "uid")
    before = [p for top in [repo, grade.WORK, root / "out"] for p in [top, *top.rglob("*")]]
    seen = []
    real_start = pool.Workers.start

    def start(self, slot, task):
        seen.extend((p, stat.S_IMODE(p.lstat().st_mode)) for p in before)
        real_start(self, slot, task)

    monkeypatch.setattr(pool.Workers, "start", start)
    cohort(root, ["a"])
    assert run(root)["a"].status == "graded"
    # All it held before is go-rwx, not even o+x; what it writes later is inside these folders.
    assert len(seen) == len(before) >= 7 and not [(p, oct(m)) for p, m in seen if m & 0o077]


def test_a_worker_that_never_says_ready_still_works_and_a_malformed_row_counts_as_a_failure(setting, monkeypatch):
    root = setting
    monkeypatch.setenv("FAKE_NO_READY", "1")
    cohort(root, ["a", "b-crash", "c-bad", "d"])
    subs = run(root, jobs=2)
    assert subs["a"].status == subs["d"].status == "graded"
    assert subs["b-crash"].status == subs["c-bad"].status == STOPPED


def test_a_worker_that_cannot_start_does_not_loop_forever(setting, monkeypatch):
    root = setting
    monkeypatch.setenv("FAKE_FATAL", "1")
    cohort(root, ["a", "b", "c"])
    subs = run(root, jobs=2)
    assert all(s.status == "error: no grading worker could start (see logs/)" for s in subs.values())
    log = (root / "out" / "logs" / "worker-0.log").read_text()
    assert log.count("starting a worker") == 2 and "no gradebook" in log


def test_serial_and_parallel_write_the_same_grades_whoever_grades_what(setting):
    root = setting
    cohort(root, ["a", "b-crash", "c-once", "d", "e", "f"])
    run(root, "serial", jobs=1)
    for f in (root / "serial").glob("crashed-*"):
        f.unlink()
    run(root, "parallel", jobs=3)
    assert (root / "serial" / "grades.csv").read_text() == (root / "parallel" / "grades.csv").read_text()


def test_longest_assignments_are_dealt_first(setting):
    root = setting
    for aid in ["02_value_backward", "01_numerical_gradients", "07_capstone"]:
        cohort(root, ["b", "a"], aid)
    run(root, jobs=1)
    log = fake_log(root)
    assert [(e["assignment"], e["student"]) for e in log][:2] == [("07_capstone", "a"), ("07_capstone", "b")]
    assert log[-1]["assignment"] == "02_value_backward"
    assert log[0]["assignments"] == "01_numerical_gradients,02_value_backward,07_capstone"


def test_a_second_run_reuses_only_results_that_verify(setting):
    root = setting
    cohort(root, ["a", "b", "c", "d", "e", "f"])
    run(root)
    key = root / "work" / "grader.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) >= 32
    results = root / "out" / "results"
    row = lambda s: json.loads((results / f"{s}__{AID}.json").read_text())  # noqa: E731
    a = row("a")
    a["score"] = 5.0  # a better grade, the signature left as it was
    (results / f"a__{AID}.json").write_text(json.dumps(a))
    b = row("c")  # c's genuine row under b's name
    b["student"] = "b"
    (results / f"b__{AID}.json").write_text(json.dumps(b))
    d = row("d")
    del d["sig"]
    (results / f"d__{AID}.json").write_text(json.dumps(d))
    f = row("f")
    f["messages"]["test_a"] = "a: passed, and see http://example.invalid"  # the message a student reads
    (results / f"f__{AID}.json").write_text(json.dumps(f))
    nb = json.loads((root / "in" / "e" / f"{AID}.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "resubmitted"})
    (root / "in" / "e" / f"{AID}.ipynb").write_text(json.dumps(nb))
    (root / "out" / "fake.jsonl").unlink()

    subs = run(root)
    assert sorted(e["student"] for e in fake_log(root)) == ["a", "b", "d", "e", "f"], "c alone is reused"
    for s in "abdf":
        assert subs[s].score == 3 and cache.UNVERIFIED_NOTE in subs[s].notes, s
    assert cache.UNVERIFIED_NOTE not in subs["c"].notes + subs["e"].notes  # reused; a genuine new version
    assert all(s.status == "graded" for s in subs.values())
    assert not any(p.name == "grader.key" for p in (root / "out").rglob("*"))
    for s in "cf":  # the verdicts come back with the scores, reused or graded again
        assert subs[s].result.tests["test_a"] == CellResult(3.0, 3.0, "a: 3 checks passed"), s


def test_a_result_reads_back_as_written_and_a_malformed_row_is_refused():
    result = Result(
        "alice",
        AID,
        Status.GRADED,
        score=1.0,
        max_score=3.0,
        pending=2.0,
        tests={"test_a": CellResult(1.0, 1.0, "✓ a: 2 checks passed"), "writeup": CellResult(0.0, 2.0)},
        manual=["writeup"],
        awaiting=["writeup"],
        seconds=1.5,
        input="abc",
        sandbox=True,
        slot=1,
    )
    assert Result.from_json(json.loads(json.dumps(result.to_json()))) == result
    error = Result("bob", AID, Status.ERROR, "stopped: the notebook used more than 2048 MB of memory", max_score=21.0)
    assert Result.from_json(json.loads(json.dumps(error.to_json()))) == error
    good = result.to_json()
    for bad in [
        {**good, "score": "lots"},
        {**good, "score": True},
        {**good, "status": "error: a reason in the status"},
        {**good, "tests": {"test_a": [1.0]}},
        {**good, "messages": {"test_a": 3}},
        {**good, "manual": "writeup"},
        [good],
    ]:
        with pytest.raises(ValueError):
            Result.from_json(bad)


def test_hand_grades_and_the_late_penalty_count_on_top_of_the_result_which_stays_as_graded():
    tests = {"test_a": CellResult(3.0, 3.0), "writeup": CellResult(0.0, 2.0)}
    result = Result("alice", AID, Status.GRADED, score=3.0, max_score=5.0, pending=2.0, tests=tests)
    result.manual, result.awaiting = ["writeup"], ["writeup"]
    s = submission.Submission("alice", Path("alice.ipynb"), AID)
    assert (s.score, s.max_score, s.pending, s.tests) == (0, 0, 0, {})
    s.take(result)
    s.hand["writeup"], s.late_penalty = 1.5, 0.5
    assert (s.score, s.max_score, s.pending, s.tests["writeup"]) == (4.0, 5.0, 0.0, (1.5, 2.0))
    assert (result.score, result.pending, result.tests["writeup"].score) == (3.0, 2.0, 0.0)


def test_the_status_prints_as_it_always_did():
    s = submission.Submission("alice", Path("alice.ipynb"))
    assert s.status == "not graded"
    s.state = Status.GRADED
    assert s.status == "graded"
    s.state, s.reason = Status.REVIEW, "answer cell neg uses os (+1 more)"
    assert s.status == "review: answer cell neg uses os (+1 more)"
    s.state, s.reason = Status.ERROR, "the file is empty"
    assert s.status == "error: the file is empty"
    s.state, s.reason = Status.SUPERSEDED, "superseded by alice (2).ipynb"
    assert s.status == "error: superseded by alice (2).ipynb"


def test_manual_grades_apply_to_hand_graded_cells_only_clamped_and_never_crash(setting):
    root = setting
    cohort(root, list("abcdefgh"))
    (root / "out").mkdir()
    (root / "out" / "manual_grades.csv").write_text(
        "student,assignment,grade_id,points\n"
        f"a,{AID},writeup,5\n"  # more than the cell is worth
        f"b,{AID},writeup,-1\n"  # less than nothing
        f"c,{AID},test_a,1\n"  # an autograded cell
        f"d,{AID},writeup,abc\n"  # not a number
        f"e,{AID},nosuch,1\n"  # no such cell
        f"f,{AID},writeup\n"  # a short row
        f"g,{AID},writeup,1.5\n"
        f"g,{AID},writeup,1\n"  # entered again: the last counts, once
        f"h,{AID},writeup,nan\n"
        f"zz,{AID},writeup,1\n"
    )  # nobody: ignored
    subs = run(root)
    got = {s: (subs[s].score, subs[s].pending) for s in subs}
    assert got == {
        "a": (5, 0),
        "b": (3, 0),
        "c": (3, 2),
        "d": (3, 2),
        "e": (3, 2),
        "f": (3, 2),
        "g": (4, 0),
        "h": (3, 2),
    }
    assert subs["a"].tests["writeup"] == (2, 2) and subs["c"].tests["test_a"] == (3, 3)
    assert any("clamped to 2" in n for n in subs["a"].notes)
    assert any("clamped to 0" in n for n in subs["b"].notes)
    assert "manual grade for test_a ignored: test_a is graded automatically" in subs["c"].notes
    assert any(n.startswith("manual grade for writeup ignored:") and "not a number" in n for n in subs["d"].notes)
    assert any(n.startswith("manual grade for nosuch ignored:") for n in subs["e"].notes)
    assert any(n.startswith("manual grade for writeup ignored:") for n in subs["f"].notes)
    assert any("not a number" in n for n in subs["h"].notes)
    with open(root / "out" / "grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["a"]["score"] == "5" and rows["a"]["pending_manual"] == "0"
    assert "graded automatically" in rows["c"]["notes"]


def test_without_a_sandbox_nothing_is_graded(setting, sandbox, monkeypatch):
    root = setting
    cohort(root, ["a"])
    sandbox("bubblewrap (bwrap) is not installed")
    with pytest.raises(SystemExit) as refused:
        run(root)
    assert str(refused.value) == (
        "cannot grade: bubblewrap (bwrap) is not installed. Install bubblewrap "
        "(apt-get install bubblewrap) or pass --unsafe-no-sandbox to grade without a sandbox"
    )
    monkeypatch.setitem(sys.modules, "autograder.sandbox", None)  # the module is missing altogether
    monkeypatch.delattr(autograder, "sandbox", raising=False)
    with pytest.raises(SystemExit, match="^cannot grade: .*--unsafe-no-sandbox"):
        run(root)
    assert not fake_log(root) and not (root / "out" / "grades.csv").exists()


def test_unsafe_no_sandbox_grades_and_marks_every_row(setting, sandbox):
    root = setting
    cohort(root, ["a", "b-crash", "c"])
    sandbox("bubblewrap (bwrap) is not installed")
    subs = run(root, jobs=2, unsafe_no_sandbox=True)
    assert all(submission.UNSAFE_NOTE in s.notes for s in subs.values())
    assert all(e["sandbox"] is False for e in fake_log(root))
    with open(root / "out" / "grades.csv") as f:
        assert all("graded WITHOUT a sandbox (--unsafe-no-sandbox)" in r["notes"] for r in csv.DictReader(f))
    again = run(root, unsafe_no_sandbox=True)  # reused, and still marked; only the error graded again
    assert [e["student"] for e in fake_log(root)[4:]] == ["b-crash", "b-crash"]
    assert submission.UNSAFE_NOTE in again["a"].notes and submission.UNSAFE_NOTE in again["b-crash"].notes
    sandbox(None)  # once a sandbox is there, what ran without one is graded again, in it
    (root / "out" / "fake.jsonl").unlink()
    safe = run(root)
    assert {e["student"]: e["sandbox"] for e in fake_log(root)} == {"a": True, "b-crash": True, "c": True}
    assert cache.UNSANDBOXED_CACHE_NOTE in safe["a"].notes and submission.UNSAFE_NOTE not in safe["a"].notes


def test_feedback_pages_are_asked_for_and_a_result_without_its_page_is_graded_again(setting):
    root = setting
    cohort(root, ["a", "b"])
    run(root)
    assert [e["feedback"] for e in fake_log(root)] == [False, False], "no page unless asked for"
    (root / "out" / "fake.jsonl").unlink()
    run(root)
    assert fake_log(root) == [], "both results are reused"
    page = root / "out" / "feedback" / "a" / f"{AID}.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>a's page</html>")
    run(root, feedback=True)
    assert [(e["student"], e["feedback"]) for e in fake_log(root)] == [("b", True)], "a's page exists: reused"


def test_the_grade_command_passes_unsafe_no_sandbox(setting, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(grade, "grade", lambda subs, out, **kw: calls.append(kw) or [])
    cli.main(["grade", str(setting), "--out", str(setting / "out"), "--unsafe-no-sandbox"])
    cli.main(["grade", str(setting), "--out", str(setting / "out"), "--feedback"])
    assert [kw["unsafe_no_sandbox"] for kw in calls] == [True, False]
    assert [kw["feedback"] for kw in calls] == [False, True]


def test_gradebooks_of_one_database_share_one_engine_and_still_close(tmp_path):
    """nbgrader makes a new SQLAlchemy engine (which compiles every query again) for each Gradebook
    it opens; once nbgrader's API is set up, one engine serves each database."""
    from nbgrader.api import Gradebook

    nbgrader_setup.nbgrader_api(tmp_path)
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, "micrograd") as first:
        first.add_student("alice")
    with Gradebook(url, "micrograd") as second:
        assert second.engine is first.engine
        assert [s.id for s in second.students] == ["alice"]
    with Gradebook(f"sqlite:///{tmp_path / 'other.db'}", "micrograd") as other:
        assert other.engine is not first.engine and other.students == []


def test_the_grader_keeps_repaired_notebooks_on_disk_and_drops_superseded_ones(setting):
    inbox = cohort(setting, ["a", "b"])
    old = inbox / "a" / f"Copy of {AID}.ipynb"
    old.write_text(json.dumps(samples.stub(AID)))
    os.utime(old, (1, 1))
    subs = {(s.student, s.path.name): s for s in intake.intake(discovery.find_submissions([inbox]))}
    dropped, kept = subs[("a", old.name)], subs[("a", f"{AID}.ipynb")]
    assert dropped.status.startswith("error: superseded") and dropped.spooled is None and dropped.notebook is None
    for s in [kept, subs[("b", f"{AID}.ipynb")]]:
        assert "notebook" not in vars(s) and s.spooled.is_file() and stat.S_IMODE(s.spooled.stat().st_mode) == 0o600
        assert s.notebook == json.loads(s.spooled.read_text()) and s.notebook["cells"]
    assert len({s.spooled for s in subs.values() if s.spooled}) == 2
