"""DEIM and Q-DEIM point selection for a given basis, rows spread over ranks.

Both take ``U_local`` ``(n_local, m)``: this rank's rows of a basis ``U`` ``(n, m)`` (e.g. POD modes of
snapshots), with ``ids`` ``(n_local,)`` global row ids, and return ``m`` global point ids ``p`` such
that the oblique projection ``U (P^T U)^-1 P^T`` is well defined. The error constant
``||(P^T U)^-1||_2`` (DEIM bound ``||f - U (P^T U)^-1 P^T f|| <= ||(P^T U)^-1|| ||(I - U U^T) f||`` for
orthonormal ``U``) is reported.

* DEIM (Chaturantabut and Sorensen 2010, Algorithm 1): ``p_1 = argmax |u_1|``; for ``l = 2..m``,
  ``c = U[p, :l-1]^-1 u_l[p]``, ``r = u_l - U[:, :l-1] c``, ``p_l = argmax |r|``.
* Q-DEIM (Drmac and Gugercin 2016): the first ``m`` pivots of the column-pivoted QR of ``U^T``.

Two implementations of each, chosen by ``comm``:

* ``comm=None`` (serial): BLAS and LAPACK. DEIM's residual is one matrix-vector product; Q-DEIM is
  LAPACK's column-pivoted QR (``dgeqp3`` on ``U^T``, R factor only). Ties go to the first maximal
  entry, i.e. the lowest row.
* with a communicator (any size, 1 included): every row-wise quantity is an elementwise loop over the
  ``m`` columns of the basis stored transposed ``(m, n_local)`` (contiguous), never a BLAS product over
  rows, whose rounding can depend on a row's position in the block. Q-DEIM is the equivalent
  row-pivoted Gram-Schmidt (largest remaining row norm, its direction removed twice). Argmax ties go
  to the smallest global id: bitwise the same points for any number of ranks and any split of the rows.

Both give the same points on data without rounding-level ties.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from structrom.mpi import collectives as _dist
from .errors import EIMError, raise_collectively

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI


@dataclass
class DEIMResult:
    """``point_ids`` ``(m,)`` selected global rows; ``PtU`` ``(m, m)`` ``U[p, :]``;
    ``error_constant`` ``||(P^T U)^-1||_2``; ``method`` ``"deim"`` or ``"qdeim"``."""

    point_ids: np.ndarray
    PtU: np.ndarray
    error_constant: float
    method: str

    def coefficients(self, values_at_points: np.ndarray) -> np.ndarray:
        """``(P^T U)^-1 f(p)``: ``(m,)`` or ``(m, k)``."""
        return np.linalg.solve(self.PtU, np.asarray(values_at_points, dtype=float))


def _prepare(comm, U_local, ids):
    U = np.asarray(U_local, dtype=np.float64)
    msg = None
    if U.ndim != 2:
        msg = f"U_local must be 2-D (n_local, m), got shape {U.shape}"
    elif not np.isfinite(U.sum()) and not np.all(np.isfinite(U)):  # one pass, no mask, when finite
        msg = "U_local contains NaN or inf"
    raise_collectively(comm, msg)
    if ids is None:
        ids = _dist.default_ids(comm, U.shape[0])
    ids = np.asarray(ids, dtype=np.int64)
    n = _dist.total_rows(comm, U.shape[0])
    raise_collectively(comm, None if n >= U.shape[1] else f"{n} rows cannot give {U.shape[1]} points")
    return U, ids


class _Positions:
    """Positions of global ids among this rank's ``ids`` (-1 where absent); the sort is done once."""

    def __init__(self, ids: np.ndarray) -> None:
        self.increasing = bool(np.all(ids[1:] > ids[:-1]))
        self.order = np.arange(len(ids)) if self.increasing else np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def __call__(self, gids) -> np.ndarray:
        gids = np.atleast_1d(np.asarray(gids, dtype=np.int64))
        out = np.full(len(gids), -1, dtype=np.int64)
        if len(self.sorted):
            pos = np.minimum(np.searchsorted(self.sorted, gids), len(self.sorted) - 1)
            hit = self.sorted[pos] == gids
            out[hit] = self.order[pos[hit]]
        return out


