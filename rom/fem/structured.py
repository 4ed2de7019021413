"""Structured meshes built with numpy alone (no gmsh): boxes and hollow-cylinder sectors.

Both generators lay out a logical ``(n0, n1, n2)`` grid of hexahedra on the unit cube, place the
element nodes on a grid that is twice as fine for quadratic elements (mid-side nodes are grid
points), and map the unit cube onto the physical domain. Tetrahedral meshes split every hexahedron
into the six tetrahedra around its main diagonal (Kuhn's split), wedge meshes every hexahedron into the two
prisms on either side of the diagonal (0, 0) - (1, 1) of its xy faces, extruded along z; both are conforming
between neighbouring cells because every cell is split the same way.

All elements are positively oriented (CalculiX/VTK convention: positive Jacobian determinant).
"""
from __future__ import annotations

from itertools import permutations

import numpy as np

from .elements import _WEDGE15_EDGES  # edges of the 15-node wedge's mid-side nodes 6..14
from .face_matching import faces_on_nodes
from .mesh import CellBlock, Mesh, MeshError

__all__ = ["box", "cylinder_sector", "SUPPORTED_ELEMENTS"]

#: Element types the generators produce.
SUPPORTED_ELEMENTS = ("C3D4", "C3D10", "C3D8", "C3D20", "C3D20R", "C3D6", "C3D15")

# Corner offsets of a unit hexahedron in CalculiX/VTK order.
_HEX_CORNERS = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
)
# Edges (pairs of corners) of the 20-node hexahedron's mid-side nodes 8..19.
_HEX20_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
# Edges of the 10-node tetrahedron's mid-side nodes 4..9.
_TET10_EDGES = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]])
# The two prisms of a unit hexahedron (its corners, bottom triangle counter-clockwise seen from +z, then the top).
_HEX_WEDGES = np.array([[0, 1, 2, 4, 5, 6], [0, 2, 3, 4, 6, 7]])


def _kuhn_tets() -> np.ndarray:
    """``(6, 4, 3)`` corner offsets of the six positively oriented Kuhn tetrahedra of the unit cube."""
    tets = []
    for perm in permutations(range(3)):
        e = np.eye(3, dtype=int)[list(perm)]
        v = np.array([[0, 0, 0], e[0], e[0] + e[1], [1, 1, 1]])
        if np.linalg.det(e) < 0:  # odd permutation: swap two vertices to make the volume positive
            v = v[[0, 2, 1, 3]]
        tets.append(v)
    return np.array(tets)


