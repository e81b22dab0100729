"""`report OUT`: what the class got right and wrong, on one self-contained page, OUT/report.html.

Per assignment: a histogram of the scores, the pass rate of each autograded test cell, the
failure messages seen most often, the catalogued mistakes (autograder/authoring/bugs.py) the failures
match, and the pairs of students whose answer cells look copied. Plots are inline SVG and the
page has no script: it opens from a file, offline, and anything a student wrote in it is text.

Copied answers are found with copydetect (winnowed fingerprints of the code with names and
literals normalised, so renaming variables hides nothing); what the stub and the reference
answer contain is boilerplate, so matching a common answer with the reference is not copying.
"""

import html
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from autograder.authoring.bugs import BUGS, CLASSIC
from autograder.course import notebooks
from autograder.course.assignment import assignment
from autograder.course.paths import release_path
from autograder.reports import graded
from autograder.reports.graded import Graded

BAR = "#2f6fb0"  # the histograms
PASS = "#3a9a5b"  # the pass-rate bars
SIMILAR = 0.5  # both answers this much shared (beyond boilerplate) make a pair ...
SHARED_TOKENS = 50  # ... when that is this many tokens: two students who made the same one-line slip are no pair
NOISE, GUARANTEE = 12, 18  # copydetect's k-gram length and the match it never misses, in tokens
TOP_MESSAGES = 10


@dataclass
class Pair:
    assignment: str
    first: str
    second: str
    shared: tuple[float, float]  # the share of each one's answer tokens found in the other's


def write(out: str | Path, submissions: Iterable[str | Path] = ()) -> Path:
    """Write OUT/report.html; answers for the similarity check come from the `submissions`
    folders given to `grade`, else from nbgrader's autograded/ in OUT, if any."""
    out = Path(out)
    rows = graded.read(out)
    answers = _answers(out, list(submissions), rows)
    page = _page(rows, answers)
    path = out / "report.html"
    path.write_text(page)
    return path


# -- the data ---------------------------------------------------------------------------------


# In the verdict of a test whose answer is still the stub's, or that needs one that is
UNANSWERED = ("stopped with NotImplementedError", "stopped with NameError")


def failed(g: Graded) -> set[str]:
    return {gid for gid, (score, most) in g.tests.items() if score < most}


def _visible(gid: str) -> str:
    """The visible test of a hidden one (they test the same thing); a visible one itself."""
    return gid.removesuffix("_hidden")


def catalogued(g: Graded) -> list[str]:
    """The catalogued mistakes that `g`'s failures point at: a test message naming a classic
    mistake's cause, or a bug that breaks the first failing test (visible or hidden) and whose
    broken tests all failed here (later ones may fail too: they use what it tests). An unanswered
    question is no mistake, whatever hint its test's message gives."""
    # A hidden test's verdict names no exception: it is unanswered when its visible test is.
    lost = {
        gid
        for gid in failed(g)
        if not any(u in g.messages.get(t, "") for t in (gid, _visible(gid)) for u in UNANSWERED)
    }
    if not lost:
        return []
    said = " ".join(g.messages.get(gid, "") for gid in lost)
    named = [bug for bug, words in CLASSIC.items() if BUGS[bug].assignment == g.assignment and words in said]
    first = _visible(next(gid for gid in graded.autograded_cells(g.assignment, [g]) if gid in lost))
    shaped = [
        name
        for name, bug in BUGS.items()
        if bug.assignment == g.assignment and bug.breaks <= lost and first in {_visible(b) for b in bug.breaks}
    ]
    return list(dict.fromkeys(named + shaped))


def messages(rows: list[Graded], aid: str) -> list[tuple[int, str, str]]:
    """(how many submissions, test cell, message) of the failure messages of `aid`, most frequent first."""
    counts = Counter(
        (gid, g.messages[gid]) for g in rows if g.assignment == aid for gid in failed(g) if gid in g.messages
    )
    return [(n, gid, text) for (gid, text), n in counts.most_common(TOP_MESSAGES)]


def _answers(out: Path, submissions: list[str | Path], rows: list[Graded]) -> dict[tuple[str, str], str]:
    """{(student, assignment): the code of the student's answer cells} of the graded submissions."""
    wanted = {(g.student, g.assignment) for g in rows if g.counts}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if submissions:
        from autograder.grading.discovery import find_submissions
        from autograder.grading.intake import intake

        for s in intake(find_submissions(submissions)):
            if s.assignment and s.reason == "" and (nb := s.notebook) is not None:
                found[(s.student, s.assignment)] = nb
    else:  # an nbgrader course folder: autograded/STUDENT/ASSIGNMENT/ASSIGNMENT.ipynb
        for student, aid in wanted:
            path = out / "autograded" / student / aid / f"{aid}.ipynb"
            if path.exists():
                found[(student, aid)] = json.loads(path.read_text())
    return {key: answer_code(nb) for key, nb in found.items() if key in wanted}


def answer_code(nb: dict[str, Any]) -> str:
    """The code of a notebook's answer cells, one after the other."""
    return "\n\n".join(
        notebooks.source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code" and notebooks.is_answer(c)
    )


