#!/usr/bin/env bash
# Gradescope runs this once, as root on its Ubuntu image, when it builds the autograder.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

apt-get update
# graphviz: the `dot` program that draws computation graphs. bubblewrap: the sandbox of the
# student's kernel, where the image allows it (run_autograder falls back to a separate user).
# python3-seccomp: libseccomp for the system Python, which builds the kernel's seccomp filter.
apt-get install -y --no-install-recommends python3 python3-venv python3-pip graphviz bubblewrap python3-seccomp

# The grader needs Python 3.11 or newer; Ubuntu 22.04's python3 is 3.10.
PY=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
    PY=python3.11
fi

"$PY" -m venv .venv
.venv/bin/pip install --upgrade pip
# PyTorch from its CPU wheel index, explicitly: from PyPI, pip would fetch a CUDA build of
# several GB that this machine cannot use.
.venv/bin/pip install "@TORCH@" --index-url @TORCH_INDEX@
.venv/bin/pip install -r requirements.txt

# What the first submission would otherwise compute before grading (the reference solutions'
# check reports, nbgrader's course folder): once, here, so that no student waits for it.
.venv/bin/python -m autograder.delivery.gradescope --warm
