"""A cohort graded in shards and merged writes what one run writes; merge refuses what is not one cohort.

Most of it runs against the stand-in worker of test_workers (no kernel); one test grades a few
real notebooks once whole and once in two shards."""

import csv
import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook
from test_workers import FAKE_WORKER

from autograder import cli
from autograder.authoring import samples
from autograder.course.nbgrader_setup import nbgrader_api
from autograder.course.paths import COURSE_ID
from autograder.grading import cache, grade, pool, shards
from autograder.grading.submission import Submission
from autograder.worker import cohort_course

AID = "02_value_backward"
STUDENTS = ["ann", "ben", "cat", "dov", "eve", "fay", "gus", "hal"]
# The stand-in worker scores cells the gradebook knows, so that nbgrader's totals are the grader's.
WORKER = FAKE_WORKER.replace('"test_a": [3.0, 3.0]', '"test_add": [2.0, 2.0], "test_mul": [1.0, 1.0]')


@pytest.fixture
def fake(monkeypatch, tmp_path):
    worker = tmp_path / "fake_worker.py"
    assert WORKER != FAKE_WORKER
    worker.write_text(WORKER)
    monkeypatch.setattr(pool, "WORKER", [sys.executable, str(worker)])
    monkeypatch.setattr(grade, "WORK", tmp_path / "work")
    monkeypatch.setattr(cache, "WORK", tmp_path / "work")
    monkeypatch.setattr(grade, "reference_engine", lambda aid: None)
    monkeypatch.setattr(pool, "STARTUP_SECONDS", 5)
    monkeypatch.setattr(grade, "_sandbox_or_refuse", lambda unsafe: True)
    return tmp_path


def make_key(path: Path, fill: bytes = b"k") -> Path:
    path.write_bytes(fill * 32)
    path.chmod(0o600)
    return path


def cohort(root: Path, students=STUDENTS) -> Path:
    """Each student's notebook; ann also hands in a text file, and ben an older copy of his notebook."""
    nb = json.dumps(samples.filled(AID))
    for student in students:
        path = root / student / f"{AID}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(nb)
    (root / "ann" / "answers.txt").write_text("on paper")
    older = root / "ben" / f"{AID} old.ipynb"
    older.write_text(nb)
    os.utime(older, (time.time() - 100,) * 2)
    return root


def grade_cli(*args: str) -> None:
    assert cli.main(["grade", *map(str, args)]) == 0


def sharded(inputs: Path, root: Path, n: int, key: Path) -> list[Path]:
    outs = [root / f"shard{k}" for k in range(n)]
    for k, out in enumerate(outs):
        grade_cli(inputs, "--out", out, "--shard", f"{k}/{n}", "--key", key)
    return outs


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.parent.name == "results"}


def course(out: Path) -> dict[str, bytes]:
    """The files of OUT's nbgrader course that one run and a merge write alike."""
    found = {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "source").rglob("*")) if p.is_file()}
    return found | {"nbgrader_config.py": (out / "nbgrader_config.py").read_bytes()}


