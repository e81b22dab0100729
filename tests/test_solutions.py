"""Every source notebook runs top to bottom in a real kernel, with PyTorch checking the hidden
tests' expected gradients, and each test cell says in one line that it passed."""

import shutil

import pytest

from autograder.authoring import new
from autograder.course import notebooks
from autograder.course.paths import SOLUTIONS, assignments
from autograder.course.reference import reference_engine

pytestmark = pytest.mark.kernel  # every test here grades or runs notebooks in kernels


@pytest.mark.parametrize("aid", assignments())
def test_solution_runs_and_each_test_cell_says_it_passed(aid, tmp_path):
    engine = reference_engine(aid)
    if engine:
        shutil.copy(engine, tmp_path)
    runs_and_each_test_cell_says_it_passed(SOLUTIONS / f"{aid}.ipynb", tmp_path)


def test_a_new_notebook_runs_and_each_test_cell_says_it_passed(tmp_path):
    runs_and_each_test_cell_says_it_passed(new.scaffold("08_double", "Doubling", tmp_path / "solutions"), tmp_path)


def runs_and_each_test_cell_says_it_passed(path, folder):
    nb = notebooks.run(notebooks.read(path), folder, timeout=300)
    # The output caps leave the reference far inside them: no cell of it is cut, 5x it is allowed.
    printed = [sum(notebooks.output_chars(o) for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
    assert max(printed) < notebooks.CELL_OUTPUT_CHARS and 5 * sum(printed) <= notebooks.NOTEBOOK_OUTPUT_CHARS
    for cell in nb.cells:
        if notebooks.is_graded(cell) and cell.cell_type == "code":
            noisy = [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"]
            assert not noisy, f"{cell.metadata.nbgrader.grade_id} wrote {noisy[0]}"
            said = "".join(o.text for o in cell.outputs if o.output_type == "stream").splitlines()
            assert len(said) == 1 and said[0].startswith("✓ "), f"{cell.metadata.nbgrader.grade_id} said {said}"
