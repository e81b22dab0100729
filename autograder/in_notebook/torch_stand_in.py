"""PyTorch's stand-in at grading: in a graded kernel, `import torch` binds this module.

PyTorch never runs beside a submission: its packages are hidden in the sandbox, and this small
stand-in, built on the notebook's own micrograd `Value`, takes their place. It is the stand-in the
capstone's tests call `torch_grads` with, so an answer that imports torch runs the same way while
the student works and when it is graded. It has torch.tensor (dtype, requires_grad),
torch.stack, torch.cat, torch.zeros, the dtypes, @ (torch.matmul, .mv, .mm), + - *, .T,
torch.tanh, .sum(), .backward(), .grad, .item(), .tolist(), indexing, .shape and .view.
"""

import builtins  # `float` and `sum` below are PyTorch's names; the builtins keep theirs
import contextlib
import math
import sys
import types

import numpy as np


def _value_class():
    # The notebook's Value, looked up when a tensor needs it: the notebook may import torch first.
    return sys.modules["__main__"].Value


def cells_map(f, cells):
    out = np.empty(cells.shape, dtype=object)
    for idx in np.ndindex(cells.shape):
        out[idx] = f(cells[idx])
    return out


def number(e):
    return builtins.float(e.data) if isinstance(e, _value_class()) else builtins.float(e)


def floats(data):
    if isinstance(data, Tensor):
        return cells_map(number, data.cells).tolist()
    if isinstance(data, np.ndarray):
        return data.astype(builtins.float).tolist()
    if isinstance(data, (list, tuple)):
        return [floats(d) for d in data]
    return number(data)


class Tensor:
    def __init__(self, data=(), dtype=None, requires_grad=False, **_):
        self.cells = np.array(floats(data), dtype=builtins.float).astype(object)
        self.is_leaf, self._grad = True, False
        self.requires_grad = requires_grad

    @classmethod
    def _of(cls, cells, grad):
        t = cls.__new__(cls)
        t.cells, t.is_leaf, t._grad = np.asarray(cells, dtype=object), False, grad
        return t

    @property
    def requires_grad(self):
        return self._grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and not self._grad:
            self.cells = cells_map(lambda e: _value_class()(number(e)), self.cells)
        self._grad = bool(flag)

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    @property
    def grad(self):
        if not (self.is_leaf and self._grad):
            return None
        return Tensor._of(cells_map(lambda v: builtins.float(v.grad), self.cells), False)

    def backward(self, *_, **__):
        root = self.sum().cells.flat[0]  # PyTorch needs a single number here; a sum of one is that number
        if isinstance(root, _value_class()):
            root.backward()

    def _op(self, other, f):
        other = other if isinstance(other, Tensor) else Tensor(other)
        return Tensor._of(f(self.cells, other.cells), self._grad or other._grad)

    def __add__(self, o):
        return self._op(o, lambda a, b: a + b)

    def __radd__(self, o):
        return self._op(o, lambda a, b: b + a)

    def __sub__(self, o):
        return self._op(o, lambda a, b: a - b)

    def __rsub__(self, o):
        return self._op(o, lambda a, b: b - a)

    def __mul__(self, o):
        return self._op(o, lambda a, b: a * b)

    def __rmul__(self, o):
        return self._op(o, lambda a, b: b * a)

    def __matmul__(self, o):
        return self._op(o, np.matmul)

    def __rmatmul__(self, o):
        return self._op(o, lambda a, b: np.matmul(b, a))

    def __neg__(self):
        return Tensor._of(cells_map(lambda e: -e, self.cells), self._grad)

    matmul = mv = mm = dot = __matmul__

    def tanh(self):
        return Tensor._of(
            cells_map(lambda e: e.tanh() if isinstance(e, _value_class()) else math.tanh(e), self.cells), self._grad
        )

    def sum(self, dim=None, **_):
        if dim is None:
            return Tensor._of(
                builtins.sum(self.cells.flat[1:], self.cells.flat[0]) if self.cells.size else 0, self._grad
            )
        return Tensor._of(np.sum(self.cells, axis=dim), self._grad)

    def _reshaped(self, cells):
        return Tensor._of(cells, self._grad)

    def __getitem__(self, idx):
        return self._reshaped(self.cells[idx.cells.astype(int) if isinstance(idx, Tensor) else idx])

    def view(self, *shape):
        return self._reshaped(
            self.cells.reshape(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
        )

    reshape = view

    def flatten(self):
        return self._reshaped(self.cells.reshape(-1))

    def squeeze(self, dim=None):
        return self._reshaped(
            np.squeeze(self.cells)
            if dim is None
            else (np.squeeze(self.cells, dim) if self.cells.shape[dim] == 1 else self.cells)
        )

    def unsqueeze(self, dim):
        return self._reshaped(np.expand_dims(self.cells, dim))

    def t(self):
        return self._reshaped(self.cells.T)

    T = property(t)

    def clone(self):
        return self._reshaped(self.cells.copy())

    def detach(self):
        return Tensor(self)

    def double(self, *_, **__):
        return self

    to = contiguous = cpu = double

    def numpy(self):
        return np.array(cells_map(number, self.cells).tolist(), dtype=builtins.float)

    def __array__(self, dtype=None, copy=None):
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def item(self):
        return number(self.cells.reshape(-1)[0])

    def __float__(self):
        return self.item()

    def tolist(self):
        return cells_map(number, self.cells).tolist()

    @property
    def shape(self):
        return tuple(self.cells.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.cells.ndim

    ndim = property(dim)

    def numel(self):
        return self.cells.size

    def __len__(self):
        return len(self.cells)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    dtype = "float64"

    def __repr__(self):
        return f"stand-in tensor({self.tolist()})"


def tensor(data, dtype=None, requires_grad=False, **_):
    return Tensor(data, requires_grad=requires_grad)


def joined(f):
    def join(tensors, dim=0, **_):
        ts = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
        return Tensor._of(f([t.cells for t in ts], axis=dim), any(t._grad for t in ts))

    return join


def filled(value):
    def make(*sizes, dtype=None, requires_grad=False, **_):
        shape = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        return Tensor(np.full(shape, value), requires_grad=requires_grad)

    return make


def linear(x, W, b=None):
    x = x if isinstance(x, Tensor) else tensor(x)
    out = x @ W.T
    return out if b is None else out + b


functional = types.SimpleNamespace(linear=linear, tanh=lambda t: t.tanh())
# The names PyTorch has, as module attributes: torch.tensor, torch.float64, torch.nn.functional...
globals().update(
    dict(
        Tensor=Tensor,
        tensor=tensor,
        as_tensor=tensor,
        from_numpy=tensor,
        float64="float64",
        double="float64",
        float32="float32",
        float="float32",
        tanh=lambda t: t.tanh(),
        matmul=lambda a, b: a @ b,
        mv=lambda a, b: a @ b,
        mm=lambda a, b: a @ b,
        stack=joined(np.stack),
        cat=joined(np.concatenate),
        zeros=filled(0),
        ones=filled(1),
        sum=lambda t, *a, **k: t.sum(*a, **k),
        is_tensor=lambda t: isinstance(t, Tensor),
        no_grad=contextlib.nullcontext,
        set_default_dtype=lambda dtype: None,
        nn=types.SimpleNamespace(functional=functional),
    )
)
