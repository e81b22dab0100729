"""Feedback pages that help the student, show no hidden test and are safe to open.

`generate_feedback` renders the autograded notebook to HTML through the preprocessors listed in
`c.GenerateFeedback.preprocessors` (course.nbgrader_config). A submission is hostile, so these,
in this order, make the page safe and bounded:

- `KeepVerdictsOnly`: nothing the student's code printed or displayed goes back to the student.
  Every output of every code cell that is not a test cell goes; a test cell keeps only the
  grader's verdict, as plain text (stream text; an error's name and message, not its traceback).
- `TruncateOutputs`: each text output at most `max_chars` characters.
- `ClearHiddenTestCells`: nbgrader's ClearHiddenTests, for test cells only, and never raising:
  an answer cell that contains the hidden-test marker keeps its source and the page is written.
- `LeaveOutGivenCode`: the course's own code (the checks kit, a given class, a test's code) is
  left out, each such cell cut to one line that names it: the page shows the student's code and
  the verdicts, and stays small.
- `CapNotebook`: all cells' text together at most `max_chars`; the rest is cut, with a note.
- `SanitizeMarkdown`: markdown (and raw) cells rendered here and sanitised with nbconvert's
  SanitizeHTML: raw HTML is shown as text, links only to http(s)/mailto, images only from the
  notebook itself (attachments or data: URLs), at most `max_images` of at most `max_image_bytes`;
  remote images become text, so the page loads nothing a student chose. A cell too big or too
  nested to sanitise quickly is shown as plain text.
- `KeepNbgraderMetadata`: cell and notebook metadata reduced to what the feedback template needs,
  plus the name of each graded cell for the page's summary ("__add__: visible tests").
"""

import base64
import binascii
import html
import re
import secrets
from collections.abc import Callable
from typing import Any

from nbconvert.filters.ansi import strip_ansi
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool, Integer, List, Unicode

from autograder.course.collapsed import COLLAPSED
from autograder.course.notebooks import grade_id, is_locked, is_test, nbgrader_metadata

Resources = dict[str, Any]
# nbformat and nbconvert carry no type hints: what this module calls of theirs, typed.
_node: Callable[..., NotebookNode] = NotebookNode
_strip_ansi: Callable[[str], str] = strip_ansi
_each_cell: Callable[[Preprocessor, NotebookNode, Resources], tuple[NotebookNode, Resources]] = Preprocessor.preprocess
_sanitizer: Callable[..., SanitizeHTML] = SanitizeHTML


def _text(value: object) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value if value is not None else "")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _plain(text: object) -> str:
    """Text without ANSI escapes or control characters (a verdict is plain text)."""
    return _CONTROL.sub("", _strip_ansi(_text(text)))


class KeepVerdictsOnly(Preprocessor):
    """Remove every output of a code cell that is not a test cell; keep a test cell's stream and
    error outputs only (`shown`)."""

    enabled = Bool(True)  # a Preprocessor that is not enabled is silently skipped

    def preprocess_cell(self, cell: NotebookNode, resources: Resources, index: int) -> tuple[NotebookNode, Resources]:
        if cell.cell_type != "code":
            return cell, resources
        if not isinstance(cell.get("execution_count"), int):
            cell.execution_count = None
        kept = [shown(out) for out in cell.get("outputs", [])] if is_test(cell) else []
        cell.outputs = [out for out in kept if out is not None]
        return cell, resources


def shown(out: NotebookNode) -> NotebookNode | None:
    """A test cell's output as its feedback page shows it: a stream or an error, as plain text, an
    error as its name and message (its traceback may quote hidden tests); None for any other."""
    kind = out.get("output_type")
    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return _node(output_type="stream", name=name, text=_plain(out.get("text")))
    if kind == "error":
        ename, evalue = _plain(out.get("ename")), _plain(out.get("evalue"))
        # The template shows an error through its traceback lines: one line, the verdict.
        traceback = [f"{ename}: {evalue}" if evalue else ename]
        return _node(output_type="error", ename=ename, evalue=evalue, traceback=traceback)
    return None


