"""Checks your own micrograd package against PyTorch, in float64, at any stage of the course.

What it checks:
  - each operation of `Value` alone (+, -, *, /, ** with an int and a float exponent, negation,
    a plain number on the left of + * - /, tanh, exp, relu): the value and the gradients;
  - a small expression, then a larger one that uses every operation and reuses nodes: every
    intermediate value, every intermediate gradient and every input's gradient;
  - one forward and backward pass of `MLP(3, [4, 4, 1])` (tanh in the hidden layers, a linear
    last layer): the output, the gradient of every weight and bias, and `zero_grad()`.
A part you have not saved yet is skipped, and the skip names the exercise that adds it; a part
you saved is checked, even if it only raises NotImplementedError.

How to run it, from the repository root, or in any folder that holds your `micrograd/`:

    python -m pytest -q test_micrograd.py -rs

(in Colab: `!python -m pytest -q test_micrograd.py -rs`). It tests the `micrograd/` in the current
folder, else the one in `exercises/` beside this file. It needs pytest and torch.
"""

import importlib
import inspect
import math
import os
import random
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDER = next(
    (f for f in (os.getcwd(), HERE, os.path.join(HERE, "exercises")) if os.path.isdir(os.path.join(f, "micrograd"))),
    os.getcwd(),
)
sys.path.insert(0, FOLDER)


def _saved(module, name):
    """micrograd.<module>.<name>, or None while that part is not saved yet."""
    try:
        found = importlib.import_module(f"micrograd.{module}")
    except ModuleNotFoundError as e:
        if e.name in ("micrograd", f"micrograd.{module}"):
            return None
        raise  # the package imports something that is missing: a real error
    return getattr(found, name, None)


Value = _saved("engine", "Value")
if Value is None:
    pytest.skip(f"no micrograd/engine.py with class Value in {FOLDER}: exercise 2 saves it", allow_module_level=True)
MLP = _saved("nn", "MLP")

# The exercise that adds each part, for the message of a skipped test.
ADDED_IN = {
    **dict.fromkeys(["__add__", "__mul__", "backward", "__neg__", "__sub__", "__radd__", "__rmul__", "__rsub__"], 2),
    **dict.fromkeys(["tanh", "exp", "__pow__", "relu", "__truediv__", "__rtruediv__"], 3),
}


def needs(*methods, mlp=False):
    """Skip the test, naming the exercises, when a part it uses is not saved yet."""
    missing = {f"Value.{m}": ADDED_IN[m] for m in methods if not hasattr(Value, m)}
    if mlp and MLP is None:
        missing["MLP"] = 5
    if missing:
        numbers = sorted(set(missing.values()))
        who = f"exercise {numbers[0]} adds" if len(numbers) == 1 else f"exercises {' and '.join(map(str, numbers))} add"
        pytest.skip(f"{', '.join(missing)} not saved yet: {who} {'it' if len(missing) == 1 else 'them'}")


TOL = 1e-6


def close(got, expected):
    return isinstance(got, (int, float)) and math.isclose(got, expected, rel_tol=TOL, abs_tol=TOL)


def both(fn, inputs):
    """Run fn on Values and on float64 tensors made from the same inputs; backward the output.
    fn returns the output, or a dict of named nodes whose last entry is the output.
    Returns (the Value leaves, the tensor leaves, the Value nodes, the tensor nodes)."""
    mine = [Value(x) for x in inputs]
    theirs = [torch.tensor(x, dtype=torch.double, requires_grad=True) for x in inputs]
    nodes, tnodes = fn(*mine), fn(*theirs)
    if not isinstance(tnodes, dict):
        nodes, tnodes = {"out": nodes}, {"out": tnodes}
    for t in tnodes.values():
        if t.requires_grad and not t.is_leaf:
            t.retain_grad()
    list(nodes.values())[-1].backward()
    list(tnodes.values())[-1].backward()
    return mine, theirs, nodes, tnodes


def grad_of(t):
    return 0.0 if t.grad is None else t.grad.item()  # None: the tensor was not used


def leaf_mismatches(fn, mine, theirs):
    names = inspect.signature(fn).parameters
    return [
        f"d(out)/d{name}: got {v.grad!r}, PyTorch says {grad_of(t)!r}"
        for name, v, t in zip(names, mine, theirs, strict=True)
        if not close(v.grad, grad_of(t))
    ]


