"""Distributed POD of displacement snapshots in a weighted (mass / L2) inner product.

Offline stage of the ROM (Casenave et al., arXiv 1812.07228, distributed POD): the snapshot matrix is
never gathered; every rank holds the rows (dofs) touched by ITS elements and only small
``n_snapshots``-sized objects travel.

Data distribution (per rank):

* ``snapshots_local`` ``(n_local_rows, n_snapshots)``: snapshot values at the rank's rows. Rows may be
  shared between ranks (interface dofs appear on every rank whose elements touch them) and must then
  hold the same values there.
* the inner product is ``<u, v> = sum_ranks u_local^T W_local v_local`` with either

  - ``weight_local``: a symmetric PSD ``(n_local_rows, n_local_rows)`` matrix (scipy sparse or dense),
    typically the element-assembled consistent mass of the rank's elements restricted to its rows
    (no double counting of interface dofs because the mass is assembled element by element);
  - ``weight_local``: a 1-D ``(n_local_rows,)`` array of non-negative weights (a lumped / diagonal
    mass, also element-assembled);
  - ``weight_local=None`` and ``owned``: ``(n_local_rows,)`` bool mask; the Euclidean product over
    owned rows (every global row must be owned by exactly one rank). On a single rank ``owned`` may
    be omitted (all rows owned).

Methods (all return the same :class:`PODResult`):

* ``"gram"``: correlation ``C = sum_ranks S^T W S`` (Allreduce, ``n_s x n_s``), ``scipy.linalg.eigh``,
  modes ``S V Sigma^-1``. Cheapest; accurate for singular values down to ~``sqrt(eps)`` of the
  largest (the Gram matrix squares the condition number).
* ``"tsqr"``: tall-skinny QR of ``F^T S`` where ``W = F F^T`` (rank-local factor: sparse LDL^T without
  pivoting after a reverse Cuthill-McKee ordering, dense ``eigh`` fallback, trivial for a diagonal
  weight); the ``n_s x n_s`` R factors are Allgathered and QR-ed again identically on every rank; the
  SVD of the final R gives singular values accurate down to ~``eps`` relative.
* ``"randomized"``: randomized range finder (seeded Gaussian test matrix, identical on all ranks,
  oversampling, power iterations) in the weighted product, for many snapshots and few wanted modes.
* :class:`IncrementalPOD`: streaming (Brand-style) incremental SVD in the weighted product.

Truncation criterion (exact): with eigenvalues ``lambda_1 >= lambda_2 >= ...`` of the correlation
matrix (``lambda_i = sigma_i^2``), the number of modes is the smallest ``N`` such that::

    sum_{i > N} lambda_i <= tolerance^2 * sum_i lambda_i

i.e. the relative projection error of the snapshot set in the energy (Frobenius, weighted) sense
``sqrt(sum_j ||s_j - P s_j||^2 / sum_j ||s_j||^2) <= tolerance``; then ``N = min(N, max_modes)``.

Sign convention (deterministic, independent of the number of ranks when ``global_rows`` is given):
each mode is multiplied by +-1 so that its entry of largest magnitude is positive; entries within a
relative ``1e-8`` of the largest magnitude count as ties and the lowest global row among them decides.
Without ``global_rows`` the rows are numbered rank after rank (deterministic for a fixed rank count
only). Modes of (numerically) repeated singular values are not unique; nothing can make them so.

Every retained mode set is re-orthonormalized by one weighted Cholesky-QR pass (``Phi R^-1`` with
``R^T R = Phi^T W Phi``), which removes the loss of orthogonality of ``S V Sigma^-1`` for small
singular values without changing the spanned spaces of the leading modes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI
from scipy.sparse.csgraph import reverse_cuthill_mckee

from structrom.mpi.collectives import raise_collectively
from structrom.mpi.errors import StructromError

EPS = float(np.finfo(float).eps)
#: Bytes of the row blocks of the weighted products and checks (no full-size temporaries of the snapshots).
BLOCK_BYTES = 32 * 2**20
#: Relative tolerance under which two entries' magnitudes tie for the sign convention.
SIGN_TIE_RTOL = 1e-8
METHODS = ("gram", "tsqr", "randomized")


class PODError(StructromError, ValueError):
    """Bad POD input (names the field and the fix)."""


@dataclass
class PODResult:
    """Outcome of a POD.

    ``modes_local``: ``(n_local_rows, N)`` this rank's rows of the modes, orthonormal in the weighted
    product; ``singular_values``: ``(N,)`` square roots of the retained eigenvalues, descending;
    ``eigenvalues``: ``(M,)`` the non-negative eigenvalues of the correlation matrix above round-off,
    descending (``M = `` numerical rank; for ``"randomized"`` only the ``M`` computed ones);
    ``tolerance``: the requested relative energy tolerance; ``total_energy``: ``sum_j ||s_j||_W^2``
    (trace of the correlation matrix; defaults to ``eigenvalues.sum()``).
    """

    modes_local: np.ndarray
    singular_values: np.ndarray
    eigenvalues: np.ndarray
    tolerance: float
    total_energy: float | None = None
    method: str = "gram"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.total_energy is None:
            self.total_energy = float(np.sum(self.eigenvalues))

    @property
    def n_modes(self) -> int:
        return int(self.modes_local.shape[1])

    def discarded_energy(self) -> float:
        """``sum_{i > N} lambda_i`` (plus the energy outside the computed spectrum, if partial)."""
        n = self.n_modes
        tail = float(np.sum(self.eigenvalues[n:]))
        return tail + _outside(float(self.total_energy), self.eigenvalues)

    def relative_energy_error(self) -> float:
        """``sqrt(sum discarded / sum all)``: the relative (weighted Frobenius) projection error."""
        total = float(self.total_energy)
        return float(np.sqrt(self.discarded_energy() / total)) if total > 0 else 0.0


# -- collective validation ------------------------------------------------------------------------------


def _raise_collectively(comm: MPI.Comm, message: str | None) -> None:
    """Raise the same :class:`PODError` on every rank if any rank has a message (no deadlock)."""
    raise_collectively(comm, message, PODError)


def _check_tolerance(tolerance: float, max_modes: int | None) -> None:
    if not (isinstance(tolerance, (int, float)) and 0.0 < float(tolerance) < 1.0):
        raise PODError(f"tolerance must be in (0, 1) (relative energy error, e.g. 1e-6), got {tolerance!r}")
    if max_modes is not None and (not isinstance(max_modes, (int, np.integer)) or max_modes < 1):
        raise PODError(f"max_modes must be a positive integer or None, got {max_modes!r}")


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


# -- shared steps -------------------------------------------------------------------------------------


def _outside(total: float, eigenvalues: np.ndarray) -> float:
    """Energy outside the computed spectrum, ``total - sum(eigenvalues)``; differences below the
    round-off of that subtraction (``64 eps total``) count as zero."""
    out = total - float(np.sum(eigenvalues))
    return out if out > 64 * EPS * total else 0.0


def _truncation(eigenvalues: np.ndarray, total: float, tolerance: float, max_modes: int | None) -> int:
    """Smallest ``N`` with ``total - sum_{i<=N} lambda_i <= tolerance^2 total`` (tail summed exactly when
    the spectrum is complete), capped by ``max_modes`` and by the number of eigenvalues."""
    lam = np.asarray(eigenvalues, dtype=float)
    m = len(lam)
    if m == 0:
        return 0
    outside = _outside(total, lam)
    # tails[N] = sum_{i >= N} lam_i (0-based), summed from the small end for accuracy
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]]) + outside
    ok = np.flatnonzero(tails <= tolerance ** 2 * total)
    n = int(ok[0]) if ok.size else m
    n = max(n, 1)
    if max_modes is not None:
        n = min(n, int(max_modes))
    return min(n, m)


def _reorthonormalize(prod: _Product, Phi: np.ndarray) -> np.ndarray:
    """One weighted Cholesky-QR pass ``Phi R^-1`` (second pass if still off by more than 1e-13)."""
    for _ in range(2):
        if Phi.shape[1] == 0:
            return Phi
        G = prod.inner(Phi)
        if np.max(np.abs(G - np.eye(len(G)))) <= 1e-14:
            return Phi
        try:
            R = sla.cholesky(G, lower=False)
        except sla.LinAlgError:
            return Phi
        if not (Phi.flags.owndata and Phi.flags.c_contiguous):
            Phi = np.array(Phi, order="C")  # never overwrite the caller's array
        for a, b in prod._blocks(Phi.shape[1]):  # Phi <- Phi R^-1 in place, by row blocks
            Phi[a:b] = sla.solve_triangular(R, Phi[a:b].T, trans="T", lower=False).T
    return Phi


def _fix_signs(prod: _Product, Phi: np.ndarray) -> np.ndarray:
    """Make each mode's largest-magnitude entry positive, ties (rel. 1e-8) -> lowest global row."""
    comm, n_modes = prod.comm, Phi.shape[1]
    if n_modes == 0:
        return Phi
    blocks = list(prod._blocks(n_modes))  # by row blocks: no full-size temporaries
    local_max = np.zeros(n_modes)
    for a, b in blocks:
        local_max = np.maximum(local_max, np.abs(Phi[a:b]).max(axis=0))
    gmax = np.empty(n_modes)
    comm.Allreduce(np.ascontiguousarray(local_max), gmax, op=MPI.MAX)
    big = np.iinfo(np.int64).max
    local_row = np.full(n_modes, big)
    for a, b in blocks:
        cand = np.where(np.abs(Phi[a:b]) >= (1.0 - SIGN_TIE_RTOL) * gmax[None, :], prod.global_rows[a:b, None], big)
        local_row = np.minimum(local_row, cand.min(axis=0))
    grow = np.empty(n_modes, dtype=np.int64)
    comm.Allreduce(np.ascontiguousarray(local_row, dtype=np.int64), grow, op=MPI.MIN)
    votes = np.zeros(n_modes)
    for a, b in blocks:
        votes += np.sum(np.sign(Phi[a:b]) * (prod.global_rows[a:b, None] == grow[None, :]), axis=0)
    votes = prod.allreduce(votes)
    signs = np.where(votes < 0, -1.0, 1.0)
    if not Phi.flags.owndata:  # a view of the caller's array (e.g. IncrementalPOD's modes): leave it alone
        return Phi * signs[None, :]
    Phi *= signs[None, :]
    return Phi


