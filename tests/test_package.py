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

import nbformat
import pytest

from autograder.authoring import samples
from autograder.authoring.bugs import BUGS
from autograder.authoring.build import SHARED_CELLS, WRITTEN_FILES, shared_texts, with_shared
from autograder.course import notebooks
from autograder.course.paths import ROOT, SOLUTIONS
from autograder.course.reference import reference_engine, zip_package
from autograder.grading import discovery, grade

SAVE = SHARED_CELLS["save_engine"].read_text()
LOAD = SHARED_CELLS["load_engine"].read_text()
TEST_MICROGRAD = WRITTEN_FILES["test_micrograd_file"]
STUDENT_README = TEST_MICROGRAD.parent / "README.md"

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


def _save(tmp_path, folder, monkeypatch, notebook="exercise 2", text=STUDENT, **modules):
    student = _student_module(tmp_path, text)
    cell = _cell(SAVE, folder, monkeypatch)
    cell["save_micrograd"](notebook, **{m: [getattr(student, n) for n in names] for m, names in modules.items()})


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
        cell["save_micrograd"]("exercise 2", engine=[student.Value])
    assert not (tmp_path / "micrograd").exists()


WITHOUT_TANH = STUDENT.replace("Value.tanh = tanh\n", "")  # exercise 2 run again: no tanh yet
OTHER_ADD = "self.grad += 1.0 * out.grad"  # the same rule, written differently


def _engine(folder):
    return (folder / "micrograd" / "engine.py").read_text()


def test_an_earlier_notebook_saved_again_keeps_what_later_ones_saved(tmp_path, monkeypatch, clean_imports, capsys):
    nb = tmp_path / "nb"
    nb.mkdir()
    _save(tmp_path, nb, monkeypatch, "exercise 4", engine=["Value"], nn=["Module", "Neuron"])
    _save(tmp_path, nb, monkeypatch, "exercise 3", engine=["Value"])
    before = {p.name: p.read_text() for p in (nb / "micrograd").glob("*.py")}
    _save(tmp_path, nb, monkeypatch, "exercise 2", WITHOUT_TANH, engine=["Value"])
    assert {p.name: p.read_text() for p in (nb / "micrograd").glob("*.py")} == before
    assert "    def tanh(self):" in _engine(nb) and "class Neuron(Module):" in (nb / "micrograd" / "nn.py").read_text()
    assert not (nb / "micrograd.bak").exists() and "Note:" not in capsys.readouterr().out


def test_a_replaced_definition_is_backed_up_and_another_notebooks_is_kept(tmp_path, monkeypatch, clean_imports, capsys):
    nb = tmp_path / "nb"
    nb.mkdir()
    _save(tmp_path, nb, monkeypatch, "exercise 3", engine=["Value"])
    first = _engine(nb)
    changed = STUDENT.replace("self.grad += out.grad", OTHER_ADD).replace("(1 - t**2)", "(1.0 - t * t)")
    _save(tmp_path, nb, monkeypatch, "exercise 2", changed, engine=["Value"])
    engine = _engine(nb)
    assert OTHER_ADD in engine, "exercise 2 writes __add__: its new version is saved"
    assert "(1 - t**2)" in engine and "(1.0 - t * t)" not in engine, "exercise 3 writes tanh: the saved one stays"
    (backup,) = (nb / "micrograd.bak").iterdir()
    assert (backup / "engine.py").read_text() == first
    out = capsys.readouterr().out
    assert "replaced your saved micrograd/engine.py: Value.__add__" in out and f"micrograd.bak/{backup.name}" in out
    assert "kept the saved Value.tanh (exercise 3 writes it)" in out
    for i in range(6):  # the last few backups are kept
        _save(tmp_path, nb, monkeypatch, "exercise 2", changed.replace("1.0 *", f"{i + 2}.0 *"), engine=["Value"])
    assert len(list((nb / "micrograd.bak").iterdir())) == 5


def test_a_save_tells_an_unknown_notebook(tmp_path, monkeypatch, clean_imports):
    with pytest.raises(ValueError, match="'exercise 9' is not one of the notebooks that save"):
        _save(tmp_path, tmp_path, monkeypatch, "exercise 9", engine=["Value"])


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


def test_on_drive_an_earlier_notebook_saved_again_keeps_later_work_and_backs_up(
    tmp_path, monkeypatch, clean_imports, capsys
):
    drive = tmp_path / "drive"
    _colab(monkeypatch, drive, mount_ok=True)
    (tmp_path / "day1").mkdir()
    _save(tmp_path, tmp_path / "day1", monkeypatch, "exercise 3", engine=["Value"])
    on_drive = drive / "MyDrive" / "micrograd-course"
    first = _engine(on_drive)
    (tmp_path / "day2").mkdir()  # a fresh runtime: exercise 2 again, with another __add__ and no tanh
    changed = WITHOUT_TANH.replace("self.grad += out.grad", OTHER_ADD)
    _save(tmp_path, tmp_path / "day2", monkeypatch, "exercise 2", changed, engine=["Value"])
    engine = _engine(on_drive)
    assert "    def tanh(self):" in engine and OTHER_ADD in engine
    (backup,) = (on_drive / "micrograd.bak").iterdir()
    assert (backup / "engine.py").read_text() == first
    assert "On your Google Drive: replaced your saved micrograd/engine.py: Value.__add__" in capsys.readouterr().out


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
    assert ok.returncode == 0 and "skipped" not in ok.stdout, ok.stdout[-2000:]  # the whole package: all checked
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
    subs = grade.grade(discovery.find_submissions([tmp_path / "in"]), tmp_path / "out")
    (sub,) = [s for s in subs if s.path.suffix == ".ipynb"]  # the .py files are reported as not notebooks
    assert sub.status == "graded" and sub.score == sub.max_score > 0


