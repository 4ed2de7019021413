"""DEIM and Q-DEIM point selection for a given basis, rows spread over ranks.

Both take ``U_local`` ``(n_local, m)``: this rank's rows of a basis ``U`` ``(n, m)`` (e.g. POD modes of
snapshots), with ``ids`` ``(n_local,)`` global row ids, and return ``m`` global point ids ``p`` such
that the oblique projection ``U (P^T U)^-1 P^T`` is well defined. The error constant
``||(P^T U)^-1||_2`` (DEIM bound ``||f - U (P^T U)^-1 P^T f|| <= ||(P^T U)^-1|| ||(I - U U^T) f||`` for
orthonormal ``U``) is reported.

* DEIM (Chaturantabut and Sorensen 2010, Algorithm 1): ``p_1 = argmax |u_1|``; for ``l = 2..m``,
  ``c = U[p, :l-1]^-1 u_l[p]``, ``r = u_l - U[:, :l-1] c``, ``p_l = argmax |r|``.
* Q-DEIM (Drmac and Gugercin 2016): the first ``m`` pivots of the column-pivoted QR of ``U^T``.
  Implemented as the equivalent row-pivoted Gram-Schmidt on the rows of ``U``: pick the row of largest
  remaining norm, remove its direction from all rows (twice, for orthogonality), repeat.

Row-wise operations are elementwise loops over the ``m`` columns (never BLAS over rows), argmax ties go
to the smallest global id: the same points for any number of ranks.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import numpy as np

from structrom.mpi import collectives as _dist
from .errors import EIMError, raise_collectively
from .greedy import local_positions

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
    elif not np.all(np.isfinite(U)):
        msg = "U_local contains NaN or inf"
    raise_collectively(comm, msg)
    if ids is None:
        ids = _dist.default_ids(comm, U.shape[0])
    ids = np.asarray(ids, dtype=np.int64)
    n = _dist.total_rows(comm, U.shape[0])
    raise_collectively(comm, None if n >= U.shape[1] else f"{n} rows cannot give {U.shape[1]} points")
    return U, ids


def _row(comm, U, ids, gid, owner):
    if _dist.size(comm) == 1 or comm.Get_rank() == owner:
        row = U[int(local_positions(ids, np.array([gid]))[0])]
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
    for l in range(m):
        r = U[:, l].copy()
        if l:
            c = np.linalg.solve(PtU[:l, :l], PtU[:l, l])
            for j in range(l):
                r -= U[:, j] * c[j]
        a = np.abs(r)
        if pts:
            here = local_positions(ids, np.array(pts))
            a[here[here >= 0]] = -1.0  # selected rows have r == 0 up to round-off: never reselect
        val, gid, owner = _dist.global_argmax(comm, a, ids)
        if not val > 0:
            raise EIMError(f"DEIM: basis vector {l} is linearly dependent on the previous ones")
        pts.append(gid)
        PtU[l] = _row(comm, U, ids, gid, owner)
    return _finish(PtU, pts, "deim")


def qdeim(U_local, *, comm: MPI.Comm | None = None, ids=None) -> DEIMResult:
    """Q-DEIM points: pivots of the column-pivoted QR of ``U^T`` (row-pivoted Gram-Schmidt here)."""
    U, ids = _prepare(comm, U_local, ids)
    n_local, m = U.shape
    W = U.copy()
    PtU = np.zeros((m, m))
    pts: list[int] = []
    taken = np.zeros(n_local, dtype=bool)
    for l in range(m):
        nrm = W[:, 0] * W[:, 0]
        for j in range(1, m):
            nrm += W[:, j] * W[:, j]
        nrm[taken] = -1.0
        val, gid, owner = _dist.global_argmax(comm, nrm, ids)
        if not val > 0:
            raise EIMError(f"Q-DEIM: the basis has rank {l} < {m}")
        w = _row(comm, W, ids, gid, owner)
        qv = w / np.sqrt(float(w @ w))
        for _ in range(2):
            dots = W[:, 0] * qv[0]
            for j in range(1, m):
                dots += W[:, j] * qv[j]
            W -= np.multiply.outer(dots, qv)
        pos = local_positions(ids, np.array([gid]))[0]
        if pos >= 0:
            taken[pos] = True
        pts.append(gid)
        PtU[l] = _row(comm, U, ids, gid, owner)
    return _finish(PtU, pts, "qdeim")
