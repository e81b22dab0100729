"""`report OUT`: one self-contained page of what the class got right and wrong, read from the
output folder of `grade`; the similarity check pairs a renamed copy, not honest variants."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from test_export import write_out

from autograder import cli
from autograder.authoring import samples
from autograder.authoring.bugs import BUGS
from autograder.reports import class_report as report
from autograder.reports import graded
from autograder.reports.graded import Graded

AID = "01_numerical_gradients"

# A distinctive answer (ada), a copy with every name changed (bob), and two honest variants.
ANSWERS = {
    "ada": {
        "central_difference": """def central_difference(f, x, h=1e-5):
    upper = f(x + h)
    lower = f(x - h)
    spread = upper - lower
    return spread / (h + h)
""",
        "numerical_gradient": """def numerical_gradient(f, xs, h=1e-5):
    def bumped(index, delta):
        moved = [value + (delta if k == index else 0.0) for k, value in enumerate(xs)]
        return f(moved)
    return [(bumped(index, h) - bumped(index, -h)) / (h + h) for index in range(len(xs))]
""",
        "gradient_check": """def gradient_check(analytic, numeric, tol=1e-6):
    errors = [0.0 if max(abs(p), abs(q)) == 0 else abs(p - q) / max(abs(p), abs(q)) for p, q in zip(analytic, numeric)]
    largest = max(errors, default=0.0)
    return largest, largest <= tol
