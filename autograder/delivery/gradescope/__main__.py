"""`python -m autograder.delivery.gradescope [ROOT | --warm]`: what run_autograder and setup.sh run."""

import sys

from autograder.delivery.gradescope.run import main

sys.exit(main())
