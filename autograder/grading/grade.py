"""Grade a cohort: intake, nbgrader workers fed one submission at a time, one writer for grades.csv.

The parent process deals the work: each worker (`python -m autograder.worker OUT --slot K
--assignments A1,A2`) reads one JSON task a line on stdin and answers one JSON result a line on
stdout; it gets its next task only when it has answered the last, so a worker that finishes
early takes the next submission. A worker that dies, stalls or passes its task's deadline is
killed with everything it started and replaced; the submission it was grading is tried once
more, then marked as an error, and the batch goes on. Only this process writes results.

Results in OUT/results/ are reused by a later run only if their HMAC, made with a key kept
outside OUT (.work/grader.key), verifies for the submission and tests as they are now.
"""

import atexit
import csv
import functools
import hashlib
import hmac
import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil  # type: ignore[import-untyped]  # psutil ships no type hints, and types-psutil is not installed

from autograder.course.assignment import assignment

# A worker's own memory (WORKER_MEMORY_MB; its kernels have limits of their own): a cgroup where one
# can be made, and this process's watchdog in any case.
from autograder.course.limits import EXIT_SECONDS, MARGIN_SECONDS, STARTUP_SECONDS, TRIES, WORKER_MEMORY_MB
from autograder.course.paths import ROOT, WORK
from autograder.course.reference import reference_engine
from autograder.grading.intake import intake
from autograder.grading.late import TIMESTAMP, Policy
from autograder.grading.late import apply as apply_late_penalties
from autograder.grading.review import review
from autograder.worker import cohort_course
from autograder.worker.result import Result, Status, Task, feedback_page

COLUMNS = ["student", "assignment", "score", "max_score", "pending_manual", "status", "notes"]

# The worker program; tests put a fake one in its place. Its arguments follow: OUT --slot K --assignments A,B
WORKER = [sys.executable, "-m", "autograder.worker"]

WORKER_STOPPED = "the grading worker stopped while grading this submission (see logs/)"
NO_WORKER = "no grading worker could start (see logs/)"
UNSAFE_NOTE = "graded WITHOUT a sandbox (--unsafe-no-sandbox)"
UNVERIFIED_NOTE = "cached result did not verify: graded again"
UNSANDBOXED_CACHE_NOTE = "cached result was graded without a sandbox: graded again"


@dataclass
class Submission:
    student: str
    path: Path
    assignment: str | None = None
    score: float = 0.0
    max_score: float = 0.0
    pending: float = 0.0
    state: Status = Status.NOT_GRADED
    reason: str = ""  # of an error, a review or a superseded file
    notes: list[str] = field(default_factory=list)
    tests: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade_id -> (score, max_score)
    spooled: Path | None = None  # the notebook as intake repaired it, kept on disk (see `notebook`)
    digest: str | None = None  # of the repaired notebook and of the tests it is graded with
    result: Result | None = None  # as the worker graded it, before manual grades
    review: list[str] = field(default_factory=list)  # why the instructor should read its answers

    @property
    def notebook(self) -> dict[str, Any] | None:
        """The notebook as intake repaired it. It is read from disk at each use, so that the grader
        holds one notebook at a time, never the cohort's."""
        return json.loads(self.spooled.read_bytes()) if self.spooled else None

    @notebook.setter
    def notebook(self, nb: dict[str, Any] | None) -> None:
        if self.spooled:
            self.spooled.unlink(missing_ok=True)
            self.spooled = None
        if nb is not None:
            fd, path = tempfile.mkstemp(suffix=".ipynb", dir=_spool())  # mode 0600
            with os.fdopen(fd, "w") as f:
                json.dump(nb, f)
            self.spooled = Path(path)

    @property
    def status(self) -> str:
        """The status as grades.csv prints it."""
        label = Status.ERROR.value if self.state is Status.SUPERSEDED else self.state.value
        return f"{label}: {self.reason}" if self.reason else label


def _spool() -> str:
    """This process's folder of repaired notebooks (mode 0700), removed at exit."""
    folder = _spool_folder()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


