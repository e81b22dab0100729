"""Run a notebook for grading: in a sandbox, with its checks reporting instead of asserting, and
the verdict of each test cell decided here, outside the student's process.

`GradedExecute` takes the place of nbgrader's own Execute preprocessor in `nbgrader autograde`.
nbgrader still restores the test cells, records the scores in its gradebook (a test cell with an
error output scores 0) and writes the feedback; only who decides a test cell's outcome changes.
"""

import copy
import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
from jupyter_client.manager import KernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.paths import ENGINE_FILE, IN_NOTEBOOK, SOLUTIONS, WORK
from autograder.course.reference import reference_engine
from autograder.worker.charge import charged_once
from autograder.worker.graded_source import moved_seed, perturbed, stripped
from autograder.worker.verdict import Verdict, error_name, judge, reports

STAND_IN = IN_NOTEBOOK / "torch_stand_in.py"

# Set once per worker process by the worker: which sandbox uid it owns, whether to sandbox, and
# whether to keep a started kernel ready for its next notebook (only a worker, which discards it).
settings = {"slot": 0, "sandboxed": True, "spare": False}
# Why the last notebook was stopped (time, memory...), for the worker's result row.
last_stop: dict[str, str | None] = {"reason": None}


class NotebookStopped(RuntimeError):
    pass


def run_graded(nb: NotebookNode, aid: str, reference: bool = False) -> tuple[NotebookNode, str | None]:
    """Execute a copy of `nb` as grading does; return (the executed copy, why it was stopped or None).
    A submission's test cells run stripped of what their checks are compared with; the
    reference's run whole, to report the expected values, bounds and messages.
    A kernel that dies before its first cell is the machine's fault, not the notebook's: try again."""
    for _ in range(3):
        run, reason = _run_once(nb, aid, reference)
        if reason is None or any(c.get("execution_count") for c in run.cells if c.cell_type == "code"):
            return run, reason
    return run, reason


def _run_once(nb, aid, reference):
    run = copy.deepcopy(nb)
    salt = assignment(aid).salt
    for cell in run.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if notebooks.is_test(cell):
                cell.source = perturbed(cell.source, f"{salt}:{cell.metadata.nbgrader.grade_id}")
                if not reference:
                    cell.source = stripped(cell.source)
    lim = assignment(aid).limits
    wanted = sandbox_inputs(aid)
    files, _, env = wanted
    if settings["sandboxed"]:
        box, km = _take_spare(wanted)
        with box:
            reason = _execute(run, km, lim, box.close, None, {})
            why = box.stop_reason()
        if settings["spare"]:
            _start_spare(wanted)
        return run, (f"stopped: {why}" if why else reason)
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unsandboxed-", dir=WORK) as tmp:
        for name, path in files.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(tmp) / name)
        km = KernelManager(kernel_name="python3")
        try:
            reason = _execute(run, km, lim, lambda: km.shutdown_kernel(now=True), tmp, {**os.environ, **env})
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
        return run, reason


def sandbox_inputs(aid: str) -> tuple[dict[str, Path], Any, dict[str, str]]:
    """(files, limits, env) of a graded run of `aid`, as `Sandbox` takes them: the reference
    engine beside the notebook, the assignment's memory and CPU limits, grading mode."""
    engine = reference_engine(aid)
    lim = assignment(aid).limits
    files = {"torch/__init__.py": STAND_IN}  # `import torch` binds the stand-in, never PyTorch
    if engine:
        files[ENGINE_FILE] = engine
    return (
        files,
        lim,
        {"MICROGRAD_GRADING": "1", "MICROGRAD_SEED": str(moved_seed(0, assignment(aid).salt))},
    )


class _Spare(NamedTuple):
    made_for: tuple  # (sandbox_inputs, slot)
    box: Any  # a Sandbox
    km: KernelManager  # its kernel, started


# A sandbox with its kernel already started, for the next notebook: it boots while nbgrader
# records this one. Made fresh after each notebook and used once; nothing runs in it before.
_spare: _Spare | None = None


def _new_box(wanted: tuple) -> Any:
    from autograder.sandbox import Sandbox

    files, lim, env = wanted
    return Sandbox(files, lim, slot=settings["slot"], env=env)


def _take_spare(wanted: tuple) -> tuple[Any, KernelManager]:
    """(sandbox, kernel manager) for a notebook that needs `wanted` (`sandbox_inputs`): the
    spare if it was made for exactly that and this slot, else a new one whose kernel nbclient starts."""
    global _spare
    spare, _spare = _spare, None
    if spare is not None:
        if spare.made_for == (wanted, settings["slot"]) and run_sync(spare.km.is_alive)():  # type: ignore[arg-type]  # an AsyncKernelManager
            return spare.box, spare.km
        spare.box.close()
    box = _new_box(wanted)
    return box, box.kernel_manager()


def _start_spare(wanted: tuple) -> None:
    """Make the next notebook's sandbox and start its kernel now."""
    global _spare
    discard_spare()
    box = _new_box(wanted)
    try:
        km = box.kernel_manager()
        run_sync(km.start_kernel)()  # type: ignore[arg-type]  # an AsyncKernelManager: a coroutine
    except Exception:  # the next notebook then starts its own kernel, as without a spare
        box.close()
        return
    _spare = _Spare((wanted, settings["slot"]), box, km)


