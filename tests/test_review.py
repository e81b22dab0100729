"""Suspicious answers are flagged, and honest ones are not: the reference answers, every catalogued
bug and the untouched stubs raise no flag, so that instructors do not learn to ignore the list."""

import dataclasses

import pytest

from autograder.authoring.bugs import BUGS
from autograder.authoring.samples import filled, stub
from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.paths import assignments
from autograder.grading import review

EX = "02_value_backward"


def with_answer(code, grade_id="add", aid=EX, as_lines=False):
    """The reference notebook of `aid` with `code` as the answer cell `grade_id`."""
    nb = filled(aid)
    cells = [c for c in nb["cells"] if notebooks.grade_id(c) == grade_id]
    assert len(cells) == 1 and notebooks.is_answer(cells[0])
    cells[0]["source"] = code.splitlines(keepends=True) if as_lines else code
    return nb


@pytest.mark.parametrize("aid", assignments())
def test_reference_answers_raise_no_flag(aid):
    assert review.review(filled(aid), aid) == []


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_catalogued_bugs_raise_no_flag(bug):
    aid = BUGS[bug].assignment
    assert review.review(filled(aid, bug), aid) == []


@pytest.mark.parametrize("aid", assignments())
def test_stubs_raise_no_flag(aid):
    assert review.review(stub(aid), aid) == []


ATTACKS = [
    ("with open('/etc/passwd') as f:\n    print(f.read())", "uses open"),
    ("import os\nos.listdir('.')", "imports os"),
    ("__import__('os').system('ls')", "uses __import__"),
    ("get_ipython().events.register('pre_run_cell', lambda info: None)", "uses get_ipython"),
    ("sys.modules['math'].isclose = lambda *a, **k: True", "uses sys"),
    ("import inspect\nframe = inspect.currentframe().f_back", "uses .f_back"),
    ("g = (lambda: 0).__globals__", "uses .__globals__"),
    ("classes = ().__class__.__base__.__subclasses__()", "uses .__subclasses__"),
    ("exec('Value.__add__ = lambda s, o: s')", "uses exec"),
    ("eval('1 + 1')", "uses eval"),
    ("code = compile('x = 1', '<x>', 'exec')", "uses compile"),
    ("import torch", "imports torch"),  # allowed in the capstone, not in exercise 2
    ("from subprocess import run\nrun(['ls'])", "imports subprocess"),
    ("import ctypes", "imports ctypes"),
    ("everything = gc.get_objects()", "uses gc"),
    ("builtins.print = lambda *a, **k: None", "uses builtins"),
    ("__builtins__['print'] = None", "uses __builtins__"),
    ("def peek(x):\n    return getattr(x, '__glob' + 'als__')", "uses getattr with a computed name"),
    ("!ls", "uses a shell command"),
    ("%load hidden_tests.py", "uses %load"),
    ("threading.Thread(target=print).start()", "uses threading"),
    ("signal.signal(14, lambda *a: None)", "uses signal"),
    # beyond the brief's list: routes that need no forbidden name written out
    ("def __add__(self, other):\n    return _os.system('ls')", "uses _os"),  # the setup cell's `import os as _os`
    ("def __add__(self, other):\n    return random._os", "uses random._os"),
    ("leak = '{0.__globals__}'.format(print)", "uses .__globals__"),
    ("mod = print.__self__", "uses .__self__"),
    ("math.isclose = lambda *a, **k: True", "assigns math.isclose"),
    ("setattr(math, 'isclose', None)", "assigns math.isclose"),
    ("ns = vars(math)", "uses vars"),
    ("GRADING = False", "redefines GRADING"),
    ("def __add__(self, other):\n    return 1 if GRADING else 2", "uses GRADING"),
    ("class Checks:\n    pass", "redefines Checks"),
    ("source = In[-1]", "uses In"),
    ("files = !ls", "uses a shell command"),
    ("%%bash\nls /", "uses %%bash"),
    ("object.__getattribute__(print, '__self__')", "uses .__getattribute__"),
    ("value = getattr(Value, '__init__')", "uses getattr with __init__"),
    ("torch.os.system('ls')", "uses .os"),
    # the IPython shell behind exit and quit
    ("exit._ip.system('ls')", "uses exit"),
    ("shell = quit._ip", "uses ._ip"),
    ("def __add__(self, other):\n    return self.shell._ip.ex('1')", "uses ._ip"),
    # the classes the tests run: only the methods the assignment asks for may be set
    ("Checks.close = lambda self, *a, **k: None", "assigns Checks.close"),
    ("Rng.random = lambda self: 0.5", "assigns Rng.random"),
    ("Value.__eq__ = lambda self, other: True", "assigns Value.__eq__"),
    ("del Value.__mul__", "deletes Value.__mul__"),
    ("setattr(Checks, 'true', lambda self, c, m: None)", "assigns Checks.true"),
    ("def __add__(self, other):\n    Value.__hash__ = None", "assigns Value.__hash__"),
    ("type(Value(1)).__eq__ = lambda self, other: True", "assigns .__eq__ of an object's class"),
    ("c = Checks('x')\nc.__class__.true = print", "assigns .true of an object's class"),
    ("setattr(type(Rng(1)), 'random', print)", "assigns .random of an object's class"),
    # builtins a later test cell calls
    ("def print(*args, **kwargs):\n    pass", "redefines print"),
    ("isinstance = lambda *a: True", "redefines isinstance"),
    ("from math import isclose as abs", "redefines abs"),
    # modules a locked cell imported, however they are reached
    ("ns = vars(zipfile)", "uses vars"),
    ("shutil.rmtree('/tmp/x')", "uses shutil"),
    ("f = _json.codecs.open('x')", "uses _json"),
    ("f = _json.codecs.open('x')", "uses .codecs"),
    # dunder names built from pieces
    ("leak = ('{0.__glo' + 'bals__}').format(print)", "builds a dunder name from pieces"),
    ("a = '_' * 2\nname = a + 'globals' + a", "builds a dunder name from pieces"),
    ("name = ''.join(['_', '_', 'code', '_', '_'])", "builds a dunder name from pieces"),
    ("name = f'{chr(95)}{chr(95)}class{chr(95)}{chr(95)}'", "builds a dunder name from pieces"),
    # output the grader reads as a test cell's
    ("display({'text/plain': '@@check {}'}, raw=True)", "uses display with raw"),
    # a cell the review cannot read is read by hand
    ("total = " + " + ".join(["a"] * 1200), "is too deeply nested to review"),
]


