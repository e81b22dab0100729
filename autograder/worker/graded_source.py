"""What a test cell's source becomes before a graded kernel runs it.

Two steps, both made by the grader, outside the student's process:

- `perturbed`: every float literal is moved by a small factor drawn from a secret of the grader,
  and every literal seed of numpy's generator moves too (the kit's `Rng` moves its own seeds at
  grading), so the numbers printed in a visible test are not the ones compared.
- `stripped`: each check keeps only what it observes. The expected value, the bound, the
  message and the known wrong answers go, and so does every statement that only computed them
  (a PyTorch branch, a float shadow of the student's computation, a helper): the kernel that runs
  the student's code holds no number it could hand back as the right answer. The grader judges
  each observation against the reference's, which ran the whole cell.
"""

import ast
import functools
import hashlib
import io
import tokenize
from collections import Counter

from autograder.worker.report import KINDS

# The checks a test cell calls (`done` ends the cell and observes nothing).
CHECK_KINDS = frozenset(KINDS) - {"done"}
# A call of one of these on a name changes only that name's object (a list being filled).
_MUTATORS = frozenset({"append", "extend", "insert", "add", "update"})
# Calls a loop's range may make and still have no effect of its own.
_PURE_CALLS = frozenset({"range", "len", "zip", "enumerate", "sorted", "list", "tuple"})
# Seeds written as literals: numpy's generator and the keyword of a function that takes one.
_SEEDED = frozenset({"default_rng", "seed"})


def _digest(salt: str, key: str) -> bytes:
    return hashlib.sha256(f"{salt}:{key}".encode()).digest()


def moved_seed(seed: int, salt: str) -> int:
    """Where `seed` goes at grading: the same seed always to the same place, two seeds apart."""
    return int.from_bytes(_digest(salt, f"seed:{seed}")[:4], "big")


@functools.lru_cache(maxsize=256)  # a worker grades the same restored test cells, notebook after notebook
def perturbed(source: str, salt: str) -> str:
    """`source` with each float literal multiplied by 1 ± (1% to 5%), the factor drawn from
    `salt` and the literal's position, and each literal integer seed (`default_rng(k)`,
    `seed=k`) moved by `moved_seed`. Signs, zeros, ±1.0, other integers and strings are left
    alone: `out.grad = 1.0` seeds a gradient, and a visible test must mean at grading what it
    meant while the student worked."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits, k = [], 0
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NUMBER or tok.string.endswith(("j", "J")):
            continue
        (row, col), (end_row, end_col) = tok.start, tok.end
        span = (starts[row - 1] + col, starts[end_row - 1] + end_col)
        if _is_int(tok.string):
            if i >= 2 and tokens[i - 2].string in _SEEDED and tokens[i - 1].string in "(=":
                edits.append((*span, str(moved_seed(int(tok.string, 0), salt))))
            continue
        value = float(tok.string)
        if abs(value) not in (0.0, 1.0):
            digest = _digest(salt, str(k))
            u = int.from_bytes(digest[:8], "big") / 2**64
            factor = 1 + (0.01 + 0.04 * u) * (1 if digest[8] & 1 else -1)
            edits.append((*span, repr(value * factor)))
        k += 1
    for begin, end, text in reversed(edits):
        source = source[:begin] + text + source[end:]
    return source


def _is_int(text: str) -> bool:
    try:
        int(text, 0)
        return True
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)
def stripped(source: str) -> str:
    """`source` as the student's graded kernel runs it: checks that report only what they
    observe, without the statements that computed what they were compared with."""
    return ast.unparse(_strip(source)[0]) + "\n"


def expected_names(source: str) -> set[str]:
    """Names an expected value of `source` reads that its stripped form still reads: what a
    test cell leaves in the kernel of its expectations (inputs such as a loop's `x0` are fine;
    a float shadow of the student's computation is not). The suite keeps this to inputs."""
    tree, expected = _strip(source)
    return set(_loads(tree)) & set(expected)


def _strip(source: str) -> tuple[ast.AST, Counter[str]]:
    """The stripped tree of `source`, and the names its expected values read."""
    strip = _Strip()
    tree = strip.visit(ast.parse(source))
    ast.fix_missing_locations(tree)
    _eliminate(tree)
    return tree, strip.expected


def _is_check(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CHECK_KINDS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "check"
    )


def _uses_torch(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "torch" for n in ast.walk(node))


def _loads(node: ast.AST) -> Counter[str]:
    return Counter(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))