def discard_spare() -> None:
    """Close the spare sandbox, if any (its kernel never ran a cell)."""
    global _spare
    spare, _spare = _spare, None
    if spare is not None:
        spare.box.close()


def _execute(run, km, lim, kill, cwd, env):
    """Run every cell; stop the whole notebook at its wall-time limit."""
    stopped = threading.Event()

    def timeout():
        stopped.set()
        kill()

    timer = threading.Timer(lim.wall_seconds, timeout)
    timer.start()
    try:
        notebooks.run(run, cwd, lim.cell_timeout, km, env, allow_errors=True, interrupt_on_timeout=True)
    except (DeadKernelError, CellTimeoutError, RuntimeError) as e:
        return (
            f"stopped after the time limit of {lim.wall_seconds:g} s"
            if stopped.is_set()
            else f"stopped: {e}"
            if isinstance(e, notebooks.OutputLimit)
            else "stopped: the kernel died (os._exit, a crash, or a kill)"
            if isinstance(e, DeadKernelError)
            else f"stopped: {type(e).__name__}"
        )
    finally:
        timer.cancel()
    return f"stopped after the time limit of {lim.wall_seconds:g} s" if stopped.is_set() else None


def expected_reports(aid: str) -> dict:
    """{grade_id: reports} of the reference solution, run as grading runs a submission; cached
    by the content of the solutions and the engine it uses."""
    engine = reference_engine(aid)
    key = hashlib.sha256(
        (SOLUTIONS / f"{aid}.ipynb").read_bytes()
        + (engine.read_bytes() if engine else b"")
        + (IN_NOTEBOOK / "kit.py").read_bytes()
        + (Path(__file__).parent / "verdict.py").read_bytes()
        + (Path(__file__).parent / "graded_source.py").read_bytes()
        + STAND_IN.read_bytes()
    ).hexdigest()[:20]
    cached = WORK / "expected" / f"{aid}-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    run, reason = run_graded(notebooks.read(SOLUTIONS / f"{aid}.ipynb"), aid, reference=True)
    if reason:
        raise RuntimeError(f"the reference solution of {aid} did not run to the end: {reason}")
    expected = {cell.metadata.nbgrader.grade_id: reports(cell.outputs) for cell in run.cells if notebooks.is_test(cell)}
    empty = [gid for gid, found in expected.items() if not any(r["kind"] == "done" for r in found)]
    if empty:
        raise RuntimeError(f"the reference solution of {aid} did not finish test cells {empty}")
    for gid, found in expected.items():  # moved inputs must not take the reference past a bound
        verdict = judge(gid, found, found, None, False)
        if not verdict.passed:
            raise RuntimeError(
                f"the reference solution of {aid} fails its own test {gid} on moved inputs: {verdict.message}"
            )
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}")
    partial.write_text(json.dumps(expected))
    partial.replace(cached)  # atomic: another worker never reads half a file
    return expected


class GradedExecute(Preprocessor):
    """Execute the submission in a sandbox and write each test cell's verdict as its output."""

    enabled = Bool(True)  # a Preprocessor that is not enabled is silently skipped

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        aid = resources["nbgrader"]["assignment"]
        expected = expected_reports(aid)
        last_stop["reason"] = None
        run, reason = run_graded(nb, aid)
        if reason:
            last_stop["reason"] = reason
            raise NotebookStopped(reason)
        verdicts = _verdicts(run, expected)
        if not all(v.passed for v in verdicts.values()):
            verdicts = charged_once(nb, aid, verdicts, lambda again: _rerun(again, aid, expected))
        for cell, ran in zip(nb.cells, run.cells, strict=True):
            if cell.cell_type != "code":
                continue
            cell.execution_count = ran.execution_count
            if not notebooks.is_test(cell):
                cell.outputs = ran.outputs  # instructors see them
                continue
            verdict = verdicts[cell.metadata.nbgrader.grade_id]
            if verdict.passed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=verdict.message + "\n")]
            else:
                cell.outputs = [
                    nbformat.v4.new_output("error", ename="TestFailed", evalue=verdict.message, traceback=[])
                ]
        return nb, resources


def _verdicts(run: NotebookNode, expected: dict) -> dict[str, Verdict]:
    """{grade_id: verdict} of every test cell of an executed notebook."""
    verdicts = {}
    for cell in run.cells:
        if notebooks.is_test(cell):
            gid = cell.metadata.nbgrader.grade_id
            name = next((r.get("name") for r in expected.get(gid, [])), gid)
            hidden = notebooks.is_hidden_test(cell)
            verdicts[gid] = judge(name, expected.get(gid, []), reports(cell.outputs), error_name(cell.outputs), hidden)
    return verdicts


def _rerun(nb: NotebookNode, aid: str, expected: dict) -> dict[str, Verdict] | None:
    run, reason = run_graded(nb, aid)
    return None if reason else _verdicts(run, expected)
