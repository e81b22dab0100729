"""Speed goals, measured in one run on this machine (`make bench`); never a timed unit test.

Prints:
- the run time of every lesson and every solution notebook (goals: lessons and exercises
  <= 20 s, the capstone <= 30 s);
- grading time per notebook against plain nbclient execution of the same notebook (goal <= 1.3x);
- throughput for a synthetic cohort (default 60 students x every exercise) at --jobs 1 and 2,
  and the projection for 300 students (goal < 30 minutes on 2 cores), the capstone on its own.
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import grade, notebooks, samples
from autograder.course import LESSONS, SOLUTIONS, assignments
from autograder.engine import reference_engine
from autograder.lessons import run_alone


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def plain_execution(aid, notebook):
    """Seconds to execute a notebook dict with nbclient, the reference engine beside it."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = reference_engine(aid)
        if engine:
            shutil.copy(engine, tmp)
        return timed(notebooks.run, nbformat.reads(json.dumps(notebook), as_version=4), tmp, 600)


def cohort(root, students, aids):
    for k in range(students):
        for aid in aids:
            path = root / f"student{k:03d}" / f"{aid}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(samples.filled(aid)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=60)
    args = parser.parse_args()
    exercises = [a for a in assignments() if "capstone" not in a]
    capstones = [a for a in assignments() if "capstone" in a]

    print("notebook run times (goal: lessons and exercises <= 20 s, capstone <= 30 s)")
    for lesson in sorted(LESSONS.glob("*.ipynb")):
        print(f"  {lesson.name:<32} {timed(run_alone, lesson):6.1f} s")
    plain = {}
    for aid in assignments():
        plain[aid] = plain_execution(aid, notebooks.read(SOLUTIONS / f"{aid}.ipynb"))
        print(f"  {aid + '.ipynb (solution)':<32} {plain[aid]:6.1f} s")

    print("\ngrading vs plain execution, per notebook (goal <= 1.3x)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cohort(root / "in", 4, assignments())
        for aid in assignments():
            subs = [s for s in grade.find_submissions([root / "in"]) if s.path.stem == aid]
            seconds = timed(grade.grade, subs, root / f"out-{aid}")
            per_notebook = seconds / len(subs)
            filled = plain_execution(aid, samples.filled(aid))
            print(
                f"  {aid:<24} graded {per_notebook:5.2f} s/notebook, executed {filled:5.2f} s: "
                f"{per_notebook / filled:4.2f}x (batch of 4, start-up included)"
            )

    for label, aids in (("exercises", exercises), ("capstone", capstones)):
        if not aids:
            continue
        n = args.students if label == "exercises" else max(4, args.students // 10)
        print(f"\ncohort of {n} students x {len(aids)} {label}")
        rate = {}
        for jobs in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                cohort(root / "in", n, aids)
                seconds = timed(grade.grade, grade.find_submissions([root / "in"]), root / "out", jobs)
            rate[jobs] = seconds / (n * len(aids))
            print(f"  --jobs {jobs}: {seconds:6.1f} s, {rate[jobs]:5.2f} s/notebook")
        print(f"  speed-up at --jobs 2: {rate[1] / rate[2]:.2f}x")
        print(f"  projected 300 students x {len(aids)} {label} at --jobs 2: {300 * len(aids) * rate[2] / 60:.1f} min")


if __name__ == "__main__":
    main()
