"""The student's own micrograd/ package: saved as a small library, carried from notebook to notebook
(folder, Google Drive, or an uploaded zip) without re-uploads where Colab allows it, and replaced by
the reference package at grading. Colab is played by a stand-in `google.colab` module."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import types
import zipfile
from pathlib import Path

import pytest

from autograder import grade, samples
from autograder.bugs import BUGS
from autograder.build import SHARED_CELLS, WRITTEN_FILES, shared_texts, with_shared
from autograder.course import SOLUTIONS
from autograder.engine import reference_engine, zip_package

SAVE = SHARED_CELLS["save_engine"].read_text()
LOAD = SHARED_CELLS["load_engine"].read_text()
TEST_MICROGRAD = WRITTEN_FILES["test_micrograd_file"]

# A student's engine, as notebook cells would leave it: methods written as functions and attached,
# one of them calling a helper of the student's own.
STUDENT = '''
import math


class Value:
    """A scalar."""

    def __init__(self, data, _children=(), _op=""):
        self.data, self.grad = data, 0.0
        self._backward, self._prev, self._op = (lambda: None), set(_children), _op


def as_value(x):
    return x if isinstance(x, Value) else Value(x)


def __add__(self, other):
    other = as_value(other)
    out = Value(self.data + other.data, (self, other), "+")

    def _backward():
        self.grad += out.grad
        other.grad += out.grad

    out._backward = _backward
    return out


def tanh(self):
    t = math.tanh(self.data)
    out = Value(t, (self,), "tanh")

    def _backward():
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


def backward(self):
    order, seen = [], set()

    def visit(v):
        if v not in seen:
            seen.add(v)
            for child in v._prev:
                visit(child)
            order.append(v)

    visit(self)
    self.grad = 1.0
    for v in reversed(order):
        v._backward()


Value.__add__ = __add__
Value.__radd__ = __add__
Value.tanh = tanh
Value.backward = backward


class Module:
    def parameters(self):
        return []


class Neuron(Module):
    def __init__(self, nin):
        self.w = [Value(0.5) for _ in range(nin)]

    def parameters(self):
        return self.w
'''


def _student_module(tmp_path, text=STUDENT):
    """The student's code as an imported module whose functions have their source, as a notebook's do."""
    (tmp_path / "student_code.py").write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        sys.modules.pop("student_code", None)
        return __import__("student_code")
    finally:
        sys.path.remove(str(tmp_path))


@pytest.fixture
def clean_imports(monkeypatch):
    """The load cell changes sys.path and sys.modules, as it does in a kernel: undo it afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("MICROGRAD_GRADING", raising=False)
    yield
    for name in [m for m in sys.modules if m == "micrograd" or m.startswith("micrograd.") or m.startswith("google")]:
        del sys.modules[name]


def _cell(text, folder, monkeypatch):
    """Run a shared cell's code in `folder`, as a notebook there would; return its namespace."""
    monkeypatch.chdir(folder)
    namespace = {"__name__": "__main__"}
    exec(compile(text, "cell", "exec"), namespace)
    return namespace


def _save(tmp_path, folder, monkeypatch, **modules):
    student = _student_module(tmp_path)
    cell = _cell(SAVE, folder, monkeypatch)
    cell["save_micrograd"](**{m: [getattr(student, n) for n in names] for m, names in modules.items()})


def test_the_saved_package_reads_like_a_library_and_keeps_helpers(tmp_path, monkeypatch, clean_imports):
    (tmp_path / "nb").mkdir()
    _save(tmp_path, tmp_path / "nb", monkeypatch, engine=["Value"], nn=["Module", "Neuron"])
    engine = (tmp_path / "nb" / "micrograd" / "engine.py").read_text()
    nn = (tmp_path / "nb" / "micrograd" / "nn.py").read_text()
    assert engine.count("class ") == 1 and "class Value:" in engine
    assert "def as_value(x):" in engine, "a helper the student's method calls must be saved with it"
    assert "    def __add__(self, other):" in engine and "    __radd__ = __add__" in engine
    assert "Value.__add__ =" not in engine, "methods sit inside the class body"
    assert "import math" in engine
    assert "from micrograd.engine import Value" in nn and "class Neuron(Module):" in nn
    for text in (engine, nn):
        assert all((len(line) - len(line.lstrip(" "))) % 4 == 0 for line in text.splitlines())
    script = "from micrograd.engine import Value\nfrom micrograd.nn import Neuron\nx = Value(0.5)\n"
    script += "y = (x + 1).tanh() + x\ny.backward()\n"
    script += "print(round(y.data, 6), round(x.grad, 6), len(Neuron(3).parameters()))"
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path / "nb", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1.405148", "1.180707", "3"]  # tanh(1.5) + 0.5; 1 - tanh(1.5)^2 + 1


def test_a_method_that_cannot_be_saved_fails_in_the_save_cell(tmp_path, monkeypatch, clean_imports):
    student = _student_module(tmp_path, STUDENT + "\nValue.__mul__ = lambda self, other: self\n")
    cell = _cell(SAVE, tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="Value.__mul__ is a lambda"):
        cell["save_micrograd"](engine=[student.Value])
    assert not (tmp_path / "micrograd").exists()


