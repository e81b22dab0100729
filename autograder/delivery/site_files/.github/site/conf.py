"""Sphinx configuration of the course website, built from the root of the student repository:
`sphinx-build -b html -c .github/site . _site`. The notebooks are shown with the outputs they
were committed with: nothing runs while the site is built."""

import os
import shutil

# `release` writes the student repository in here: every "Open in Colab" button opens its notebooks.
STUDENT_REPO = "OWNER/NAME"

project = "micrograd, built by hand"
# sphinx-mathjax-offline serves MathJax from the site itself: pages render their maths offline too.
extensions = ["myst_nb", "sphinx-mathjax-offline"]
root_doc = "README"
exclude_patterns = ["_site", "jupyter_execute", ".github", "**/.ipynb_checkpoints", "**/micrograd", ".venv"]

nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {
    "repository_url": f"https://github.com/{STUDENT_REPO}",
    "repository_branch": "main",
    "path_to_docs": "",
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "use_repository_button": True,
    # The download button offers each page's notebook, as Sphinx copies it into _sources/.
    "use_download_button": True,
    "footer_content_items": [],
}

# The sidebar, in course order: the README lists the notebooks only in a table.
SECTIONS = {"Lessons": "lessons/*", "Exercises": "exercises/*", "Capstone": "capstone/*"}


def _add_contents(app, docname, source):
    if docname != root_doc:
        return
    for caption, pattern in SECTIONS.items():
        if os.path.isdir(os.path.join(app.srcdir, os.path.dirname(pattern))):
            source[0] += f"\n\n```{{toctree}}\n:hidden:\n:glob:\n:caption: {caption}\n\n{pattern}\n```\n"


def _front_page(app, exception):
    # GitHub Pages opens index.html; the README keeps its name, so its page is served under both.
    if exception is None and app.builder.format == "html":
        shutil.copy(os.path.join(app.outdir, f"{root_doc}.html"), os.path.join(app.outdir, "index.html"))


def setup(app):
    app.connect("source-read", _add_contents)
    app.connect("build-finished", _front_page)
