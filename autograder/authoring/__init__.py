"""What the course team writes with: the build of the student notebooks, lessons, samples, the bug catalogue."""
