"""The mesh model: nodes, element blocks and named node, element and surface sets.

Numbering (0-based everywhere):

* node ``i`` is ``points[i]``; its degrees of freedom are ``3 i + c`` for ``c`` in x, y, z;
* elements are numbered block after block: element ``e`` of block ``b`` has the global index
  ``block_offsets[b] + e``;
* a surface set is an ``(n_faces, 2)`` array of ``(global element index, local face)`` with the local
  face numbered as CalculiX's ``S1..S6`` (``S1..S5`` for wedges) minus one (see
  :mod:`structrom.rom.fem.elements` for the face nodes).

Element types are named after CalculiX's (``C3D4``, ``C3D10``, ``C3D8``, ``C3D20``, ``C3D20R``, and the wedges
``C3D6``, ``C3D15``), whose node ordering is also VTK's (meshio's ``tetra``, ``tetra10``, ``hexahedron``,
``hexahedron20``) and meshio's ``wedge``/``wedge15`` one (gmsh's prism orientation, see
:mod:`structrom.rom.fem.elements`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from structrom.mpi.errors import StructromError
from structrom.rom.fem.faces import FACES, missing_faces


class MeshError(StructromError, ValueError):
    """A mesh, or a set in it, is inconsistent. The message names the field and the fix."""


#: Nodes per element for each supported element type.
NODES_PER_ELEMENT = {"C3D4": 4, "C3D10": 10, "C3D8": 8, "C3D20": 20, "C3D20R": 20, "C3D6": 6, "C3D15": 15}


@dataclass
class CellBlock:
    """Elements of one type. ``connectivity``: ``(n_elements, n_nodes_per_element)`` int64."""

    element: str
    connectivity: np.ndarray

    def __post_init__(self) -> None:
        if self.element not in NODES_PER_ELEMENT:
            raise MeshError(
                f"unknown element type {self.element!r}: supported are {', '.join(NODES_PER_ELEMENT)}"
            )
        self.connectivity = np.ascontiguousarray(self.connectivity, dtype=np.int64)
        n = NODES_PER_ELEMENT[self.element]
        if self.connectivity.ndim != 2 or self.connectivity.shape[1] != n:
            raise MeshError(
                f"{self.element} connectivity must have shape (n_elements, {n}), "
                f"got {self.connectivity.shape}"
            )

    def __len__(self) -> int:
        return len(self.connectivity)


@dataclass
class Mesh:
    """A 3D solid mesh. ``points``: ``(n_nodes, 3)`` coordinates in the model's length unit."""

    points: np.ndarray
    blocks: list[CellBlock]
    node_sets: dict[str, np.ndarray] = field(default_factory=dict)
    element_sets: dict[str, np.ndarray] = field(default_factory=dict)
    surface_sets: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=float)
        if self.points.ndim != 2 or self.points.shape[1] != 3:
            raise MeshError(f"points must have shape (n_nodes, 3), got {self.points.shape}")
        if not np.all(np.isfinite(self.points)):
            raise MeshError("points contain non-finite coordinates")
        self.node_sets = {k: np.unique(np.asarray(v, dtype=np.int64)) for k, v in self.node_sets.items()}
        self.element_sets = {
            k: np.unique(np.asarray(v, dtype=np.int64)) for k, v in self.element_sets.items()
        }
        self.surface_sets = {
            k: np.asarray(v, dtype=np.int64).reshape(-1, 2) for k, v in self.surface_sets.items()
        }
        self.validate()

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.points)

    @property
    def n_dofs(self) -> int:
        return 3 * len(self.points)

    @property
    def n_elements(self) -> int:
        return sum(len(b) for b in self.blocks)

    @property
    def block_offsets(self) -> np.ndarray:
        """``(n_blocks + 1,)`` global index of each block's first element, then n_elements."""
        return np.concatenate([[0], np.cumsum([len(b) for b in self.blocks])]).astype(np.int64)

    def used_nodes(self) -> np.ndarray:
        """``(n_nodes,)`` bool: the nodes some element uses."""
        used = np.zeros(self.n_nodes, dtype=bool)
        for b in self.blocks:
            used[b.connectivity.ravel()] = True
        return used

    def unused_nodes(self) -> np.ndarray:
        """``(n,)`` the nodes no element uses, sorted (geometry points, leftover ``*NODE`` lines): they have no
        stiffness, and CalculiX reports a zero displacement there."""
        return np.flatnonzero(~self.used_nodes())

    def element_block(self, elements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block index and local index within the block of global element indices."""
        elements = np.asarray(elements, dtype=np.int64)
        offsets = self.block_offsets
        block = np.searchsorted(offsets, elements, side="right") - 1
        return block, elements - offsets[block]

    # -- sets --------------------------------------------------------------------------------------
    def node_set(self, name: str) -> np.ndarray:
        try:
            return self.node_sets[name]
        except KeyError:
            raise MeshError(
                f"node set {name!r} is not in the mesh; known node sets: {sorted(self.node_sets)}"
            ) from None

    def element_set(self, name: str) -> np.ndarray:
        try:
            return self.element_sets[name]
        except KeyError:
            raise MeshError(
                f"element set {name!r} is not in the mesh; known element sets: "
                f"{sorted(self.element_sets)}"
            ) from None

    def surface_set(self, name: str) -> np.ndarray:
        try:
            return self.surface_sets[name]
        except KeyError:
            raise MeshError(
                f"surface set {name!r} is not in the mesh; known surface sets: "
                f"{sorted(self.surface_sets)}"
            ) from None

    def validate(self) -> None:
        """Check indices against sizes; raise :class:`MeshError` naming the offending field."""
        n, ne = self.n_nodes, self.n_elements
        for b, block in enumerate(self.blocks):
            c = block.connectivity
            if c.size and (c.min() < 0 or c.max() >= n):
                raise MeshError(f"block {b} ({block.element}) references nodes outside 0..{n - 1}")
        for name, nodes in self.node_sets.items():
            if nodes.size and (nodes[0] < 0 or nodes[-1] >= n):
                raise MeshError(f"node set {name!r} references nodes outside 0..{n - 1}")
        for name, els in self.element_sets.items():
            if els.size and (els[0] < 0 or els[-1] >= ne):
                raise MeshError(f"element set {name!r} references elements outside 0..{ne - 1}")
        for name, faces in self.surface_sets.items():
            if faces.size and (faces[:, 0].min() < 0 or faces[:, 0].max() >= ne):
                raise MeshError(f"surface set {name!r} references elements outside 0..{ne - 1}")
            check_faces(self.blocks, faces, f"surface set {name!r}")


def check_faces(blocks: list[CellBlock], faces: np.ndarray, where: str, element_ids: np.ndarray | None = None) -> None:
    """Each ``(element, face)`` row of ``faces`` ``(n, 2)`` (global element indices within ``blocks``) names a face
    its element has (S1-S4 on tetrahedra, S1-S6 on hexahedra); :class:`MeshError` naming ``where``, the element
    (by its id in ``element_ids`` ``(n_elements,)`` when given, else by its index) and the face otherwise."""
    if not faces.size:
        return
    n_faces = np.array([len(FACES[b.element]) for b in blocks])
    bad, block = missing_faces(np.cumsum([0] + [len(b) for b in blocks[:-1]]), n_faces, faces)
    if len(bad):
        i, b = int(bad[0]), int(block[bad[0]])
        element = (f"element {int(element_ids[faces[i, 0]])}" if element_ids is not None
                   else f"element index {int(faces[i, 0])}")
        raise MeshError(f"{where}: face S{int(faces[i, 1]) + 1} of {element}: a {blocks[b].element} "
                        f"element has faces S1-S{int(n_faces[b])}")
