"""Suspicious code, found by reading every cell of a submission that runs, without running it.

`review(nb, assignment)` returns one short reason per problem found in the cells that run the
student's code: the answer cells (code cells with `metadata.nbgrader.solution` true), cells the
student added, and given cells the student changed (locked cells are not read: nbgrader puts
their source back). The reasons are sorted and without duplicates, e.g. "answer cell add uses
get_ipython" or "cell 12 imports sys". It flags code that reaches for the interpreter or the
grader (frames, globals, builtins, the IPython shell and `exit._ip`, files, processes, the
modules and helpers of locked cells), changes the classes the tests run (Checks, Rng, Value...)
beyond the methods the assignment asks for, redefines builtins, imports beyond those the exercise
allows, and uses IPython magics and shell escapes. A list for an instructor to read: nothing here
changes a score.

A cell is read as the kernel would run it: IPython's own input transformer turns magics, shell
escapes and help syntax into plain Python first. A cell that still does not parse is not flagged
(it cannot run at all, and its syntax error costs points anyway); one too deeply nested to read
is.

Static reading has limits: it sees names and attributes as written, so a determined student can
still hide a lookup behind data the code builds at run time from innocent parts; the checks below
catch the direct routes and the usual obfuscations (computed getattr names, dunder strings and
dunder names built from constant pieces, aliases of dangerous modules defined by locked cells,
private attributes of modules).
"""

import ast
import builtins
import operator
import re
import warnings
from functools import cache

from nbformat import NotebookNode
from nbformat.v4 import new_notebook

from autograder.course import notebooks
from autograder.course.paths import SOLUTIONS

DEFAULT_ALLOWED_IMPORTS = ("math", "random")

# Modules that give access to the interpreter, the process, files or the network.
DANGEROUS_MODULES = frozenset(
    {
        "sys",
        "inspect",
        "gc",
        "ctypes",
        "os",
        "subprocess",
        "builtins",
        "importlib",
        "signal",
        "threading",
        "_thread",
        "multiprocessing",
        "socket",
        "io",
        "pathlib",
        "shutil",
        "pickle",
        "marshal",
        "runpy",
        "tempfile",
        "types",
        "asyncio",
        "concurrent",
        "faulthandler",
        "atexit",
        "resource",
        "pty",
        "urllib",
        "http",
        "requests",
        "webbrowser",
        "codecs",
        "zipfile",
        "tarfile",
        "glob",
        "fileinput",
        "mmap",
        "posix",
        "zipimport",
        "linecache",
    }
)

# Names whose mere use in an answer is a reason: the shell, modules of the interpreter or the
# process (if some given cell imported them), and builtins that run code, open files or reach
# the namespace or the interpreter.
FORBIDDEN_NAMES = frozenset(
    {
        "get_ipython",
        "sys",
        "inspect",
        "gc",
        "ctypes",
        "os",
        "subprocess",
        "builtins",
        "__builtins__",
        "importlib",
        "signal",
        "threading",
        "multiprocessing",
        "socket",
        "open",
        "globals",
        "locals",
        "exec",
        "eval",
        "compile",
        "__import__",
        "breakpoint",
        "exit",
        "quit",  # both hold the IPython shell in `._ip`
        "__loader__",
        "__spec__",
        "__build_class__",
        "In",
        "Out",
        "_ih",
        "_oh",
        "_dh",  # IPython's history of inputs and outputs
    }
)
_HISTORY = re.compile(r"^_i{1,3}\d*$")  # _i, _ii, _iii, _i12: earlier inputs

# Attributes that lead from any object to code, frames, namespaces or every class in the process.
FORBIDDEN_ATTRS = frozenset(
    {
        "__code__",
        "__globals__",
        "__closure__",
        "__builtins__",
        "__subclasses__",
        "__base__",
        "__bases__",
        "__mro__",
        "__self__",
        "__func__",
        "__defaults__",
        "__kwdefaults__",
        "__loader__",
        "__spec__",
        "__import__",
        "__traceback__",
        "__getattribute__",
        "__setattr__",
        "__delattr__",
        "__reduce__",
        "__reduce_ex__",
        "__wrapped__",
        "f_back",
        "f_locals",
        "f_globals",
        "f_builtins",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "co_consts",
        "co_code",
        "co_names",
        "co_varnames",
        "func_globals",
        "_ip",  # the IPython shell, held by exit, quit and others
    }
)
_DUNDER_ATTRS = sorted(a for a in FORBIDDEN_ATTRS if a.startswith("__"))

