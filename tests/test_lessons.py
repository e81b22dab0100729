"""Every lesson runs alone (as in Colab), has its teaching frame, and shows fresh outputs."""

import re

import nbformat
import pytest

from autograder.authoring.lessons import run_alone, source_digest
from autograder.course.paths import LESSONS, ROOT, colab_url

LESSON_PATHS = sorted(LESSONS.glob("*.ipynb"))
ids = [p.stem for p in LESSON_PATHS]

LECTURE = "https://www.youtube.com/watch?v=VMj-3S1tku0"
MICROGRAD = "https://github.com/karpathy/micrograd"
THREE_BLUE_ONE_BROWN = ("https://www.youtube.com/watch?v=Ilg3gGewQ5U", "https://www.youtube.com/watch?v=tIeHLnjs5U8")


def test_there_are_six_lessons():
    assert len(LESSON_PATHS) == 6, [p.name for p in LESSON_PATHS]


@pytest.mark.parametrize("path", LESSON_PATHS, ids=ids)
def test_lesson_has_title_objectives_takeaways_checks_next_and_badge(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    first = nb.cells[0].source
    assert f"]({colab_url(path)})" in first, "the first cell carries the Colab badge for this lesson (run `make build`)"
    assert "# Lesson" in first and "What you will learn" in first and "Estimated time" in first
    for heading in ("## Key takeaways", "## Check yourself", "## Next"):
        assert heading in text, f"{path.name} lacks {heading!r}"
    named = [p for p in (ROOT / "exercises").glob("*.ipynb") if p.stem in text.split("## Next", 1)[1]]
    assert named, f"{path.name}: the Next section names no exercise notebook"


@pytest.mark.parametrize("path", LESSON_PATHS, ids=ids)
def test_committed_outputs_come_from_the_current_sources(path):
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata.get("course", {}).get("outputs_from_sources")
    assert stamp == source_digest(nb), f"{path.name} changed after its outputs were made: run `make lessons`"
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.kernel
@pytest.mark.parametrize("path", LESSON_PATHS, ids=ids)
def test_lesson_runs_top_to_bottom_alone_in_an_empty_folder(path):
    nb = run_alone(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", LESSON_PATHS, ids=ids)
def test_lesson_opens_with_its_parts_of_the_lecture_and_micrograd(path):
    first = nbformat.read(path, as_version=4).cells[0].source
    assert "Watch and read" in first, f"{path.name}: the first cell has no 'Watch and read' list"
    watch = first.split("Watch and read", 1)[1]
    assert re.search(re.escape(LECTURE) + r"&t=\d+s\)", watch), f"{path.name}: no timestamped link to the lecture"
    assert MICROGRAD in watch, f"{path.name}: no link to the micrograd repository"
    if path.name.startswith("01"):
        assert "Andrej Karpathy" in first and "building micrograd" in first, (
            "lesson 1 credits micrograd and its lecture"
        )
    if path.name.startswith("02"):
        assert all(url in watch for url in THREE_BLUE_ONE_BROWN), "lesson 2 links 3Blue1Brown's backpropagation videos"
