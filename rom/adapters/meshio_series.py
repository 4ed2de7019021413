"""Mesh plus nodal point data from anything meshio reads: XDMF time series, one file per time (VTU...),
or a single file (Abaqus .inp, MED, VTU...).

Numbering: the mesh is converted by :func:`structrom.rom.fem.io.mesh_from_meshio` (volume cells only; nodes no volume
element uses are dropped, the others keep their order), and every point-data array is restricted to the
kept nodes in the same order, so row ``i`` belongs to our node ``i``. Cell data (element blocks) are not
returned: meshio has no integration points.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fem.io import MESHIO_TO_ELEMENT, _cell_dim, mesh_from_meshio
from ..fem.mesh import Mesh, MeshError

__all__ = ["read_meshio_series"]


def _used_nodes(m, n_points: int) -> np.ndarray:
    """The nodes :func:`mesh_from_meshio` keeps (used by a volume cell), in order."""
    used = np.zeros(n_points, dtype=bool)
    for blk in m.cells:
        if _cell_dim(blk.type) == 3 and blk.type in (*MESHIO_TO_ELEMENT, "hexahedron20"):
            used[np.asarray(blk.data, dtype=np.int64).ravel()] = True
    return np.flatnonzero(used)


def _as_3d(name: str, values: np.ndarray, n: int, source: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.shape[:1] != (n,):
        raise MeshError(f"{source}: point data {name!r} has {values.shape[0] if values.ndim else 0} rows, the mesh "
                        f"has {n} points: node count mismatch")
    return values.reshape(n, -1)


def _natural_key(path: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def read_meshio_series(path: str | os.PathLike | Sequence[str | os.PathLike], *, quadratic_hex: str = "C3D20",
                       times: Sequence[float] | None = None) -> tuple[Mesh, np.ndarray, dict[str, np.ndarray]]:
    """Read a mesh and its nodal fields over time.

    ``path``: an XDMF time series (``.xdmf``/``.xmf`` written by ``meshio.xdmf.TimeSeriesWriter``, times from
    the file); a list of files or a glob pattern (one time per file, sorted naturally, times ``0, 1, ...``
    unless ``times`` is given; every file must have the first one's points); or one file of any meshio
    format (one time, 0). Returns ``(mesh, times (n_t,), {field: (n_t, n_nodes, k)})`` on our node
    numbering (see the module docstring). Errors (:class:`~structrom.rom.fem.mesh.MeshError`) name the file and the
    field or time step.
    """
    import meshio

    if isinstance(path, (str, os.PathLike)) and any(c in str(path) for c in "*?[") and not Path(path).exists():
        files = sorted(glob.glob(str(path)), key=_natural_key)
        if not files:
            raise MeshError(f"{path}: the pattern matches no file")
        path = files
    if not isinstance(path, (str, os.PathLike)):
        files = [Path(p) for p in path]
        if not files:
            raise MeshError("read_meshio_series: no files given")
        first = _read(files[0])
        keep = _used_nodes(first, len(first.points))
        mesh = mesh_from_meshio(first, quadratic_hex=quadratic_hex, source=str(files[0]))
        data: dict[str, list[np.ndarray]] = {}
        for i, f in enumerate(files):
            m = first if i == 0 else _read(f)
            if m.points.shape != first.points.shape or not np.allclose(m.points, first.points):
                raise MeshError(f"{f}: its points differ from those of {files[0]} ({m.points.shape} vs "
                                f"{first.points.shape}): a series needs one mesh")
            names = set(m.point_data)
            if i and names != set(data):
                raise MeshError(f"{f}: point data {sorted(names)} differ from {files[0]}'s {sorted(data)}")
            for name, v in m.point_data.items():
                data.setdefault(name, []).append(_as_3d(name, v, len(m.points), str(f))[keep])
        t = np.arange(len(files), dtype=float) if times is None else np.asarray(times, dtype=float)
        if len(t) != len(files):
            raise MeshError(f"read_meshio_series: {len(t)} times for {len(files)} files")
        return mesh, t, {k: np.stack(v) for k, v in data.items()}

    path = Path(path)
    if not path.exists():
        raise MeshError(f"{path}: file not found")
    if path.suffix.lower() in (".xdmf", ".xmf"):
        reader = None
        if 'CollectionType="Temporal"' in path.read_text(errors="replace"):
            try:
                reader = meshio.xdmf.TimeSeriesReader(str(path))
                points, cells = reader.read_points_cells()
                n_steps = reader.num_steps
            except (Exception, SystemExit) as exc:
                raise MeshError(f"{path}: cannot read the XDMF time series ({type(exc).__name__}: {exc}); "
                                "is its .h5 file next to it and complete?") from None
        if reader is not None:
            base = meshio.Mesh(points, cells)
            keep = _used_nodes(base, len(points))
            mesh = mesh_from_meshio(base, quadratic_hex=quadratic_hex, source=str(path))
            t = np.zeros(n_steps)
            data = {}
            for k in range(n_steps):
                try:
                    t[k], point_data, _ = reader.read_data(k)
                except (Exception, SystemExit) as exc:
                    raise MeshError(f"{path}: time step {k} cannot be read ({type(exc).__name__}: {exc}); "
                                    "the file or its .h5 is truncated") from None
                if k and set(point_data) != set(data):
                    raise MeshError(f"{path}: time step {k} has point data {sorted(point_data)}, step 0 had "
                                    f"{sorted(data)}")
                for name, v in point_data.items():
                    data.setdefault(name, []).append(_as_3d(name, v, len(points), f"{path} step {k}")[keep])
            if times is not None:
                t = np.asarray(times, dtype=float)
            return mesh, t, {k: np.stack(v) for k, v in data.items()}
    m = _read(path)
    keep = _used_nodes(m, len(m.points))
    mesh = mesh_from_meshio(m, quadratic_hex=quadratic_hex, source=str(path))
    data = {name: _as_3d(name, v, len(m.points), str(path))[keep][None] for name, v in m.point_data.items()}
    return mesh, np.zeros(1) if times is None else np.asarray(times, dtype=float), data


def _read(path: Path):
    import meshio

    if not Path(path).exists():
        raise MeshError(f"{path}: file not found")
    try:
        return meshio.read(path)
    except (Exception, SystemExit) as exc:  # meshio calls sys.exit when no reader accepts the file
        raise MeshError(f"{path}: meshio could not read it ({type(exc).__name__}: {exc})") from exc
