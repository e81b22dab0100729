"""What a graded cohort says: its results read back, exports for an LMS, the class report."""