def _finish(prod: _Product, Phi: np.ndarray, sigma: np.ndarray, eigenvalues: np.ndarray, total: float,
            tolerance: float, method: str, **extra) -> PODResult:
    Phi = _fix_signs(prod, _reorthonormalize(prod, Phi))
    return PODResult(np.ascontiguousarray(Phi), np.asarray(sigma, dtype=float),
                     np.asarray(eigenvalues, dtype=float), float(tolerance), float(total), method, extra)


def _orthonormal_basis(prod: _Product, Y: np.ndarray, rtol: float) -> np.ndarray:
    """W-orthonormal basis of the span of ``Y``'s columns (directions below ``rtol`` dropped)."""
    G = prod.inner(Y)
    lam, V = sla.eigh(G)
    lam, V = lam[::-1], V[:, ::-1]
    keep = lam > rtol ** 2 * max(lam[0], 0.0) if len(lam) else np.zeros(0, bool)
    if not np.any(keep):
        return Y[:, :0]
    Q = Y @ (V[:, keep] / np.sqrt(lam[keep]))
    return _reorthonormalize(prod, Q)


# -- methods ------------------------------------------------------------------------------------------


def _pod_gram(prod, S, tolerance, max_modes):
    C = prod.inner(S)
    total = float(np.trace(C))
    lam, V = sla.eigh(C)
    lam, V = lam[::-1], V[:, ::-1]
    n_s = len(lam)
    keep = lam > EPS * max(lam[0], 0.0) * n_s  # drop negative / round-off eigenvalues
    lam, V = lam[keep], V[:, keep]
    n = _truncation(lam, float(np.sum(lam)), tolerance, max_modes)
    sigma = np.sqrt(lam[:n])
    Phi = S @ (V[:, :n] / sigma)
    return _finish(prod, Phi, sigma, lam, float(np.sum(lam)), tolerance, "gram", trace=total)