class TruncateOutputs(Preprocessor):
    """Cut each text output to `max_chars`: nbgrader's own limit counts lines, and a single
    printed line of megabytes would otherwise land whole in the feedback page."""

    enabled = Bool(True)
    max_chars = Integer(10_000).tag(config=True)

    def _cut(self, text: object) -> str:
        text = _text(text)
        if len(text) <= self.max_chars:
            return text
        return text[: self.max_chars] + f"\n... [{len(text) - self.max_chars} more characters cut]\n"

    def preprocess_cell(self, cell: NotebookNode, resources: Resources, index: int) -> tuple[NotebookNode, Resources]:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = self._cut(output["text"])
            if output.get("output_type") == "error":
                output["ename"] = self._cut(output.get("ename"))
                output["evalue"] = self._cut(output.get("evalue"))
                output["traceback"] = [self._cut("\n".join(map(_text, output.get("traceback", []))))]
            for mime, value in output.get("data", {}).items():
                if isinstance(value, (str, list)) and (mime.startswith("text/") or mime.endswith("json")):
                    output["data"][mime] = self._cut(value)
        return cell, resources


class ClearHiddenTestCells(ClearHiddenTests):  # type: ignore[misc]  # nbgrader has no type hints
    """nbgrader's ClearHiddenTests for test cells only. Its own version looks for the marker in
    every cell: an answer containing `### BEGIN HIDDEN TESTS` lost its text after the marker, or,
    not being a grade cell, stopped the whole feedback with a RuntimeError. A test cell whose
    marker has no END loses everything after BEGIN instead of raising."""

    # nbconvert configures this for every preprocessor; nbgrader's base class forgot to accept it
    display_data_priority = List(Unicode()).tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: Resources, index: int) -> tuple[NotebookNode, Resources]:
        if not is_test(cell):
            return cell, resources
        cell.source = _text(cell.source)
        try:
            self._remove_hidden_test_region(cell)
        except RuntimeError:  # no END, or nested BEGIN: hide everything from the first BEGIN on
            lines = cell.source.split("\n")
            first = next(i for i, line in enumerate(lines) if self.begin_test_delimeter in line)
            cell.source = "\n".join(lines[:first])
        return cell, resources


class LeaveOutGivenCode(Preprocessor):
    """The course's code, reprinted on every page, is left out: a given cell (the checks kit, the
    save cell, a given class ...) becomes one line that names it, a test cell keeps its first line
    (which names what it tests) above its verdict, and the notes that say to run a cell go. The
    student's own cells stay whole."""

    enabled = Bool(True)

    def preprocess(self, nb: NotebookNode, resources: Resources) -> tuple[NotebookNode, Resources]:
        notes = {note for _, note in COLLAPSED.values()}
        nb.cells = [c for c in nb.cells if not (c.cell_type == "markdown" and _text(c.source) in notes)]
        for cell in nb.cells:
            if cell.cell_type != "code" or not is_locked(cell):
                continue
            if is_test(cell):
                first = next((line for line in _text(cell.source).splitlines() if line.strip()), "")
                cell.source = f"{first}\n# (the test's code is in your notebook)"
            else:
                title = (COLLAPSED.get(grade_id(cell)) or (None,))[0] or "Given code"
                cell.source = f"# {title}: the course's code, in your notebook, not on this page"
        return nb, resources


class CapNotebook(Preprocessor):
    """All cells' text (sources and outputs) at most `max_chars` characters together: the cell
    where the budget runs out is cut, a note says so, and the cells after it are left out."""

    enabled = Bool(True)
    max_chars = Integer(1_000_000).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Resources) -> tuple[NotebookNode, Resources]:
        left = self.max_chars
        for i, cell in enumerate(nb.cells):
            cell.source = _text(cell.get("source", ""))
            size = len(cell.source) + sum(_size(out) for out in cell.get("outputs", []))
            if size <= left:
                left -= size
                continue
            cell.source = cell.source[:left]
            left -= len(cell.source)
            kept: list[NotebookNode] = []
            for out in cell.get("outputs", []):
                if _size(out) <= left:
                    kept.append(out)
                    left -= _size(out)
                elif out.get("output_type") == "stream" and left > 0:
                    out["text"] = _text(out.get("text"))[:left]
                    kept.append(out)
                    left = 0
                elif out.get("output_type") == "error":
                    out["evalue"] = _text(out.get("evalue"))[: max(left, 0)]
                    out["traceback"] = [f"{_text(out.get('ename'))}: {out['evalue']}"]
                    kept.append(out)
                    left = 0
            if cell.cell_type == "code":
                cell.outputs = kept
            note = _node(
                cell_type="markdown",
                metadata=_node(),
                source=(
                    f"**The feedback stops here**: the notebook is longer than {self.max_chars:,} characters, "
                    f"so the rest of this cell and the {len(nb.cells) - i - 1} cells after it are not shown."
                ),
            )
            nb.cells = nb.cells[: i + 1] + [note]
            break
        return nb, resources


