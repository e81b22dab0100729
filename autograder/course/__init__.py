"""Where things live and what they are: paths, notebooks, nbgrader on a course folder, the reference package."""
