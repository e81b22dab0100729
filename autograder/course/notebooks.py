"""What the course knows about notebooks, in one place for the grader and the tests: reading them,
what each nbgrader cell is, the regions a student never sees, and running a notebook in a kernel.

The cell functions take a cell as nbformat reads it or as raw JSON (a submission's cells are
raw: intake must read a mangled file as it is), and never raise on a cell whose metadata a
student mangled: such a cell simply is no grade, answer or test cell.
"""

import asyncio
import json
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
import zmq
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbgrader import utils
from traitlets.config import Config

from autograder.course.limits import CELL_OUTPUT_CHARS, MESSAGE_BYTES, NOTEBOOK_OUTPUT_CHARS

# -- reading ---------------------------------------------------------------------------------


def read(path: str | Path) -> NotebookNode:
    """The notebook at `path`, as nbformat 4: attribute access, every source a string."""
    nb: NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # nbformat has no hints
    return nb


# -- cells -----------------------------------------------------------------------------------

# A cell as nbformat reads it (a NotebookNode is a dict) or as raw JSON.
Cell = dict[str, Any]


def source(cell: Cell) -> str:
    """A cell's source as one string, whether stored as a string or as a list of lines."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def nbgrader_metadata(cell: Cell) -> dict[str, Any]:
    """A cell's nbgrader metadata, {} when it has none or it is not a mapping."""
    meta = cell.get("metadata")
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def grade_id(cell: Cell) -> Any:
    """A cell's nbgrader grade_id, or None."""
    return nbgrader_metadata(cell).get("grade_id")


def _node(cell: Cell) -> NotebookNode:
    # nbgrader.utils reads `cell.metadata.nbgrader` by attribute: a raw cell is wrapped, its
    # nbgrader metadata checked to be a mapping first.
    node: NotebookNode = NotebookNode(metadata=NotebookNode(nbgrader=nbgrader_metadata(cell)))  # type: ignore[no-untyped-call]
    return node


def is_graded(cell: Cell) -> bool:
    """A cell that earns points: a test cell or a manually graded answer."""
    return bool(utils.is_grade(_node(cell)))


def is_answer(cell: Cell) -> bool:
    """A cell the student writes in (code or markdown)."""
    return bool(utils.is_solution(_node(cell)))


def is_locked(cell: Cell) -> bool:
    """A cell nbgrader puts back from the source notebook when grading: tests, setup, given text."""
    return bool(utils.is_locked(_node(cell)))


def is_task(cell: Cell) -> bool:
    return bool(utils.is_task(_node(cell)))


def is_test(cell: Cell) -> bool:
    """A test cell: graded code that is not an answer; its output is the grader's verdict."""
    return cell.get("cell_type") == "code" and is_graded(cell) and not is_answer(cell)


def is_hidden_test(cell: Cell) -> bool:
    """A hidden test cell. Known by its grade_id, `..._hidden`, the only mark it keeps in the
    released notebook (its `### BEGIN HIDDEN TESTS` region is cut out there); a test keeps the
    two in step."""
    return is_test(cell) and str(grade_id(cell)).endswith("_hidden")


# -- what students never see -----------------------------------------------------------------

SOLUTION, HIDDEN_TESTS = "SOLUTION", "HIDDEN TESTS"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def regions(text: str, kinds: Iterable[str] = (SOLUTION, HIDDEN_TESTS)) -> list[str]:
    """The text inside each `### BEGIN <kind>` ... `### END <kind>` region of a cell's source."""
    kinds = set(kinds)
    return [body for kind, body in _REGION.findall(text) if kind in kinds]


def outside_regions(text: str) -> str:
    """A cell's source without its solution and hidden-test regions: what the release shows."""
    return _REGION.sub("", text)


def telling_lines(text: str) -> set[str]:
    """The stripped lines of `text` that could give a secret away: code of 25 characters or more
    (short lines such as `return out`, and comments, are everywhere)."""
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= 25 and not line.strip().startswith("#")}


def secret_lines(paths: Iterable[Path], kinds: Iterable[str] = (SOLUTION, HIDDEN_TESTS)) -> dict[str, str]:
    """{line: notebook file name} of the lines that must never reach a student: the telling lines
    inside the regions of `kinds` of the source notebooks at `paths`, unless one of those notebooks
    shows the same line outside its regions anyway."""
    kinds = tuple(kinds)
    secrets: dict[str, str] = {}
    shown: set[str] = set()
    for path in sorted(paths):
        for cell in read(path).cells:
            for body in regions(cell.source, kinds):
                secrets.update(dict.fromkeys(telling_lines(body), path.name))
            shown |= telling_lines(outside_regions(cell.source))
    return {line: name for line, name in secrets.items() if line not in shown}


# -- running ---------------------------------------------------------------------------------

# What a notebook's kernel may send back, in characters of text and encoded data, so that the
# grader's memory does not grow with what a notebook prints. A cell's output past
# CELL_OUTPUT_CHARS is dropped (only that cell's own checks can then fail); a notebook that sends
# more than NOTEBOOK_OUTPUT_CHARS in all is stopped (`OutputLimit`). A single message of more than
# MESSAGE_BYTES is never read: the client's socket drops the kernel's connection first, and the
# notebook's later output is lost with it (that message alone was past the notebook's allowance).
_OUTPUTS = {"stream", "display_data", "execute_result", "error", "update_display_data"}


class OutputLimit(RuntimeError):
    """The notebook sent more than NOTEBOOK_OUTPUT_CHARS of output: its kernel was killed."""