def _row(comm, U, where: _Positions, gid, owner):
    if _dist.size(comm) == 1 or comm.Get_rank() == owner:
        row = U[int(where(gid)[0])]
    else:
        row = None
    return _dist.bcast_from(comm, owner, row, U.shape[1])


def _finish(PtU: np.ndarray, pts: list[int], method: str) -> DEIMResult:
    s = np.linalg.svd(PtU, compute_uv=False)
    const = float(1.0 / s[-1]) if len(s) and s[-1] > 0 else np.inf
    return DEIMResult(np.array(pts, dtype=np.int64), PtU, const, method)


def deim(U_local, *, comm: MPI.Comm | None = None, ids=None) -> DEIMResult:
    """Classical DEIM points of the basis ``U`` (rows ``U_local`` ``(n_local, m)`` on this rank)."""
    U, ids = _prepare(comm, U_local, ids)
    m = U.shape[1]
    PtU = np.zeros((m, m))
    pts: list[int] = []
    # Contiguous columns: Fortran order for BLAS serially, the transpose for the elementwise loops.
    UF = np.asfortranarray(U) if comm is None else None
    UT = U.T.copy() if comm is not None else None
    where = _Positions(ids)
    for l in range(m):
        c = np.linalg.solve(PtU[:l, :l], PtU[:l, l]) if l else np.zeros(0)
        if comm is None:
            r = UF[:, l] - UF[:, :l] @ c
        else:
            r = UT[l].copy()
            for j in range(l):
                r -= UT[j] * c[j]
        a = np.abs(r)
        if pts:
            here = where(pts)
            a[here[here >= 0]] = -1.0  # selected rows have r == 0 up to round-off: never reselect
        val, gid, owner = _dist.global_argmax(comm, a, ids, where.increasing)
        if not val > 0:
            raise EIMError(f"DEIM: basis vector {l} is linearly dependent on the previous ones")
        pts.append(gid)
        PtU[l] = _row(comm, U, where, gid, owner)
    return _finish(PtU, pts, "deim")


def qdeim(U_local, *, comm: MPI.Comm | None = None, ids=None, tie_rtol: float | None = None) -> DEIMResult:
    """Q-DEIM points: pivots of the column-pivoted QR of ``U^T`` (LAPACK serially, row-pivoted
    Gram-Schmidt with a communicator; see the module docstring).

    ``tie_rtol``: residual row norms within this relative band of the largest one tie and the smallest
    global id wins; the row-wise products are then BLAS products on this rank's rows
    (:func:`_qdeim_banded`), for bases whose rows agree across rank counts to rounding only (the band
    absorbs both that rounding and the partition-dependent rounding of the products)."""
    if tie_rtol is not None:
        U, ids = _prepare(comm, U_local, ids)
        return _qdeim_banded(comm, U, ids, float(tie_rtol))
    U, ids = _prepare(comm, U_local, ids)
    m = U.shape[1]
    if comm is None:
        R, piv = sla.qr(U.T, mode="r", pivoting=True, check_finite=False)
        rank = int(np.count_nonzero(np.abs(np.diag(R)) > 0))
        if rank < m:
            raise EIMError(f"Q-DEIM: the basis has rank {rank} < {m}")
        pts = [int(ids[i]) for i in piv[:m]]
        return _finish(U[piv[:m]].copy(), pts, "qdeim")
    W = U.T.copy()  # (m, n_local): residual rows of U, stored by columns
    PtU = np.zeros((m, m))
    pts = []
    taken = np.zeros(U.shape[0], dtype=bool)
    nrm = np.empty(U.shape[0])
    dots = np.empty(U.shape[0])
    tmp = np.empty(U.shape[0])
    where = _Positions(ids)
    for l in range(m):
        np.multiply(W[0], W[0], out=nrm)
        for j in range(1, m):
            np.multiply(W[j], W[j], out=tmp)
            nrm += tmp
        nrm[taken] = -1.0
        val, gid, owner = _dist.global_argmax(comm, nrm, ids, where.increasing)
        if not val > 0:
            raise EIMError(f"Q-DEIM: the basis has rank {l} < {m}")
        pos = int(where(gid)[0])
        w = _dist.bcast_from(comm, owner, W[:, pos].copy() if pos >= 0 else None, m)
        qv = w / np.sqrt(float(w @ w))
        for _ in range(2):
            np.multiply(W[0], qv[0], out=dots)
            for j in range(1, m):
                np.multiply(W[j], qv[j], out=tmp)
                dots += tmp
            for j in range(m):
                np.multiply(dots, qv[j], out=tmp)
                W[j] -= tmp
        if pos >= 0:
            taken[pos] = True
        pts.append(gid)
        PtU[l] = _row(comm, U, where, gid, owner)
    return _finish(PtU, pts, "qdeim")


