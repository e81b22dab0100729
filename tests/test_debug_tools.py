"""The debugging tools every exercise from 2 on gives the student (autograder/in_notebook/debug_tools.py):
draw_dot draws any Value-like graph, gradcheck tells a right backward from a wrong one, and each
source notebook carries the current file in its locked `debug_tools` cell."""

import graphviz
import pytest

from autograder.authoring.build import DEBUG_TOOLS, shared_texts
from autograder.course import notebooks
from autograder.course.paths import SOLUTIONS
from autograder.in_notebook import debug_tools


def make_value(swap_mul=False):
    """A tiny Value (+ and * only, karpathy-style); with swap_mul, * sends each operand's
    gradient to the wrong operand, a classic mistake."""

    class Value:
        def __init__(self, data, _children=(), _op="", label=""):
            self.data, self.grad, self.label = data, 0.0, label
            self._prev, self._op, self._backward = set(_children), _op, lambda: None

        def __add__(self, other):
            out = Value(self.data + other.data, (self, other), "+")

            def _backward():
                self.grad += out.grad
                other.grad += out.grad

            out._backward = _backward
            return out

        def __mul__(self, other):
            out = Value(self.data * other.data, (self, other), "*")

            def _backward():
                self.grad += (self.data if swap_mul else other.data) * out.grad
                other.grad += (other.data if swap_mul else self.data) * out.grad

            out._backward = _backward
            return out

        def backward(self):
            self.grad = 1.0
            for v in reversed(_topological_order(self)):
                v._backward()

    return Value


def _topological_order(root):
    order, seen = [], set()

    def visit(v):
        if v not in seen:
            seen.add(v)
            for child in v._prev:
                visit(child)
            order.append(v)

    visit(root)
    return order


def f(v):
    return v[0] * v[1] + v[0]


def test_draw_dot_shows_every_node_with_its_data_and_grad_and_every_operation():
    Value = make_value()
    a, b, c = Value(2.0, label="a"), Value(-3.0, label="b"), Value(10.0)
    e = a * b
    L = e + c + a
    L.label = "L"
    L.backward()
    dot = debug_tools.draw_dot(L)
    assert isinstance(dot, graphviz.Digraph)
    src = dot.source
    for v in (a, b, c, e, L):
        assert f"data {v.data:.4f}" in src and f"grad {v.grad:.4f}" in src, v.data
    assert "{ a |" in src and "{ L |" in src
    assert 'label="*"' in src and src.count('label="+"') == 2
    # 3 operations: an edge into each and out of each, from 2 + 2 + 2 operands
    assert src.count("->") == 3 + 6
    assert "rankdir=LR" in src


def test_draw_dot_handles_a_deep_graph():
    Value = make_value()
    v = Value(1.0, label="start")
    for _ in range(3000):
        v = v * Value(1.0)
    assert "start" in debug_tools.draw_dot(v).source


def test_gradcheck_passes_a_correct_backward(capsys):
    worst = debug_tools.gradcheck(f, [2.0, -3.0], value_class=make_value())
    rows = capsys.readouterr().out.splitlines()
    assert worst < 1e-8
    assert len(rows) == 3 and all(row.endswith("✓") for row in rows[1:])
    assert rows[1].split()[:4] == ["0", "2", "-2", "-2"]


def test_gradcheck_catches_swapped_mul_operands(capsys):
    worst = debug_tools.gradcheck(f, [2.0, -3.0], value_class=make_value(swap_mul=True))
    rows = capsys.readouterr().out.splitlines()
    assert worst > 0.5
    assert len(rows) == 3 and all(row.endswith("✗") for row in rows[1:])


def test_gradcheck_finds_the_notebooks_value_by_default(capsys):
    notebook = {"Value": make_value()}  # the cell runs in the notebook's namespace
    exec(DEBUG_TOOLS.read_text(), notebook)
    assert notebook["gradcheck"](f, [0.5, 4.0]) < 1e-8
    with pytest.raises(NameError, match="Value"):
        debug_tools.gradcheck(f, [0.5, 4.0])  # no Value where the function was defined


def test_the_file_ends_with_its_marker():
    assert DEBUG_TOOLS.read_text().endswith("# ---- end of the course's debugging tools ----\n")


# Not the capstone: there `draw_dot` would hand over its graded `draw_graph`.
@pytest.mark.parametrize("path", sorted(p for p in SOLUTIONS.glob("0[2-6]_*.ipynb")), ids=lambda p: p.stem)
def test_every_exercise_from_2_has_the_current_tools_in_a_locked_cell(path):
    cells = notebooks.read(path).cells
    found = [i for i, c in enumerate(cells) if notebooks.grade_id(c) == "debug_tools"]
    assert len(found) == 1, f"{path.name}: one debug_tools cell expected"
    cell = cells[found[0]]
    assert cell.source == shared_texts()["debug_tools"], f"{path.name}: run `make build` to sync debug_tools"
    assert cell.metadata.nbgrader == {
        "grade": False,
        "grade_id": "debug_tools",
        "locked": True,
        "schema_version": 3,
        "solution": False,
    }
    usage = cells[found[0] + 1].source
    assert "draw_dot(" in usage and "gradcheck(" in usage


def test_the_tools_share_no_line_with_a_solution_or_hidden_test():
    # The no-leak check forgives lines a released cell shows, so this cell must not show any.
    ours = notebooks.telling_lines(DEBUG_TOOLS.read_text())
    for path in SOLUTIONS.glob("*.ipynb"):
        for cell in notebooks.read(path).cells:
            for body in notebooks.regions(cell.source):
                shared = ours & notebooks.telling_lines(body)
                assert not shared, f"{path.name}: {shared}"
