"""The reference package that stands in for a student's own at grading time.

Exercises 3-6 and the capstone load `micrograd/`, the package the student saved at the end of an
earlier exercise. Grading puts the reference version beside the notebook instead, as one file,
`micrograd.zip` (Python imports from a zip on sys.path), so a mistake in an earlier exercise never
costs points in a later one, and no folder the notebook writes can take its place.
"""

import hashlib
import tempfile
import zipfile
from pathlib import Path

from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.files import replaced_whole
from autograder.course.paths import ENGINE_FILE, SOLUTIONS, WORK


def reference_engine(aid: str) -> Path | None:
    """Path to the engine as it stands when `aid` starts, or None if `aid` needs none.

    Built by running the solution notebooks that come before `aid` and save an engine, in
    order, each beside the engine of the one before; cached by the content of those notebooks.
    """
    chain = assignment(aid).engine_chain
    if not assignment(aid).needs_engine:
        return None
    if not chain:
        raise RuntimeError(f"{aid} imports {ENGINE_FILE} but no earlier solution saves one")
    digest = hashlib.sha256(b"".join(assignment(a).source_bytes for a in chain)).hexdigest()[:16]
    cached = WORK / "engines" / digest / ENGINE_FILE
    if cached.exists():
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        for a in chain:
            notebooks.run(notebooks.read(SOLUTIONS / f"{a}.ipynb"), tmp, timeout=120)
        cached.parent.mkdir(parents=True, exist_ok=True)
        with replaced_whole(cached) as partial:  # a concurrent grader never reads half a file
            zip_package(Path(tmp) / "micrograd", partial)
    return cached


# nbgrader's region markers, left in the saved package by running the sources themselves
MARKERS = {f"### {marker}" for marker in notebooks.MARKERS}


def zip_package(folder: Path, out: Path) -> None:
    """`folder` (a package) as a zip with the same bytes for the same files: sorted, fixed dates."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(Path(folder).rglob("*.py")):
            info = zipfile.ZipInfo(f"{Path(folder).name}/{path.relative_to(folder).as_posix()}", (1980, 1, 1, 0, 0, 0))
            text = "".join(line for line in path.read_text().splitlines(keepends=True) if line.strip() not in MARKERS)
            z.writestr(info, text, zipfile.ZIP_DEFLATED)
