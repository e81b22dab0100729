"""Suspicious code, found by reading every cell of a submission that runs, without running it.

`review(nb, aid)` returns one short reason per problem found in the cells that run the
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
import re
import warnings
from functools import cache
from typing import Any

from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.grading.review_checker import Checker
from autograder.grading.review_setup import asked_methods, setup_names, unlocked_given


@cache
def _transformer() -> Any:
    """IPython's TransformerManager, made on first use."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()  # type: ignore[no-untyped-call]  # IPython has no hints here


def _python(source: str) -> tuple[str, bool]:
    """The cell as the kernel runs it, IPython syntax turned into calls on get_ipython(); and
    whether IPython's transformer did it (else magic lines were blanked here)."""
    try:
        return _transformer().transform_cell(source), True
    except Exception:  # no IPython, or input it cannot transform
        return "\n".join("" if _MAGIC_LINE.match(line) else line for line in source.splitlines()), False


_MAGIC_LINE = re.compile(r"\s*(?:[\w.,\s\[\]()*]+=\s*)?(%%?|!!?)\s*(\w*)")


def _magic_lines(source: str) -> set[str]:
    """Reasons for magic and shell lines, read from the text (when IPython is not there)."""
    found: set[str] = set()
    for line in source.splitlines():
        m = _MAGIC_LINE.match(line)
        if m:
            found.add("uses a shell command" if m.group(1).startswith("!") else f"uses {m.group(1)}{m.group(2)}")
    return found


def review_source(source: str, aid: str) -> set[str]:
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
    checker = Checker(source, assignment(aid).allowed_imports, setup_names(aid), asked_methods(aid))
    try:
        checker.visit(tree)
    except RecursionError:  # e.g. a sum of a thousand terms: no honest answer needs it
        checker.reasons.add("is too deeply nested to review")
    return checker.reasons if by_ipython else checker.reasons | _magic_lines(source)


def review(nb: dict[str, Any], aid: str) -> list[str]:
    """One short reason per problem found in the cells of `nb` that run the student's code, sorted,
    without duplicates. Those are every code cell but the locked ones (nbgrader puts their source
    back): answer cells, named "answer cell GRADE_ID", and any other cell, named "cell N" by its
    position, unless it is a cell of the released notebook left as it was."""
    given = unlocked_given(aid)
    reasons: set[str] = set()
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
        reasons |= {f"{name} {r}" for r in review_source(text, aid)}
    return sorted(reasons)
