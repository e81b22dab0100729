"""The feedback page is safe to open and bounded, whatever the submission holds.

Crafted notebooks go through the preprocessors configured in nbgrader_setup.nbgrader_config (nbgrader's
GetGrades, which reads the gradebook, replaced by a stand-in) and nbgrader's own feedback
exporter, without a kernel; the page is then parsed with html.parser.
"""

import base64
import json
import time
from html.parser import HTMLParser

import nbformat
import pytest
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from traitlets import Bool

from autograder.course import nbgrader_setup, notebooks
from autograder.worker import feedback

DANGEROUS_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "form",
    "style",
    "link",
    "meta",
    "base",
    "svg",
    "math",
    "input",
    "button",
    "textarea",
    "select",
    "frame",
    "frameset",
    "applet",
    "audio",
    "video",
    "source",
    "template",
    "noscript",
}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background", "srcset"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()


class FakeGrades(Preprocessor):
    """GetGrades without a gradebook: every test passed, no comments."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        meta = notebooks.nbgrader_metadata(cell)
        if meta.get("grade"):
            meta["score"] = meta.get("points", 0)
        if meta.get("solution"):
            meta["comment"] = None
        return cell, resources


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """notebook -> (page, seconds), through the configured chain and nbgrader's feedback template."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    config = nbgrader_setup.nbgrader_config(tmp_path_factory.mktemp("course"))
    converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
    exporter = converter.exporter_class(parent=converter, config=converter.config)
    for name in converter.preprocessors:
        exporter.register_preprocessor(FakeGrades if name.endswith(".GetGrades") else name, enabled=True)

    def run(nb):
        nb = nbformat.reads(json.dumps(nb), as_version=4)  # as nbgrader reads the file
        started = time.monotonic()
        page, _ = exporter.from_notebook_node(
            nb,
            resources={
                "nbgrader": {
                    "notebook": "nb",
                    "assignment": "a",
                    "student": "s",
                    "score": 1,
                    "max_score": 2,
                    "late_penalty": 0,
                }
            },
        )
        return page, time.monotonic() - started

    return run


class Page(HTMLParser):
    """Every element of the page, those after the start of the notebook's cells, and the text."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.elements, self.inside, self.text, self._in_cells = [], [], [], False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))
        if self._in_cells:
            self.inside.append((tag, attrs))
        self._in_cells = self._in_cells or ("id", "notebook-container") in attrs

    def handle_data(self, data):
        if self._in_cells:
            self.text.append(data)


def assert_safe(page, baseline):
    """No active element, handler, script URL or remote source in the page beyond the template's own."""
    parsed = Page(page)
    assert parsed.inside, "the notebook's cells were not found in the page"
    for tag, attrs in parsed.elements:
        where = f"<{tag} {attrs}>"[:300]
        if (tag, attrs) in baseline:
            continue  # the template's own MathJax script and style sheets
        assert tag not in DANGEROUS_TAGS, f"live {tag} element: {where}"
        for name, value in attrs:
            value = "".join(ch for ch in (value or "") if ch > " ").lower()
            assert not name.lower().startswith("on"), f"event handler: {where}"
            assert name.lower() != "style", f"style attribute: {where}"
            if name.lower() in URL_ATTRS:
                assert not value.startswith(("javascript:", "vbscript:", "data:text", "data:image/svg")), where
                if name.lower() != "href":
                    assert value.startswith(("data:image/png;", "data:image/jpeg;", "data:image/gif;")), (
                        f"a source not in the notebook: {where}"
                    )
    return parsed


@pytest.fixture(scope="module")
def baseline(render):
    """The active elements of the page of an empty notebook: what the template itself brings."""
    page, _ = render(new_notebook())
    return [(tag, attrs) for tag, attrs in Page(page).elements if tag in DANGEROUS_TAGS]


def grade_cell(gid, source="", outputs=(), points=1):
    return new_code_cell(
        source,
        outputs=list(outputs),
        metadata={
            "nbgrader": {
                "grade": True,
                "solution": False,
                "locked": True,
                "grade_id": gid,
                "points": points,
                "schema_version": 3,
            }
        },
    )


def answer_cell(gid, source, outputs=()):
    return new_code_cell(
        source,
        outputs=list(outputs),
        metadata={
            "nbgrader": {"grade": False, "solution": True, "locked": False, "grade_id": gid, "schema_version": 3}
        },
    )


def notebook(*cells):
    nb = new_notebook()
    nb.cells = list(cells)
    return nb


