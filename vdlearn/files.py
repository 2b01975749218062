"""Files that cannot be lost: every file the course writes for a person is written atomically.

:func:`atomic_write` writes to a temporary file in the destination's folder, flushes it to disk
and renames it over the destination (``os.replace``, atomic on POSIX and Windows). A process
killed mid-write, a full disk or an exception in the writer leaves the old file as it was and no
temporary file behind; the error says what happened.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Callable, IO, Iterator

__all__ = ["atomic_write", "atomic_path"]


def _mode_for(path: Path) -> int:
    """The old file's permissions, or those a new file gets under the process's umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry of the renamed file to disk (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path``, on failure it is removed.

    ``suffix`` (default: ``path``'s own) keeps writers that choose a format by file ending working.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(suffix if suffix is not None else path.suffix) + ".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        os.chmod(tmp, _mode_for(path))   # mkstemp makes 0600; the result should look like any other file
        yield tmp
        with open(tmp, "rb+") as f:   # on disk before the rename: a crash cannot leave an empty file
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"the disk is full: '{path}' was not written (the old file, if any, "
                                        "is unchanged); free some space and try again") from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a binary file that replaces ``path`` only once ``write`` has returned."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
    return path
