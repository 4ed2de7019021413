"""Row compression of a distributed integrand without any ``n_rows x n_rows`` array: a randomized range finder.

:func:`structrom.rom.row_compression.compress_rows` Allreduces ``C = G G^T`` and diagonalizes it on every
rank: ``2 R^2`` doubles and ``O(R^3)`` work per rank whatever the rank count (``R = N n_s`` integrand rows:
40,000 rows are 25 GiB). :func:`sketch_rows` finds the row space of ``G`` ``(R, n_points)`` (columns spread
over ranks) by the blocked randomized range finder with an exact stopping rule (Martinsson and Voronin 2016,
"randQB_b"; Halko, Martinsson and Tropp 2011, Algorithm 4.2):

    Q = [], B = []                                # Q (R, k) on every rank, B = Q^T G (k, n_local) distributed
    repeat
        Y = G Omega_j - Q (B Omega_j)             # Omega_j (n_points, b) Gaussian: one pass over G, Allreduce
        Q_j = orth(Y - Q Q^T Y)  (twice)          # (R, b), directions below 1e-12 ||Y|| dropped
        B_j = Q_j^T G                             # next pass over G (fused with the next sketch)
        until ||G||_F^2 - ||B||_F^2 <= (tol / 2)^2 ||G||_F^2      (exact: Q orthonormal)

then ``B B^T`` ``(k, k)`` is Allreduced and diagonalized, and the compression is truncated as
:func:`compress_rows` truncates (the discarded energy, counted with what ``Q`` missed, at most ``tol^2`` of the
total). Per rank: ``Q`` ``(R, k)`` and ``(k, k)`` arrays, with ``k`` the integrand's numerical rank plus one
block (not ``R``), and the ``(k, n_local)`` compressed matrix itself. The Gaussian test matrix is drawn per
block of 1024 global point numbers from a seed, so that it is the same for any number of ranks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.linalg as sla

#: Global point numbers sharing one seeded draw of the test matrix (rank-count independent rows).
SEED_BLOCK = 1024


def _omega(gidx: np.ndarray, cols: int, seed: int, step: int) -> np.ndarray:
    """Rows ``gidx`` of the Gaussian test matrix ``(n_points, cols)`` of sketch step ``step``."""
    out = np.empty((len(gidx), cols))
    blocks = gidx // SEED_BLOCK
    for blk in np.unique(blocks):
        at = np.flatnonzero(blocks == blk)
        draw = np.random.default_rng([seed, step, int(blk)]).standard_normal((SEED_BLOCK, cols))
        out[at] = draw[gidx[at] - blk * SEED_BLOCK]
    return out


def sketch_rows(comm, factory: Callable[[], Iterable[np.ndarray]], tolerance: float, global_points: np.ndarray,
                block: int | None = None, seed: int = 0, max_rank: int | None = None):
    """A :class:`structrom.rom.row_compression.RowCompression` of the distributed ``G`` by the randomized
    range finder of the module docstring (collective).

    ``factory()``: a fresh iterable of this rank's ``(R, b_j)`` column blocks of ``G`` in the order of
    ``global_points`` ``(n_local,)`` (the points' global numbers); ``tolerance`` as for ``compress_rows``;
    ``block``: test vectors per pass (default ``R / 8`` within [16, 256]); ``max_rank``: stop growing the range there (default ``R``). The
    result's ``extra``-like fields: ``eigenvalues`` are those of ``B B^T`` (the retained spectrum) and
    ``energy_error`` counts what the range missed."""
    from mpi4py import MPI

    from structrom.rom.row_compression import ECMError, RowCompression

    gidx = np.asarray(global_points, dtype=np.int64)
    n_local = len(gidx)
    R = None
    total = 0.0
    for blk in factory():
        R = blk.shape[0]
        total += float(np.einsum("ij,ij->", blk, blk))
    R = comm.allreduce(R, op=MPI.MAX) if comm.Get_size() > 1 else R
    total = float(comm.allreduce(total)) if comm.Get_size() > 1 else total
    if R is None or not total > 0:
        raise ECMError("G is zero on every rank: nothing to compress")
    max_rank = min(R, max_rank or R)
    block = block or int(np.clip(R // 8, 16, 256))
    target = (tolerance / 2) ** 2 * total  # the range's own miss; the truncation may discard the rest
    Q = np.zeros((R, 0))
    Bs: list[np.ndarray] = []  # B = Q^T G by blocks of rows
    captured, step = 0.0, 0
    pending = None  # Q_j whose B_j the next pass computes
    while True:
        b = min(block, max_rank - Q.shape[1] - (0 if pending is None else pending.shape[1]))
        om = _omega(gidx, b, seed, step) if b > 0 else None
        Y = np.zeros((R, max(b, 0)))
        Bj = np.zeros((0 if pending is None else pending.shape[1], n_local))
        j = 0
        for blk in factory():
            w = blk.shape[1]
            if om is not None:
                Y += blk @ om[j:j + w]
            if pending is not None:
                Bj[:, j:j + w] = pending.T @ blk
            j += w
        if pending is not None:
            Q = np.hstack([Q, pending])
            Bs.append(Bj)
            captured += float(comm.allreduce(float(np.einsum("ij,ij->", Bj, Bj))))
            pending = None
        if total - captured <= target or om is None:
            break
        if comm.Get_size() > 1:
            comm.Allreduce(MPI.IN_PLACE, Y, op=MPI.SUM)
        scale = float(np.linalg.norm(Y))
        for _ in range(2):  # block Gram-Schmidt twice against the range so far
            Y -= Q @ (Q.T @ Y)
        Qj, Rj = sla.qr(Y, mode="economic")
        keep = np.abs(np.diag(Rj)) > 1e-12 * max(scale, 1e-300)
        Qj = Qj[:, keep]
        Qj -= Q @ (Q.T @ Qj)
        Qj, _ = sla.qr(Qj, mode="economic")
        if Qj.shape[1] == 0:
            break
        pending, step = Qj, step + 1
    # B in one array (the blocks freed as they are copied), its SVD through the small Gram matrix B B^T
    k = Q.shape[1]
    B = np.empty((k, n_local))
    a = 0
    for j in range(len(Bs)):
        B[a:a + len(Bs[j])] = Bs[j]
        a += len(Bs[j])
        Bs[j] = None
    K = B @ B.T
    if comm.Get_size() > 1:
        comm.Allreduce(MPI.IN_PLACE, K, op=MPI.SUM)
    lam, V = sla.eigh(K)
    lam, V = np.maximum(lam[::-1], 0.0), V[:, ::-1]
    missed = max(total - captured, 0.0)
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]]) + missed
    ok = np.flatnonzero(tails <= tolerance ** 2 * total)
    r = max(1, int(ok[0]) if ok.size else len(lam))
    U = Q @ V[:, :r]
    del Q
    big = np.argmax(np.abs(U), axis=0)
    sign = np.where(U[big, np.arange(r)] < 0, -1.0, 1.0)
    U *= sign
    Vt = np.ascontiguousarray((V[:, :r] * sign).T)  # (r, k)
    cols = max(1, 2**22 // max(k, 1))
    for c in range(0, n_local, cols):  # B <- V_r^T B in place, by column blocks (r <= k rows kept)
        B[:r, c:c + cols] = Vt @ B[:, c:c + cols]
    B.resize((r, n_local), refcheck=False)  # the leading r rows are contiguous: shrink without a copy
    return RowCompression(U, np.sqrt(lam[:r]), lam, float(np.sqrt(tails[r] / total)), B, method="randomized",
                          range_rank=k)
