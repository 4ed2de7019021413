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

from ..fem.io import MESHIO_TO_ELEMENT, _cell_dim, mesh_from_meshio, read_meshio
from ..fem.mesh import Mesh, MeshError
from .magnitudes import ABSURD, beyond

__all__ = ["read_meshio_series"]


def _used_nodes(m, n_points: int) -> np.ndarray:
    """The nodes :func:`mesh_from_meshio` keeps (used by a volume cell), in order (call it after that function,
    which checks the node numbers)."""
    used = np.zeros(n_points, dtype=bool)
    for blk in m.cells:
        if _cell_dim(blk.type) == 3 and blk.type in (*MESHIO_TO_ELEMENT, "hexahedron20"):
            used[np.asarray(blk.data, dtype=np.int64).ravel()] = True
    return np.flatnonzero(used)


def _cells_of(m) -> list[tuple[str, np.ndarray]]:
    """The volume cells of a meshio mesh, ``[(type, connectivity)]`` (to compare the meshes of a series)."""
    return [(blk.type, np.asarray(blk.data)) for blk in m.cells if _cell_dim(blk.type) == 3]


def _as_3d(name, values, n: int, source: str, keep: np.ndarray) -> np.ndarray:
    """Point data ``values`` ``(n, ...)`` as ``(n_kept, k)`` float at the kept nodes ``keep``: :class:`MeshError`
    naming ``source`` and the field for a missing name, text or complex data, a row count other than the mesh's, or
    a non-finite value at a kept node."""
    if not isinstance(name, str) or not name:
        raise MeshError(f"{source}: a point-data array has no name ({name!r}); name every field")
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise MeshError(f"{source}: point data {name!r} is not real numbers ({values.dtype}); write the field as "
                        "real floats")
    if values.shape[:1] != (n,):
        raise MeshError(f"{source}: point data {name!r} has {values.shape[0] if values.ndim else 0} rows, the mesh "
                        f"has {n} points: node count mismatch")
    out = values.astype(float).reshape(n, -1)[keep]
    bad = beyond(out)
    if bad.any():
        at = np.argwhere(bad)[0]
        raise MeshError(f"{source}: point data {name!r} is not finite at node {int(keep[at[0]])} (NaN, infinity or "
                        f"a magnitude above {ABSURD:g}: {float(out[tuple(at)]):.6g}): the run that wrote it failed or "
                        "the file is damaged")
    return out


def _check_times(times, n_steps: int, source: str) -> np.ndarray:
    """``times`` as ``(n_steps,)`` float, finite and strictly increasing (:class:`MeshError` naming ``source``)."""
    try:
        t = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        raise MeshError(f"{source}: times must be numbers, got {str(times)[:80]!r}") from None
    if t.ndim != 1 or len(t) != n_steps:
        raise MeshError(f"{source}: {t.size} times of shape {t.shape} for {n_steps} time steps: give one time per "
                        "step")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise MeshError(f"{source}: times must be finite and strictly increasing, got {t[:8].tolist()}"
                        + (" ..." if len(t) > 8 else ""))
    return t


def _stack(data: dict[str, list[np.ndarray]], source: str, steps: list[str]) -> dict[str, np.ndarray]:
    """Each field's steps stacked ``(n_t, n_nodes, k)``: :class:`MeshError` when its component count changes."""
    out = {}
    for name, values in data.items():
        k0 = values[0].shape[1]
        for v, step in zip(values, steps):
            if v.shape[1] != k0:
                raise MeshError(f"{source}: point data {name!r} has {v.shape[1]} components at {step}, "
                                f"{k0} at {steps[0]}: a field keeps its shape over the series")
        out[name] = np.stack(values)
    return out