def _colab(monkeypatch, drive_root, mount_ok, upload=None):
    """A stand-in for google.colab: drive.mount works or is refused; files.upload puts `upload`
    (a path to a zip, or None) in the folder and returns what it uploaded; downloads are recorded."""
    downloads = []

    def mount(path):
        if not mount_ok:
            raise ValueError("mount failed")
        assert path == str(drive_root)
        (drive_root / "MyDrive").mkdir(parents=True, exist_ok=True)

    def do_upload():
        if upload is None:
            return {}
        shutil.copy(upload, Path.cwd() / upload.name)
        return {upload.name: upload.read_bytes()}

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    colab.files = types.SimpleNamespace(upload=do_upload, download=downloads.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setenv("MICROGRAD_DRIVE_ROOT", str(drive_root))
    return downloads


def _load(folder, monkeypatch, made_in="exercise 5"):
    cell = _cell(LOAD, folder, monkeypatch)
    cell["load_micrograd"](made_in)
    from micrograd.engine import Value

    return Value


def test_in_colab_the_next_notebook_loads_the_package_from_drive(tmp_path, monkeypatch, clean_imports, capsys):
    drive = tmp_path / "drive"
    _colab(monkeypatch, drive, mount_ok=True)
    (tmp_path / "day1").mkdir()
    _save(tmp_path, tmp_path / "day1", monkeypatch, engine=["Value"])
    assert (drive / "MyDrive" / "micrograd-course" / "micrograd" / "engine.py").exists()
    (tmp_path / "day2").mkdir()  # a fresh runtime: nothing beside the notebook
    Value = _load(tmp_path / "day2", monkeypatch)
    assert (Value(1.0) + 2).data == 3.0
    assert "Loaded micrograd from your Google Drive" in capsys.readouterr().out


def test_where_drive_is_refused_a_zip_is_downloaded_then_uploaded(tmp_path, monkeypatch, clean_imports, capsys):
    downloads = _colab(monkeypatch, tmp_path / "drive", mount_ok=False)
    (tmp_path / "day1").mkdir()
    _save(tmp_path, tmp_path / "day1", monkeypatch, engine=["Value"])
    assert downloads == ["micrograd.zip"]
    (tmp_path / "day2").mkdir()
    _colab(monkeypatch, tmp_path / "drive", mount_ok=False, upload=tmp_path / "day1" / "micrograd.zip")
    Value = _load(tmp_path / "day2", monkeypatch)
    assert (Value(1.0) + 2).data == 3.0
    assert "Loaded micrograd from the zip you uploaded" in capsys.readouterr().out


def test_with_no_package_anywhere_the_message_says_what_to_do(tmp_path, monkeypatch, clean_imports):
    _colab(monkeypatch, tmp_path / "drive", mount_ok=False)
    with pytest.raises(SystemExit, match="Run exercise 4 to the end"):
        _load(tmp_path, monkeypatch, made_in="exercise 4")


def test_outside_colab_nothing_waits(tmp_path, monkeypatch, clean_imports):
    start = time.monotonic()
    with pytest.raises(SystemExit, match="No micrograd/ package found"):
        _load(tmp_path, monkeypatch)
    assert time.monotonic() - start < 2


def test_at_grading_the_reference_zip_wins_over_any_folder(tmp_path, monkeypatch, clean_imports, capsys):
    (tmp_path / "reference").mkdir()
    _save(tmp_path, tmp_path / "reference", monkeypatch, engine=["Value"])
    zip_package(tmp_path / "reference" / "micrograd", tmp_path / "micrograd.zip")
    (tmp_path / "micrograd").mkdir()  # the student's own, broken
    (tmp_path / "micrograd" / "__init__.py").write_text("")
    (tmp_path / "micrograd" / "engine.py").write_text("class Value:\n    pass\n")
    monkeypatch.setenv("MICROGRAD_GRADING", "1")
    Value = _load(tmp_path, monkeypatch)
    assert (Value(1.0) + 2).data == 3.0
    assert "reference package" in capsys.readouterr().out


def test_each_notebook_holds_the_current_shared_cells():
    texts = shared_texts()
    used = set()
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id in texts:
                used.add(grade_id)
                source = "".join(cell["source"])
                assert with_shared(source, texts[grade_id]) == source, f"{path.name} {grade_id}: run `make build`"
    assert used == set(texts)


@pytest.mark.kernel
def test_test_micrograd_passes_on_the_reference_and_fails_on_a_catalogued_bug(tmp_path):
    with zipfile.ZipFile(reference_engine("07_capstone")) as z:
        z.extractall(tmp_path)
    shutil.copy(TEST_MICROGRAD, tmp_path)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_micrograd.py"]
    ok = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout[-2000:]
    reference, bug = BUGS["mul-swapped-operands"].reference, BUGS["mul-swapped-operands"].bug
    engine = tmp_path / "micrograd" / "engine.py"
    assert textwrap.indent(reference, "    ") in engine.read_text()
    engine.write_text(engine.read_text().replace(textwrap.indent(reference, "    "), textwrap.indent(bug, "    ")))
    broken = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert broken.returncode != 0 and "a * b" in broken.stdout


@pytest.mark.kernel
def test_a_submission_beside_its_own_micrograd_folder_is_graded_with_the_reference(tmp_path):
    aid = "03_more_ops"
    folder = tmp_path / "in" / "mallory"
    (folder / "micrograd").mkdir(parents=True)
    (folder / f"{aid}.ipynb").write_text(json.dumps(samples.filled(aid)))
    (folder / "micrograd" / "__init__.py").write_text("")
    (folder / "micrograd" / "engine.py").write_text("class Value:\n    pass\n")
    subs = grade.grade(grade.find_submissions([tmp_path / "in"]), tmp_path / "out")
    (sub,) = [s for s in subs if s.path.suffix == ".ipynb"]  # the .py files are reported as not notebooks
    assert sub.status == "graded" and sub.score == sub.max_score > 0
