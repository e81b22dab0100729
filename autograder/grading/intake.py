"""Intake: before nbgrader sees a submission, recognise its assignment and repair its cells.

Students rename files (`Copy of 02_value_backward.ipynb`, `02_value_backward (1).ipynb`,
`alice_02_value_backward.ipynb`), and Colab or a copy-paste can drop or alter the nbgrader
metadata that tells nbgrader which cell is which; without it nbgrader scores 0 silently.
Each submitted cell is matched to the released notebook by its grade_id, else by its content
and position, and given the released cell's metadata back. An ambiguous match is reported,
not guessed.

`intake(submissions)` takes in a cohort (of two files of one student for one assignment, the
newest counts); `recognise(path)` one file.
"""

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from autograder.course.limits import FILE_BYTES, JSON_DEPTH
from autograder.course.notebooks import grade_id, is_answer, is_graded, is_locked, read, source
from autograder.course.paths import assignments, release_path
from autograder.grading.submission import Submission
from autograder.worker.result import Status


@dataclass
class Intake:
    assignment: str | None = None
    notebook: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@cache
def released(aid: str) -> list[NotebookNode]:
    """The released cells of an assignment that carry nbgrader metadata, in order."""
    path = release_path(aid)
    cells = read(path).cells if path.exists() else []  # not built yet
    return [c for c in cells if grade_id(c)]


# A notebook of this course is well under 1 MB; one with large plots a few MB. Checked before
# parsing: a huge or deeply nested file must not take the grader's memory or stack.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(raw: bytes) -> bool:
    """Whether the JSON text `raw` nests arrays and objects deeper than JSON_DEPTH, read without
    parsing it: strings removed, then the innermost empty pairs, one level per pass."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(JSON_DEPTH):
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if shorter == brackets:
            return False  # balanced (nothing left) or broken JSON, which the parser reports
        brackets = shorter
    return bool(brackets)


def read_notebook(path: str | Path) -> dict[str, Any] | Intake:
    """The notebook at `path` as raw JSON (a submission is read as it is, however mangled), or an
    Intake carrying the reason it is not one."""
    with open(path, "rb") as f:
        raw = f.read(FILE_BYTES + 1)
    if len(raw) > FILE_BYTES:
        return Intake(
            error=f"the file is larger than {FILE_BYTES // 2**20} MB (clear the outputs and hand it in again)"
        )
    if not raw.strip():
        return Intake(error="the file is empty")
    if _too_deep(raw):
        return Intake(error=f"not a readable notebook: nested deeper than {JSON_DEPTH} levels")
    try:
        nb = json.loads(raw.decode("utf-8", errors="replace"))
    except (json.JSONDecodeError, RecursionError) as e:
        line = f" at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        return Intake(error=f"not a readable notebook: broken JSON{line}")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return Intake(error="not a Jupyter notebook (no list of cells)")
    nb["cells"] = [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")]
    for number, cell in enumerate(nb["cells"], 1):
        problem = _malformed(cell)
        if problem:
            return Intake(error=f"not a readable notebook: in cell {number}, {problem}")
    return nb


def _malformed(cell: dict[str, Any]) -> str | None:
    """What in a cell's source or nbgrader metadata has a type no notebook tool writes."""
    src = cell.get("source", "")
    if not isinstance(src, str) and not (isinstance(src, list) and all(isinstance(line, str) for line in src)):
        return "the source is neither text nor a list of lines"
    meta = cell.get("metadata")
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    if isinstance(nbgrader, dict) and not isinstance(nbgrader.get("grade_id", ""), str):
        return "the nbgrader grade_id is not text"
    return None


def submission_name(path: str | Path) -> str:
    """A submitted file's name without what copying adds: `Copy of X (1).ipynb` -> `x`."""
    return re.sub(r"^copy of |\s*\(\d+\)$", "", Path(path).stem.lower())


