"""Online entries of a temperature-dependent elastic stiffness without assembling it: the FE kernel's
:class:`structrom.eim.separation.EntryEvaluator`, which integrates only the elements that touch the selected
dofs.

The matrix is ``A(mu) = K(T(mu))`` with ``K(T) = sum_e int_e B^T C(E(T), nu(T)) B dV`` and ``T(mu)`` a nodal
temperature field from a parametrized family (e.g. :class:`structrom.rom.loading.HotSpotTemperature`, closed form in
the node coordinates), interpolated to the integration points with the shape functions, exactly as the
full assembly :meth:`StiffnessEntries.assemble` does.

For requested entries ``(i_l, j_l)`` (dof ``3 node + c``), the entry is a sum over the elements that
contain both node ``i_l // 3`` and node ``j_l // 3``. :meth:`StiffnessEntries.entries` finds those elements
with a sparse node-element incidence (``Inc[n_i] .* Inc[n_j]``, vectorized over the entries), builds a
:class:`~structrom.rom.fem.kernel.Discretization` on them only (cached per requested ``(rows, cols)`` set, with the
flat positions of each entry's contributions in the subset's element matrices), evaluates ``T(mu)`` at the
subset's nodes only, the tangent at its integration points only, its element matrices
(:meth:`~structrom.rom.fem.kernel.Discretization.stiffness_values`) and sums the contributions. Cost O(number of
touching elements), independent of the mesh size after the first call.

Dirichlet (fixed) dofs: the matrix is the full stiffness with the rows AND columns of the fixed dofs
zeroed and 1 on their diagonal (:func:`eliminate_fixed`), the usual symmetric elimination for homogeneous
constraints (``u = 0`` on the fixed dofs, right-hand side zeroed there). ``entries`` returns exactly that:
``fixed_diagonal`` (default 1) for ``(i, i)`` with ``i`` fixed, 0 for any other entry in a fixed row or
column (no element is integrated for them). In a separation ``sum_k beta_k A(mu_{J_k})`` that constant
identity block becomes ``(sum_k beta_k) I``; it is invisible to a reduced basis that vanishes on the fixed
dofs (``V^T A V`` never reads it) and small in Frobenius norm compared with the stiffness entries.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import Mesh

__all__ = ["StiffnessEntries", "eliminate_fixed", "node_element_incidence"]


def node_element_incidence(mesh: Mesh) -> sp.csr_matrix:
    """``(n_nodes, n_elements)`` CSR, 1 where the node belongs to the element (global element indices:
    blocks one after the other, :attr:`Mesh.block_offsets`)."""
    rows, cols = [], []
    for b, off in zip(mesh.blocks, mesh.block_offsets):
        conn = np.asarray(b.connectivity, dtype=np.int64)
        rows.append(conn.ravel())
        cols.append(np.repeat(np.arange(len(conn), dtype=np.int64) + int(off), conn.shape[1]))
    r, c = np.concatenate(rows), np.concatenate(cols)
    inc = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(mesh.n_nodes, mesh.n_elements))
    inc.data[:] = 1.0  # a node listed twice in one element still counts once
    return inc


def eliminate_fixed(A: sp.spmatrix, fixed_dofs: np.ndarray, diagonal: float = 1.0) -> sp.csr_matrix:
    """``A`` with the rows and columns of ``fixed_dofs`` zeroed and ``diagonal`` on their diagonal.

    The sparsity pattern is kept (explicit zeros stay stored), so every ``A(mu)`` has the same pattern;
    a fixed diagonal entry absent from the pattern is added."""
    A = sp.csr_matrix(A, copy=True)
    n = A.shape[0]
    fixed = np.zeros(n, dtype=bool)
    fixed[np.asarray(fixed_dofs, dtype=np.int64)] = True
    if not fixed.any():
        return A
    row = np.repeat(np.arange(n), np.diff(A.indptr))
    col = A.indices
    A.data[fixed[row] | fixed[col]] = 0.0
    on_diag = fixed[row] & (row == col)
    A.data[on_diag] = float(diagonal)
    missing = np.setdiff1d(np.flatnonzero(fixed), row[on_diag])
    if len(missing):  # add the absent fixed diagonal entries (COO -> CSR keeps the explicit zeros)
        out = sp.coo_matrix((np.r_[A.data, np.full(len(missing), float(diagonal))],
                             (np.r_[row, missing], np.r_[col, missing])), shape=A.shape).tocsr()
        out.sort_indices()
        return out
    return A


class _EntryPlan:
    """Cached data of one requested ``(rows, cols)`` set: the element subset, its local nodes and the
    positions of every entry's contributions in the subset's flat element matrices."""

    def __init__(self, mesh: Mesh, incidence: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray,
                 fixed: np.ndarray | None, fixed_diagonal: float) -> None:
        d = len(rows)
        self.const = np.zeros(d)
        active = np.ones(d, dtype=bool)
        if fixed is not None:
            fr, fc = fixed[rows], fixed[cols]
            self.const[fr & fc & (rows == cols)] = fixed_diagonal
            active = ~(fr | fc)
        act = np.flatnonzero(active)
        # elements containing both nodes of each active entry: row l of P lists them
        P = incidence[rows[act] // 3].multiply(incidence[cols[act] // 3]).tocsr()
        P.eliminate_zeros()
        ent = act[np.repeat(np.arange(len(act)), np.diff(P.indptr))]  # entry of each (entry, element) pair
        el = P.indices.astype(np.int64)
        self.disc = Discretization(mesh, el)
        disc = self.disc
        # flat positions in disc.stiffness_values(): group after group, element after element, row-major
        pos = np.empty(len(el), dtype=np.int64)
        base = 0
        found = np.zeros(len(el), dtype=bool)
        for g in disc.groups:
            nd = g.dofs.shape[1]
            k = np.searchsorted(g.elements, el)
            k_c = np.minimum(k, g.n_elements - 1)
            here = (g.elements[k_c] == el) & ~found
            kk = k_c[here]
            dofs = g.dofs[kk]  # (n_pairs, nd)
            a = np.argmax(dofs == rows[ent[here], None], axis=1)
            b = np.argmax(dofs == cols[ent[here], None], axis=1)
            pos[here] = base + kk * nd * nd + a * nd + b
            found |= here
            base += g.n_elements * nd * nd
        assert found.all()
        self.pos = pos
        self.entry = ent
        self.d = d
        # the subset's nodes, and the point interpolation from them
        nodes = np.unique(np.concatenate([g.nodes.ravel() for g in disc.groups])) if disc.groups else \
            np.zeros(0, np.int64)
        self.nodes = nodes
        self.coordinates = mesh.points[nodes]
        self.local_conn = [np.searchsorted(nodes, g.nodes) for g in disc.groups]

    def point_values(self, nodal_local: np.ndarray) -> np.ndarray:
        out = np.empty(self.disc.n_points)
        for g, conn in zip(self.disc.groups, self.local_conn):
            out[g.points] = (nodal_local[conn] @ g.N_temperature.T).ravel()  # (n_e, n_en) @ (n_en, n_q)
        return out


class StiffnessEntries:
    """:class:`structrom.eim.separation.EntryEvaluator` of ``A(mu) = K(T(mu))`` (see the module docstring).

    ``mesh``: the FE mesh; ``law``: a material with ``elastic_tangent(T (n,)) -> (n, 6, 6)`` (e.g.
    :class:`structrom.rom.materials.elastic.LinearElastic` with a temperature table for E); ``temperature_field_factory``:
    ``mu -> field`` with ``field(time, points (n, 3)) -> (n,)`` nodal temperatures (the
    :class:`structrom.rom.loading.TemperatureField` protocol, e.g. a :class:`~structrom.rom.loading.HotSpotTemperature`), evaluated
    at ``time``; ``fixed_dofs``: Dirichlet dofs eliminated with ``fixed_diagonal`` on the diagonal.

    ``entries(mu, rows, cols)`` -> ``(d,)``; ``assemble(mu)`` -> the full CSR matrix (reference / offline);
    ``plans`` caches one element subset per distinct ``(rows, cols)`` request (``max_plans`` most recent).
    """

    def __init__(self, mesh: Mesh, law, temperature_field_factory: Callable[[object], Callable],
                 fixed_dofs: np.ndarray | None = None, *, time: float = 1.0, fixed_diagonal: float = 1.0,
                 max_plans: int = 8) -> None:
        self.mesh = mesh
        self.law = law
        self.factory = temperature_field_factory
        self.time = float(time)
        self.fixed_diagonal = float(fixed_diagonal)
        self.fixed_dofs = None if fixed_dofs is None else np.unique(np.asarray(fixed_dofs, dtype=np.int64))
        self._fixed_mask = None
        if self.fixed_dofs is not None:
            self._fixed_mask = np.zeros(mesh.n_dofs, dtype=bool)
            self._fixed_mask[self.fixed_dofs] = True
        self.incidence = node_element_incidence(mesh)
        self.plans: dict[bytes, _EntryPlan] = {}
        self.max_plans = int(max_plans)
        self._full: Discretization | None = None
        self.calls = 0

    # -- online ------------------------------------------------------------------------------------
    def plan(self, rows: np.ndarray, cols: np.ndarray) -> _EntryPlan:
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        key = rows.tobytes() + b"|" + cols.tobytes()
        p = self.plans.get(key)
        if p is None:
            n = self.mesh.n_dofs
            if rows.shape != cols.shape or (rows.size and (min(rows.min(), cols.min()) < 0
                                                         or max(rows.max(), cols.max()) >= n)):
                raise ValueError(f"rows and cols must be equal-length dof indices in 0..{n - 1}")
            p = _EntryPlan(self.mesh, self.incidence, rows, cols, self._fixed_mask, self.fixed_diagonal)
            if len(self.plans) >= self.max_plans:
                self.plans.pop(next(iter(self.plans)))
            self.plans[key] = p
        return p

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        self.calls += 1
        p = self.plan(rows, cols)
        out = p.const.copy()
        if len(p.entry) == 0:
            return out
        field = self.factory(mu)
        T_nodes = np.asarray(field(self.time, p.coordinates), dtype=float)
        C = self.law.elastic_tangent(p.point_values(T_nodes))
        vals = p.disc.stiffness_values(C)
        out += np.bincount(p.entry, vals[p.pos], minlength=p.d)
        return out

    # -- offline / reference -----------------------------------------------------------------------
    @property
    def full(self) -> Discretization:
        if self._full is None:
            self._full = Discretization(self.mesh)
        return self._full

    def temperature(self, mu) -> np.ndarray:
        """Nodal ``T(mu)`` ``(n_nodes,)`` on the whole mesh."""
        return np.asarray(self.factory(mu)(self.time, self.mesh.points), dtype=float)

    def assemble(self, mu) -> sp.csr_matrix:
        """The full ``A(mu)`` (all elements, fixed dofs eliminated): what :meth:`entries` reads from."""
        disc = self.full
        K = disc.stiffness(self.law.elastic_tangent(disc.interpolate_temperature(self.temperature(mu))))
        if self.fixed_dofs is not None:
            K = eliminate_fixed(K, self.fixed_dofs, self.fixed_diagonal)
        return K
