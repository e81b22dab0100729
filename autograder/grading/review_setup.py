"""What the source notebook of an assignment gives every graded notebook: the names its locked cells
bind, the methods its answers are asked to add, and the code cells it gives unlocked."""

import ast
from collections.abc import Iterator
from functools import cache

from autograder.course import notebooks
from autograder.course.assignment import assignment


@cache
def setup_names(aid: str) -> dict[str, str]:
    """What the locked cells of the source notebook define (they run in every graded notebook, so
    an answer sees all of it): {name: kind} with kind 'module:X' for an import of module X,
    'from:M' for a name imported from M, 'class' or 'def' for a class or function, 'instance' for
    an instance of one of those classes (a test cell's `check`), and 'value' for anything else.
    Values of cells other than the setup cell are left out: an answer may reuse their names."""
    names: dict[str, str] = {}
    for cell in assignment(aid).notebook.cells:
        if cell.cell_type != "code" or not notebooks.is_locked(cell) or notebooks.is_answer(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        setup = notebooks.grade_id(cell) == "setup"
        for node in _top_level(tree.body):
            for name, kind in _bound_by(node, names).items():
                if kind == "value" and setup:  # an import or def of the same name says more
                    names.setdefault(name, kind)
                elif kind != "value":
                    names[name] = kind
    return names


@cache
def asked_methods(aid: str) -> frozenset[tuple[str, str]]:
    """The (class, attribute) pairs the answers of the source notebook assign at the top level,
    e.g. ("Value", "__add__") for `Value.__add__ = __add__`: what the assignment asks for."""
    pairs: set[tuple[str, str]] = set()
    for cell in assignment(aid).notebook.cells:
        if cell.cell_type != "code" or not notebooks.is_answer(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                    pairs.add((t.value.id, t.attr))
    return frozenset(pairs)


def given_class(kind: str, name: str) -> bool:
    """Whether a name the locked cells bind is a class: defined there, or imported by a
    capitalised name (`from micrograd.engine import Value`)."""
    return kind == "class" or (kind.startswith("from:") and name[:1].isupper())


def _bound_by(node: ast.stmt, known: dict[str, str] | None = None) -> dict[str, str]:
    """{name: kind} (see setup_names) of the names one statement binds at module level; `known`, the
    names bound before it."""
    known = known or {}
    if isinstance(node, ast.Import):
        return {
            a.asname or a.name.split(".")[0]: "module:" + (a.name if a.asname else a.name.split(".")[0])
            for a in node.names
        }
    if isinstance(node, ast.ImportFrom):
        return {a.asname or a.name: "from:" + (node.module or "") for a in node.names}
    if isinstance(node, ast.ClassDef):
        return {node.name: "class"}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return {node.name: "def"}
    value = getattr(node, "value", None)
    made = value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else ""
    kind = "instance" if made and given_class(known.get(made, ""), made) else "value"
    return {sub.id: kind for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at module level, looking into if/try/with/for blocks but not into defs."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for field in ("body", "orelse", "finalbody"):
                yield from _top_level(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from _top_level(handler.body)


@cache
def unlocked_given(aid: str) -> frozenset[str]:
    """The text of the code cells the source notebook gives and does not lock (examples a student
    may run or change): unchanged, they are the course's code, not the student's."""
    return frozenset(
        c.source.strip()
        for c in assignment(aid).notebook.cells
        if c.cell_type == "code" and not notebooks.is_locked(c) and not notebooks.is_answer(c)
    )