def gradebook(out: Path) -> dict[tuple[str, ...], object]:
    """Every grade and comment of OUT's gradebook, by assignment, notebook, cell and student."""
    found: dict[tuple[str, ...], object] = {}
    with Gradebook(cohort_course.url(out), COURSE_ID) as gb:
        for a in gb.assignments:
            for sub in a.submissions:
                for nb in sub.notebooks:
                    for g in nb.grades:
                        at = (a.name, nb.name, g.name, sub.student.id, "grade")
                        found[at] = (g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                    for c in nb.comments:
                        found[(a.name, nb.name, c.name, sub.student.id, "comment")] = c.manual_comment
    return found


def totals(out: Path) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Each graded submission's score in OUT's gradebook (nbgrader's own sum), and in grades.csv."""
    with open(out / "grades.csv", newline="") as f:
        sheet = {
            (r["student"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f) if r["status"] == "graded"
        }
    with Gradebook(cohort_course.url(out), COURSE_ID) as gb:
        return {key: gb.find_submission(key[1], key[0]).score for key in sheet}, sheet


def test_a_student_is_in_one_shard_and_every_shard_has_its_own():
    split = {s: shards.shard_of(s, 3) for s in STUDENTS}
    assert set(split.values()) == {0, 1, 2}, "the names above spread over 3 shards"
    subs = [Submission(s, Path(f"{s}/{name}")) for s in STUDENTS for name in ("a.ipynb", "b.ipynb")]
    parts = [shards.select(subs, k, 3) for k in range(3)]
    assert sorted(s.path for part in parts for s in part) == sorted(s.path for s in subs)
    assert all(split[s.student] == k for k, part in enumerate(parts) for s in part)
    assert shards.parse("2/3") == (2, 3)
    for bad in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError):
            shards.parse(bad)


def test_shards_merged_write_the_grades_and_results_of_one_run_byte_for_byte(fake):
    root = fake
    inputs, key = cohort(root / "in"), make_key(root / "shared.key")
    grade_cli(inputs, "--out", root / "whole", "--key", key)
    outs = sharded(inputs, root, 3, key)
    manifest = json.loads((outs[1] / shards.MANIFEST).read_text())
    assert (manifest["shard"], manifest["of"]) == (1, 3)
    assert manifest["students"] == sorted(s for s in STUDENTS if shards.shard_of(s, 3) == 1)
    assert cli.main(["merge", *map(str, reversed(outs)), "--out", str(root / "merged"), "--key", str(key)]) == 0
    whole, merged = (root / "whole" / "grades.csv").read_bytes(), (root / "merged" / "grades.csv").read_bytes()
    assert whole == merged
    rows = list(csv.DictReader(whole.decode().splitlines()))
    assert len(rows) == len(STUDENTS) + 2 and "superseded" in rows[2]["status"], "the error rows come along"
    assert files(root / "whole") == files(root / "merged") and len(files(root / "merged")) == len(STUDENTS)
    # one nbgrader course, as one run leaves it
    assert course(root / "merged") == course(root / "whole") and f"source/{AID}/{AID}.ipynb" in course(root / "whole")
    assert gradebook(root / "merged") == gradebook(root / "whole")
    by_nbgrader, by_sheet = totals(root / "merged")
    assert by_nbgrader == by_sheet and len(by_sheet) == len(STUDENTS) and set(by_sheet.values()) == {3.0}
    api = nbgrader_api(root / "merged")
    assert [a["name"] for a in api.get_assignments()] == [AID]
    assert sorted(s["student"] for s in api.get_submissions(AID)) == STUDENTS


def refusal(capsys, *outs: Path, key: Path) -> str:
    merged = outs[0].parent / "merged"
    assert cli.main(["merge", *map(str, outs), "--out", str(merged), "--key", str(key)]) == 2
    assert not merged.exists(), "nothing is written"
    return capsys.readouterr().err


def test_a_missing_duplicated_or_foreign_shard_is_refused_with_a_clear_message(fake, capsys):
    root = fake
    inputs, key = cohort(root / "in"), make_key(root / "shared.key")
    outs = sharded(inputs, root, 3, key)
    assert "shard 1 of 3 is missing" in refusal(capsys, outs[0], outs[2], key=key)
    assert "shard 2 of 3 is given twice" in refusal(capsys, *outs, outs[2], key=key)
    assert "not signed with this key" in refusal(capsys, *outs, key=make_key(root / "other.key", b"o"))

    other = cohort(root / "other-in", STUDENTS[:-1])  # another class, or the same one a day later
    (other_out,) = [root / "other0"]
    grade_cli(other, "--out", other_out, "--shard", "0/3", "--key", key)
    assert "foreign shard: it was cut from other submissions" in refusal(capsys, other_out, *outs[1:], key=key)
    grade_cli(inputs, "--out", root / "four", "--shard", "0/4", "--key", key)
    assert "every shard must come from one split" in refusal(capsys, *outs, root / "four", key=key)
    assert "no shard manifest" in refusal(capsys, *outs[:2], root / "in", key=key)

    older = json.loads((outs[2] / shards.MANIFEST).read_text())  # its manifest did not cover the gradebook
    older["version"] = 1
    older["sig"] = shards._sign(older, key.read_bytes())
    (outs[2] / shards.MANIFEST).write_text(json.dumps(older))
    assert "written by another version of the grader" in refusal(capsys, *outs, key=key)
    grade_cli(inputs, "--out", outs[2], "--shard", "2/3", "--key", key)

    result = next((outs[0] / "results").glob("*.json"))
    row = json.loads(result.read_text())
    row["score"] = 5.0
    result.write_text(json.dumps(row))
    assert f"{result} is not the file its shard wrote" in refusal(capsys, *outs, key=key)


def test_hand_grades_and_comments_given_in_a_shard_come_into_the_merged_course(fake, capsys):
    root = fake
    inputs, key = cohort(root / "in"), make_key(root / "shared.key")
    outs = sharded(inputs, root, 2, key)
    student = next(s for s in STUDENTS if shards.shard_of(s, 2) == 1)
    assert cohort_course.set_hand_score(outs[1], student, AID, "test_mul", 0.5)  # autograded 1
    with Gradebook(cohort_course.url(outs[1]), COURSE_ID) as gb:
        gb.find_comment("backward", AID, AID, student).manual_comment = "Neat recursion."
        gb.db.commit()
    gradebook_changed = f"{outs[1] / 'gradebook.db'} is not the file its shard wrote"
    assert gradebook_changed in refusal(capsys, *outs, key=key)

    grade_cli(inputs, "--out", outs[1], "--shard", "1/2", "--key", key)  # reads the hand grades, signs anew
    merged = root / "merged"
    assert cli.main(["merge", *map(str, outs), "--out", str(merged), "--key", str(key)]) == 0
    with Gradebook(cohort_course.url(merged), COURSE_ID) as gb:
        mul = gb.find_grade("test_mul", AID, AID, student)
        assert (mul.auto_score, mul.manual_score, mul.needs_manual_grade) == (1.0, 0.5, False)
        assert gb.find_comment("backward", AID, AID, student).manual_comment == "Neat recursion."
    by_nbgrader, by_sheet = totals(merged)
    assert by_nbgrader == by_sheet and by_sheet[(student, AID)] == 2.5
    assert "comment on backward: Neat recursion." in (merged / "grades.csv").read_text()


def test_a_shared_key_others_can_read_is_refused(fake, capsys):
    key = make_key(fake / "shared.key")
    key.chmod(0o644)
    with pytest.raises(SystemExit, match="can be read by other users"):
        grade.grade([], fake / "out", key_file=key)


@pytest.mark.kernel
def test_real_notebooks_graded_in_two_shards_merge_into_one_runs_grades(tmp_path):
    inputs, key = tmp_path / "in", make_key(tmp_path / "shared.key")
    aid = "01_numerical_gradients"
    for student, nb in [("ann", samples.filled(aid)), ("cat", samples.stub(aid)), ("dov", samples.filled(aid))]:
        (inputs / student).mkdir(parents=True)
        (inputs / student / f"{aid}.ipynb").write_text(json.dumps(nb))
    assert {shards.shard_of(s, 2) for s in ("ann", "cat", "dov")} == {0, 1}
    grade_cli(inputs, "--out", tmp_path / "whole", "--key", key)
    outs = sharded(inputs, tmp_path, 2, key)
    assert cli.main(["merge", *map(str, outs), "--out", str(tmp_path / "merged"), "--key", str(key)]) == 0
    whole = (tmp_path / "whole" / "grades.csv").read_text()
    assert whole == (tmp_path / "merged" / "grades.csv").read_text()
    assert "ann,01_numerical_gradients,0," not in whole and "cat,01_numerical_gradients,0," in whole

    def payloads(out):  # what a result says of the submission; a run's timing and slot differ from any other's
        rows = [json.loads(v) for v in files(out).values()]
        return [json.dumps({k: v for k, v in r.items() if k not in ("seconds", "slot", "sig")}) for r in rows]

    assert payloads(tmp_path / "whole") == payloads(tmp_path / "merged") and len(payloads(tmp_path / "whole")) == 3
    for student in ("ann", "cat", "dov"):  # each shard's autograded notebook, as formgrader shows it
        kept = cohort_course.autograded(outs[shards.shard_of(student, 2)], student, aid)
        assert cohort_course.autograded(tmp_path / "merged", student, aid).read_bytes() == kept.read_bytes()
    by_nbgrader, by_sheet = totals(tmp_path / "merged")
    assert by_nbgrader == by_sheet and len(by_sheet) == 3


K8S = Path(shards.__file__).parents[1] / "deploy" / "k8s"


def test_the_kubernetes_manifests_validate_and_run_the_commands_of_this_grader():
    import kubernetes_validate
    import yaml

    docs = {p.name: yaml.safe_load(p.read_text()) for p in sorted(K8S.glob("*.yaml"))}
    assert set(docs) == {"volume.yaml", "shards-job.yaml", "merge-job.yaml"}
    for doc in docs.values():  # offline: the wheel bundles the schemas
        kubernetes_validate.validate(doc, "1.37", strict=True)
    typo = json.loads(json.dumps(docs["shards-job.yaml"]))
    typo["spec"]["completionMod"] = typo["spec"].pop("completionMode")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, "1.37", strict=True)

    job, merge = docs["shards-job.yaml"]["spec"], docs["merge-job.yaml"]["spec"]
    n = job["completions"]
    assert job["completionMode"] == "Indexed" and job["parallelism"] == n
    shard = job["template"]["spec"]["containers"][0]["args"][0].replace("$JOB_COMPLETION_INDEX", "1")
    merged = merge["template"]["spec"]["containers"][0]["args"][0].replace(
        "$(seq -f /data/shards/%g 0 3)", " ".join(f"/data/shards/{k}" for k in range(4))
    )
    after = lambda command: command[command.index("autograder") + 1 :]  # noqa: E731
    shard_args = cli._parser().parse_args(after(shlex.split(shard)))
    merge_args = cli._parser().parse_args(after(shlex.split(merged)))
    assert shards.parse(shard_args.shard) == (1, n) and shard_args.out == "/data/shards/1"
    assert merge_args.shards == [f"/data/shards/{k}" for k in range(n)]
    assert shard_args.key == merge_args.key
