# Loads the micrograd/ package you saved at the end of an earlier exercise, and says where it came
# from: the folder next to this notebook, else (in Colab) your Google Drive, else a zip you upload.
# When your notebook is graded, the course's reference package stands in for yours, so a mistake
# in an earlier exercise never costs points here.
import importlib
import os
import shutil
import sys
import zipfile

PACKAGE = "micrograd"
DRIVE_ROOT = os.environ.get("MICROGRAD_DRIVE_ROOT", "/content/drive")  # where Colab mounts Google Drive
DRIVE_FOLDER = os.path.join(DRIVE_ROOT, "MyDrive", "micrograd-course")
REFERENCE = "micrograd.zip"  # put beside the notebook by the grader


def _from_drive(drive):
    try:
        drive.mount(DRIVE_ROOT)
    except Exception as error:  # refused or unavailable: fall back to an upload
        print(f"Google Drive is not available ({type(error).__name__}).")
        return None
    saved = os.path.join(DRIVE_FOLDER, PACKAGE)
    if not os.path.isdir(saved):
        print(f"Google Drive has no {saved} yet.")
        return None
    shutil.rmtree(PACKAGE, ignore_errors=True)
    shutil.copytree(saved, PACKAGE)
    return f"your Google Drive ({saved})"


def _from_upload(files, made_in):
    print(f"Upload {PACKAGE}.zip, the file that the last cell of {made_in} downloaded.")
    uploaded = files.upload()
    name = next((n for n in uploaded if n.endswith(".zip")), None)
    return name and _unzip(name) and f"the zip you uploaded ({name})"


def _unzip(name):
    with zipfile.ZipFile(name) as z:
        members = [m for m in z.namelist() if m.startswith(f"{PACKAGE}/") and ".." not in m and m.endswith(".py")]
        shutil.rmtree(PACKAGE, ignore_errors=True)
        z.extractall(".", members)
    return os.path.isfile(os.path.join(PACKAGE, "engine.py"))


def _find(made_in):
    """Put micrograd/ next to this notebook if it is not there yet; return where it came from."""
    for folder in (".", os.path.join("..", "exercises")):  # the capstone sits beside exercises/
        if os.path.isfile(os.path.join(folder, PACKAGE, "engine.py")):
            if folder != ".":
                shutil.copytree(os.path.join(folder, PACKAGE), PACKAGE, dirs_exist_ok=True)
            return f"the {PACKAGE}/ folder in {os.path.abspath(folder)}"
    if os.path.isfile(f"{PACKAGE}.zip") and _unzip(f"{PACKAGE}.zip"):
        return f"{PACKAGE}.zip, next to this notebook"
    try:
        from google.colab import drive, files
    except ImportError:
        drive = files = None
    found = drive and (_from_drive(drive) or _from_upload(files, made_in))
    if not found:
        raise SystemExit(
            f"No {PACKAGE}/ package found. Run {made_in} to the end: its last cell saves micrograd/ next to it "
            "(and, in Colab, to your Google Drive). Then run this cell again."
        )
    return found


def load_micrograd(made_in):
    """Make `import micrograd` find your package (or, at grading, the reference one)."""
    if os.environ.get("MICROGRAD_GRADING") == "1":
        path, source = os.path.abspath(REFERENCE), "the course's reference package"
    else:
        path, source = os.getcwd(), _find(made_in)
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]  # a second run of this cell loads the files as they are now
    sys.path[:] = [path] + [p for p in sys.path if p != path]
    importlib.invalidate_caches()
    print(f"Loaded {PACKAGE} from {source}.")


# ---- end of the course's load cell ----