""",
    },
    "cy": {
        "central_difference": """def central_difference(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / 2 / h
""",
        "numerical_gradient": """def numerical_gradient(f, xs, h=1e-5):
    out = []
    for i, _ in enumerate(xs):
        up = xs[:]
        down = xs[:]
        up[i] = up[i] + h
        down[i] = down[i] - h
        out.append((f(up) - f(down)) / (2 * h))
    return out
""",
        "gradient_check": """def gradient_check(analytic, numeric, tol=1e-6):
    worst = 0.0
    for i in range(len(analytic)):
        denom = max(abs(analytic[i]), abs(numeric[i]))
        if denom == 0:
            continue
        worst = max(worst, abs(analytic[i] - numeric[i]) / denom)
    return worst, worst <= tol
""",
    },
    "dee": {
        "central_difference": """def central_difference(f, x, h=1e-5):
    forward = f(x + h)
    backward = f(x - h)
    return 0.5 * (forward - backward) / h
""",
        "numerical_gradient": """def numerical_gradient(f, xs, h=1e-5):
    result = [0.0] * len(xs)
    for i in range(len(xs)):
        saved = xs[i]
        xs2 = list(xs)
        xs2[i] = saved + h
        fp = f(xs2)
        xs2[i] = saved - h
        fm = f(xs2)
        result[i] = (fp - fm) / (2 * h)
    return result
""",
        "gradient_check": """def gradient_check(analytic, numeric, tol=1e-6):
    rels = []
    for a, n in zip(analytic, numeric):
        m = max(abs(a), abs(n))
        rels.append(abs(a - n) / m if m else 0.0)
    worst = max(rels) if rels else 0.0
    return worst, worst <= tol
""",
    },
}
RENAMED = {
    "upper": "hi",
    "lower": "lo",
    "spread": "gap",
    "bumped": "nudge",
    "index": "j",
    "delta": "step",
    "moved": "shifted",
    "value": "v",
    "errors": "rel_errs",
    "largest": "top",
    "p, q": "u, w",
    "abs(p)": "abs(u)",
    "abs(q)": "abs(w)",
    "p - q": "u - w",
}


def _renamed(code):
    for old, new in RENAMED.items():
        code = code.replace(old, new)
    return code


ANSWERS["bob"] = {gid: _renamed(code) for gid, code in ANSWERS["ada"].items()}


def _notebook(answers):
    nb = samples.stub(AID)
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    return nb


@pytest.fixture
def cohort(tmp_path):
    """(OUT, submissions folder) of a made-up class of one assignment: the four students above,
    the reference, two catalogued bugs, and the untouched stub."""
    subs = tmp_path / "in"
    notebooks = {student: _notebook(a) for student, a in ANSWERS.items()}
    notebooks |= {"ref": samples.filled(AID), "stub": samples.stub(AID)}
    notebooks |= {f"bug-{b}": samples.filled(AID, b) for b in ("central-divides-by-h", "gradcheck-absolute-error")}
    for student, nb in notebooks.items():
        (subs / student).mkdir(parents=True)
        (subs / student / f"{AID}.ipynb").write_text(json.dumps(nb))
    passed = {"test_central_difference": [2.0, 2.0], "test_central_difference_hidden": [1.0, 1.0]}
    broken = {"test_central_difference": [0.0, 2.0], "test_central_difference_hidden": [0.0, 1.0]}
    rows = [[s, AID, "11", "11", "0", "graded", ""] for s in notebooks if s not in ("stub", "bug-central-divides-by-h")]
    rows += [
        ["stub", AID, "0", "11", "0", "graded", ""],
        ["bug-central-divides-by-h", AID, "8", "11", "0", "graded", ""],
    ]
    results = {(s, AID): passed for s in notebooks}
    results[("bug-central-divides-by-h", AID)] = broken
    results[("stub", AID)] = broken
    out = write_out(tmp_path / "out", rows, results)
    message = "TestFailed: central_difference: divide by 2 * h"
    for student in ("bug-central-divides-by-h", "stub"):
        path = out / "results" / f"{student}__{AID}.json"
        row = json.loads(path.read_text())
        tail = " (the check did not run: it stopped with NotImplementedError)" if student == "stub" else ""
        row["messages"] = {gid: message + tail for gid in broken}
        path.write_text(json.dumps(row))
    return out, subs


def test_a_renamed_copy_is_paired_and_honest_variants_are_not(cohort):
    out, subs = cohort
    answers = report._answers(out, [subs], graded.read(out))
    assert len(answers) == 8
    pairs = report.copied(answers)
    assert [(p.first, p.second) for p in pairs] == [("ada", "bob")], pairs


def test_failures_match_the_catalogue_and_an_unanswered_question_matches_nothing():
    broken = {"test_central_difference": (0.0, 2.0), "test_central_difference_hidden": (0.0, 1.0)}
    bug = Graded("b", AID, 8, 11, 0, "graded", tests=dict(broken))
    assert report.catalogued(bug) == ["central-forward-difference", "central-divides-by-h"]
    tanh = Graded("t", "03_more_ops", 16, 18, 0, "graded", tests={"test_tanh": (0.0, 2.0)})
    tanh.messages = {"test_tanh": "TestFailed: tanh: did you use the input instead of the output?"}
    assert report.catalogued(tanh) == ["tanh-grad-uses-input"]
    tanh.messages["test_tanh"] += " (the check did not run: it stopped with NotImplementedError)"
    assert report.catalogued(tanh) == []


@pytest.mark.kernel
def test_on_the_graded_samples_each_bug_is_recognised_and_no_two_samples_look_copied(graded_samples):
    # Every bundled sample is the reference answer with at most one catalogued slip: the same slip
    # in two notebooks, or a shared reference, is no copy.
    _, out = graded_samples
    rows = graded.read(out)
    by_key = {(g.student, g.assignment): g for g in rows}
    missed = [bug for bug, b in BUGS.items() if bug not in report.catalogued(by_key[(f"bug-{bug}", b.assignment)])]
    assert not missed
    assert not [g for g in rows if g.student in ("reference", "stub") and report.catalogued(g)]
    answers = report._answers(out, [out.parent / "in"], rows)
    assert len(answers) > 60 and report.copied(answers) == []


def _screenshot(page, png, tmp_path):
    """Debian's chromium, headless, draws `page` into `png` as a browser window shows it."""
    browser = shutil.which("chromium")
    assert browser, "chromium is missing: `make system` installs Debian's package"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # run as root in CI; the page is ours and has no script
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,2200",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _pixels(png, colour):
    """How many pixels of the image at `png` have (about) `colour`, "#rrggbb"."""
    from PIL import Image

    want = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    image = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    return int((np.abs(image - want).max(axis=2) <= 8).sum())


def test_the_page_shows_its_plots_in_chromium_and_names_what_it_found(cohort, tmp_path, capsys):
    out, subs = cohort
    assert cli.main(["report", str(out), "--submissions", str(subs)]) == 0
    page = out / "report.html"
    assert str(page) in capsys.readouterr().out
    text = page.read_text()
    assert "<script" not in text and not re.search(r'(src|href)="(?!#)', text)  # self-contained, no code
    assert "central-divides-by-h" in text and "ada</td><td>bob" in text
    assert "divide by 2 * h" in text
    _screenshot(page, tmp_path / "shot.png", tmp_path)
    assert _pixels(tmp_path / "shot.png", report.BAR) > 2000  # the histogram's bars
    assert _pixels(tmp_path / "shot.png", report.PASS) > 2000  # the pass-rate bars
