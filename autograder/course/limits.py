"""Every limit of grading, in one table.

`Limits` is what one graded notebook may use. An assignment's source notebook may raise its first
three in `metadata.course.limits` (a training notebook needs more time than an exercise of small
functions): `Assignment.limits` holds the result. The constants below bound what is not one
notebook's: a submitted file before it is parsed, a grading worker, the parent's waits.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one graded notebook may use; memory, pids and CPU count its kernel's whole process tree."""

    cell_timeout: float = 30  # seconds of one cell
    wall_seconds: float = 180  # seconds of the whole notebook
    memory_mb: int = 2048
    cpu_seconds: int = 600  # CPU time of the tree (cgroup cpuacct, or summed by the watchdog)
    pids: int = 64  # processes and threads of the tree
    file_mb: int = 64  # the largest file it may write (RLIMIT_FSIZE)
    disk_mb: int = 256  # its scratch filesystems (work folder and /tmp are tmpfs with --size)


# The per-assignment part of `Limits`, as a source notebook's metadata names it.
OVERRIDABLE = ("cell_timeout", "wall_seconds", "memory_mb")

# A notebook's output, as the kernel sends it. A cell's output past CELL_OUTPUT_CHARS is dropped
# (only that cell's own checks can then fail); a notebook past NOTEBOOK_OUTPUT_CHARS in all is
# stopped; a single message past MESSAGE_BYTES is never read (it would stop the notebook anyway).
CELL_OUTPUT_CHARS = 2 * 2**20
NOTEBOOK_OUTPUT_CHARS = 32 * 2**20
MESSAGE_BYTES = NOTEBOOK_OUTPUT_CHARS
VERDICT_CHARS = 2000  # of one test cell's verdict, as the result keeps it
MAX_RERUNS = 3  # one-slip reruns of a notebook: each charges one more method

# A submitted file, before it is parsed.
FILE_BYTES = 32 * 2**20
JSON_DEPTH = 64

# A grading worker and the parent that deals it work.
WORKER_MEMORY_MB = 1536
MARGIN_SECONDS = 60  # on top of an assignment's wall time: kernel start-up, nbgrader's own work
STARTUP_SECONDS = 300  # a new worker first builds its nbgrader course (until it says it is ready)
EXIT_SECONDS = 30  # a worker told there is no more work must be gone by then
TRIES = 2  # a submission that stops two workers is marked as an error
LOCK_WAIT_SECONDS = 900  # how long a sandbox waits for its kernel's uid to be free
