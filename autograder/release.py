"""The student-facing tree: what goes into the public student repository."""

import shutil
import tomllib
from pathlib import Path

from autograder.course import CAPSTONE, EXERCISES, LESSONS, ROOT

STUDENT_FILES = Path(__file__).parent / "student_files"
# The folders whose notebooks go to students; each notebook carries an "Open in Colab" badge.
RELEASED = (LESSONS, EXERCISES, CAPSTONE)
# pyproject.toml ships with this stand-in; badges that point at it open nothing in Colab.
PLACEHOLDER_REPO = "YOUR-ORG/micrograd-course"
SETTING = "pyproject.toml's `[tool.micrograd-course] student_repo`"

LECTURE = "https://www.youtube.com/watch?v=VMj-3S1tku0"
MICROGRAD = "https://github.com/karpathy/micrograd"

STUDENT_README = f"""\
# micrograd, built by hand

Build a scalar automatic-differentiation engine, one method at a time, then train neural
networks with it. Six lessons explain the ideas; six exercises and a capstone have you write
the code, with tests that tell you at once whether it works.

## Where this course comes from

The engine you build is Andrej Karpathy's [micrograd]({MICROGRAD}), and the course
follows the route of his lecture
["The spelled-out intro to neural networks and backpropagation: building micrograd"]({LECTURE}).
The lessons split that route into short notebooks, and the exercises ask you to write each piece
yourself, checked by tests. Every lesson starts with a "Watch and read" list: the parts of the
lecture (with timestamps) that cover the same ground, well worth watching alongside. micrograd's
own code answers most of the exercises, so keep it for after you have written yours.

## Lessons and exercises

| read these lessons (`lessons/`) | then do these exercises (`exercises/`) |
|---|---|
| 1 Derivatives and gradients | 1 Numerical gradient checking |
| 2 The chain rule<br>3 Building `Value`<br>4 Automatic differentiation | 2 `Value`: add, multiply, backward<br>3 tanh, exp, pow, relu, division |
| 5 Neural-network primitives | 4 A neuron<br>5 `Layer` and `MLP` |
| 6 The training loop | 6 Train a network on XOR |
| | then the capstone (`capstone/`): extend, train, compare, explain |

Your engine travels from one exercise to the next: exercises 2–5 end by saving it to
`micrograd_engine.py`, and exercises 3–6 and the capstone start by importing that file. At
grading time a reference engine takes its place, so a mistake left in one exercise never costs
points in a later one.

## In Google Colab (nothing to install)

1. Get your own copy: press **Fork** on this repository, or **Use this template → Create a new repository** (a GitHub Classroom link makes the copy for you).
2. Open `lessons/01_derivatives.ipynb` on GitHub and click its **Open in Colab** badge; when Colab warns that the notebook was not written by Google, choose **Run anyway**.
3. Run the cells from the top (Shift+Enter, or **Runtime → Run all**) and read as you go.
4. Keep your work: Colab does not save a notebook opened from GitHub, so use **File → Save a copy in GitHub** (pick your repository) or **File → Save a copy in Drive**, and save again before you stop.
5. Next time, open your saved copy (**File → Open notebook**, then the GitHub or Google Drive tab), not the badge: the badge always opens the course's blank notebook, without your work.
6. When the table says an exercise comes next, open it from its badge in `exercises/` and save it the same way.
7. Replace each `raise NotImplementedError()` with your code and run the test cell below it.
8. A passing test cell prints a line starting with ✓ (such as `✓ __add__: 6 checks passed`); a failing one stops with a message that names the likely cause: fix your code, run its cell again, then the test.
9. At the end of exercises 2–5, the last cell saves `micrograd_engine.py` and downloads it: keep that file.
10. When exercises 3–6 or the capstone ask for `micrograd_engine.py`, upload the file the previous exercise saved.
11. Before you hand in, choose **Runtime → Restart session and run all** and check that every test cell prints its ✓ line.
12. Download the notebook (**File → Download → Download .ipynb**) and submit it to the exercise's assignment on Gradescope (the file name does not matter), or hand it in as your instructor says.
13. Hidden tests run when your notebook is graded: they try more cases than the visible ones, so a ✓ everywhere is a good sign, not yet the grade.

## In Jupyter on your own computer

1. Get your own copy (fork, template or Classroom link, as above) and clone it: `git clone https://github.com/YOU/YOUR-COPY.git`, then `cd YOUR-COPY`.
2. Install with pip: `python -m venv .venv`, activate it (`source .venv/bin/activate`; on Windows `.venv\\Scripts\\activate`), then `pip install -r requirements.txt` (on Linux add `--extra-index-url https://download.pytorch.org/whl/cpu`, or pip fetches a multi-GB GPU build of PyTorch).
3. Or install with conda: `conda env create -f environment.yml`, then `conda activate micrograd-course`.
4. With pip, also install Graphviz's `dot` program (`sudo apt-get install graphviz`, `brew install graphviz`, or graphviz.org); conda installs it for you.
5. Start Jupyter from the repository folder: `jupyter lab`.
6. Open the notebooks in the order of the table, each one from its own folder, and run every cell from the top.
7. Replace each `raise NotImplementedError()` with your code and run the test cell below it: ✓ means it passed; a failure names the likely cause.
8. Exercises 2–5 save `micrograd_engine.py` in `exercises/`, where the next exercise finds it; copy it into `capstone/` before you start the capstone.
9. Save often (Ctrl+S), and commit and push to your copy to keep a backup.
10. Before you hand in, choose **Kernel → Restart Kernel and Run All Cells** and check that every test cell prints its ✓ line.
11. Submit the `.ipynb` file to Gradescope, or as your instructor says; hidden tests run when it is graded.

If your course uses GitHub Classroom, every push also runs the visible tests of all exercises
on GitHub: a preview of those points, not your grade.
"""


class PlaceholderRepo(ValueError):
    """The student tree's Colab badges would open the placeholder repository."""


def student_repo():
    """The student repository configured in pyproject.toml, as OWNER/NAME."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["micrograd-course"]["student_repo"]


def placeholder_badges():
    """The notebooks to release whose Colab badges still name the placeholder repository."""
    marker = f"colab.research.google.com/github/{PLACEHOLDER_REPO}/".lower()
    return sorted(
        p
        for folder in RELEASED
        if folder.exists()
        for p in folder.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and marker in p.read_text().lower()
    )


def placeholder_problem():
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


def placeholder_warning():
    """One line for `build`, when the configured repository is still the placeholder; else None."""
    if student_repo().strip().lower() == PLACEHOLDER_REPO.lower():
        return (
            f"warning: the Colab badges point at the placeholder {PLACEHOLDER_REPO}; set {SETTING} "
            f"before `release` (it refuses until then)"
        )
    return None


def release(out, allow_placeholder=False):
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
    (out / "README.md").write_text(STUDENT_README)
    if STUDENT_FILES.exists():
        shutil.copytree(STUDENT_FILES, out, dirs_exist_ok=True)
    return sorted(p for p in out.rglob("*") if p.is_file())
