"""Grade a cohort: intake, nbgrader workers fed one submission at a time, one writer for grades.csv.

The parent process deals the work: each worker (`python -m autograder.worker OUT --slot K
--assignments A1,A2`) reads one JSON task a line on stdin and answers one JSON row a line on
stdout; it gets its next task only when it has answered the last, so a worker that finishes
early takes the next submission. A worker that dies, stalls or passes its task's deadline is
killed with everything it started and replaced; the submission it was grading is tried once
more, then marked as an error, and the batch goes on. Only this process writes results.

Results in OUT/results/ are reused by a later run only if their HMAC, made with a key kept
outside OUT (.work/grader.key), verifies for the submission and tests as they are now.
"""

import csv
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
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from autograder.course import ROOT, SOLUTIONS, WORK, assignments, limits
from autograder.engine import needs_engine, reference_engine, saves_engine
from autograder.intake import assignment_from_name, intake
from autograder.review import review

COLUMNS = ["student", "assignment", "score", "max_score", "pending_manual", "status", "notes"]

# The worker program; tests put a fake one in its place. Its arguments follow: OUT --slot K --assignments A,B
WORKER = [sys.executable, "-m", "autograder.worker"]
MARGIN_SECONDS = 60  # on top of an assignment's wall time: kernel start-up, nbgrader's own work
STARTUP_SECONDS = 300  # a new worker first builds its nbgrader course (until it says it is ready)
EXIT_SECONDS = 30  # a worker told there is no more work must be gone by then
TRIES = 2  # a submission that stops two workers is marked as an error

WORKER_STOPPED = "error: the grading worker stopped while grading this submission (see logs/)"
UNSAFE_NOTE = "graded WITHOUT a sandbox (--unsafe-no-sandbox)"
UNVERIFIED_NOTE = "cached result did not verify: graded again"
UNSANDBOXED_CACHE_NOTE = "cached result was graded without a sandbox: graded again"


@dataclass
class Submission:
    student: str
    path: Path
    assignment: str = None
    score: float = 0.0
    max_score: float = 0.0
    pending: float = 0.0
    status: str = "not graded"
    notes: list = field(default_factory=list)
    tests: dict = field(default_factory=dict)  # grade_id -> (score, max_score)


def find_submissions(paths, student=None):
    """Submissions under `paths`: files, or folders laid out STUDENT/NOTEBOOK.ipynb or
    STUDENT/ASSIGNMENT/NOTEBOOK.ipynb (nbgrader's own layout). Every file counts, so that a
    student who handed in something that is not a notebook is told so."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = f.relative_to(path)
                if len(rel.parts) >= 2 and not any(part.startswith(".") for part in rel.parts):
                    found.append(Submission(rel.parts[0], f))
        else:
            found.append(Submission(student or _student_from_name(path), path))
    return found


def _student_from_name(path):
    """`alice_02_value_backward.ipynb` -> alice; a bare notebook name -> its folder's name."""
    aid = assignment_from_name(path, assignments())
    rest = re.sub(r"^copy of |\s*\(\d+\)$", "", path.stem.lower())
    if aid:
        rest = rest.replace(aid, "").replace(aid.split("_", 1)[-1], "")
    rest = re.sub(r"[\s_\-]+", " ", rest).strip()
    return rest.replace(" ", "_") if rest and not rest.isdigit() else path.parent.name


