"""The distributed weighted inner product of the POD, and the checks of the distributed snapshots.

Every rank holds ``snapshots_local`` ``(n_local_rows, n_snapshots)`` (rows shared between ranks hold the
same values) and its part of the inner product ``<u, v> = sum_ranks u_local^T W_local v_local``:
``weight_local`` a symmetric PSD ``(n_local_rows, n_local_rows)`` matrix (sparse or dense, e.g. an
element-assembled consistent mass), or ``(n_local_rows,)`` non-negative lumped weights, or None with an
``owned`` ``(n_local_rows,)`` bool mask (Euclidean product over owned rows); see :mod:`structrom.rom.pod`.
:class:`_Product` applies it by row blocks of at most :data:`BLOCK_BYTES` and reduces the small
``n_snapshots``-sized results over the ranks; :func:`_half_factor` gives the local factor ``F^T`` with
``W_local = F F^T`` that the TSQR method needs. Input errors raise the same :class:`PODError` on every
rank.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI
from scipy.sparse.csgraph import reverse_cuthill_mckee

from structrom.mpi.collectives import raise_collectively
from structrom.rom.pod_truncation import PODError

#: Bytes of the row blocks of the weighted products and checks (no full-size temporaries of the snapshots).
BLOCK_BYTES = 32 * 2**20


def _raise_collectively(comm: MPI.Comm, message: str | None) -> None:
    """Raise the same :class:`PODError` on every rank if any rank has a message (no deadlock)."""
    raise_collectively(comm, message, PODError)


class _Product:
    """The distributed weighted inner product of one rank's rows."""

    def __init__(self, comm: MPI.Comm, n_rows: int, weight_local, owned, global_rows) -> None:
        self.comm = comm
        self.n_rows = n_rows
        self.matrix: sp.csr_matrix | np.ndarray | None = None
        self.diag: np.ndarray | None = None
        message = None
        try:
            if weight_local is None:
                if owned is None:
                    if comm.Get_size() > 1:
                        raise PODError("owned is required with weight_local=None on several ranks: pass the "
                                       "(n_local_rows,) bool mask of the rows this rank owns")
                    owned = np.ones(n_rows, dtype=bool)
                owned = np.asarray(owned)
                if owned.shape != (n_rows,) or owned.dtype != bool:
                    raise PODError(f"owned must be a ({n_rows},) bool mask (one entry per local row), got "
                                   f"shape {owned.shape} dtype {owned.dtype}")
                self.diag = owned.astype(float)
            elif sp.issparse(weight_local) or np.ndim(weight_local) == 2:
                shape = tuple(weight_local.shape)
                if shape != (n_rows, n_rows):
                    raise PODError(f"weight_local has shape {shape} but snapshots_local has {n_rows} rows: pass "
                                   f"the ({n_rows}, {n_rows}) weight restricted to the same rows")
                self.matrix = sp.csr_matrix(weight_local, dtype=float) if sp.issparse(weight_local) \
                    else np.asarray(weight_local, dtype=float)
            else:
                d = np.asarray(weight_local, dtype=float)
                if d.shape != (n_rows,):
                    raise PODError(f"weight_local (diagonal / lumped) has shape {d.shape}, expected ({n_rows},) "
                                   "to match the rows of snapshots_local")
                if not np.all(np.isfinite(d)) or np.any(d < 0):
                    raise PODError("weight_local (lumped) must be finite and non-negative (a lumped mass); "
                                   "for a consistent C3D10 mass pass the sparse matrix instead")
                self.diag = d
            if global_rows is not None:
                g = np.asarray(global_rows)
                if g.shape != (n_rows,) or not np.issubdtype(g.dtype, np.integer):
                    raise PODError(f"global_rows must be a ({n_rows},) integer array of global row ids, got "
                                   f"shape {g.shape} dtype {g.dtype}")
        except PODError as exc:
            message = str(exc)
        _raise_collectively(comm, message)
        if global_rows is None:
            offset = comm.exscan(n_rows) if comm.Get_size() > 1 else 0
            global_rows = (offset or 0) + np.arange(n_rows, dtype=np.int64)
        self.global_rows = np.asarray(global_rows, dtype=np.int64)
        self._factor: Callable[[np.ndarray], np.ndarray] | None = None

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``W_local X`` (local, no communication)."""
        if self.diag is not None:
            return self.diag[:, None] * X
        return np.asarray(self.matrix @ X)

    def allreduce(self, a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, dtype=float)
        out = np.empty_like(a)
        self.comm.Allreduce(a, out, op=MPI.SUM)
        return out

    def _blocks(self, n_cols: int):
        """Row ranges of at most :data:`BLOCK_BYTES` of an ``n_cols``-column array."""
        step = max(1, BLOCK_BYTES // max(8 * n_cols, 1))
        return ((a, min(a + step, self.n_rows)) for a in range(0, self.n_rows, step))

    def _apply_rows(self, a: int, b: int, Y: np.ndarray) -> np.ndarray:
        """Rows ``a:b`` of ``W_local Y``."""
        if self.diag is not None:
            return self.diag[a:b, None] * Y[a:b]
        return np.asarray(self.matrix[a:b] @ Y)

    def inner(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        """``sum_ranks X^T W Y`` (``Y`` defaults to ``X``; symmetrized then). By row blocks: no copy of
        ``W Y`` larger than :data:`BLOCK_BYTES`."""
        Z = X if Y is None else Y
        G = np.zeros((X.shape[1], Z.shape[1]))
        for a, b in self._blocks(Z.shape[1]):
            G += X[a:b].T @ self._apply_rows(a, b, Z)
        G = self.allreduce(G)
        return 0.5 * (G + G.T) if Y is None else G

    def column_energy(self, X: np.ndarray) -> np.ndarray:
        """``(n_cols,)`` squared weighted norms of the columns."""
        e = np.zeros(X.shape[1])
        for a, b in self._blocks(X.shape[1]):
            e += np.einsum("ij,ij->j", X[a:b], self._apply_rows(a, b, X))
        return self.allreduce(e)

    def half(self, X: np.ndarray) -> np.ndarray:
        """``F^T X`` with ``W_local = F F^T`` (so ``(F^T X)^T (F^T X) = X^T W_local X``)."""
        if self.diag is not None:
            return np.sqrt(self.diag)[:, None] * X
        if self._factor is None:
            message = None
            try:
                self._factor = _half_factor(self.matrix)
            except PODError as exc:
                message = str(exc)
            _raise_collectively(self.comm, message)
        return self._factor(X)


#: Largest local weight factorized densely (eigh) when the sparse LDL^T fails.
DENSE_FACTOR_LIMIT = 4000


def _half_factor(W) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``X -> F^T X`` with ``W = F F^T`` for a symmetric PSD local weight.

    Sparse LDL^T: SuperLU with natural column order and ``diag_pivot_thresh=0`` (no row pivoting) on
    the reverse-Cuthill-McKee-reordered matrix gives ``W_p = L U`` with ``U = D L^T``; it is accepted
    only if no row was pivoted and all pivots are positive (SPD, e.g. a consistent mass of the rank's
    elements on their rows). Otherwise (singular PSD, dense input): dense ``eigh`` with negative
    round-off eigenvalues clipped to zero.
    """
    n = W.shape[0]
    if n == 0:
        return lambda X: np.zeros((0, X.shape[1]))
    if sp.issparse(W):
        try:
            p = reverse_cuthill_mckee(sp.csr_matrix(W), symmetric_mode=True).astype(np.int64)
            Wp = sp.csc_matrix(W[p][:, p])
            lu = spla.splu(Wp, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                           options={"SymmetricMode": True})
            d = lu.U.diagonal()
            if np.array_equal(lu.perm_r, np.arange(n)) and np.array_equal(lu.perm_c, np.arange(n)) \
                    and np.all(d > 0):
                Lt = sp.csr_matrix(lu.L.T)
                sd = np.sqrt(d)
                return lambda X: sd[:, None] * np.asarray(Lt @ X[p])
        except RuntimeError:  # singular factor
            pass
        if n > DENSE_FACTOR_LIMIT:
            raise PODError(
                f"method='tsqr' needs a local weight that a sparse LDL^T factorizes (SPD); this {n} x {n} weight "
                "is singular or indefinite (e.g. a C3D10 consistent mass integrated with the 4-point rule) and "
                "too large for a dense factorization: use method='gram', or pass a lumped (1-D) weight")
        W = W.toarray()
    lam, Q = sla.eigh(0.5 * (W + W.T))
    lam = np.clip(lam, 0.0, None)
    s = np.sqrt(lam)
    return lambda X: s[:, None] * (Q.T @ X)


