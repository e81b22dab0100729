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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import nbformat
from jupyter_client.manager import KernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool, Instance, Integer

from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.files import write_whole
from autograder.course.limits import Limits
from autograder.course.paths import ENGINE_FILE, IN_NOTEBOOK, WORK
from autograder.course.reference import reference_engine
from autograder.worker.charge import charged_once
from autograder.worker.graded_source import moved_seed, perturbed, stripped
from autograder.worker.report import BadReport, Report, parse
from autograder.worker.verdict import Verdict, error_name, judge, observations, reports

if TYPE_CHECKING:
    from autograder.sandbox import Sandbox

STAND_IN = IN_NOTEBOOK / "torch_stand_in.py"

# (files, limits, env) of a graded run, as `Sandbox` takes them: see `sandbox_inputs`.
Inputs = tuple[dict[str, Path], Limits, dict[str, str]]


class NotebookStopped(RuntimeError):
    pass


class _Kept:
    """An object a worker keeps across its notebooks and hands to each GradedExecute, which nbgrader
    makes afresh for every notebook from configuration. traitlets copies configuration values
    deeply on the way; this one must arrive as itself, so that what one side keeps the other sees."""

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class _Held(NamedTuple):
    made_for: tuple[Inputs, int]  # (sandbox_inputs, slot)
    box: "Sandbox"
    km: KernelManager  # its kernel, started


class Spare(_Kept):
    """A sandbox with its kernel already started, for a worker's next notebook: it boots while
    nbgrader records this one. Made fresh after each notebook and used once; nothing runs in it
    before. Only a worker keeps one, and discards it when it ends (`discard`)."""

    def __init__(self) -> None:
        self.held: _Held | None = None

    def take(self, wanted: Inputs, slot: int) -> tuple["Sandbox", KernelManager]:
        """(sandbox, kernel manager) for a notebook that needs `wanted` (`sandbox_inputs`): the
        one held if it was made for exactly that and this slot, else a new one whose kernel nbclient starts."""
        held, self.held = self.held, None
        if held is not None:
            if held.made_for == (wanted, slot) and run_sync(held.km.is_alive)():  # type: ignore[arg-type]  # an AsyncKernelManager
                return held.box, held.km
            held.box.close()
        box = _new_box(wanted, slot)
        return box, box.kernel_manager()

    def start(self, wanted: Inputs, slot: int) -> None:
        """Make the next notebook's sandbox and start its kernel now."""
        self.discard()
        box = _new_box(wanted, slot)
        try:
            km = box.kernel_manager()
            run_sync(km.start_kernel)()  # type: ignore[arg-type]  # an AsyncKernelManager: a coroutine
        except Exception:  # the next notebook then starts its own kernel, as without a spare
            box.close()
            return
        self.held = _Held((wanted, slot), box, km)

    def discard(self) -> None:
        """Close the sandbox held, if any (its kernel never ran a cell)."""
        held, self.held = self.held, None
        if held is not None:
            held.box.close()


def run_graded(
    nb: NotebookNode,
    aid: str,
    reference: bool = False,
    *,
    slot: int = 0,
    sandboxed: bool = True,
    spare: Spare | None = None,
) -> tuple[NotebookNode, str | None]:
    """Execute a copy of `nb` as grading does; return (the executed copy, why it was stopped or None).
    A submission's test cells run stripped of what their checks are compared with; the
    reference's run whole, to report the expected values, bounds and messages. The kernel runs in
    a sandbox as uid slot `slot` (or, not `sandboxed`, in a folder of its own), and with a `spare`,
    in the sandbox it holds; another is started in it for the next notebook.
    A kernel that dies before its first cell is the machine's fault, not the notebook's: try again."""
    for _ in range(3):
        run, reason = _run_once(nb, aid, reference, slot, sandboxed, spare)
        if reason is None or any(c.get("execution_count") for c in run.cells if c.cell_type == "code"):
            return run, reason
    return run, reason


def _run_once(
    nb: NotebookNode, aid: str, reference: bool, slot: int, sandboxed: bool, spare: Spare | None
) -> tuple[NotebookNode, str | None]:
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
    if sandboxed:
        box, km = spare.take(wanted, slot) if spare is not None else _fresh(wanted, slot)
        with box:
            reason = _execute(run, km, lim, box.close, None, {})
            why = box.stop_reason()
        if spare is not None:
            spare.start(wanted, slot)
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


def sandbox_inputs(aid: str) -> Inputs:
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


def _new_box(wanted: Inputs, slot: int) -> "Sandbox":
    from autograder import sandbox

    files, lim, env = wanted
    return sandbox.Sandbox(files, lim, slot=slot, env=env)


def _fresh(wanted: Inputs, slot: int) -> tuple["Sandbox", KernelManager]:
    """A new sandbox, and its kernel manager: nbclient starts the kernel."""
    box = _new_box(wanted, slot)
    return box, box.kernel_manager()


def _execute(
    run: NotebookNode,
    km: KernelManager,
    lim: Limits,
    kill: Callable[[], object],
    cwd: str | None,
    env: dict[str, str],
) -> str | None:
    """Run every cell; stop the whole notebook at its wall-time limit."""
    stopped = threading.Event()

    def timeout() -> None:
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


