"""One submission graded: nbgrader's course, the executor, the verdict, the one-slip rerun, feedback."""
