"""The student release holds the student tree and nothing from solutions/ or the hidden tests."""
from autograder.release import release
from secrets_ import MARKERS, secret_lines


def test_release_contains_the_student_tree(tmp_path):
    out = tmp_path / "out"
    files = {p.relative_to(out).as_posix() for p in release(out)}
    assert "README.md" in files and "environment.yml" in files
    assert any(f.startswith("lessons/") for f in files) and any(f.startswith("exercises/") for f in files)
    assert not any(f.startswith(("solutions/", "autograder/", "tests/")) for f in files)


def test_no_byte_of_the_release_carries_a_solution_or_hidden_test(tmp_path):
    secrets = set(secret_lines())
    assert secrets
    for path in release(tmp_path / "out"):
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert not any(marker in text for marker in MARKERS), path
        text = text.replace("\\n", "\n").replace('\\"', '"')  # notebook JSON escapes
        lines = {line.strip().strip('",').strip() for line in text.splitlines()}
        leaked = secrets & lines
        assert not leaked, f"{path.name}: {sorted(leaked)[:3]}"
