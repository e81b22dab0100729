"""A cohort graded in N parts, on as many machines, and merged back into one output folder.

`grade ... --shard K/N` grades the students with sha256(student) mod N == K (0 <= K < N; all of
one student's files in one part) into its own OUT, and writes OUT/shard.json: K, N, a digest of
the whole cohort's file names and sizes and one of its own part's contents, and the digest of
every file it wrote, signed with the key the shards share (`--key FILE`). `merge` checks every
manifest and file, refuses a missing, duplicated or foreign shard, and writes the grades.csv a
single run would have written, and one nbgrader course holding every shard's gradebook.
"""

import csv
import hashlib
import hmac
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autograder.grading import cache, output
from autograder.grading.submission import Submission
from autograder.worker import cohort_course
from autograder.worker.result import feedback_page

MANIFEST = "shard.json"
MERGED = "shards.json"  # the merged folder's record of the manifests it was made from
VERSION = 2  # 2: the manifest covers the shard's gradebook and autograded notebooks too
GRADEBOOK = "gradebook.db"  # merged by name, not copied: its rows' ids are the shard's own


class Refused(Exception):
    """Shards that cannot be merged, and why."""


def parse(text: str) -> tuple[int, int]:
    """(K, N) of "K/N"; ValueError unless 0 <= K < N."""
    k, sep, n = text.partition("/")
    if not sep or not k.strip().isdigit() or not n.strip().isdigit():
        raise ValueError(f"--shard takes K/N, such as 0/4 (got {text!r})")
    if not 0 <= int(k) < int(n):
        raise ValueError(f"--shard {text}: K counts from 0 to N-1")
    return int(k), int(n)