def _pod_tsqr(prod, S, tolerance, max_modes):
    n_s = S.shape[1]
    B = prod.half(S)  # (m, n_s), B^T B = S^T W_local S
    R_loc = sla.qr(B, mode="r")[0] if B.shape[0] else np.zeros((0, n_s))
    R_loc = np.triu(R_loc[:n_s])
    R_pad = np.zeros((n_s, n_s))
    R_pad[: len(R_loc)] = R_loc
    stacked = np.empty((prod.comm.Get_size() * n_s, n_s))
    prod.comm.Allgather(np.ascontiguousarray(R_pad), stacked)
    R = sla.qr(stacked, mode="r")[0][:n_s] if prod.comm.Get_size() > 1 else R_pad
    _, s, Vt = sla.svd(R, lapack_driver="gesvd")
    keep = s > EPS * max(s[0], 0.0) * n_s  # round-off level of singular values (not of eigenvalues)
    s, V = s[keep], Vt[keep].T
    lam = s ** 2
    n = _truncation(lam, float(np.sum(lam)), tolerance, max_modes)
    sigma = s[:n]
    Phi = S @ (V[:, :n] / sigma)
    return _finish(prod, Phi, sigma, lam, float(np.sum(lam)), tolerance, "tsqr")


def _pod_randomized(prod, S, tolerance, max_modes, oversampling, power_iterations, seed, initial_rank):
    n_s = S.shape[1]
    total = float(np.sum(prod.column_energy(S)))
    rng = np.random.default_rng(seed)  # same seed -> same test matrix on every rank
    k = min(n_s, (max_modes if max_modes is not None else initial_rank) + oversampling)
    rtol = np.sqrt(EPS) * 10
    while True:
        omega = rng.standard_normal((n_s, k))
        Y = _orthonormal_basis(prod, S @ omega, rtol)
        for _ in range(power_iterations):  # subspace iteration, re-orthonormalized after S^T W and S
            Z = sla.qr(prod.inner(S, Y), mode="economic")[0]  # (n_s, r), identical on all ranks
            Y = _orthonormal_basis(prod, S @ Z, rtol)
        T = prod.inner(Y, S)  # (r, n_s) = Y^T W S
        Ut, s, _ = sla.svd(T, full_matrices=False, lapack_driver="gesvd")
        keep = s > EPS * max(s[0], 0.0) * n_s if len(s) else np.zeros(0, bool)
        s, Ut = s[keep], Ut[:, keep]
        lam = s ** 2
        n = _truncation(lam, total, tolerance, max_modes)
        captured = total - float(np.sum(lam[:n])) <= tolerance ** 2 * total
        if max_modes is not None or captured or k >= n_s or len(s) < Y.shape[1] or len(s) < k:
            break
        k = min(n_s, 2 * k)
    Phi = Y @ Ut[:, :n]
    return _finish(prod, Phi, s[:n], lam, total, tolerance, "randomized", sketch_size=int(k))