#: :func:`_qdeim_banded` evaluates at least this many of a rank's rows at a time (those of the largest bounds).
_EXACT_BLOCK = 256


def _qdeim_banded(comm, U: np.ndarray, ids: np.ndarray, tie_rtol: float) -> DEIMResult:
    """Q-DEIM by row-pivoted Gram-Schmidt with BLAS products on this rank's rows ``U`` ``(n_local, m)``.

    The pivot is the smallest global id among the rows whose squared residual norm ``||u_i - Q^T Q u_i||^2`` is
    within ``tie_rtol`` of the largest one (over all ranks); its row travels from its owner. The pivot directions
    ``Q`` ``(j, m)`` are the same on every rank. The norms are evaluated lazily, as in the lazy greedy algorithm
    (Minoux 1978): they only decrease as ``Q`` grows, so a norm evaluated at an earlier pivot bounds the current
    one; each step evaluates, exactly and by blocks of rows (``Q u_i``: a GEMM), the rows of the largest bounds
    until no bound outside them can reach the tie band. The pivots are those of the exact norms, without a pass
    over all of ``U`` per pivot. Stops early (fewer than ``m`` points) when the residual vanishes (a
    rank-deficient basis)."""
    n, m = U.shape
    Q = np.zeros((0, m))
    where = _Positions(ids)
    big = np.iinfo(np.int64).max
    bound = np.einsum("ij,ij->i", U, U)  # the squared residual norms' upper bounds (exact while Q is empty)
    exact = np.ones(n, dtype=bool)  # the bound is the norm for the current Q
    taken = np.zeros(n, dtype=bool)

    def evaluate(rows: np.ndarray) -> None:
        blk = U[rows]
        res = blk - (blk @ Q.T) @ Q
        bound[rows] = np.einsum("ij,ij->i", res, res)
        exact[rows] = True

    pts: list[int] = []
    rows: list[np.ndarray] = []
    for _ in range(m):
        while True:  # until every row that can be in the tie band has its exact norm
            known = np.where(exact & ~taken, bound, 0.0)
            stale = np.where(~exact & ~taken, bound, 0.0)
            best, above = (float(v) for v in _dist.allreduce(
                comm, np.array([known.max(initial=0.0), stale.max(initial=0.0)]), "max"))
            if above == 0.0 or above < best * (1.0 - tie_rtol):
                break
            todo = np.flatnonzero(stale >= best * (1.0 - tie_rtol)) if best > 0.0 else np.zeros(0, np.int64)
            n_stale = int(np.count_nonzero(stale > 0.0))
            if len(todo) < min(_EXACT_BLOCK, n_stale):  # at least the block of the largest bounds
                todo = np.argpartition(stale, n - min(_EXACT_BLOCK, n_stale))[n - min(_EXACT_BLOCK, n_stale):]
            if len(todo):
                evaluate(todo)
        if not best > 0.0:
            break
        cand = np.flatnonzero(known >= best * (1.0 - tie_rtol))
        gid = int(_dist.allreduce(comm, int(ids[cand].min()) if len(cand) else big, "min"))
        pos = int(where(gid)[0])
        owner = int(_dist.allreduce(comm, _dist.rank(comm) if pos >= 0 else _dist.size(comm), "min"))
        x = _dist.bcast_from(comm, owner, U[pos] if pos >= 0 else None, m)
        q = x - Q.T @ (Q @ x)
        q -= Q.T @ (Q @ q)  # twice is enough (Gram-Schmidt re-orthogonalization)
        q /= np.linalg.norm(q)
        Q = np.vstack([Q, q])
        exact[:] = False
        if pos >= 0:
            taken[pos] = True
        pts.append(gid)
        rows.append(x)
    PtU = np.array(rows).reshape(len(rows), m)
    return _finish(PtU, pts, "qdeim")
