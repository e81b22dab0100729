"""What a graded kernel is handed of a test cell: the expected values of its checks never stay in
it, and neither do the names that computed them (no kernel: the source is read, not run).

The rule reads the stripped cell (`graded_source.stripped`, what the kernel runs) and sorts each
name it binds (outside the helpers it defines):
- an input: each binding is a loop variable, a literal (numbers, strings, containers of them, a
  lambda), or a draw of the kit's `Rng` or numpy's seeded generator;
- an observation: a binding reads the content of what the notebook defines (`Neuron(2)`,
  `out.data`, a helper of the cell that calls the notebook's code) or of another observation; a
  value the test computed and handed to the code, and what a function handed to the code fills,
  count as observations too;
- derived: each binding only rearranges inputs (containers, arithmetic, indexing, len, zip, sum,
  min, max, ...), calling nothing else;
- computed: anything else (`math.tanh(...)`, a function of the test's own).
Of the names the stripped cell reads, an input or an observation is fine, and so is a name it
hands to the notebook's code (an argument of a call, a value stored into an observation). A
derived name is fine unless an expected value reads it (`graded_source.expected_names`) or a
check observes it: then the kernel holds what the test computed to compare with. A computed name
is never fine. A name the cell does not bind (a module, a builtin, the notebook's own) is not in
question.
"""

import ast

import pytest
from test_grading_mode import PROPERTY_CELLS

from autograder.course import notebooks
from autograder.course.paths import SOLUTIONS, assignments
from autograder.worker.graded_source import _MUTATORS, CHECK_KINDS, _is_check, expected_names, stripped

_DRAWS = {"Rng", "default_rng"}
_CONTAINERS = {"list", "tuple", "range", "array"}  # calls that only hold literals: [1.0] * 3, np.array([[0.5]])
# Calls that only rearrange their arguments: a value made with these from inputs is an input too.
_PURE = _CONTAINERS | {"len", "zip", "enumerate", "sorted", "sum", "min", "max", "abs", "int", "float", "str"}
# What a generator hands out: rng.uniform(-1, 1), rng.normal(size=3), rng.permutation(n).
_GENERATED = {"random", "uniform", "randint", "choice", "normal", "integers", "permutation", "shuffle"}


def notebook_names(aid: str) -> set[str]:
    """Names the non-test code cells of a solution define or import from a module at the top
    level (`from micrograd.engine import Value`), but not the modules they import: math.exp is no
    part of the code under test."""
    names: set[str] = set()
    for cell in notebooks.read(SOLUTIONS / f"{aid}.ipynb").cells:
        if cell.cell_type != "code" or notebooks.is_test(cell) or cell.source.startswith("%%"):
            continue  # a cell magic (%%writefile) binds no name in the kernel
        for node in ast.parse(cell.source).body:
            for n in ast.walk(node) if isinstance(node, (ast.Assign, ast.ImportFrom)) else [node]:
                if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                    names.add(n.name)
                elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    names.add(n.id)
                elif isinstance(n, ast.alias):
                    names.add(n.asname or n.name)
    return names


def _bind(found: dict, target: ast.AST, value: ast.AST | None) -> None:
    if isinstance(target, (ast.Tuple, ast.List)):
        pairs = isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts)
        for k, t in enumerate(target.elts):
            _bind(found, t, value.elts[k] if pairs else value)  # type: ignore[union-attr]
    elif isinstance(target, ast.Starred):
        _bind(found, target.value, value)
    elif isinstance(target, ast.Name):
        found.setdefault(target.id, []).append(value)


def _bind_statement(found: dict, node: ast.AST) -> None:
    if isinstance(node, ast.Assign):
        for target in node.targets:
            _bind(found, target, node.value)
    elif isinstance(node, ast.AugAssign):
        _bind(found, node.target, ast.BinOp(ast.Name(_root_name(node.target), ast.Load()), node.op, node.value))
    elif isinstance(node, ast.For):
        _bind(found, node.target, None)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func  # xs.append(value) binds a new value into xs
        if isinstance(func, ast.Attribute) and func.attr in _MUTATORS and isinstance(func.value, ast.Name):
            found.setdefault(func.value.id, []).append(node.value)


def _bindings(tree: ast.Module) -> dict[str, list[ast.AST | None]]:
    """name: the values bound to it at the top level of the cell or in its loops and branches,
    None for a loop variable (whose value is an element of its iterable)."""
    found: dict[str, list[ast.AST | None]] = {}
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.setdefault(node.name, []).append(ast.Constant(None))  # a helper, not a value
            continue
        _bind_statement(found, node)
        for n in ast.walk(node):
            if isinstance(n, ast.comprehension):
                _bind(found, n.target, None)
        todo += [s for field in ("body", "orelse", "finalbody") for s in getattr(node, field, [])]
        todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return found