def grade(submissions, out, jobs=1, force=False, progress=False, unsafe_no_sandbox=False):
    """Grade `submissions`; write grades.csv, feedback/ and results/ into `out`; return them.

    Refuses (SystemExit) when student code cannot be sandboxed, unless `unsafe_no_sandbox`."""
    sandboxed = _sandbox_or_refuse(unsafe_no_sandbox)
    out = Path(out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    key = _key()
    staging = Path(tempfile.mkdtemp(prefix="staged-", dir=WORK))
    try:
        todo = _intake_all(submissions, staging, out, force, key, sandboxed)
        if todo:
            _run_workers(todo, out, jobs, progress, key, sandboxed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _apply_manual_grades(submissions, out / "manual_grades.csv")
    _flag_for_review(submissions)
    write_csv(submissions, out / "grades.csv")
    return submissions


def _flag_for_review(submissions):
    """Mark graded answers whose code reaches for the interpreter or the grader: the score
    stands, and the instructor reads the code."""
    for s in submissions:
        if getattr(s, "_notebook", None) is None or s.status.startswith("error: superseded"):
            continue
        reasons = review(s._notebook, s.assignment)
        s.notes += [f"review: {r}" for r in reasons]
        if reasons and s.status == "graded":  # an error status says more, and stays
            s.status = f"review: {reasons[0]}" + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")


def _sandbox_or_refuse(unsafe_no_sandbox):
    """True when kernels will be sandboxed; False when the caller explicitly accepted none."""
    try:
        from autograder import sandbox

        reason = sandbox.unavailable()
    except ImportError as e:
        reason = f"the sandbox module is missing ({e})"
    if reason is None:
        return True
    if not unsafe_no_sandbox:
        raise SystemExit(
            f"cannot grade: {reason}. Install bubblewrap (apt-get install bubblewrap) "
            "or pass --unsafe-no-sandbox to grade without a sandbox"
        )
    print(f"warning: {reason}; grading WITHOUT a sandbox (--unsafe-no-sandbox)", file=sys.stderr)
    return False


def _intake_all(submissions, staging, out, force, key, sandboxed):
    """Recognise and repair each file; reuse verified results; return the tasks still to grade."""
    newest = {}
    for s in submissions:
        if s.path.suffix != ".ipynb":
            s.status = f"error: {s.path.name} is not a notebook (.ipynb)"
            continue
        got = intake(s.path)
        s.notes += got.notes
        if got.error:
            s.status = f"error: {got.error}"
            continue
        s.assignment = got.assignment
        s._notebook = got.notebook
        key_ = (s.student, s.assignment)
        if key_ in newest:  # two files for one assignment: the newest counts
            old = newest[key_]
            keep, drop = (s, old) if s.path.stat().st_mtime >= old.path.stat().st_mtime else (old, s)
            drop.status = f"error: superseded by {keep.path.name}"
            newest[key_] = keep
        else:
            newest[key_] = s
    tasks = []
    for s in newest.values():
        s._input = _digest(json.dumps(s._notebook, sort_keys=True).encode() + _tests_bytes(s.assignment))
        if not force and _reuse(out, s, key, sandboxed):
            continue
        staged = staging / s.student / f"{s.assignment}.ipynb"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(json.dumps(s._notebook))
        engine = reference_engine(s.assignment)
        tasks.append(
            (
                s,
                {
                    "student": s.student,
                    "assignment": s.assignment,
                    "notebook": str(staged),
                    "engine": str(engine) if engine else None,
                    "sandbox": sandboxed,
                },
            )
        )
    return tasks


def _tests_bytes(aid):
    """What a result depends on besides the submission: the assignment's source notebook (its
    hidden tests) and the solutions its reference engine is built from."""
    chain = [a for a in assignments() if a < aid and saves_engine(a)] if needs_engine(aid) else []
    return b"".join((SOLUTIONS / f"{a}.ipynb").read_bytes() for a in [aid, *chain])


def _reuse(out, s, key, sandboxed):
    """Fill `s` from its cached result if that verifies; otherwise say why it is graded again."""
    cached = _result_path(out, s)
    if not cached.exists():
        return False
    try:
        row = json.loads(cached.read_text())
        valid = (
            isinstance(row, dict)
            and isinstance(row.get("sig"), str)
            and isinstance(row.get("input"), str)
            and hmac.compare_digest(row["sig"], _sign(row, key, row["input"]))
        )
    except (OSError, ValueError, TypeError):
        valid = False
    if not valid or (row.get("student"), row.get("assignment")) != (s.student, s.assignment):
        s.notes.append(UNVERIFIED_NOTE)
        return False
    if row["input"] != s._input or row.get("status") != "graded":
        return False  # a genuine result of another version of the submission or the tests
    if sandboxed and row.get("sandbox") is not True:
        s.notes.append(UNSANDBOXED_CACHE_NOTE)
        return False
    _fill(s, row)
    return True


def _longest_first(todo):
    """Tasks in the order they are dealt: the assignments allowed the longest wall time first,
    later assignments (the capstone) first among equals, then by student."""
    wall = {aid: limits(aid)["wall_seconds"] for aid in {s.assignment for s, _ in todo}}
    order = sorted(todo, key=lambda st: st[0].student)
    order.sort(key=lambda st: st[0].assignment, reverse=True)
    order.sort(key=lambda st: wall[st[0].assignment], reverse=True)
    return order


class _Slot:
    """One worker place (0..jobs-1) and the worker that holds it now."""

    def __init__(self, k):
        self.k, self.proc, self.log, self.gen = k, None, None, 0
        self.task, self.deadline, self.ready, self.fatal = None, math.inf, False, None
        self.setup_failures = 0


def _run_workers(todo, out, jobs, progress, key, sandboxed):
    """Deal the tasks one at a time to `jobs` worker processes; this process alone writes results."""
    subs = {(s.student, s.assignment): s for s, _ in todo}
    waiting = deque(t for _, t in _longest_first(todo))
    aids = sorted({s.assignment for s, _ in todo})
    budget = {aid: limits(aid)["wall_seconds"] + MARGIN_SECONDS for aid in aids}
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    (out / "logs").mkdir(exist_ok=True)
    events = queue.Queue()
    slots = [_Slot(k) for k in range(max(1, min(jobs, len(todo))))]
    tries = Counter()
    count = {"done": 0, "failed": 0}

    def finish(task, row, slot=None):
        s = subs[(task["student"], task["assignment"])]
        row.update(input=s._input, sandbox=sandboxed, slot=slot.k if slot else None)
        row["sig"] = _sign(row, key, s._input)
        path = _result_path(out, s)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(row))
        partial.replace(path)
        _fill(s, row)
        count["done"] += 1
        count["failed"] += s.status != "graded"
        if progress:
            _progress(count["done"], len(todo), count["failed"])

    def say(slot, text):
        slot.log.write(f"[grader {time.strftime('%H:%M:%S')}] {text}\n")
        slot.log.flush()

    def start(slot, task):
        slot.log = open(out / "logs" / f"worker-{slot.k}.log", "a")
        say(slot, f"starting a worker for slot {slot.k}")
        slot.gen += 1
        slot.ready, slot.fatal = False, None
        slot.proc = subprocess.Popen(
            WORKER + [str(out), "--slot", str(slot.k), "--assignments", ",".join(aids)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=slot.log,
            text=True,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(slot.proc, slot.k, slot.gen, events), daemon=True).start()
        give(slot, task)

    def give(slot, task):
        slot.task = task
        slot.deadline = time.monotonic() + budget[task["assignment"]] + (0 if slot.ready else STARTUP_SECONDS)
        try:
            slot.proc.stdin.write(json.dumps({**task, "slot": slot.k}) + "\n")
            slot.proc.stdin.flush()
        except OSError:
            pass  # it has died: the end of its output says so

    def give_next(slot):
        if waiting:
            give(slot, waiting.popleft())
            return
        slot.task, slot.deadline = None, time.monotonic() + EXIT_SECONDS
        try:
            slot.proc.stdin.close()  # no more work: the worker exits at the end of its input
        except OSError:
            pass

    def retire(slot, kill):
        if kill:
            _kill_tree(slot.proc)
        try:
            slot.proc.stdin.close()
        except OSError:
            pass
        try:
            slot.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_tree(slot.proc)
            slot.proc.wait()
        say(slot, f"worker pid {slot.proc.pid} ended with exit code {slot.proc.returncode}")
        slot.log.close()
        slot.proc, slot.log, slot.task, slot.deadline = None, None, None, math.inf
        slot.gen += 1  # whatever the old worker still had in its pipe is ignored

    def failed(slot, why):
        """The worker of `slot` died or stalled: kill it, then retry or give up its task."""
        task, fatal = slot.task, slot.fatal
        say(
            slot,
            f"worker pid {slot.proc.pid} {why}"
            + (f" while grading {task['student']}/{task['assignment']}" if task else ""),
        )
        retire(slot, kill=True)
        if task is None:
            next_task = waiting.popleft() if waiting else None
        elif fatal is not None:  # it could not even set up: not the submission's fault
            slot.setup_failures += 1
            waiting.appendleft(task)
            if slot.setup_failures >= TRIES:
                return  # this slot gives up; the others (if any) take the rest
            next_task = waiting.popleft()
        else:
            key_ = (task["student"], task["assignment"])
            tries[key_] += 1
            if tries[key_] < TRIES:
                next_task = task  # tried once more, on the replacement
            else:
                finish(task, _error_row(task, WORKER_STOPPED), slot)
                next_task = waiting.popleft() if waiting else None
        if next_task is not None:
            start(slot, next_task)

    def heard(slot, line):
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            say(slot, f"ignored output: {line.rstrip()[:200]}")
            return
        if "ready" in msg or "fatal" in msg:
            if "fatal" in msg:
                slot.fatal = str(msg["fatal"])
                say(slot, f"worker could not start: {slot.fatal}")
            else:
                slot.ready, slot.setup_failures = True, 0
                if slot.task is not None:
                    slot.deadline = time.monotonic() + budget[slot.task["assignment"]]
            return
        task = slot.task
        if task is None or (msg.get("student"), msg.get("assignment")) != (task["student"], task["assignment"]):
            failed(slot, f"answered for a submission it was not grading: {line.rstrip()[:200]}")
            return
        problem = _row_problem(msg)
        if problem:
            failed(slot, f"sent a malformed row ({problem}): {line.rstrip()[:200]}")
            return
        slot.ready, slot.setup_failures = True, 0
        finish(task, msg, slot)
        give_next(slot)

    try:
        for slot in slots:
            start(slot, waiting.popleft())
        while any(slot.proc for slot in slots):
            wait = min(slot.deadline for slot in slots) - time.monotonic()
            try:
                k, gen, line = events.get(timeout=min(max(wait, 0), 1.0))
            except queue.Empty:
                pass
            else:
                slot = slots[k]
                if gen == slot.gen and slot.proc is not None:
                    if line is not None:
                        heard(slot, line)
                    elif slot.task is None and slot.fatal is None:
                        retire(slot, kill=False)  # done, and gone as asked
                        if waiting:  # put back by a slot whose workers could not start
                            start(slot, waiting.popleft())
                    else:
                        failed(slot, "stopped")
            now = time.monotonic()
            for slot in slots:
                if slot.proc is not None and now > slot.deadline:
                    if slot.task is None:
                        say(slot, "worker did not exit when told to")
                        retire(slot, kill=True)
                    else:
                        failed(slot, "passed the deadline of its task and was killed")
    finally:
        for slot in slots:  # on an interruption too: no worker outlives the grader
            if slot.proc is not None:
                retire(slot, kill=True)
    for task in waiting:  # every worker failed to start
        finish(task, _error_row(task, "error: no grading worker could start (see logs/)"))
    if progress:
        print(file=sys.stderr)


def _row_problem(row):
    """Why a worker's result row cannot be used, or None."""
    number = (int, float)
    if not all(isinstance(row.get(k), number) and not isinstance(row.get(k), bool) for k in ("score", "max_score")):
        return "score and max_score must be numbers"
    if not isinstance(row.get("pending", 0.0), number) or not isinstance(row.get("status"), str):
        return "pending must be a number and status a string"
    tests = row.get("tests")
    if not isinstance(tests, dict) or not all(
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, number) for x in v) for v in tests.values()
    ):
        return "tests must map grade ids to [score, max_score]"
    if not all(isinstance(row.get(k, []), list) for k in ("manual", "awaiting", "notes")):
        return "manual, awaiting and notes must be lists"
    return None


