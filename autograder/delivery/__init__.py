"""What leaves the repository: the student release, the solutions after the deadline, the website, Gradescope."""
