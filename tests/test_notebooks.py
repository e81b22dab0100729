"""autograder/course/notebooks.py and the intake it serves, without kernels: what each cell is, what a
student never sees, how intake matches a mangled submission to the release, and what a file
name says."""

import copy
import json
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.authoring.samples import filled
from autograder.course import notebooks
from autograder.course.notebooks import HIDDEN_TESTS, SOLUTION
from autograder.course.paths import SOLUTIONS, assignments, release_path
from autograder.grading import intake

AID = "02_value_backward"


def cell(kind="code", source="", **nbgrader):
    made = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    if nbgrader:
        made.metadata["nbgrader"] = nbgrader
    return made


# -- what each cell is --------------------------------------------------------------------------

VISIBLE = cell(grade=True, grade_id="test_add", locked=True, points=1, solution=False)
HIDDEN = cell(grade=True, grade_id="test_add_hidden", locked=True, points=1, solution=False)
ANSWER = cell(grade=False, grade_id="add", locked=False, solution=True)
WRITEUP = cell("markdown", grade=True, grade_id="writeup", locked=False, points=2, solution=True)
SETUP = cell(grade=False, grade_id="setup", locked=True, solution=False)
PLAIN = cell(source="x = 1")


@pytest.mark.parametrize(
    "name, c, graded, answer, test, hidden, locked",
    [
        ("visible test", VISIBLE, True, False, True, False, True),
        ("hidden test", HIDDEN, True, False, True, True, True),
        ("answer", ANSWER, False, True, False, False, False),
        ("written answer", WRITEUP, True, True, False, False, False),
        ("setup", SETUP, False, False, False, False, True),
        ("plain", PLAIN, False, False, False, False, False),
    ],
)
def test_cell_predicates(name, c, graded, answer, test, hidden, locked):
    got = [notebooks.is_graded(c), notebooks.is_answer(c), notebooks.is_test(c), notebooks.is_hidden_test(c)]
    assert got + [notebooks.is_locked(c)] == [graded, answer, test, hidden, locked], name
    raw = json.loads(json.dumps(c))  # a submission's cells are raw JSON, not nbformat's nodes
    assert notebooks.is_test(raw) == test and notebooks.is_hidden_test(raw) == hidden, name


def test_an_answer_is_never_locked_and_a_grade_cell_always_is():
    assert not notebooks.is_locked(cell(grade=False, grade_id="a", locked=True, solution=True))
    assert notebooks.is_locked(cell(grade=True, grade_id="t", locked=False, solution=False))


def test_a_hidden_test_needs_the_suffix_and_a_test_cell():
    assert not notebooks.is_hidden_test(cell(grade=True, grade_id="test_add_hidden_x", solution=False))
    assert not notebooks.is_hidden_test(cell("markdown", grade=True, grade_id="notes_hidden", solution=True))


@pytest.mark.parametrize(
    "raw",
    [
        {"cell_type": "code", "source": ["x = 1\n", "y = 2"]},
        {"cell_type": "code", "source": "x = 1\ny = 2", "metadata": ["not", "a", "mapping"]},
        {"cell_type": "code", "source": "x = 1\ny = 2", "metadata": {"nbgrader": "grade"}},
        {"cell_type": "code", "source": "x = 1\ny = 2", "metadata": {"nbgrader": None}},
    ],
)
def test_a_mangled_cell_is_nothing_and_raises_nothing(raw):
    assert notebooks.source(raw) == "x = 1\ny = 2"
    assert notebooks.grade_id(raw) is None and notebooks.nbgrader_metadata(raw) == {}
    assert not any(f(raw) for f in (notebooks.is_graded, notebooks.is_answer, notebooks.is_test, notebooks.is_locked))


@pytest.mark.parametrize("aid", assignments())
def test_hidden_tests_are_known_by_their_grade_id_in_the_source_and_in_the_release(aid):
    hidden_tests_are_marked(notebooks.read(SOLUTIONS / f"{aid}.ipynb").cells, notebooks.read(release_path(aid)).cells)


def hidden_tests_are_marked(source, released):
    """A source notebook's hidden test cells are named `..._hidden` and hold the hidden region,
    and its release (nbgrader's, region cut out) still names them."""
    by_id = {c.metadata.nbgrader.grade_id for c in source if notebooks.is_hidden_test(c)}
    by_region = {notebooks.grade_id(c) for c in source if notebooks.regions(c.source, [HIDDEN_TESTS])}
    assert by_id and by_id == by_region, "a hidden test cell is named `..._hidden` and holds the hidden region"
    assert {notebooks.grade_id(c) for c in released if notebooks.is_hidden_test(c)} == by_id
    assert not [c for c in released if notebooks.regions(notebooks.source(c))], "the release shows no region"