HOSTILE_MARKDOWN = """# My answer <script>alert('h1')</script>

hello $x<y$ <script>alert(1)</script> <img src=x onerror=alert(2)> <b onclick=alert(3)>bold</b>
[a link](javascript:alert(4)) [upper](JaVaScRiPt:alert(5)) [entity](&#106;avascript:alert(6))
<a href="javascript:alert(7)">raw link</a> <a href=" jav&#x09;ascript:alert(8)">tab link</a>
<iframe src="https://evil.example/frame"></iframe> <object data="https://evil.example/x"></object>
<embed src="https://evil.example/x"> <form action="https://evil.example"><input name=q></form>
<style>body { display: none }</style> <link rel=stylesheet href="https://evil.example/x.css">
<svg onload=alert(9)><script>alert(10)</script></svg>
<meta http-equiv="refresh" content="0;url=https://evil.example"> <base href="https://evil.example/">
[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxMyk8L3NjcmlwdD4=) <http://example.com/autolink>
[titled](http://example.com "x\\" onmouseover=\\"alert(14)") <div style="background:url(https://evil.example/t.png)">styled</div>
</div></div></div> closing the page's own divs

```python
x = 1 < 2

y = "<script>alert(15)</script>"
```

<script>
alert(16)

</script>
"""
# Parser-confusion payloads: sanitising them may lose the text after them (safe, not pretty).
MUTATION_MARKDOWN = """<math><mtext><table><mglyph><style><img src=x onerror=alert(11)>
<noscript><p title="</noscript><img src=x onerror=alert(12)>"></noscript>
<svg><p><style><img src=x onerror=alert(17)></style></p></svg> <!--><img src=x onerror=alert(18)>-->
<template><script>alert(19)</script></template> <xmp><img src=x onerror=alert(20)></xmp>
"""


def test_script_html_and_svg_outputs_do_not_survive(render, baseline):
    evil = {
        "text/html": "<script>alert('out')</script><img src=x onerror=alert(1)>",
        "image/svg+xml": "<svg onload=alert(1)><script>alert(2)</script></svg>",
        "application/javascript": "alert(3)",
        "text/markdown": "<script>alert(4)</script>",
        "text/plain": "plain",
    }
    nb = notebook(
        new_code_cell(
            "display(x)",
            outputs=[new_output("display_data", data=evil), new_output("execute_result", data=evil, execution_count=1)],
        ),
        answer_cell("add", "x", outputs=[new_output("display_data", data=evil)]),
        grade_cell(
            "test_add",
            "check()",
            outputs=[new_output("display_data", data=evil), new_output("stream", name="stdout", text="verdict\n")],
        ),
    )
    page, _ = render(nb)
    parsed = assert_safe(page, baseline)
    assert "alert" not in "".join(parsed.text) and "plain" not in "".join(parsed.text)
    assert "verdict" in "".join(parsed.text)


def test_hostile_markdown_is_shown_as_text_and_nothing_in_it_is_live(render, baseline):
    nb = notebook(
        new_markdown_cell(HOSTILE_MARKDOWN),
        new_markdown_cell(MUTATION_MARKDOWN),
        new_markdown_cell(
            HOSTILE_MARKDOWN,
            metadata={
                "nbgrader": {  # a hand-graded written answer
                    "grade": True,
                    "solution": True,
                    "locked": False,
                    "grade_id": "writeup",
                    "points": 2,
                }
            },
        ),
    )
    page, _ = render(nb)
    parsed = assert_safe(page, baseline)
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text  # what the student typed, as text
    assert "bold" in text and "hello $x<y$" in text  # formatting and math survive
    assert not [
        attrs
        for tag, attrs in parsed.inside
        if tag == "a" and any(n == "href" and not (v or "").startswith(("http://", "https://", "#")) for n, v in attrs)
    ]
    assert any(tag == "h1" for tag, _ in parsed.inside)
    assert "y = " in text and "closing the page's own divs" in text


def test_remote_images_do_not_load(render, baseline):
    md = (
        "![pixel](https://tracker.example/p.png) ![ref][r] [![in a link](http://t.example/i.gif)](http://x.example)\n"
        "<img src='https://tracker.example/raw.png'> ![svg](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=) "
        "![own](attachment:own.png) ![gone](attachment:missing.png) ![inline](data:image/png;base64," + PNG + ")\n\n"
        "[r]: https://tracker.example/ref.png\n"
    )
    cell = new_markdown_cell(md)
    cell.attachments = {"own.png": {"image/png": PNG}}
    page, _ = render(notebook(cell))
    parsed = assert_safe(page, baseline)
    images = [dict(attrs)["src"] for tag, attrs in parsed.inside if tag == "img"]
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not [attrs for _, attrs in parsed.elements if "tracker" in str(attrs)]
    assert "".join(parsed.text).count("[image not shown") == 5


