"""Element faces of a mesh and their matching to boundary faces given by corner nodes (surfaces of gmsh physical
groups, Abaqus surfaces, boundary planes), shared by :mod:`structrom.rom.fem.io` and
:mod:`structrom.rom.fem.structured`: faces are compared by their sorted corner nodes (orientation-independent),
triangles padded with -1 to four corners."""
from __future__ import annotations

import numpy as np

from .faces import corner_table
from .mesh import Mesh, MeshError

__all__ = ["element_faces", "match_faces", "faces_on_nodes"]


def element_faces(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All faces of all elements.

    Returns ``corners`` ``(n_faces, 4)`` node indices of the face corners (triangles padded with -1),
    ``element`` ``(n_faces,)`` global element index and ``face`` ``(n_faces,)`` local face (0-based).
    """
    corners, elements, local = [], [], []
    offsets = mesh.block_offsets
    for b, block in enumerate(mesh.blocks):
        table = corner_table(block.element)  # (nf, 4)
        c = np.where(table >= 0, block.connectivity[:, np.maximum(table, 0)], -1)  # (ne, nf, 4)
        ne, nf = c.shape[:2]
        corners.append(c.reshape(-1, 4))
        elements.append(np.repeat(offsets[b] + np.arange(ne), nf))
        local.append(np.tile(np.arange(nf), ne))
    if not corners:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros((0, 4), dtype=np.int64), empty, empty
    return np.concatenate(corners), np.concatenate(elements), np.concatenate(local)


def _face_keys(corners: np.ndarray) -> np.ndarray:
    """Orientation-independent keys: sorted corner ids, padding (-1) first, ``(n, 4)``."""
    return np.sort(corners, axis=1)


def match_faces(mesh: Mesh, face_corners: np.ndarray, *, name: str = "surface") -> np.ndarray:
    """Match boundary faces given by their corner nodes ``(m, 3)`` or ``(m, 4)`` (any order) to
    ``(global element, local face)`` pairs ``(m, 2)``.

    A face shared by two elements (an internal interface) is matched to the first of them. Raises
    :class:`MeshError` naming ``name`` if a face is not a face of any element.
    """
    face_corners = np.asarray(face_corners, dtype=np.int64)
    if face_corners.ndim != 2 or face_corners.shape[1] not in (3, 4):
        raise MeshError(f"{name}: face corners must have shape (m, 3) or (m, 4), got {face_corners.shape}")
    m = len(face_corners)
    if m == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if face_corners.shape[1] == 3:
        face_corners = np.concatenate([face_corners, np.full((m, 1), -1, dtype=np.int64)], axis=1)
    corners, elements, local = element_faces(mesh)
    n = len(corners)
    _, inverse = np.unique(
        np.concatenate([_face_keys(corners), _face_keys(face_corners)]), axis=0, return_inverse=True
    )
    inverse = inverse.ravel()
    elem_ids, query_ids = inverse[:n], inverse[n:]
    order = np.argsort(elem_ids, kind="stable")
    pos = np.minimum(np.searchsorted(elem_ids[order], query_ids), max(n - 1, 0))
    found = elem_ids[order][pos] == query_ids if n else np.zeros(m, dtype=bool)
    if not np.all(found):
        bad = int(np.flatnonzero(~found)[0])
        nodes = face_corners[bad][face_corners[bad] >= 0]
        raise MeshError(
            f"{name}: {int((~found).sum())} of {m} faces are not faces of any volume element "
            f"(first: corner nodes {nodes.tolist()}, at {mesh.points[nodes].round(6).tolist()}); "
            "the surface mesh must be the boundary of the volume mesh (mesh surfaces and volumes "
            "together, conformingly)"
        )
    hit = order[pos]
    return np.stack([elements[hit], local[hit]], axis=1)


def faces_on_nodes(mesh: Mesh, nodes: np.ndarray) -> np.ndarray:
    """Element faces ``(k, 2)`` whose corner nodes all belong to ``nodes`` (e.g. a boundary plane).

    Faces interior to the node set's region are included too, so use it for node sets on the
    boundary (where it gives each boundary face once).
    """
    inside = np.zeros(mesh.n_nodes + 1, dtype=bool)  # last entry: the -1 padding, always "inside"
    inside[np.asarray(nodes, dtype=np.int64)] = True
    inside[-1] = True
    corners, elements, local = element_faces(mesh)
    keep = inside[corners].all(axis=1)
    return np.stack([elements[keep], local[keep]], axis=1)
