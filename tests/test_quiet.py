"""The main command prints the score table, the progress and real problems only."""

import nbformat
import pytest

from autograder.course import notebooks


@pytest.mark.kernel
def test_a_kernel_the_grader_starts_itself_warns_of_nothing(tmp_path, capfd):
    # The reference package is built on such kernels: over TCP each start warned of plain-text traffic.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.getcwd())")])
    notebooks.run(nb, tmp_path, timeout=60)
    assert nb.cells[0].outputs[0].text.strip() == str(tmp_path)
    out, err = capfd.readouterr()
    assert "WARNING" not in err and "encryption" not in err, err
