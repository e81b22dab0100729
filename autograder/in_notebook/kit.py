# Run this cell first. It defines the course's checks: each test cell makes
# `check = Checks("name")`, calls check.close, check.equal, check.below or check.above,
# and ends with check.done().
# While you work, a failing check stops the cell with a message naming the likely cause, and a
# passing cell says so. When your notebook is graded, each check only reports what it observed,
# and the grader compares it with the reference solution's observation, outside your notebook.
import json as _json
import math as _math
import os as _os

GRADING = _os.environ.get("MICROGRAD_GRADING") == "1"
REPORT = "@@check "  # the prefix of a graded observation on stdout
_print = print  # the reports go out through the print this cell saw, not one defined later
_SEED = int(_os.environ.get("MICROGRAD_SEED") or 0)  # at grading, every Rng seed moves by the grader's secret
_FAILED: dict[str, str] = {}  # while you work: each test that failed last time it ran -> the method to fix first

if GRADING:
    torch = None  # at grading time PyTorch never runs beside your code
else:
    try:
        import torch  # type: ignore[assignment]  # some checks compare your gradients with PyTorch's
    except ImportError:
        torch = None


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and _math.isfinite(x)


def _plain(x, depth=0):
    """`x` as JSON can carry it (a flag, a number, a short text, a list of those), else None."""
    if hasattr(x, "item") and type(x).__module__ == "numpy":
        x = x.item()
    if isinstance(x, bool) or x is None:
        return x
    if _is_number(x):
        return float(x)
    if isinstance(x, str):
        return x[:200]
    if isinstance(x, (list, tuple)) and depth < 2:
        return [_plain(e, depth + 1) for e in x[:1000]]
    return None


class Checks:
    """The checks of one test cell, named after what it tests."""

    def __init__(self, name):
        self.name, self.count = name, 0

    def close(self, actual, expected=None, message="", tol=1e-6, wrong=()):
        """`actual` must be a number within `tol` of `expected` (relative or absolute).
        `wrong` lists (value, cause) pairs: an answer close to a known wrong value names its cause."""
        if GRADING:  # the grader holds the expected number; the one handed here is ignored
            known = [[float(value), cause] for value, cause in wrong if _is_number(value)]
            return self._report("close", float(actual) if _is_number(actual) else None, message, tol=tol, wrong=known)
        if expected is None:
            self._fail(f"{message}: this check compares with PyTorch, which is not installed here")
        if not (_is_number(actual) and _math.isclose(actual, expected, rel_tol=tol, abs_tol=tol)):
            for value, cause in wrong:
                if _is_number(actual) and _math.isclose(actual, value, rel_tol=tol, abs_tol=tol):
                    message = cause
            self._fail(f"{message} (got {actual!r}, expected {expected!r})")
        self.count += 1

    def equal(self, actual, expected=None, message=""):
        """`actual` must equal `expected`: a count, a size, a flag, a name."""
        if GRADING:
            return self._report("equal", _plain(actual), message)
        if _plain(actual) != _plain(expected):
            self._fail(f"{message} (got {actual!r}, expected {expected!r})")
        self.count += 1

    def builds_on(self, *names):
        """While you work, stop at once when a method this test uses failed its own test, so that
        the failure names that method and not this one. At grading it does nothing: there a
        method's slip is charged to its own tests only."""
        if GRADING:
            return
        for name in names:
            if name in _FAILED:
                cause = _FAILED[name]
                self._fail(f"this test uses your {cause}, which fails its own test: fix {cause} first", cause)

    def calls(self, fn, message):
        """`fn()`, or, when it fails, `message` naming the likely cause instead of a long traceback
        (`other + self` in __radd__ recursing, a plain number not wrapped in Value, a missing
        `Value.x = x` line). At grading a failed call gives None, and the checks on it fail."""
        try:
            return fn()
        except Exception as e:
            failed = type(e)  # raised outside this block: no traceback of thousands of frames is printed
        if GRADING:  # an unanswered question stops the cell, so the verdict says it is unanswered
            if issubclass(failed, NotImplementedError):
                raise NotImplementedError
            return None
        if issubclass(failed, NotImplementedError):
            self._fail("this test calls code that is not written yet: finish the answer cells above it")
        self._fail(f"{message} ({failed.__name__})")

    def below(self, actual, bound=None, message=""):
        """`actual` must be a number below `bound`."""
        self._compare("below", actual, bound, message, lambda a, b: a < b)

    def above(self, actual, bound=None, message=""):
        """`actual` must be a number above `bound`."""
        self._compare("above", actual, bound, message, lambda a, b: a > b)

    def done(self):
        """End the cell: say how many checks passed."""
        if GRADING:
            return self._report("done", None, "")
        _FAILED.pop(self.name, None)
        _print(f"✓ {self.name}: {self.count} check{'s' * (self.count != 1)} passed")

    def _compare(self, kind, actual, bound, message, holds):
        if GRADING:  # the grader holds the bound
            return self._report(kind, float(actual) if _is_number(actual) else None, message, bound=bound)
        if not (_is_number(actual) and holds(actual, bound)):
            self._fail(f"{message} (got {actual!r})")
        self.count += 1

    def _fail(self, message, cause=None):
        _FAILED[self.name] = cause or self.name
        raise AssertionError(f"{self.name}: {message}")

    def _report(self, kind, value, message, **extra):
        report = {"name": self.name, "n": self.count, "kind": kind, "value": value, "message": message, **extra}
        _print(REPORT + _json.dumps(report))
        self.count += 1


class Rng:
    """A small seeded generator for test data (a 64-bit linear congruential generator), so that
    tests draw the same numbers everywhere without the `random` module your code may use."""

    def __init__(self, seed):
        if GRADING:
            seed = (seed * 1000003 + _SEED) % 2**61
        self.state = (seed * 2654435761 + 1) % 2**64

    def random(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self.state >> 11) / 2**53

    def uniform(self, a, b):
        return a + (b - a) * self.random()

    def randint(self, a, b):
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq):
        return seq[self.randint(0, len(seq) - 1)]


# ---- end of the course's checks ----
