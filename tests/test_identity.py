"""Whose work a file is: never what its name says. A folder laid out STUDENT/NOTEBOOK.ipynb names
its student; a loose file needs --student, or a roster and the `name_userid_` prefix an LMS
download adds. Anything that could give a file to the wrong student is refused, saying why."""

import pytest

from autograder.grading import discovery

AID = "02_value_backward"
ROSTER = "student,lms_id,name\nalice,1111,Alice A\nbob,2222,Bob B\n"


def _files(root, *names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    return root


def _owners(subs):
    return sorted((s.student, s.path.name) for s in subs)


def test_a_folder_names_its_student_whatever_the_file_is_called(tmp_path):
    _files(tmp_path, f"alice/Bob_{AID} (1).ipynb", f"bob/{AID}.ipynb", f"carol/{AID}/notebook.ipynb")
    assert _owners(discovery.find_submissions([tmp_path])) == [
        ("alice", f"Bob_{AID} (1).ipynb"),
        ("bob", f"{AID}.ipynb"),
        ("carol", "notebook.ipynb"),
    ]


def test_a_loose_file_is_refused_without_student_or_roster(tmp_path):
    _files(tmp_path, f"in/Bob_{AID} (1).ipynb")
    with pytest.raises(SystemExit, match="--student ID.*--roster"):
        discovery.find_submissions([tmp_path / "in" / f"Bob_{AID} (1).ipynb"])
    with pytest.raises(SystemExit, match="Bob_"):
        discovery.find_submissions([tmp_path / "in"])  # a file lying in the folder given is loose too
    subs = discovery.find_submissions([tmp_path / "in" / f"Bob_{AID} (1).ipynb"], student="alice")
    assert _owners(subs) == [("alice", f"Bob_{AID} (1).ipynb")]


def test_an_lms_download_is_named_by_its_prefix_and_the_roster(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER)
    _files(tmp_path, f"lms/bbob_2222_901_{AID}.ipynb", f"lms/aalice_LATE_1111_902_Bob_2222_{AID} (1).ipynb")
    subs = discovery.find_submissions([tmp_path / "lms"], roster=tmp_path / "roster.csv")
    assert _owners(subs) == [
        ("alice", f"aalice_LATE_1111_902_Bob_2222_{AID} (1).ipynb"),
        ("bob", f"bbob_2222_901_{AID}.ipynb"),
    ]
    assert discovery.lms_user_id("Full Name_424242_assignsubmission_file_x.ipynb") == "424242"
    assert (
        discovery.lms_user_id(f"{AID}.ipynb") is None and discovery.lms_user_id("bob_02_value_backward.ipynb") is None
    )


@pytest.mark.parametrize(
    "roster,files,refusal",
    [
        (ROSTER, [f"carol_3333_903_{AID}.ipynb"], "user 3333 is not in the roster"),
        (ROSTER, [f"{AID}.ipynb"], "no LMS prefix"),
        (ROSTER + "alice2,1111,Alice again\n", [f"a_1111_1_{AID}.ipynb"], "lists lms_id 1111 more than once"),
        (ROSTER + "alice,3333,Alice again\n", [f"a_1111_1_{AID}.ipynb"], "lists student alice more than once"),
        ("id,name\n1,x\n", [f"a_1111_1_{AID}.ipynb"], "header row"),
        (ROSTER + "../x,4444,Path\n", [f"a_1111_1_{AID}.ipynb"], "cannot be a student id"),
    ],
)
def test_an_ambiguous_case_is_refused_with_a_message(tmp_path, roster, files, refusal):
    (tmp_path / "roster.csv").write_text(roster)
    _files(tmp_path / "lms", *files)
    with pytest.raises(SystemExit, match=refusal):
        discovery.find_submissions([tmp_path / "lms"], roster=tmp_path / "roster.csv")


def test_student_and_roster_together_or_without_loose_files_are_refused(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER)
    _files(tmp_path, f"in/alice/{AID}.ipynb", f"a_1111_1_{AID}.ipynb")
    with pytest.raises(SystemExit, match="not both"):
        discovery.find_submissions([tmp_path / f"a_1111_1_{AID}.ipynb"], "alice", tmp_path / "roster.csv")
    with pytest.raises(SystemExit, match="loose files"):
        discovery.find_submissions([tmp_path / "in"], "bob")