ATTR_FUNCTIONS = ("getattr", "setattr", "delattr")
_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))
_DUNDER = re.compile(r"__[A-Za-z]\w*?__")
_PIECE = re.compile(r"__[A-Za-z]|[A-Za-z0-9]__(?!\w)")  # '__glo', 'bals__'; not '____' or '__'


@cache
def _source_notebook(assignment: str) -> NotebookNode:
    path = SOLUTIONS / f"{assignment}.ipynb"
    return notebooks.read(path) if path.exists() else new_notebook()


def allowed_imports(assignment: str) -> frozenset[str]:
    """The modules an answer of `assignment` may import: `metadata.course.allowed_imports` of its
    source notebook, else math and random."""
    course = _source_notebook(assignment).get("metadata", {}).get("course", {})
    allowed = course.get("allowed_imports") if isinstance(course, dict) else None
    return frozenset(allowed if isinstance(allowed, list) else DEFAULT_ALLOWED_IMPORTS)


@cache
def _setup(assignment: str) -> dict[str, str]:
    """What the locked cells of the source notebook define (they run in every graded notebook, so
    an answer sees all of it): {name: kind} with kind 'module:X' for an import of module X,
    'from:M' for a name imported from M, 'class' or 'def' for a class or function, 'instance' for
    an instance of one of those classes (a test cell's `check`), and 'value' for anything else.
    Values of cells other than the setup cell are left out: an answer may reuse their names."""
    names: dict[str, str] = {}
    for cell in _source_notebook(assignment).cells:
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
def _methods(assignment: str) -> frozenset[tuple[str, str]]:
    """The (class, attribute) pairs the answers of the source notebook assign at the top level,
    e.g. ("Value", "__add__") for `Value.__add__ = __add__`: what the assignment asks for."""
    pairs = set()
    for cell in _source_notebook(assignment).cells:
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


def _given_class(kind: str, name: str) -> bool:
    """Whether a name the locked cells bind is a class: defined there, or imported by a
    capitalised name (`from micrograd.engine import Value`)."""
    return kind == "class" or (kind.startswith("from:") and name[:1].isupper())


