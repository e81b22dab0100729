"""A cohort graded: intake, review, the worker pool and its cache, late penalties, shards, grades.csv."""
