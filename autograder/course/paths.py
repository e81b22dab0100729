"""Where things live, and the nbgrader configuration every command shares."""

import re
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # autograder/
IN_NOTEBOOK = PACKAGE / "in_notebook"  # code that runs in students' notebooks, never imported by the grader
ROOT = PACKAGE.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
CAPSTONE = ROOT / "capstone"
LESSONS = ROOT / "lessons"
# Gradebooks, nbgrader course folders and demo output: git-ignored, safe to delete.
WORK = ROOT / ".work"

COURSE_ID = "micrograd"  # nbgrader's course id, in every gradebook
ENGINE_FILE = "micrograd.zip"  # the reference package, beside a graded notebook


def assignments() -> list[str]:
    """Assignment ids in course order; each is the stem of one notebook in solutions/."""
    return sorted(p.stem for p in SOLUTIONS.glob("*.ipynb"))


def release_path(assignment: str) -> Path:
    """Where the student version of an assignment is committed."""
    folder = CAPSTONE if "capstone" in assignment else EXERCISES
    return folder / f"{assignment}.ipynb"


COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"]+")


# pyproject.toml ships with this stand-in; badges that point at it open nothing in Colab.
PLACEHOLDER_REPO = "YOUR-ORG/micrograd-course"
SETTING = "pyproject.toml's `[tool.micrograd-course] student_repo`"


def student_repo() -> str:
    """The student repository configured in pyproject.toml (the course's one setting there), as OWNER/NAME."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        repo: str = tomllib.load(f)["tool"]["micrograd-course"]["student_repo"]
    return repo


def placeholder_warning() -> str | None:
    """One line for `build`, when the configured repository is still the placeholder; else None."""
    if student_repo().strip().lower() == PLACEHOLDER_REPO.lower():
        return (
            f"warning: the Colab badges point at the placeholder {PLACEHOLDER_REPO}; set {SETTING} "
            f"before `release` (it refuses until then)"
        )
    return None


def colab_url(notebook: str | Path) -> str:
    """The "Open in Colab" address of a released notebook, from the one configured student repo."""
    return f"https://colab.research.google.com/github/{student_repo()}/blob/main/{Path(notebook).relative_to(ROOT)}"


def requirements(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """{package name in lower case: its version specifier, such as "==2.13.0", or ""} of a pip
    requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)(.*)", line.split("#")[0].replace(" ", ""))
        if m:
            found[m.group(1).lower()] = m.group(2)
    return found