def shard_of(student: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big") % n


def select(submissions: list[Submission], k: int, n: int) -> list[Submission]:
    return [s for s in submissions if shard_of(s.student, n) == k]


def inputs_digest(submissions: list[Submission]) -> str:
    """What the files say, not where they lie: each student, file name and content, in order.
    Two machines that mount the submissions at different paths agree on it."""
    return _digest_of((s.student, s.path.name, _file_digest(s.path)) for s in submissions)


def cohort_digest(submissions: list[Submission]) -> str:
    """Each student, file name and size: every shard takes it of the whole cohort, which it then
    need not read (a shard reads its own part only)."""
    return _digest_of((s.student, s.path.name, str(_size(s.path))) for s in submissions)


def _digest_of(entries: Iterable[tuple[str, str, str]]) -> str:
    h = hashlib.sha256()
    for entry in sorted(entries):
        h.update("\0".join(entry).encode() + b"\n")
    return h.hexdigest()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def write_manifest(
    out: str | Path,
    k: int,
    n: int,
    cohort: list[Submission],
    graded: list[Submission],
    key_file: str | Path | None = None,
) -> Path:
    """OUT/shard.json for shard `k` of `n` of `cohort`, whose part is `graded` (after grading)."""
    out = Path(out)
    files = ["grades.csv"] + ([GRADEBOOK] if (out / GRADEBOOK).exists() else [])
    for s in graded:
        if s.result is not None:
            files.append(str(cache.result_path(out, s).relative_to(out)))
            aid = s.assignment or ""
            for path in (feedback_page(out, s.student, aid), cohort_course.autograded(out, s.student, aid)):
                if path.exists():
                    files.append(str(path.relative_to(out)))
    manifest: dict[str, Any] = {
        "version": VERSION,
        "shard": k,
        "of": n,
        "cohort": cohort_digest(cohort),
        "inputs": inputs_digest(graded),
        "students": sorted({s.student for s in graded}),
        "files": {f: _file_digest(out / f) for f in sorted(set(files))},
    }
    manifest["sig"] = _sign(manifest, cache.signing_key(key_file))
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def _sign(manifest: dict[str, Any], key: bytes) -> str:
    body = json.dumps({k: v for k, v in manifest.items() if k != "sig"}, sort_keys=True, separators=(",", ":"))
    # Domain-separated from the results' signatures, so that neither can pass for the other.
    return hmac.new(key, f"shard manifest\n{body}".encode(), hashlib.sha256).hexdigest()


def _manifest(shard: Path, key: bytes) -> dict[str, Any]:
    path = shard / MANIFEST
    if not path.exists():
        raise Refused(f"{shard} has no shard manifest ({MANIFEST}): grade it with --shard K/N")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Refused(f"{path} cannot be read ({e})") from None
    sig = manifest.get("sig") if isinstance(manifest, dict) else None
    if not isinstance(sig, str) or not hmac.compare_digest(sig, _sign(manifest, key)):
        raise Refused(
            f"{shard} is a foreign shard: its manifest was not signed with this key "
            "(grade every shard and merge with the same --key), or it was changed"
        )
    if manifest.get("version") != VERSION:
        raise Refused(f"{shard} was written by another version of the grader: grade it again")
    return manifest


def check(shards: list[Path], key: bytes) -> list[tuple[Path, dict[str, Any]]]:
    """Each of `shards` with its manifest, in shard order, once every one is genuine, of one cohort,
    there once and all there; Refused saying what is wrong otherwise."""
    given = [(shard, _manifest(shard, key)) for shard in shards]
    _one_split(given)
    _each_once(given)
    for shard, m in given:
        _intact(shard, m)
    return sorted(given, key=lambda pm: int(pm[1]["shard"]))


def _one_split(given: list[tuple[Path, dict[str, Any]]]) -> None:
    first_shard, first = given[0]
    for shard, m in given:
        if m["of"] != first["of"]:
            raise Refused(
                f"{shard} is shard {m['shard']} of {m['of']}, {first_shard} is shard {first['shard']} of "
                f"{first['of']}: every shard must come from one split"
            )
        if m["cohort"] != first["cohort"]:
            raise Refused(
                f"{shard} is a foreign shard: it was cut from other submissions than {first_shard} "
                "(every shard must be graded from the same files)"
            )


def _each_once(given: list[tuple[Path, dict[str, Any]]]) -> None:
    by_k: dict[int, Path] = {}
    for shard, m in given:
        if m["shard"] in by_k:
            raise Refused(f"shard {m['shard']} of {m['of']} is given twice: {by_k[m['shard']]} and {shard}")
        by_k[m["shard"]] = shard
    n = given[0][1]["of"]
    missing = [str(k) for k in range(n) if k not in by_k]
    if missing:
        raise Refused(
            f"shard {', '.join(missing)} of {n} {'is' if len(missing) == 1 else 'are'} missing "
            f"(given: {', '.join(str(k) for k in sorted(by_k))}): grades.csv would lack their students"
        )


def _intact(shard: Path, m: dict[str, Any]) -> None:
    """Every student of the manifest belongs to its shard, and every file is the one it wrote."""
    strays = [s for s in m["students"] if shard_of(s, m["of"]) != m["shard"]]
    if strays:
        raise Refused(f"{shard} holds students of another shard ({', '.join(strays[:3])})")
    for name, digest in m["files"].items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise Refused(f"{shard}: its manifest names a file outside it ({name})")
        if _file_digest(shard / name) != digest:
            # Hand grades count once the shard's own run has read them and signed its gradebook anew.
            again = ": grade the shard again after giving hand grades" if name == GRADEBOOK else ""
            raise Refused(f"{shard / name} is not the file its shard wrote (changed or missing since){again}")


def merge(shards: list[str | Path], out: str | Path, key_file: str | Path | None = None) -> Path:
    """Check `shards` and merge them into `out`: grades.csv, results/ and feedback/ as one run
    over the whole cohort writes them, and one nbgrader course (see `_one_course`). Returns the
    path of grades.csv; Refused if they cannot be."""
    paths = [Path(s) for s in shards]
    if not paths:
        raise Refused("no shards given")
    out = Path(out)
    if any(out.resolve() == p.resolve() for p in paths):
        raise Refused(f"{out} is one of the shards: merge into a folder of its own")
    key = cache.signing_key(key_file)
    checked = check(paths, key)
    for shard, m in checked:  # each result verifies on its own too, as a later run of grade checks it
        for name in m["files"]:
            if name.startswith("results/") and cache.verified(shard / name, key) is None:
                raise Refused(f"{shard / name} does not verify with this key")
    with tempfile.TemporaryDirectory(prefix="merge-") as tmp:
        gradebooks = _gradebooks(checked, Path(tmp))
        rows = _merge_files(checked, out)
        _one_course(out, sorted({row[1] for row in rows if row[1]}), gradebooks)
    (out / MERGED).write_text(json.dumps([{k: m[k] for k in ("shard", "of", "inputs")} for _, m in checked]) + "\n")
    return out / "grades.csv"


def _gradebooks(checked: list[tuple[Path, dict[str, Any]]], tmp: Path) -> list[Path]:
    """A copy in `tmp` of each shard's gradebook, checked against its manifest: the copy is the
    file that was checked, whatever happens to the shard's own meanwhile."""
    copies = []
    for shard, m in checked:
        if GRADEBOOK in m["files"]:
            copy = tmp / f"shard{m['shard']}.db"
            shutil.copyfile(shard / GRADEBOOK, copy)
            if _file_digest(copy) != m["files"][GRADEBOOK]:
                raise Refused(f"{shard / GRADEBOOK} is not the file its shard wrote (changed since)")
            copies.append(copy)
    return copies


def _merge_files(checked: list[tuple[Path, dict[str, Any]]], out: Path) -> list[list[str]]:
    """Copy every shard's files into `out` and write its grades.csv; returns grades.csv's rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    for shard, m in checked:
        with open(shard / "grades.csv", newline="") as f:
            header, *body = list(csv.reader(f))
        if header != output.COLUMNS:
            raise Refused(f"{shard}/grades.csv has the columns {header}, not {output.COLUMNS}")
        rows += body
        for name in m["files"]:
            if name not in ("grades.csv", GRADEBOOK):
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shard / name, out / name)
    # One student's rows are all in one shard, in the order one run writes them: sorting by
    # student alone (a stable sort) puts them where a single run would.
    rows.sort(key=lambda row: row[0])
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(output.COLUMNS)
        writer.writerows(rows)
    return rows


def _one_course(out: Path, aids: list[str], gradebooks: list[Path]) -> None:
    """OUT's nbgrader course: source/ and nbgrader_config.py as one run over `aids` writes them,
    and one gradebook holding every shard's submissions, grades and comments, copied by name (the
    autograded notebooks came with the shards' files)."""
    cohort_course.prepare(out, aids)
    if (out / GRADEBOOK).exists():
        for db in gradebooks:
            cohort_course.merge_gradebook(out, db)