def _natural_key(path: str):
    return [int(t) if i % 2 else t for i, t in enumerate(re.split(r"([0-9]+)", path))]


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

    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(path, (str, os.PathLike)) and any(c in str(path) for c in "*?[") and not Path(path).exists():
        files = sorted(glob.glob(str(path)), key=_natural_key)
        if not files:
            raise MeshError(f"{path}: the pattern matches no file")
        path = files
    if not isinstance(path, (str, os.PathLike)):
        files = [Path(p) for p in path]
        if not files:
            raise MeshError("read_meshio_series: no files given")
        first = read_meshio(files[0])
        mesh = mesh_from_meshio(first, quadratic_hex=quadratic_hex, source=str(files[0]))
        keep = _used_nodes(first, len(first.points))
        cells0 = _cells_of(first)
        data: dict[str, list[np.ndarray]] = {}
        for i, f in enumerate(files):
            m = first if i == 0 else read_meshio(f)
            if i and (np.shape(m.points) != np.shape(first.points)
                      or not np.allclose(np.asarray(m.points, dtype=float), first.points, equal_nan=True)):
                raise MeshError(f"{f}: its points differ from those of {files[0]} ({np.shape(m.points)} vs "
                                f"{first.points.shape}): a series needs one mesh")
            if i and not _same_cells(_cells_of(m), cells0):
                raise MeshError(f"{f}: its volume cells differ from those of {files[0]}: a series needs one mesh")
            names = set(m.point_data)
            if i and names != set(data):
                raise MeshError(f"{f}: point data {sorted(map(str, names))} differ from {files[0]}'s {sorted(data)}")
            for name, v in m.point_data.items():
                data.setdefault(name, []).append(_as_3d(name, v, len(m.points), str(f), keep))
        t = np.arange(len(files), dtype=float) if times is None else \
            _check_times(times, len(files), "read_meshio_series")
        return mesh, t, _stack(data, "read_meshio_series", [str(f) for f in files])

    path = Path(path)
    if not path.exists():
        raise MeshError(f"{path}: file not found")
    if not path.is_file():
        raise MeshError(f"{path}: not a regular file (a directory or a device); give the mesh file")
    if path.suffix.lower() in (".xdmf", ".xmf"):
        try:
            with open(path, "rb") as fh:
                head = fh.read(1 << 20).decode("utf-8", errors="replace")
        except OSError as exc:
            raise MeshError(f"{path}: cannot read it ({exc})") from None
        if re.search(r"""CollectionType\s*=\s*["']Temporal["']""", head):
            from .reader_process import run_isolated  # (HDF5 can crash natively on damaged data: not in this process)

            return run_isolated(_xdmf_series, str(path), quadratic_hex, None if times is None else list(times),
                                crashed=lambda: MeshError(f"{path}: reading its HDF5 data crashed HDF5 (a native "
                                                          "crash): the .h5 file is damaged; write the series again"))
    m = read_meshio(path)
    mesh = mesh_from_meshio(m, quadratic_hex=quadratic_hex, source=str(path))
    keep = _used_nodes(m, len(m.points))
    data = {name: _as_3d(name, v, len(m.points), str(path), keep)[None] for name, v in m.point_data.items()}
    return mesh, np.zeros(1) if times is None else _check_times(times, 1, str(path)), data


