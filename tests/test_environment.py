"""environment.yml (conda) and requirements.txt (pip) describe the same environment."""

import re

from autograder.course.paths import ROOT, requirements

# conda-forge names for pip names; `jupyter` is provided by jupyterlab there.
CONDA_NAME = {"torch": "pytorch", "graphviz": "python-graphviz", "jupyter": "jupyterlab"}


def _pip():
    return {CONDA_NAME.get(name, name): spec.replace("==", "=") for name, spec in requirements().items()}


def _conda():
    deps = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"\s+-\s+([A-Za-z0-9_.-]+)\s*([<>=!][^\s#]*)?", line)
        if m:
            deps[m.group(1).lower()] = m.group(2) or ""
    return deps


def test_every_pip_requirement_is_in_environment_yml_with_the_same_pin():
    conda = _conda()
    for name, spec in _pip().items():
        assert name in conda, f"{name} is in requirements.txt but not in environment.yml"
        assert conda[name] == spec, f"{name}: requirements.txt pins {spec!r}, environment.yml {conda[name]!r}"


def test_environment_yml_asks_for_a_cpu_pytorch_and_the_dot_program():
    conda = _conda()
    assert "cpuonly" in conda and "graphviz" in conda