def test_a_five_megabyte_print_is_cut(render, baseline):
    huge = "x" * 5_000_000 + "\n"
    nb = notebook(
        answer_cell("add", "print(...)", outputs=[new_output("stream", name="stdout", text=huge)]),
        grade_cell(
            "test_add",
            "check()",
            outputs=[
                new_output("stream", name="stdout", text=huge),
                new_output("error", ename="TestFailed", evalue=huge, traceback=[huge]),
            ],
        ),
    )
    page, seconds = render(nb)
    assert_safe(page, baseline)
    assert len(page) < len(render(new_notebook())[0]) + 3 * feedback.TruncateOutputs().max_chars + 10_000
    assert "more characters cut" in page
    assert seconds < 10


def test_images_are_capped(render, baseline):
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000).decode()
    md = " ".join(f"![img {i}](attachment:img{i}.png)" for i in range(50)) + " ![big](attachment:big.png)"
    cell = new_markdown_cell(md)
    cell.attachments = {f"img{i}.png": {"image/png": PNG} for i in range(50)}
    cell.attachments["big.png"] = {"image/png": big}
    figure = new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
    page, _ = render(
        notebook(
            cell,
            answer_cell("plot", "plot()", outputs=[figure] * 50),
            grade_cell("test_plot", "check()", outputs=[figure] * 50),
        )
    )
    parsed = assert_safe(page, baseline)
    assert sum(tag == "img" for tag, _ in parsed.inside) == 5
    assert big not in page
    assert "more than 5 images" in "".join(parsed.text)


def test_the_biggest_image_and_the_whole_notebook_are_bounded(render, baseline):
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000).decode()
    cell = new_markdown_cell("![big](attachment:big.png)")
    cell.attachments = {"big.png": {"image/png": big}}
    filler = "y" * 400_000
    nb = notebook(
        cell,
        *[new_markdown_cell(f"{k} {filler}") for k in range(5)],
        answer_cell("add", "z = 1  # " + filler),
        grade_cell("test_add", "check()"),
    )
    page, _ = render(nb)
    parsed = assert_safe(page, baseline)
    text = "".join(parsed.text)
    assert "larger than 200 kB" in text and big not in page
    assert "The feedback stops here" in text
    assert len(page) < len(render(new_notebook())[0]) + feedback.CapNotebook().max_chars + 50_000


def test_markdown_too_big_to_sanitise_quickly_is_shown_as_text(render, baseline):
    table = "|a|b|\n|-|-|\n" + "|<b>x</b>|y|\n" * 40_000  # minutes in html5lib if formatted
    nested = "<div>" * 3_000 + "deep"
    page, seconds = render(
        notebook(
            new_markdown_cell(table),
            new_markdown_cell(nested),
            *[new_markdown_cell("plain words " * 800) for _ in range(12)],
        )
    )
    text = "".join(assert_safe(page, baseline).text)
    assert "Shown as plain text: longer than 20,000 characters" in text and "|<b>x</b>|y|" in text
    assert "Shown as plain text: more than 1,000 HTML elements" in text and "deep" in text
    assert "Shown as plain text: the notebook's formatted text passed 100,000 characters" in text
    assert seconds < 10


