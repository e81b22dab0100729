"""python -m autograder {new,build,lessons,release,site,samples,grade,merge,gradescope,export,report,
release-solutions}"""

import argparse
import sys
from collections.abc import Callable

from autograder.authoring import build, lessons, new, samples
from autograder.course.assignment import assignment
from autograder.delivery import release, site, solutions_release
from autograder.delivery.gradescope.bundle import bundle
from autograder.grading import discovery, grade, late, output, shards
from autograder.reports import class_report as report
from autograder.reports import export


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("new", help="write the source notebook of a new assignment, solutions/NN_name.ipynb")
    p.add_argument("assignment", help="NN_name: its place in the course and a Python name (the answer's function)")
    p.add_argument("title", help="the title under the notebook's Colab badge")

    commands.add_parser("build", help="regenerate exercises/ and capstone/ from solutions/ with nbgrader")

    commands.add_parser("lessons", help="re-run the lessons and store their outputs (plots, graphs)")

    p = commands.add_parser("release", help="write the student repository: lessons, exercises, capstone, README")
    p.add_argument("out", help="an empty or new folder")
    p.add_argument(
        "--allow-placeholder",
        action="store_true",
        help="write it even though its Colab badges point at the placeholder repository "
        "(a local try-out; never publish it)",
    )

    p = commands.add_parser("site", help="build the course website from the student tree (Sphinx, MyST-NB)")
    p.add_argument("--out", default=str(site.SITE), help="default: .work/site")

    p = commands.add_parser("samples", help="write the bundled sample submissions (reference, stub, known bugs)")
    p.add_argument("dest", help="folder to write STUDENT/NOTEBOOK.ipynb into")

    p = commands.add_parser("grade", help="autograde submitted notebooks against the hidden tests")
    p.add_argument("paths", nargs="+", help="a submitted .ipynb, or a folder laid out STUDENT/NOTEBOOK.ipynb")
    p.add_argument("--out", default="grades", help="where grades.csv and feedback/ go (default: ./grades)")
    p.add_argument("--student", help="the student whose work the loose files given are")
    p.add_argument(
        "--roster",
        help="CSV with the columns student,lms_id,name: names the owner of each file downloaded "
        "from an LMS (file names starting name_userid_)",
    )
    p.add_argument("--jobs", type=int, default=1, help="grade in N worker processes (default 1)")
    p.add_argument("--force", action="store_true", help="grade again what an earlier run already graded")
    p.add_argument(
        "--feedback",
        action="store_true",
        help="also write one feedback page per notebook into OUT/feedback/ (about 0.7 s each); "
        "a result graded earlier without its page is graded again",
    )
    p.add_argument(
        "--due",
        action="append",
        default=[],
        metavar="[ASSIGNMENT=]WHEN",
        help="the due date, ISO 8601 with an offset (2026-10-05T23:59:00+02:00), of every assignment "
        "of the run, or of one (repeatable); grades.csv marks late work and takes the penalty off",
    )
    p.add_argument(
        "--late-penalty",
        default="none",
        help="none (mark late work only; the default), zero, or per-day:P (P%% of the points per "
        "started 24 hours late, never below 0)",
    )
    p.add_argument("--extensions", help="a CSV of student,assignment,due: a later due date for some students")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run students' code WITHOUT a sandbox when none is available (it can then read and "
        "change anything this user can); every row graded so is marked",
    )
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="grade only part K (0..N-1) of N: the students with sha256(student) mod N = K; "
        "OUT also gets shard.json, for merge",
    )
    p.add_argument(
        "--key",
        help="the key (a file of 32 random bytes, mode 600) that signs the results; every shard "
        "of a cohort and merge use the same (default .work/grader.key)",
    )

    p = commands.add_parser("merge", help="check the output folders of grade --shard and merge them into one")
    p.add_argument("shards", nargs="+", help="the OUT of every shard, each once")
    p.add_argument("--out", required=True, help="the merged output folder: grades.csv, results/, feedback/")
    p.add_argument("--key", help="the key the shards were graded with (default .work/grader.key)")

    p = commands.add_parser("gradescope", help="write the Gradescope autograder zip of one assignment")
    p.add_argument("assignment")
    p.add_argument("--out", help="default: gradescope/ASSIGNMENT.zip")

    p = commands.add_parser("export", help="the grades of an output folder of grade, for Canvas or a spreadsheet")
    p.add_argument("out", help="the output folder of grade (its grades.csv and results/)")
    p.add_argument(
        "--to",
        choices=export.KINDS,
        required=True,
        help="canvas: Canvas's gradebook CSV, a column per assignment; "
        "wide: a row per student, a column per test cell and per assignment total",
    )
    p.add_argument("--roster", help="the class's gradebook exported from Canvas: written back with our columns filled")
    p.add_argument("--output", help="default: OUT/canvas.csv or OUT/wide.csv")

    p = commands.add_parser(
        "report", help="OUT/report.html: scores, test pass rates, frequent failures, known mistakes, copied answers"
    )
    p.add_argument("out", help="the output folder of grade")
    p.add_argument(
        "--submissions",
        nargs="+",
        default=[],
        help="the folders given to grade: their answer cells are compared for copying",
    )

    p = commands.add_parser(
        "release-solutions",
        help="write an assignment's solution for students, run: answers and outputs, "
        "without hidden tests or the rubrics of hand-graded answers",
    )
    p.add_argument("assignment")
    p.add_argument("dest", help="folder to write ASSIGNMENT.ipynb into")

    p = commands.add_parser("sandbox", help="what a graded kernel sees and may use, and its command line")
    p.add_argument(
        "--explain",
        action="store_true",
        required=True,
        help="print the sandbox's policy (filesystem, environment, limits, syscalls, user) and the "
        "exact command line derived from it",
    )
    p.add_argument(
        "assignment",
        nargs="?",
        help="the sandbox of this assignment's graded runs (its files, limits, environment); "
        "default: no files and the default limits",
    )
    p.add_argument("--level", choices=["full", "uid"], help="default: MICROGRAD_SANDBOX_LEVEL, else full")
    return parser


