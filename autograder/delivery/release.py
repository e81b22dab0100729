"""The student-facing tree: what goes into the public student repository."""

import shutil
from pathlib import Path

from autograder.course.paths import (
    CAPSTONE,
    EXERCISES,
    IN_NOTEBOOK,
    LESSONS,
    PLACEHOLDER_REPO,
    ROOT,
    SETTING,
    student_repo,
)

# Copied over the student tree as they are: its README.md, the visible-tests workflow.
STUDENT_FILES = IN_NOTEBOOK / "student_files"
# The course website's Sphinx configuration and the GitHub Pages workflow that publishes it; each
# names the student repository where they say OWNER/NAME.
SITE_FILES = Path(__file__).parent / "site_files"
SITE_CONF = Path(".github/site/conf.py")
PAGES_WORKFLOW = Path(".github/workflows/pages.yml")
# The folders whose notebooks go to students; each notebook carries an "Open in Colab" badge.
RELEASED = (LESSONS, EXERCISES, CAPSTONE)


class PlaceholderRepo(ValueError):
    """The student tree's Colab badges would open the placeholder repository."""


def placeholder_badges() -> list[Path]:
    """The notebooks to release whose Colab badges still name the placeholder repository."""
    marker = f"colab.research.google.com/github/{PLACEHOLDER_REPO}/".lower()
    return sorted(
        p
        for folder in RELEASED
        if folder.exists()
        for p in folder.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and marker in p.read_text().lower()
    )


def placeholder_problem() -> str | None:
    """Why the Colab badges of the student tree would open the placeholder repository, or None."""
    repo = student_repo()
    if repo.strip().lower() == PLACEHOLDER_REPO.lower():
        return (
            f'{SETTING} is still the placeholder {PLACEHOLDER_REPO!r}, so every "Open in Colab" '
            f"badge would point at a repository that is not yours: set it to your student "
            f"repository (OWNER/NAME) and run `make build`"
        )
    stale = placeholder_badges()
    if stale:
        return (
            f"{len(stale)} notebook(s), such as {stale[0].relative_to(ROOT)}, still have Colab badges "
            f"pointing at the placeholder {PLACEHOLDER_REPO!r}, although {SETTING} is {repo!r}: "
            f"run `make build` to point them at {repo!r}"
        )
    return None


def release(out: str | Path, allow_placeholder: bool = False) -> list[Path]:
    """Write the student tree into `out` (created; must not exist or be empty); return its files.
    Refuses (PlaceholderRepo) while the Colab badges point at the placeholder repository, unless
    `allow_placeholder` (a local try-out, never to be published)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    problem = None if allow_placeholder else placeholder_problem()
    if problem:
        raise PlaceholderRepo(
            f"refusing to write the student tree: {problem}. "
            f"(--allow-placeholder writes it anyway, for a local try-out only.)"
        )
    for folder in RELEASED:
        if folder.exists():
            shutil.copytree(folder, out / folder.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(ROOT / "environment.yml", out / "environment.yml")
    shutil.copy(ROOT / "requirements.txt", out / "requirements.txt")
    shutil.copytree(STUDENT_FILES, out, dirs_exist_ok=True)
    shutil.copytree(SITE_FILES, out, dirs_exist_ok=True)
    for named in (SITE_CONF, PAGES_WORKFLOW):
        (out / named).write_text((out / named).read_text().replace("OWNER/NAME", student_repo()))
    return sorted(p for p in out.rglob("*") if p.is_file())