def test_only_the_verdicts_of_test_cells_remain_as_text(render, baseline):
    nb = notebook(
        new_code_cell("print('setup')", outputs=[new_output("stream", name="stdout", text="SETUP-PRINT\n")]),
        answer_cell(
            "add",
            "print(secret)",
            outputs=[
                new_output("stream", name="stdout", text="STUDENT-PRINT\n"),
                new_output("execute_result", data={"text/plain": "STUDENT-RESULT"}, execution_count=3),
                new_output("error", ename="ValueError", evalue="STUDENT-ERROR", traceback=["STUDENT-TRACEBACK"]),
            ],
        ),
        grade_cell(
            "test_add",
            "check()",
            outputs=[new_output("stream", name="stdout", text="\x1b[32m✓ __add__: 3 checks passed\x1b[0m\n")],
        ),
        grade_cell(
            "test_add_hidden",
            "### BEGIN HIDDEN TESTS\nassert hidden_line()\n### END HIDDEN TESTS",
            outputs=[
                new_output(
                    "error",
                    ename="TestFailed",
                    evalue="__add__: <b>other.grad</b> should be 2.0",
                    traceback=["assert hidden_line()  # HIDDEN-SOURCE"],
                ),
                new_output("display_data", data={"text/html": "<b>GRADER-HTML</b>"}),
            ],
        ),
    )
    page, _ = render(nb)
    parsed = assert_safe(page, baseline)
    text = "".join(parsed.text)
    for gone in (
        "SETUP-PRINT",
        "STUDENT-PRINT",
        "STUDENT-RESULT",
        "STUDENT-ERROR",
        "STUDENT-TRACEBACK",
        "HIDDEN-SOURCE",
        "hidden_line",
        "GRADER-HTML",
        "\x1b",
    ):
        assert gone not in text, gone
    assert "✓ __add__: 3 checks passed" in text
    assert "TestFailed: __add__: <b>other.grad</b> should be 2.0" in text  # the message, as text


@pytest.mark.parametrize(
    "marker",
    [
        "### BEGIN HIDDEN TESTS\nmine = 2\n### END HIDDEN TESTS\n",
        "### BEGIN HIDDEN TESTS\nmine = 2\n",
        "### END HIDDEN TESTS\nmine = 2\n",
    ],
)
def test_an_answer_holding_the_hidden_test_marker_keeps_its_source(render, baseline, marker):
    nb = notebook(
        answer_cell("add", "def __add__(self, other):\n    return 1\n" + marker),
        grade_cell(
            "test_add_hidden",
            "# Hidden tests\n### BEGIN HIDDEN TESTS\nsecret_check()\n",  # no END
            outputs=[new_output("stream", name="stdout", text="Hidden tests passed: 4 checks\n")],
        ),
    )
    page, _ = render(nb)
    text = "".join(assert_safe(page, baseline).text)
    assert "mine = 2" in text and "return 1" in text
    assert "secret_check" not in text and "Hidden tests passed: 4 checks" in text


def test_raw_cells_and_metadata_cannot_inject(render, baseline):
    raw = new_raw_cell("<script>alert('raw')</script>", metadata={"raw_mimetype": "text/html", "format": "text/html"})
    tagged = new_code_cell(
        "x = 1", metadata={"tags": ['"><script>alert(1)</script>'], "jupyter": {"source_hidden": True}}
    )
    nb = notebook(raw, tagged)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"x": "</script><script>alert(2)</script>"}}
    nb.metadata["title"] = "</title><script>alert(3)</script>"
    page, _ = render(nb)
    text = "".join(assert_safe(page, baseline).text)
    assert "<script>alert('raw')</script>" in text  # shown as text


def test_metadata_is_reduced_to_what_the_template_needs():
    nb = notebook(
        raw := new_raw_cell("x", metadata={"raw_mimetype": "text/html"}),
        answer_cell("add", "x"),
        new_code_cell("y", metadata={"tags": ["t"], "nbgrader": {"grade_id": "a b"}}),
    )
    raw.metadata["nbgrader"] = {"grade_id": '"><script>', "grade": True}
    nb.metadata.update(widgets={"a": 1}, title="t", colab={"x": 1})
    nb, _ = feedback.KeepNbgraderMetadata().preprocess(nbformat.from_dict(nb), {})
    assert nb.metadata == {"language_info": {"name": "python"}}
    assert [c.metadata for c in nb.cells] == [{}, {"nbgrader": answer_cell("add", "").metadata.nbgrader}, {}]


def test_a_real_notebook_keeps_its_content(render, baseline):
    from autograder.authoring.samples import filled

    nb = filled("02_value_backward")
    page, seconds = render(nb)
    text = "".join(assert_safe(page, baseline).text)
    assert "def __add__(self, other):" in text and "Value.__add__ = __add__" in text
    assert "[image not shown: Open In Colab" in text  # the badge is a remote image
    assert seconds < 5


