"""One assignment as the grader knows it: every fact read from its source notebook, once per process.

`assignment("02_value_backward")` reads `solutions/02_value_backward.ipynb` the first time it is
asked (and again only if that file changes) and answers from memory after that: its cells, its
limits, the imports an answer may use, its points, the cells graded by hand, the earlier
assignments whose saved package it loads, and the secret its test cells are moved with.
"""

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nbformat import NotebookNode

from autograder.course import notebooks
from autograder.course.limits import OVERRIDABLE, Limits
from autograder.course.paths import SOLUTIONS, assignments

# What an answer may import when its source notebook names nothing else.
DEFAULT_ALLOWED_IMPORTS = ("math", "random")


@dataclass(frozen=True)
class Assignment:
    id: str
    source: Path  # solutions/ID.ipynb
    source_bytes: bytes
    notebook: NotebookNode  # shared by every caller: copy it before changing it
    limits: Limits
    allowed_imports: frozenset[str]
    points: dict[str, float]  # {grade_id: points} of every cell with points (tests, written answers, tasks)
    hand_graded: frozenset[str]  # written answers and tasks: graded by hand, never by the autograder
    answer_ids: tuple[str, ...]  # the code answer cells, in notebook order
    reference_answers: dict[str, str]  # {grade_id: the reference answer, solution markers removed}
    whole_run: frozenset[str]  # test cells that judge a whole run of the student's code
    saves_engine: bool  # ends by saving the student's package
    needs_engine: bool  # loads the package an earlier assignment saved
    engine_chain: tuple[str, ...]  # the earlier assignments whose saves build the package it loads
    salt: str  # a secret as long as the solutions are: a digest of the source notebook

    @property
    def max_score(self) -> float:
        return sum(self.points.values())

    @property
    def autograded_points(self) -> float:
        return sum(p for gid, p in self.points.items() if gid not in self.hand_graded)

    @property
    def tests_bytes(self) -> bytes:
        """What a graded result depends on besides the submission: this source notebook (its hidden
        tests) and those its reference package is built from."""
        return self.source_bytes + b"".join(assignment(a).source_bytes for a in self.engine_chain)

    def cell_order(self) -> list[str]:
        return [notebooks.grade_id(c) for c in self.notebook.cells]


def assignment(aid: str) -> Assignment:
    """The assignment `aid` of solutions/, read once per process (and again if its file changes)."""
    stat = (SOLUTIONS / f"{aid}.ipynb").stat()
    return _read(aid, stat.st_mtime_ns, stat.st_size)


@cache
def _read(aid: str, mtime_ns: int, size: int) -> Assignment:
    source = SOLUTIONS / f"{aid}.ipynb"
    raw = source.read_bytes()
    nb = notebooks.read(source)
    course = nb.metadata.get("course", {})
    meta = [notebooks.nbgrader_metadata(c) for c in nb.cells]
    allowed = course.get("allowed_imports")
    saves = any(m.get("grade_id") == "save_engine" for m in meta)
    needs = any(c.cell_type == "code" and "load_micrograd(" in c.source for c in nb.cells)
    chain = tuple(a for a in assignments() if a < aid and _saves_engine(a)) if needs else ()
    overrides = {k: v for k, v in course.get("limits", {}).items() if k in OVERRIDABLE}
    limits = Limits(**overrides)
    return Assignment(
        id=aid,
        source=source,
        source_bytes=raw,
        notebook=nb,
        limits=Limits(**overrides, cpu_seconds=int(2 * limits.wall_seconds)),
        allowed_imports=frozenset(allowed if isinstance(allowed, list) else DEFAULT_ALLOWED_IMPORTS),
        points={m["grade_id"]: float(m.get("points", 0)) for m in meta if m.get("grade") or m.get("task")},
        hand_graded=frozenset(m["grade_id"] for m in meta if (m.get("grade") and m.get("solution")) or m.get("task")),
        answer_ids=tuple(notebooks.grade_id(c) for c in nb.cells if notebooks.is_answer(c) and c.cell_type == "code"),
        reference_answers=_reference_answers(nb),
        whole_run=frozenset(course.get("whole_run", [])),
        saves_engine=saves,
        needs_engine=needs,
        engine_chain=chain,
        salt=hashlib.sha256(raw).hexdigest(),
    )


# The lines nbgrader's solution markers take up in a source cell.
_MARKER_LINES = tuple(f"### {marker}" for marker in notebooks.MARKERS if marker.endswith(notebooks.SOLUTION))


def _reference_answers(nb: NotebookNode) -> dict[str, str]:
    answers = {}
    for cell in nb.cells:
        if notebooks.is_answer(cell):
            lines = [line for line in cell.source.splitlines(keepends=True) if line.strip() not in _MARKER_LINES]
            answers[notebooks.grade_id(cell)] = "".join(lines)
    return answers


def _saves_engine(aid: str) -> bool:
    return assignment(aid).saves_engine
