"""Reference elements: shape functions, Gauss rules and faces of the supported solid types.

Node ordering is CalculiX's (= Abaqus' = VTK's), checked against CalculiX's ``shape4tet.f``,
``shape10tet.f``, ``shape8h.f`` and ``shape20h.f``:

* ``C3D4``  (tet4): corners at (0,0,0), (1,0,0), (0,1,0), (0,0,1) in (xi, eta, zeta);
* ``C3D10`` (tet10): the tet4 corners, then mid-edge nodes on edges (0,1), (1,2), (2,0), (0,3), (1,3),
  (2,3);
* ``C3D8``  (hex8): node 0 = (-1,-1,-1), 1 = (1,-1,-1), 2 = (1,1,-1), 3 = (-1,1,-1), then 4..7 the same
  at zeta = +1;
* ``C3D20``/``C3D20R`` (hex20): the hex8 corners, then mid-edge nodes on edges (0,1), (1,2), (2,3),
  (3,0), (4,5), (5,6), (6,7), (7,4), (0,4), (1,5), (2,6), (3,7);
* ``C3D6``  (wedge6, ``shape6w.f``): triangle ``0 <= xi, eta``, ``xi + eta <= 1`` times ``-1 <= zeta <= 1``;
  node 0 = (0,0,-1), 1 = (1,0,-1), 2 = (0,1,-1), then 3..5 the same at zeta = +1 (the right-hand rule over
  0, 1, 2 points towards 3, 4, 5: gmsh's and Abaqus' prism, and VTK's wedge by its parametric coordinates and cell
  volumes (VTK 9.7), whatever its documentation's figure; meshio's VTK reader and writer mirror 6-node ones);
* ``C3D15`` (wedge15, ``shape15w.f``): the wedge6 corners, then mid-edge nodes on edges (0,1), (1,2), (2,0),
  (3,4), (4,5), (5,3), (0,3), (1,4), (2,5) (VTK's quadratic-wedge mid-edge order, gmsh's differs).

Faces (``S1..S6`` as 0..5) are :data:`structrom.rom.fem.faces.FACES`: corner nodes first, then mid-side nodes in
the order of the face shape below. A wedge has faces of two shapes (S1, S2 triangles, S3..S5
quadrilaterals): each face has its own shape (:data:`structrom.rom.fem.faces.FACE_SHAPES`). Face shapes and their
reference nodes (r, s):

* ``tri3``: (0,0), (1,0), (0,1); ``tri6``: those, then mid-sides (0,1), (1,2), (2,0);
* ``quad4``: (-1,-1), (1,-1), (1,1), (-1,1); ``quad8``: those, then mid-sides (0,1), (1,2), (2,3), (3,0).

With CalculiX's face tables, ``dx/dr x dx/ds`` (right-hand rule over the face corners) is the
*inward* normal times the area density; ``tests/test_fem_kernel.py`` checks this on each unit element.

Gauss rules and their point order are CalculiX's, see :mod:`structrom.rom.fem.quadrature`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from structrom.rom.fem import quadrature as q
from structrom.rom.fem.faces import FACE_SHAPES, FACES

ShapeFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# -- generic shape-function families (vectorized over points) ------------------------------------
def _simplex_linear(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric coordinates ``L`` (n, d+1) of points ``xi`` (n, d) and dL/dxi (d+1, d)."""
    d = xi.shape[1]
    L = np.concatenate([1.0 - xi.sum(1, keepdims=True), xi], axis=1)
    dL = np.vstack([-np.ones((1, d)), np.eye(d)])
    return L, dL


