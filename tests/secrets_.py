"""What must never reach a student: the lines of solution regions and hidden tests."""

import json
import re

from autograder.course import SOLUTIONS

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def _meaningful(text):
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= 25 and not line.strip().startswith("#")}


def secret_lines():
    """{line: source notebook} for non-trivial lines (25+ characters, not comments) of every
    solution and hidden-test region, except lines the released part of the notebook shows anyway."""
    secrets, shown = {}, set()
    for source in sorted(SOLUTIONS.glob("*.ipynb")):
        for cell in json.loads(source.read_text())["cells"]:
            text = "".join(cell["source"])
            for _, body in REGION.findall(text):
                secrets.update(dict.fromkeys(_meaningful(body), source.name))
            shown |= _meaningful(REGION.sub("", text))
    return {line: src for line, src in secrets.items() if line not in shown}
