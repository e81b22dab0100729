"""The course website: the student tree as `release` writes it, built by Sphinx with MyST-NB.

The site is built from the released tree, not from this repository, so it shows exactly what
students receive (never solutions/ or a hidden test), with the Sphinx configuration and the
Pages workflow that the student repository builds it with."""

import shutil
import subprocess
import sys
from pathlib import Path

from autograder.course.paths import WORK
from autograder.delivery.release import SITE_CONF, release

SITE = WORK / "site"


def sphinx(tree: Path, html: Path, doctrees: Path) -> None:
    """Build (or bring up to date) the website of the student tree `tree` into `html`."""
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b", "html", "-c", str(tree / SITE_CONF.parent)]
        + ["-d", str(doctrees), str(tree), str(html)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"sphinx failed:\n{done.stdout}{done.stderr}")


def build(out: str | Path = SITE) -> Path:
    """Write the student tree into `out`/tree and its website into `out`/html (both replaced);
    return the website's front page. A local preview: its Colab buttons name the configured
    student repository, the placeholder included."""
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    release(out / "tree", allow_placeholder=True)
    sphinx(out / "tree", out / "html", out / "doctrees")
    return out / "html" / "index.html"
