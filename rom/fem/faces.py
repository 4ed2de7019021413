"""Element faces, numbered as CalculiX's (and Abaqus') ``S1..S6``, stored 0-based.

``FACES[element][f]`` lists the element-local nodes of face ``f`` (face ``S{f+1}``): corner nodes
first, then mid-side nodes for quadratic elements. With CalculiX's ordering the right-hand rule over the
corner nodes gives the normal pointing *into* the element; the outward normal is its opposite.

A wedge (C3D6, C3D15) has faces of two shapes: S1 (bottom, nodes 1-2-3) and S2 (top, 4-5-6) are triangles, S3..S5
quadrilaterals (ccx's ``ifacew`` node sets, turned to point inwards like the other types). Its rows are padded with -1
after the nodes of a triangle; :data:`FACE_SHAPES` gives each face's shape and so its node count.
"""
from __future__ import annotations

import numpy as np

_TET4 = [[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]]
_TET10 = [[0, 1, 2, 4, 5, 6], [0, 3, 1, 7, 8, 4], [1, 3, 2, 8, 9, 5], [2, 3, 0, 9, 7, 6]]
_HEX8 = [[0, 1, 2, 3], [4, 7, 6, 5], [0, 4, 5, 1], [1, 5, 6, 2], [2, 6, 7, 3], [3, 7, 4, 0]]
_HEX20 = [
    [0, 1, 2, 3, 8, 9, 10, 11],
    [4, 7, 6, 5, 15, 14, 13, 12],
    [0, 4, 5, 1, 16, 12, 17, 8],
    [1, 5, 6, 2, 17, 13, 18, 9],
    [2, 6, 7, 3, 18, 14, 19, 10],
    [3, 7, 4, 0, 19, 15, 16, 11],
]
_WEDGE6 = [[0, 1, 2, -1], [3, 5, 4, -1], [0, 3, 4, 1], [1, 4, 5, 2], [2, 5, 3, 0]]
_WEDGE15 = [
    [0, 1, 2, 6, 7, 8, -1, -1],
    [3, 5, 4, 11, 10, 9, -1, -1],
    [0, 3, 4, 1, 12, 9, 13, 6],
    [1, 4, 5, 2, 13, 10, 14, 7],
    [2, 5, 3, 0, 14, 11, 12, 8],
]

#: Face node tables, ``(n_faces, n_face_nodes)`` int arrays per element type.
FACES: dict[str, np.ndarray] = {
    "C3D4": np.array(_TET4),
    "C3D10": np.array(_TET10),
    "C3D8": np.array(_HEX8),
    "C3D20": np.array(_HEX20),
    "C3D20R": np.array(_HEX20),
    "C3D6": np.array(_WEDGE6),
    "C3D15": np.array(_WEDGE15),
}

#: Shape of each face, S1 first: ``"tri3"``, ``"tri6"``, ``"quad4"`` or ``"quad8"``.
FACE_SHAPES: dict[str, tuple[str, ...]] = {
    "C3D4": ("tri3",) * 4, "C3D10": ("tri6",) * 4, "C3D8": ("quad4",) * 6, "C3D20": ("quad8",) * 6,
    "C3D20R": ("quad8",) * 6, "C3D6": ("tri3",) * 2 + ("quad4",) * 3, "C3D15": ("tri6",) * 2 + ("quad8",) * 3,
}
#: Corner nodes of each face shape.
FACE_CORNERS = {"tri3": 3, "tri6": 3, "quad4": 4, "quad8": 4}


def missing_faces(starts: np.ndarray, n_faces: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, block)``: the rows of ``faces`` ``(n, 2)`` (global element, local face) that name a face their
    element does not have, and the block of every row ``(n,)``. Elements are numbered block after block: block ``b``
    starts at element ``starts[b]`` and its elements have ``n_faces[b]`` faces (``(n_blocks,)`` each)."""
    block = np.searchsorted(starts, faces[:, 0], side="right") - 1
    return np.flatnonzero((faces[:, 1] < 0) | (faces[:, 1] >= np.asarray(n_faces)[block])), block


def corner_table(element: str) -> np.ndarray:
    """``(n_faces, 4)`` element-local corner nodes of each face, triangles padded with -1."""
    out = np.full((len(FACES[element]), 4), -1, dtype=np.int64)
    for f, shape in enumerate(FACE_SHAPES[element]):
        out[f, : FACE_CORNERS[shape]] = FACES[element][f, : FACE_CORNERS[shape]]
    return out