def _same_cells(a: list[tuple[str, np.ndarray]], b: list[tuple[str, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(ta == tb and ca.shape == cb.shape and np.array_equal(ca, cb)
                                    for (ta, ca), (tb, cb) in zip(a, b))


def _mesh_of(meshio, points, cells, path: Path):
    """The series' mesh from the reader's arrays (:class:`MeshError` for arrays meshio cannot make a mesh of)."""
    try:
        return meshio.Mesh(points, cells)
    except (Exception, SystemExit) as exc:
        raise MeshError(f"{path}: its geometry or topology is not a mesh ({type(exc).__name__}: {exc})") from None


def _one_mesh(reader, k: int, path: Path, base) -> None:
    """:class:`MeshError` when time step ``k`` of an XDMF series has a geometry or topology of its own, other than the
    series' mesh ``base`` (a moved or remeshed step: meshio's reader would pair its fields with the first step's mesh),
    or an unnamed or twice-named field. Steps that repeat the first one's data items (as most writers do) or the same
    arrays pass."""
    grid = reader.collection[k]
    first = reader.mesh_grid  # (the grid meshio reads the mesh from)
    for tag in ("Geometry", "Topology"):
        mine = [c for c in grid if c.tag == tag]
        if not mine or grid is first:
            continue
        ref = [c for c in first if c.tag == tag]
        if len(mine) == 1 and len(ref) == 1 and _items(mine[0]) == _items(ref[0]):
            continue
        if not _same_arrays(reader, mine, tag, base):
            raise MeshError(f"{path}: time step {k} has a {tag} of its own (a moved or remeshed step): a series needs "
                            "one mesh; write one series per mesh")
    names = [c.get("Name") for c in grid if c.tag == "Attribute"]
    if any(not n for n in names):
        raise MeshError(f"{path}: time step {k} has an Attribute without a Name; name every field")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise MeshError(f"{path}: time step {k} has two fields named {dup[0]!r}; give each field its own name")


def _items(element) -> list[tuple[str, str]]:
    """The data items of an XDMF element: (attributes, reference or text) in order."""
    return [(str(sorted(d.attrib.items())), (d.text or "").strip()) for d in element.iter("DataItem")]


def _same_arrays(reader, elements, tag: str, base) -> bool:
    """Whether a step's own ``Geometry`` / ``Topology`` ``elements`` hold the arrays of the mesh ``base`` (one data
    item each; False for anything else or what cannot be read)."""
    try:
        arrays = [reader._read_data_item(d) for e in elements for d in e.iter("DataItem")]
    except (Exception, SystemExit):
        return False
    if tag == "Geometry":
        return len(arrays) == 1 and np.shape(arrays[0]) == base.points.shape and np.array_equal(arrays[0], base.points)
    blocks = [np.asarray(b.data) for b in base.cells]
    return len(arrays) == len(blocks) == 1 and np.shape(arrays[0]) == blocks[0].shape and np.array_equal(arrays[0],
                                                                                                        blocks[0])


def _xdmf_series(path_text: str, quadratic_hex: str, times) -> tuple[Mesh, np.ndarray, dict[str, np.ndarray]]:
    """:func:`read_meshio_series` of an XDMF time series (run in a process of its own: HDF5 can crash natively)."""
    import meshio

    path = Path(path_text)
    try:
        reader = meshio.xdmf.TimeSeriesReader(str(path))
        points, cells = reader.read_points_cells()
        n_steps = reader.num_steps
    except (Exception, SystemExit) as exc:
        raise MeshError(f"{path}: cannot read the XDMF time series ({type(exc).__name__}: {exc}); is its .h5 file "
                        "next to it and complete? (meshio's reader takes one mesh, tetra and hexahedron blocks of one "
                        "order)") from None
    if not n_steps:
        raise MeshError(f"{path}: the time series has no time step")
    base = _mesh_of(meshio, points, cells, path)
    mesh = mesh_from_meshio(base, quadratic_hex=quadratic_hex, source=str(path))
    keep = _used_nodes(base, len(base.points))
    t = np.zeros(n_steps)
    data: dict[str, list[np.ndarray]] = {}
    for k in range(n_steps):
        _one_mesh(reader, k, path, base)
        try:
            t[k], point_data, _ = reader.read_data(k)
        except (Exception, SystemExit) as exc:
            raise MeshError(f"{path}: time step {k} cannot be read ({type(exc).__name__}: {exc}); the file or its "
                            ".h5 is truncated") from None
        if k and set(point_data) != set(data):
            raise MeshError(f"{path}: time step {k} has point data {sorted(map(str, point_data))}, step 0 had "
                            f"{sorted(data)}")
        for name, v in point_data.items():
            data.setdefault(name, []).append(_as_3d(name, v, len(base.points), f"{path} step {k}", keep))
    t = _check_times(t if times is None else times, n_steps, str(path))
    return mesh, t, _stack(data, str(path), [f"step {k}" for k in range(n_steps)])
