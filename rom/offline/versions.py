"""Publishing a new version of a model file atomically, keeping the old one.

Layout, for a model ``<dir>/<id>.h5`` (the API registry lists only ``<dir>/<id>.h5``)::

    <dir>/<id>.h5                       the newest version (what the online stage and the server load)
    <dir>/versions/<id>.v<k>.h5         version k, kept when version k + 1 was published

Steps of :func:`publish_version`: the current file is hard-linked (copied where links are not
possible) to ``versions/<id>.v<k>.h5``; the new version is written to a hidden temp file in ``<dir>``,
fsync'd, renamed over ``<id>.h5`` (``os.replace``: readers see the old file or the new one, never a
mix), and the directory is fsync'd. The new file's ``versions`` attribute lists the history.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from structrom.rom import model_file
from structrom.rom.atomic import fsync_path
from structrom.rom.model_file import ReducedModelData

VERSIONS_DIR = "versions"


def version_path(path: str | Path, version: int) -> Path:
    """Where version ``version`` of the model ``path`` is kept once superseded."""
    path = Path(path)
    return path.parent / VERSIONS_DIR / f"{path.stem}.v{version}{path.suffix}"


def keep_current(path: Path) -> Path:
    """Keep the current file of ``path`` as ``versions/<id>.v<k>.h5`` (k: its version); returns that path."""
    parent = model_file.load(path)
    kept = version_path(path, parent.version)
    kept.parent.mkdir(parents=True, exist_ok=True)
    if not kept.exists():
        try:
            os.link(path, kept)
        except OSError:
            tmp = kept.with_name(kept.name + ".partial")
            shutil.copy2(path, tmp)
            os.replace(tmp, kept)
        fsync_path(kept.parent, directory=True, strict=False)
    return kept


def publish_version(path: str | Path, data: ReducedModelData, mesh, modes: np.ndarray,
                    full_duals: dict[str, np.ndarray], loadings_added: list[dict], note: str = "") -> Path:
    """Publish ``data`` as the next version of the model file ``path`` (see the module docstring).

    ``data.versions`` must hold the parent's history; the new entry (version, parent, date, loadings
    added, where the parent is kept) is appended here."""
    path = Path(path)
    parent_version = data.version
    kept = keep_current(path) if path.exists() else None
    history = list(data.versions) or [{"version": 1, "parent": None,
                                       "date": data.provenance.get("created"), "loadings_added": [],
                                       "note": "offline stage"}]
    history.append({"version": parent_version + 1, "parent": parent_version,
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadings_added": loadings_added,
                    "kept_as": str(kept.relative_to(path.parent)) if kept is not None else None, "note": note})
    data.versions = history
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".h5", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        model_file.write(tmp, data, mesh, modes, full_duals)
        os.chmod(tmp, (path.stat().st_mode if path.exists() else 0o644) & 0o777)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent, directory=True, strict=False)
    finally:
        tmp.unlink(missing_ok=True)
    return path
