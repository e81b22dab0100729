"""Gradescope: an autograder zip that grades one submission with this course's own grader.

Two machines, two modules. On the instructor's, `bundle.bundle(["02_value_backward"], "02.zip")`
writes a zip laid out as Gradescope's autograder specification asks: `setup.sh` and
`run_autograder` (scripts/, setup.sh with the torch pin of requirements.txt filled in) at its
root, beside a copy of what grading needs (the package's grading layers, solutions/ with the
hidden tests, the released exercises/ and capstone/ that intake matches submissions against,
requirements.txt, pyproject.toml). Gradescope unpacks it into /autograder/source; in its
container, for each submission, `run_autograder` runs `python -m autograder.delivery.gradescope`
(`run.py`), which takes in the notebooks in /autograder/submission, grades those of its
assignment with the course's grader (nbgrader, the hidden tests, the limits) and writes
/autograder/results/results.json. How a graded notebook becomes results.json (one Gradescope
test per autograded test cell, its visibility, the score and the output the student reads) is
`mapping.py`. Nothing here grades by itself.

One zip per assignment. Gradescope attaches one autograder to each of its assignments and
records a score out of that assignment's points, so each zip is told which assignment it grades:
a student who uploads exercise 3 to the exercise 2 assignment gets 0 with a message saying so,
not exercise 3's points under exercise 2's name. Every zip still carries all of solutions/,
because intake recognises a notebook among all the course's assignments and a later exercise's
reference engine is built from the earlier solutions (it is built here, once, and shipped, so
no submission waits for it). `bundle` accepts several ids for a single Gradescope assignment
that takes several notebooks at once.

The zip holds the hidden tests and reference solutions: upload it only to Gradescope, where
students never see it. Students see each test cell's score and the verdict the course's
feedback shows (the failed check's message, or how many checks passed), never a hidden
test's source. A submission the review flags keeps its score, as `grade` keeps it; why it was
flagged goes into a test worth 0 points that Gradescope shows instructors only (visibility
"hidden"), never into what the student reads.

Set AUTOGRADER_ROOT to run `run_autograder` on a folder laid out like Gradescope's
(`source/`, `submission/`, `results/`) instead of /autograder.
"""
