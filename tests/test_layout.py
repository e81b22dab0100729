"""The layout shows the architecture: each layer imports only the layers below it, every module is
short enough to read in a sitting, and the README's map names every module."""

import ast
import re

import pytest

from autograder.course.paths import PACKAGE, ROOT

# {layer: the layers it may import}. in_notebook/ runs inside students' notebooks: the grader reads
# its files (to build notebooks, to bind the torch stand-in) but never imports them.
LAYERS = {
    "in_notebook": set(),
    "course": {"course"},
    "sandbox": {"course", "sandbox"},
    "worker": {"course", "sandbox", "worker"},
    "grading": {"course", "sandbox", "worker", "grading"},
    "authoring": {"course", "authoring"},
    "delivery": {"course", "sandbox", "worker", "grading", "delivery"},
    "reports": {"course", "worker", "grading", "authoring", "reports"},
}
TOP = {"__init__.py", "__main__.py", "cli.py"}  # the entry points, which may import every layer
LONGEST = 450
LONGER = {"authoring/bugs.py"}  # data: the catalogue of known bugs
SHIPPED = ("in_notebook/student_files/", "delivery/site_files/")  # files copied out as they are


def _modules() -> list[str]:
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imported_layers(path: str) -> set[str]:
    tree = ast.parse((PACKAGE / path).read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "autograder" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("path", [m for m in _modules() if "/" in m and not m.startswith(SHIPPED)])
def test_a_layer_imports_only_the_layers_below_it(path):
    layer = path.split("/")[0]
    assert _imported_layers(path) <= LAYERS[layer], f"{path} imports {_imported_layers(path) - LAYERS[layer]}"


def test_every_module_belongs_to_a_layer_or_is_an_entry_point():
    assert {m for m in _modules() if "/" not in m} == TOP
    assert {m.split("/")[0] for m in _modules() if "/" in m} == set(LAYERS)


@pytest.mark.parametrize("path", [m for m in _modules() if m not in LONGER])
def test_no_module_is_longer_than_a_sitting(path):
    assert len((PACKAGE / path).read_text().splitlines()) <= LONGEST


def _map() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("### The map")
    return text[start : text.index("\n## ", start)]


def test_the_readme_map_names_every_module():
    named = set(re.findall(r"`([\w/.-]+\.py)`", _map()))
    missing = [m for m in _modules() if m.rsplit("/", 1)[-1] != "__init__.py" and m not in named]
    assert not missing, f"the README's map does not name {missing}"
    gone = sorted(n for n in named if not n.startswith("tests/") and not (PACKAGE / n).exists())
    assert not gone, f"the README's map names modules that do not exist: {gone}"