class Summary(HTMLParser):
    """The names in the page's summary (the list under the score), and whether it ended."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.names, self._in_toc, self._in_link = [], False, False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self._in_toc = self._in_toc or ("id", "toc") in attrs
        self._in_link = self._in_toc and tag == "a"

    def handle_endtag(self, tag):
        self._in_link = False
        self._in_toc = self._in_toc and tag != "ol"

    def handle_data(self, data):
        if self._in_link:
            self.names.append(data)


@pytest.mark.parametrize("aid", ["02_value_backward", "07_capstone"])
def test_a_course_page_names_each_test_shows_the_hints_leaves_out_given_code_and_is_small(render, baseline, aid):
    from autograder.authoring.build import shared_texts
    from autograder.authoring.samples import filled, stub

    nb = filled(aid)
    page, _ = render(nb)
    assert len(page.encode()) <= 150_000, f"{len(page.encode()):,} bytes"
    names = Summary(page).names
    tests = [notebooks.grade_id(c) for c in stub(aid)["cells"] if notebooks.is_test(c)]
    assert len(names) == len([c for c in stub(aid)["cells"] if notebooks.is_graded(c)]) and "Test cell" not in names
    first = "__add__" if aid == "02_value_backward" else "sigmoid"
    assert names[:2] == [f"{first}: visible tests", f"{first}: hidden tests"] and len(tests) >= 16
    parsed = assert_safe(page, baseline)
    text = "".join(parsed.text)
    assert "&lt;details" not in page and "<details>" not in text and "Hint 1" in text
    assert sum(tag == "details" for tag, _ in parsed.inside) >= len(tests) // 2
    for grade_id in ("setup", "save_engine"):
        kept = notebooks.telling_lines(shared_texts()[grade_id]) & notebooks.telling_lines(text)
        assert not kept, f"the given {grade_id} cell is on the page: {sorted(kept)[:3]}"
    answer = next(c for c in nb["cells"] if notebooks.is_answer(c) and c["cell_type"] == "code")
    assert notebooks.telling_lines(notebooks.source(answer)) <= notebooks.telling_lines(text), "the student's code"


def test_the_configured_chain():
    names = nbgrader_setup.nbgrader_config("/tmp/unused").GenerateFeedback.preprocessors
    ours = [n.rsplit(".", 1)[1] for n in names if n.startswith("autograder.worker.feedback.")]
    assert ours == [
        "KeepVerdictsOnly",
        "TruncateOutputs",
        "ClearHiddenTestCells",
        "LeaveOutGivenCode",
        "CapNotebook",
        "SanitizeMarkdown",
        "KeepNbgraderMetadata",
    ]
    assert "nbgrader.preprocessors.ClearHiddenTests" not in names  # it raises on an answer holding the marker
    assert names.index("nbgrader.preprocessors.GetGrades") > names.index(
        "autograder.worker.feedback.KeepNbgraderMetadata"
    )
    assert nbgrader_setup.nbgrader_config("/tmp/unused").HTMLExporter.sanitize_html is True


@pytest.mark.kernel
def test_nbgrader_generate_feedback_end_to_end(tmp_path):
    """A real `generate_feedback` (gradebook, GetGrades, nbgrader's writer) on an autograded
    notebook put in place by hand: no kernel runs, but building the course takes seconds."""
    from nbgrader.api import Gradebook

    from autograder.authoring.samples import filled

    aid = "02_value_backward"
    api = nbgrader_setup.fresh_course(tmp_path, [aid])
    nb = filled(aid)
    nb["cells"].insert(0, new_markdown_cell("<script>alert('md')</script> ![t](https://tracker.example/p.png)"))
    for cell in nb["cells"]:
        if notebooks.grade_id(cell) == "add":
            cell["source"] += "\n### BEGIN HIDDEN TESTS\nmine = 2\n"
            cell["outputs"] = [new_output("display_data", data={"text/html": "<script>alert(1)</script>"})]
        elif notebooks.is_test(cell):
            cell["outputs"] = [new_output("stream", name="stdout", text=f"verdict of {notebooks.grade_id(cell)}\n")]
    dest = tmp_path / "autograded" / "alice" / aid / f"{aid}.ipynb"
    dest.parent.mkdir(parents=True)
    dest.write_text(json.dumps(nb))
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "micrograd") as gb:
        gb.add_student("alice")
        gb.add_submission(aid, "alice")
    result = api.generate_feedback(aid, "alice", force=True)
    assert result["success"], result.get("log")
    page = (tmp_path / "feedback" / "alice" / aid / f"{aid}.html").read_text()
    parsed = Page(page)
    text = "".join(parsed.text)
    assert "mine = 2" in text and "verdict of test_add_hidden" in text
    assert "<script>alert('md')</script>" in text and "alert(1)" not in text
    assert not [attrs for _, attrs in parsed.elements if "tracker" in str(attrs)]
    assert sum(tag == "script" for tag, _ in parsed.elements) == 2  # the template's MathJax, nothing else
    assert "Score:" in page