def pod(
    comm: MPI.Comm | None,
    snapshots_local: np.ndarray,
    weight_local: sp.spmatrix | np.ndarray | None = None,
    owned: np.ndarray | None = None,
    *,
    tolerance: float = 1e-6,
    max_modes: int | None = None,
    method: str = "gram",
    global_rows: np.ndarray | None = None,
    oversampling: int = 10,
    power_iterations: int = 2,
    seed: int = 0,
    initial_rank: int = 10,
) -> PODResult:
    """POD of distributed snapshots in the weighted product (collective over ``comm``).

    ``snapshots_local``: ``(n_local_rows, n_snapshots)``; ``weight_local``: ``(n_local_rows,
    n_local_rows)`` symmetric PSD (sparse or dense), or ``(n_local_rows,)`` lumped weights, or None
    with ``owned`` ``(n_local_rows,)`` bool (Euclidean on owned rows); ``global_rows``:
    ``(n_local_rows,)`` global row ids (for a sign convention independent of the rank count).
    ``tolerance`` in (0, 1): relative energy error (see the module docstring for the criterion);
    ``max_modes``: cap on the number of modes (for ``"randomized"``: the target rank, sketch size
    ``max_modes + oversampling``; without it the sketch starts at ``initial_rank + oversampling`` and
    doubles until the energy criterion, measured against the exact total energy ``trace(C)``, holds).

    Raises :class:`PODError` (on every rank) for bad input.
    """
    comm = MPI.COMM_SELF if comm is None else comm
    _check_tolerance(tolerance, max_modes)
    if method not in METHODS:
        raise PODError(f"method must be one of {METHODS} (or use IncrementalPOD for streaming), got {method!r}")
    S = _validate_snapshots(comm, snapshots_local)
    prod = _Product(comm, S.shape[0], weight_local, owned, global_rows)
    if method == "gram":
        return _pod_gram(prod, S, tolerance, max_modes)
    if method == "tsqr":
        return _pod_tsqr(prod, S, tolerance, max_modes)
    if oversampling < 0 or power_iterations < 0:
        raise PODError("oversampling and power_iterations must be >= 0")
    return _pod_randomized(prod, S, tolerance, max_modes, oversampling, power_iterations, seed, initial_rank)