def assignment_from_name(path: str | Path, known: list[str]) -> str | None:
    """The assignment a file name points at, tolerating copies, numbering and student ids."""
    name = submission_name(path)
    for aid in known:
        if aid in name or aid.split("_", 1)[-1] in name:
            return aid
    for parent in Path(path).parents:
        if parent.name in known:
            return parent.name
    return None


def _content_match(nb: dict[str, Any], aid: str) -> int:
    """How many of the released locked cells of `aid` appear in `nb`, by grade_id or text."""
    ids = {grade_id(c) for c in nb["cells"]}
    texts = {source(c).strip() for c in nb["cells"]}
    return sum(1 for r in released(aid) if is_locked(r) and (grade_id(r) in ids or r.source.strip() in texts))


def intake(submissions: list[Submission]) -> list[Submission]:
    """Recognise and repair each file (or say why it cannot be graded); of two files for one
    assignment, the newest counts. Returns `submissions`. Those already taken in are left as they
    are, so that a caller may take in a cohort, choose among it, and grade what it chose."""
    newest: dict[tuple[str, str], Submission] = {}
    for s in submissions:
        if s.assignment is not None or s.state is not Status.NOT_GRADED:
            continue
        try:
            aid = _take_in(s)
        except Exception as e:  # one file's surprise is its own error row, never the batch's end
            s.state, s.reason, s.notebook, aid = Status.ERROR, f"intake failed ({type(e).__name__})", None, None
        if aid:
            _keep_newest(newest, (s.student, aid), s)
    return submissions


def _take_in(s: Submission) -> str | None:
    """The assignment of `s`, its notebook repaired; None, with the error, if it has none."""
    if s.path.suffix != ".ipynb":
        s.state, s.reason = Status.ERROR, f"{s.path.name} is not a notebook (.ipynb)"
        return None
    got = recognise(s.path)
    s.notes += got.notes
    if got.error:
        s.state, s.reason = Status.ERROR, got.error
        return None
    s.assignment, s.notebook = got.assignment, got.notebook
    return s.assignment


def _keep_newest(newest: dict[tuple[str, str], Submission], key: tuple[str, str], s: Submission) -> None:
    old = newest.setdefault(key, s)
    if old is not s:
        keep, drop = (s, old) if s.path.stat().st_mtime >= old.path.stat().st_mtime else (old, s)
        drop.state, drop.reason = Status.SUPERSEDED, f"superseded by {keep.path.name}"
        drop.notebook = None  # never graded nor reviewed: not kept
        newest[key] = keep


def recognise(path: str | Path, known: list[str] | None = None) -> Intake:
    """Recognise and repair one submitted file."""
    known = known or assignments()
    nb = read_notebook(path)
    if isinstance(nb, Intake):
        return nb
    by_name = assignment_from_name(path, known)
    scores = {aid: _content_match(nb, aid) for aid in known}
    by_content = max(known, key=lambda aid: scores[aid])
    result = Intake(notebook=nb)
    if scores[by_content] == 0:
        if by_name is None:
            return Intake(error=f"{Path(path).name} is not a notebook of this course")
        result.assignment = by_name
        result.notes.append("no cell of the released notebook was found in it")
    elif by_name is None or scores[by_content] > scores[by_name]:
        result.assignment = by_content
        if by_name:
            result.notes.append(f"named like {by_name} but its cells are those of {by_content}")
    else:
        result.assignment = by_name
    restore_metadata(nb, result.assignment, result.notes)
    return result


def restore_metadata(nb: dict[str, Any], aid: str, notes: list[str]) -> dict[str, Any]:
    """Give every cell that corresponds to a released graded/locked/answer cell that cell's
    nbgrader metadata (checksum included); take nbgrader metadata off every other cell."""
    release, cells = released(aid), nb["cells"]
    match = _by_grade_id(cells, release)
    match |= _by_text(cells, release, match)
    answers, ambiguous = _by_anchors(cells, release, match)
    match |= answers
    notes += [f"could not tell which cell answers {gid}: graded as unanswered" for gid in ambiguous]
    repaired = _set_metadata(cells, match, release)
    if repaired:
        notes.append(f"restored the nbgrader metadata of {repaired} cell(s)")
    missing = [grade_id(r) for r in release if grade_id(r) not in match and is_graded(r)]
    if missing:
        notes.append(f"test cell(s) missing, put back: {', '.join(missing)}")
    return nb


