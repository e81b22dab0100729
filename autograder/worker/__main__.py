"""`python -m autograder.worker`: a grading worker (see serve.py)."""

import sys

from autograder.worker.serve import main

sys.exit(main(sys.argv[1:]))