def _root_name(target: ast.AST) -> str:
    while isinstance(target, (ast.Attribute, ast.Subscript)):
        target = target.value
    return target.id if isinstance(target, ast.Name) else ""


def _walk(node: ast.AST):
    """ast.walk, without entering a lambda: what a lambda reads, it reads when called."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.Lambda):
            yield from _walk(child)


def _reads(value: ast.AST) -> set[str]:
    return {n.id for n in _walk(value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _reads_content(value: ast.AST) -> set[str]:
    """The names whose content `value` reads: not those of an index (data[i])."""
    places = [n.slice for n in _walk(value) if isinstance(n, ast.Subscript)]
    skipped = {id(n) for place in places for n in ast.walk(place)}
    return {
        n.id for n in _walk(value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in skipped
    }


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _calls_only(value: ast.AST, allowed: set[str]) -> bool:
    return all(_called(n) in allowed for n in _walk(value) if isinstance(n, ast.Call))


def _literal(value: ast.AST | None) -> bool:
    if value is None or isinstance(value, ast.Lambda):
        return True
    return not _reads(value) and _calls_only(value, _CONTAINERS)


def _inputs(bindings: dict) -> set[str]:
    """Names whose every binding is a loop variable or a literal, and the draws of a generator."""
    calls = lambda v: [_called(c) for c in ast.walk(v) if isinstance(c, ast.Call)]  # noqa: E731
    generators = {n for n, values in bindings.items() if any(v is not None and set(calls(v)) & _DRAWS for v in values)}
    drawn = {
        n
        for n, values in bindings.items()
        if any(v is not None and _reads(v) & generators and _calls_only(v, _PURE | _DRAWS | _GENERATED) for v in values)
    }
    return generators | drawn | {n for n, values in bindings.items() if all(_literal(v) for v in values)}


def _classify(bindings: dict, kind: dict[str, str], known: set[str]) -> None:
    """Observations, then what only rearranges inputs, to a fixpoint."""
    changed = True
    while changed:
        changed = False
        for name, values in bindings.items():
            if name in kind:
                continue
            observed = known | {n for n, k in kind.items() if k == "observation"}
            if any(_reads_content(v) & observed for v in values if v is not None):
                kind[name] = "observation"
            elif all(
                _literal(v) or (_calls_only(v, _PURE) and _reads(v) <= set(kind) | set(_unbound(v, bindings)))
                for v in values
            ):
                kind[name] = "derived"
            else:
                continue
            changed = True


def _kinds(tree: ast.Module, known: set[str], handed: set[str], filled: set[str]) -> dict[str, str]:
    """name: "input", "observation", "derived" or "computed", for each name the cell binds. A
    value the test computed and `handed` to the code is an observation; so is what a function
    handed to the code reads (a list it fills)."""
    bindings = _bindings(tree)
    kind = {name: "observation" for name in filled if name in bindings}
    kind |= {name: "input" for name in _inputs(bindings) if name not in kind}
    _classify(bindings, kind, known)
    # a value the test made itself and handed to the code (an optimizer it spies with)
    kind |= {name: "observation" for name in handed if name in bindings and name not in kind}
    _classify(bindings, kind, known)
    return {name: kind.get(name, "computed") for name in bindings}


def _helpers_of_the_code(tree: ast.Module, known: set[str]) -> set[str]:
    """The functions the cell defines that call the notebook's code (a network built with
    seeded weights): what they return is an observation."""
    helpers: set[str] = set()
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    changed = True
    while changed:
        changed = False
        for d in defs:
            if d.name not in helpers and _reads(d) & (known | helpers):
                helpers.add(d.name)
                changed = True
    return helpers


def _unbound(value: ast.AST, bindings: dict) -> set[str]:
    return {n for n in _reads(value) if n not in bindings}


def _handed_to_the_code(tree: ast.AST, name: str, known: set[str], observed: set[str]) -> bool:
    """Does the stripped cell pass `name` to the notebook's code?"""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            root: ast.AST = node.func
            while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
                root = root.func if isinstance(root, ast.Call) else root.value
            is_check = isinstance(node.func, ast.Attribute) and node.func.attr in CHECK_KINDS
            if not is_check and isinstance(root, ast.Name) and root.id in known | observed:
                if any(name in _reads(arg) for arg in [*node.args, *(k.value for k in node.keywords)]):
                    return True
        if isinstance(node, ast.Assign) and name in _reads(node.value):
            if any(_root_name(t) in observed for t in node.targets if isinstance(t, (ast.Attribute, ast.Subscript))):
                return True
    return False


