"""The signed cache of results: OUT/results/STUDENT__ASSIGNMENT.json, reused by a later run only if
its HMAC, made with a key kept outside OUT (.work/grader.key), verifies for the submission and the
tests as they are now."""

import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from autograder.course.assignment import assignment
from autograder.course.files import write_whole
from autograder.course.paths import WORK
from autograder.grading.submission import Submission
from autograder.worker import cohort_course
from autograder.worker.result import Result, Status

UNVERIFIED_NOTE = "cached result did not verify: graded again"
UNSANDBOXED_CACHE_NOTE = "cached result was graded without a sandbox: graded again"


def result_path(out: Path, s: Submission) -> Path:
    return out / "results" / f"{s.student}__{s.assignment}.json"


def input_digest(s: Submission) -> str:
    """The digest of what grading `s` depends on: its repaired notebook and its assignment's tests."""
    assert s.assignment is not None
    data = json.dumps(s.notebook, sort_keys=True).encode() + assignment(s.assignment).tests_bytes
    return hashlib.sha256(data).hexdigest()[:20]


def about(row: dict[str, Any]) -> tuple[Any, Any]:
    """The (student, assignment) a result row or cached result says it is about."""
    return row.get("student"), row.get("assignment")


def signing_key(given: str | Path | None = None) -> bytes:
    """The secret that signs cached results; it lives in .work/, never in OUT, unless `given`
    names another file (the key shards of one cohort share), which is then never created."""
    if given is not None:
        # A kernel at level uid reads what any user may read: a shared key must be its owner's alone.
        if Path(given).exists() and Path(given).stat().st_mode & 0o077:
            raise SystemExit(f"the key {given} can be read by other users: chmod 600 {given}")
        return _read_key(Path(given), f"it needs at least 32 bytes (head -c 32 /dev/urandom > {given})")
    path = WORK / "grader.key"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix="grader.key.", dir=WORK)  # mode 0600
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        try:
            os.link(tmp, path)  # atomic: a concurrent grader never reads half a key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return _read_key(path, "delete it (every cached result is then graded again)")


def _read_key(path: Path, remedy: str) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as e:
        raise SystemExit(f"cannot read the key {path}: {e.strerror}") from None
    if len(key) < 32:
        raise SystemExit(f"{path} is damaged or not a key: {remedy}")
    return key


def _sign(row: dict[str, Any], key: bytes, input_digest: str) -> str:
    """HMAC-SHA256 of a result row (all but its signature) bound to the digest of its inputs."""
    body = json.dumps({k: v for k, v in row.items() if k != "sig"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, f"{input_digest}\n{body}".encode(), hashlib.sha256).hexdigest()


def save(result: Result, path: Path, key: bytes) -> None:
    """Write `result` to `path`, signed."""
    row = result.to_json()
    row["sig"] = _sign(row, key, result.input or "")
    write_whole(path, json.dumps(row))


def verified(path: Path, key: bytes) -> dict[str, Any] | None:
    """The row saved at `path` if its signature verifies, else None."""
    try:
        row = json.loads(path.read_text())
        valid = (
            isinstance(row, dict)
            and isinstance(row.get("sig"), str)
            and isinstance(row.get("input"), str)
            and hmac.compare_digest(row["sig"], _sign(row, key, row["input"]))
        )
    except (OSError, ValueError, TypeError):
        return None
    return row if valid else None


def reuse(out: Path, s: Submission, key: bytes, sandboxed: bool) -> bool:
    """Give `s` its cached result if that verifies; otherwise say why it is graded again."""
    cached = result_path(out, s)
    if not cached.exists():
        return False
    row = verified(cached, key)
    if row is None or about(row) != (s.student, s.assignment):
        s.notes.append(UNVERIFIED_NOTE)
        return False
    try:
        result = Result.from_json(row)
    except ValueError:
        return False  # genuine, but written by an older grader
    if result.input != s.digest or result.status is not Status.GRADED:
        return False  # a genuine result of another version of the submission or the tests
    if sandboxed and result.sandbox is not True:
        s.notes.append(UNSANDBOXED_CACHE_NOTE)
        return False
    s.take(result)
    cohort_course.record(out, result)  # an OUT folder graded before it had a gradebook gets one
    return True