# -- what a student never sees ------------------------------------------------------------------

SOURCE = """\
def area(width, height):
    ### BEGIN SOLUTION
    return width * height  # the reference answer
    ### END SOLUTION
### BEGIN HIDDEN TESTS
assert area(3, 4) == 12, "area of a three by four"
### END HIDDEN TESTS
"""


def test_regions_by_kind_and_what_the_release_shows():
    assert notebooks.regions(SOURCE) == [
        "    return width * height  # the reference answer\n    ",
        'assert area(3, 4) == 12, "area of a three by four"\n',
    ]
    assert notebooks.regions(SOURCE, [HIDDEN_TESTS]) == ['assert area(3, 4) == 12, "area of a three by four"\n']
    assert notebooks.outside_regions(SOURCE) == "def area(width, height):\n    \n\n"


def _source_notebook(path, *sources):
    path.write_text(json.dumps(new_notebook(cells=[new_code_cell(s) for s in sources])))
    return path


def test_secret_lines_hold_the_regions_but_not_what_a_notebook_shows_anyway(tmp_path):
    shown = "result = compute_the_answer(alpha, beta)"
    path = _source_notebook(
        tmp_path / "01_demo.ipynb",
        SOURCE,
        f"### BEGIN HIDDEN TESTS\n{shown}\ntotal = width + height\n# a comment that is long enough to count\n"
        "### END HIDDEN TESTS\n",
        f"{shown}\n",  # the release shows this line: it gives nothing away
    )
    secrets = notebooks.secret_lines([path])
    assert secrets == {
        "return width * height  # the reference answer": "01_demo.ipynb",
        'assert area(3, 4) == 12, "area of a three by four"': "01_demo.ipynb",
    }
    assert set(notebooks.secret_lines([path], [HIDDEN_TESTS])) == {'assert area(3, 4) == 12, "area of a three by four"'}
    assert set(notebooks.secret_lines([path], [SOLUTION])) == {"return width * height  # the reference answer"}


def test_the_course_secret_lines_hold_a_hidden_test_line_and_no_released_line():
    secrets = notebooks.secret_lines(SOLUTIONS.glob("*.ipynb"))
    hidden = next(
        c for c in notebooks.read(SOLUTIONS / f"{AID}.ipynb").cells if notebooks.grade_id(c) == "test_add_hidden"
    )
    (region,) = notebooks.regions(hidden.source)
    assert 'check.close(a.grad, 2.0, "for b = a + a, a.grad should be 2 after b._backward(): ' in region
    hidden_lines = {line for line in notebooks.telling_lines(region) if "for b = a + a" in line}
    assert len(hidden_lines) == 1 and hidden_lines <= set(secrets)
    assert 'check = Checks("__add__")' in region and 'check = Checks("__add__")' not in secrets  # visible too
    shown = {line for c in notebooks.read(release_path(AID)).cells for line in notebooks.telling_lines(c.source)}
    assert shown and not shown & set(secrets)


# -- intake: matching a mangled submission to the release ---------------------------------------


def _restored(nb, aid=AID):
    notes = []
    intake.restore_metadata(nb, aid, notes)
    return [notebooks.grade_id(c) for c in nb["cells"]], notes


def _ids(nb):
    return [notebooks.grade_id(c) for c in nb["cells"]]


@pytest.fixture
def answered():
    return filled(AID)


def _index(grade_id):
    return _ids(filled(AID)).index(grade_id)


SETUP_AT, VALUE_CLASS_AT, ADD, MUL = (_index(g) for g in ("setup", "value_class", "add", "mul"))


def test_an_untouched_submission_keeps_its_metadata(answered):
    before = copy.deepcopy(answered)
    assert _restored(answered) == (_ids(before), [])
    assert answered == before


def test_lost_nbgrader_metadata_is_restored(answered):
    expected = _ids(answered)
    tagged = sum(1 for g in expected if g)
    for c in answered["cells"]:
        c["metadata"].pop("nbgrader", None)
    ids, notes = _restored(answered)
    assert ids == expected
    assert notes == [f"restored the nbgrader metadata of {tagged} cell(s)"]
    assert answered == filled(AID)