def _bound_by(node: ast.stmt, known: dict[str, str] | None = None) -> dict[str, str]:
    """{name: kind} (see _setup) of the names one statement binds at module level; `known`, the
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
    kind = "instance" if made and _given_class(known.get(made, ""), made) else "value"
    return {sub.id: kind for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)}


def _top_level(body):
    """Statements run at module level, looking into if/try/with/for blocks but not into defs."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
            for field in ("body", "orelse", "finalbody"):
                yield from _top_level(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from _top_level(handler.body)


_transformer = None


def _python(source):
    """The cell as the kernel runs it, IPython syntax turned into calls on get_ipython(); and
    whether IPython's transformer did it (else magic lines were blanked here)."""
    global _transformer
    try:
        if _transformer is None:
            from IPython.core.inputtransformer2 import TransformerManager

            _transformer = TransformerManager()
        return _transformer.transform_cell(source), True
    except Exception:  # no IPython, or input it cannot transform
        return "\n".join("" if _MAGIC_LINE.match(line) else line for line in source.splitlines()), False


_MAGIC_LINE = re.compile(r"\s*(?:[\w.,\s\[\]()*]+=\s*)?(%%?|!!?)\s*(\w*)")


def _magic_lines(source):
    """Reasons for magic and shell lines, read from the text (when IPython is not there)."""
    found = set()
    for line in source.splitlines():
        m = _MAGIC_LINE.match(line)
        if m:
            found.add("uses a shell command" if m.group(1).startswith("!") else f"uses {m.group(1)}{m.group(2)}")
    return found


def review_source(source: str, assignment: str) -> set[str]:
    """The reasons (without the "answer cell X" prefix) for one cell's source; an empty set for a
    cell that does not parse."""
    python, by_ipython = _python(source)
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": the kernel's business
            warnings.simplefilter("ignore")
            tree = ast.parse(python)
    except (SyntaxError, ValueError):
        return set()
    except (RecursionError, MemoryError):
        return {"is too deeply nested to review"}
    checker = _Checker(source, assignment)
    try:
        checker.visit(tree)
    except RecursionError:  # e.g. a sum of a thousand terms: no honest answer needs it
        checker.reasons.add("is too deeply nested to review")
    return checker.reasons if by_ipython else checker.reasons | _magic_lines(source)


def review(nb: dict, assignment: str) -> list[str]:
    """One short reason per problem found in the cells of `nb` that run the student's code, sorted,
    without duplicates. Those are every code cell but the locked ones (nbgrader puts their source
    back): answer cells, named "answer cell GRADE_ID", and any other cell, named "cell N" by its
    position, unless it is a cell of the released notebook left as it was."""
    given = _unlocked_given(assignment)
    reasons = set()
    for index, cell in enumerate(nb.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code" or notebooks.is_locked(cell):
            continue
        text = notebooks.source(cell)
        if notebooks.is_answer(cell):
            name = f"answer cell {notebooks.grade_id(cell) or f'#{index + 1}'}"
        elif text.strip() in given:
            continue
        else:
            name = f"cell {index + 1}"
        reasons |= {f"{name} {r}" for r in review_source(text, assignment)}
    return sorted(reasons)


@cache
def _unlocked_given(assignment: str) -> frozenset[str]:
    """The text of the code cells the source notebook gives and does not lock (examples a student
    may run or change): unchanged, they are the course's code, not the student's."""
    return frozenset(
        c.source.strip()
        for c in _source_notebook(assignment).cells
        if c.cell_type == "code" and not notebooks.is_locked(c) and not notebooks.is_answer(c)
    )


_KNOWN_MODULES = frozenset({"math", "random", "np", "numpy", "torch", "plt", "matplotlib", "graphviz"})
_SHELL = ("system", "getoutput")
_MAGIC = {"run_line_magic": "%", "run_cell_magic": "%%"}


class _Checker(ast.NodeVisitor):
    def __init__(self, source, assignment):
        self.typed_get_ipython = "get_ipython" in source  # else every get_ipython() is IPython's
        self.allowed = allowed_imports(assignment)
        self.setup = _setup(assignment)
        self.methods = _methods(assignment)
        self.strings: dict[str, str] = {}  # name -> the string constant last assigned to it
        self.reasons = set()
        self.scopes = []  # the names local to each enclosing function, innermost last
        self.imported = {}  # name bound by an import in this cell -> module

    def _local(self, name):
        return any(name in scope for scope in self.scopes)

    def _module_name(self, node):
        """The name of `node` if it refers to a module (imported here or by the setup cell, or a
        module everyone knows by that name), else None."""
        if not isinstance(node, ast.Name) or self._local(node.id):
            return None
        if node.id in self.imported or self.setup.get(node.id, "").startswith("module:"):
            return node.id
        if node.id in DANGEROUS_MODULES or node.id in _KNOWN_MODULES or node.id in self.allowed:
            return node.id
        return None

    # -- scopes ---------------------------------------------------------------------------------
    def _visit_function(self, node, args, body):
        for default in args.defaults + [d for d in args.kw_defaults if d]:
            self.visit(default)
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)
        if getattr(node, "returns", None):
            self.visit(node.returns)
        body = body if isinstance(body, list) else [body]
        self.scopes.append(_function_locals(args, body))
        for stmt in body:
            self.visit(stmt)
        self.scopes.pop()

    def visit_FunctionDef(self, node):
        if not self.scopes:
            self._store(node.name)
        self._visit_function(node, node.args, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._visit_function(node, node.args, node.body)

    def _visit_comprehension(self, node):
        """A comprehension's targets are its own: `[os for os in xs]` does not use the module."""
        self.visit(node.generators[0].iter)  # evaluated in the enclosing scope
        names = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        self.scopes.append(names)
        for k, gen in enumerate(node.generators):
            if k:
                self.visit(gen.iter)
            for cond in gen.ifs:
                self.visit(cond)
        for part in ("elt", "key", "value"):
            if getattr(node, part, None) is not None:
                self.visit(getattr(node, part))
        self.scopes.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comprehension

    def visit_ClassDef(self, node):
        if not self.scopes:
            self._store(node.name)
        self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            self._store(name)

    # -- names ----------------------------------------------------------------------------------
    def visit_Name(self, node):
        name = node.id
        if isinstance(node.ctx, ast.Store):
            if not self.scopes:
                self._store(name)
            return
        if self._local(name):
            return
        if name in FORBIDDEN_NAMES or _HISTORY.match(name):
            if name != "get_ipython" or self.typed_get_ipython:
                self.reasons.add(f"uses {name}")
        elif name in ATTR_FUNCTIONS or name == "vars":
            self.reasons.add(f"uses {name}")  # not called directly (a call is checked in visit_Call)
        if name in self.imported:
            return
        kind = self.setup.get(name, "")
        module = kind.split(":")[1] if kind.startswith("module:") else ""
        if module and (module.split(".")[0] in DANGEROUS_MODULES or (name[0] == "_" and module not in self.allowed)):
            self.reasons.add(f"uses {name}")  # e.g. the setup cell's `import os as _os` or `import json as _json`
        elif kind == "value" and name.isupper():
            self.reasons.add(f"uses {name}")  # a constant of the grading kit, e.g. whether it is grading

    def _store(self, name):
        """A module-level binding in the answer: redefining what a locked cell defines, or a builtin
        (a later test cell would call the answer's `print` or `isinstance`), is a reason."""
        if self.setup.get(name, "instance") != "instance" or name in _BUILTINS:  # a test cell's `check`: its own
            self.reasons.add(f"redefines {name}")

    def _given_object(self, node):
        """The name of `node` if it is a class, or an instance of one, that a locked cell defines
        (Checks, Rng, Value, a test cell's `check`) and this cell has not rebound."""
        if not isinstance(node, ast.Name) or self._local(node.id) or node.id in self.imported:
            return None
        kind = self.setup.get(node.id, "")
        return node.id if kind == "instance" or _given_class(kind, node.id) else None

    def _assigns(self, node, attr, deleted=False):
        """A store to (or deletion of) an attribute of a given class outside the methods the
        assignment asks for changes what the tests run."""
        owner = self._given_object(node)
        verb = "deletes" if deleted else "assigns"
        if owner and (deleted or (owner, attr) not in self.methods):
            self.reasons.add(f"{verb} {owner}.{attr}")
        elif _class_of(node):  # type(check).close = ..., check.__class__.close = ...
            self.reasons.add(f"{verb} .{attr} of an object's class")

    # -- imports --------------------------------------------------------------------------------
    def visit_Import(self, node):
        for alias in node.names:
            if alias.name not in self.allowed:
                self.reasons.add(f"imports {alias.name}")
            bound = alias.asname or alias.name.split(".")[0]
            module = alias.name if alias.asname else alias.name.split(".")[0]
            self._bind(bound, module)

    def visit_ImportFrom(self, node):
        module = "." * node.level + (node.module or "")
        if module not in self.allowed:
            self.reasons.add(f"imports {module}")
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name, f"{module}.{alias.name}")

    def _bind(self, bound, module):
        if self.scopes:
            return
        if (bound in self.setup and self.setup[bound] != f"module:{module}") or bound in _BUILTINS:
            self.reasons.add(f"redefines {bound}")
        self.imported[bound] = module

    # -- attributes -----------------------------------------------------------------------------
    def visit_Attribute(self, node):
        attr = node.attr
        already = isinstance(node.value, ast.Name) and node.value.id in FORBIDDEN_NAMES  # e.g. signal.signal
        if attr in FORBIDDEN_ATTRS or (attr in DANGEROUS_MODULES and not already):
            self.reasons.add(f"uses .{attr}")  # e.g. torch.os
        if self._module_name(node.value):
            where = f"{node.value.id}.{attr}"
            if attr.startswith("_"):
                self.reasons.add(f"uses {where}")  # e.g. random._os, math.__dict__
            if isinstance(node.ctx, ast.Store):
                self.reasons.add(f"assigns {where}")
            elif isinstance(node.ctx, ast.Del):
                self.reasons.add(f"deletes {where}")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._assigns(node.value, attr, deleted=isinstance(node.ctx, ast.Del))
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        self._built(node)  # "".join([...])
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            if func.attr in _SHELL:
                self.reasons.add("uses a shell command")
            elif func.attr in _MAGIC:
                first = node.args[0] if node.args else None
                magic = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
                self.reasons.add(f"uses {_MAGIC[func.attr]}{magic}")
        if isinstance(func, ast.Name) and not self._local(func.id):
            if func.id in ATTR_FUNCTIONS:
                return self._attr_function(node, func.id)
            if func.id == "display" and any(k.arg == "raw" for k in node.keywords):
                self.reasons.add("uses display with raw")  # publishes any output, as a test cell's
            if func.id == "vars":
                if not node.args or self._module_name(node.args[0]):
                    self.reasons.add("uses vars")
                for arg in node.args:
                    self.visit(arg)
                return
        self.generic_visit(node)

    def _attr_function(self, node, fname):
        obj = node.args[0] if node.args else None
        name = node.args[1] if len(node.args) > 1 else None
        literal = name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None
        if literal is None:
            self.reasons.add(f"uses {fname} with a computed name")
        elif literal.startswith("__") or literal in FORBIDDEN_ATTRS:
            self.reasons.add(f"uses {fname} with {literal}")
        elif literal in DANGEROUS_MODULES:
            self.reasons.add(f"uses .{literal}")
        if literal is not None and obj is not None and fname != "getattr":
            self._assigns(obj, literal, deleted=fname == "delattr")
        if literal is not None and obj is not None and self._module_name(obj):
            self._module_attr(fname, f"{obj.id}.{literal}", literal)
        for arg in node.args[:1] + node.args[2:] + [k.value for k in node.keywords]:
            self.visit(arg)
        if literal is None and name is not None:
            self.visit(name)

    def _module_attr(self, fname, where, literal):
        if fname == "setattr":
            self.reasons.add(f"assigns {where}")
        elif fname == "delattr":
            self.reasons.add(f"deletes {where}")
        elif literal.startswith("_"):
            self.reasons.add(f"uses {where}")

    # -- strings --------------------------------------------------------------------------------
    def visit_Constant(self, node):
        """A string naming a dangerous attribute, for getattr, format strings ('{0.__globals__}')
        or object.__getattribute__; or a piece of a dunder name ('__glo', 'bals__')."""
        if isinstance(node.value, str):
            if node.value in FORBIDDEN_ATTRS:
                self.reasons.add(f"uses .{node.value}")
            for attr in _DUNDER_ATTRS:
                if attr in node.value:
                    self.reasons.add(f"uses .{attr}")
            if _PIECE.search(_DUNDER.sub("", node.value)):
                self.reasons.add("builds a dunder name from pieces")

    def visit_Assign(self, node):
        folded = _fold(node.value, self.strings)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if folded is None:
                    self.strings.pop(target.id, None)
                else:
                    self.strings[target.id] = folded
        self.generic_visit(node)

    def visit_BinOp(self, node):
        self._built(node)
        self.generic_visit(node)

    def visit_JoinedStr(self, node):
        self._built(node)
        self.generic_visit(node)

    def _built(self, node):
        """A string the cell builds from constant pieces ('_' * 2 + 'globals' + '_' * 2) that holds
        a dunder name."""
        folded = _fold(node, self.strings)
        if isinstance(folded, str) and _DUNDER.search(folded):
            self.reasons.add("builds a dunder name from pieces")


_OPS = {ast.Add: operator.add, ast.Mult: operator.mul, ast.Mod: operator.mod}


def _fold(node, strings, depth=0):
    """The value of a string expression made of constants and of names bound to them in `strings`
    (ints too, as they appear in '_' * 2 or chr(95)); None for anything else."""
    if depth > 50:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        return strings.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = [_fold(v.value if isinstance(v, ast.FormattedValue) else v, strings, depth + 1) for v in node.values]
        return "".join(map(str, parts)) if None not in parts else None
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _fold_binop(node, strings, depth)
    if isinstance(node, ast.Call) and node.args:
        return _fold_call(node, strings, depth)
    return None


def _fold_binop(node, strings, depth):
    left, right = _fold(node.left, strings, depth + 1), _fold(node.right, strings, depth + 1)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Mult) and not all(isinstance(x, int) for x in (left, right)):
        count = left if isinstance(left, int) else right
        if not isinstance(count, int) or not 0 <= count <= 100:
            return None  # a string repeated too often to be a name
    try:
        value = _OPS[type(node.op)](left, right)
    except (TypeError, ValueError, ArithmeticError):
        return None
    return value if isinstance(value, int) or (isinstance(value, str) and len(value) < 1000) else None


