"""The student-facing tree: what goes into the public student repository."""
import shutil
from pathlib import Path

from autograder.course import CAPSTONE, EXERCISES, LESSONS, ROOT

STUDENT_FILES = Path(__file__).parent / "student_files"

STUDENT_README = """\
# micrograd, built by hand

Build a scalar automatic-differentiation engine, one method at a time, then train neural
networks with it.

1. Read a lesson in `lessons/` (each has an "Open in Colab" badge), running every cell.
2. Do the exercise it names in `exercises/`: replace each `raise NotImplementedError()` with your
   code and run the test cell below it. No output means the visible checks passed.
3. Exercises 2-5 save your engine to `micrograd_engine.py`; keep that file next to the later
   notebooks (in Colab, upload it when a notebook asks).
4. Finish with `capstone/`. Submit the `.ipynb` files as your instructor tells you; hidden tests
   run when they are graded.

| # | lesson | exercise |
|---|---|---|
| 1 | Derivatives and gradients | 1 Numerical gradient checking |
| 2 | The chain rule | 2 `Value`: add, multiply, backward |
| 3 | Building `Value` | 3 tanh, exp, pow, relu, division |
| 4 | Automatic differentiation | 4 A `Neuron` |
| 5 | Neural-network primitives | 5 `Layer` and `MLP` |
| 6 | The training loop | 6 Train on XOR |

Locally: `conda env create -f environment.yml`, then `jupyter lab`.
"""


def release(out):
    """Write the student tree into `out` (created; must not exist or be empty); return its files."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    for folder in (LESSONS, EXERCISES, CAPSTONE):
        if folder.exists():
            shutil.copytree(folder, out / folder.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(ROOT / "environment.yml", out / "environment.yml")
    (out / "README.md").write_text(STUDENT_README)
    if STUDENT_FILES.exists():
        shutil.copytree(STUDENT_FILES, out, dirs_exist_ok=True)
    return sorted(p for p in out.rglob("*") if p.is_file())
