"""Speed goals, measured in one run on this machine (`make bench`); never a timed unit test.

One cohort (default 20 students x the 6 exercises, and the capstone for the same students),
mixing reference answers, untouched stubs and catalogued bugs, with names that interleave them,
is graded three ways:

1. plain `nbgrader autograde`, nbgrader's own command with its own configuration, on the same
   submissions: the baseline;
2. plain nbclient execution of each notebook in its graded form (hidden tests and locked cells
   restored), in the grader's sandbox, one after the other: the cost of running the code at all;
3. `python -m autograder grade` at --jobs 1 and --jobs 2 (no feedback pages), then a few
   notebooks again with --feedback, for the price of a page.

Goals: 300 students x 6 exercises in under 30 minutes at --jobs 2, and the capstone for 300 in
under 30 minutes, both projected from the measured cohort; a speed-up of at least 1.8x from
--jobs 1 to --jobs 2 on the exercises; grading at most 1.3x plain execution; at --jobs 2 at most
half the time of plain `nbgrader autograde`; each worker (with its kernel) under 1.5 GB.

4. one Gradescope submission by run_autograder in a simulated /autograder prepared as setup.sh
   prepares it: goal, within 1.5x of grading the same notebook locally
   (`tests/benchmark.py --gradescope-only` runs this part alone).

Then the cost model: the core-seconds of a notebook of each assignment, the grader's own memory
for each submission in flight (intake and dealing of 200 and of 2,000 one-cell submissions to a
stand-in worker that answers at once: the parent must not grow by 50 MB or more), and a
projection for --project students on --cores cores in --shards shards. `--cost-model-only`
runs that part alone, with the core-seconds given by --exercise-seconds and --capstone-seconds.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import nbformat
import psutil

from autograder.authoring import samples
from autograder.authoring.bugs import BUGS
from autograder.authoring.lessons import run_alone
from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.paths import ENGINE_FILE, LESSONS, SOLUTIONS, assignments
from autograder.course.reference import reference_engine
from autograder.grading import cache, discovery, grade, pool
from autograder.sandbox import Sandbox
from autograder.worker import execute

GB = 2**30


def timed(fn, *args, **kw):
    start = time.perf_counter()
    value = fn(*args, **kw)
    return time.perf_counter() - start, value


# -- the cohort --------------------------------------------------------------------------------


def write_cohort(root: Path, students: int, aids: list[str]) -> list[tuple[str, str, str]]:
    """root/sNNN/AID.ipynb for every student and assignment: a reference, a stub or a catalogued
    bug, in turn by student number, so that sorted names interleave them. Returns (student, aid, kind)."""
    made = []
    for aid in aids:
        bugs = [name for name, b in BUGS.items() if b.assignment == aid]
        for k in range(students):
            kind = ("reference", "stub", "bug")[k % 3]
            if kind == "bug" and bugs:
                bug = bugs[(k // 3) % len(bugs)]
                nb, kind = samples.filled(aid, bug), f"bug {bug}"
            else:
                nb = samples.stub(aid) if kind == "stub" else samples.filled(aid)
            path = root / f"s{k:03d}" / f"{aid}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(nb))
            made.append((f"s{k:03d}", aid, kind))
    return made


def graded_form(path: Path, aid: str) -> nbformat.NotebookNode:
    """The submission as nbgrader runs it: test cells and locked cells restored from the source."""
    nb = nbformat.reads(path.read_text(), as_version=4)
    source = {notebooks.grade_id(c): c for c in notebooks.read(SOLUTIONS / f"{aid}.ipynb").cells}
    for cell in nb.cells:
        ref = source.get(notebooks.grade_id(cell))
        if ref is not None and notebooks.is_locked(ref):  # test cells are locked too
            cell.source = ref.source
    return nb


# -- 2. plain execution, with a breakdown ------------------------------------------------------


def _stamp(cell, key):
    return datetime.fromisoformat(cell.metadata.execution[key].replace("Z", "+00:00")).timestamp()


def plain_run(path: Path, aid: str) -> dict[str, float]:
    """Execute the graded form of one submission in a sandbox, as grading does, with plain
    nbclient; return where its seconds went."""
    nb = graded_form(path, aid)
    files, lim, env = execute.sandbox_inputs(aid)
    box = Sandbox(files, lim, env=env)
    start = time.time()
    with box:
        client = notebooks.client(
            nb, None, assignment(aid).limits.cell_timeout, box.kernel_manager(), allow_errors=True
        )
        client.record_timing = True
        client.execute()
    total = time.time() - start
    parts = defaultdict(float)
    ran = [c for c in nb.cells if c.cell_type == "code" and "iopub.execute_input" in c.metadata.get("execution", {})]
    first_graded = next((i for i, c in enumerate(ran) if notebooks.is_graded(c)), len(ran))
    for i, cell in enumerate(ran):
        seconds = _stamp(cell, "shell.execute_reply") - _stamp(cell, "iopub.execute_input")
        if notebooks.is_test(cell):
            parts["test cells"] += seconds
        elif notebooks.is_answer(cell):
            parts["student's cells"] += seconds
        elif i < first_graded:
            parts["setup, imports"] += seconds
        else:
            parts["given cells"] += seconds
    parts["kernel start"] = (_stamp(ran[0], "iopub.execute_input") - start) if ran else total
    parts["other (messages, shutdown)"] = total - sum(parts.values())
    parts["total"] = total
    return parts


# -- 1. the baseline: nbgrader's own command ---------------------------------------------------


def nbgrader_autograde(root: Path, cohort_dir: Path, aids: list[str]) -> dict[str, float]:
    """Seconds of `nbgrader autograde AID` per assignment, in a plain nbgrader course (nbgrader's
    own Execute preprocessor, no sandbox, no feedback) holding the cohort's submissions."""
    course = root / "nbgrader-course"
    (course / "nbgrader_config.py").parent.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.course_id = "micrograd"\nc.CourseDirectory.root = "."\n'
    )
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    seconds = {}
    for aid in aids:
        src = course / "source" / aid
        src.mkdir(parents=True)
        shutil.copy(SOLUTIONS / f"{aid}.ipynb", src)
        engine = reference_engine(aid)
        if engine:
            shutil.copy(engine, src / ENGINE_FILE)
        subprocess.run(
            [*nbgrader, "generate_assignment", aid, "--force"], cwd=course, env=env, check=True, capture_output=True
        )
        for path in sorted(cohort_dir.glob(f"*/{aid}.ipynb")):
            dest = course / "submitted" / path.parent.name / aid / path.name
            dest.parent.mkdir(parents=True)
            shutil.copy(path, dest)
        seconds[aid], done = timed(
            subprocess.run,
            [*nbgrader, "autograde", aid, "--force"],
            cwd=course,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"  (nbgrader autograde {aid} exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]})")
    return seconds


