"""Build the student notebooks from `solutions/` and grade submissions with nbgrader."""