# -- the course walked in one folder, as a student works through it ---------------------------

# Given cells that only demonstrate or test (slow, and saving nothing): left out of the walk.
DEMONSTRATIONS = {"train_moons", "compare_table", "test_micrograd_file", "run_test_micrograd"}
FIRST_PASS = ["02_value_backward", "03_more_ops", "04_neuron", "05_mlp", "07_capstone"]


def _saving_cells(aid):
    """The filled-in notebook `aid` with only the cells that define and save: the answers and the
    given cells, without test cells and demonstrations."""
    nb = nbformat.reads(json.dumps(samples.filled(aid)), as_version=4)
    nb.cells = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and (notebooks.is_answer(c) or notebooks.is_locked(c))
        and not notebooks.is_test(c)
        and notebooks.grade_id(c) not in DEMONSTRATIONS
    ]
    return nb


def _files(folder):
    return {p.name: p.read_text() for p in sorted((folder / "micrograd").glob("*.py"))}


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    """Exercises 2-5 and the capstone in one folder, then exercises 2 and 3 again, then exercise 6
    whole. Returns (the package after each notebook of the first pass, the folder, exercise 6 run)."""
    root = tmp_path_factory.mktemp("journey")
    folder = root / "course"
    folder.mkdir()
    after = {}
    for aid in FIRST_PASS:
        notebooks.run(_saving_cells(aid), folder, timeout=120)
        after[aid] = root / aid
        shutil.copytree(folder / "micrograd", after[aid] / "micrograd")
    for aid in ["02_value_backward", "03_more_ops"]:
        notebooks.run(_saving_cells(aid), folder, timeout=120)
    six = nbformat.reads(json.dumps(samples.filled("06_training")), as_version=4)
    notebooks.run(six, folder, timeout=120)
    return after, folder, six


@pytest.mark.kernel
def test_running_earlier_notebooks_again_loses_no_saved_definition(journey):
    after, folder, six = journey
    final = _files(after["07_capstone"])
    assert {"engine.py", "nn.py", "optim.py"} <= set(final)
    assert "    def __rtruediv__(self, other):" in final["engine.py"] and "class MLP(Module):" in final["nn.py"]
    assert "    def sigmoid(self):" in final["engine.py"] and "class Adam:" in final["optim.py"]
    assert _files(folder) == final, "exercises 2 and 3, run again, changed the saved package"
    assert not (folder / "micrograd.bak").exists(), "the same answers saved again replace nothing"
    errors = [o for c in six.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors and any(c.get("outputs") for c in six.cells if notebooks.is_test(c))


def _test_micrograd(folder, extra=()):
    shutil.copy(TEST_MICROGRAD, folder)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *extra, "test_micrograd.py"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)


@pytest.mark.kernel
def test_test_micrograd_skips_only_what_is_not_saved_yet_and_names_the_exercise(journey):
    after, _, _ = journey
    two = _test_micrograd(after["02_value_backward"])
    assert two.returncode == 0, two.stdout[-3000:]
    skipped = [line for line in two.stdout.splitlines() if line.startswith("SKIPPED")]
    assert any("Value.tanh not saved yet: exercise 3 adds it" in line for line in skipped)
    assert any("Value.__pow__, MLP not saved yet: exercises 3 and 5 add them" in line for line in skipped)
    assert not any("exercise 2" in line for line in skipped), skipped
    assert "9 passed" in two.stdout, "a + b, a - b, a * b, -a, 2 + a, 3 * a, 1 - a, a + 2.5 and a * a run"
    four = _test_micrograd(after["04_neuron"])
    assert four.returncode == 0, four.stdout[-3000:]
    assert "1 skipped" in four.stdout and "MLP not saved yet: exercise 5 adds it" in four.stdout
    engine = after["02_value_backward"] / "micrograd" / "engine.py"
    reference, bug = BUGS["mul-swapped-operands"].reference, BUGS["mul-swapped-operands"].bug
    engine.write_text(engine.read_text().replace(textwrap.indent(reference, "    "), textwrap.indent(bug, "    ")))
    broken = _test_micrograd(after["02_value_backward"])
    assert broken.returncode == 1 and "a * b" in broken.stdout


def test_both_readmes_and_the_file_give_the_one_command_that_checks_the_package():
    command = "python -m pytest -q test_micrograd.py -rs"
    for text in (ROOT / "README.md", STUDENT_README, TEST_MICROGRAD):
        assert command in text.read_text(), text


def test_each_saving_notebook_names_itself_and_defines_what_it_owns():
    cell: dict = {}
    exec(compile(SAVE, "cell", "exec"), cell)
    owners = cell["OWNERS"]
    named = {}
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        cells = notebooks.read(path).cells
        (save,) = [c for c in cells if notebooks.grade_id(c) == "save_engine"] or [None]
        if save is None:
            continue
        call = save.source.rsplit("\nsave_micrograd(", 1)[1]
        named[path.stem] = call.split(",")[0].strip('"')
        code = "\n".join(c.source for c in cells if c.cell_type == "code")
        for names in owners[named[path.stem]].values():
            for name in names:
                cls, _, method = name.rpartition(".")
                assert (f"{name} = {method}" if cls else f"class {name}") in code or f"def {name}(" in code, name
    assert sorted(named.values()) == sorted(owners), "one notebook for each line of OWNERS"