# -- 3. our grader -----------------------------------------------------------------------------


class PeakMemory:
    """The largest RSS seen of each direct child (a worker) together with its descendants (its
    kernel), sampled every 0.1 s."""

    def __init__(self):
        self.peak: dict[int, float] = defaultdict(float)
        self._done = threading.Event()

    def __enter__(self):
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._done.set()

    def _watch(self):
        me = psutil.Process()
        while not self._done.wait(0.1):
            for worker in me.children():
                try:
                    tree = [worker, *worker.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree)
                except psutil.Error:
                    continue
                self.peak[worker.pid] = max(self.peak[worker.pid], rss)


def busy_seconds() -> float:
    """CPU seconds the machine has been busy since it started: every process, and the system's own work."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def grade_cohort(cohort_dir: Path, aids: list[str], out: Path, jobs: int, feedback=False):
    """(wall seconds, the graded submissions, the peak memory of a worker, the machine's busy CPU seconds)."""
    subs = [s for s in discovery.find_submissions([cohort_dir]) if s.path.stem in aids]
    busy = busy_seconds()
    with PeakMemory() as memory:
        seconds, graded = timed(grade.grade, subs, out, jobs, force=True, feedback=feedback)
    busy = busy_seconds() - busy
    errors = [s for s in graded if s.state.value == "error"]
    if errors:
        print(f"  ({len(errors)} errors, e.g. {errors[0].student} {errors[0].assignment}: {errors[0].reason})")
    return seconds, graded, max(memory.peak.values(), default=0), busy


# -- the report --------------------------------------------------------------------------------

PARTS = ["kernel start", "setup, imports", "student's cells", "given cells", "test cells", "other (messages, shutdown)"]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def feedback_price(cohort_dir: Path, root: Path, aids: list[str], students: int) -> float:
    """Seconds a feedback page adds to a notebook: a few notebooks graded with and without."""
    sample = root / "sample"
    for aid in aids:
        for k in range(students):
            dest = sample / f"s{k:03d}" / f"{aid}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(cohort_dir / f"s{k:03d}" / f"{aid}.ipynb", dest)
    without, *_ = grade_cohort(sample, aids, root / "out-sample", 1)
    with_pages, *_ = grade_cohort(sample, aids, root / "out-sample-feedback", 1, feedback=True)
    return (with_pages - without) / (students * len(aids))


def report_notebooks(groups, plain, base, ours, page):
    """One row per assignment: where plain execution spends its seconds, and what grading adds."""
    print("\nper notebook, seconds (plain execution in the sandbox, then what grading adds)")
    head = "".join(f"{h:>11}" for h in ("kernel", "setup", "student", "given", "tests", "other"))
    print(f"  {'notebook':<22}{head}{'plain':>8}{'autograde':>10}{'graded':>8}{'ratio':>7}{'nbgrader':>9}")
    for label, aids in groups.items():
        wall1, graded_subs, *_ = ours[label, 1]
        autograde = defaultdict(list)  # seconds of nbgrader's autograde call, from the --jobs 1 run
        for s in graded_subs:
            if s.result is not None and s.result.seconds:
                autograde[s.assignment].append(s.result.seconds)
        count = sum(len(plain[a]) for a in aids)
        rest = (wall1 - sum(sum(autograde[a]) for a in aids)) / count  # start-up, intake, results
        for aid in aids:
            runs = plain[aid]
            mean = {p: sum(r[p] for r in runs) / len(runs) for p in [*PARTS, "total"]}
            auto = sum(autograde[aid]) / max(1, len(autograde[aid]))
            cols = "".join(f"{mean[p]:11.2f}" for p in PARTS)
            print(
                f"  {aid:<22}{cols}{mean['total']:8.2f}{auto:10.2f}{auto + rest:8.2f}"
                f"{(auto + rest) / mean['total']:6.2f}x{base[aid] / len(runs):9.2f}"
            )
    print("  autograde: nbgrader's autograde of one notebook (its database work and the verdicts included);")
    print("  graded: that plus each notebook's share of the rest (workers' start-up, intake, results);")
    print("  nbgrader: plain `nbgrader autograde`, per notebook.")
    print(f"  a feedback page, on request (--feedback): +{page:.2f} s a notebook")


def report_cohort(groups, plain, base, ours, students):
    print("\nthe cohort")
    for label, aids in groups.items():
        total_plain = sum(r["total"] for a in aids for r in plain[a])
        total_base = sum(base[a] for a in aids)
        (w1, _, m1, b1), (w2, _, m2, b2) = ours[label, 1], ours[label, 2]
        count = students * len(aids)
        print(
            f"  {label} ({count} notebooks): nbgrader autograde {total_base:6.1f} s, "
            f"plain execution {total_plain:6.1f} s, grade --jobs 1 {w1:6.1f} s, --jobs 2 {w2:6.1f} s"
        )
        ratio = w1 / total_plain
        print(f"    --jobs 1 / plain execution: {ratio:.2f}x (goal <= 1.3x: {verdict(ratio <= 1.3)})")
        goal = f" (goal >= 1.8x: {verdict(w1 / w2 >= 1.8)})" if label == "exercises" else ""
        print(f"    speed-up --jobs 1 -> 2: {w1 / w2:.2f}x{goal}")
        print(
            f"    cores busy (of {os.cpu_count()}): --jobs 1 {b1 / w1:.2f}, --jobs 2 {b2 / w2:.2f}; the machine's CPU "
            f"a notebook: --jobs 1 {b1 / count:.2f} s, --jobs 2 {b2 / count:.2f} s"
        )
        print(
            f"    nbgrader autograde / --jobs 2: {total_base / w2:.2f}x (goal >= 2x: {verdict(total_base / w2 >= 2)})"
        )
        projected = 300 * w2 / students / 60
        print(
            f"    projected, 300 students at --jobs 2: {projected:.1f} min (goal < 30 min: {verdict(projected < 30)})"
        )
        print(
            f"    peak memory of a worker with its kernels: --jobs 1 {m1 / GB:.2f} GB, --jobs 2 {m2 / GB:.2f} GB "
            f"(goal < 1.5 GB: {verdict(max(m1, m2) < 1.5 * GB)})"
        )


# -- the cost model ----------------------------------------------------------------------------

# Answers every task at once, as a worker that grades in no time: what remains is the parent's own work.
STAND_IN_WORKER = r"""
import json, sys
print(json.dumps({"ready": 0}), flush=True)
for line in iter(sys.stdin.readline, ""):
    t = json.loads(line)
    print(json.dumps({"student": t["student"], "assignment": t["assignment"], "score": 1.0, "max_score": 1.0,
                      "tests": {"t": [1.0, 1.0]}, "status": "graded"}), flush=True)
"""
STAND_IN_AID = "01_numerical_gradients"
MEMORY_GROWTH_GOAL_MB = 50


def parent_memory(students: int) -> dict[str, float]:
    """In a fresh process: the peak RSS (MB) of the grader's parent before and after taking in and
    dealing `students` one-cell submissions to the stand-in worker, and the seconds it took."""
    script = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import benchmark
print(json.dumps(benchmark._deal_synthetic({students})))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _deal_synthetic(students: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        grade.WORK = cache.WORK = root / "work"
        grade.reference_engine = lambda aid: None
        (root / "stand_in.py").write_text(STAND_IN_WORKER)
        pool.WORKER = [sys.executable, str(root / "stand_in.py")]
        nb = samples.filled(STAND_IN_AID)
        answer = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
        one_cell = json.dumps({**nb, "cells": [answer]})
        for k in range(students):
            path = root / "in" / f"s{k:05d}" / f"{STAND_IN_AID}.ipynb"
            path.parent.mkdir(parents=True)
            path.write_text(one_cell)
        before = _peak_mb()
        seconds, subs = timed(grade.grade, discovery.find_submissions([root / "in"]), root / "out", 1)
        assert sum(s.state.value == "graded" for s in subs) == students, "every submission was dealt and answered"
        return {"before_mb": before, "after_mb": _peak_mb(), "seconds": seconds}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def shard_sizes(students: int, shards: int) -> list[int]:
    """How many of `students` ids (s00000...) each shard gets: the split is by hash, not even."""
    from autograder.grading.shards import shard_of

    sizes = [0] * shards
    for k in range(students):
        sizes[shard_of(f"s{k:05d}", shards)] += 1
    return sizes


def report_cost(core_seconds: dict[str, float], measured: str, busy: float, project: int, cores: int, parts: int):
    """The cost model: core-seconds, the parent's memory, and the projection for `project` students."""
    print(f"\nthe cost model ({measured})")
    print("  core-seconds a notebook (the machine's busy CPU, kernels and grader, per notebook graded):")
    for aid, secs in core_seconds.items():
        print(f"    {aid:<24}{secs:7.2f}")
    student = sum(core_seconds.values())
    print(f"  a student's whole course ({len(core_seconds)} notebooks): {student:.1f} core-seconds")

    small, large = parent_memory(200), parent_memory(2000)
    per = (large["after_mb"] - small["after_mb"]) / 1800
    growth = large["after_mb"] - small["after_mb"]
    print("  the grader's own memory (peak RSS of the parent; one-cell submissions, a stand-in worker):")
    for n, m in ((200, small), (2000, large)):
        print(
            f"    {n:>5} submissions: {m['before_mb']:6.1f} MB before intake, {m['after_mb']:6.1f} MB at the end "
            f"({m['seconds']:.1f} s, {1000 * m['seconds'] / n:.1f} ms a submission)"
        )
    print(
        f"    growth from 200 to 2,000: {growth:.1f} MB, {1024 * per:.1f} KB a submission in flight "
        f"(goal < {MEMORY_GROWTH_GOAL_MB} MB: {verdict(growth < MEMORY_GROWTH_GOAL_MB)})"
    )

    sizes = shard_sizes(project, parts)
    jobs = max(1, cores // parts)
    biggest = max(sizes)
    hours = biggest * student / (jobs * busy) / 3600
    print(
        f"  projected: {project:,} students x {len(core_seconds)} notebooks = "
        f"{project * student / 3600:.1f} core-hours; on {cores} cores in {parts} shards of --jobs {jobs}"
    )
    print(
        f"    shards of {min(sizes):,} to {biggest:,} students (sha256 split); the largest takes "
        f"{hours:.1f} h at {busy:.2f} of each core busy (the measured share at --jobs 2)"
    )
    print(
        f"    each shard's parent: about {large['after_mb'] + per * (biggest * len(core_seconds) - 2000):.0f} MB "
        f"for its {biggest * len(core_seconds):,} submissions"
    )


def cost_from_run(groups, ours, plain) -> tuple[dict[str, float], float]:
    """Core-seconds a notebook of each assignment, from the --jobs 1 runs: the machine's busy CPU
    shared out in proportion to each notebook's graded wall time; and the share of each core kept
    busy at --jobs 2."""
    core_seconds, shares = {}, []
    for label, aids in groups.items():
        w1, subs1, _, b1 = ours[label, 1]
        w2, _, _, b2 = ours[label, 2]
        shares.append(b2 / w2 / 2)
        wall = defaultdict(float)
        for s in subs1:
            if s.assignment and s.result is not None and s.result.seconds:
                wall[s.assignment] += s.result.seconds
        total = sum(wall.values()) or 1.0
        for aid in aids:
            core_seconds[aid] = b1 * wall[aid] / total / len(plain[aid])
    return core_seconds, min(shares)


# -- Gradescope ----------------------------------------------------------------------------------


def gradescope_price(root: Path, aid: str = "02_value_backward") -> None:
    """One submission graded by run_autograder in a simulated /autograder whose image setup.sh
    prepared (`python -m autograder.delivery.gradescope --warm`), against the same notebook graded
    locally with `grade`; and the same in a container that was not prepared, for comparison."""
    from autograder.delivery.gradescope.bundle import bundle

    zip_path = bundle([aid], root / "autograder.zip")
    notebook = root / "submitted" / f"{aid}.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text(json.dumps(samples.filled(aid)))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}

    def container(name: str, warm: bool) -> float:
        """Seconds run_autograder takes on the submission in a fresh simulated /autograder."""
        gs = root / name
        shutil.unpack_archive(zip_path, gs / "source")
        for folder in ("submission", "results"):
            (gs / folder).mkdir()
        shutil.copy(notebook, gs / "submission")
        if warm:  # as setup.sh does when Gradescope builds the image
            warm_up = [sys.executable, "-m", "autograder.delivery.gradescope", "--warm"]
            subprocess.run(warm_up, cwd=gs / "source", env=env, check=True)
        (gs / "source" / "run_autograder").chmod(0o755)
        seconds, done = timed(
            subprocess.run,
            [str(gs / "source" / "run_autograder")],
            env={**env, "AUTOGRADER_ROOT": str(gs)},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return seconds

    grade.grade(discovery.find_submissions([notebook], "student"), root / "out-local", force=True)  # caches warm
    local, _ = timed(grade.grade, discovery.find_submissions([notebook], "student"), root / "out-local", force=True)
    warm, cold = container("prepared", warm=True), container("cold", warm=False)
    print(f"\nGradescope, one submission of {aid} (goal: a prepared image within 1.5x of local grading)")
    print(f"  graded locally with `grade`            {local:6.1f} s")
    ok = verdict(warm <= 1.5 * local)
    print(f"  run_autograder, image prepared          {warm:6.1f} s  ({warm / local:.2f}x: {ok})")
    print(f"  run_autograder, image not prepared      {cold:6.1f} s  ({cold / local:.2f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20, help="students in the cohort (default 20)")
    parser.add_argument("--no-lessons", action="store_true", help="skip timing the lessons")
    parser.add_argument("--project", type=int, default=10_000, help="students to project the cost of (10,000)")
    parser.add_argument("--cores", type=int, default=16, help="cores to project on (default 16)")
    parser.add_argument("--shards", type=int, default=8, help="shards to project on (default 8)")
    parser.add_argument("--cost-model-only", action="store_true", help="grade no cohort: the cost model alone")
    parser.add_argument("--exercise-seconds", type=float, default=1.4, help="with --cost-model-only (1.4)")
    parser.add_argument("--capstone-seconds", type=float, default=7.9, help="with --cost-model-only (7.9)")
    parser.add_argument(
        "--busy",
        type=float,
        default=0.94,
        help="with --cost-model-only: the share of each core kept busy at --jobs 2 (0.94, as last measured)",
    )
    parser.add_argument("--gradescope-only", action="store_true", help="time only a Gradescope submission")
    args = parser.parse_args()
    if args.gradescope_only:
        root = Path(tempfile.mkdtemp(prefix="bench-"))
        try:
            gradescope_price(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return
    if args.cost_model_only:
        given = {a: args.capstone_seconds if "capstone" in a else args.exercise_seconds for a in assignments()}
        report_cost(given, "core-seconds given, not measured", args.busy, args.project, args.cores, args.shards)
        return
    n = args.students
    groups = {
        "exercises": [a for a in assignments() if "capstone" not in a],
        "capstone": [a for a in assignments() if "capstone" in a],
    }
    every = [a for aids in groups.values() for a in aids]
    if not args.no_lessons:
        print("lessons, run alone as in Colab (goal <= 20 s each)")
        for lesson in sorted(LESSONS.glob("*.ipynb")):
            print(f"  {lesson.name:<34} {timed(run_alone, lesson)[0]:6.1f} s")

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        cohort_dir = root / "cohort"
        made = write_cohort(cohort_dir, n, every)
        kinds = Counter(kind.split()[0] for _, _, kind in made)
        print(
            f"\ncohort: {n} students x {len(groups['exercises'])} exercises + the capstone = {len(made)} notebooks "
            f"({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), names interleaving them"
        )
        print("\n1. plain `nbgrader autograde` (its own configuration, no sandbox)...", flush=True)
        base = nbgrader_autograde(root, cohort_dir, every)
        print("2. plain nbclient execution of the graded form, in the sandbox...", flush=True)
        plain = defaultdict(list)
        for student, aid, _ in made:
            plain[aid].append(plain_run(cohort_dir / student / f"{aid}.ipynb", aid))
        print("3. python -m autograder grade...", flush=True)
        ours = {
            (label, jobs): grade_cohort(cohort_dir, aids, root / f"out-{label}-{jobs}", jobs)
            for label, aids in groups.items()
            for jobs in (1, 2)
        }
        page = feedback_price(cohort_dir, root, every, min(n, 3))
        report_notebooks(groups, plain, base, ours, page)
        report_cohort(groups, plain, base, ours, n)
        core_seconds, busy = cost_from_run(groups, ours, plain)
        report_cost(core_seconds, "measured on this cohort", busy, args.project, args.cores, args.shards)
        gradescope_price(root / "gradescope")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
