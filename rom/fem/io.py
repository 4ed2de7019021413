"""Reading and writing meshes through meshio (gmsh .msh 2/4, .vtu, .xdmf, Abaqus .inp, .med, ...).

Volume cells become elements (``tetra -> C3D4``, ``tetra10 -> C3D10``, ``hexahedron -> C3D8``,
``hexahedron20 -> C3D20`` or ``C3D20R``, ``wedge -> C3D6``, ``wedge15 -> C3D15``); meshio already converts gmsh's
node orderings to VTK's, which is CalculiX's (VTK 9's wedges included: its parametric coordinates and cell volumes
are CalculiX's). Except meshio's 6-node ``wedge``: its VTK readers and writers mirror the numbering (corners 1 <-> 2,
4 <-> 5), so a VTK file's wedges come in mirrored; every wedge whose corners 0, 1, 2 turn away from 3, 4, 5 is
renumbered by :data:`~structrom.rom.fem.elements.WEDGE_MIRROR` on reading (the same solid in CalculiX's
numbering), and :func:`write_mesh` mirrors 6-node wedges before meshio writes ``.vtu``/``.vtk`` so that the file
holds VTK's numbering. Lower-dimensional cells are not elements: the named groups they belong to (gmsh physical
groups, Abaqus sets) become sets:

* a 3D group -> element set and node set of the same name;
* a 2D group -> surface set (each boundary face matched to ``(element, local face)``) and node set;
* a 0D/1D group -> node set.

Face matching (:mod:`structrom.rom.fem.face_matching`, shared with :mod:`structrom.rom.fem.structured`) compares
faces by their sorted corner nodes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import meshio
import numpy as np

from .elements import WEDGE_MIRROR, orient_wedges
from .face_matching import element_faces, faces_on_nodes, match_faces  # noqa: F401 (API)

try:  # listed in meshio's __all__ but not always exported
    from meshio._mesh import topological_dimension as _TOPO_DIM
except ImportError:  # pragma: no cover
    _TOPO_DIM = meshio.topological_dimension
# meshio 5.3's table of cell dimensions omits the 15-node wedge (its readers and writers know it, but building a
# meshio.Mesh with such cells raises KeyError): it is a volume cell.
_TOPO_DIM.setdefault("wedge15", 3)
from .mesh import NODES_PER_ELEMENT, CellBlock, Mesh, MeshError
from .meshio_files import HDF5_SUFFIXES, read_meshio  # noqa: F401 (API)

__all__ = [
    "read_mesh",
    "read_meshio",
    "write_mesh",
    "mesh_from_meshio",
    "mesh_to_meshio",
    "element_faces",
    "match_faces",
    "faces_on_nodes",
    "MESHIO_TO_ELEMENT",
    "ELEMENT_TO_MESHIO",
]

#: meshio volume cell type -> element type (``hexahedron20`` is switchable, see :func:`read_mesh`).
MESHIO_TO_ELEMENT = {"tetra": "C3D4", "tetra10": "C3D10", "hexahedron": "C3D8", "hexahedron20": "C3D20",
                     "wedge": "C3D6", "wedge15": "C3D15"}
#: element type -> meshio cell type.
ELEMENT_TO_MESHIO = {
    "C3D4": "tetra",
    "C3D10": "tetra10",
    "C3D8": "hexahedron",
    "C3D20": "hexahedron20",
    "C3D20R": "hexahedron20",
    "C3D6": "wedge",
    "C3D15": "wedge15",
}

# Corner nodes of the boundary cell types that can name faces.
_FACE_CORNERS = {"triangle": 3, "triangle6": 3, "triangle7": 3, "quad": 4, "quad8": 4, "quad9": 4}


# -- meshio conversion -----------------------------------------------------------------------------
def _cell_dim(cell_type: str) -> int:
    try:
        return int(_TOPO_DIM[cell_type])
    except KeyError:
        raise MeshError(f"unknown meshio cell type {cell_type!r}") from None


def _named_groups(m: meshio.Mesh) -> dict[str, list[np.ndarray | None]]:
    """Named groups of cells as ``{name: [indices within meshio block i, or None]}``."""
    groups: dict[str, list[np.ndarray | None]] = {}
    for name, per_block in (m.cell_sets or {}).items():
        if name.startswith("gmsh:"):
            continue
        groups[name] = [None if s is None else np.asarray(s, dtype=np.int64) for s in per_block]
    physical = m.cell_data.get("gmsh:physical")
    if not groups and physical is not None and len(physical) == len(m.cells):
        # gmsh 2.2 files: physical tags per cell, names (tag, dim) in field_data
        for name, (tag, dim) in ((k, v[:2]) for k, v in m.field_data.items()):
            groups[name] = [
                np.flatnonzero(np.asarray(tags) == tag) if _cell_dim(blk.type) == dim else None
                for blk, tags in zip(m.cells, physical)
            ]
    return groups


def mesh_from_meshio(
    m: meshio.Mesh,
    *,
    quadratic_hex: str = "C3D20",
    drop_unused_nodes: bool = True,
    source: str = "meshio mesh",
) -> Mesh:
    """Convert a :class:`meshio.Mesh` (see the module docstring for how cells and groups map).

    ``quadratic_hex``: ``"C3D20"`` or ``"C3D20R"`` for ``hexahedron20`` cells.
    ``drop_unused_nodes``: remove points no volume element uses (and renumber), since they would carry
    unconstrained degrees of freedom. ``source`` names the file in error messages.
    """
    if quadratic_hex not in ("C3D20", "C3D20R"):
        raise MeshError(f"quadratic_hex must be 'C3D20' or 'C3D20R', got {quadratic_hex!r}")
    types = dict(MESHIO_TO_ELEMENT, hexahedron20=quadratic_hex)
    points = _real_array(m.points, f"{source}: points")
    if points.ndim != 2 or points.shape[1] != 3:
        raise MeshError(f"{source}: points must have shape (n, 3), got {points.shape}"
                        + ("; a 2D (x, y) mesh has no volume: mesh the solid in 3D" if points.ndim == 2
                           and points.shape[1] == 2 else ""))

    # Volume blocks, merged per element type in order of first appearance.
    merged: dict[str, list[np.ndarray]] = {}
    for blk in m.cells:
        dim = _cell_dim(blk.type)
        if dim == 3:
            if blk.type not in types:
                raise MeshError(
                    f"{source}: volume cells of type {blk.type!r} are not supported (supported: "
                    f"{', '.join(types)}); re-mesh with tetrahedra, hexahedra or wedges "
                    "(e.g. gmsh: no pyramids, Mesh.SecondOrderIncomplete=1 for 20-node hexahedra and "
                    "15-node wedges)"
                )
            e = types[blk.type]
            merged.setdefault(e, []).append(
                cell_connectivity(blk.data, len(points), NODES_PER_ELEMENT[e], f"{source}: {blk.type} cells"))
    if not merged or not sum(len(c) for blocks in merged.values() for c in blocks):
        raise MeshError(
            f"{source}: no volume cells (found {sorted({b.type for b in m.cells})}); "
            "mesh the volume (gmsh: mesh.generate(3))"
        )
    for e, conns in merged.items():
        if e in WEDGE_MIRROR:
            merged[e] = conns = [orient_wedges(points, c) for c in conns]
        _check_volumes(points, np.concatenate(conns), e, source)
    element_order = list(merged)
    counts = {e: sum(len(c) for c in merged[e]) for e in element_order}
    start = dict(zip(element_order, np.cumsum([0] + [counts[e] for e in element_order])[:-1]))
    # Global element indices of each meshio volume block.
    block_global: list[np.ndarray | None] = []
    running = dict(start)
    for blk in m.cells:
        if _cell_dim(blk.type) == 3:
            e = types[blk.type]
            block_global.append(np.arange(running[e], running[e] + len(blk.data)))
            running[e] += len(blk.data)
        else:
            block_global.append(None)
    blocks = [CellBlock(e, np.concatenate(merged[e])) for e in element_order]

    # Node renumbering.
    old_to_new = np.arange(len(points))
    if drop_unused_nodes:
        used = np.zeros(len(points), dtype=bool)
        for b in blocks:
            used[b.connectivity.ravel()] = True
        if not used.all():
            old_to_new = np.cumsum(used) - 1
            old_to_new[~used] = -1
            points = points[used]
            blocks = [CellBlock(b.element, old_to_new[b.connectivity]) for b in blocks]
    probe = Mesh(points, blocks)

    node_sets: dict[str, np.ndarray] = {}
    element_sets: dict[str, np.ndarray] = {}
    surface_sets: dict[str, np.ndarray] = {}

    def add_nodes(name: str, old_nodes: np.ndarray) -> None:
        new = old_to_new[np.unique(old_nodes)]
        new = new[new >= 0]
        node_sets[name] = np.union1d(node_sets.get(name, np.zeros(0, np.int64)), new)

    for name, per_block in _named_groups(m).items():
        faces, elements = [], []
        for i, (blk, idx) in enumerate(zip(m.cells, per_block)):
            if idx is None or len(idx) == 0:
                continue
            data = cell_connectivity(blk.data, len(points), None, f"{source}: {blk.type} cells of group {name!r}")[idx]
            add_nodes(name, data.ravel())
            dim = _cell_dim(blk.type)
            if dim == 3:
                elements.append(block_global[i][idx])
            elif dim == 2 and blk.type in _FACE_CORNERS:
                faces.append(old_to_new[data[:, : _FACE_CORNERS[blk.type]]])
        if elements:
            element_sets[name] = np.concatenate(elements)
        if faces:
            tri = [f for f in faces if f.shape[1] == 3]
            quad = [f for f in faces if f.shape[1] == 4]
            parts = [match_faces(probe, np.concatenate(g), name=f"{source}: surface set {name!r}")
                     for g in (tri, quad) if g]
            surface_sets[name] = np.concatenate(parts)
    for name, nodes in (m.point_sets or {}).items():
        if not name.startswith("gmsh:"):
            ids = cell_connectivity(np.reshape(nodes, (-1, 1)), len(points), 1, f"{source}: point set {name!r}") \
                if np.size(nodes) else np.zeros((0, 1), dtype=np.int64)
            add_nodes(name, ids.ravel())
    return Mesh(points, blocks, node_sets=node_sets, element_sets=element_sets, surface_sets=surface_sets)


#: Corner nodes spanning a tetrahedron at the first corner (tetrahedra: nodes 0-3; hexahedra, VTK order: 0, 1, 3, 4).
_CORNER_TET = {"C3D4": (0, 1, 2, 3), "C3D10": (0, 1, 2, 3), "C3D8": (0, 1, 3, 4), "C3D20": (0, 1, 3, 4),
               "C3D20R": (0, 1, 3, 4), "C3D6": (0, 1, 2, 3), "C3D15": (0, 1, 2, 3)}


def _check_volumes(points: np.ndarray, conn: np.ndarray, element: str, source: str) -> None:
    """:class:`MeshError` for an element ``conn`` ``(n_elements, nodes)`` that uses a node twice (a node number that
    did not exist and was wrapped around) or whose corner tetrahedron has no volume (``|det| <= 1e-12 L^3``, ``L``
    its longest edge from the first corner: a flat element, e.g. 2D points under volume cells)."""
    srt = np.sort(conn, axis=1)
    twice = np.flatnonzero(np.any(srt[:, 1:] == srt[:, :-1], axis=1))
    if twice.size:
        k = int(twice[0])
        raise MeshError(f"{source}: {element} element {k} (nodes {conn[k].tolist()[:20]}) uses a node twice "
                        f"({twice.size} such element(s)): the connectivity is damaged, or a node number did not exist "
                        "(gmsh tags are wrapped around by meshio)")
    a, b, c, d = (points[conn[:, i]] for i in _CORNER_TET[element])
    e1, e2, e3 = b - a, c - a, d - a
    det = np.einsum("ij,ij->i", e1, np.cross(e2, e3))
    edge = np.max([np.linalg.norm(e, axis=1) for e in (e1, e2, e3)], axis=0)
    bad = np.flatnonzero(~(np.abs(det) > 1e-12 * edge ** 3))
    if bad.size:
        k = int(bad[0])
        raise MeshError(f"{source}: {element} element {k} (nodes {conn[k].tolist()[:8]}) has no volume (a flat "
                        f"element; {bad.size} such element(s)): the connectivity or the points are damaged")


def _real_array(values, what: str) -> np.ndarray:
    """``values`` as a float array; :class:`MeshError` naming ``what`` for text, complex or object data."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise MeshError(f"{what}: expected real numbers, got data of type {arr.dtype}")
    return arr.astype(float, copy=False)


