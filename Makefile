# Two commands do all the set-up: `make demo` (the main job) and `make test`.
PY := .venv/bin/python
VENV := .venv/.installed

.PHONY: demo test test-fast lint build site system bench lessons colab-check

# It prints the score table, the progress and real problems (on stderr) only.
demo: $(VENV) system
	@$(PY) -m autograder build > /dev/null
	@rm -rf .work/samples && $(PY) -m autograder samples .work/samples > /dev/null
	@$(PY) -m autograder grade .work/samples --out .work/demo --jobs 2 --force --feedback

test: lint system
	$(PY) -m pytest

# The edit loop: every test that needs no Jupyter kernel (nor builds the website), in under a minute.
test-fast: $(VENV)
	$(PY) -m pytest -m "not kernel and not site"

lint: $(VENV)
	.venv/bin/ruff check autograder tests
	.venv/bin/ruff format --check autograder tests
	.venv/bin/mypy

build: $(VENV)
	$(PY) -m autograder build

# The course website, from the student tree, into .work/site/html (open index.html).
site: $(VENV)
	$(PY) -m autograder site

bench: $(VENV) system
	$(PY) -u tests/benchmark.py

$(VENV): requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	.venv/bin/pip install --quiet --no-deps -e .
	touch $@

# Graphviz's `dot` draws the computation graphs; bubblewrap's `bwrap` sandboxes every graded kernel;
# the tests open the course website and the class report in headless Chromium; python3-seccomp
# (libseccomp for the system Python) builds the kernels' seccomp filter.
system:
	@command -v dot > /dev/null && command -v bwrap > /dev/null && command -v chromium > /dev/null && /usr/bin/python3 -c 'import seccomp' 2> /dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq graphviz bubblewrap chromium python3-seccomp > /dev/null; \
	  else echo "Graphviz, bubblewrap, Chromium or python3-seccomp is missing: sudo apt-get install graphviz bubblewrap chromium python3-seccomp"; exit 1; fi; }

# Before a term starts, and after a dependency's new release: the filled-in notebooks on the newest
# packages, in a fresh venv, as in Colab (downloads packages; not part of `make test`).
colab-check: $(VENV) system
	$(PY) -u tests/colab_check.py

# Re-run the lessons and commit their outputs whenever a lesson changes.
lessons: $(VENV) system
	$(PY) -m autograder lessons
