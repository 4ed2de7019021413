"""Atomic, durable file writes: the one implementation the model-file writers and the registry use.

:func:`atomic_h5` writes ``<name>.partial`` next to the target, fsyncs it, renames it over the target
(``os.replace``: readers see the old file or the new one, never a part) and fsyncs the directory so that
the rename survives a crash; on any error the partial file is removed and the target is untouched.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import h5py


def fsync_path(path: str | Path, directory: bool = False, strict: bool = True) -> None:
    """fsync a file or a directory (a rename is durable once its directory is synced). ``strict=False``
    ignores file systems that refuse it."""
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """``with atomic_h5(path) as f:`` writes the HDF5 file ``path`` atomically and durably (module docstring)."""
    import h5py  # here: the service's HTTP process imports this module (fsync_path) and never loads HDF5

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with h5py.File(partial, "w") as f:
            yield f
        fsync_path(partial, strict=False)
        os.replace(partial, path)
        fsync_path(path.parent, directory=True, strict=False)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (``<name>.partial``, fsync, rename, directory fsync)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent, directory=True, strict=False)
    return path
