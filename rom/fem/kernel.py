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

The integration-point data of one element type and the small vectorized helpers are in
:mod:`structrom.rom.fem.integration`; the sparse matrices (stiffness, strain / interpolation operators,
mass) in :mod:`structrom.rom.fem.assembly`. Their names are re-exported here.
"""
from __future__ import annotations

import numpy as np

from structrom.rom.fem import surface
from structrom.rom.fem.assembly import MatrixAssembly, _index_dtype  # noqa: F401 (re-exported)
from structrom.rom.fem.elements import ELEMENTS
from structrom.rom.fem.integration import (  # noqa: F401 (re-exported)
    CHUNK_ENTRIES,
    ELEMENT_MEAN_TEMPERATURE,
    MAX_CHUNK_ELEMENTS,
    BlockIntegration,
    _det_inv3,
    _tensor_from_voigt,
    _voigt_from_gradient,
    b_matrix,
)
from structrom.rom.fem.mesh import Mesh, MeshError


def jacobians(element: str, X: np.ndarray) -> np.ndarray:
    """Jacobians ``J[e, q, i, j] = d x_i / d xi_j`` ``(n_e, n_q, 3, 3)`` at the integration points of elements of
    type ``element`` whose node coordinates are ``X`` ``(n_e, n_en, 3)``: ``J = sum_a X[e, a, i] dN[q, a, j]``."""
    dN = ELEMENTS[element].shape_gradients()  # (n_q, n_en, 3) d N_a / d xi_j
    return np.swapaxes(X, 1, 2)[:, None] @ dN[None]


def collapsed(det: float, point: int) -> str:
    """The words of a non-positive Jacobian determinant ``det`` at integration point ``point`` (and the fix)."""
    return (f"a non-positive Jacobian determinant {det:.3g} at integration point {int(point)} (0-based, CalculiX "
            "order): check node ordering (CalculiX/VTK order) and distorted or collapsed elements")


class Discretization(MatrixAssembly):
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
        J = jacobians(element, self.mesh.points[conn])
        det, Jinv = _det_inv3(J)  # Jinv[e, q, j, i] = d xi_j / d x_i
        bad = ~(det > 0.0)
        if bad.any():
            e, qp = np.argwhere(bad)[0]
            gel = int(elements[e])
            b, _ = self.mesh.element_block(np.array([gel]))
            raise MeshError(f"element {gel} (block {int(b[0])}, {element}) has {collapsed(det[e, qp], qp)}")
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
        ``pressure``: scalar, per face ``(n_faces,)`` or per face node ``(n_faces, n_face_nodes)`` (faces of
        two shapes, a wedge's: the width of its padded face table, a triangle using its first columns)
        [force/area]; positive pushes INTO the solid (CalculiX ``*DLOAD P``): ``f = -int p n_out N dA``.
        """
        return self._surface(faces, pressure=pressure)

    def traction_force(self, faces: np.ndarray, traction: np.ndarray) -> np.ndarray:
        """Nodal forces ``f = int N t dA`` ``(n_dofs,)`` of a traction ``(3,)`` or ``(n_faces, 3)`` on ``faces``
        owned by this subset."""
        return self._surface(faces, traction=traction)