# Each operation alone, on a = 1.3 and b = -0.7; every function works on Values and on tensors.
OPS = {
    "a + b": lambda a, b: a + b,
    "a - b": lambda a, b: a - b,
    "a * b": lambda a, b: a * b,
    "a / b": lambda a, b: a / b,
    "a ** 3 (int exponent)": lambda a, b: a**3,
    "a ** 2.5 (float exponent)": lambda a, b: a**2.5,
    "b ** -2 (negative exponent)": lambda a, b: b**-2,
    "-a": lambda a, b: -a,
    "2 + a (radd)": lambda a, b: 2 + a,
    "3 * a (rmul)": lambda a, b: 3 * a,
    "1 - a (rsub)": lambda a, b: 1 - a,
    "2 / b (rtruediv)": lambda a, b: 2 / b,
    "a + 2.5 (number on the right)": lambda a, b: a + 2.5,
    "a / 4 (number on the right)": lambda a, b: a / 4,
    "b.tanh()": lambda a, b: b.tanh(),
    "a.exp()": lambda a, b: a.exp(),
    "a.relu() of a positive": lambda a, b: a.relu(),
    "b.relu() of a negative": lambda a, b: b.relu(),
    "a * a (one node used twice)": lambda a, b: a * a,
    "b * b.tanh() (b used by * and tanh)": lambda a, b: b * b.tanh(),
}


# The methods each operation above calls (and backward, which every test calls).
USES = {
    "a + b": ["__add__"],
    "a - b": ["__sub__"],
    "a * b": ["__mul__"],
    "a / b": ["__truediv__"],
    "a ** 3 (int exponent)": ["__pow__"],
    "a ** 2.5 (float exponent)": ["__pow__"],
    "b ** -2 (negative exponent)": ["__pow__"],
    "-a": ["__neg__"],
    "2 + a (radd)": ["__radd__"],
    "3 * a (rmul)": ["__rmul__"],
    "1 - a (rsub)": ["__rsub__"],
    "2 / b (rtruediv)": ["__rtruediv__"],
    "a + 2.5 (number on the right)": ["__add__"],
    "a / 4 (number on the right)": ["__truediv__"],
    "b.tanh()": ["tanh"],
    "a.exp()": ["exp"],
    "a.relu() of a positive": ["relu"],
    "b.relu() of a negative": ["relu"],
    "a * a (one node used twice)": ["__mul__"],
    "b * b.tanh() (b used by * and tanh)": ["__mul__", "tanh"],
}


@pytest.mark.parametrize("name", OPS)
def test_one_op(name):
    needs("backward", *USES[name])
    mine, theirs, nodes, tnodes = both(OPS[name], [1.3, -0.7])
    out, tout = nodes["out"], tnodes["out"]
    assert isinstance(out, Value), f"{name} should return a Value, got {type(out).__name__}"
    assert close(out.data, tout.item()), f"{name}: value {out.data!r}, PyTorch says {tout.item()!r}"
    wrong = leaf_mismatches(OPS[name], mine, theirs)
    assert not wrong, f"{name}: wrong gradient: " + "; ".join(wrong)


def sanity(x):
    y = x * x * 3 + x / 2 - 1
    return {"y = x * x * 3 + x / 2 - 1": y, "out = y.tanh()": y.tanh()}


def expression(a, b, c):
    """Every operation, with d and f used several times; the comments name the operations."""
    n = {}
    n["d = a * b + c"] = d = a * b + c
    n["e = d / (b - 2)"] = e = d / (b - 2)
    n["f = (e ** 2).tanh()"] = f = (e**2).tanh()
    n["g = -(c ** 3)"] = g = -(c**3)
    n["h = (a * a + 1) ** 1.5"] = h = (a * a + 1) ** 1.5
    n["i = 2 + 3 * f"] = i = 2 + 3 * f
    n["j = 1 - g / 4"] = j = 1 - g / 4
    n["k = 0.5 / h"] = k = 0.5 / h
    n["m = (d - g).relu()"] = m = (d - g).relu()
    n["p = (f - 5).relu()"] = p = (f - 5).relu()
    n["q = (f - h).exp()"] = q = (f - h).exp()
    n["r = i * j + k * d"] = r = i * j + k * d
    n["out = r / (m + 1) - q * d + p + f"] = r / (m + 1) - q * d + p + f
    return n