class IncrementalPOD:
    """Streaming POD: snapshot batches arrive one at a time; only the modes and singular values are kept.

    Brand's incremental SVD in the weighted product: for a batch ``B`` ``(n_local_rows, b)``,
    ``P = Phi^T W B`` and the residual ``B - Phi P`` (projected twice) is W-orthonormalized
    (``Q_r R_r``, directions below ``sqrt(n eps)`` of the scale dropped); the SVD of the small
    ``[[diag(sigma), P], [0, R_r]]`` updates ``Phi <- [Phi, Q_r] U`` and ``sigma``. After each update
    the trailing singular values are re-truncated with ``update_tolerance`` (default
    ``tolerance / 10``) against the running total energy ``sum_j ||s_j||_W^2`` (tracked exactly), and
    to ``max_rank`` if given. The discarded energy accumulates and is accounted for in
    :meth:`result` (``total_energy`` is the exact total, so ``relative_energy_error`` includes it).
    The constructor arguments have the meaning of :func:`pod`'s; calls are collective.
    """

    def __init__(self, comm: MPI.Comm | None, weight_local=None, owned=None, *, n_local_rows: int | None = None,
                 tolerance: float = 1e-6, max_modes: int | None = None, max_rank: int | None = None,
                 update_tolerance: float | None = None, global_rows: np.ndarray | None = None) -> None:
        self.comm = MPI.COMM_SELF if comm is None else comm
        _check_tolerance(tolerance, max_modes)
        self.tolerance = float(tolerance)
        self.max_modes = max_modes
        self.max_rank = max_rank
        self.update_tolerance = tolerance / 10 if update_tolerance is None else float(update_tolerance)
        self._args = (weight_local, owned, global_rows)
        self._prod: _Product | None = None
        if n_local_rows is not None:
            self._prod = _Product(self.comm, n_local_rows, *self._args)
        self.modes: np.ndarray | None = None
        self.sigma = np.zeros(0)
        self.total_energy = 0.0
        self.n_snapshots = 0

    def update(self, batch_local: np.ndarray) -> None:
        """Add a batch ``(n_local_rows, b)`` (or one snapshot ``(n_local_rows,)``) of snapshots."""
        B = np.asarray(batch_local, dtype=float)
        if B.ndim == 1:
            B = B[:, None]
        B = _validate_snapshots(self.comm, B, "batch_local")
        if self._prod is None:
            self._prod = _Product(self.comm, B.shape[0], *self._args)
        prod = self._prod
        mismatch = None if B.shape[0] == prod.n_rows else (
            f"batch_local has {B.shape[0]} rows but earlier batches (or n_local_rows) had {prod.n_rows}: keep "
            "the same local rows for all batches")
        _raise_collectively(self.comm, mismatch)
        Phi = self.modes if self.modes is not None else np.zeros((prod.n_rows, 0))
        k = Phi.shape[1]
        energy = prod.column_energy(B)
        self.total_energy += float(np.sum(energy))
        self.n_snapshots += B.shape[1]
        P = prod.inner(Phi, B)
        Rres = B - Phi @ P
        P2 = prod.inner(Phi, Rres)  # second projection pass (classical Gram-Schmidt twice)
        Rres -= Phi @ P2
        P += P2
        scale2 = max(float(np.max(energy)), float(self.sigma[0]) ** 2 if k else 0.0)
        G = prod.inner(Rres)
        lam, V = sla.eigh(G)
        lam, V = lam[::-1], V[:, ::-1]
        keep = lam > EPS * 64 * scale2  # residual norms below ~1e-7 of the scale are round-off
        Qr = Rres @ (V[:, keep] / np.sqrt(lam[keep]))
        Rr = np.sqrt(lam[keep])[:, None] * V[:, keep].T  # (r, b): Rres ~= Qr Rr
        if Qr.shape[1]:
            C = prod.inner(Phi, Qr)  # re-orthogonalize against Phi, then within Qr
            Qr2 = Qr - Phi @ C
            G2 = prod.inner(Qr2)
            try:
                R2 = sla.cholesky(G2, lower=False)
                Qr = sla.solve_triangular(R2, Qr2.T, trans="T", lower=False).T
                P = P + C @ Rr
                Rr = R2 @ Rr
            except sla.LinAlgError:
                pass
        r = Qr.shape[1]
        K = np.zeros((k + r, k + B.shape[1]))
        K[:k, :k] = np.diag(self.sigma)
        K[:k, k:] = P
        K[k:, k:] = Rr
        U, s, _ = sla.svd(K, full_matrices=False, lapack_driver="gesvd")
        keep_s = s > EPS * max(s[0], 0.0) * (k + B.shape[1]) if len(s) else np.zeros(0, bool)
        s, U = s[keep_s], U[:, keep_s]
        n = _truncation(s ** 2, self.total_energy, self.update_tolerance, self.max_rank)
        self.modes = np.hstack([Phi, Qr]) @ U[:, :n]
        self.sigma = s[:n]

    def result(self) -> PODResult:
        """The POD of all snapshots seen so far, truncated with ``tolerance`` / ``max_modes``."""
        if self._prod is None or self.modes is None:
            raise PODError("IncrementalPOD has no snapshots: call update(batch_local) at least once")
        lam = self.sigma ** 2
        n = _truncation(lam, self.total_energy, self.tolerance, self.max_modes)
        return _finish(self._prod, self.modes[:, :n], self.sigma[:n], lam, self.total_energy,
                       self.tolerance, "incremental", n_snapshots=self.n_snapshots)