def expected_reports(aid: str) -> dict[str, list[Report]]:
    """{grade_id: reports} of the reference solution, run as grading runs a submission; cached
    by the content of the solutions and the engine it uses."""
    engine = reference_engine(aid)
    here = Path(__file__).parent
    key = hashlib.sha256(
        assignment(aid).source_bytes
        + (engine.read_bytes() if engine else b"")
        + (IN_NOTEBOOK / "kit.py").read_bytes()
        + b"".join((here / name).read_bytes() for name in ("report.py", "verdict.py", "graded_source.py"))
        + STAND_IN.read_bytes()
    ).hexdigest()[:20]
    cached = WORK / "expected" / f"{aid}-{key}.json"
    if cached.exists():
        return {gid: [parse(r) for r in found] for gid, found in json.loads(cached.read_text()).items()}
    run, reason = run_graded(assignment(aid).notebook, aid, reference=True)  # run on a copy
    if reason:
        raise RuntimeError(f"the reference solution of {aid} did not run to the end: {reason}")
    try:
        expected = {notebooks.grade_id(cell): reports(cell.outputs) for cell in run.cells if notebooks.is_test(cell)}
    except BadReport as e:
        raise RuntimeError(f"the reference solution of {aid} printed a report the grader cannot read: {e}") from e
    empty = [gid for gid, found in expected.items() if not any(r.kind == "done" for r in found)]
    if empty:
        raise RuntimeError(f"the reference solution of {aid} did not finish test cells {empty}")
    for gid, found in expected.items():  # moved inputs must not take the reference past a bound
        verdict = judge(gid, found, [r.observation for r in found], None, False)
        if not verdict.passed:
            raise RuntimeError(
                f"the reference solution of {aid} fails its own test {gid} on moved inputs: {verdict.message}"
            )
    # another worker never reads half of it
    write_whole(cached, json.dumps({gid: [r.to_json() for r in found] for gid, found in expected.items()}))
    return expected


@dataclass
class Outcome(_Kept):
    """What GradedExecute decided about a notebook, for the worker that asked: each test cell's
    verdict by grade_id (the outputs nbgrader scores are written from them), or why the notebook
    was stopped before any was decided."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    stopped: str | None = None


class GradedExecute(Preprocessor):
    """Execute the submission in a sandbox and write each test cell's verdict as its output.
    Configured as nbgrader's own preprocessors are: `c.GradedExecute.slot = 1`."""

    enabled = Bool(True)  # a Preprocessor that is not enabled is silently skipped
    slot = Integer(0, help="The worker's number: its kernels run as the sandbox's uid of that slot.").tag(config=True)
    sandboxed = Bool(True, help="Run each kernel in a sandbox.").tag(config=True)
    spare = Instance(Spare, allow_none=True, help="The worker's kernel started ahead; None to start none ahead.").tag(
        config=True
    )
    outcome = Instance(Outcome, allow_none=True, help="Where the worker reads what was decided.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        aid = resources["nbgrader"]["assignment"]
        outcome = self.outcome if self.outcome is not None else Outcome()
        expected = expected_reports(aid)
        run, reason = self._run(nb, aid)
        if reason:
            outcome.stopped = reason
            raise NotebookStopped(reason)
        verdicts = _verdicts(run, expected)
        if not all(v.passed for v in verdicts.values()):
            verdicts = charged_once(nb, aid, verdicts, lambda again: self._rerun(again, aid, expected))
        outcome.verdicts = verdicts
        for cell, ran in zip(nb.cells, run.cells, strict=True):
            if cell.cell_type != "code":
                continue
            cell.execution_count = ran.execution_count
            if not notebooks.is_test(cell):
                cell.outputs = ran.outputs  # instructors see them
                continue
            cell.outputs = [verdict_output(verdicts[notebooks.grade_id(cell)])]
        return nb, resources

    def _run(self, nb: NotebookNode, aid: str) -> tuple[NotebookNode, str | None]:
        return run_graded(nb, aid, slot=self.slot, sandboxed=self.sandboxed, spare=self.spare)

    def _rerun(self, nb: NotebookNode, aid: str, expected: dict[str, list[Report]]) -> dict[str, Verdict] | None:
        run, reason = self._run(nb, aid)
        return None if reason else _verdicts(run, expected)


def verdict_output(verdict: Verdict) -> NotebookNode:
    """The output a test cell is given for nbgrader to score: text for a pass, an error for a failure."""
    new_output: Callable[..., NotebookNode] = nbformat.v4.new_output  # nbformat has no type hints
    if verdict.passed:
        return new_output("stream", name="stdout", text=verdict.message + "\n")
    return new_output("error", ename="TestFailed", evalue=verdict.message, traceback=[])


def _verdicts(run: NotebookNode, expected: dict[str, list[Report]]) -> dict[str, Verdict]:
    """{grade_id: verdict} of every test cell of an executed notebook."""
    verdicts = {}
    for cell in run.cells:
        if notebooks.is_test(cell):
            gid = notebooks.grade_id(cell)
            name = next((r.name for r in expected.get(gid, [])), gid)
            hidden = notebooks.is_hidden_test(cell)
            found = observations(cell.outputs)
            verdicts[gid] = judge(name, expected.get(gid, []), found, error_name(cell.outputs), hidden)
    return verdicts
