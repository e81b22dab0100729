"""An attack corpus, graded as one cohort: a stub of exercise 2 with a few hostile lines in one
answer cell (or in a cell of its own). Each attack must earn nothing over the untouched stub, harm
no other student of the batch (the honest students graded after it on the same worker keep their
full marks), and be flagged for review where its code reaches for the interpreter or the grader.
Beside them, in the same run: files made to stop the whole batch, and a file that poses as another
student."""

import csv
import json
import os
import shutil
import textwrap
from html.parser import HTMLParser

import psutil
import pytest

from autograder.authoring.bugs import BUGS
from autograder.authoring.samples import filled, stub
from autograder.course import notebooks
from autograder.course.paths import ROOT, SOLUTIONS, WORK, assignments
from autograder.grading import discovery, grade

pytestmark = pytest.mark.kernel

AID = "02_value_backward"
CAPSTONE = "07_capstone"
MARK = "attack-corpus-7f3a"  # in the command line of processes an attack leaves behind


# One combined forger, added to every catalogued bug and to every untouched stub: it patches the
# kit's checks to hand over any expected value or bound they are given, rewrites every report on
# its way out through a print of its own, prints report lines for the checks of a test cell that
# stopped early, and binds PyTorch so that test cells compute their expected values with it.
FORGER = """
# what a student who has read the grader adds to an answer cell to forge its checks
import ast as _fast
import json as _fjson

try:  # a PyTorch pass-through: a bound `torch` makes the test cells compute expected values with it
    import torch as _ftorch

    torch = _ftorch
except Exception:
    pass
_freal_print = print
_fguess = {"close": 0.0, "equal": True, "true": True, "below": -1e300, "above": 1e300, "done": None}


def _fforged(kind, value, expected=None, bound=None):
    if kind in ("close", "equal") and expected is not None:
        return expected if not isinstance(expected, bool) or kind == "equal" else float(expected)
    if kind == "below" and isinstance(bound, (int, float)):
        return bound - 1.0
    if kind == "above" and isinstance(bound, (int, float)):
        return bound + 1.0
    return value if value is not None and kind not in ("true",) else _fguess[kind]


def print(*args, **kwargs):  # rewrites every report on its way out
    text = " ".join(map(str, args))
    if text.startswith("@@check "):
        record = _fjson.loads(text[8:])
        if record["kind"] != "done":
            record["value"] = _fforged(record["kind"], record["value"], bound=record.get("bound"))
        text = "@@check " + _fjson.dumps(record)
    _freal_print(text, **kwargs)


def _freport(self, kind, value, message="", **extra):
    record = {"name": self.name, "n": self.count, "kind": kind, "value": value, "message": message, **extra}
    print("@@check " + _fjson.dumps(record))
    self.count += 1


def _fcheck(kind):
    def check(self, actual=None, expected=None, message="", *rest, **kw):
        if kind in ("below", "above"):
            return _freport(self, kind, _fforged(kind, None, bound=expected))
        return _freport(self, kind, _fforged(kind, actual if isinstance(actual, (int, float)) else None, expected))

    return check


for _fkind in ("close", "equal", "true", "below", "above"):
    setattr(Checks, _fkind, _fcheck(_fkind))
Checks._report = _freport


def _fprint_missing(result):
    # after a cell that stopped early (a stub's test), report every check of its source
    try:
        calls = [n.func.attr for n in _fast.walk(_fast.parse(result.info.raw_cell))
                 if isinstance(n, _fast.Call) and isinstance(n.func, _fast.Attribute)
                 and isinstance(n.func.value, _fast.Name) and n.func.value.id == "check"]
    except Exception:
        return
    if not calls or result.error_in_exec is None:
        return
    name = next((c.name for c in list(globals().values()) if isinstance(c, Checks)), "")
    for n, kind in enumerate(k for k in calls if k != "done"):
        print("@@check " + _fjson.dumps({"name": name, "n": n, "kind": kind, "value": _fguess[kind], "message": ""}))
    print("@@check " + _fjson.dumps({"name": name, "n": len(calls) - 1, "kind": "done", "value": None, "message": ""}))


get_ipython().events.register("post_run_cell", _fprint_missing)
"""