def update_pod(comm: MPI.Comm | None, modes_local: np.ndarray, singular_values: np.ndarray, total_energy: float,
               new_snapshots_local: np.ndarray, weight_local=None, owned=None, *, tolerance: float = 1e-6,
               max_modes: int | None = None, global_rows: np.ndarray | None = None) -> PODResult:
    """Enrich an existing POD with new snapshots, without the old snapshots (collective over ``comm``).

    ``modes_local`` ``(n_local_rows, N)``: the current modes (orthonormal in the weighted product);
    ``singular_values`` ``(N,)``: theirs; ``total_energy``: ``sum_j ||s_j||_W^2`` of the snapshots they
    came from (at least ``sum sigma^2``; the part not in ``sigma`` counts as already discarded);
    ``new_snapshots_local`` ``(n_local_rows, b)``. One step of :class:`IncrementalPOD` (Brand 2002): the
    new snapshots are orthogonalized against the modes in the weighted product (twice), the residual
    block is orthonormalized, the SVD of the small ``(N + r) x (N + b)`` core
    ``[[diag(sigma), Phi^T W B], [0, R]]`` rotates ``[Phi, Q]``, and the result is truncated with
    ``tolerance`` against the total energy of old and new snapshots (:func:`pod`'s criterion). Since
    ``S_old ~= Phi diag(sigma) V^T``, this is the POD of the union up to the energy the old truncation
    discarded. Returns a :class:`PODResult` (``method="update"``).
    """
    inc = IncrementalPOD(comm, weight_local, owned, n_local_rows=np.shape(modes_local)[0], tolerance=tolerance,
                         max_modes=max_modes, update_tolerance=tolerance, global_rows=global_rows)
    sigma = np.asarray(singular_values, dtype=float)
    if np.shape(modes_local)[1] != len(sigma):
        raise PODError(f"modes_local has {np.shape(modes_local)[1]} columns but singular_values has {len(sigma)} "
                       "entries: pass the singular values of these modes")
    inc.modes = np.asarray(modes_local, dtype=float)
    inc.sigma = sigma
    inc.total_energy = max(float(total_energy), float(np.sum(sigma ** 2)))
    inc.update(new_snapshots_local)
    res = inc.result()
    res.method = "update"
    return res