def _fold_call(node, strings, depth):
    """chr(95) and "".join([...]) of folded values."""
    func = node.func
    if isinstance(func, ast.Name) and func.id == "chr":
        code = _fold(node.args[0], strings, depth + 1)
        return chr(code) if isinstance(code, int) and 0 <= code < 0x110000 else None
    if isinstance(func, ast.Attribute) and func.attr == "join" and isinstance(node.args[0], (ast.List, ast.Tuple)):
        sep = _fold(func.value, strings, depth + 1)
        parts = [_fold(e, strings, depth + 1) for e in node.args[0].elts]
        if isinstance(sep, str) and all(isinstance(p, str) for p in parts):
            return sep.join(parts)
    return None


def _class_of(node):
    """Whether `node` is `type(x)` or `x.__class__`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "__class__"
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type"


def _function_locals(args: ast.arguments, body: list[ast.AST]) -> set[str]:
    """The names local to a function: its parameters and the names its body binds, less those it
    declares global or nonlocal."""
    local = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    local |= {a.arg for a in (args.vararg, args.kwarg) if a}
    declared: set[str] = set()
    for stmt in body:
        for sub in _walk_scope(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                local.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                local.add(sub.name)
            elif isinstance(sub, (ast.Global, ast.Nonlocal)):
                declared |= set(sub.names)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                local |= {(a.asname or a.name).split(".")[0] for a in sub.names}
    return local - declared


def _walk_scope(node):
    """The nodes of one function body, not descending into nested functions, lambdas or classes
    (their own names are theirs), but including their names and defaults."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_scope(child)
