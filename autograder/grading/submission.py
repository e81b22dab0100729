"""One submitted file on its way through the grader: whose it is, what intake made of it, and its result.

The scores are read from the worker's Result as it is (it is also what the signed cache holds), with
the hand grades of the cells graded by hand in place of theirs and the late penalty taken off: the
Result itself is never changed.
"""

import atexit
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.course.paths import WORK
from autograder.worker.result import Result, Status

UNSAFE_NOTE = "graded WITHOUT a sandbox (--unsafe-no-sandbox)"


@dataclass
class Submission:
    student: str
    path: Path
    assignment: str | None = None
    state: Status = Status.NOT_GRADED
    reason: str = ""  # of an error, a review or a superseded file
    notes: list[str] = field(default_factory=list)
    spooled: Path | None = None  # the notebook as intake repaired it, kept on disk (see `notebook`)
    digest: str | None = None  # of the repaired notebook and of the tests it is graded with
    result: Result | None = None  # as the worker graded it, before manual grades
    hand: dict[str, float] = field(default_factory=dict)  # grade_id -> points given by hand, in the order given
    late_penalty: float = 0.0
    review: list[str] = field(default_factory=list)  # why the instructor should read its answers

    def take(self, result: Result) -> None:
        """Hold `result`, as the worker graded it or the cache kept it; its status becomes this one's."""
        self.state, self.reason = result.status, result.reason
        self.notes += result.notes
        if result.sandbox is False:
            self.notes.append(UNSAFE_NOTE)
        self.result = result

    @property
    def tests(self) -> dict[str, tuple[float, float]]:
        """{grade_id: (score, max_score)}, hand grades in place of the worker's scores."""
        if self.result is None:
            return {}
        return {gid: (self.hand.get(gid, t.score), t.max_score) for gid, t in self.result.tests.items()}

    @property
    def score(self) -> float:
        if self.result is None:
            return 0.0
        score = self.result.score
        for gid, value in self.hand.items():  # one addition a hand grade, in order: the sum as it always was
            score += value - (self.result.tests[gid].score or 0.0)
        return score - self.late_penalty

    @property
    def max_score(self) -> float:
        return self.result.max_score if self.result else 0.0

    @property
    def pending(self) -> float:
        """The points of hand-graded cells that have no score yet."""
        if self.result is None:
            return 0.0
        pending = self.result.pending
        for gid in self.hand:
            if gid in self.result.awaiting:
                pending = max(0.0, pending - self.result.tests[gid].max_score)
        return pending

    @property
    def has_notebook(self) -> bool:
        """Whether intake kept a notebook to grade (known without reading it)."""
        return self.spooled is not None

    @property
    def notebook(self) -> dict[str, Any] | None:
        """The notebook as intake repaired it. It is read from disk at each use, so that the grader
        holds one notebook at a time, never the cohort's."""
        return json.loads(self.spooled.read_bytes()) if self.spooled else None

    @notebook.setter
    def notebook(self, nb: dict[str, Any] | None) -> None:
        if self.spooled:
            self.spooled.unlink(missing_ok=True)
            self.spooled = None
        if nb is not None:
            fd, path = tempfile.mkstemp(suffix=".ipynb", dir=_spool())  # mode 0600
            with os.fdopen(fd, "w") as f:
                json.dump(nb, f)
            self.spooled = Path(path)

    @property
    def status(self) -> str:
        """The status as grades.csv prints it."""
        label = Status.ERROR.value if self.state is Status.SUPERSEDED else self.state.value
        return f"{label}: {self.reason}" if self.reason else label


def _spool() -> str:
    """This process's folder of repaired notebooks (mode 0700), removed at exit."""
    folder = _spool_folder()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


@functools.cache
def _spool_folder() -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="intake-", dir=WORK)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