def _validate_snapshots(comm: MPI.Comm, S, name: str = "snapshots_local") -> np.ndarray:
    message = None
    S_arr = np.zeros((0, 0))
    try:
        S_arr = np.asarray(S, dtype=float)
        if S_arr.ndim != 2:
            raise PODError(f"{name} must be 2-D (n_local_rows, n_snapshots), got shape {S_arr.shape}; "
                           "stack the snapshots as columns")
    except (TypeError, ValueError) as exc:
        message = str(exc) if isinstance(exc, PODError) else f"{name} is not a numeric array: {exc}"
    _raise_collectively(comm, message)
    counts = comm.allgather(S_arr.shape[1])
    if len(set(counts)) > 1:
        raise PODError(f"{name} has different numbers of snapshots (columns) on the ranks: {counts}; every "
                       "rank must hold all snapshots restricted to its rows")
    if counts[0] == 0 or comm.allreduce(S_arr.shape[0]) == 0:
        raise PODError(f"{name} is empty (shape {S_arr.shape} on every rank): provide at least one snapshot")
    step = max(1, BLOCK_BYTES // max(8 * S_arr.shape[1], 1))  # counted by row blocks (no full-size masks)
    bad_nan = comm.allreduce(sum(int(np.count_nonzero(np.isnan(S_arr[a:a + step])))
                                 for a in range(0, S_arr.shape[0], step)))
    bad_inf = comm.allreduce(sum(int(np.count_nonzero(np.isinf(S_arr[a:a + step])))
                                 for a in range(0, S_arr.shape[0], step)))
    if bad_nan or bad_inf:
        what = " and ".join(f"{k} at {v} entries" for k, v in (("NaN", bad_nan), ("Inf", bad_inf)) if v)
        raise PODError(f"{name} contain {what}: remove the failed (diverged) snapshots before the POD")
    return S_arr
