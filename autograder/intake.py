"""Intake: before nbgrader sees a submission, recognise its assignment and repair its cells.

Students rename files (`Copy of 02_value_backward.ipynb`, `02_value_backward (1).ipynb`,
`alice_02_value_backward.ipynb`), and Colab or a copy-paste can drop or alter the nbgrader
metadata that tells nbgrader which cell is which; without it nbgrader scores 0 silently.
Each submitted cell is matched to the released notebook by its grade_id, else by its content
and position, and given the released cell's metadata back. An ambiguous match is reported,
not guessed.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import assignments, release_path


@dataclass
class Intake:
    assignment: str = None
    notebook: dict = None
    notes: list = field(default_factory=list)
    error: str = None


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _nbgrader(cell):
    meta = cell.get("metadata")
    return meta.get("nbgrader", {}) if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict) else {}


_release_cache = {}


def released(aid):
    """The released cells of an assignment that carry nbgrader metadata, in order."""
    if aid not in _release_cache:
        path = release_path(aid)
        cells = json.loads(path.read_text())["cells"] if path.exists() else []  # not built yet
        _release_cache[aid] = [c for c in cells if _nbgrader(c).get("grade_id")]
    return _release_cache[aid]


def read_notebook(path):
    """The notebook at `path` as a dict, or an Intake carrying the reason it is not one."""
    raw = Path(path).read_bytes()
    if not raw.strip():
        return Intake(error="the file is empty")
    try:
        nb = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as e:
        return Intake(error=f"not a readable notebook: broken JSON at line {e.lineno}")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return Intake(error="not a Jupyter notebook (no list of cells)")
    nb["cells"] = [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")]
    return nb


def assignment_from_name(path, known):
    """The assignment a file name points at, tolerating copies, numbering and student ids."""
    name = Path(path).stem.lower()
    name = re.sub(r"^copy of ", "", name)
    name = re.sub(r"\s*\(\d+\)$", "", name)
    for aid in known:
        if aid in name or aid.split("_", 1)[-1] in name:
            return aid
    for parent in Path(path).parents:
        if parent.name in known:
            return parent.name
    return None


def _content_match(nb, aid):
    """How many of the released locked cells of `aid` appear in `nb`, by grade_id or text."""
    ids = {_nbgrader(c).get("grade_id") for c in nb["cells"]}
    texts = {_source(c).strip() for c in nb["cells"]}
    return sum(
        1
        for r in released(aid)
        if _nbgrader(r).get("locked") and (_nbgrader(r)["grade_id"] in ids or _source(r).strip() in texts)
    )


def intake(path, known=None):
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


def _anchors(cell):
    """Lines that identify an answer cell: its given lines, not the stub's placeholder."""
    return {
        line.strip()
        for line in _source(cell).splitlines()
        if line.strip() and line.strip() not in ("# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE")
    }


def restore_metadata(nb, aid, notes):
    """Give every cell that corresponds to a released graded/locked/answer cell that cell's
    nbgrader metadata (checksum included); take nbgrader metadata off every other cell."""
    release = released(aid)
    by_id = {_nbgrader(r)["grade_id"]: r for r in release}
    match = {}  # grade_id -> index in nb["cells"]
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        gid = _nbgrader(cell).get("grade_id")
        if gid in by_id and gid not in match and cell.get("cell_type") == by_id[gid]["cell_type"]:
            match[gid] = i
    for r in release:  # unmatched locked cells: by identical text
        gid = _nbgrader(r)["grade_id"]
        if gid not in match:
            same = [
                i for i, c in enumerate(cells) if i not in match.values() and _source(c).strip() == _source(r).strip()
            ]
            if same:
                match[gid] = same[0]
    for r in release:  # unmatched answer cells: by the given lines they keep, between their neighbours
        gid = _nbgrader(r)["grade_id"]
        if gid in match or not _nbgrader(r).get("solution"):
            continue
        lo, hi = _window(release, gid, match, len(cells))
        anchors = _anchors(r)
        scored = [
            (len(anchors & _anchors(cells[i])), i)
            for i in range(lo, hi)
            if i not in match.values() and cells[i].get("cell_type") == r["cell_type"]
        ]
        best = max((s for s, _ in scored), default=0)
        winners = [i for s, i in scored if s == best]
        if best and len(winners) == 1:
            match[gid] = winners[0]
        elif best:
            notes.append(f"could not tell which cell answers {gid}: graded as unanswered")
    repaired = 0
    for i, cell in enumerate(cells):
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        meta = cell["metadata"]
        gid = next((g for g, j in match.items() if j == i), None)
        if gid:
            if meta.get("nbgrader") != by_id[gid]["metadata"]["nbgrader"]:
                repaired += 1
            meta["nbgrader"] = dict(by_id[gid]["metadata"]["nbgrader"])
        else:
            meta.pop("nbgrader", None)
    if repaired:
        notes.append(f"restored the nbgrader metadata of {repaired} cell(s)")
    missing = [g for g in by_id if g not in match and _nbgrader(by_id[g]).get("grade")]
    if missing:
        notes.append(f"test cell(s) missing, put back: {', '.join(missing)}")
    return nb


def _window(release, gid, match, n):
    """Indices between the matched released cells just before and just after `gid`."""
    order = [_nbgrader(r)["grade_id"] for r in release]
    k = order.index(gid)
    before = [match[g] for g in order[:k] if g in match]
    after = [match[g] for g in order[k + 1 :] if g in match]
    return (max(before) + 1 if before else 0), (min(after) if after else n)