def _new(args: argparse.Namespace) -> int:
    return _wrote("new", lambda: new.scaffold(args.assignment, args.title), (FileExistsError, ValueError))


def _build(args: argparse.Namespace) -> int:
    for path in build.build():
        print(f"built {path}")
    return 0


def _lessons(args: argparse.Namespace) -> int:
    for path in lessons.refresh():
        print(f"ran {path}")
    return 0


def _release(args: argparse.Namespace) -> int:
    try:
        files = release.release(args.out, allow_placeholder=args.allow_placeholder)
    except release.PlaceholderRepo as e:
        print(f"release: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {args.out}")
    return 0


def _site(args: argparse.Namespace) -> int:
    print(f"built {site.build(args.out)}")
    return 0


def _samples(args: argparse.Namespace) -> int:
    for path in samples.write_samples(args.dest):
        print(f"wrote {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    try:
        rule = late.policy(args.due, args.late_penalty, args.extensions)
        part = shards.parse(args.shard) if args.shard else None
    except (OSError, ValueError) as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    cohort = discovery.find_submissions(args.paths, args.student, args.roster)
    mine = shards.select(cohort, *part) if part else cohort
    subs = grade.grade(
        mine,
        args.out,
        jobs=args.jobs,
        force=args.force,
        progress=sys.stderr.isatty(),
        unsafe_no_sandbox=args.unsafe_no_sandbox,
        feedback=args.feedback,
        late=rule,
        key_file=args.key,
    )
    if part:
        shards.write_manifest(args.out, *part, cohort, subs, args.key)
    print(output.table(subs))
    pages = f"  feedback: {args.out}/feedback/" if args.feedback else "  (feedback pages: add --feedback)"
    print(f"\ngrades: {args.out}/grades.csv{pages}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    try:
        path = shards.merge(args.shards, args.out, args.key)
    except shards.Refused as e:
        print(f"merge: refused, nothing written: {e}", file=sys.stderr)
        return 2
    print(f"merged {len(args.shards)} shards: {path}")
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    path = bundle([args.assignment], args.out or f"gradescope/{args.assignment}.zip")
    points = assignment(args.assignment).autograded_points
    print(f"wrote {path}: upload it to Gradescope; autograder points: {points:g}")
    return 0


def _wrote(command: str, make: Callable[[], object], errors: tuple[type[Exception], ...]) -> int:
    """Run `make` (which returns the path it wrote) and say where it wrote, or why not."""
    try:
        path = make()
    except errors as e:
        print(f"{command}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    return _wrote("export", lambda: export.export(args.out, args.to, args.roster, args.output), (OSError, ValueError))


def _report(args: argparse.Namespace) -> int:
    return _wrote("report", lambda: report.write(args.out, args.submissions), (OSError,))


def _release_solutions(args: argparse.Namespace) -> int:
    make = lambda: solutions_release.release_solutions(args.assignment, args.dest)  # noqa: E731
    return _wrote("release-solutions", make, (ValueError,))


def _sandbox(args: argparse.Namespace) -> int:
    from autograder import sandbox
    from autograder.worker.execute import sandbox_inputs

    try:
        files, limits, env = sandbox_inputs(args.assignment) if args.assignment else ({}, sandbox.Limits(), {})
        print(sandbox.explain(files, limits, env, args.level), end="")
    except FileNotFoundError as e:
        print(f"sandbox: no such assignment: {args.assignment} ({e.filename})", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"sandbox: {e}", file=sys.stderr)
        return 2
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "new": _new,
    "build": _build,
    "lessons": _lessons,
    "release": _release,
    "site": _site,
    "samples": _samples,
    "grade": _grade,
    "merge": _merge,
    "gradescope": _gradescope,
    "export": _export,
    "report": _report,
    "release-solutions": _release_solutions,
    "sandbox": _sandbox,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
