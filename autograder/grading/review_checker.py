"""The reader of one cell: an AST visitor that collects the review's reasons (see review.py)."""

import ast
from collections.abc import Iterator

from autograder.grading.review_rules import (
    ATTR_FUNCTIONS,
    BUILTINS,
    DANGEROUS_MODULES,
    DUNDER,
    DUNDER_ATTRS,
    FORBIDDEN_ATTRS,
    FORBIDDEN_NAMES,
    HISTORY,
    KNOWN_MODULES,
    MAGIC,
    PIECE,
    SHELL,
    fold,
)
from autograder.grading.review_setup import given_class


class Checker(ast.NodeVisitor):
    """`allowed`: the modules an answer may import; `setup`: what the locked cells bind (see
    review_setup.setup_names); `methods`: the (class, attribute) pairs the answers are asked to set."""

    def __init__(
        self, source: str, allowed: frozenset[str], setup: dict[str, str], methods: frozenset[tuple[str, str]]
    ) -> None:
        self.typed_get_ipython = "get_ipython" in source  # else every get_ipython() is IPython's
        self.allowed = allowed
        self.setup = setup
        self.methods = methods
        self.strings: dict[str, str | int] = {}  # name -> the string constant last assigned to it
        self.reasons: set[str] = set()
        self.scopes: list[set[str]] = []  # the names local to each enclosing function, innermost last
        self.imported: dict[str, str] = {}  # name bound by an import in this cell -> module

    def _local(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def _module_name(self, node: ast.AST) -> str | None:
        """The name of `node` if it refers to a module (imported here or by the setup cell, or a
        module everyone knows by that name), else None."""
        if not isinstance(node, ast.Name) or self._local(node.id):
            return None
        if node.id in self.imported or self.setup.get(node.id, "").startswith("module:"):
            return node.id
        if node.id in DANGEROUS_MODULES or node.id in KNOWN_MODULES or node.id in self.allowed:
            return node.id
        return None

    # -- scopes ---------------------------------------------------------------------------------
    def _visit_function(self, node: ast.AST, args: ast.arguments, body: list[ast.stmt] | ast.expr) -> None:
        for default in args.defaults + [d for d in args.kw_defaults if d]:
            self.visit(default)
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)
        returns = getattr(node, "returns", None)
        if returns:
            self.visit(returns)
        statements: list[ast.AST] = [*body] if isinstance(body, list) else [body]
        self.scopes.append(_function_locals(args, statements))
        for stmt in statements:
            self.visit(stmt)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if not self.scopes:
            self._store(node.name)
        self._visit_function(node, node.args, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_function(node, node.args, node.body)

    def _visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
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

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if not self.scopes:
            self._store(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self._store(name)

    # -- names ----------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if isinstance(node.ctx, ast.Store):
            if not self.scopes:
                self._store(name)
            return
        if self._local(name):
            return
        if name in FORBIDDEN_NAMES or HISTORY.match(name):
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

    def _store(self, name: str) -> None:
        """A module-level binding in the answer: redefining what a locked cell defines, or a builtin
        (a later test cell would call the answer's `print` or `isinstance`), is a reason."""
        if self.setup.get(name, "instance") != "instance" or name in BUILTINS:  # a test cell's `check`: its own
            self.reasons.add(f"redefines {name}")

    def _given_object(self, node: ast.AST) -> str | None:
        """The name of `node` if it is a class, or an instance of one, that a locked cell defines
        (Checks, Rng, Value, a test cell's `check`) and this cell has not rebound."""
        if not isinstance(node, ast.Name) or self._local(node.id) or node.id in self.imported:
            return None
        kind = self.setup.get(node.id, "")
        return node.id if kind == "instance" or given_class(kind, node.id) else None

    def _assigns(self, node: ast.AST, attr: str, deleted: bool = False) -> None:
        """A store to (or deletion of) an attribute of a given class outside the methods the
        assignment asks for changes what the tests run."""
        owner = self._given_object(node)
        verb = "deletes" if deleted else "assigns"
        if owner and (deleted or (owner, attr) not in self.methods):
            self.reasons.add(f"{verb} {owner}.{attr}")
        elif _class_of(node):  # type(check).close = ..., check.__class__.close = ...
            self.reasons.add(f"{verb} .{attr} of an object's class")

    # -- imports --------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in self.allowed:
                self.reasons.add(f"imports {alias.name}")
            bound = alias.asname or alias.name.split(".")[0]
            module = alias.name if alias.asname else alias.name.split(".")[0]
            self._bind(bound, module)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        if module not in self.allowed:
            self.reasons.add(f"imports {module}")
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name, f"{module}.{alias.name}")

    def _bind(self, bound: str, module: str) -> None:
        if self.scopes:
            return
        if (bound in self.setup and self.setup[bound] != f"module:{module}") or bound in BUILTINS:
            self.reasons.add(f"redefines {bound}")
        self.imported[bound] = module

    # -- attributes -----------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        already = isinstance(node.value, ast.Name) and node.value.id in FORBIDDEN_NAMES  # e.g. signal.signal
        if attr in FORBIDDEN_ATTRS or (attr in DANGEROUS_MODULES and not already):
            self.reasons.add(f"uses .{attr}")  # e.g. torch.os
        module = self._module_name(node.value)
        if module:
            where = f"{module}.{attr}"
            if attr.startswith("_"):
                self.reasons.add(f"uses {where}")  # e.g. random._os, math.__dict__
            if isinstance(node.ctx, ast.Store):
                self.reasons.add(f"assigns {where}")
            elif isinstance(node.ctx, ast.Del):
                self.reasons.add(f"deletes {where}")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._assigns(node.value, attr, deleted=isinstance(node.ctx, ast.Del))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        self._built(node)  # "".join([...])
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            if func.attr in SHELL:
                self.reasons.add("uses a shell command")
            elif func.attr in MAGIC:
                first = node.args[0] if node.args else None
                magic = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
                self.reasons.add(f"uses {MAGIC[func.attr]}{magic}")
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

    def _attr_function(self, node: ast.Call, fname: str) -> None:
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
        module = self._module_name(obj) if obj is not None else None
        if literal is not None and module:
            self._module_attr(fname, f"{module}.{literal}", literal)
        for arg in node.args[:1] + node.args[2:] + [k.value for k in node.keywords]:
            self.visit(arg)
        if literal is None and name is not None:
            self.visit(name)

    def _module_attr(self, fname: str, where: str, literal: str) -> None:
        if fname == "setattr":
            self.reasons.add(f"assigns {where}")
        elif fname == "delattr":
            self.reasons.add(f"deletes {where}")
        elif literal.startswith("_"):
            self.reasons.add(f"uses {where}")

    # -- strings --------------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        """A string naming a dangerous attribute, for getattr, format strings ('{0.__globals__}')
        or object.__getattribute__; or a piece of a dunder name ('__glo', 'bals__')."""
        if isinstance(node.value, str):
            if node.value in FORBIDDEN_ATTRS:
                self.reasons.add(f"uses .{node.value}")
            for attr in DUNDER_ATTRS:
                if attr in node.value:
                    self.reasons.add(f"uses .{attr}")
            if PIECE.search(DUNDER.sub("", node.value)):
                self.reasons.add("builds a dunder name from pieces")

    def visit_Assign(self, node: ast.Assign) -> None:
        folded = fold(node.value, self.strings)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if folded is None:
                    self.strings.pop(target.id, None)
                else:
                    self.strings[target.id] = folded
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._built(node)
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._built(node)
        self.generic_visit(node)

    def _built(self, node: ast.expr) -> None:
        """A string the cell builds from constant pieces ('_' * 2 + 'globals' + '_' * 2) that holds
        a dunder name."""
        folded = fold(node, self.strings)
        if isinstance(folded, str) and DUNDER.search(folded):
            self.reasons.add("builds a dunder name from pieces")


def _class_of(node: ast.AST) -> bool:
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


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one function body, not descending into nested functions, lambdas or classes
    (their own names are theirs), but including their names and defaults."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_scope(child)
