"""Run the visible tests of your notebooks and report the points they earn, per exercise.

    python .github/visible-tests/visible_tests.py [--json FILE] [FOLDER ...]

FOLDERs default to exercises/ and capstone/. The notebooks run from the top, in course order,
in one scratch folder, as you would run them: each exercise that saves the
`micrograd/` package leaves it for the next one, so an unfinished earlier exercise can make a
later one fail here. Your repository is not changed.

A visible test cell earns its points when it runs without an error and writes nothing to
stderr, the rule the grader applies. Hidden tests are not in this repository: they run only
when your instructor grades your notebooks, so these points are a preview, not your grade.

Writes FILE (default visible-tests.json): one entry per exercise (ex02_value_backward, ...) with
its status, points and each test's verdict. Inside a GitHub Actions job it also adds the score
table to the job summary.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

REPO = Path(__file__).resolve().parents[2]
MESSAGE_LIMIT = 1000


def test_cells(nb):
    """The visible test cells of a notebook: graded, not an answer, with code to run. A hidden
    test cell reaches students as a comment only (`# Hidden tests for ... run when ...`)."""
    cells = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        code = [line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]
        if (
            cell.cell_type == "code"
            and meta.get("grade")
            and not meta.get("solution")
            and code
            and not str(meta.get("grade_id", "")).endswith("_hidden")
        ):
            cells.append(cell)
    return cells


def outcome(cell):
    """(passed, message) of an executed test cell."""
    if cell.get("execution_count") is None:
        return False, "did not run (an earlier cell stopped the notebook, or it timed out)"
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name, value = out.get("ename", "Error"), out.get("evalue", "")
            if name == "NotImplementedError" and not value:
                return False, "not written yet (NotImplementedError)"
            return False, f"{name}: {value}" if value else name
    stderr = "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )
    if stderr.strip():
        return False, "wrote to stderr: " + stderr.strip()
    return True, ""


def run_notebook(path, folder, timeout):
    """Execute the notebook at `path` in `folder`; return its result: status, points, each test."""
    nb = nbformat.read(path, as_version=4)
    cells = test_cells(nb)
    started = time.monotonic()
    problem = None
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(folder)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError, RuntimeError) as e:
        problem = (
            f"the notebook stopped: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        )
    seconds = round(time.monotonic() - started, 1)
    tests = []
    for cell in cells:
        meta = cell.metadata["nbgrader"]
        points = float(meta.get("points", 0))
        passed, message = outcome(cell)
        if problem and not passed:
            message = f"{message} ({problem})"
        tests.append(
            {
                "name": meta["grade_id"],
                "status": "pass" if passed else "fail",
                "score": points if passed else 0.0,
                "max_score": points,
                "message": message[:MESSAGE_LIMIT],
                "filename": "",
                "line_no": 0,
                "execution_time": 0,
            }
        )
    max_score = sum(t["max_score"] for t in tests)
    if not tests:
        status = "error"
        tests = [
            {
                "name": path.stem,
                "status": "error",
                "score": 0.0,
                "max_score": 0.0,
                "line_no": 0,
                "message": "no visible test cell found: was the notebook's cell metadata lost?",
            }
        ]
    else:
        status = "pass" if all(t["status"] == "pass" for t in tests) else "fail"
    return {
        "version": 1,
        "status": status,
        "max_score": max_score,
        "tests": tests,
        "notebook": path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path),
        "seconds": seconds,
    }


def runner_id(notebook):
    """An exercise's key in the results: ex02_value_backward."""
    return "ex" + notebook.stem


def table(results):
    rows = [("exercise", "visible tests passed", "points")]
    for runner, r in results.items():
        passed = sum(t["status"] == "pass" for t in r["tests"])
        rows.append((runner, f"{passed} / {len(r['tests'])}", f"{_score(r):g} / {r['max_score']:g}"))
    rows.append(
        (
            "total",
            "",
            f"{sum(_score(r) for r in results.values()):g} / {sum(r['max_score'] for r in results.values()):g}",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    failures = [
        f"  {runner} {t['name']}: {t['message']}"
        for runner, r in results.items()
        for t in r["tests"]
        if t["status"] != "pass"
    ]
    if failures:
        lines += ["", "Not passed yet:"] + failures
    return "\n".join(lines)


def markdown(results):
    lines = ["## Visible tests", "", "| exercise | visible tests passed | points |", "|---|---|---|"]
    for runner, r in results.items():
        passed = sum(t["status"] == "pass" for t in r["tests"])
        lines.append(f"| {runner} | {passed} / {len(r['tests'])} | {_score(r):g} / {r['max_score']:g} |")
    total = sum(_score(r) for r in results.values())
    lines.append(f"| **total** | | **{total:g} / {sum(r['max_score'] for r in results.values()):g}** |")
    lines += ["", "Hidden tests run when your instructor grades your notebooks: these points are a preview."]
    return "\n".join(lines) + "\n"


def _score(result):
    return sum(t["score"] for t in result["tests"])


def report_to_actions(results):
    """Add the score table to the job summary, when inside GitHub Actions."""
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as f:
            f.write(markdown(results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", help="folders of notebooks (default: exercises capstone)")
    parser.add_argument("--json", default="visible-tests.json", help="where to write the results")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a cell may run (default 120)")
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.folders] or [REPO / "exercises", REPO / "capstone"]
    notebooks = sorted((p for f in folders if f.is_dir() for p in f.glob("*.ipynb")), key=lambda p: p.name)
    if not notebooks:
        print(f"no notebooks in {', '.join(map(str, folders))}", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="visible-tests-") as scratch:
        for path in notebooks:
            print(f"running {path.name} ...", flush=True)
            results[runner_id(path)] = run_notebook(path.resolve(), scratch, args.timeout)
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print()
    print(table(results))
    report_to_actions(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