def output_chars(content: dict[str, Any]) -> int:
    """The size of one output message's content (or an output of a notebook): its text, its data
    (each value as it is encoded) and its traceback."""
    size = len(content.get("text") or "") if isinstance(content.get("text"), str) else 0
    data = content.get("data")
    if isinstance(data, dict):
        size += sum(len(v) if isinstance(v, str) else len(json.dumps(v, default=str)) for v in data.values())
    return size + sum(len(str(line)) for line in content.get("traceback") or []) + len(str(content.get("evalue", "")))


class _CappedClient(NotebookClient):
    """nbclient's client with the output caps above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = 0  # output characters of the whole notebook, dropped ones included
        self.kept: dict[int, int] = {}  # cell index -> output characters kept
        self.stopped: str | None = None
        self.monitor: zmq.Socket[bytes] | None = None  # of the IOPub connection's end

    async def async_start_new_kernel_client(self) -> Any:
        assert self.km is not None
        make = self.km.client

        def capped(**kw: Any) -> Any:
            kc = make(**kw)
            kc.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_BYTES)  # every socket it makes from now on
            return kc

        self.km.client = capped  # type: ignore[method-assign]  # only while nbclient makes its client
        try:
            kc = await super().async_start_new_kernel_client()
        finally:
            del self.km.client
        # A message past MESSAGE_BYTES ends the IOPub connection for good (zmq counts it a protocol
        # error: no reconnection), and each later cell would wait for output that cannot come.
        # Made from the client's own context, which closes it with the others (an unknown open
        # socket would hang that context's termination).
        watched = f"inproc://iopub-monitor-{id(self)}"
        kc.iopub_channel.socket.monitor(watched, zmq.EVENT_DISCONNECTED)
        self.monitor = kc.context.socket(zmq.PAIR)
        self.monitor.connect(watched)
        return kc

    async def _async_cleanup_kernel(self) -> None:
        if self.monitor is not None:
            self.monitor.close(linger=0)
        await super()._async_cleanup_kernel()

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, *args: Any, **kwargs: Any) -> NotebookNode:
        done = await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        lost = self.monitor is not None and not self.monitor.closed and int(self.monitor.get(zmq.EVENTS)) & zmq.POLLIN
        if lost and self.stopped is None:
            self.stopped = f"the notebook sent a message of more than {MESSAGE_BYTES // 2**20} MB"
            raise OutputLimit(self.stopped)
        return done

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> NotebookNode | None:
        kind = msg["msg_type"]
        if kind == "clear_output":
            self.kept[cell_index] = 0
        if kind not in _OUTPUTS:
            return super().process_message(msg, cell, cell_index)
        size = output_chars(msg["content"])
        self.sent += size
        if self.sent > NOTEBOOK_OUTPUT_CHARS:
            if self.stopped is None and self.km is not None:
                self.stopped = f"the notebook printed more than {NOTEBOOK_OUTPUT_CHARS // 2**20} MB of output"
                asyncio.ensure_future(self.km.provisioner.kill())  # type: ignore[union-attr]  # started: it has one
            return None
        kept = self.kept.get(cell_index, 0)
        if kept + size > CELL_OUTPUT_CHARS:
            if kept <= CELL_OUTPUT_CHARS:
                note = f"[output truncated: this cell printed more than {CELL_OUTPUT_CHARS // 2**20} MB]\n"
                cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=note))  # type: ignore[no-untyped-call]
                self.kept[cell_index] = CELL_OUTPUT_CHARS + 1
            return None
        self.kept[cell_index] = kept + size
        return super().process_message(msg, cell, cell_index)


def private_ipc() -> Config:
    """Configuration for one kernel manager: its kernel talks over Unix sockets in the user's
    private runtime folder. Over TCP every kernel start warns that the connection is unencrypted
    (ten warnings on a first `grade`). The sockets' path is absolute and unique: a relative one
    would resolve against the kernel's working folder, which is the notebook's, not ours."""
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    prefix = runtime / f"kernel-{uuid.uuid4().hex}"
    return Config({"KernelManager": {"transport": "ipc", "ip": str(prefix)}})


def client(
    nb: NotebookNode,
    folder: str | Path | None = None,
    timeout: float | None = None,
    km: KernelManager | None = None,
    **options: Any,
) -> "_CappedClient":
    """An nbclient client for `nb` on the python3 kernel, or on `km` (a sandbox's kernel manager),
    working in `folder` (None: where the kernel manager starts it). `options` go to nbclient.

    A kernel it starts itself talks over Unix sockets (`private_ipc`)."""
    return _CappedClient(
        nb,
        km=km,
        config=private_ipc(),
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(folder)}} if folder else {},
        **options,
    )


def run(
    nb: NotebookNode,
    folder: str | Path | None,
    timeout: float | None,
    km: KernelManager | None = None,
    env: dict[str, str] | None = None,
    **options: Any,
) -> NotebookNode:
    """Execute `nb` in place, each cell allowed `timeout` seconds (see `client`); `env`, when
    given, is the kernel's whole environment. Returns `nb`. Raises OutputLimit when the notebook
    sends more than NOTEBOOK_OUTPUT_CHARS of output, or one message past MESSAGE_BYTES (a cell's
    output past CELL_OUTPUT_CHARS is dropped, with a note)."""
    nc = client(nb, folder, timeout, km, **options)
    try:
        nc.execute(**({"env": env} if env else {}))
    except Exception as e:
        if nc.stopped:
            raise OutputLimit(nc.stopped) from e
        raise
    if nc.stopped:  # killed after its last cell had answered
        raise OutputLimit(nc.stopped)
    return nb