def _pump(proc, k, gen, events):
    for line in proc.stdout:
        events.put((k, gen, line))
    events.put((k, gen, None))


def _kill_tree(proc):
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


def _error_row(task, status):
    aid = task["assignment"]
    return {
        "student": task["student"],
        "assignment": aid,
        "score": 0.0,
        "max_score": _max_score(aid),
        "pending": 0.0,
        "tests": {},
        "status": status,
    }


def _max_score(aid):
    cells = json.loads((SOLUTIONS / f"{aid}.ipynb").read_text())["cells"]
    meta = [c.get("metadata", {}).get("nbgrader", {}) for c in cells]
    return float(sum(m.get("points", 0) for m in meta if m.get("grade") or m.get("task")))


def _progress(done, total, failed):
    bar = "#" * (30 * done // total)
    print(f"\r[{bar:<30}] {done}/{total} graded, {failed} with errors", end="", file=sys.stderr, flush=True)


def _fill(s, row):
    s.score, s.max_score, s.pending = row["score"], row["max_score"], row.get("pending", 0.0)
    s.status, s.tests = row["status"], {k: tuple(v) for k, v in row["tests"].items()}
    s._manual = set(row.get("manual", []))
    s._awaiting = set(row.get("awaiting", s._manual))
    s.notes += [str(n) for n in row.get("notes", [])]
    if row.get("sandbox") is False:
        s.notes.append(UNSAFE_NOTE)


def _result_path(out, s):
    return out / "results" / f"{s.student}__{s.assignment}.json"


def _digest(data):
    return hashlib.sha256(data).hexdigest()[:20]


def _key():
    """The secret that signs cached results; it lives in .work/, never in OUT."""
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
    key = path.read_bytes()
    if len(key) < 32:
        raise SystemExit(f"{path} is damaged: delete it (every cached result is then graded again)")
    return key


def _sign(row, key, input_digest):
    """HMAC-SHA256 of a result row (all but its signature) bound to the digest of its inputs."""
    body = json.dumps({k: v for k, v in row.items() if k != "sig"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, f"{input_digest}\n{body}".encode(), hashlib.sha256).hexdigest()


def _apply_manual_grades(submissions, path):
    """Points an instructor entered by hand (student,assignment,grade_id,points), for the cells
    graded by hand only, clamped to 0..the cell's points. A row that cannot be used is skipped
    with a note on its submission, never a crash."""
    if not path.exists():
        return
    try:
        with open(path, newline="") as f:
            entries = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        print(f"warning: {path} could not be read ({e}); no manual grades applied", file=sys.stderr)
        return
    by_key = {}
    for s in submissions:
        if s.assignment and not s.status.startswith("error: superseded"):
            by_key[(s.student, s.assignment)] = s
    applied = set()
    for line, e in enumerate(entries, start=2):
        student, aid, gid, points = ((e.get(k) or "").strip() for k in ("student", "assignment", "grade_id", "points"))
        s = by_key.get((student, aid))
        if s is None:
            print(
                f"warning: {path.name} line {line}: no graded submission of {aid or '?'} by {student or '?'}; ignored",
                file=sys.stderr,
            )
            continue
        what = f"manual grade for {gid or f'line {line}'} ignored"
        if None in e or any(e.get(k) is None for k in ("student", "assignment", "grade_id", "points")):
            s.notes.append(
                f"{what}: line {line} of {path.name} does not have the 4 columns student,assignment,grade_id,points"
            )
            continue
        if s.status != "graded":
            s.notes.append(f"{what}: the submission was not graded ({s.status})")
            continue
        if gid not in s.tests:
            s.notes.append(f"{what}: {aid} has no graded cell {gid!r}")
            continue
        if gid not in getattr(s, "_manual", ()):
            s.notes.append(f"{what}: {gid} is graded automatically")
            continue
        try:
            given = float(points)
        except ValueError:
            given = math.nan
        if not math.isfinite(given):
            s.notes.append(f"{what}: {points!r} is not a number")
            continue
        current, most = s.tests[gid]
        value = min(max(given, 0.0), float(most))
        if value != given:
            s.notes.append(f"manual grade for {gid} of {given:g} clamped to {value:g} (the cell is worth {most:g})")
        s.score += value - (current or 0.0)
        if gid in s._awaiting and (s.student, aid, gid) not in applied:
            s.pending = max(0.0, s.pending - most)
        applied.add((s.student, aid, gid))
        s.tests[gid] = (value, most)


def write_csv(submissions, path):
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


def table(submissions):
    """The score table printed after grading."""
    rows = [("student", "assignment", "score", "status")]
    for s in sorted(submissions, key=lambda s: (s.student, s.assignment or "", str(s.path))):
        pending = f" (+{s.pending:g} to grade by hand)" if s.pending else ""
        rows.append((s.student, s.assignment or s.path.name, f"{s.score:g} / {s.max_score:g}{pending}", s.status))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    flagged = [s for s in submissions if s.status.startswith("review: ")]
    if flagged:
        lines += ["", f"To review ({len(flagged)}): the score stands; read the answer cells named"]
        lines += [
            f"  {s.student} {s.assignment}: {', '.join(n[8:] for n in s.notes if n.startswith('review: '))}"
            for s in sorted(flagged, key=lambda s: (s.student, s.assignment))
        ]
    return "\n".join(lines)