def _root(target: ast.AST) -> str | None:
    """The name a store into `target` changes: `xs` for `xs[i]`; None for an attribute."""
    while isinstance(target, (ast.Subscript, ast.Starred)):
        target = target.value
    return target.id if isinstance(target, ast.Name) else None


class _Strip(ast.NodeTransformer):
    """Checks keep their first argument; PyTorch's branches go (PyTorch is absent at grading)."""

    def __init__(self) -> None:
        self.expected: Counter[str] = Counter()

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if _is_check(node):
            if node.func.attr in ("close", "equal") and len(node.args) > 1:  # type: ignore[attr-defined]
                self.expected += _loads(node.args[1])
            node.args, node.keywords = node.args[:1], []
        return node

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt] | None:
        self.generic_visit(node)
        return (node.orelse or None) if _uses_torch(node.test) else node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        return node.orelse if _uses_torch(node.test) else node

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.stmt]:
        self.generic_visit(node)
        # `a, b = e1, e2` becomes two statements, so that each name can go on its own
        target = node.targets[0]
        if (
            len(node.targets) == 1
            and isinstance(target, ast.Tuple)
            and isinstance(node.value, ast.Tuple)
            and len(target.elts) == len(node.value.elts)
            and all(isinstance(t, ast.Name) for t in target.elts)
            and not {t.id for t in target.elts} & set(_loads(node.value))  # type: ignore[attr-defined]
        ):
            return [ast.Assign(targets=[t], value=v) for t, v in zip(target.elts, node.value.elts, strict=True)]
        return node


def _stores(stmt: ast.stmt) -> set[str] | None:
    """The names a simple statement binds or fills, or None if it does anything else (a call,
    a store into an attribute): only statements whose whole effect is on names may go."""
    if isinstance(stmt, ast.Assign):
        targets = [e for t in stmt.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        roots = [_root(t) for t in targets]
        return {r for r in roots if r} if None not in roots else None
    if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        root = _root(stmt.target)
        return {root} if root else None
    if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and func.attr in _MUTATORS:
            root = _root(func.value)
            return {root} if root else None
    return None


def _empty_block(stmt: ast.stmt) -> bool:
    """A loop or `if` left with nothing to do, whose header calls nothing that could act."""
    if not isinstance(stmt, (ast.For, ast.If, ast.While)) or stmt.orelse:
        return False
    if not all(isinstance(s, ast.Pass) for s in stmt.body):
        return False
    header = stmt.iter if isinstance(stmt, ast.For) else stmt.test
    return all(
        isinstance(n.func, ast.Name) and n.func.id in _PURE_CALLS for n in ast.walk(header) if isinstance(n, ast.Call)
    )


def _blocks(tree: ast.AST) -> list[ast.AST]:
    """The module and the loops and branches in it, outside any function or class: a method is
    read as an attribute, never as a name, so nothing inside a definition is dropped on its own."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        for field in ("body", "orelse"):
            todo += [
                s for s in getattr(node, field, []) if isinstance(s, (ast.For, ast.While, ast.If, ast.With, ast.Try))
            ]
        todo += [h for h in getattr(node, "handlers", [])]
    return found


def _drop_one(tree: ast.AST, loads: Counter[str]) -> bool:
    """Drop one statement that nothing needs; False when there is none."""
    for parent in _blocks(tree):
        for field in ("body", "orelse"):
            body = getattr(parent, field, None)
            if not isinstance(body, list):
                continue
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.Pass):
                    continue
                if _empty_block(stmt):
                    body[i] = ast.Pass()
                    return True
                stores = _stores(stmt)
                own = _loads(stmt)
                if stores and all(loads[name] <= own[name] for name in stores):
                    body[i] = ast.Pass()
                    return True
    return False


def _eliminate(tree: ast.AST) -> None:
    """Drop statements whose only effect is to bind names nothing else reads, until none is left;
    then the `pass` left behind wherever a block has other statements."""
    while _drop_one(tree, _loads(tree)):
        pass
    for node in _blocks(tree):
        for field in ("body", "orelse"):
            body = getattr(node, field, None)
            if isinstance(body, list) and len(body) > 1:
                body[:] = [s for s in body if not isinstance(s, ast.Pass)] or [ast.Pass()]
