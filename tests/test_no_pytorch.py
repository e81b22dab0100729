"""PyTorch never runs beside a submission: in every grading sandbox `import torch` binds the
course's stand-in, and the real package cannot be reached by another way round."""

import os

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import sandbox
from autograder.sandbox.policy import hidden_dirs
from autograder.worker import execute

pytestmark = pytest.mark.kernel

LOOK = """
import os, sys
import torch
print("STAND-IN" if torch.__file__.endswith("torch/__init__.py") and not hasattr(torch, "optim") else "REAL")
sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
    del sys.modules[name]
try:
    import torch
    print("REAL" if hasattr(torch, "tensor") else "NOTHING")
except ImportError:
    print("NOTHING")
"""


@pytest.mark.parametrize("level", ["full", "uid"])
def test_import_torch_binds_the_stand_in_and_the_real_package_stays_out_of_reach(level, monkeypatch):
    if sandbox.unavailable(level):
        pytest.fail(f"sandbox level {level} is unavailable here: {sandbox.unavailable(level)}")
    monkeypatch.setenv(sandbox.LEVEL_VAR, level)
    if level == "full":  # undo level uid's modes, so that only the sandbox's cover can hide the package
        for d in hidden_dirs():
            os.chmod(d, 0o755)
    run, reason = execute.run_graded(new_notebook(cells=[new_code_cell(LOOK)]), "07_capstone", reference=True)
    assert reason is None, reason
    printed = "".join(o.get("text", "") for o in run.cells[0].outputs).split()
    assert printed == ["STAND-IN", "NOTHING"], run.cells[0].outputs
