"""The course website, built as `make site` builds it and opened page by page in one headless
Chromium session: the lessons show their plots and their maths, every link resolves, every
Colab button opens the page's own notebook in the student repository, and the text Chromium
renders holds no solution or hidden-test line (a site with one planted is caught). The student
repository publishes it with a workflow that actionlint passes."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import websocket
import yaml

from autograder.course.notebooks import is_answer, read, secret_lines
from autograder.course.paths import ROOT, SOLUTIONS, requirements
from autograder.delivery import site
from autograder.delivery.release import PAGES_WORKFLOW, SITE_CONF, release, student_repo

BIN = Path(sys.executable).parent
SECRETS = secret_lines(SOLUTIONS.glob("*.ipynb"))
NOTEBOOK_FOLDERS = ("lessons", "exercises", "capstone")
COLAB = re.compile(r"https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/([^?#]+)")
# The one thing a page loads from elsewhere: the badge image in each notebook's first cell.
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"

# Waits for MathJax to typeset and for every image to load or fail, then reads the page.
PROBE = """(async () => {
  if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  await Promise.all([...document.images].map(i => i.complete ? null
    : new Promise(done => { i.addEventListener("load", done); i.addEventListener("error", done); })));
  return {
    images: [...document.images].map(i => [i.currentSrc || i.src, i.naturalWidth]),
    maths: document.querySelectorAll("mjx-container").length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    text: document.body.innerText,
    resources: performance.getEntriesByType("resource").map(r => r.name),
  };
})()"""


class Chromium:
    """Headless Chromium driven over the DevTools protocol: one tab, which opens page after page."""

    def __init__(self, profile: Path):
        args = ["chromium", "--headless", "--remote-debugging-port=0", f"--user-data-dir={profile}"]
        args += ["--no-first-run", "--disable-gpu", "--window-size=1280,1000"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium's own sandbox refuses to run as root
        self.proc = subprocess.Popen(args + ["about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().split()) == 2):
            assert self.proc.poll() is None and time.monotonic() < deadline, "Chromium did not start"
            time.sleep(0.1)
        port, path = port_file.read_text().split()
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True)
        self.ids = iter(range(1, 1 << 30))
        self.events: list[str] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", in_tab=True)

    def call(self, method, in_tab=False, **params):
        message = {"id": next(self.ids), "method": method, "params": params}
        if in_tab:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == message["id"]:
                assert "error" not in reply, (method, reply["error"])
                return reply["result"]
            self.events.append(reply.get("method", ""))

    def open(self, url):
        """What PROBE reads on the page at `url`, once it has loaded."""
        self.events.clear()
        self.call("Page.navigate", in_tab=True, url=url)
        while "Page.loadEventFired" not in self.events:
            self.events.append(json.loads(self.ws.recv()).get("method", ""))
        got = self.call("Runtime.evaluate", in_tab=True, expression=PROBE, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in got, (url, got["exceptionDetails"])
        return got["result"]["value"]

    def close(self):
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    site.build(out)
    return out


@pytest.fixture(scope="module")
def served(built):
    """The website over HTTP on this machine, as GitHub Pages serves it: its address."""
    handler = partial(QuietHandler, directory=str(built / "html"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a page built again is read again
        super().end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(tmp_path_factory.mktemp("chromium"))
    yield chromium
    chromium.close()


def html_pages(html):
    """{page: its HTML} for every page of the website in `html`, e.g. "lessons/x.html"."""
    return {p.relative_to(html).as_posix(): p.read_bytes() for p in html.rglob("*.html") if "_static" not in p.parts}


@pytest.fixture(scope="module")
def pages(built, served, browser):
    """{page: what PROBE reads there} for every page of the website."""
    return {page: browser.open(served + page) for page in sorted(html_pages(built / "html"))}


def notebook_pages(pages):
    return [page for page in pages if page.split("/")[0] in NOTEBOOK_FOLDERS]


def leaks(pages):
    """{page: solution or hidden-test lines in the text Chromium renders there}, pages with none left out."""
    found = {
        page: SECRETS.keys() & {line.strip() for line in seen["text"].splitlines()} for page, seen in pages.items()
    }
    return {page: lines for page, lines in found.items() if lines}


@pytest.mark.site
def test_the_site_holds_the_readme_and_every_released_notebook(built, pages):
    released = {
        p.relative_to(built / "tree").with_suffix(".html").as_posix() for p in (built / "tree").rglob("*.ipynb")
    }
    assert len(released) == 13 and released == set(notebook_pages(pages))
    readme = (built / "tree" / "README.md").read_text().splitlines()[0].lstrip("# ")
    assert readme in pages["index.html"]["text"] and readme in pages["README.html"]["text"]
    for page in released:  # the sidebar leads to every notebook, from the front page on
        assert any(link.endswith("/" + page) for link in pages["index.html"]["links"]), page


@pytest.mark.site
def test_every_lesson_page_shows_its_images_and_its_maths(served, pages):
    lessons = [page for page in pages if page.startswith("lessons/")]
    assert len(lessons) == 6
    for page in lessons:
        own = [(src, width) for src, width in pages[page]["images"] if src.startswith(served)]
        assert own and all(width > 0 for src, width in own), (page, own)
        assert pages[page]["maths"] > 0, page
    for page, seen in pages.items():
        assert all(width > 0 for src, width in seen["images"] if src.startswith(served)), page


@pytest.mark.site
def test_pages_load_nothing_from_elsewhere_mathjax_included(served, pages):
    for page, seen in pages.items():
        assert not [r for r in seen["resources"] if not r.startswith(served) and r != BADGE], page
    assert any("/_static/mathjax/" in r for r in pages["lessons/01_derivatives.html"]["resources"])


@pytest.mark.site
def test_links_between_pages_resolve(built, served, pages):
    checked = 0
    for page, seen in pages.items():
        for link in seen["links"]:
            if link.startswith(served):
                path = unquote(urlsplit(link).path).lstrip("/")
                target = (
                    built / "html" / path / "index.html" if path.endswith("/") or not path else built / "html" / path
                )
                assert target.is_file(), f"{page} links to {link}, which is not on the site"
                checked += 1
    assert checked > 100


@pytest.mark.site
def test_every_notebook_page_opens_its_own_notebook_in_colab_from_the_student_repository(built, pages):
    for page in notebook_pages(pages):
        targets = {COLAB.match(link).groups() for link in pages[page]["links"] if COLAB.match(link)}
        assert targets == {(student_repo(), "main", page.removesuffix(".html") + ".ipynb")}, page
        assert (built / "tree" / page.removesuffix(".html")).with_suffix(".ipynb").is_file()
    for page, seen in pages.items():
        for link in seen["links"]:
            assert COLAB.match(link) or "colab.research.google.com/github" not in link, (page, link)


@pytest.mark.site
def test_no_page_shows_a_solution_or_hidden_test_line(pages):
    assert len(SECRETS) > 20
    assert leaks(pages) == {}


@pytest.mark.site
def test_the_rendered_text_scan_finds_one_planted_solution_line(built, served, browser, pages):
    """Planted in an answer cell of one exercise, whose code the site shows highlighted, token by
    token: the scan reads the text as rendered, so it still finds the line whole."""
    exercise = "exercises/02_value_backward.ipynb"
    line = next(
        line
        for line, name in sorted(SECRETS.items())
        if name == Path(exercise).name and "(" in line and "check." not in line
    )
    nb = json.loads((built / "tree" / exercise).read_text())
    answer = next(c for c in nb["cells"] if c["cell_type"] == "code" and is_answer(c))
    answer["source"] = "".join(answer["source"]) + "\n" + line
    (built / "tree" / exercise).write_text(json.dumps(nb))
    read(built / "tree" / exercise)  # still a valid notebook
    before = html_pages(built / "html")
    site.sphinx(built / "tree", built / "html", built / "doctrees")  # brings only that page up to date
    after = html_pages(built / "html")
    # A page whose HTML is as before renders as before: only the pages written anew are read again.
    again = {page: browser.open(served + page) for page in after if after[page] != before.get(page)}
    assert exercise.replace(".ipynb", ".html") in again, sorted(again)
    assert leaks(pages | again) == {exercise.replace(".ipynb", ".html"): {line}}


@pytest.fixture
def released(tmp_path, monkeypatch):
    """The student tree of a course whose student repository is set."""
    monkeypatch.setattr("autograder.delivery.release.student_repo", lambda: "a-school/micrograd-2026")
    release(tmp_path / "tree", allow_placeholder=True)
    return tmp_path / "tree"


def test_release_names_the_student_repository_in_the_site_and_its_workflow(released):
    assert 'STUDENT_REPO = "a-school/micrograd-2026"' in (released / SITE_CONF).read_text()
    jobs = yaml.safe_load((released / PAGES_WORKFLOW).read_text())["jobs"]
    assert jobs["build"]["if"] == "github.repository == 'a-school/micrograd-2026'"  # copies do not publish
    assert jobs["deploy"]["needs"] == "build"
    assert any("actions/deploy-pages" in step.get("uses", "") for step in jobs["deploy"]["steps"])
    build = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert f"-c {SITE_CONF.parent.as_posix()} . _site" in build


def test_pages_workflow_passes_actionlint_and_the_schema(released):
    workflow = str(released / PAGES_WORKFLOW)
    for command in (["actionlint", "-no-color"], ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"]):
        done = subprocess.run([BIN / command[0], *command[1:], workflow], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_student_repository_builds_the_site_with_the_course_pins(released):
    student = requirements(released / SITE_CONF.parent / "requirements.txt")
    course = requirements(ROOT / "requirements-dev.txt")
    assert student and all(pin.startswith("==") and course[name] == pin for name, pin in student.items())
