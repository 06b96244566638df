"""Writing the files of an output folder: whole, and never through a link planted there.

A file written whole (`write_whole`) goes to a new temporary file beside it, then takes its
name: a reader, a crash or a signal never sees half of it, and a symbolic link planted under
that name is replaced, not followed. A file appended to (`open_append`) is opened with
O_NOFOLLOW: a link there is refused (ELOOP), never written through.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO


def write_whole(path: Path, data: str | bytes) -> None:
    """Write `data` as the whole of `path` (see the module's docstring)."""
    with written_whole(path, "wb" if isinstance(data, bytes) else "w") as file:
        file.write(data)


@contextlib.contextmanager
def written_whole(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A new file to write; at the end of the block it becomes `path` (on an error it is removed)."""
    encoding = None if "b" in mode else "utf-8"
    with replacing(path) as temporary, open(temporary, mode, encoding=encoding) as file:
        yield file


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new empty file beside `path`, for a writer that takes a file name; at the end of the
    block it becomes `path` (on an error it is removed)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(name)
        os.chmod(name, 0o644)  # mkstemp's 0600 is for the moment it is being written
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def open_append(path: Path) -> TextIO:
    """`path` opened to append text, created if missing; a symbolic link there is an OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    return open(fd, "a", encoding="utf-8")
