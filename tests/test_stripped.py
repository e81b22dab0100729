"""What a graded kernel runs of a test cell: moved inputs, and checks stripped of everything they
are compared with (no kernel needed)."""

import importlib

from autograder.in_notebook import kit
from autograder.worker.graded_source import moved_seed, perturbed, stripped
from autograder.worker.report import Observation, Report
from autograder.worker.verdict import judge

CELL = """
check = Checks("tanh")
t = math.tanh(0.8)
x = Value(0.8)
y = x.tanh() * x.tanh()
y.backward()
check.close(x.grad, 2 * t * (1 - t * t), "each tanh node must add its contribution", tol=1e-9)
x = Value(0.3)
node, d, grad = x, 0.3, 1.0
for _ in range(100):
    node = node + 0.5 * node.tanh()
    grad *= 1 + 0.5 * (1 - math.tanh(d) ** 2)
    d = d + 0.5 * math.tanh(d)
node.backward()
check.close(node.data, d, "a chain: value")
check.close(x.grad, grad, "a chain: gradient", wrong=[(grad / 2, "half")])
expected = [None] * 3
if torch:
    tx = torch.tensor(0.3, requires_grad=True)
    torch.tanh(tx).backward()
    expected = [tx.grad.item()] * 3


class _Recorder:
    def __init__(self):
        self.seen = []

    def step(self, g):
        self.seen.append(g)


rec = _Recorder()
rec.step(x.grad)
check.equal(len(rec.seen), 1, "step once")
check.close(x.grad, expected[0] if torch else None, "PyTorch agrees")
check.below(abs(x.grad), 1e6, "not huge")
check.done()
"""


def test_a_graded_kernel_gets_no_expected_value_bound_or_message():
    graded = stripped(CELL)
    compile(graded, "cell", "exec")
    for gone in ("2 * t", "math.tanh(d)", "grad *=", "torch", "expected", "half", "1e6", "1000000.0", "agrees", "tol="):
        assert gone not in graded, gone
    for kept in ("check.close(x.grad)", "check.close(node.data)", "node = node + 0.5 * node.tanh()", "y.backward()"):
        assert kept in graded, kept
    assert "def step(self, g)" in graded and "self.seen.append(g)" in graded  # methods are read as attributes
    assert "check.equal(len(rec.seen))" in graded and "check.below(abs(x.grad))" in graded


def test_a_statement_that_acts_on_an_object_stays():
    graded = stripped("a = Value(2.0)\nb = a * 3\nb.grad = 1.0\nb._backward()\ncheck.close(a.grad, 3.0, 'x')\n")
    assert "b.grad = 1.0" in graded and "b._backward()" in graded


def test_literal_seeds_move_with_the_secret_and_stay_apart():
    source = "rng = np.random.default_rng(12)\nX, y = make_moons(50, noise=0.1, seed=7)\n"
    source += "Z = make_moons(50, seed=7)\nr = Rng(3)\n"
    moved = perturbed(source, "secret")
    assert f"default_rng({moved_seed(12, 'secret')})" in moved
    assert moved.count(f"seed={moved_seed(7, 'secret')}") == 2  # the same seed twice stays the same
    assert "Rng(3)" in moved  # the kit moves Rng's seeds itself
    assert moved_seed(7, "secret") != moved_seed(8, "secret") and moved_seed(7, "secret") != moved_seed(7, "other")


def test_the_kit_moves_rng_seeds_only_at_grading(monkeypatch):
    plain = [importlib.reload(kit).Rng(s).random() for s in (1, 2)]
    monkeypatch.setenv("MICROGRAD_GRADING", "1")
    monkeypatch.setenv("MICROGRAD_SEED", "12345")
    try:
        graded = [importlib.reload(kit).Rng(s).random() for s in (1, 2)]
    finally:
        monkeypatch.delenv("MICROGRAD_GRADING")
        importlib.reload(kit)
    assert graded[0] != plain[0] and graded[1] != plain[1] and graded[0] != graded[1]


def test_the_kit_ignores_an_expected_value_at_grading(monkeypatch, capsys):
    monkeypatch.setenv("MICROGRAD_GRADING", "1")
    try:
        graded = importlib.reload(kit)
        check = graded.Checks("c")
        check.close(1.5, 99.0, "m")
        check.equal([1, 2], [3], "m")
    finally:
        monkeypatch.delenv("MICROGRAD_GRADING")
        importlib.reload(kit)
    out = capsys.readouterr().out
    assert "99" not in out and "[3" not in out and '"value": 1.5' in out and '"value": [1.0, 2.0]' in out


def test_a_hidden_verdict_names_nothing_the_students_code_chose():
    ref = [Report("tanh", 0, "close", 2.0, "the gradient", tol=1e-6), Report("tanh", 1, "done", None, "")]
    for error in ("ZeroDivisionError", "KeyError", "MyOwnError"):
        hidden = judge("tanh", ref, [], error, hidden=True).message
        assert error not in hidden and "error" not in hidden.lower(), hidden
    assert "ZeroDivisionError" in judge("tanh", ref, [], "ZeroDivisionError", hidden=False).message


def test_equal_is_judged_against_the_reference_observation():
    ref = [Report("x", 0, "equal", [3.0, 1.0], "sizes"), Report("x", 1, "done", None, "")]
    done = Observation(1, "done", None)
    assert judge("x", ref, [Observation(0, "equal", [3.0, 1.0]), done], None, False).passed
    for forged in (True, [3.0], [3.0, 1.0, 0.0], "Value", None):
        assert not judge("x", ref, [Observation(0, "equal", forged), done], None, False).passed, forged


def test_a_failing_call_becomes_the_course_message_without_its_traceback(capsys):
    class Wrong:
        def __radd__(self, other):
            return other + self  # calls __radd__ again, forever

    check = importlib.reload(kit).Checks("__radd__")
    try:
        check.calls(lambda: 1 + Wrong(), "in __radd__ write self + other")
    except AssertionError as e:
        assert str(e) == "__radd__: in __radd__ write self + other (RecursionError)"
        assert e.__context__ is None and e.__cause__ is None  # no traceback of a thousand frames
    else:
        raise AssertionError("a recursion must fail the check")
    assert check.calls(lambda: 2 + 3, "fine") == 5
