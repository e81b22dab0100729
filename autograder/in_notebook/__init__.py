"""Code that runs inside students' notebooks, shipped as cells or files; the grader never imports it."""
