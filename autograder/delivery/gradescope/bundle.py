"""The autograder zip, built on the instructor's machine (see the package's docstring)."""

import json
import zipfile
from pathlib import Path

from autograder.course.paths import (
    CAPSTONE,
    EXERCISES,
    PACKAGE,
    ROOT,
    SOLUTIONS,
    assignments,
    release_path,
    requirements,
)
from autograder.course.reference import reference_engine

CONFIG = "gradescope.json"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# setup.sh and run_autograder, as they go into the zip (setup.sh with its @TORCH@ lines filled in).
SCRIPTS = Path(__file__).parent / "scripts"
# The package's layers that grade, and read at grading (in_notebook/: the checks kit and the torch
# stand-in): the zip holds these and the runner, never the authoring, reporting or release code.
GRADING_LAYERS = ("course", "worker", "sandbox", "grading", "in_notebook")
RUNNER = Path(__file__).parent


def bundle(assignment_ids: list[str], out_zip: str | Path) -> Path:
    """Write the Gradescope autograder zip for `assignment_ids` to `out_zip`; return its path."""
    assignment_ids = list(assignment_ids)
    _check(assignment_ids)
    files = _files(assignment_ids)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        _add(z, "setup.sh", _setup_sh(), 0o755)
        _add(z, "run_autograder", (SCRIPTS / "run_autograder").read_text(), 0o755)
        _add(z, CONFIG, json.dumps({"assignments": assignment_ids}, indent=1) + "\n", 0o644)
        for name, path in files.items():
            _add(z, name, path.read_bytes(), 0o644)
    return out_zip


def _check(assignment_ids: list[str]) -> None:
    unknown = [a for a in assignment_ids if a not in assignments()]
    if not assignment_ids or unknown:
        raise ValueError(f"unknown assignment(s) {unknown or assignment_ids}; known: {', '.join(assignments())}")
    missing = [a for a in assignment_ids if not release_path(a).exists()]
    if missing:
        raise FileNotFoundError(f"no released notebook for {missing}: run `python -m autograder build` first")


def package_files() -> list[Path]:
    """The package's Python files the zip holds: its grading layers, the runner, the `__init__`s
    that make them importable."""
    folders = [PACKAGE / layer for layer in GRADING_LAYERS] + [RUNNER]
    found = [PACKAGE / "__init__.py", PACKAGE / "delivery" / "__init__.py"]
    found += [p for folder in folders for p in folder.rglob("*.py") if "student_files" not in p.parts]
    return sorted(set(found))


def _files(assignment_ids: list[str]) -> dict[str, Path]:
    """{path in the zip: path on disk} of what grading needs besides the two scripts."""
    files = {path.relative_to(ROOT).as_posix(): path for path in package_files()}
    for folder in (SOLUTIONS, EXERCISES, CAPSTONE):
        for path in sorted(folder.glob("*.ipynb")):
            files[path.relative_to(ROOT).as_posix()] = path
    for name in ("requirements.txt", "pyproject.toml"):
        files[name] = ROOT / name
    for aid in assignment_ids:
        engine = reference_engine(aid)  # cached where engine.reference_engine looks for it
        if engine:
            files[engine.relative_to(ROOT).as_posix()] = engine
    return files


def _setup_sh() -> str:
    text = (SCRIPTS / "setup.sh").read_text()
    return text.replace("@TORCH@", "torch" + requirements().get("torch", "")).replace("@TORCH_INDEX@", TORCH_CPU_INDEX)


def _add(z: zipfile.ZipFile, name: str, data: str | bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
    z.writestr(info, data)
