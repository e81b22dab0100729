"""Run the filled-in student notebooks as a student would in Colab, on the newest packages.

A fresh venv (.work/colab-venv) gets the newest numpy, matplotlib, graphviz, pytest, nbclient,
ipykernel and CPU build of torch. Then each released notebook, with the reference answers typed
in, runs alone in one folder that keeps what the earlier notebooks saved (a student's Drive
folder). Prints the versions and one line per notebook; exits 1 if any notebook failed.
Run with `make colab-check`.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from autograder.authoring.samples import filled
from autograder.course.paths import WORK, assignments

VENV = WORK / "colab-venv"
PY = VENV / "bin" / "python"
KERNEL = "micrograd-colab-check"
PACKAGES = ["numpy", "matplotlib", "graphviz", "pytest", "nbclient", "ipykernel"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pip(*args: str, env: dict[str, str] | None = None) -> bool:
    print("$ pip install", " ".join(args), flush=True)
    cmd = [str(PY), "-m", "pip", "install", "-qq", "--upgrade", *args]
    return subprocess.run(cmd, env=env).returncode == 0


def make_venv() -> None:
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(VENV)], check=True)
    if not pip("pip", *PACKAGES):
        sys.exit("could not install " + " ".join(PACKAGES))
    # Only the CPU index: no local pip configuration, whose extra indexes may hold a CUDA build.
    only_cpu_index = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"} | {"PIP_CONFIG_FILE": os.devnull}
    if not pip("--timeout", "20", "--retries", "1", "torch", "--index-url", CPU_INDEX, env=only_cpu_index):
        print(f"{CPU_INDEX} unreachable: falling back to torch==2.13.0", flush=True)
        if not pip("torch==2.13.0"):
            sys.exit("could not install torch")
    subprocess.run([str(PY), "-m", "ipykernel", "install", "--prefix", str(VENV), "--name", KERNEL], check=True)


def print_versions() -> None:
    code = (
        "import sys, importlib.metadata as m\n"
        "print('python', sys.version.split()[0])\n"
        f"for p in {['torch', *PACKAGES]!r}: print(p, m.version(p))\n"
        "import torch; print('torch CUDA build:', torch.version.cuda)"
    )
    subprocess.run([str(PY), "-c", code], check=True)


def failure(nb: nbformat.NotebookNode, error: Exception) -> str:
    """Where and why a notebook stopped: the cell whose output holds the error, if one does."""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return f"cell {i} ({first[:60]!r}): {out['ename']}: {out['evalue'][:300]}"
    return f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"


def files(folder: Path) -> dict[str, int]:
    """Every file under folder, with the time it was last written."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def run(aid: str, folder: Path, kernels: KernelSpecManager) -> str | None:
    """Execute one filled-in notebook in folder; None if every cell ran, else what failed."""
    nb = nbformat.reads(json.dumps(filled(aid)), as_version=4)  # joins the sources kept as lists
    nbformat.write(nb, folder / f"{aid}.ipynb")
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernels)
    client = NotebookClient(nb, km=km, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(folder)}})
    try:
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's own warnings
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        return failure(nb, e)
    return None


def main() -> int:
    make_venv()
    print_versions()
    for name in ("PYTHONPATH", "MICROGRAD_GRADING"):  # the kernel sees only the fresh venv, as in Colab
        os.environ.pop(name, None)
    os.environ["PATH"] = f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"
    kernels = KernelSpecManager(kernel_dirs=[str(VENV / "share" / "jupyter" / "kernels")])
    failed = 0
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        folder = Path(tmp)
        for aid in assignments():
            before = files(folder)
            start = time.monotonic()
            error = run(aid, folder, kernels)
            saved = sorted(k for k, v in files(folder).items() if before.get(k) != v and k != f"{aid}.ipynb")
            took = f"{time.monotonic() - start:.0f}s"
            print(f"{aid}: {'ran' if error is None else 'FAILED'} ({took})" + (f", saved {saved}" if saved else ""))
            if error is not None:
                failed += 1
                print(f"    {error}")
    print(f"{len(assignments()) - failed} ran, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