@functools.cache
def _spool_folder() -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="intake-", dir=WORK)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def find_submissions(
    paths: Iterable[str | Path], student: str | None = None, roster: str | Path | None = None
) -> list[Submission]:
    """Submissions under `paths`: folders laid out STUDENT/NOTEBOOK.ipynb or
    STUDENT/ASSIGNMENT/NOTEBOOK.ipynb (nbgrader's own layout), and loose files (given as paths,
    or lying directly in a given folder). Every file counts, so that a student who handed in
    something that is not a notebook is told so.

    A loose file's name is the student's choice, so it never names the student: all loose files
    are `student`'s, or each is named by the LMS prefix `name_userid_` of a download, looked up
    in `roster` (see `read_roster`). Anything else is refused (SystemExit saying which files)."""
    found, loose = [], []
    for path in map(Path, paths):
        if not path.is_dir():
            loose.append(path)
            continue
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f.relative_to(path)
            if any(part.startswith(".") for part in rel.parts) or f.name == TIMESTAMP:
                continue
            if len(rel.parts) >= 2:
                found.append(Submission(rel.parts[0], f))
            else:
                loose.append(f)
    if loose:
        found += _owned(loose, student, roster)
    elif student or roster:
        raise SystemExit("--student and --roster name the owner of loose files; these folders have none")
    return found


def _owned(loose: list[Path], student: str | None, roster: str | Path | None) -> list[Submission]:
    """Loose files as submissions of `student`, or of the roster's students their LMS prefix names."""
    if student and roster:
        raise SystemExit("give --student or --roster, not both")
    if student:
        return [Submission(_safe_id(student, "--student"), path) for path in loose]
    names = ", ".join(p.name for p in loose[:5]) + (f" and {len(loose) - 5} more" if len(loose) > 5 else "")
    if roster is None:
        raise SystemExit(
            f"whose work is {names}? A file's name is its student's choice, so it never names the student: "
            "give --student ID (every loose file is that student's), or --roster ROSTER.csv for files "
            "downloaded from an LMS (named name_userid_...), or lay the files out as STUDENT/NOTEBOOK.ipynb"
        )
    by_lms = {r["lms_id"]: r["student"] for r in read_roster(roster) if r.get("lms_id")}
    subs, unknown = [], []
    for path in loose:
        lms_id = lms_user_id(path.name)
        if lms_id in by_lms:
            subs.append(Submission(by_lms[lms_id], path))
        else:
            unknown.append(f"{path.name} ({'user ' + lms_id + ' is not in the roster' if lms_id else 'no LMS prefix'})")
    if unknown:
        raise SystemExit(f"cannot tell whose work these files are, so nothing was graded: {'; '.join(unknown)}")
    return subs


# An LMS download's prefix: Canvas `name_userid_submissionid_file` (`name_LATE_userid_...` when
# late), Moodle `Full Name_userid_assignsubmission_file_...`. Only the start of a name is read,
# which the LMS writes; the student's own file name follows it.
_LMS_PREFIX = re.compile(r"^[^_]+_(?:late_)?(\d+)_(?:\d+|assignsubmission)_", re.IGNORECASE)
ROSTER_COLUMNS = ("student", "lms_id", "name")


def lms_user_id(filename: str) -> str | None:
    """The LMS user id of a downloaded file's `name_userid_` prefix, or None."""
    m = _LMS_PREFIX.match(filename)
    return m.group(1) if m else None