def boilerplate(aid: str) -> list[str]:
    """Code every student may share: the stub's answer cells and the reference answers."""
    found = [answer_code(json.loads(release_path(aid).read_text()))] if release_path(aid).exists() else []
    return found + [answer_code(assignment(aid).notebook)]


def copied(answers: dict[tuple[str, str], str]) -> list[Pair]:
    """Pairs of students whose answers to one assignment share at least `SIMILAR` of their code
    beyond the boilerplate, both ways, and `SHARED_TOKENS` tokens; most similar first."""
    from copydetect import CodeFingerprint, compare_files

    def fingerprint(code: str, skip: list[int]) -> "CodeFingerprint":
        return CodeFingerprint("answer.py", NOISE, GUARANTEE - NOISE + 1, skip, fp=io.StringIO(code))

    pairs = []
    for aid in sorted({aid for _, aid in answers}):
        skip = sorted({h for code in boilerplate(aid) for h in fingerprint(code, []).hashes})
        prints = {s: fingerprint(code, skip) for (s, a), code in sorted(answers.items()) if a == aid}
        students = sorted(prints)
        for i, first in enumerate(students):
            for second in students[i + 1 :]:
                overlap, shared, _ = compare_files(prints[first], prints[second])
                if overlap >= SHARED_TOKENS and min(shared) >= SIMILAR:
                    pairs.append(Pair(aid, first, second, (float(shared[0]), float(shared[1]))))
    return sorted(pairs, key=lambda p: -min(p.shared))


# -- the plots --------------------------------------------------------------------------------


def _svg(fig: "Figure") -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):  # text as text: a tenth of the size
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: without the XML prologue


def histogram(scores: list[float], most: float, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5, 2.6))
    bins = max(1, min(20, int(most) or 1))
    ax.hist(scores, bins=bins, range=(0, most or 1), color=BAR, edgecolor="white")
    ax.set(title=title, xlabel="score", ylabel="students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _svg(fig)


def pass_rates(rates: list[tuple[str, float]], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 0.3 * len(rates) + 0.9))
    names = [gid for gid, _ in rates][::-1]
    ax.barh(names, [100 * r for _, r in rates][::-1], color=PASS)
    ax.set(title=title, xlabel="% of graded submissions passing", xlim=(0, 100))
    ax.tick_params(axis="y", labelsize=8)
    return _svg(fig)


# -- the page ---------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
section { border-top: 1px solid #ccc; margin-top: 2em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.plots svg { max-width: 36em; height: auto; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
"""


def _table(header: list[str], rows: list[list[object]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _assignment(aid: str, rows: list[Graded], pairs: list[Pair], checked: int) -> str:
    mine = [g for g in rows if g.assignment == aid and g.counts]
    errors = sum(1 for g in rows if g.assignment == aid and not g.counts)
    most = max((g.max_score for g in mine), default=0.0)
    ids = graded.autograded_cells(aid, mine)
    rates = [(gid, sum(1 for g in mine if gid in g.tests and gid not in failed(g)) / len(mine)) for gid in ids]
    plots = [histogram([g.score for g in mine], most, f"{aid}: scores")] if mine else []
    if rates:
        plots.append(pass_rates(rates, f"{aid}: test cells"))
    mean = sum(g.score for g in mine) / len(mine) if mine else 0.0
    mistakes = Counter(bug for g in mine for bug in catalogued(g))
    who = {bug: sorted(g.student for g in mine if bug in catalogued(g)) for bug in mistakes}
    return "\n".join(
        [
            f"<section><h2>{html.escape(aid)}</h2>",
            f"<p>{len(mine)} graded, {errors} with errors; mean {mean:.1f} of {most:g}.</p>",
            f'<div class="plots">{"".join(plots)}</div>',
            "<h3>Most frequent failure messages</h3>",
            _table(["submissions", "test cell", "message"], [list(m) for m in messages(rows, aid)]),
            "<h3>Catalogued mistakes the failures match</h3>",
            _table(
                ["mistake", "submissions", "students"],
                [[bug, n, ", ".join(who[bug])] for bug, n in mistakes.most_common()],
            ),
            f"<h3>Answers that look copied ({checked} notebooks compared)</h3>",
            _table(
                ["student", "student", "shared code (each way)"],
                [[p.first, p.second, f"{p.shared[0]:.0%} / {p.shared[1]:.0%}"] for p in pairs],
            ),
            "</section>",
        ]
    )


def _page(rows: list[Graded], answers: dict[tuple[str, str], str]) -> str:
    pairs = copied(answers) if answers else []
    sections = [
        _assignment(
            aid,
            rows,
            [p for p in pairs if p.assignment == aid],
            sum(1 for _, a in answers if a == aid),
        )
        for aid in sorted({g.assignment for g in rows})
    ]
    note = "" if answers else "<p>No answers to compare: pass the submissions folder (--submissions).</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Class report</title>'
        f"<style>{STYLE}</style></head><body><h1>Class report</h1>{note}" + "\n".join(sections) + "</body></html>\n"
    )
