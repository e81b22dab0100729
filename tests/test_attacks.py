"""An attack corpus, graded as one cohort: a stub of exercise 2 with a few hostile lines in one
answer cell. Each attack must earn nothing over the untouched stub, harm no other student of the
batch (the honest students graded after it on the same worker keep their full marks), and be
flagged for review where its code reaches for the interpreter or the grader."""

import json
import os
import textwrap

import psutil
import pytest

from autograder import grade, notebooks
from autograder.course import ROOT, SOLUTIONS, WORK
from autograder.samples import filled, stub

pytestmark = pytest.mark.kernel

AID = "02_value_backward"
MARK = "attack-corpus-7f3a"  # in the command line of processes an attack leaves behind


def _stub_with(code):
    nb = stub(AID)
    for cell in nb["cells"]:
        if notebooks.grade_id(cell) == "add":
            cell["source"] = textwrap.dedent(code).strip() + "\n\n" + "".join(cell["source"])
    return nb


def _attacks(out):
    """{name: (answer-cell code, flagged?)}: what a student who read the grader would try."""
    secrets = [
        str(SOLUTIONS / f"{AID}.ipynb"),
        str(ROOT / "autograder" / "samples.py"),
        str(WORK),
        str(out),
        "/root/.bashrc",
        "/etc/shadow",
    ]
    return {
        # reading secrets from disk and through imports
        "read-solution": (
            f"""
            import json as _j
            for _p in {secrets!r}:
                try:
                    _src = open(_p).read()
                    print("READ", _p)
                    _nb = _j.loads(_src)
                    for _c in _nb["cells"]:
                        _s = "".join(_c["source"])
                        if "### BEGIN SOLUTION" in _s:
                            exec(_s.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
                except Exception:
                    pass
            """,
            True,
        ),
        "import-repo": (
            f"""
            import sys
            sys.path[:0] = [{str(ROOT)!r}, "/work/main"]
            from autograder.samples import filled
            for _c in filled({AID!r})["cells"]:
                if _c["metadata"].get("nbgrader", {{}}).get("solution"):
                    exec("".join(_c["source"]))
            """,
            True,
        ),
        # in-kernel rewriting and patching
        "rewrite-later-cells": (
            """
            def _forge(lines):
                code = "".join(lines)
                if "Checks(" not in code:
                    return lines
                code = code.replace("check.close(", "check.close_forged(").replace("check.true(", "check.true_forged(")
                return code.splitlines(keepends=True)
            Checks.close_forged = lambda self, actual, expected, message, tol=1e-6, wrong=(): (
                self.close(expected, expected, message, tol)
            )
            Checks.true_forged = lambda self, condition, message: self.true(True, message)
            get_ipython().input_transformers_post.append(_forge)
            """,
            True,
        ),
        "patch-helpers": (
            """
            Checks.close = lambda self, actual, expected, message, tol=1e-6, wrong=(): (
                self._report("close", float(expected), message, tol=tol)
            )
            Checks.true = lambda self, condition, message: self._report("true", True, message)
            """,
            False,
        ),
        "patch-interpreter": (
            """
            import builtins, sys
            _real = builtins.print
            def _print(*args, **kwargs):
                text = " ".join(map(str, args))
                if text.startswith("@@check"):
                    import json
                    record = json.loads(text[8:])
                    record["value"] = True if record["kind"] == "true" else record.get("value") or 1.0
                    text = "@@check " + json.dumps(record)
                _real(text, **kwargs)
            builtins.print = _print
            sys.settrace(lambda *a: None)
            """,
            True,
        ),
        "lying-numbers": (
            """
            class _Liar(float):
                def __eq__(self, other): return True
                def __float__(self): return 1.0
                def __bool__(self): return True
                __hash__ = float.__hash__
            Value.__eq__ = lambda self, other: True
            Value.__hash__ = lambda self: 0
            def __add__(self, other):
                out = Value(_Liar(1.0))
                return out
            Value.__add__ = __add__
            """,
            False,
        ),
        "echo-hidden-tests": (
            """
            get_ipython().events.register("post_run_cell", lambda result: print(result.info.raw_cell))
            """,
            True,
        ),
        # tampering with the gradebook, output and cache; planting files for later kernels
        "tamper-files": (
            f"""
            import os, glob
            for _pattern in [{str(WORK)!r} + "/**/*", {str(out)!r} + "/**/*", "../**/gradebook.db", "/tmp/**/*"]:
                for _p in glob.glob(_pattern, recursive=True):
                    try:
                        open(_p, "w").write("owned")
                    except Exception:
                        pass
            _startup = os.path.expanduser("~/.ipython/profile_default/startup")
            os.makedirs(_startup, exist_ok=True)
            open(_startup + "/00-plant.py", "w").write("raise SystemExit('planted')")
            for _d in ["/tmp", os.path.expanduser("~"), "."]:
                try:
                    open(_d + "/sitecustomize.py", "w").write("raise SystemExit('planted')")
                except Exception:
                    pass
            import site
            for _d in site.getsitepackages():
                try:
                    open(_d + "/zzz-plant.pth", "w").write("import sys; sys.exit(3)")
                except Exception:
                    pass
            """,
            True,
        ),
        # killing or stopping the worker
        "kill-worker": (
            """
            import os, signal
            for _pid in [os.getppid(), 1]:
                for _sig in (signal.SIGSTOP, signal.SIGKILL):
                    try:
                        os.kill(_pid, _sig)
                    except Exception:
                        pass
            try:
                os.kill(-1, signal.SIGKILL)
            except Exception:
                pass
            """,
            True,
        ),
        # runaway processes, memory, output and disk
        "runaway-process": (
            f"""
            import subprocess
            subprocess.Popen(["sleep", "1000", {MARK!r}], start_new_session=True)
            """,
            True,
        ),
        "fork-bomb": (
            """
            import os
            for _ in range(400):
                try:
                    if os.fork() == 0:
                        import time; time.sleep(60); os._exit(0)
                except OSError:
                    break
            """,
            True,
        ),
        "memory-in-two-processes": (
            """
            import multiprocessing as _mp
            def _hog():
                _x = bytearray(1500 * 2**20)
                import time; time.sleep(30)
            for _ in range(2):
                _mp.Process(target=_hog).start()
            _y = bytearray(800 * 2**20)
            """,
            True,
        ),
        "disk-filler": (
            """
            with open("big.bin", "wb") as _f:
                for _ in range(2048):
                    _f.write(b"x" * 2**20)
            """,
            True,
        ),
        # output the grader would have to hold: huge prints, one huge message, more than a notebook may print
        "print-3x250MB": (
            """
            for _ in range(3):
                print("x" * 250 * 2**20)
            """,
            False,
        ),
        "one-huge-message": (
            """
            print("y" * 100 * 2**20, flush=True)
            """,
            False,
        ),
        "print-past-the-notebook-cap": (
            """
            for _ in range(40):
                print("z" * 2**20, flush=True)
            """,
            False,
        ),
        "hidden-marker-in-answer": (
            """
            # ### BEGIN HIDDEN TESTS
            _note = "### END HIDDEN TESTS"
            """,
            False,
        ),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    out = root / "out"
    attacks = _attacks(out)
    inbox = root / "in"
    submitted = {"aa-honest-stub": stub(AID), "zz-honest-reference": filled(AID)}
    submitted.update({f"m-{name}": _stub_with(code) for name, (code, _) in attacks.items()})
    # an honest student whose answer cell prints more than a cell may keep: only that output goes
    chatty = filled(AID)
    for cell in chatty["cells"]:
        if notebooks.grade_id(cell) == "add":
            cell["source"] = "".join(cell["source"]) + "\nprint('w' * 3 * 2**20)\n"
    submitted["zz-honest-chatty"] = chatty
    # honest students graded after the attacks, on whichever worker took them
    submitted.update({f"zz-victim-{k}": filled(AID) for k in range(2)})
    for student, nb in submitted.items():
        path = inbox / student / f"{AID}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(nb))
    subs = grade.grade(grade.find_submissions([inbox]), out, jobs=2, feedback=True)
    # a later batch, in the same output folder: the plants of the first must not reach it
    later = root / "later"
    (later / "zz-later-victim").mkdir(parents=True)
    (later / "zz-later-victim" / f"{AID}.ipynb").write_text(json.dumps(filled(AID)))
    subs += grade.grade(grade.find_submissions([later]), out, jobs=1, feedback=True)
    return {s.student: s for s in subs}, attacks, out


@pytest.mark.parametrize("name", sorted(_attacks("OUT")))
def test_an_attack_earns_nothing_over_the_untouched_stub(corpus, name):
    subs, _, _ = corpus
    attack, stub = subs[f"m-{name}"], subs["aa-honest-stub"]
    assert stub.score == 0 and stub.max_score == 21
    assert attack.score <= stub.score, {k: v for k, v in attack.tests.items() if v[0]}
    assert attack.max_score == stub.max_score or attack.status.startswith("error")


@pytest.mark.parametrize("name", sorted(_attacks("OUT")))
def test_an_attack_is_flagged_for_review_when_it_reaches_for_the_interpreter(corpus, name):
    subs, attacks, _ = corpus
    flagged = "review:" in subs[f"m-{name}"].status or any(n.startswith("review:") for n in subs[f"m-{name}"].notes)
    assert flagged == attacks[name][1], (subs[f"m-{name}"].status, subs[f"m-{name}"].notes)


def test_no_other_student_is_harmed_in_the_batch_or_a_later_one(corpus):
    subs, _, out = corpus
    for student in ["zz-honest-reference", "zz-honest-chatty", "zz-victim-0", "zz-victim-1", "zz-later-victim"]:
        assert subs[student].status == "graded" and subs[student].score == 21, (student, subs[student].status)
    rows = (out / "grades.csv").read_text()
    assert "owned" not in rows and "zz-later-victim" in rows


def test_output_past_the_caps_stops_its_notebook_with_a_clear_status_and_no_worker(corpus):
    subs, _, out = corpus
    assert subs["m-one-huge-message"].status == "error: stopped: the notebook sent a message of more than 32 MB"
    assert (
        subs["m-print-past-the-notebook-cap"].status == "error: stopped: the notebook printed more than 32 MB of output"
    )
    assert subs["m-print-3x250MB"].status.startswith("error: stopped:")  # the message, or its own memory
    logs = "".join(p.read_text() for p in (out / "logs").glob("worker-*.log"))
    assert "of memory and was killed" not in logs and "stopped while grading" not in logs


def test_nothing_an_attack_started_outlives_its_notebook(corpus):
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if MARK in " ".join(p.info["cmdline"] or [])]
    assert not left


def test_no_hidden_test_line_reaches_the_feedback(corpus):
    from test_grading import hidden_lines

    _, _, out = corpus
    page = (out / "feedback" / "m-echo-hidden-tests" / f"{AID}.html").read_text()
    assert not [line for line in hidden_lines(AID) if line in page]
    assert (out / "feedback" / "m-hidden-marker-in-answer" / f"{AID}.html").exists()


def test_the_grader_files_are_untouched(corpus):
    _, _, out = corpus
    assert not any(p.read_bytes() == b"owned" for p in out.rglob("*") if p.is_file())
    assert not any(p.read_bytes() == b"owned" for p in WORK.rglob("*") if p.is_file() and p.stat().st_size == 5)
    assert os.environ.get("MICROGRAD_GRADING") is None
