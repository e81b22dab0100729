"""What the review flags: the modules, names and attributes that reach for the interpreter, the
process or the grader, and the strings a cell builds from constant pieces (folded here to be read)."""

import ast
import builtins
import operator
import re

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
HISTORY = re.compile(r"^_i{1,3}\d*$")  # _i, _ii, _iii, _i12: earlier inputs

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
DUNDER_ATTRS = sorted(a for a in FORBIDDEN_ATTRS if a.startswith("__"))

ATTR_FUNCTIONS = ("getattr", "setattr", "delattr")
BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))
DUNDER = re.compile(r"__[A-Za-z]\w*?__")
PIECE = re.compile(r"__[A-Za-z]|[A-Za-z0-9]__(?!\w)")  # '__glo', 'bals__'; not '____' or '__'

KNOWN_MODULES = frozenset({"math", "random", "np", "numpy", "torch", "plt", "matplotlib", "graphviz"})
SHELL = ("system", "getoutput")
MAGIC = {"run_line_magic": "%", "run_cell_magic": "%%"}


_OPS = {ast.Add: operator.add, ast.Mult: operator.mul, ast.Mod: operator.mod}


def fold(node: ast.AST, strings: dict[str, str | int], depth: int = 0) -> str | int | None:
    """The value of a string expression made of constants and of names bound to them in `strings`
    (ints too, as they appear in '_' * 2 or chr(95)); None for anything else."""
    if depth > 50:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        return strings.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = [fold(v.value if isinstance(v, ast.FormattedValue) else v, strings, depth + 1) for v in node.values]
        return "".join(map(str, parts)) if None not in parts else None
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _fold_binop(node, strings, depth)
    if isinstance(node, ast.Call) and node.args:
        return _fold_call(node, strings, depth)
    return None


def _fold_binop(node: ast.BinOp, strings: dict[str, str | int], depth: int) -> str | int | None:
    left, right = fold(node.left, strings, depth + 1), fold(node.right, strings, depth + 1)
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


def _fold_call(node: ast.Call, strings: dict[str, str | int], depth: int) -> str | int | None:
    """chr(95) and "".join([...]) of folded values."""
    func = node.func
    if isinstance(func, ast.Name) and func.id == "chr":
        code = fold(node.args[0], strings, depth + 1)
        return chr(code) if isinstance(code, int) and 0 <= code < 0x110000 else None
    if isinstance(func, ast.Attribute) and func.attr == "join" and isinstance(node.args[0], (ast.List, ast.Tuple)):
        sep = fold(func.value, strings, depth + 1)
        parts = [fold(e, strings, depth + 1) for e in node.args[0].elts]
        texts = [p for p in parts if isinstance(p, str)]
        if isinstance(sep, str) and len(texts) == len(parts):
            return sep.join(texts)
    return None
