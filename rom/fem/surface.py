"""Face integration for surface loads (pressure, traction) on element faces.

A face is a pair ``(global element, local face)`` with the local face CalculiX's ``S1..S6`` (``S1..S5`` for
wedges) minus one
(:data:`structrom.rom.fem.faces.FACES`). On each face, ``a = dx/dr x dx/ds`` (face shape of
:mod:`structrom.rom.fem.elements`) is, with CalculiX's face tables, the *inward* normal times the area density
``dA = |a| dr ds``. Units: lengths in the mesh unit, pressure/traction in force per area.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structrom.rom.fem.elements import ELEMENTS
from structrom.rom.fem.mesh import Mesh, MeshError


@dataclass
class FaceIntegration:
    """Integration data for the faces of one element block.

    ``rows``: ``(n_f,)`` positions of these faces in the ``faces`` array given to
    :func:`face_integration`; ``nodes``: ``(n_f, n_fn)`` global nodes of each face (corners first);
    ``N``: ``(n_g, n_fn)`` face shape functions at the face Gauss points; ``area_vectors``:
    ``(n_f, n_g, 3)`` inward unit normal times ``dA`` weight (``(dx/dr x dx/ds) w_g``, so that
    ``sum_g |area_vectors|`` is the face area); ``coordinates``: ``(n_f, n_g, 3)`` Gauss points.
    """

    element: str
    rows: np.ndarray
    nodes: np.ndarray
    N: np.ndarray
    area_vectors: np.ndarray
    coordinates: np.ndarray

    @property
    def dofs(self) -> np.ndarray:
        """``(n_f, 3 n_fn)`` node-major dofs ``3 node + c`` of each face."""
        return (3 * self.nodes[:, :, None] + np.arange(3)).reshape(len(self.nodes), -1)


def check_faces(mesh: Mesh, faces: np.ndarray, name: str = "faces") -> np.ndarray:
    """Validate an ``(n_faces, 2)`` ``(global element, local face)`` array; return it as int64."""
    faces = np.asarray(faces)
    if faces.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 2 or not np.issubdtype(faces.dtype, np.integer):
        raise MeshError(
            f"{name} must be an integer array of shape (n_faces, 2) holding (global element, "
            f"local face 0..5) pairs, got dtype {faces.dtype} and shape {faces.shape}"
        )
    faces = faces.astype(np.int64)
    ne = mesh.n_elements
    bad = (faces[:, 0] < 0) | (faces[:, 0] >= ne)
    if bad.any():
        i = int(np.argmax(bad))
        raise MeshError(
            f"{name}[{i}] references element {faces[i, 0]} outside 0..{ne - 1}: use global element "
            f"indices (blocks numbered one after the other)"
        )
    block, _ = mesh.element_block(faces[:, 0])
    n_faces = np.array([ELEMENTS[b.element].n_faces for b in mesh.blocks])[block]
    bad = (faces[:, 1] < 0) | (faces[:, 1] >= n_faces)
    if bad.any():
        i = int(np.argmax(bad))
        el = mesh.blocks[block[i]].element
        raise MeshError(
            f"{name}[{i}] has local face {faces[i, 1]} but element {faces[i, 0]} ({el}) has faces "
            f"0..{n_faces[i] - 1} (CalculiX S1..S{n_faces[i]} minus one)"
        )
    return faces


def face_integration(mesh: Mesh, faces: np.ndarray) -> list[FaceIntegration]:
    """Face Gauss data for ``faces`` ``(n_faces, 2)``: one :class:`FaceIntegration` per block and face shape hit
    (a wedge block gives one for its triangles and one for its quadrilaterals)."""
    faces = check_faces(mesh, faces)
    block, local = mesh.element_block(faces[:, 0])
    out: list[FaceIntegration] = []
    for b in np.unique(block):  # loop over blocks and face shapes only
        et = ELEMENTS[mesh.blocks[b].element]
        in_block = np.flatnonzero(block == b)
        shape_of = np.array([s.name for s in et.face_shapes])[faces[in_block, 1]]
        for name in np.unique(shape_of):
            rows = in_block[shape_of == name]
            f0 = int(faces[rows[0], 1])
            shape, rule = et.face_shapes[f0], et.face_rules[f0]
            conn = mesh.blocks[b].connectivity[local[rows]]  # (n_f, n_en)
            table = et.faces[faces[rows, 1], : shape.n_nodes]  # (n_f, n_fn), no padding
            nodes = np.take_along_axis(conn, table, axis=1)  # (n_f, n_fn)
            X = mesh.points[nodes]  # (n_f, n_fn, 3)
            N = shape.shape(rule.points)  # (n_g, n_fn)
            dN = shape.gradient(rule.points)  # (n_g, n_fn, 2)
            T = np.einsum("gar,fai->fgri", dN, X)  # tangents dx/dr, dx/ds: (n_f, n_g, 2, 3)
            a = np.cross(T[:, :, 0], T[:, :, 1]) * rule.weights[None, :, None]
            xg = np.einsum("ga,fai->fgi", N, X)
            out.append(FaceIntegration(et.name, rows, nodes, N, a, xg))
    return out


def _face_pressure_values(
    pressure: float | np.ndarray, fi: FaceIntegration, n_faces: int
) -> np.ndarray:
    """Pressure at the Gauss points ``(n_f, n_g)`` of ``fi`` from a scalar, per-face or per-face-node.

    Per face node: ``(n_faces, n_fn)`` with the face's own node count, or ``(n_faces, w)`` with ``w`` the width of
    the element's padded face table (a wedge's triangles then use their first 3 or 6 columns)."""
    p = np.asarray(pressure, dtype=float)
    n_f, n_g = fi.area_vectors.shape[:2]
    if p.ndim == 0:
        return np.full((n_f, n_g), float(p))
    if p.shape == (n_faces,):
        return np.repeat(p[fi.rows, None], n_g, axis=1)
    n_fn = fi.nodes.shape[1]
    width = ELEMENTS[fi.element].faces.shape[1]
    if p.ndim == 2 and p.shape[0] == n_faces and p.shape[1] in (n_fn, width):
        return p[fi.rows, :n_fn] @ fi.N.T  # interpolate nodal face values: (n_f, n_fn) @ (n_fn, n_g)
    raise MeshError(
        f"pressure must be a scalar, per face ({n_faces},) or per face node ({n_faces}, {n_fn}) "
        f"for {fi.element} faces, got shape {p.shape}"
    )


def surface_force(
    mesh: Mesh, faces: np.ndarray, pressure: float | np.ndarray | None = None,
    traction: np.ndarray | None = None,
) -> np.ndarray:
    """Nodal forces ``(3 n_nodes,)`` of a pressure and/or a traction on ``faces`` ``(n_faces, 2)``.

    ``pressure``: scalar, ``(n_faces,)`` or ``(n_faces, n_face_nodes)`` (interpolated with the face
    shape functions); positive pushes *into* the solid (CalculiX ``*DLOAD ..., P``):
    ``f_a = -int p n_out N_a dA``. ``traction``: ``(3,)`` or ``(n_faces, 3)`` force per area (constant
    per face): ``f_a = int t N_a dA``.
    """
    faces = check_faces(mesh, faces)
    f = np.zeros(mesh.n_dofs)
    if len(faces) == 0:
        return f
    if traction is not None:
        t = np.asarray(traction, dtype=float)
        if t.shape not in ((3,), (len(faces), 3)):
            raise MeshError(f"traction must have shape (3,) or ({len(faces)}, 3), got {t.shape}")
        t = np.broadcast_to(t, (len(faces), 3))
    for fi in face_integration(mesh, faces):
        load = np.zeros(fi.area_vectors.shape)  # force per reference area at Gauss points (n_f, n_g, 3)
        if pressure is not None:
            # inward area vector = -n_out dA, so -p n_out dA = p * area_vectors
            load += _face_pressure_values(pressure, fi, len(faces))[..., None] * fi.area_vectors
        if traction is not None:
            dA = np.linalg.norm(fi.area_vectors, axis=-1)  # (n_f, n_g)
            load += dA[..., None] * t[fi.rows, None, :]
        fe = np.einsum("ga,fgc->fac", fi.N, load)  # (n_f, n_fn, 3)
        f += np.bincount(fi.dofs.ravel(), fe.ravel(), minlength=mesh.n_dofs)
    return f


def pressure_force(mesh: Mesh, faces: np.ndarray, pressure: float | np.ndarray) -> np.ndarray:
    """Nodal forces ``(3 n_nodes,)`` of a pressure on ``faces``; see :func:`surface_force`."""
    return surface_force(mesh, faces, pressure=pressure)


def traction_force(mesh: Mesh, faces: np.ndarray, traction: np.ndarray) -> np.ndarray:
    """Nodal forces ``(3 n_nodes,)`` of a traction ``(3,)``/``(n_faces, 3)``; see :func:`surface_force`."""
    return surface_force(mesh, faces, traction=traction)
