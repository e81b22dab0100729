"""Files that other processes read while they are written: each appears whole, or not at all."""

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_whole(path: Path, private: bool = False) -> Iterator[Path]:
    """A new path beside `path` to write to; when the block ends without an error it takes the
    place of `path` in one step (a concurrent reader sees the old file or the new one, never half
    of one), and otherwise it is removed. `private`: made for its owner alone (mode 0600);
    otherwise with the usual permissions (a sandboxed kernel may need to read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        partial = Path(name)
    else:
        partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_whole(path: Path, data: str | bytes, private: bool = False) -> None:
    """Write `data` to `path` as `replaced_whole` does."""
    with replaced_whole(path, private) as partial:
        if isinstance(data, bytes):
            partial.write_bytes(data)
        else:
            partial.write_text(data)