def _by_grade_id(cells: list[dict[str, Any]], release: list[NotebookNode]) -> dict[str, int]:
    """{grade_id: index of the first cell of `cells` that has it and the released cell's type}."""
    types = {grade_id(r): r.cell_type for r in release}
    match: dict[str, int] = {}
    for i, cell in enumerate(cells):
        gid = grade_id(cell)
        if gid in types and gid not in match and cell.get("cell_type") == types[gid]:
            match[gid] = i
    return match


def _by_text(cells: list[dict[str, Any]], release: list[NotebookNode], match: dict[str, int]) -> dict[str, int]:
    """For released cells not in `match`: the first cell not yet matched whose text is theirs."""
    taken, found = set(match.values()), {}
    for r in release:
        gid = grade_id(r)
        if gid in match:
            continue
        same = [i for i, c in enumerate(cells) if i not in taken and source(c).strip() == r.source.strip()]
        if same:
            found[gid] = same[0]
            taken.add(same[0])
    return found


def _by_anchors(
    cells: list[dict[str, Any]], release: list[NotebookNode], match: dict[str, int]
) -> tuple[dict[str, int], list[str]]:
    """For answer cells not in `match`: the one cell between their matched neighbours that keeps
    the most of their given lines; and the answers for which two cells keep as many."""
    known, ambiguous = dict(match), []  # each match narrows the windows of the answers after it
    for r in release:
        gid = grade_id(r)
        if gid in known or not is_answer(r):
            continue
        lo, hi = _window(release, gid, known, len(cells))
        anchors = _anchors(r)
        scored = [
            (len(anchors & _anchors(cells[i])), i)
            for i in range(lo, hi)
            if i not in known.values() and cells[i].get("cell_type") == r.cell_type
        ]
        best = max((s for s, _ in scored), default=0)
        winners = [i for s, i in scored if s == best]
        if best and len(winners) == 1:
            known[gid] = winners[0]
        elif best:
            ambiguous.append(gid)
    return {gid: i for gid, i in known.items() if gid not in match}, ambiguous


def _anchors(cell: dict[str, Any]) -> set[str]:
    """Lines that identify an answer cell: its given lines, not the stub's placeholder."""
    return {
        line.strip()
        for line in source(cell).splitlines()
        if line.strip() and line.strip() not in ("# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE")
    }


def _window(release: list[NotebookNode], gid: str, match: dict[str, int], n: int) -> tuple[int, int]:
    """Indices between the matched released cells just before and just after `gid`."""
    order = [grade_id(r) for r in release]
    k = order.index(gid)
    before = [match[g] for g in order[:k] if g in match]
    after = [match[g] for g in order[k + 1 :] if g in match]
    return (max(before) + 1 if before else 0), (min(after) if after else n)


def _set_metadata(cells: list[dict[str, Any]], match: dict[str, int], release: list[NotebookNode]) -> int:
    """Put the released nbgrader metadata on each matched cell and take it off every other cell;
    return how many cells it changed."""
    by_index = {i: gid for gid, i in match.items()}
    released_meta = {grade_id(r): r.metadata.nbgrader for r in release}
    repaired = 0
    for i, cell in enumerate(cells):
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        meta = cell["metadata"]
        if i in by_index:
            if meta.get("nbgrader") != released_meta[by_index[i]]:
                repaired += 1
            meta["nbgrader"] = dict(released_meta[by_index[i]])
        else:
            meta.pop("nbgrader", None)
    return repaired