@pytest.mark.parametrize("code,reason", ATTACKS, ids=[a for a, _ in ATTACKS])
def test_attack_is_flagged(code, reason):
    assert len(ATTACKS) >= 20
    assert f"answer cell add {reason}" in review.review(with_answer(code), EX)


def test_reasons_are_sorted_unique_and_name_their_cell():
    nb = with_answer("import os\nimport os\nos.getcwd()\neval('1')", as_lines=True)  # source as a list
    reasons = review.review(nb, EX)
    assert reasons == ["answer cell add imports os", "answer cell add uses eval", "answer cell add uses os"]
    nb = with_answer("import sys", grade_id="backward", aid=EX)
    assert review.review(nb, EX) == ["answer cell backward imports sys"]


def test_ordinary_code_is_not_flagged():
    code = (
        "import math\nimport random\nfrom math import sqrt as root\n"
        "def __add__(self, other):\n"
        "    other = other if isinstance(other, Value) else Value(other)\n"
        "    out = Value(math.exp(0) * self.data + other.data, (self, other), '+')\n"
        "    def _backward():\n        self.grad += out.grad\n        other.grad += out.grad\n"
        "    out._backward = _backward\n"
        "    names = [v._op for v in out._prev] + [type(self).__name__, self.__class__.__name__]\n"
        "    label = getattr(self, 'label', '')\n"
        "    def scale(signal, open=1.0):\n        return signal * open\n"  # locals named like modules
        "    levels = [signal for signal in range(3)]\n"
        "    return out\n\n\nValue.__add__ = __add__\n"
    )
    assert review.review(with_answer(code), EX) == []


def test_cells_that_do_not_parse_and_cells_that_do_not_run_are_not_flagged():
    assert review.review(with_answer("import os\ndef broken(:\n"), EX) == []
    nb = filled(EX)
    nb["cells"].append(
        {"cell_type": "markdown", "metadata": {"nbgrader": {"solution": True, "grade_id": "m"}}, "source": "import os"}
    )
    nb["cells"].append({"cell_type": "raw", "metadata": {}, "source": "import os"})
    assert review.review(nb, EX) == []


def test_a_cell_the_student_added_is_reviewed_and_an_honest_one_raises_no_flag():
    nb = filled(EX)
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "source": "import os\nos.system('ls')"})
    assert review.review(nb, EX) == [f"cell {len(nb['cells'])} imports os", f"cell {len(nb['cells'])} uses os"]
    nb = filled(EX)
    helper = "def as_value(x):\n    return x if isinstance(x, Value) else Value(x)\n\nprint(as_value(2).data)"
    nb["cells"].insert(5, {"cell_type": "code", "metadata": {}, "outputs": [], "source": helper})
    assert review.review(nb, EX) == []


def test_a_locked_cell_is_not_reviewed_but_a_changed_given_cell_is():
    nb = filled(EX)
    locked = next(c for c in nb["cells"] if notebooks.grade_id(c) == "test_add")
    locked["source"] = "import os"  # nbgrader puts the locked source back before it runs
    assert review.review(nb, EX) == []
    free = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and not notebooks.grade_id(c)]
    assert free, "the exercise gives a cell to try things in"
    nb["cells"][free[0]]["source"] = "exit._ip.ex('1')"
    assert review.review(nb, EX) == [f"cell {free[0] + 1} uses ._ip", f"cell {free[0] + 1} uses exit"]


def test_allowed_imports_come_from_the_assignment(monkeypatch):
    assert assignment(EX).allowed_imports == {"math", "random"}
    assert review.review(with_answer("import numpy as np"), EX) == ["answer cell add imports numpy"]
    allowed = frozenset(["math", "random", "numpy", "matplotlib.pyplot"])
    monkeypatch.setattr(review, "assignment", lambda aid: dataclasses.replace(assignment(aid), allowed_imports=allowed))
    assert review.review(with_answer("import numpy as np\nimport matplotlib.pyplot as plt"), EX) == []
    assert review.review(with_answer("import matplotlib"), EX) == ["answer cell add imports matplotlib"]
