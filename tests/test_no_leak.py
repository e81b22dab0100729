"""No released notebook carries a reference solution or a hidden test."""
import json
import re

import pytest

from autograder.course import ROOT, SOLUTIONS

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def _secret_lines():
    """Non-trivial lines (25+ characters, not comments) of every solution and hidden-test region."""
    lines = {}
    for source in SOLUTIONS.glob("*.ipynb"):
        for cell in json.loads(source.read_text())["cells"]:
            for _, body in REGION.findall("".join(cell["source"])):
                for line in body.splitlines():
                    line = line.strip()
                    if len(line) >= 25 and not line.startswith("#"):
                        lines[line] = source.name
    return lines


def released_notebooks():
    return sorted(p for folder in ("exercises", "lessons", "capstone") for p in (ROOT / folder).rglob("*.ipynb"))


def test_the_scan_finds_solution_lines():
    assert len(_secret_lines()) > 20


@pytest.mark.parametrize("path", released_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_released_notebook_has_no_solution_or_hidden_test(path):
    text = path.read_text()
    for marker in MARKERS:
        assert marker not in text, f"{path.name} contains the marker {marker!r}"
    released_lines = {
        line.strip() for cell in json.loads(text)["cells"] for line in "".join(cell["source"]).splitlines()
    }
    leaked = {line: src for line, src in _secret_lines().items() if line in released_lines}
    assert not leaked, f"{path.name} contains solution or hidden-test lines: {leaked}"