def _forged(nb):
    """`nb` with FORGER at the top of its first answer cell."""
    first = next(c for c in nb["cells"] if c["cell_type"] == "code" and notebooks.is_answer(c))
    first["source"] = FORGER + "\n" + notebooks.source(first)
    return nb


def _unforged_scores():
    """{(student, assignment): score} of the bundled samples, as pinned."""
    rows = csv.DictReader((ROOT / "tests" / "sample_grades.csv").open())
    return {(r["student"], r["assignment"]): float(r["score"]) for r in rows}


ADDED = "added-cell-"  # an attack whose code is a cell of its own, added after the answer to `add`


def _stub_with(code, added=False):
    nb = stub(AID)
    code = textwrap.dedent(code).strip()
    for k, cell in enumerate(nb["cells"]):
        if notebooks.grade_id(cell) == "add":
            if added:
                nb["cells"].insert(k + 1, {"cell_type": "code", "metadata": {}, "outputs": [], "source": code})
            else:
                cell["source"] = code + "\n\n" + "".join(cell["source"])
            break
    return nb


def _attacks(out):
    """{name: (answer-cell code, flagged?)}: what a student who read the grader would try."""
    secrets = [
        str(SOLUTIONS / f"{AID}.ipynb"),
        str(ROOT / "autograder" / "authoring" / "samples.py"),
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
        # The module's path as the cohort was pinned (tests/attack_grades.csv holds the review note
        # that names it); the secrets above name the module where it lives now.
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
            Rng.random = lambda self: 0.5
            """,
            True,
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
            True,
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
        # the IPython shell, and the modules a locked cell imported, by ways that name neither
        "ipython-shell": (
            f"""
            exit._ip.events.register("post_run_cell", lambda result: print(result.info.raw_cell))
            quit._ip.system("sleep 1000 {MARK} &")
            """,
            True,
        ),
        "locked-modules": (
            f"""
            for _p in {secrets[:2]!r}:
                try:
                    print(_json.codecs.open(_p).read()[:100])
                except Exception:
                    pass
            vars(_os)["system"]("sleep 1000 {MARK} &")
            """,
            True,
        ),
        "dunder-pieces": (
            """
            _a = "_" * 2
            _leak = ("{0.close." + _a + "glo" + "bals" + _a + "}").format(Checks)
            """,
            True,
        ),
        "display-raw": (
            """
            for _k in range(8):
                _forged = '@@check {"name": "__add__", "n": %d, "kind": "true", "value": true}' % _k
                display({"text/plain": _forged}, raw=True)
            """,
            True,
        ),
        "shadow-builtins": (
            """
            def isinstance(obj, cls):
                return True
            def print(*args, **kwargs):
                pass
            """,
            True,
        ),
        ADDED + "os-system": (
            f"""
            import os
            os.system("sleep 1000 {MARK} &")
            """,
            True,
        ),
        ADDED + "honest-helper": (
            """
            def as_value(x):
                return x if isinstance(x, Value) else Value(x)
            """,
            False,
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
        # HTML and script for the instructor's browser, where formgrader shows the notebook
        "html-for-the-instructor": (
            """
            class _Shown:
                def _repr_html_(self):
                    return "<script>document.title = 'PWNED'</script><img src=x onerror=\\"document.title = 'PWNED'\\">"

                def _repr_svg_(self):
                    return "<svg onload=\\"document.title = 'PWNED'\\"></svg>"

                def _repr_javascript_(self):
                    return "document.title = 'PWNED'"

            display(_Shown())
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
    submitted.update({f"m-{name}": _stub_with(code, name.startswith(ADDED)) for name, (code, _) in attacks.items()})
    submitted.update(_batch_stoppers())
    # an honest student whose answer cell prints more than a cell may keep: only that output goes
    chatty = filled(AID)
    for cell in chatty["cells"]:
        if notebooks.grade_id(cell) == "add":
            cell["source"] = "".join(cell["source"]) + "\nprint('w' * 3 * 2**20)\n"
    submitted["zz-honest-chatty"] = chatty
    # the same attack in the student's own prose
    submitted["m-html-for-the-instructor"]["cells"].append(
        {"cell_type": "markdown", "metadata": {}, "source": MARKDOWN_ATTACK}
    )
    submitted["m-html-for-the-instructor"]["cells"].append(
        {"cell_type": "raw", "metadata": {"raw_mimetype": "text/html"}, "source": MARKDOWN_ATTACK}
    )
    # honest students graded after the attacks, on whichever worker took them
    submitted.update({f"zz-victim-{k}": filled(AID) for k in range(2)})
    for student, nb in submitted.items():
        path = inbox / student / f"{AID}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(nb if isinstance(nb, str) else json.dumps(nb))
    # an honest answer that imports torch: at grading it gets the stand-in, and full marks
    honest_torch = filled(CAPSTONE)
    for cell in honest_torch["cells"]:
        if notebooks.grade_id(cell) == "torch_grads":
            cell["source"] = "import torch\n\n" + notebooks.source(cell)
    (inbox / "zz-honest-imports-torch").mkdir()
    (inbox / "zz-honest-imports-torch" / f"{CAPSTONE}.ipynb").write_text(json.dumps(honest_torch))
    forged = {(f"f-stub-{aid}", aid): stub(aid) for aid in assignments()}
    forged.update({(f"f-bug-{bug}", b.assignment): filled(b.assignment, bug) for bug, b in BUGS.items()})
    for (student, aid), nb in forged.items():
        path = inbox / student / f"{aid}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(_forged(nb)))
    subs = grade.grade(discovery.find_submissions([inbox]) + _lms_download(root), out, jobs=2, feedback=True)
    shutil.copy(out / "grades.csv", root / "first-grades.csv")  # the later batch writes its own
    # a later batch, in the same output folder: the plants of the first must not reach it
    later = root / "later"
    (later / "zz-later-victim").mkdir(parents=True)
    (later / "zz-later-victim" / f"{AID}.ipynb").write_text(json.dumps(filled(AID)))
    subs += grade.grade(discovery.find_submissions([later]), out, jobs=1, feedback=True)
    return {s.student: s for s in subs}, attacks, out


MARKDOWN_ATTACK = "Done.<script>document.title = 'PWNED'</script><img src=x onerror=\"document.title = 'PWNED'\">"


def _batch_stoppers():
    """Files that once stopped grading for the whole class: {student: notebook, or raw text}."""
    list_id, number_in_source = stub(AID), stub(AID)
    for cell in list_id["cells"]:
        if notebooks.grade_id(cell) == "add":
            cell["metadata"]["nbgrader"]["grade_id"] = ["add"]
    next(c for c in number_in_source["cells"] if c["cell_type"] == "code")["source"] = ["x = 1\n", 5]
    return {
        "m-stop-nested-json": "[" * 50_000 + "]" * 50_000,
        "m-stop-list-grade-id": list_id,
        "m-stop-number-in-source": number_in_source,
        "m-stop-long-sum": _stub_with("_total = " + " + ".join(["1"] * 1200)),
    }


def _lms_download(root):
    """An LMS download, graded with a roster: bob's work, and alice's copy of a file named like his
    (once, the loose file's name made it bob's, newer than his own, and bob got 0)."""
    folder = root / "lms"
    folder.mkdir()
    (root / "roster.csv").write_text("student,lms_id,name\nzz-bob,2222,Bob B\nm-alice,1111,Alice A\n")
    (folder / f"bbob_2222_901_{AID}.ipynb").write_text(json.dumps(filled(AID)))
    impostor = folder / f"aalice_1111_902_Bob_{AID} (1).ipynb"
    impostor.write_text(json.dumps(stub(AID)))
    os.utime(impostor, (os.path.getmtime(folder) + 100,) * 2)  # newer than bob's
    return discovery.find_submissions([folder], roster=root / "roster.csv")


def test_an_answer_that_imports_torch_gets_the_stand_in_and_full_marks(corpus):
    subs, _, _ = corpus
    honest = subs["zz-honest-imports-torch"]
    assert honest.status == "graded" and honest.score + honest.pending == honest.max_score, honest.tests


def test_the_forger_scores_nothing_on_an_untouched_stub(corpus):
    subs, _, _ = corpus
    for aid in assignments():
        forged = subs[f"f-stub-{aid}"]
        assert forged.score == 0, (aid, {k: v for k, v in forged.tests.items() if v[0]})


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_forger_lifts_no_catalogued_bug(corpus, bug):
    subs, _, _ = corpus
    forged, unforged = subs[f"f-bug-{bug}"], _unforged_scores()[(f"bug-{bug}", BUGS[bug].assignment)]
    assert forged.score <= unforged, {k: v for k, v in forged.tests.items() if v[0] < v[1]}


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
    for student in [
        "zz-honest-reference",
        "zz-honest-chatty",
        "zz-victim-0",
        "zz-victim-1",
        "zz-later-victim",
        "zz-bob",
    ]:
        assert subs[student].status == "graded" and subs[student].score == 21, (student, subs[student].status)
    rows = (out / "grades.csv").read_text()
    assert "owned" not in rows and "zz-later-victim" in rows


def test_the_attack_cohort_keeps_its_grades_byte_for_byte(corpus):
    """tests/attack_grades.csv is the cohort's grades.csv as pinned before the grader's modules were
    rearranged: a change of layout must not change a byte of it. Regenerate it only when an attack,
    the points or the tests of a notebook change, on purpose."""
    _, _, out = corpus
    assert (out.parent / "first-grades.csv").read_bytes() == (ROOT / "tests" / "attack_grades.csv").read_bytes()


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


@pytest.mark.parametrize(
    "student,status",
    [
        ("m-stop-nested-json", "error: not a readable notebook: nested deeper than"),
        ("m-stop-list-grade-id", "error: not a readable notebook: in cell"),
        ("m-stop-number-in-source", "error: not a readable notebook: in cell"),
        ("m-stop-long-sum", "review: answer cell add is too deeply nested to review"),
    ],
)
def test_a_file_made_to_stop_the_batch_gets_its_own_row(corpus, student, status):
    subs, _, out = corpus
    assert subs[student].status.startswith(status) and subs[student].score == 0, subs[student].status
    rows = (out.parent / "first-grades.csv").read_text()
    assert f"\n{student}," in rows and "\nzz-victim-1,02_value_backward,21,21,0,graded," in rows


def test_a_file_named_like_another_students_is_its_senders(corpus):
    subs, _, _ = corpus
    assert subs["zz-bob"].score == 21 and subs["zz-bob"].status == "graded"
    assert subs["m-alice"].score == 0 and "superseded" not in subs["zz-bob"].status


def test_a_cell_the_student_added_is_reviewed_and_an_honest_one_runs_unflagged(corpus):
    subs, _, _ = corpus
    assert any(n.startswith("review: cell ") and "uses os" in n for n in subs[f"m-{ADDED}os-system"].notes)
    assert subs[f"m-{ADDED}honest-helper"].status == "graded"


class _LiveCode(HTMLParser):
    """The scripts and event handlers of a page that carry the attack's mark."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        self.found += [f"<{tag} {k}=...>" for k, v in attrs if k.startswith("on") and "PWNED" in (v or "")]
        self.found += [f"<{tag} {k}=javascript:...>" for k, v in attrs if "javascript:" in (v or "").lower()]

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "PWNED" in data:
            self.found.append(f"<script>{data[:60]}")


def test_no_html_or_script_of_a_student_runs_in_formgrader(corpus):
    """formgrader renders the autograded notebooks of OUT's course unsanitised by default: OUT's
    copies keep only text and image outputs, and OUT's configuration sanitises the rest."""
    from nbconvert import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config.loader import PyFileConfigLoader

    subs, _, out = corpus
    assert subs["m-html-for-the-instructor"].status == "graded"
    kept = json.loads((out / "autograded" / "m-html-for-the-instructor" / AID / f"{AID}.ipynb").read_text())
    assert any("Done." in notebooks.source(c) for c in kept["cells"] if c["cell_type"] == "markdown")  # the prose
    mimes = {m for c in kept["cells"] for o in c.get("outputs", []) for m in o.get("data", {})}
    assert mimes <= {"text/plain", "image/png", "image/jpeg"}, mimes
    config = PyFileConfigLoader("nbgrader_config.py", path=str(out)).load_config()
    config.HTMLExporter.template_name = "formgrade"  # as formgrader configures its exporter
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": AID, "notebook_id": AID, "submission_id": "x", "index": 0, "total": 1}
    resources |= {"base_url": "", "student": "m", "last_name": "", "first_name": "", "notebook_path": "x"}
    html, _ = HTMLExporter(config=config).from_filename(
        str(out / "autograded" / "m-html-for-the-instructor" / AID / f"{AID}.ipynb"), resources=resources
    )
    page = _LiveCode()
    page.feed(html)
    assert page.found == []


# A `__neg__` whose gradient never reaches `a`: honest, it fails test_neg. Each forger prints the
# report line of test_neg's gradient check with the number it should see (plain calculus) and
# keeps the kit's own line of that check from being read: by stopping the cell before it, or by
# printing the start of a line just before it, so that the kit's report runs into it.
LEAF_NEG = """
_calls = [0]


def __neg__(self):
    out = Value(-self.data)
    _calls[0] += 1
    out.first = _calls[0] == 1  # the visible test of __neg__
    return out


Value.__neg__ = __neg__
"""
FORGED_GRAD = """print('@@check {"n": 2, "kind": "close", "value": -1.0}')"""
CRASH_FORGER_NEG = LEAF_NEG.replace(
    "    return out\n",
    f"""    if out.first:
        print('@@check {{"n": 0, "kind": "equal", "value": "Value"}}')
        print('@@check {{"n": 1, "kind": "close", "value": %r}}' % out.data)
        {FORGED_GRAD}
        print('@@check {{"n": 3, "kind": "done", "value": null}}')
        raise ValueError("stop the cell")
    return out
""",
)
GLUE_BACKWARD = f"""
    if getattr(self, "first", False):
        {FORGED_GRAD}
        print("@@check ", end="")
"""


def _neg_attack(neg, backward_start=""):
    nb = filled(AID)
    for cell in nb["cells"]:
        if notebooks.grade_id(cell) == "neg":
            cell["source"] = neg
        if notebooks.grade_id(cell) == "backward" and backward_start:
            # after the docstring's line, the first that ends with its closing quotes
            cell["source"] = notebooks.source(cell).replace('"""\n', '"""\n' + backward_start.lstrip("\n"), 1)
    return nb


def test_reports_printed_for_a_check_whose_own_report_is_kept_from_the_grader_earn_nothing(tmp_path):
    inbox = tmp_path / "in"
    submitted = {
        "honest-leaf": _neg_attack(LEAF_NEG),
        "crash-forger": _neg_attack(CRASH_FORGER_NEG),
        "glue-forger": _neg_attack(LEAF_NEG, GLUE_BACKWARD),
    }
    for student, nb in submitted.items():
        (inbox / student).mkdir(parents=True)
        (inbox / student / f"{AID}.ipynb").write_text(json.dumps(nb))
    subs = {s.student: s.result for s in grade.grade(discovery.find_submissions([inbox]), tmp_path / "out", jobs=1)}
    honest = subs["honest-leaf"]
    assert honest is not None and honest.tests["test_neg"].score == 0 and honest.score < honest.max_score
    for forger in ("crash-forger", "glue-forger"):
        result = subs[forger]
        assert result is not None and result.tests["test_neg"].score == 0, (forger, result)
        assert result.score == honest.score, forger
