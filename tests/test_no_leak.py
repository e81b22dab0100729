"""No released notebook carries a reference solution or a hidden test."""

import pytest

from autograder.course.notebooks import MARKERS, read, secret_lines
from autograder.course.paths import ROOT, SOLUTIONS

SECRETS = secret_lines(SOLUTIONS.glob("*.ipynb"))


def released_notebooks():
    return sorted(p for folder in ("exercises", "lessons", "capstone") for p in (ROOT / folder).rglob("*.ipynb"))


def test_the_scan_finds_solution_lines():
    assert len(SECRETS) > 20


@pytest.mark.parametrize("path", released_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_released_notebook_has_no_solution_or_hidden_test(path):
    text = path.read_text()
    for marker in MARKERS:
        assert marker not in text, f"{path.name} contains the marker {marker!r}"
    released_lines = {line.strip() for cell in read(path).cells for line in cell.source.splitlines()}
    leaked = {line: src for line, src in SECRETS.items() if line in released_lines}
    assert not leaked, f"{path.name} contains solution or hidden-test lines: {leaked}"