def test_changed_grade_ids_are_put_back(answered):
    expected = _ids(answered)
    for c in answered["cells"]:
        if notebooks.grade_id(c):
            c["metadata"]["nbgrader"]["grade_id"] += "_mine"
    assert _restored(answered)[0] == expected


def test_reordered_cells_keep_their_own_metadata(answered):
    cells = answered["cells"]
    cells[ADD], cells[MUL] = cells[MUL], cells[ADD]  # the answers add and mul, swapped with their metadata
    cells[SETUP_AT], cells[VALUE_CLASS_AT] = cells[VALUE_CLASS_AT], cells[SETUP_AT]  # two locked cells
    expected = _ids(answered)
    assert _restored(answered)[0] == expected
    for c in cells:  # and again without metadata: locked cells by their text
        if notebooks.grade_id(c) in ("setup", "value_class"):
            c["metadata"] = {}
    assert _restored(answered)[0] == expected


def test_an_answer_without_metadata_is_found_by_its_given_lines_between_its_neighbours(answered):
    cells = answered["cells"]
    assert notebooks.grade_id(cells[MUL]) == "mul"
    cells[MUL]["metadata"] = {}
    cells[MUL]["source"] = "def __mul__(self, other):\n    return 'my own attempt'\n"  # only the def line is given
    ids, notes = _restored(answered)
    assert ids[MUL] == "mul" and notes == ["restored the nbgrader metadata of 1 cell(s)"]


def test_a_copy_of_an_answer_elsewhere_is_not_taken_for_it(answered):
    cells = answered["cells"]
    cells.append(copy.deepcopy(cells[MUL]))  # a scratch copy of the answer mul at the end
    for c in (cells[MUL], cells[-1]):
        c["metadata"] = {}
    ids, notes = _restored(answered)
    assert ids[MUL] == "mul" and ids[-1] is None
    assert notes == ["restored the nbgrader metadata of 1 cell(s)"]


def test_two_cells_that_could_answer_the_same_cell_are_reported_not_guessed(answered):
    cells = answered["cells"]
    copy_of_mul = copy.deepcopy(cells[MUL])
    cells.insert(MUL + 1, copy_of_mul)
    for c in (cells[MUL], cells[MUL + 1]):
        c["metadata"] = {}
    ids, notes = _restored(answered)
    assert "mul" not in ids
    assert "could not tell which cell answers mul: graded as unanswered" in notes


def test_a_copied_cell_does_not_take_the_metadata_twice(answered):
    cells = answered["cells"]
    cells.append(copy.deepcopy(cells[ADD]))  # the answer add again, grade_id and all
    ids, _ = _restored(answered)
    assert ids.count("add") == 1 and ids[ADD] == "add" and ids[-1] is None


def test_a_deleted_test_cell_is_reported(answered):
    answered["cells"] = [c for c in answered["cells"] if notebooks.grade_id(c) != "test_mul"]
    ids, notes = _restored(answered)
    assert "test_mul" not in ids and "test cell(s) missing, put back: test_mul" in notes


def test_intake_goes_by_the_content_when_the_name_points_elsewhere(tmp_path, answered):
    path = tmp_path / "03_more_ops.ipynb"
    path.write_text(json.dumps(answered))
    got = intake.recognise(path)
    assert got.assignment == AID and got.notes == [f"named like 03_more_ops but its cells are those of {AID}"]


# -- names of submitted files -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, assignment",
    [
        ("Copy of 02_value_backward (1).ipynb", AID),
        ("02_value_backward (12).ipynb", AID),
        ("alice_02_value_backward.ipynb", AID),
        ("Alice Smith - 04_neuron (3).ipynb", "04_neuron"),
        ("bob-03_more_ops.ipynb", "03_more_ops"),
        ("value_backward.ipynb", AID),
        ("123456_02_value_backward.ipynb", AID),
        ("smithalice_4242_981_02_value_backward.ipynb", AID),
        ("homework.ipynb", None),
    ],
)
def test_assignment_from_a_file_name(name, assignment):
    path = Path("submissions") / "bob" / name
    assert intake.submission_name(Path("Copy of X (3).ipynb")) == "x"
    assert intake.assignment_from_name(path, assignments()) == assignment


def test_the_folder_names_the_assignment_when_the_file_does_not():
    assert intake.assignment_from_name(Path("carol") / AID / "notebook.ipynb", assignments()) == AID