def compare(fn, inputs):
    mine, theirs, nodes, tnodes = both(fn, inputs)
    values = [
        f"{name}: {v.data!r}, PyTorch says {tnodes[name].item()!r}"
        for name, v in nodes.items()
        if not close(v.data, tnodes[name].item())
    ]
    assert not values, "wrong values (forward pass), in order of computation:\n  " + "\n  ".join(values)
    # Listed from the output back to the inputs: the first one listed is usually
    # an input of the operation whose backward is wrong.
    grads = [
        f"d(out)/d({name.split(' =')[0]}) where {name}: got {v.grad!r}, PyTorch says {grad_of(tnodes[name])!r}"
        for name, v in reversed(nodes.items())
        if not close(v.grad, grad_of(tnodes[name]))
    ] + leaf_mismatches(fn, mine, theirs)
    assert not grads, "wrong gradients (backward pass), from the output back:\n  " + "\n  ".join(grads)


def test_sanity():
    needs("backward", "__mul__", "__add__", "__truediv__", "__sub__", "tanh")
    compare(sanity, [0.4])


def test_expression():
    needs(*ADDED_IN)
    compare(expression, [0.8, -1.4, 0.6])


def test_mlp():
    needs("backward", "__sub__", "__pow__", mlp=True)
    random.seed(7)
    net = MLP(3, [4, 4, 1])
    sizes = [len(layer.neurons) for layer in net.layers]
    assert sizes == [4, 4, 1], f"MLP(3, [4, 4, 1]) should have layers of 4, 4, 1 neurons, got {sizes}"
    for layer in net.layers:  # a bias that starts at 0 would hide a bias bug: give each one a value
        for neuron in layer.neurons:
            neuron.b.data = random.uniform(-1.0, 1.0)
    expected = [p for layer in net.layers for neuron in layer.neurons for p in [*neuron.w, neuron.b]]
    assert [id(p) for p in net.parameters()] == [id(p) for p in expected], (
        "net.parameters() should list, layer by layer and neuron by neuron, the weights w then the bias b"
    )

    x = [0.5, -1.2, 2.0]
    out = net(x)
    assert isinstance(out, Value), (
        f"an MLP whose last layer has one neuron should return a Value, got {type(out).__name__}"
    )
    ((out - 1) ** 2).backward()

    weights = [
        torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.double, requires_grad=True)
        for layer in net.layers
    ]
    biases = [
        torch.tensor([n.b.data for n in layer.neurons], dtype=torch.double, requires_grad=True) for layer in net.layers
    ]
    h = torch.tensor(x, dtype=torch.double)
    for i, (W, B) in enumerate(zip(weights, biases, strict=True)):
        h = W @ h + B
        if i < len(weights) - 1:  # tanh in the hidden layers, the last layer linear
            h = h.tanh()
    ((h[0] - 1) ** 2).backward()
    assert close(out.data, h[0].item()), (
        f"the network's output is {out.data!r}, PyTorch says {h[0].item()!r} "
        "(tanh in the hidden layers only, the last layer linear, each layer fed the previous one's outputs)"
    )

    wrong = []
    for i, layer in enumerate(net.layers):
        for j, neuron in enumerate(layer.neurons):
            for k, w in enumerate(neuron.w):
                if not close(w.grad, weights[i].grad[j, k].item()):
                    wrong.append(
                        f"layer {i}, neuron {j}, w[{k}]: got {w.grad!r}, PyTorch says {weights[i].grad[j, k].item()!r}"
                    )
            if not close(neuron.b.grad, biases[i].grad[j].item()):
                wrong.append(
                    f"layer {i}, neuron {j}, b: got {neuron.b.grad!r}, PyTorch says {biases[i].grad[j].item()!r}"
                )
    assert not wrong, "wrong parameter gradients of (out - 1) ** 2:\n  " + "\n  ".join(wrong)

    net.zero_grad()
    left = sum(p.grad != 0 for p in expected)
    assert left == 0, f"after net.zero_grad(), {left} of the {len(expected)} parameters still have a nonzero grad"
