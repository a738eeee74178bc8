"""Atomic file writes: a file appears complete under its final name, or not at all.

Every writer of the project goes through `atomic_path`: the content is written to a
hidden temporary file in the destination's folder (its name does not end like the
destination's, so nothing that globs the folder mistakes it for a result), synced,
given its mode and renamed over the destination. On any exception, KeyboardInterrupt
and signals included, the temporary file is removed and an earlier file of that name
is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# Readable by other users: a scorer reads outputs as another user than the container's
# root, and mkstemp creates files 0600.
FILE_MODE = 0o644


@contextmanager
def atomic_path(path: Path, mode: int = FILE_MODE) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to (by any means); it becomes `path` when the block ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: Path, text: bool = False, mode: int = FILE_MODE) -> Iterator[IO]:
    """Open a handle whose content becomes `path` when the block ends (binary, or text with `text`)."""
    with atomic_path(path, mode) as tmp, open(tmp, "w" if text else "wb") as handle:
        yield handle


def write_atomic(path: Path, content: str | bytes, mode: int = FILE_MODE) -> Path:
    """Write text or bytes to `path` atomically; return `path`."""
    with atomic_file(path, text=isinstance(content, str), mode=mode) as handle:
        handle.write(content)
    return Path(path)