def _size(output: NotebookNode) -> int:
    """Characters of text in one output."""
    texts = [output.get("text"), output.get("ename"), output.get("evalue"), *output.get("traceback", [])]
    texts += [v for v in output.get("data", {}).values() if isinstance(v, (str, list))]
    return sum(len(_text(t)) for t in texts if t is not None)


# -- markdown ---------------------------------------------------------------------------------

ALLOWED_TAGS = [
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
]
_CLASS = re.compile(r"^(highlight|[a-z]{1,3}[0-9]?)$")  # Pygments' token classes, for code blocks
_IMAGE_MIME = ("image/png", "image/jpeg", "image/gif")  # never SVG: it can carry script
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if tag == "a":
        return name in ("href", "title")  # bleach then keeps only http, https, mailto and relative URLs
    if tag == "abbr":
        return name == "title"
    if tag == "ol":
        return name == "start" and value.isdigit()
    if name == "class" and tag in ("span", "div", "pre", "code"):
        return all(_CLASS.match(c) for c in value.split())
    return False


class _Images:
    """The images of one notebook: at most `count` of at most `size` bytes each, from the
    notebook itself only."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size, self.used = count, size, 0
        nonce = secrets.token_hex(12)  # placeholder names a student cannot write in advance
        self.key = f"feedbackimage{nonce}n{{}}x"
        self.keys = re.compile(f"feedbackimage{nonce}n[0-9]+x")
        self.placed: dict[str, str] = {}

    def place(self, src: str, alt: str, attachments: object) -> str:
        """A placeholder for the image, or the text shown instead of it."""
        mime, data = None, None
        alt = self.keys.sub("", alt)  # an image in the alt text of another
        if src.startswith("attachment:"):
            bundle = attachments.get(src[len("attachment:") :]) if isinstance(attachments, dict) else None
            bundle = bundle if isinstance(bundle, dict) else {}
            mime = next((m for m in _IMAGE_MIME if m in bundle), None)
            data = _text(bundle[mime]) if mime else None
        else:
            m = re.match(r"^data:(image/(?:png|jpeg|gif));base64,(.*)$", src.strip(), re.S)
            if m:
                mime, data = m.group(1), m.group(2)
        if mime is None:
            return self._instead(alt, "not from this notebook" if src.strip() else "no source")
        data = re.sub(r"\s+", "", data or "")
        try:
            if not _BASE64.match(data):
                raise ValueError
            size = len(base64.b64decode(data, validate=True))
        except (ValueError, binascii.Error):
            return self._instead(alt, "unreadable")
        if size > self.size:
            return self._instead(alt, f"larger than {self.size // 1000} kB")
        if self.used >= self.count:
            return self._instead(alt, f"more than {self.count} images")
        self.used += 1
        key = self.key.format(self.used)
        self.placed[key] = f'<img src="data:{mime};base64,{data}" alt="{html.escape(alt, quote=True)}">'
        return key

    def _instead(self, alt: str, why: str) -> str:
        label = f": {alt}" if alt else ""
        return html.escape(f"[image not shown{label} ({why})]", quote=False)

    def put_back(self, sanitized: str) -> str:
        """The sanitised HTML with each placeholder replaced by its image, in one pass."""
        return self.keys.sub(lambda m: self.placed.get(m.group(0), ""), sanitized)


class _FeedbackRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with images that load nothing from outside the notebook."""

    def __init__(self, images: _Images, attachments: dict[str, Any]) -> None:
        super().__init__(
            escape=False, allow_harmful_protocols=False, exclude_anchor_links=True, attachments=attachments
        )
        self.images = images

    def image(self, text: str, url: str, title: str | None = None) -> str:
        return self.images.place(url or "", _text(text), self.attachments)


