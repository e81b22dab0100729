import json

import pytest
from jupyter_client.manager import KernelManager

from autograder.authoring import samples
from autograder.course import notebooks
from autograder.grading import discovery, grade


@pytest.fixture(autouse=True)
def _kernels_only_where_marked(request, monkeypatch):
    """The fast tier (`pytest -m "not kernel"`) stays fast only if every test that starts a kernel says so."""
    if request.node.get_closest_marker("kernel"):
        return

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} starts a Jupyter kernel: mark it with @pytest.mark.kernel")

    monkeypatch.setattr(KernelManager, "_async_launch_kernel", refuse)


@pytest.fixture(scope="session")
def graded_samples(tmp_path_factory):
    """Every bundled sample, plus a few tampered ones, graded in one nbgrader batch:
    {(student, assignment): Submission}."""
    root = tmp_path_factory.mktemp("samples")
    samples.write_samples(root / "in")
    for aid in ["02_value_backward"]:  # nbgrader restores tests the same way in every notebook
        nb = samples.filled(aid)
        for cell in nb["cells"]:
            if notebooks.is_graded(cell):
                cell["source"] = "assert True"
                cell["metadata"]["nbgrader"]["points"] = 100
        (root / "in" / "tamper-tests" / f"{aid}.ipynb").parent.mkdir(exist_ok=True, parents=True)
        (root / "in" / "tamper-tests" / f"{aid}.ipynb").write_text(json.dumps(nb))
        stub = samples.stub(aid)
        for cell in stub["cells"]:
            if notebooks.is_graded(cell):
                cell["source"] = "assert True"
        (root / "in" / "tamper-stub" / f"{aid}.ipynb").parent.mkdir(exist_ok=True, parents=True)
        (root / "in" / "tamper-stub" / f"{aid}.ipynb").write_text(json.dumps(stub))
    subs = grade.grade(discovery.find_submissions([root / "in"]), root / "out", jobs=2, feedback=True)
    return {(s.student, s.assignment): s for s in subs}, root / "out"
