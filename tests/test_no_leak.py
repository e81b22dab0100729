"""No released notebook carries a reference solution or a hidden test."""

import json

import pytest
from secrets_ import MARKERS, secret_lines

from autograder.course import ROOT


def released_notebooks():
    return sorted(p for folder in ("exercises", "lessons", "capstone") for p in (ROOT / folder).rglob("*.ipynb"))


def test_the_scan_finds_solution_lines():
    assert len(secret_lines()) > 20


@pytest.mark.parametrize("path", released_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_released_notebook_has_no_solution_or_hidden_test(path):
    text = path.read_text()
    for marker in MARKERS:
        assert marker not in text, f"{path.name} contains the marker {marker!r}"
    released_lines = {
        line.strip() for cell in json.loads(text)["cells"] for line in "".join(cell["source"]).splitlines()
    }
    leaked = {line: src for line, src in secret_lines().items() if line in released_lines}
    assert not leaked, f"{path.name} contains solution or hidden-test lines: {leaked}"
