"""The student release holds the student tree and nothing from solutions/ or the hidden tests,
and is never written while its Colab badges point at the placeholder repository."""

import json

import pytest
from test_lessons import LECTURE, MICROGRAD

from autograder import cli
from autograder.course.notebooks import MARKERS, secret_lines
from autograder.course.paths import SOLUTIONS
from autograder.delivery import release as release_module
from autograder.delivery.release import PLACEHOLDER_REPO, STUDENT_FILES, PlaceholderRepo, release

# The committed notebooks name the placeholder repository until an instructor sets their own.
TRY_OUT = {"allow_placeholder": True}


def test_release_contains_the_student_tree(tmp_path):
    out = tmp_path / "out"
    files = {p.relative_to(out).as_posix() for p in release(out, **TRY_OUT)}
    assert {"README.md", "environment.yml", "requirements.txt"} <= files
    assert any(f.startswith("lessons/") for f in files) and any(f.startswith("exercises/") for f in files)
    assert not any(f.startswith(("solutions/", "autograder/", "tests/")) for f in files)


def test_no_byte_of_the_release_carries_a_solution_or_hidden_test(tmp_path):
    secrets = set(secret_lines(SOLUTIONS.glob("*.ipynb")))
    assert secrets
    for path in release(tmp_path / "out", **TRY_OUT):
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not any(marker in text for marker in MARKERS), path
        text = text.replace("\\n", "\n").replace('\\"', '"')  # notebook JSON escapes
        lines = {line.strip().strip('",').strip() for line in text.splitlines()}
        leaked = secrets & lines
        assert not leaked, f"{path.name}: {sorted(leaked)[:3]}"


def test_release_refuses_the_placeholder_repository_and_names_the_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(release_module, "student_repo", lambda: PLACEHOLDER_REPO)
    out = tmp_path / "out"
    with pytest.raises(PlaceholderRepo) as refused:
        release(out)
    for words in ("pyproject.toml", "[tool.micrograd-course] student_repo", PLACEHOLDER_REPO, "--allow-placeholder"):
        assert words in str(refused.value)
    assert not out.exists(), "nothing is written when release refuses"

    assert cli.main(["release", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("release: refusing") and "[tool.micrograd-course] student_repo" in err
    assert not out.exists()

    assert cli.main(["release", str(out), "--allow-placeholder"]) == 0
    assert (out / "README.md").exists()


def test_release_refuses_badges_left_from_before_the_repository_was_set(tmp_path, monkeypatch):
    """A real repository in pyproject.toml is not enough: the badges must have been rebuilt."""
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    badge = f"[![Open In Colab](b.svg)](https://colab.research.google.com/github/{PLACEHOLDER_REPO}/blob/main/lessons/x.ipynb)"
    (lessons / "x.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": badge}]}))
    monkeypatch.setattr(release_module, "RELEASED", (lessons,))
    monkeypatch.setattr(release_module, "ROOT", tmp_path)
    monkeypatch.setattr(release_module, "student_repo", lambda: "a-school/micrograd-2025")
    with pytest.raises(PlaceholderRepo, match=r"make build") as refused:
        release(tmp_path / "out")
    assert "[tool.micrograd-course] student_repo" in str(refused.value) and "lessons/x.ipynb" in str(refused.value)

    (lessons / "x.ipynb").write_text(
        json.dumps(
            {"cells": [{"cell_type": "markdown", "source": badge.replace(PLACEHOLDER_REPO, "a-school/micrograd-2025")}]}
        )
    )
    assert release_module.placeholder_problem() is None


def test_student_readme_credits_micrograd_and_walks_both_paths():
    readme = (STUDENT_FILES / "README.md").read_text()
    for words in (
        "Andrej Karpathy",
        MICROGRAD,
        LECTURE,
        "building micrograd",
        "Save a copy in GitHub",
        "Save a copy in Drive",
        "Gradescope",
        "✓",
        "pip install -r requirements.txt",
        "environment.yml",
        "jupyter lab",
        "micrograd/",
        "MyDrive/micrograd-course",
        "micrograd.zip",
        "python -m pytest -q test_micrograd.py",
    ):
        assert words in readme, words
