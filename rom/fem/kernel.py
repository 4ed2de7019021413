"""Vectorized small-strain kernel for 3D solids: integration-point data and the operators built on it.

:class:`Discretization` evaluates, for a subset of a mesh's elements (default all; e.g. one MPI rank's),
the shape functions, their spatial gradients and the volume weights at every integration point, and
provides strains, internal forces, stiffness / mass matrices and load vectors. Everything is
vectorized over elements and points with numpy; the only Python loops run over element types (and
over chunks of elements where a temporary would otherwise be large).

Conventions:

* dofs: node ``i``, component ``c`` is dof ``3 i + c``; vectors are GLOBAL (``3 mesh.n_nodes``) even
  for a subset, so that subsets sum to the whole;
* Voigt order xx yy zz xy yz zx, strains with engineering shears, stresses with tensor shears
  (:mod:`structrom.rom.voigt`);
* integration points are numbered group after group (one group per element type present, in the
  order of the mesh's blocks), element after element (ascending global index), and within an
  element in CalculiX's order (:mod:`structrom.rom.fem.quadrature`);
* units: whatever consistent set the mesh uses (e.g. mm, N, MPa, t/mm^3).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from structrom.rom.fem import surface
from structrom.rom.fem.elements import ELEMENTS
from structrom.rom.fem.mesh import Mesh, MeshError

#: Target number of float64 entries in one chunk's temporaries (about 128 MB).
CHUNK_ENTRIES = 16_000_000
#: At most this many elements per chunk.
MAX_CHUNK_ELEMENTS = 50_000
#: Element types whose integration points take the mean of the element's nodal temperatures instead of
#: the shape-function interpolation, as CalculiX 2.20 does (C3D8: checked against ccx, stresses agree to
#: 7e-7 with the mean and differ by O(1) with the interpolation on a bar with a temperature gradient).
ELEMENT_MEAN_TEMPERATURE = frozenset({"C3D8"})


def _index_dtype(n: int) -> type:
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def b_matrix(G: np.ndarray) -> np.ndarray:
    """Strain-displacement matrices from spatial gradients.

    ``G``: ``(..., n_en, 3)`` with ``G[..., a, i] = dN_a/dx_i``. Returns ``(..., 6, 3 n_en)`` with columns
    node-major (``3 a + c``) and rows xx yy zz xy yz zx (engineering shears).
    """
    n_en = G.shape[-2]
    B = np.zeros(G.shape[:-2] + (6, n_en, 3))
    gx, gy, gz = G[..., 0], G[..., 1], G[..., 2]
    B[..., 0, :, 0] = gx
    B[..., 1, :, 1] = gy
    B[..., 2, :, 2] = gz
    B[..., 3, :, 0] = gy
    B[..., 3, :, 1] = gx
    B[..., 4, :, 1] = gz
    B[..., 4, :, 2] = gy
    B[..., 5, :, 0] = gz
    B[..., 5, :, 2] = gx
    return B.reshape(G.shape[:-2] + (6, 3 * n_en))


def _det_inv3(J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Determinants ``(...)`` and inverses ``(..., 3, 3)`` of 3x3 matrices by the adjugate formula
    (faster than LAPACK for many tiny matrices). Inverses of singular matrices are not finite."""
    a = J
    adj = np.empty_like(a)  # adjugate = transposed cofactor matrix
    adj[..., 0, 0] = a[..., 1, 1] * a[..., 2, 2] - a[..., 1, 2] * a[..., 2, 1]
    adj[..., 0, 1] = a[..., 0, 2] * a[..., 2, 1] - a[..., 0, 1] * a[..., 2, 2]
    adj[..., 0, 2] = a[..., 0, 1] * a[..., 1, 2] - a[..., 0, 2] * a[..., 1, 1]
    adj[..., 1, 0] = a[..., 1, 2] * a[..., 2, 0] - a[..., 1, 0] * a[..., 2, 2]
    adj[..., 1, 1] = a[..., 0, 0] * a[..., 2, 2] - a[..., 0, 2] * a[..., 2, 0]
    adj[..., 1, 2] = a[..., 0, 2] * a[..., 1, 0] - a[..., 0, 0] * a[..., 1, 2]
    adj[..., 2, 0] = a[..., 1, 0] * a[..., 2, 1] - a[..., 1, 1] * a[..., 2, 0]
    adj[..., 2, 1] = a[..., 0, 1] * a[..., 2, 0] - a[..., 0, 0] * a[..., 2, 1]
    adj[..., 2, 2] = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    det = a[..., 0, 0] * adj[..., 0, 0] + a[..., 0, 1] * adj[..., 1, 0] + a[..., 0, 2] * adj[..., 2, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return det, adj / det[..., None, None]


def _voigt_from_gradient(H: np.ndarray) -> np.ndarray:
    """Engineering-shear Voigt strains ``(..., 6)`` from ``H[..., i, c] = du_c/dx_i`` ``(..., 3, 3)``."""
    return np.stack(
        [
            H[..., 0, 0],
            H[..., 1, 1],
            H[..., 2, 2],
            H[..., 0, 1] + H[..., 1, 0],
            H[..., 1, 2] + H[..., 2, 1],
            H[..., 2, 0] + H[..., 0, 2],
        ],
        axis=-1,
    )


def _tensor_from_voigt(s: np.ndarray) -> np.ndarray:
    """Symmetric tensors ``(..., 3, 3)`` from stress-like (tensor-shear) Voigt vectors ``(..., 6)``."""
    i = np.array([[0, 3, 5], [3, 1, 4], [5, 4, 2]])
    return s[..., i]


@dataclass
class BlockIntegration:
    """Integration-point data of the elements of one type.

    Shapes (``n_e`` elements, ``n_en`` nodes per element, ``n_q`` points per element):

    * ``elements`` ``(n_e,)`` ascending global element indices; ``nodes`` ``(n_e, n_en)``;
      ``dofs`` ``(n_e, 3 n_en)`` node-major ``3 node + c``;
    * ``N`` ``(n_q, n_en)`` shape function values at the points;
    * ``gradients`` ``(n_e, n_q, n_en, 3)`` spatial gradients ``dN_a/dx_i`` (1/length);
    * ``weights`` ``(n_e, n_q)`` volume weights ``|det J| w_q`` (length^3);
    * ``point_offset``: index of the group's first point in the flat point arrays (points of element
      ``e`` and point ``q`` at ``point_offset + e n_q + q``).
    """

    element: str
    elements: np.ndarray
    nodes: np.ndarray
    dofs: np.ndarray
    N: np.ndarray
    gradients: np.ndarray
    weights: np.ndarray
    point_offset: int

    @property
    def N_temperature(self) -> np.ndarray:
        """``(n_q, n_en)`` weights of the nodal temperatures at the points: ``N``, or the element mean for
        the types of :data:`ELEMENT_MEAN_TEMPERATURE` (CalculiX's rule)."""
        if self.element in ELEMENT_MEAN_TEMPERATURE:
            return np.full(self.N.shape, 1.0 / self.N.shape[1])
        return self.N

    @property
    def n_elements(self) -> int:
        return len(self.elements)

    @property
    def n_element_points(self) -> int:
        return self.N.shape[0]

    @property
    def n_points(self) -> int:
        return self.n_elements * self.n_element_points

    @property
    def points(self) -> slice:
        """Slice of this group's points in the flat point arrays."""
        return slice(self.point_offset, self.point_offset + self.n_points)

    @property
    def B(self) -> np.ndarray:
        """``(n_e, n_q, 6, 3 n_en)`` strain-displacement matrices, built on demand (not cached: it is
        18 n_en floats per point; prefer :meth:`chunks` with :func:`b_matrix` for large groups)."""
        return b_matrix(self.gradients)

    def chunks(self, entries_per_element: int) -> list[slice]:
        """Slices of elements so that a chunk's temporaries stay below :data:`CHUNK_ENTRIES`."""
        size = int(max(1, min(MAX_CHUNK_ELEMENTS, CHUNK_ENTRIES // max(1, entries_per_element))))
        return [slice(s, min(s + size, self.n_elements)) for s in range(0, self.n_elements, size)]


class Discretization:
    """Integration-point data for a subset of a mesh's elements (default all), e.g. one MPI rank's.

    ``elements``: global element indices (any order, duplicates dropped; kept sorted). All vectors in
    and out are GLOBAL: displacement / force vectors have ``3 mesh.n_nodes`` entries and matrices are
    ``(n_dofs, n_dofs)``, with only this subset's contributions, so that disjoint subsets sum to the
    whole. Point arrays have one row per integration point of the subset (see the module docstring
    for the order).

    Raises :class:`MeshError` for elements out of range and for elements with a non-positive
    Jacobian determinant at an integration point.
    """

    def __init__(self, mesh: Mesh, elements: np.ndarray | None = None) -> None:
        self.mesh = mesh
        ne = mesh.n_elements
        if elements is None:
            elements = np.arange(ne, dtype=np.int64)
        else:
            elements = np.asarray(elements)
            if elements.size and not np.issubdtype(elements.dtype, np.integer):
                raise MeshError(f"elements must be integer global element indices, got {elements.dtype}")
            elements = np.unique(elements.astype(np.int64).ravel())
            if elements.size and (elements[0] < 0 or elements[-1] >= ne):
                raise MeshError(
                    f"elements must be global element indices in 0..{ne - 1}, got values "
                    f"{elements[0]}..{elements[-1]}"
                )
        self.elements: np.ndarray = elements
        self.n_nodes: int = mesh.n_nodes
        self.n_dofs: int = mesh.n_dofs
        self._pattern: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._dof_csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

        block, local = mesh.element_block(elements)
        types: list[str] = []
        for b in np.unique(block):
            if mesh.blocks[b].element not in types:
                types.append(mesh.blocks[b].element)
        self.groups: list[BlockIntegration] = []
        offset = 0
        for t in types:  # loop over element types
            sel_blocks = [b for b in np.unique(block) if mesh.blocks[b].element == t]
            els, conns = [], []
            for b in sel_blocks:  # loop over blocks of this type (ascending, so indices stay sorted)
                m = block == b
                els.append(elements[m])
                conns.append(mesh.blocks[b].connectivity[local[m]])
            g = self._integrate(t, np.concatenate(els), np.concatenate(conns), offset)
            self.groups.append(g)
            offset += g.n_points
        self.n_points: int = offset

        if self.groups:
            self.point_weights = np.concatenate([g.weights.ravel() for g in self.groups])
            self.point_elements = np.concatenate(
                [np.repeat(g.elements, g.n_element_points) for g in self.groups]
            )
            self.point_coordinates = np.concatenate(
                [
                    np.einsum("qa,eai->eqi", g.N, mesh.points[g.nodes]).reshape(-1, 3)
                    for g in self.groups
                ]
            )
        else:
            self.point_weights = np.zeros(0)
            self.point_elements = np.zeros(0, dtype=np.int64)
            self.point_coordinates = np.zeros((0, 3))

    # -- construction --------------------------------------------------------------------------------
    def _integrate(
        self, element: str, elements: np.ndarray, conn: np.ndarray, offset: int
    ) -> BlockIntegration:
        et = ELEMENTS[element]
        N = et.shape_values()  # (n_q, n_en)
        dN = et.shape_gradients()  # (n_q, n_en, 3) d N_a / d xi_j
        X = self.mesh.points[conn]  # (n_e, n_en, 3)
        # J[e, q, i, j] = d x_i / d xi_j = sum_a X[e, a, i] dN[q, a, j]
        J = np.swapaxes(X, 1, 2)[:, None] @ dN[None]
        det, Jinv = _det_inv3(J)  # Jinv[e, q, j, i] = d xi_j / d x_i
        bad = ~(det > 0.0)
        if bad.any():
            e, qp = np.argwhere(bad)[0]
            gel = int(elements[e])
            b, _ = self.mesh.element_block(np.array([gel]))
            raise MeshError(
                f"element {gel} (block {int(b[0])}, {element}) has a non-positive Jacobian "
                f"determinant {det[e, qp]:.3g} at integration point {int(qp)} (0-based, CalculiX "
                f"order): check node ordering (CalculiX/VTK order) and distorted or collapsed elements"
            )
        G = dN[None] @ Jinv  # dN_a/dx_i = sum_j dN_a/dxi_j dxi_j/dx_i: (n_e, n_q, n_en, 3)
        dofs = (3 * conn[:, :, None] + np.arange(3)).reshape(len(conn), -1)
        return BlockIntegration(
            element=element,
            elements=elements,
            nodes=conn,
            dofs=dofs,
            N=N,
            gradients=G,
            weights=det * et.rule.weights,
            point_offset=offset,
        )

    # -- input checks --------------------------------------------------------------------------------
    def _per_point(self, value: float | np.ndarray, name: str, unit: str) -> np.ndarray:
        v = np.asarray(value, dtype=float)
        if v.ndim == 0:
            return np.full(self.n_points, float(v))
        if v.shape != (self.n_points,):
            raise MeshError(
                f"{name} must be a scalar or one value per integration point ({self.n_points},) "
                f"[{unit}], got shape {v.shape}"
            )
        return v

    def _check(self, a: np.ndarray, shape: tuple, name: str) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        if a.shape != shape:
            raise MeshError(f"{name} must have shape {shape}, got {a.shape}")
        return a

    # -- point-wise evaluation -------------------------------------------------------------------------
    @property
    def volume(self) -> float:
        """Volume of the subset (sum of the point weights)."""
        return float(self.point_weights.sum())

    def strain(self, u: np.ndarray) -> np.ndarray:
        """Small strains ``(n_points, 6)`` (engineering shears) of a global displacement ``u`` ``(n_dofs,)``."""
        u = self._check(u, (self.n_dofs,), "u (global displacement, 3 n_nodes)")
        out = np.empty((self.n_points, 6))
        for g in self.groups:
            U = u[g.dofs].reshape(g.n_elements, 1, -1, 3)  # (n_e, 1, n_en, 3)
            H = np.swapaxes(g.gradients, -1, -2) @ U  # H[e,q,i,c] = sum_a dN_a/dx_i u_ac
            out[g.points] = _voigt_from_gradient(H).reshape(-1, 6)
        return out

    def interpolate(self, nodal: np.ndarray) -> np.ndarray:
        """Interpolate nodal values ``(n_nodes,)`` or ``(n_nodes, k)`` to ``(n_points,)``/``(n_points, k)``."""
        return self._interpolate(nodal, "N")

    def interpolate_temperature(self, nodal: np.ndarray) -> np.ndarray:
        """Point temperatures of nodal ones (as :meth:`interpolate`, but with CalculiX's element mean for the
        types of :data:`ELEMENT_MEAN_TEMPERATURE`): what the laws see."""
        return self._interpolate(nodal, "N_temperature")

    def _interpolate(self, nodal: np.ndarray, weights: str) -> np.ndarray:
        v = np.asarray(nodal, dtype=float)
        if v.ndim not in (1, 2) or v.shape[0] != self.n_nodes:
            raise MeshError(
                f"nodal values must have shape ({self.n_nodes},) or ({self.n_nodes}, k), got {v.shape}"
            )
        v2 = v.reshape(self.n_nodes, -1)
        out = np.empty((self.n_points, v2.shape[1]))
        for g in self.groups:
            out[g.points] = (getattr(g, weights) @ v2[g.nodes]).reshape(-1, v2.shape[1])  # (n_q,n_en)@(n_e,n_en,k)
        return out[:, 0] if v.ndim == 1 else out

    # -- forces ----------------------------------------------------------------------------------------
    def internal_force(self, stress: np.ndarray) -> np.ndarray:
        """Internal force ``f = sum_k B_k^T sigma_k w_k`` ``(n_dofs,)`` of stresses ``(n_points, 6)``."""
        stress = self._check(stress, (self.n_points, 6), "stress (tensor-shear Voigt per point)")
        f = np.zeros(self.n_dofs)
        for g in self.groups:
            S = _tensor_from_voigt(stress[g.points]).reshape(g.n_elements, -1, 3, 3)
            S = S * g.weights[..., None, None]
            # f_e[a, c] = sum_q sum_i dN_a/dx_i sigma_ic w_q
            fe = (g.gradients @ S).sum(axis=1)  # (n_e, n_en, 3)
            f += np.bincount(g.dofs.ravel(), fe.ravel(), minlength=self.n_dofs)
        return f

    def volume_force(self, force_density: np.ndarray) -> np.ndarray:
        """Nodal forces ``f_a = int N_a b dV`` ``(n_dofs,)`` of a force per volume ``b`` ``(n_points, 3)``."""
        b = self._check(force_density, (self.n_points, 3), "force_density (per integration point)")
        f = np.zeros(self.n_dofs)
        for g in self.groups:
            bw = b[g.points].reshape(g.n_elements, -1, 3) * g.weights[..., None]
            fe = np.einsum("qa,eqc->eac", g.N, bw)
            f += np.bincount(g.dofs.ravel(), fe.ravel(), minlength=self.n_dofs)
        return f

    def body_force(self, acceleration: np.ndarray, density: float | np.ndarray) -> np.ndarray:
        """Nodal forces of a body acceleration, ``f = int N^T rho g dV`` ``(n_dofs,)``.

        ``acceleration``: ``(3,)`` or ``(n_points, 3)`` [length/time^2]; ``density``: scalar or
        ``(n_points,)`` [mass/length^3].
        """
        a = np.asarray(acceleration, dtype=float)
        if a.shape not in ((3,), (self.n_points, 3)):
            raise MeshError(f"acceleration must have shape (3,) or ({self.n_points}, 3), got {a.shape}")
        rho = self._per_point(density, "density", "mass/length^3")
        return self.volume_force(rho[:, None] * np.broadcast_to(a, (self.n_points, 3)))

    def centrifugal_force(
        self,
        density: float | np.ndarray,
        omega: float,
        axis_point: np.ndarray,
        axis_direction: np.ndarray,
    ) -> np.ndarray:
        """Nodal centrifugal forces ``f = int N^T rho omega^2 r_perp dV`` ``(n_dofs,)``.

        ``r_perp`` is the position relative to the rotation axis (through ``axis_point`` ``(3,)``,
        along ``axis_direction`` ``(3,)``, any length), pointing away from it. ``omega`` in rad/time
        (CalculiX ``*DLOAD ..., CENTRIF, omega^2, ...`` takes omega squared).
        """
        p = self._check(axis_point, (3,), "axis_point")
        d = self._check(axis_direction, (3,), "axis_direction")
        nd = np.linalg.norm(d)
        if not nd > 0.0:
            raise MeshError("axis_direction must be a non-zero vector (3,)")
        d = d / nd
        r = self.point_coordinates - p
        r_perp = r - np.outer(r @ d, d)
        rho = self._per_point(density, "density", "mass/length^3")
        return self.volume_force((rho * float(omega) ** 2)[:, None] * r_perp)

    def _own_faces(self, faces: np.ndarray) -> np.ndarray:
        """Bool mask ``(n_faces,)`` of faces whose element belongs to this subset."""
        if len(self.elements) == 0:
            return np.zeros(len(faces), dtype=bool)
        pos = np.minimum(np.searchsorted(self.elements, faces[:, 0]), len(self.elements) - 1)
        return self.elements[pos] == faces[:, 0]

    def _surface(
        self, faces: np.ndarray, pressure: float | np.ndarray | None = None,
        traction: np.ndarray | None = None,
    ) -> np.ndarray:
        faces = surface.check_faces(self.mesh, faces)
        own = self._own_faces(faces)
        # shapes are checked on the full input so that all ranks accept or reject alike
        if pressure is not None:
            pressure = np.asarray(pressure, dtype=float)
            if pressure.ndim:
                if pressure.ndim > 2 or pressure.shape[0] != len(faces):
                    raise MeshError(
                        f"pressure must be a scalar, per face ({len(faces)},) or per face node "
                        f"({len(faces)}, n_face_nodes), got shape {pressure.shape}"
                    )
                pressure = pressure[own]
        if traction is not None:
            traction = np.asarray(traction, dtype=float)
            if traction.shape not in ((3,), (len(faces), 3)):
                raise MeshError(f"traction must have shape (3,) or ({len(faces)}, 3), got {traction.shape}")
            if traction.ndim == 2:
                traction = traction[own]
        return surface.surface_force(self.mesh, faces[own], pressure=pressure, traction=traction)

    def pressure_force(self, faces: np.ndarray, pressure: float | np.ndarray) -> np.ndarray:
        """Nodal forces ``(n_dofs,)`` of a pressure on ``faces`` ``(n_faces, 2)`` (global element, local face).

        Only faces whose element belongs to this subset are integrated (so subsets sum to the whole).
        ``pressure``: scalar, per face ``(n_faces,)`` or per face node ``(n_faces, n_face_nodes)``
        [force/area]; positive pushes INTO the solid (CalculiX ``*DLOAD P``): ``f = -int p n_out N dA``.
        """
        return self._surface(faces, pressure=pressure)

    def traction_force(self, faces: np.ndarray, traction: np.ndarray) -> np.ndarray:
        """Nodal forces ``f = int N t dA`` ``(n_dofs,)`` of a traction ``(3,)`` or ``(n_faces, 3)`` on ``faces``
        owned by this subset."""
        return self._surface(faces, traction=traction)

    # -- matrices --------------------------------------------------------------------------------------
    def _tangent(self, tangent: np.ndarray) -> np.ndarray:
        C = np.asarray(tangent, dtype=float)
        if C.shape not in ((6, 6), (self.n_points, 6, 6)):
            raise MeshError(
                f"tangent must have shape (6, 6) or (n_points={self.n_points}, 6, 6), got {C.shape}"
            )
        return C

    def _stiffness_chunks(self, tangent: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(dofs (n_c, nd), K_e (n_c, nd, nd))`` chunk by chunk."""
        C = self._tangent(tangent)
        for g in self.groups:
            n_q, nd = g.n_element_points, 3 * g.nodes.shape[1]
            for c in g.chunks(n_q * 6 * nd * 2 + nd * nd):
                B = b_matrix(g.gradients[c])  # (n_c, n_q, 6, nd)
                n_c = B.shape[0]
                if C.ndim == 2:
                    CB = C @ B
                else:
                    pts = np.arange(g.point_offset, g.point_offset + g.n_points)
                    Cq = C[pts.reshape(g.n_elements, n_q)[c]]  # (n_c, n_q, 6, 6)
                    CB = Cq @ B
                CB *= g.weights[c][..., None, None]
                # K_e = sum_q B_q^T C_q B_q w_q as one (nd x 6 n_q) @ (6 n_q x nd) product per element
                Bt = B.transpose(0, 3, 1, 2).reshape(n_c, nd, n_q * 6)
                Ke = Bt @ CB.reshape(n_c, n_q * 6, nd)
                yield g.dofs[c], Ke

    def stiffness_coo(self, tangent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Element stiffness matrices ``int B^T C B dV`` as COO triplets, duplicates NOT summed.

        ``tangent``: ``(6, 6)`` or ``(n_points, 6, 6)`` [stress units]. Returns ``(rows, cols, values)``,
        each of length ``sum_e (3 n_en)^2``, element after element (row-major within an element);
        index dtype int32 when ``n_dofs`` fits, else int64. The order never changes between calls, so
        Newton loops may keep ``rows, cols`` and call :meth:`stiffness_values` only.
        """
        rows, cols = self.stiffness_coo_pattern()
        return rows, cols, self.stiffness_values(tangent)

    def stiffness_coo_pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of :meth:`stiffness_coo` (not cached: 2 x sum_e (3 n_en)^2 integers)."""
        idt = _index_dtype(self.n_dofs)
        rows, cols = [], []
        for g in self.groups:
            nd = g.dofs.shape[1]
            rows.append(np.broadcast_to(g.dofs[:, :, None], (g.n_elements, nd, nd)).astype(idt).ravel())
            cols.append(np.broadcast_to(g.dofs[:, None, :], (g.n_elements, nd, nd)).astype(idt).ravel())
        if not rows:
            return np.zeros(0, idt), np.zeros(0, idt)
        return np.concatenate(rows), np.concatenate(cols)

    def stiffness_values(self, tangent: np.ndarray) -> np.ndarray:
        """The ``values`` of :meth:`stiffness_coo` only: ``(sum_e (3 n_en)^2,)`` element matrices."""
        total = sum(g.n_elements * g.dofs.shape[1] ** 2 for g in self.groups)
        vals = np.empty(total)
        pos = 0
        for _, Ke in self._stiffness_chunks(tangent):
            vals[pos : pos + Ke.size] = Ke.ravel()
            pos += Ke.size
        if total == 0:
            self._tangent(tangent)  # still validate the input
        return vals

    def _node_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cached node-level sparsity: ``(inverse, indices, indptr)``.

        ``inverse`` ``(sum_e n_en^2,)`` maps each element node pair ``(a, b)`` (element after element,
        row-major) to its slot in the node-level CSR pattern ``(indices, indptr)`` (n_nodes x n_nodes).
        """
        if self._pattern is None:
            n = self.n_nodes
            keys = np.concatenate(
                [(g.nodes[:, :, None] * n + g.nodes[:, None, :]).ravel() for g in self.groups]
                or [np.zeros(0, np.int64)]
            )
            uniq, inverse = np.unique(keys, return_inverse=True)
            indptr = np.concatenate([[0], np.cumsum(np.bincount(uniq // n, minlength=n))])
            self._pattern = (inverse.ravel(), uniq % n, indptr)
        return self._pattern

    def _dof_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Cached dof-level CSR pattern of the stiffness: ``(base, rowlen3, indices, indptr)``.

        Every node pair slot ``s`` (row node ``i``) of :meth:`_node_pattern` is a dense 3x3 block; its
        entry ``(c, d)`` sits at CSR position ``base[s] + c rowlen3[s] + d`` with
        ``base[s] = 9 indptr_n[i] + 3 (s - indptr_n[i])`` and ``rowlen3[s] = 3 (indptr_n[i+1] - indptr_n[i])``.
        """
        if self._dof_csr is None:
            _, ncol, nptr = self._node_pattern()
            row = np.repeat(np.arange(self.n_nodes), np.diff(nptr))  # node row of each slot
            base = 9 * nptr[row] + 3 * (np.arange(len(ncol)) - nptr[row])
            rowlen3 = 3 * np.diff(nptr)[row]
            c = np.arange(3)
            pos = base[:, None, None] + c[:, None] * rowlen3[:, None, None] + c
            indices = np.empty(9 * len(ncol), dtype=_index_dtype(self.n_dofs))
            indices[pos.ravel()] = np.broadcast_to(3 * ncol[:, None, None] + c, pos.shape).ravel()
            indptr = (9 * nptr[:-1, None] + 3 * c * np.diff(nptr)[:, None]).ravel()
            indptr = np.append(indptr, 9 * nptr[-1]).astype(indices.dtype)
            self._dof_csr = (base, rowlen3, indices, indptr)
        return self._dof_csr

    def stiffness(self, tangent: np.ndarray) -> sp.csr_matrix:
        """Stiffness matrix ``(n_dofs, n_dofs)`` CSR, duplicates summed, indices sorted.

        Assembled chunk by chunk into a cached CSR pattern (one dense 3x3 block per node pair sharing
        an element, explicit zeros possible), so repeated calls (Newton iterations) only pay for the
        element matrices and one bincount per chunk.
        """
        inverse = self._node_pattern()[0]
        base, rowlen3, indices, indptr = self._dof_pattern()
        data = np.zeros(len(indices))
        c = np.arange(3).reshape(1, 1, 3, 1, 1)
        d = np.arange(3).reshape(1, 1, 1, 1, 3)
        start = 0
        for dofs, Ke in self._stiffness_chunks(tangent):
            n_c, nd = dofs.shape
            n_en = nd // 3
            # Ke[e, 3a+c, 3b+d] -> CSR position base[slot] + c rowlen3[slot] + d, slot = slot(e, a, b)
            slot = inverse[start : start + n_c * n_en * n_en].reshape(n_c, n_en, 1, n_en, 1)
            key = base[slot] + rowlen3[slot] * c + d
            data += np.bincount(key.ravel(), Ke.ravel(), minlength=len(data))
            start += n_c * n_en * n_en
        n = self.n_dofs
        K = sp.csr_matrix((data, indices.copy(), indptr.copy()), shape=(n, n))
        K.has_sorted_indices = True
        return K

    def strain_operator(self) -> sp.csr_matrix:
        """``(6 n_points, n_dofs)`` CSR with row ``6 k + c`` = Voigt strain component ``c`` at point ``k``
        (so ``strain_operator() @ u == strain(u).ravel()``); only structural non-zeros stored."""
        indices, data, counts = [], [], []
        for g in self.groups:
            n_q, n_en = g.n_element_points, g.nodes.shape[1]
            # B[comp, col] == G.ravel()[gidx]: code G entries as 1 + (3 a + i) and read them off B
            Bcode = b_matrix(np.arange(1.0, 3 * n_en + 1).reshape(n_en, 3))
            comp, col = np.nonzero(Bcode)  # row-major: grouped by Voigt row, columns ascending
            gidx = Bcode[comp, col].astype(np.int64) - 1
            counts.append(np.tile(np.count_nonzero(Bcode, axis=1), g.n_points))
            for ch in g.chunks(n_q * 3 * len(comp)):
                Gc = g.gradients[ch]
                n_c = len(Gc)
                data.append(np.take(Gc.reshape(n_c, n_q, -1), gidx, axis=2).ravel())
                indices.append(np.broadcast_to(g.dofs[ch][:, None, col], (n_c, n_q, len(col))).ravel())
        shape = (6 * self.n_points, self.n_dofs)
        if not data:
            return sp.csr_matrix(shape)
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
        return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=shape)

    def interpolation_operator(self) -> sp.csr_matrix:
        """``(n_points, n_nodes)`` CSR with ``operator @ nodal == interpolate(nodal)``."""
        return self._interpolation_operator("N")

    def temperature_operator(self) -> sp.csr_matrix:
        """``(n_points, n_nodes)`` CSR with ``operator @ nodal == interpolate_temperature(nodal)``."""
        return self._interpolation_operator("N_temperature")

    def _interpolation_operator(self, weights: str) -> sp.csr_matrix:
        indices, data = [], []
        for g in self.groups:
            n_q, n_en = g.N.shape
            indices.append(np.broadcast_to(g.nodes[:, None, :], (g.n_elements, n_q, n_en)).ravel())
            data.append(np.broadcast_to(getattr(g, weights), (g.n_elements, n_q, n_en)).ravel())
        shape = (self.n_points, self.n_nodes)
        if not data:
            return sp.csr_matrix(shape)
        per_row = np.concatenate([np.full(g.n_points, g.N.shape[1]) for g in self.groups])
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        out = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=shape)
        out.sort_indices()
        return out

    def mass_matrix(self, density: float | np.ndarray) -> sp.csr_matrix:
        """Consistent mass ``int rho N^T N dV`` ``(n_dofs, n_dofs)`` CSR; ``density`` scalar or ``(n_points,)``.

        Only the (identical) diagonal entries of each node pair's 3x3 block are stored.
        """
        rho = self._per_point(density, "density", "mass/length^3")
        inverse, indices, indptr = self._node_pattern()
        data = np.zeros(len(indices))
        start = 0
        for g in self.groups:
            rw = rho[g.points].reshape(g.weights.shape) * g.weights  # (n_e, n_q)
            Me = np.einsum("eq,qa,qb->eab", rw, g.N, g.N).ravel()  # (n_e n_en n_en,)
            data += np.bincount(inverse[start : start + len(Me)], Me, minlength=len(indices))
            start += len(Me)
        Mn = sp.csr_matrix((data, indices, indptr), shape=(self.n_nodes, self.n_nodes))
        # dof 3 i + c: M = Mn (x) I_3
        return sp.kron(Mn, sp.identity(3), format="csr")