def _bound_before_read(tree: ast.Module) -> set[str]:
    """Names the cell binds before it reads them: its own, not the notebook's (a test's w, x)."""
    first: dict[tuple[str, type], tuple[int, int]] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            key = (n.id, type(n.ctx))
            first[key] = min(first.get(key, (n.lineno, n.col_offset)), (n.lineno, n.col_offset))
    far = (1 << 30, 0)
    return {
        name for name, ctx in first if ctx is ast.Store and first[name, ast.Store] < first.get((name, ast.Load), far)
    }


def kept_expectations(source: str, known: set[str]) -> set[str]:
    """The names of `source` that its stripped form still reads and that hold what the test
    computed: empty for a cell that leaves no expectation in the graded kernel."""
    graded = ast.parse(stripped(source))
    known = known - _bound_before_read(graded)
    known = known | _helpers_of_the_code(graded, known)
    kind = _kinds(graded, known, set(), set())
    for _ in range(2):  # what the cell hands to the code, the code may change
        observed = {n for n, k in kind.items() if k == "observation"}
        handed = {n for n in kind if _handed_to_the_code(graded, n, known, observed)}
        filled = {r for d in graded.body if isinstance(d, ast.FunctionDef) and d.name in handed for r in _reads(d)}
        kind = _kinds(graded, known, handed, filled)
    observing = {r for n in ast.walk(graded) if _is_check(n) and n.args for r in _reads(n.args[0])}
    strict = expected_names(source) | observing
    return {
        name
        for name in _reads(graded) & set(kind)
        if kind[name] not in ("input", "observation")
        and (kind[name] != "derived" or name in strict)
        and name not in handed
    }


@pytest.mark.parametrize("aid", assignments())
def test_no_test_cell_leaves_an_expected_value_in_the_graded_kernel(aid):
    known = notebook_names(aid)
    for cell in notebooks.read(SOLUTIONS / f"{aid}.ipynb").cells:
        if notebooks.is_test(cell):
            kept = kept_expectations(cell.source, known)
            assert not kept, f"{notebooks.grade_id(cell)}: the graded kernel keeps {sorted(kept)}"


def property_share(aid: str, cells: set[str]) -> float:
    """The share of `aid`'s autograded points that the test cells `cells` carry."""
    points = {
        notebooks.grade_id(c): notebooks.nbgrader_metadata(c)["points"]
        for c in notebooks.read(SOLUTIONS / f"{aid}.ipynb").cells
        if notebooks.is_test(c)
    }
    assert cells <= set(points), f"not test cells of {aid}: {sorted(cells - set(points))}"
    return sum(points[gid] for gid in cells) / sum(points.values())


@pytest.mark.parametrize("aid", assignments())
def test_cells_that_check_only_properties_carry_at_most_a_tenth_of_the_points(aid):
    assert property_share(aid, PROPERTY_CELLS.get(aid, set())) <= 0.1


def test_the_share_counts_every_test_cell_and_nothing_else():
    assert property_share("06_training", {"test_xor_run", "test_train"}) > 0.1
    with pytest.raises(AssertionError, match="writeup_bug"):
        property_share("07_capstone", {"writeup_bug"})


PLANTED = """
check = Checks("Neuron.__call__")
w, b, x = [0.5, -1.0], 0.3, [2.0, -0.5]
wx = w[0] * x[0] + w[1] * x[1]
n = Neuron(2)
n.w[0].data, n.w[1].data, n.b.data = w[0], w[1], b
out = n(x)
check.equal(abs(out.data - (wx + b)) > 1e-6, True, "the activation itself")
check.close(out.data, math.tanh(wx + b), "tanh(w . x + b)")
check.done()
"""


def test_the_rule_catches_an_expectation_left_in_a_check_and_spares_the_inputs():
    assert kept_expectations(PLANTED, {"Checks", "Neuron"}) == {"wx"}
    moved = PLANTED.replace(
        'check.equal(abs(out.data - (wx + b)) > 1e-6, True, "the activation itself")\n',
        "",
    ).replace('"tanh(w . x + b)")', '"tanh(w . x + b)", wrong=[(wx + b, "the activation itself")])')
    assert kept_expectations(moved, {"Checks", "Neuron"}) == set()


def test_the_rule_catches_a_float_shadow_that_decides_the_structure():
    shadow = """
check = Checks("exp")
rng = Rng(2)
xs = [rng.uniform(-2.0, 2.0) for _ in range(4)]
nodes, data = [Value(x) for x in xs], list(xs)
for _ in range(12):
    i = rng.randint(0, len(nodes) - 1)
    if abs(data[i]) < 10:
        nodes.append(nodes[i].exp())
        data.append(math.exp(data[i]))
check.close(nodes[-1].data, data[-1], "value")
check.done()
"""
    assert kept_expectations(shadow, {"Checks", "Rng", "Value"}) == {"data"}
    assert kept_expectations(shadow.replace("abs(data[i])", "abs(nodes[i].data)"), {"Checks", "Rng", "Value"}) == set()