def cell_connectivity(data, n_points: int, n_nodes: int | None, what: str) -> np.ndarray:
    """Node numbers of a meshio cell block ``(n_cells, n_nodes)`` int64, checked: integers, 2D (``n_nodes`` per cell
    when given), each in ``0 .. n_points - 1``; :class:`MeshError` naming ``what`` and the first bad cell."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "iu" or arr.ndim != 2 or (n_nodes is not None and arr.shape[1] != n_nodes):
        shape = f"(n_cells, {n_nodes})" if n_nodes is not None else "(n_cells, nodes per cell)"
        raise MeshError(f"{what}: node numbers must be integers of shape {shape}, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) | (arr >= n_points)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise MeshError(f"{what}: cell {int(i)} references node {int(arr[i, j])}, outside 0..{n_points - 1}: the "
                        "connectivity and the points do not match (a damaged or mixed file)")
    return arr


def read_mesh(path: str | os.PathLike, *, quadratic_hex: str = "C3D20", drop_unused_nodes: bool = True) -> Mesh:
    """Read any meshio-readable mesh file (:func:`read_meshio`); see :func:`mesh_from_meshio` for the options."""
    return mesh_from_meshio(read_meshio(path), quadratic_hex=quadratic_hex, drop_unused_nodes=drop_unused_nodes,
                            source=str(path))


def _split_cell_data(mesh: Mesh, cell_data: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    offsets = mesh.block_offsets
    out = {}
    for name, values in cell_data.items():
        values = np.asarray(values)
        if values.shape[:1] != (mesh.n_elements,):
            raise MeshError(
                f"cell_data[{name!r}] must have one row per element ({mesh.n_elements}), got shape {values.shape}"
            )
        out[name] = [values[offsets[b] : offsets[b + 1]] for b in range(len(mesh.blocks))]
    return out


def mesh_to_meshio(
    mesh: Mesh,
    point_data: Mapping[str, np.ndarray] | None = None,
    cell_data: Mapping[str, np.ndarray] | None = None,
) -> meshio.Mesh:
    """Convert to :class:`meshio.Mesh`. ``point_data`` arrays have ``n_nodes`` rows, ``cell_data`` arrays
    ``n_elements`` rows (global element order; split per block here). Sets are not transferred."""
    point_data = dict(point_data or {})
    for name, values in point_data.items():
        if np.shape(values)[:1] != (mesh.n_nodes,):
            raise MeshError(
                f"point_data[{name!r}] must have one row per node ({mesh.n_nodes}), got shape {np.shape(values)}"
            )
    cells = [(ELEMENT_TO_MESHIO[b.element], b.connectivity) for b in mesh.blocks]
    return meshio.Mesh(mesh.points, cells, point_data=point_data, cell_data=_split_cell_data(mesh, cell_data or {}))


def write_mesh(
    path: str | os.PathLike,
    mesh: Mesh,
    point_data: Mapping[str, np.ndarray] | None = None,
    cell_data: Mapping[str, np.ndarray] | None = None,
    *,
    file_format: str | None = None,
) -> Path:
    """Write the mesh (and data) with meshio, atomically.

    Everything is written into a temporary directory next to ``path`` under the final file names; the
    companion files (e.g. XDMF's ``.h5``, which the ``.xdmf`` references by name) are moved into place
    first and the main file last, each with :func:`os.replace`, so a reader never sees a partial main
    file. Returns the path written.
    """
    path = Path(path)
    m = mesh_to_meshio(mesh, point_data, cell_data)
    if (file_format or path.suffix.lstrip(".")).lower() in ("vtu", "vtk"):  # meshio's VTK writers mirror wedges
        m.cells = [meshio.CellBlock(c.type, c.data[:, WEDGE_MIRROR["C3D6"]] if c.type == "wedge" else c.data)
                   for c in m.cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        try:
            meshio.write(tmp / path.name, m, file_format=file_format)
        except Exception as exc:
            raise MeshError(f"{path}: meshio could not write it ({type(exc).__name__}: {exc})") from exc
        for f in sorted(tmp.iterdir()):
            if f.name != path.name:
                os.replace(f, path.parent / f.name)
        os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
