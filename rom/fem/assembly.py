"""Sparse operators of a :class:`~structrom.rom.fem.kernel.Discretization`: the vectorized assembly.

:class:`MatrixAssembly` (a mixin of ``Discretization``) assembles, from the integration-point data of
:mod:`structrom.rom.fem.integration`, the stiffness ``int B^T C B dV`` as COO triplets or into a cached
CSR pattern ``(n_dofs, n_dofs)``, the strain operator ``(6 n_points, n_dofs)``, the interpolation and
temperature operators ``(n_points, n_nodes)`` and the consistent mass ``int rho N^T N dV``
``(n_dofs, n_dofs)``. Element matrices are built chunk by chunk (:meth:`BlockIntegration.chunks`) and
summed with ``np.bincount``; dofs are ``3 node + c``; units: those of the mesh and the tangent.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from structrom.rom.fem.integration import b_matrix
from structrom.rom.fem.mesh import MeshError


def _index_dtype(n: int) -> type:
    return np.int32 if n < np.iinfo(np.int32).max else np.int64



class MatrixAssembly:
    """The matrix-valued operators of :class:`~structrom.rom.fem.kernel.Discretization`.

    A mixin: it reads the host's ``groups``, ``n_nodes``, ``n_dofs``, ``n_points`` and ``_per_point``,
    and caches the sparsity patterns in its ``_pattern`` and ``_dof_csr`` (``None`` until first used).
    """

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
