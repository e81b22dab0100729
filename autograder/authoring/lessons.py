"""Lessons are committed with their outputs, so the course reads well on GitHub. Outputs are
made only by `python -m autograder lessons`, which stamps each notebook with a digest of the
sources it ran; a test fails when a lesson's sources changed after its outputs were made."""

import hashlib
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.course import notebooks
from autograder.course.paths import LESSONS


def source_digest(nb: NotebookNode) -> str:
    sources = "\x00".join(f"{c.cell_type}\x01{c.source}" for c in nb.cells)
    return hashlib.sha256(sources.encode()).hexdigest()


def run_alone(path: str | Path, timeout: float = 120) -> NotebookNode:
    """Execute a notebook copied alone into an empty folder, as Colab opens it; return it."""
    nb = notebooks.read(path)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / Path(path).name)
        return notebooks.run(nb, tmp, timeout)


def refresh(paths: list[Path] | None = None) -> list[Path]:
    """Re-run each lesson and store its outputs with the digest of its sources."""
    written = []
    for path in paths or sorted(LESSONS.glob("*.ipynb")):
        nb = run_alone(path)
        nb.metadata["course"] = {"outputs_from_sources": source_digest(nb)}
        nbformat.write(nb, path)  # type: ignore[no-untyped-call]  # nbformat has no hints
        written.append(path)
    return written
