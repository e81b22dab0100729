"""What the course knows about notebooks, in one place for the grader and the tests: reading them,
what each nbgrader cell is, the regions a student never sees, and running a notebook in a kernel.

The cell functions take a cell as nbformat reads it or as raw JSON (a submission's cells are
raw: intake must read a mangled file as it is), and never raise on a cell whose metadata a
student mangled: such a cell simply is no grade, answer or test cell.
"""

import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbgrader import utils  # type: ignore[import-untyped]  # nbgrader ships no type hints
from traitlets.config import Config

# -- reading ---------------------------------------------------------------------------------


def read(path: str | Path) -> NotebookNode:
    """The notebook at `path`, as nbformat 4: attribute access, every source a string."""
    return nbformat.read(path, as_version=4)


# -- cells -----------------------------------------------------------------------------------


def source(cell: dict) -> str:
    """A cell's source as one string, whether stored as a string or as a list of lines."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def nbgrader_metadata(cell: dict) -> dict:
    """A cell's nbgrader metadata, {} when it has none or it is not a mapping."""
    meta = cell.get("metadata")
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def grade_id(cell: dict) -> Any:
    """A cell's nbgrader grade_id, or None."""
    return nbgrader_metadata(cell).get("grade_id")


def _node(cell: dict) -> NotebookNode:
    # nbgrader.utils reads `cell.metadata.nbgrader` by attribute: a raw cell is wrapped, its
    # nbgrader metadata checked to be a mapping first.
    return NotebookNode(metadata=NotebookNode(nbgrader=nbgrader_metadata(cell)))


def is_graded(cell: dict) -> bool:
    """A cell that earns points: a test cell or a manually graded answer."""
    return bool(utils.is_grade(_node(cell)))


def is_answer(cell: dict) -> bool:
    """A cell the student writes in (code or markdown)."""
    return bool(utils.is_solution(_node(cell)))


def is_locked(cell: dict) -> bool:
    """A cell nbgrader puts back from the source notebook when grading: tests, setup, given text."""
    return bool(utils.is_locked(_node(cell)))


def is_task(cell: dict) -> bool:
    return bool(utils.is_task(_node(cell)))


def is_test(cell: dict) -> bool:
    """A test cell: graded code that is not an answer; its output is the grader's verdict."""
    return cell.get("cell_type") == "code" and is_graded(cell) and not is_answer(cell)


def is_hidden_test(cell: dict) -> bool:
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
) -> NotebookClient:
    """An nbclient client for `nb` on the python3 kernel, or on `km` (a sandbox's kernel manager),
    working in `folder` (None: where the kernel manager starts it). `options` go to nbclient.

    A kernel it starts itself talks over Unix sockets (`private_ipc`)."""
    return NotebookClient(
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
    given, is the kernel's whole environment. Returns `nb`."""
    client(nb, folder, timeout, km, **options).execute(**({"env": env} if env else {}))
    return nb