def read_roster(path: str | Path) -> list[dict[str, str]]:
    """The roster: a CSV file with the columns student (the id grades.csv uses), lms_id (the user
    id of the LMS, in its download names and its grade export) and name, one row a student.
    SystemExit, saying why, for a roster that could attribute a file to two students."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SystemExit(f"cannot read the roster {path}: {e}") from None
    if not rows or "student" not in rows[0] or "lms_id" not in rows[0]:
        raise SystemExit(f"the roster {path} needs a header row with the columns {','.join(ROSTER_COLUMNS)}")
    rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in rows]
    for column in ("student", "lms_id"):
        seen = Counter(r[column] for r in rows if r.get(column))
        twice = sorted(v for v, n in seen.items() if n > 1)
        if twice:
            raise SystemExit(f"the roster {path} lists {column} {', '.join(twice)} more than once")
    for r in rows:
        _safe_id(r.get("student", ""), f"the roster {path}")
    return rows


def _safe_id(student: str, where: str) -> str:
    """`student`, if it can name a folder of OUT/feedback/; else SystemExit naming `where`."""
    if not student or student.startswith(".") or "/" in student or "\\" in student:
        raise SystemExit(f"{where}: {student!r} cannot be a student id (empty, or a path)")
    return student


def grade(
    submissions: list[Submission],
    out: str | Path,
    jobs: int = 1,
    force: bool = False,
    progress: bool = False,
    unsafe_no_sandbox: bool = False,
    feedback: bool = False,
    late: Policy | None = None,
    key_file: str | Path | None = None,
) -> list[Submission]:
    """Grade `submissions`; write grades.csv and results/ into `out`, and with `feedback` one
    feedback page per graded notebook into `out`/feedback/; return them. `late`: the due dates
    and penalty that grades.csv applies (the cached results stay as graded). `key_file`: the
    key that signs the results (default .work/grader.key), one that shards of a cohort share.

    Refuses (SystemExit) when student code cannot be sandboxed, unless `unsafe_no_sandbox`."""
    return grade_taken_in(take_in(submissions), out, jobs, force, progress, unsafe_no_sandbox, feedback, late, key_file)


def take_in(submissions: list[Submission]) -> list[Submission]:
    """Recognise and repair each file (or say why it cannot be graded); of two files for one
    assignment, the newest counts. Returns `submissions`."""
    newest: dict[tuple[str, str], Submission] = {}
    for s in submissions:
        try:
            aid = _recognise(s)
        except Exception as e:  # one file's surprise is its own error row, never the batch's end
            s.state, s.reason, s.notebook, aid = Status.ERROR, f"intake failed ({type(e).__name__})", None, None
        if aid:
            _keep_newest(newest, (s.student, aid), s)
    return submissions


def _recognise(s: Submission) -> str | None:
    """The assignment of `s`, its notebook repaired; None, with the error, if it has none."""
    if s.path.suffix != ".ipynb":
        s.state, s.reason = Status.ERROR, f"{s.path.name} is not a notebook (.ipynb)"
        return None
    got = intake(s.path)
    s.notes += got.notes
    if got.error:
        s.state, s.reason = Status.ERROR, got.error
        return None
    s.assignment, s.notebook = got.assignment, got.notebook
    return s.assignment


def _keep_newest(newest: dict[tuple[str, str], Submission], key: tuple[str, str], s: Submission) -> None:
    old = newest.setdefault(key, s)
    if old is not s:
        keep, drop = (s, old) if s.path.stat().st_mtime >= old.path.stat().st_mtime else (old, s)
        drop.state, drop.reason = Status.SUPERSEDED, f"superseded by {keep.path.name}"
        drop.notebook = None  # never graded nor reviewed: not kept
        newest[key] = keep


def grade_taken_in(
    submissions: list[Submission],
    out: str | Path,
    jobs: int = 1,
    force: bool = False,
    progress: bool = False,
    unsafe_no_sandbox: bool = False,
    feedback: bool = False,
    late: Policy | None = None,
    key_file: str | Path | None = None,
) -> list[Submission]:
    """`grade` for submissions that went through `take_in`."""
    sandboxed = _sandbox_or_refuse(unsafe_no_sandbox)
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if sandboxed:
        _hide_grader_files(out)
    cohort_course.prepare(out, sorted({s.assignment for s in submissions if s.assignment}))
    key = _key(key_file)
    staging = Path(tempfile.mkdtemp(prefix="staged-", dir=WORK))
    try:
        todo = _tasks(submissions, staging, out, force, key, sandboxed, feedback)
        if todo:
            _Workers(todo, out, jobs, progress, key, sandboxed).run()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _apply_manual_grades(submissions, out, feedback)
    _flag_for_review(submissions)
    if late:
        apply_late_penalties(submissions, late)
    write_csv(submissions, out / "grades.csv")
    return submissions


def _flag_for_review(submissions: list[Submission]) -> None:
    """Mark graded answers whose code reaches for the interpreter or the grader: the score
    stands, and the instructor reads the code."""
    for s in submissions:
        if s.notebook is None or s.assignment is None or s.state is Status.SUPERSEDED:
            continue
        try:
            s.review = review(s.notebook, s.assignment)
        except Exception as e:  # code the review cannot read is code to read by hand
            s.review = [f"the review could not read its cells ({type(e).__name__})"]
        s.notes += [f"review: {r}" for r in s.review]
        if s.review and s.state is Status.GRADED:  # an error status says more, and stays
            more = len(s.review) - 1
            s.state, s.reason = Status.REVIEW, s.review[0] + (f" (+{more} more)" if more else "")


def _hide_grader_files(out: Path) -> None:
    """A level "uid" kernel reads what any user may read: before one runs, the repository (hidden
    tests, solutions), .work/ (the reference's reports, the key) and `out` become root's alone."""
    from autograder import sandbox

    if sandbox.default_level() == "uid":
        sandbox.hide_from_kernels(ROOT, WORK, out)


def _sandbox_or_refuse(unsafe_no_sandbox: bool) -> bool:
    """True when kernels will be sandboxed; False when the caller explicitly accepted none."""
    try:
        from autograder import sandbox

        reason = sandbox.unavailable()
    except ImportError as e:
        reason = f"the sandbox module is missing ({e})"
    if reason is None:
        weaker = sandbox.seccomp_unavailable()
        if weaker:
            print(f"warning: {weaker}; kernels run without the seccomp filter", file=sys.stderr)
        return True
    if not unsafe_no_sandbox:
        raise SystemExit(
            f"cannot grade: {reason}. Install bubblewrap (apt-get install bubblewrap) "
            "or pass --unsafe-no-sandbox to grade without a sandbox"
        )
    print(f"warning: {reason}; grading WITHOUT a sandbox (--unsafe-no-sandbox)", file=sys.stderr)
    return False


def _tasks(
    submissions: list[Submission], staging: Path, out: Path, force: bool, key: bytes, sandboxed: bool, feedback: bool
) -> list[tuple[Submission, Task]]:
    """Reuse verified results (with their feedback pages, when those are asked for); stage the
    others and return their tasks."""
    tasks = []
    for s in submissions:
        if s.state is not Status.NOT_GRADED or s.assignment is None or s.notebook is None:
            continue  # not a notebook of the course, or superseded
        try:
            task = _task(s, staging, out, force, key, sandboxed, feedback)
        except Exception as e:  # this file's own error row; the others are graded
            s.state, s.reason = Status.ERROR, f"could not be staged for grading ({type(e).__name__})"
            continue
        if task is not None:
            tasks.append((s, task))
    return tasks


def _task(
    s: Submission, staging: Path, out: Path, force: bool, key: bytes, sandboxed: bool, feedback: bool
) -> Task | None:
    """The task that grades `s`, staged; None when a verified earlier result is reused."""
    assert s.assignment is not None
    s.digest = _digest(json.dumps(s.notebook, sort_keys=True).encode() + assignment(s.assignment).tests_bytes)
    if (
        not force
        and (not feedback or feedback_page(out, s.student, s.assignment).exists())
        and _reuse(out, s, key, sandboxed)
    ):
        return None
    staged = staging / s.student / f"{s.assignment}.ipynb"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(json.dumps(s.notebook))
    engine = reference_engine(s.assignment)
    engine_path = str(engine) if engine else None
    return Task(s.student, s.assignment, str(staged), engine_path, sandboxed, feedback=feedback)


def _reuse(out: Path, s: Submission, key: bytes, sandboxed: bool) -> bool:
    """Fill `s` from its cached result if that verifies; otherwise say why it is graded again."""
    cached = _result_path(out, s)
    if not cached.exists():
        return False
    row = _verified(cached, key)
    if row is None or _about(row) != (s.student, s.assignment):
        s.notes.append(UNVERIFIED_NOTE)
        return False
    try:
        result = Result.from_json(row)
    except ValueError:
        return False  # genuine, but written by an older grader
    if result.input != s.digest or result.status is not Status.GRADED:
        return False  # a genuine result of another version of the submission or the tests
    if sandboxed and result.sandbox is not True:
        s.notes.append(UNSANDBOXED_CACHE_NOTE)
        return False
    _fill(s, result)
    cohort_course.record(out, result)  # an OUT folder graded before it had a gradebook gets one
    return True


def _longest_first(todo: list[tuple[Submission, Task]]) -> list[Task]:
    """Tasks in the order they are dealt: the assignments allowed the longest wall time first,
    later assignments (the capstone) first among equals, then by student."""
    wall = {aid: assignment(aid).limits.wall_seconds for aid in {t.assignment for _, t in todo}}
    order = sorted((t for _, t in todo), key=lambda t: t.student)
    order.sort(key=lambda t: t.assignment, reverse=True)
    order.sort(key=lambda t: wall[t.assignment], reverse=True)
    return order


@dataclass
class _Slot:
    """One worker place (0..jobs-1) and the worker that holds it now."""

    k: int
    proc: "subprocess.Popen[str] | None" = None
    log: TextIO | None = None
    gen: int = 0  # lines from an older worker of this slot are ignored
    task: Task | None = None
    deadline: float = math.inf
    ready: bool = False
    fatal: str | None = None  # why the worker could not set up
    setup_failures: int = 0
    cgroup: Any = None  # the worker's memory cgroup (sandbox._Cgroups), if one could be made


class _Workers:
    """Deals the tasks one at a time to `jobs` worker processes; this process alone writes results."""

    def __init__(
        self, todo: list[tuple[Submission, Task]], out: Path, jobs: int, progress: bool, key: bytes, sandboxed: bool
    ) -> None:
        self.subs = {(s.student, s.assignment): s for s, _ in todo}
        self.waiting = deque(_longest_first(todo))
        self.aids = sorted({t.assignment for _, t in todo})
        self.budget = {aid: assignment(aid).limits.wall_seconds + MARGIN_SECONDS for aid in self.aids}
        self.out, self.progress, self.key, self.sandboxed = out, progress, key, sandboxed
        self.events: queue.Queue[tuple[int, int, str | None]] = queue.Queue()
        self.slots = [_Slot(k) for k in range(max(1, min(jobs, len(todo))))]
        self.tries: Counter[tuple[str, str]] = Counter()
        self.total, self.done, self.failed = len(todo), 0, 0

    def run(self) -> None:
        (self.out / "logs").mkdir(exist_ok=True)
        try:
            for slot in self.slots:
                self.start(slot, self.waiting.popleft())
            while any(slot.proc for slot in self.slots):
                self.next_event()
                self.enforce_deadlines()
        finally:
            for slot in self.slots:  # on an interruption too: no worker outlives the grader
                if slot.proc is not None:
                    self.retire(slot, kill=True)
        for task in self.waiting:  # every worker failed to start
            self.finish(task, _error_result(task, NO_WORKER))
        if self.progress:
            print(file=sys.stderr)

    def next_event(self) -> None:
        """Wait up to a second, or the nearest deadline, for a line from a worker, and act on it."""
        wait = min(slot.deadline for slot in self.slots) - time.monotonic()
        try:
            k, gen, line = self.events.get(timeout=min(max(wait, 0), 1.0))
        except queue.Empty:
            return
        slot = self.slots[k]
        if gen != slot.gen or slot.proc is None:
            return
        if line is not None:
            self.heard(slot, line)
        elif slot.task is None and slot.fatal is None:
            self.retire(slot, kill=False)  # done, and gone as asked
            if self.waiting:  # put back by a slot whose workers could not start
                self.start(slot, self.waiting.popleft())
        else:
            self.fail(slot, "stopped")

    def enforce_deadlines(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is not None and _rss_mb(slot.proc) > WORKER_MEMORY_MB:
                self.fail(slot, f"used more than {WORKER_MEMORY_MB} MB of memory and was killed")
            if slot.proc is None or now <= slot.deadline:
                continue
            if slot.task is None:
                self.say(slot, "worker did not exit when told to")
                self.retire(slot, kill=True)
            else:
                self.fail(slot, "passed the deadline of its task and was killed")

    def finish(self, task: Task, result: Result, slot: _Slot | None = None) -> None:
        s = self.subs[(task.student, task.assignment)]
        result.input, result.sandbox, result.slot = s.digest, self.sandboxed, slot.k if slot else None
        _save(result, _result_path(self.out, s), self.key)
        cohort_course.record(self.out, result)
        _fill(s, result)
        self.done += 1
        self.failed += s.state is not Status.GRADED
        if self.progress:
            _progress(self.done, self.total, self.failed)

    def say(self, slot: _Slot, text: str) -> None:
        assert slot.log is not None
        slot.log.write(f"[grader {time.strftime('%H:%M:%S')}] {text}\n")
        slot.log.flush()

    def start(self, slot: _Slot, task: Task) -> None:
        slot.log = open(self.out / "logs" / f"worker-{slot.k}.log", "a")
        self.say(slot, f"starting a worker for slot {slot.k}")
        slot.gen += 1
        slot.ready, slot.fatal = False, None
        slot.proc = subprocess.Popen(
            WORKER + [str(self.out), "--slot", str(slot.k), "--assignments", ",".join(self.aids)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=slot.log,
            text=True,
            env=_worker_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        if self.sandboxed:
            from autograder import sandbox

            slot.cgroup = sandbox.confine_worker(slot.proc.pid, WORKER_MEMORY_MB)
        threading.Thread(target=_pump, args=(slot.proc, slot.k, slot.gen, self.events), daemon=True).start()
        self.give(slot, task)

    def give(self, slot: _Slot, task: Task) -> None:
        assert slot.proc is not None and slot.proc.stdin is not None
        slot.task = task
        slot.deadline = time.monotonic() + self.budget[task.assignment] + (0 if slot.ready else STARTUP_SECONDS)
        task.slot = slot.k
        try:
            slot.proc.stdin.write(json.dumps(task.to_json()) + "\n")
            slot.proc.stdin.flush()
        except OSError:
            pass  # it has died: the end of its output says so

    def give_next(self, slot: _Slot) -> None:
        assert slot.proc is not None and slot.proc.stdin is not None
        if self.waiting:
            self.give(slot, self.waiting.popleft())
            return
        slot.task, slot.deadline = None, time.monotonic() + EXIT_SECONDS
        try:
            slot.proc.stdin.close()  # no more work: the worker exits at the end of its input
        except OSError:
            pass

    def retire(self, slot: _Slot, kill: bool) -> None:
        proc = slot.proc
        assert proc is not None and proc.stdin is not None and slot.log is not None
        if kill:
            _kill_tree(proc)
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            proc.wait()
        self.say(slot, f"worker pid {proc.pid} ended with exit code {proc.returncode}")
        if slot.cgroup is not None:
            if slot.cgroup.oom_killed():
                self.say(slot, f"worker pid {proc.pid} used more than {WORKER_MEMORY_MB} MB of memory and was killed")
            slot.cgroup.remove()
            slot.cgroup = None
        slot.log.close()
        slot.proc, slot.log, slot.task, slot.deadline = None, None, None, math.inf
        slot.gen += 1  # whatever the old worker still had in its pipe is ignored

    def fail(self, slot: _Slot, why: str) -> None:
        """The worker of `slot` died or stalled: kill it, then retry or give up its task."""
        assert slot.proc is not None
        task, fatal = slot.task, slot.fatal
        grading = f" while grading {task.student}/{task.assignment}" if task else ""
        self.say(slot, f"worker pid {slot.proc.pid} {why}{grading}")
        self.retire(slot, kill=True)
        next_task = self.after_failure(slot, task, fatal)
        if next_task is not None:
            self.start(slot, next_task)

    def after_failure(self, slot: _Slot, task: Task | None, fatal: str | None) -> Task | None:
        """The task the replacement worker of `slot` takes, if one is started."""
        if task is None:
            return self.waiting.popleft() if self.waiting else None
        if fatal is not None:  # it could not even set up: not the submission's fault
            slot.setup_failures += 1
            self.waiting.appendleft(task)
            # After TRIES, this slot gives up; the others (if any) take the rest.
            return self.waiting.popleft() if slot.setup_failures < TRIES else None
        self.tries[(task.student, task.assignment)] += 1
        if self.tries[(task.student, task.assignment)] < TRIES:
            return task  # tried once more, on the replacement
        self.finish(task, _error_result(task, WORKER_STOPPED), slot)
        return self.waiting.popleft() if self.waiting else None

    def heard(self, slot: _Slot, line: str) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.say(slot, f"ignored output: {line.rstrip()[:200]}")
        elif "ready" in msg or "fatal" in msg:
            self.started(slot, msg)
        elif slot.task is None or _about(msg) != (slot.task.student, slot.task.assignment):
            self.fail(slot, f"answered for a submission it was not grading: {line.rstrip()[:200]}")
        else:
            self.answered(slot, slot.task, msg, line)

    def started(self, slot: _Slot, msg: dict[str, Any]) -> None:
        if "fatal" in msg:
            slot.fatal = str(msg["fatal"])
            self.say(slot, f"worker could not start: {slot.fatal}")
            return
        slot.ready, slot.setup_failures = True, 0
        if slot.task is not None:
            slot.deadline = time.monotonic() + self.budget[slot.task.assignment]

    def answered(self, slot: _Slot, task: Task, msg: dict[str, Any], line: str) -> None:
        try:
            result = Result.from_json(msg)
        except ValueError as e:
            self.fail(slot, f"sent a malformed row ({e}): {line.rstrip()[:200]}")
            return
        slot.ready, slot.setup_failures = True, 0
        self.finish(task, result, slot)
        self.give_next(slot)


def _about(row: dict[str, Any]) -> tuple[Any, Any]:
    """The (student, assignment) a result row or cached result says it is about."""
    return row.get("student"), row.get("assignment")


def _worker_env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


def _pump(proc: "subprocess.Popen[str]", k: int, gen: int, events: "queue.Queue[tuple[int, int, str | None]]") -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        events.put((k, gen, line))
    events.put((k, gen, None))


def _rss_mb(proc: "subprocess.Popen[str]") -> float:
    """The worker's own resident memory, its kernels not counted (they have limits of their own)."""
    try:
        return float(psutil.Process(proc.pid).memory_info().rss / 2**20)
    except psutil.Error:
        return 0.0


def _kill_tree(proc: "subprocess.Popen[str]") -> None:
    """SIGKILL a worker, its process group and whatever else it started (kernels run in sessions
    of their own). Done before the worker is reaped, so its pid and group cannot be reused yet."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for kill in [lambda: os.killpg(proc.pid, signal.SIGKILL), *(c.kill for c in children)]:
        try:
            kill()
        except (OSError, psutil.Error):
            pass


def _error_result(task: Task, reason: str) -> Result:
    return Result(task.student, task.assignment, Status.ERROR, reason, max_score=assignment(task.assignment).max_score)


def _progress(done: int, total: int, failed: int) -> None:
    bar = "#" * (30 * done // total)
    print(f"\r[{bar:<30}] {done}/{total} graded, {failed} with errors", end="", file=sys.stderr, flush=True)


def _fill(s: Submission, result: Result) -> None:
    s.score, s.max_score, s.pending = result.score, result.max_score, result.pending
    s.state, s.reason = result.status, result.reason
    s.tests = {gid: (t.score, t.max_score) for gid, t in result.tests.items()}
    s.notes += result.notes
    if result.sandbox is False:
        s.notes.append(UNSAFE_NOTE)
    s.result = result


def _result_path(out: Path, s: Submission) -> Path:
    return out / "results" / f"{s.student}__{s.assignment}.json"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def _key(given: str | Path | None = None) -> bytes:
    """The secret that signs cached results; it lives in .work/, never in OUT, unless `given`
    names another file (the key shards of one cohort share), which is then never created."""
    if given is not None:
        # A kernel at level uid reads what any user may read: a shared key must be its owner's alone.
        if Path(given).exists() and Path(given).stat().st_mode & 0o077:
            raise SystemExit(f"the key {given} can be read by other users: chmod 600 {given}")
        return _read_key(Path(given), f"it needs at least 32 bytes (head -c 32 /dev/urandom > {given})")
    path = WORK / "grader.key"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix="grader.key.", dir=WORK)  # mode 0600
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        try:
            os.link(tmp, path)  # atomic: a concurrent grader never reads half a key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return _read_key(path, "delete it (every cached result is then graded again)")


def _read_key(path: Path, remedy: str) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as e:
        raise SystemExit(f"cannot read the key {path}: {e.strerror}") from None
    if len(key) < 32:
        raise SystemExit(f"{path} is damaged or not a key: {remedy}")
    return key


def _sign(row: dict[str, Any], key: bytes, input_digest: str) -> str:
    """HMAC-SHA256 of a result row (all but its signature) bound to the digest of its inputs."""
    body = json.dumps({k: v for k, v in row.items() if k != "sig"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, f"{input_digest}\n{body}".encode(), hashlib.sha256).hexdigest()


def _save(result: Result, path: Path, key: bytes) -> None:
    """Write `result` to `path`, signed."""
    row = result.to_json()
    row["sig"] = _sign(row, key, result.input or "")
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(row))
    partial.replace(path)


def _verified(path: Path, key: bytes) -> dict[str, Any] | None:
    """The row saved at `path` if its signature verifies, else None."""
    try:
        row = json.loads(path.read_text())
        valid = (
            isinstance(row, dict)
            and isinstance(row.get("sig"), str)
            and isinstance(row.get("input"), str)
            and hmac.compare_digest(row["sig"], _sign(row, key, row["input"]))
        )
    except (OSError, ValueError, TypeError):
        return None
    return row if valid else None


def _apply_manual_grades(submissions: list[Submission], out: Path, feedback: bool = False) -> None:
    """Hand grades: the manual scores and comments of OUT's gradebook (given in formgrader, on
    any cell), and the rows of manual_grades.csv (student,assignment,grade_id,points, for the
    cells graded by hand only), clamped to 0..the cell's points. A row of the CSV file is written
    into the gradebook as a manual score; a later formgrader edit of that score wins. A row that
    cannot be used is skipped with a note on its submission, never a crash."""
    path = out / "manual_grades.csv"
    by_key = {(s.student, s.assignment): s for s in submissions if s.assignment and s.state is not Status.SUPERSEDED}
    from_csv: dict[tuple[str, str], dict[str, float]] = {}
    for line, entry in enumerate(_manual_grades(path), start=2):
        student, aid, gid = ((entry.get(k) or "").strip() for k in ("student", "assignment", "grade_id"))
        s = by_key.get((student, aid))
        if s is None:
            print(
                f"warning: {path.name} line {line}: no graded submission of {aid or '?'} by {student or '?'}; ignored",
                file=sys.stderr,
            )
            continue
        points = _manual_points(s, entry, line, path.name)
        if isinstance(points, str):
            s.notes.append(points)
        else:
            from_csv.setdefault((student, aid), {})[gid] = points  # entered again: the last row counts
    written = _read_json(out / MANUAL_WRITTEN)
    for (student, aid), s in by_key.items():
        if s.state is Status.GRADED and s.result is not None:
            _hand_grades(s, out, from_csv.get((student, aid), {}), written, feedback)
    if written:
        (out / MANUAL_WRITTEN).write_text(json.dumps(written, indent=1, sort_keys=True))


def _hand_grades(s: Submission, out: Path, from_csv: dict[str, float], written: dict[str, Any], feedback: bool) -> None:
    """Apply to `s` the hand grades of OUT's gradebook and `from_csv` ({grade_id: points} of
    manual_grades.csv), writing the latter into the gradebook (recorded in `written`)."""
    assert s.assignment is not None
    hand = cohort_course.hand_grades(out, s.student, s.assignment)
    scores = {gid: (v, "formgrader") for gid, (v, _) in hand.items() if v is not None}
    for gid, given in from_csv.items():
        key = f"{s.student}/{s.assignment}/{gid}"
        before = written.get(key)  # [the CSV's value, the score it wrote] when last applied
        now = scores.get(gid, (None, ""))[0]
        if before and now is not None and now != before[1] and given == before[0]:
            s.notes.append(f"{gid}: formgrader's {now:g} counts, entered after manual_grades.csv's {given:g}")
            continue
        value = min(max(given, 0.0), float(s.tests[gid][1]))
        if cohort_course.set_hand_score(out, s.student, s.assignment, gid, value):
            written[key] = [given, value]
        scores[gid] = (given, "manual_grades.csv")
    for gid, (given, source) in sorted(scores.items()):
        if gid in s.tests and given is not None:
            _set_manual_grade(s, gid, given, source)
    s.notes += [f"comment on {gid}: {text}" for gid, (_, text) in sorted(hand.items()) if text]
    if feedback and hand:  # the page the worker made has neither
        cohort_course.feedback(out, s.student, s.assignment)


MANUAL_WRITTEN = "manual_grades.applied.json"  # what manual_grades.csv last wrote into the gradebook


def _read_json(path: Path) -> dict[str, Any]:
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}


def _manual_grades(path: Path) -> list[dict[str | None, Any]]:
    """The rows of manual_grades.csv; none if it is missing or unreadable."""
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        print(f"warning: {path} could not be read ({e}); no manual grades applied", file=sys.stderr)
        return []


def _manual_points(s: Submission, entry: dict[str | None, Any], line: int, name: str) -> float | str:
    """The points an entry of manual_grades.csv gives a hand-graded cell of `s`, or the note
    saying why the entry is ignored."""
    gid, points = ((entry.get(k) or "").strip() for k in ("grade_id", "points"))
    what = f"manual grade for {gid or f'line {line}'} ignored"
    if None in entry or any(entry.get(k) is None for k in ("student", "assignment", "grade_id", "points")):
        return f"{what}: line {line} of {name} does not have the 4 columns student,assignment,grade_id,points"
    if s.state is not Status.GRADED or s.result is None:
        return f"{what}: the submission was not graded ({s.status})"
    if gid not in s.tests:
        return f"{what}: {s.assignment} has no graded cell {gid!r}"
    if gid not in s.result.manual:
        return f"{what}: {gid} is graded automatically"
    try:
        given = float(points)
    except ValueError:
        given = math.nan
    return given if math.isfinite(given) else f"{what}: {points!r} is not a number"


def _set_manual_grade(s: Submission, gid: str, given: float, source: str) -> None:
    """Give cell `gid` of `s` `given` points by hand, clamped to what it is worth; notes say
    where the grade comes from, and what an autograded cell had scored."""
    assert s.result is not None
    current, most = s.tests[gid]
    value = min(max(given, 0.0), float(most))
    if value != given:
        s.notes.append(f"manual grade for {gid} of {given:g} clamped to {value:g} (the cell is worth {most:g})")
    s.score += value - (current or 0.0)
    if gid in s.result.awaiting:
        s.pending = max(0.0, s.pending - most)
    if gid in s.result.manual:
        s.notes.append(f"{gid}: {value:g} by hand ({source})")
    else:
        s.notes.append(f"{gid}: autograded {current or 0:g}, overridden by hand to {value:g} ({source})")
    s.tests[gid] = (value, most)


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