class SanitizeMarkdown(Preprocessor):
    """Render each markdown cell here, sanitise the HTML with nbconvert's SanitizeHTML (raw HTML
    is escaped: a student's `<script>` shows as text), and hand the template one HTML block that
    its own markdown pass leaves as it is. Raw cells are shown as text. Attachments are used for
    the images they hold, then dropped."""

    enabled = Bool(True)
    max_images = Integer(5).tag(config=True)
    max_image_bytes = Integer(200_000).tag(config=True)
    # Sanitising (html5lib) is quadratic in deeply nested or table-heavy HTML: a 300 kB table
    # took minutes. Beyond these bounds a cell is shown as plain text instead (a few seconds at
    # worst for a whole notebook).
    max_cell_chars = Integer(20_000).tag(config=True)
    max_rendered_chars = Integer(100_000).tag(config=True)
    max_tags = Integer(1_000).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Resources) -> tuple[NotebookNode, Resources]:
        self.images = _Images(self.max_images, self.max_image_bytes)
        self.rendered = 0
        sanitizer = _sanitizer(
            tags=ALLOWED_TAGS, attributes=_allowed_attribute, strip=False, strip_comments=True, parent=self
        )
        self.sanitize: Callable[[str], str] = sanitizer.sanitize_html_tags
        return _each_cell(self, nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: Resources, index: int) -> tuple[NotebookNode, Resources]:
        if cell.cell_type == "raw":
            cell.cell_type = "markdown"
            cell.source = _as_text(_text(cell.source), "a raw cell")
        elif cell.cell_type == "markdown":
            cell.source = self.safe_html(_text(cell.source), cell.get("attachments"))
        cell.pop("attachments", None)
        return cell, resources

    def safe_html(self, markdown: str, attachments: dict[str, Any] | None = None) -> str:
        """The markdown as sanitised HTML, wrapped so that a second markdown pass keeps it."""
        if len(markdown) > self.max_cell_chars:
            return _as_text(markdown, f"longer than {self.max_cell_chars:,} characters")
        if self.rendered + len(markdown) > self.max_rendered_chars:
            return _as_text(markdown, f"the notebook's formatted text passed {self.max_rendered_chars:,} characters")
        self.rendered += len(markdown)
        try:
            rendered = MarkdownWithMath(renderer=_FeedbackRenderer(self.images, attachments or {})).render(markdown)
        except Exception:  # whatever the source, the page is still written
            return _as_text(markdown, "it could not be formatted")
        if rendered.count("<") > self.max_tags:
            return _as_text(markdown, f"more than {self.max_tags:,} HTML elements")
        return _block(self.images.put_back(self.sanitize(rendered)))


def _as_text(source: str, why: str) -> str:
    """A cell shown as plain, escaped text, with the reason."""
    return _block(
        f"<p><em>{html.escape(f'Shown as plain text: {why}.', quote=False)}</em></p>"
        f"<pre>{html.escape(source, quote=False)}</pre>"
    )


def _block(sanitized: str) -> str:
    """One line of HTML in a div: markdown's HTML-block rule passes it through unchanged (it ends
    only at a blank line), so the template's markdown pass can add nothing to it. Newlines become
    character references, which render the same, also inside <pre>."""
    return "<div>" + sanitized.replace("\r", "").replace("\n", "&#10;") + "</div>"


class KeepNbgraderMetadata(Preprocessor):
    """Cell metadata reduced to nbgrader's (with a well-formed grade_id) and notebook metadata to
    the language: the templates read tags, raw mime types, widget state and titles from metadata."""

    enabled = Bool(True)

    def preprocess(self, nb: NotebookNode, resources: Resources) -> tuple[NotebookNode, Resources]:
        nb.metadata = _node(language_info=_node(name="python"))
        return _each_cell(self, nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: Resources, index: int) -> tuple[NotebookNode, Resources]:
        meta = nbgrader_metadata(cell)
        keep = re.fullmatch(r"[A-Za-z0-9_-]+", str(meta.get("grade_id", "")))
        cell.metadata = _node(nbgrader=meta) if keep else _node()
        if keep and meta.get("grade"):
            cell.metadata.label = label(cell)
        return cell, resources


# A test cell's first line: "# Visible tests for __add__", "# Hidden tests for train run when ...",
# "# Visible tests for Neuron.__call__ (the weights are ...)".
_TESTS_FOR = re.compile(r"#\s*(Visible|Hidden) tests for (?:the )?([\w.]+(?: [\w.]+)*?)(?= run when|\s*[(,:]|\.?$)")


def label(cell: NotebookNode) -> str:
    """The name of a graded cell in the page's summary: "__add__: visible tests", else its grade_id."""
    first = next((line.strip() for line in _text(cell.source).splitlines() if line.strip()), "")
    m = _TESTS_FOR.match(first) if cell.cell_type == "code" else None
    name = f"{m.group(2)}: {m.group(1).lower()} tests" if m else str(grade_id(cell))
    return re.sub(r"[^\w .:()-]", "", name)[:80]