def _simplex_quadratic(xi: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic Lagrange simplex: corners L(2L-1), mid-edge 4 La Lb. Returns N (n, m), dN (n, m, d)."""
    L, dL = _simplex_linear(xi)
    a, b = edges[:, 0], edges[:, 1]
    N = np.concatenate([L * (2.0 * L - 1.0), 4.0 * L[:, a] * L[:, b]], axis=1)
    d_corner = (4.0 * L - 1.0)[:, :, None] * dL[None]
    d_edge = 4.0 * (L[:, b, None] * dL[None, a] + L[:, a, None] * dL[None, b])
    return N, np.concatenate([d_corner, d_edge], axis=1)


def _other_products(f: np.ndarray) -> np.ndarray:
    """For factors ``f`` (..., d), the products of all factors but the j-th, stacked on the last axis."""
    d = f.shape[-1]
    return np.stack([np.prod(np.delete(f, j, axis=-1), axis=-1) for j in range(d)], axis=-1)


def _tensor_linear(xi: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multilinear Lagrange on [-1,1]^d: N_a = 2^-d prod_i (1 + R_ai xi_i)."""
    d = xi.shape[1]
    f = 1.0 + ref[None] * xi[:, None, :]  # (n, m, d)
    scale = 0.5**d
    N = scale * np.prod(f, axis=-1)
    dN = scale * ref[None] * _other_products(f)
    return N, dN


def _serendipity(xi: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic serendipity on [-1,1]^d (quad8 for d=2, hex20 for d=3), nodes at ``ref`` (m, d).

    Corners (all |R_ai| = 1): N = 2^-d prod_i (1 + R_ai xi_i) (sum_i R_ai xi_i - d + 1);
    mid-edge (R_ak = 0): N = 2^-(d-1) (1 - xi_k^2) prod_{i != k} (1 + R_ai xi_i)
    (e.g. Zienkiewicz & Taylor, The FEM vol. 1, 6th ed., sect. 6.5; CalculiX shape20h.f / shape8q.f).
    """
    d = xi.shape[1]
    mid = ref == 0.0  # (m, d)
    x = xi[:, None, :]
    f = np.where(mid, 1.0 - x * x, 1.0 + ref * x)  # (n, m, d)
    df = np.where(mid, -2.0 * x, ref + 0.0 * x)
    prod = np.prod(f, axis=-1)
    dprod = df * _other_products(f)
    corner = ~mid.any(axis=1)  # (m,)
    s = (ref * x).sum(-1) - (d - 1)  # (n, m)
    N = np.where(corner, 0.5**d * prod * s, 0.5 ** (d - 1) * prod)
    dN = np.where(
        corner[:, None],
        0.5**d * (dprod * s[..., None] + prod[..., None] * ref),
        0.5 ** (d - 1) * dprod,
    )
    return N, dN


def _wedge_linear(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear wedge (``shape6w.f``): N = L_t (1 + z_s zeta) / 2 for node ``3 s + t`` (L: triangle barycentrics
    of (xi, eta), z_s = -1, +1 the bottom and top levels). Returns N (n, 6), dN (n, 6, 3)."""
    L, dL = _simplex_linear(xi[:, :2])  # (n, 3), (3, 2)
    zs = np.array([-1.0, 1.0])
    Z = 0.5 * (1.0 + zs[None] * xi[:, 2:3])  # (n, 2)
    N = (Z[:, :, None] * L[:, None, :]).reshape(len(xi), 6)
    d_tri = Z[:, :, None, None] * dL[None, None]  # (n, 2, 3, 2)
    d_z = 0.5 * zs[None, :, None] * L[:, None, :]  # (n, 2, 3)
    dN = np.concatenate([d_tri, d_z[..., None]], axis=-1).reshape(len(xi), 6, 3)
    return N, dN


def _wedge_quadratic(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic (serendipity) wedge, CalculiX ``shape15w.f``. With L the triangle barycentrics of (xi, eta),
    g_s = 1 + z_s zeta (z_s = -1 bottom, +1 top):

    * corner t at level s: N = L_t g_s (2 L_t - 2 + z_s zeta) / 2;
    * mid-edge (a, b) of the triangle at level s: N = 2 L_a L_b g_s;
    * vertical mid-edge above corner t: N = L_t (1 - zeta^2).

    Returns N (n, 15), dN (n, 15, 3).
    """
    n = len(xi)
    L, dL = _simplex_linear(xi[:, :2])  # (n, 3), (3, 2)
    z = xi[:, 2:3]  # (n, 1)
    zs = np.array([-1.0, 1.0])
    g = 1.0 + zs[None] * z  # (n, 2)
    a, b = _TRI6_EDGES[:, 0], _TRI6_EDGES[:, 1]  # the triangle edges (0,1), (1,2), (2,0)
    # corners (n, 2, 3)
    h = 2.0 * L[:, None, :] - 2.0 + (zs[None] * z)[:, :, None]
    Nc = 0.5 * L[:, None, :] * g[:, :, None] * h
    dNc_tri = 0.5 * (g[:, :, None] * (h + 2.0 * L[:, None, :]))[..., None] * dL[None, None]  # (n, 2, 3, 2)
    dNc_z = 0.5 * L[:, None, :] * zs[None, :, None] * (h + g[:, :, None])
    # triangle mid-edges (n, 2, 3)
    LL = L[:, a] * L[:, b]  # (n, 3)
    Ne = 2.0 * g[:, :, None] * LL[:, None, :]
    dLL = L[:, b, None] * dL[None, a] + L[:, a, None] * dL[None, b]  # (n, 3, 2)
    dNe_tri = 2.0 * g[:, :, None, None] * dLL[:, None]
    dNe_z = 2.0 * zs[None, :, None] * LL[:, None, :]  # (n, 2, 3)
    # vertical mid-edges (n, 3)
    bub = 1.0 - z * z  # (n, 1)
    Nv = L * bub
    dNv = np.concatenate([bub[:, :, None] * dL[None], (-2.0 * z * L)[..., None]], axis=-1)  # (n, 3, 3)
    N = np.concatenate([Nc.reshape(n, 6), Ne.reshape(n, 6), Nv], axis=1)
    dN = np.concatenate([
        np.concatenate([dNc_tri, dNc_z[..., None]], axis=-1).reshape(n, 6, 3),
        np.concatenate([dNe_tri, dNe_z[..., None]], axis=-1).reshape(n, 6, 3),
        dNv,
    ], axis=1)
    return N, dN


# -- reference shapes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceShape:
    """Shape functions of one reference cell (volume or face).

    ``reference_coordinates``: ``(n_nodes, dim)`` node positions in the reference cell.
    """

    name: str
    reference_coordinates: np.ndarray
    _evaluate: ShapeFn

    @property
    def n_nodes(self) -> int:
        return len(self.reference_coordinates)

    @property
    def dim(self) -> int:
        return self.reference_coordinates.shape[1]

    def _points(self, xi: np.ndarray) -> np.ndarray:
        xi = np.asarray(xi, dtype=float)
        if xi.ndim != 2 or xi.shape[1] != self.dim:
            raise ValueError(f"{self.name}: points must have shape (n, {self.dim}), got {xi.shape}")
        return xi

    def shape(self, xi: np.ndarray) -> np.ndarray:
        """Shape function values ``(n_points, n_nodes)`` at reference points ``xi`` ``(n_points, dim)``."""
        return self._evaluate(self._points(xi))[0]

    def gradient(self, xi: np.ndarray) -> np.ndarray:
        """Reference gradients ``dN_a/dxi_j`` ``(n_points, n_nodes, dim)`` at ``xi`` ``(n_points, dim)``."""
        xi = self._points(xi)
        n, dn = self._evaluate(xi)
        return np.broadcast_to(dn, (len(xi),) + dn.shape[-2:]).copy()


_TET_CORNERS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
_TET10_EDGES = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]])
_HEX_CORNERS = np.array(
    [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]],
    dtype=float,
)
_HEX20_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
_WEDGE_CORNERS = np.array(
    [[0, 0, -1], [1, 0, -1], [0, 1, -1], [0, 0, 1], [1, 0, 1], [0, 1, 1]], dtype=float
)
_WEDGE15_EDGES = np.array([[0, 1], [1, 2], [2, 0], [3, 4], [4, 5], [5, 3], [0, 3], [1, 4], [2, 5]])
_TRI_CORNERS = np.array([[0, 0], [1, 0], [0, 1]], dtype=float)
_TRI6_EDGES = np.array([[0, 1], [1, 2], [2, 0]])
_QUAD_CORNERS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
_QUAD8_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])


def _with_midpoints(corners: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.vstack([corners, 0.5 * (corners[edges[:, 0]] + corners[edges[:, 1]])])


def _linear_simplex_fn(xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    L, dL = _simplex_linear(xi)
    return L, dL[None]


_HEX20_REF = _with_midpoints(_HEX_CORNERS, _HEX20_EDGES)
_QUAD8_REF = _with_midpoints(_QUAD_CORNERS, _QUAD8_EDGES)

#: Reference shapes by name (volume: tet4, tet10, hex8, hex20, wedge6, wedge15; face: tri3, tri6, quad4, quad8).
SHAPES: dict[str, ReferenceShape] = {
    "tet4": ReferenceShape("tet4", _TET_CORNERS, _linear_simplex_fn),
    "tet10": ReferenceShape(
        "tet10",
        _with_midpoints(_TET_CORNERS, _TET10_EDGES),
        lambda xi: _simplex_quadratic(xi, _TET10_EDGES),
    ),
    "hex8": ReferenceShape("hex8", _HEX_CORNERS, lambda xi: _tensor_linear(xi, _HEX_CORNERS)),
    "hex20": ReferenceShape("hex20", _HEX20_REF, lambda xi: _serendipity(xi, _HEX20_REF)),
    "wedge6": ReferenceShape("wedge6", _WEDGE_CORNERS, _wedge_linear),
    "wedge15": ReferenceShape("wedge15", _with_midpoints(_WEDGE_CORNERS, _WEDGE15_EDGES), _wedge_quadratic),
    "tri3": ReferenceShape("tri3", _TRI_CORNERS, _linear_simplex_fn),
    "tri6": ReferenceShape(
        "tri6",
        _with_midpoints(_TRI_CORNERS, _TRI6_EDGES),
        lambda xi: _simplex_quadratic(xi, _TRI6_EDGES),
    ),
    "quad4": ReferenceShape("quad4", _QUAD_CORNERS, lambda xi: _tensor_linear(xi, _QUAD_CORNERS)),
    "quad8": ReferenceShape("quad8", _QUAD8_REF, lambda xi: _serendipity(xi, _QUAD8_REF)),
}

#: Face quadrature rule of each face shape.
FACE_RULES: dict[str, q.QuadratureRule] = {
    "tri3": q.GAUSS2D5,
    "tri6": q.GAUSS2D6,
    "quad4": q.GAUSS2D2,
    "quad8": q.GAUSS2D3,
}


# -- element types -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ElementType:
    """A solid element type: volume shape + CalculiX Gauss rule + face table, and per face its shape and rule.

    ``faces``: ``(n_faces, max_face_nodes)`` element-local nodes of faces S1..S6 (0-based rows), padded with -1
    after the nodes of a face with fewer nodes than the widest (a wedge's triangles); ``face_shapes``,
    ``face_rules``: ``(n_faces,)`` shape and quadrature rule of each face.
    """

    name: str
    shape: ReferenceShape
    rule: q.QuadratureRule
    faces: np.ndarray
    face_shapes: tuple[ReferenceShape, ...]
    face_rules: tuple[q.QuadratureRule, ...]

    @property
    def n_nodes(self) -> int:
        return self.shape.n_nodes

    @property
    def n_points(self) -> int:
        return self.rule.n_points

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    def face_nodes(self, face: int) -> np.ndarray:
        """``(n_face_nodes,)`` element-local nodes of local face ``face`` (S{face+1}), corners first."""
        return self.faces[face, : self.face_shapes[face].n_nodes]

    def shape_values(self) -> np.ndarray:
        """``(n_points, n_nodes)`` shape functions at the element's integration points."""
        return self.shape.shape(self.rule.points)

    def shape_gradients(self) -> np.ndarray:
        """``(n_points, n_nodes, 3)`` reference gradients at the element's integration points."""
        return self.shape.gradient(self.rule.points)


def _element(name: str, shape: str, rule: q.QuadratureRule) -> ElementType:
    fs = FACE_SHAPES[name]
    return ElementType(name, SHAPES[shape], rule, FACES[name], tuple(SHAPES[f] for f in fs),
                       tuple(FACE_RULES[f] for f in fs))


#: Element types by CalculiX name.
ELEMENTS: dict[str, ElementType] = {
    "C3D4": _element("C3D4", "tet4", q.GAUSS3D4),
    "C3D10": _element("C3D10", "tet10", q.GAUSS3D5),
    "C3D8": _element("C3D8", "hex8", q.GAUSS3D2),
    "C3D20": _element("C3D20", "hex20", q.GAUSS3D3),
    "C3D20R": _element("C3D20R", "hex20", q.GAUSS3D2),
    "C3D6": _element("C3D6", "wedge6", q.GAUSS3D7),
    "C3D15": _element("C3D15", "wedge15", q.GAUSS3D8),
}

#: The mirror image of a wedge's numbering (corners 1 <-> 2 and 4 <-> 5, their mid-edge nodes with them): VTK's
#: wedge from gmsh's/CalculiX's and back.
WEDGE_MIRROR = {"C3D6": np.array([0, 2, 1, 3, 5, 4]),
                "C3D15": np.array([0, 2, 1, 3, 5, 4, 8, 7, 6, 11, 10, 9, 12, 14, 13])}


def orient_wedges(points: np.ndarray, conn: np.ndarray) -> np.ndarray:
    """Wedges ``conn`` ``(n, 6 | 15)`` in CalculiX's orientation: rows whose corner tetrahedron 0, 1, 2, 3 has a
    negative volume (VTK's numbering) mirrored by :data:`WEDGE_MIRROR`."""
    a, b, c, d = (points[conn[:, i]] for i in range(4))
    mirrored = np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a)) < 0
    perm = WEDGE_MIRROR["C3D6" if conn.shape[1] == 6 else "C3D15"]
    return np.where(mirrored[:, None], conn[:, perm], conn)
