"""The course's own cells in a notebook, which open collapsed: read by the build, which collapses
them, and by the feedback page, which leaves them out.

Course code a student runs but need not read opens collapsed: in Colab as a form with a title
(`#@title`, the cell's first line), in JupyterLab and Notebook 7 as hidden input (and tagged
`hide-input` for tools that honour it). A one-line note above each says what it does and to run
it. {grade_id: (title, note)}; a cell that writes a file has no title (`%%writefile` comes first).
"""

COLLAPSED: dict[str, tuple[str | None, str]] = {
    "setup": (
        "The course's checks",
        "**Run the next cell first**: it holds the course's checks, which every test uses.",
    ),
    "debug_tools": ("Debugging tools", "**Run the next cell** to use the debugging tools below (not graded)."),
    "load_engine": ("Load your micrograd package", "**Run the next cell**: it loads the package you saved."),
    "check_engine": ("Check your micrograd package", "**Run the next cell**: it tries each part of your package."),
    "save_engine": (
        "Save your micrograd package",
        "**Run the next cell**: it saves your package for the next notebook.",
    ),
    "test_micrograd_file": (None, "**Run the next cell**: it writes `test_micrograd.py` next to this notebook."),
}
HIDE_TAG = "hide-input"