def _local_offsets(element: str) -> np.ndarray:
    """``(n_sub, n_nodes, 3)`` node offsets in fine-grid units (fine = 2 per cell when quadratic)."""
    if element == "C3D8":
        return _HEX_CORNERS[None]
    if element in ("C3D20", "C3D20R"):
        corners = 2 * _HEX_CORNERS
        mids = corners[_HEX20_EDGES].sum(1) // 2
        return np.concatenate([corners, mids])[None]
    if element in ("C3D6", "C3D15"):
        wedges = _HEX_CORNERS[_HEX_WEDGES]  # (2, 6, 3)
        if element == "C3D6":
            return wedges
        corners = 2 * wedges
        return np.concatenate([corners, corners[:, _WEDGE15_EDGES].sum(2) // 2], axis=1)
    tets = _kuhn_tets()
    if element == "C3D4":
        return tets
    if element == "C3D10":
        corners = 2 * tets
        mids = corners[:, _TET10_EDGES].sum(2) // 2
        return np.concatenate([corners, mids], axis=1)
    raise MeshError(f"element {element!r} is not supported here: choose one of {SUPPORTED_ELEMENTS}")


def _unit_grid(divisions: tuple[int, int, int], element: str):
    """Mesh of the unit cube: returns (points (n, 3) in [0, 1]^3, connectivity, fine grid indices (n, 3),
    fine grid size (3,))."""
    div = np.asarray(divisions, dtype=np.int64)
    if div.shape != (3,) or np.any(div < 1):
        raise MeshError(f"divisions must be three integers >= 1, got {divisions!r}")
    offsets = _local_offsets(element)
    fine = 1 if element in ("C3D4", "C3D8", "C3D6") else 2
    size = fine * div + 1  # fine grid points per direction
    strides = np.array([1, size[0], size[0] * size[1]], dtype=np.int64)
    # Base corner of every cell, x fastest.
    cz, cy, cx = np.meshgrid(*(np.arange(d) for d in div[::-1]), indexing="ij")
    base = fine * np.stack([cx.ravel(), cy.ravel(), cz.ravel()], axis=1) @ strides
    local = offsets @ strides  # (n_sub, n_nodes)
    conn = (base[:, None, None] + local[None]).reshape(-1, offsets.shape[1])
    used, conn = np.unique(conn, return_inverse=True)
    conn = conn.reshape(-1, offsets.shape[1])
    ijk = np.stack([used % size[0], (used // size[0]) % size[1], used // strides[2]], axis=1)
    return ijk / (size - 1), conn, ijk, size


def _finish(points, conn, element, ijk, size, set_names) -> Mesh:
    """Build the mesh with node and surface sets on the six logical faces and element set ``all``."""
    blocks = [CellBlock(element, conn)]
    node_sets = {}
    for axis in range(3):
        for side, name in zip((0, size[axis] - 1), set_names[2 * axis : 2 * axis + 2]):
            node_sets[name] = np.flatnonzero(ijk[:, axis] == side)
    probe = Mesh(points, blocks)
    surface_sets = {name: faces_on_nodes(probe, nodes) for name, nodes in node_sets.items()}
    return Mesh(
        points,
        blocks,
        node_sets=node_sets,
        element_sets={"all": np.arange(len(conn))},
        surface_sets=surface_sets,
    )


def box(
    lengths: tuple[float, float, float] = (1.0, 1.0, 1.0),
    divisions: tuple[int, int, int] = (1, 1, 1),
    element: str = "C3D8",
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Mesh:
    """Structured mesh of the box ``origin + [0, lx] x [0, ly] x [0, lz]``.

    ``divisions``: hexahedral cells per direction (each split into 6 tetrahedra for ``C3D4``/``C3D10``, into 2
    wedges for ``C3D6``/``C3D15``).
    Node and surface sets ``xmin, xmax, ymin, ymax, zmin, zmax`` (all nodes of each face, mid-side
    nodes included) and element set ``all``.
    """
    lengths_a = np.asarray(lengths, dtype=float)
    if lengths_a.shape != (3,) or np.any(lengths_a <= 0):
        raise MeshError(f"box lengths must be three positive numbers, got {lengths!r}")
    unit, conn, ijk, size = _unit_grid(divisions, element)
    points = np.asarray(origin, dtype=float) + unit * lengths_a
    return _finish(points, conn, element, ijk, size, ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax"))


def cylinder_sector(
    inner_radius: float,
    outer_radius: float,
    height: float,
    angle_deg: float,
    divisions: tuple[int, int, int] = (2, 8, 2),
    element: str = "C3D20",
) -> Mesh:
    """Structured mesh of a hollow-cylinder sector around the z axis.

    The sector spans radii ``[inner_radius, outer_radius]``, angles ``[0, angle_deg]`` (from the x axis
    towards y) and ``z`` in ``[0, height]``; ``divisions = (n_radial, n_angular, n_axial)``. Every node,
    mid-side nodes included, is placed by the polar map of its logical position, so quadratic elements'
    nodes lie on the true circles. Node and surface sets ``inner, outer, theta0, theta1, zmin, zmax``,
    element set ``all``.
    """
    if not 0 < inner_radius < outer_radius:
        raise MeshError(
            f"cylinder_sector needs 0 < inner_radius < outer_radius, got {inner_radius}, {outer_radius}"
        )
    if height <= 0 or not 0 < angle_deg <= 360:
        raise MeshError(f"cylinder_sector needs height > 0 and 0 < angle_deg <= 360, got {height}, {angle_deg}")
    if angle_deg == 360:
        raise MeshError("a full 360 degree ring would duplicate the nodes at theta = 0: use angle_deg < 360")
    unit, conn, ijk, size = _unit_grid(divisions, element)
    r = inner_radius + unit[:, 0] * (outer_radius - inner_radius)
    theta = np.deg2rad(angle_deg) * unit[:, 1]
    points = np.stack([r * np.cos(theta), r * np.sin(theta), height * unit[:, 2]], axis=1)
    return _finish(points, conn, element, ijk, size, ("inner", "outer", "theta0", "theta1", "zmin", "zmax"))
