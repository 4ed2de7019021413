"""The empirical cubature's economic QR of the selected columns, with its rows split over the MPI ranks.

Used by :func:`structrom.rom.reduced_quadrature.empirical_cubature` for its least squares on the selected points:
columns appended one at a time (:meth:`ColumnQR.append`) or a block at a time from a first Gram-Schmidt pass of
a whole candidate pool (:meth:`ColumnQR.project`, :meth:`ColumnQR.append_projected`: the block rule, where the
pool's products with ``Q`` are GEMMs instead of one matrix-vector product per column and pass), removed by Givens
rotations (:meth:`ColumnQR.delete_many`), least squares with iterative refinement, returned with their residual
(:meth:`ColumnQR.least_squares`).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.mpi.assembly import gather_to_all
from structrom.mpi.collectives import allreduce
from structrom.rom.strided_blas import solve_upper

#: Gram-Schmidt's second pass when the first leaves less than this fraction of the column's norm (1 / sqrt(2)).
REORTHOGONALIZE = 0.7071067811865476
#: :meth:`ColumnQR.least_squares`: a refinement step whose correction is below this fraction of the solution ends the
#: refinement, the solution returned without it (64 eps).
REFINED = 64 * float(np.finfo(float).eps)
#: :meth:`ColumnQR.project`: columns whose projected part has a squared norm below this (``||W_j|| < 1e-4``: more
#: than 8 digits cancel in ``1 - ||H_j||^2``) are projected explicitly.
PROJECTED_EXPLICITLY = 1e-8
#: Rows of ``R``'s buffer beyond its capacity: a leading dimension of ``8 (capacity + 8)`` bytes, not a multiple of
#: 4 KiB (the capacity is a power-of-two multiple of 64), so that the Givens rotations of :meth:`ColumnQR.delete_many`
#: along rows of ``R`` do not map every element to the same cache set (measured: half the time of a power-of-two
#: leading dimension).
R_PADDING = 8


class ColumnQR:
    """Economic QR ``A = Q R`` of the selected normalized columns ``A`` ``(n, k)``, with the ``n`` rows of ``Q`` and
    ``A`` split over the ranks of ``comm`` (contiguous row ranges; ``R`` ``(k, k)`` on every rank): every O(n k)
    product works on this rank's rows, with an Allreduce of ``k`` numbers, so the QR's time and memory per rank fall
    as 1 / P. Preallocated buffers (capacity doubled on demand). A column is appended by classical Gram-Schmidt,
    with a second pass when the first one cancelled more than ``1 - REORTHOGONALIZE`` of its norm (Kahan-Parlett's
    "twice is enough" criterion, Giraud, Langou, Rozloznik 2005: orthogonality to working precision; no copy of
    ``Q``); removed by :func:`scipy.linalg.qr_delete` (Givens rotations computed from ``R``, which every rank holds
    alike, and applied to this rank's rows of ``Q`` in place). The results are the same on every rank, and the
    same for any rank count to round-off."""

    def __init__(self, n: int, capacity: int = 64, comm: MPI.Comm | None = None) -> None:
        self.comm = MPI.COMM_SELF if comm is None else comm
        size, rank = self.comm.Get_size(), self.comm.Get_rank()
        self.ranges = np.array([n * p // size for p in range(size + 1)], dtype=np.int64)  # rows of each rank
        self.lo, self.hi = int(self.ranges[rank]), int(self.ranges[rank + 1])
        self.n, self.k = n, 0
        m = self.hi - self.lo
        self.Q = np.zeros((m, capacity), order="F")
        self.R = np.zeros((capacity + R_PADDING, capacity), order="F")  # (Fortran order: LAPACK's; padded rows)
        self.A = np.zeros((m, capacity), order="F")  # the normalized columns themselves (residual refinement)
        self.n_reorthogonalized = 0

    def _full(self, local: np.ndarray) -> np.ndarray:
        """The ``(n,)`` vector whose rows this rank holds as ``local``."""
        return gather_to_all(self.comm, local, self.ranges)

    def _grow(self) -> None:
        cap = 2 * self.Q.shape[1]
        for name in ("Q", "A"):
            buf = np.zeros((self.hi - self.lo, cap), order="F")
            buf[:, :self.k] = getattr(self, name)[:, :self.k]
            setattr(self, name, buf)
        R = np.zeros((cap + R_PADDING, cap), order="F")
        R[:self.k, :self.k] = self.R[:self.k, :self.k]
        self.R = R

    def append(self, v: np.ndarray, rtol: float = 1e-12) -> bool:
        """Append the unit column ``v`` ``(n,)`` (the same on every rank); False (nothing changed) when it is
        numerically dependent on the current columns (``|R_kk| <= rtol |R_00|``)."""
        k = self.k
        if k == self.Q.shape[1]:
            self._grow()
        Qk = self.Q[:, :k]
        vl = v[self.lo:self.hi]
        h = allreduce(self.comm, Qk.T @ vl)
        w = vl - Qk @ h
        rho = float(np.sqrt(allreduce(self.comm, float(w @ w))))
        if rho < REORTHOGONALIZE * float(np.linalg.norm(v)):  # cancellation: a second pass (Kahan-Parlett)
            h2 = allreduce(self.comm, Qk.T @ w)
            w -= Qk @ h2
            h += h2
            rho = float(np.sqrt(allreduce(self.comm, float(w @ w))))
            self.n_reorthogonalized += 1
        if k and rho <= rtol * abs(self.R[0, 0]):
            return False
        if not rho > 0.0:
            return False
        self.Q[:, k] = w / rho
        self.R[:k, k] = h
        self.R[k, :k] = 0.0
        self.R[k, k] = rho
        self.A[:, k] = vl
        self.k = k + 1
        return True

    def project(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First Gram-Schmidt pass of the unit columns ``V`` ``(n, p)`` (the same on every rank) against the current
        ``Q``, without forming it for every column: returns ``(H, M)``, ``H = Q^T V`` ``(k, p)`` (one GEMM over this
        rank's rows and an Allreduce) and the Gram matrix of the projected columns ``W = V - Q H``, ``M = W^T W``
        ``(p, p)``, both on every rank. ``M = V^T V - H^T H`` (``Q^T Q = I``; ``V^T V`` over this rank's rows, in the
        same Allreduce as ``H``) cancels where a column lies nearly in the span of ``Q``: the columns with ``M_jj <
        PROJECTED_EXPLICITLY`` get their rows and columns of ``M`` from their projected columns ``W_j``, formed
        explicitly (``W_j^T W_j``, and ``W_j^T V`` off the diagonal), as accurate as ``W^T W``. The projected columns
        are otherwise formed only for the columns appended (:meth:`append_projected`)."""
        Qk, Vl = self.Q[:, :self.k], V[self.lo:self.hi]
        both = allreduce(self.comm, np.vstack([Qk.T @ Vl, Vl.T @ Vl]))  # (H and V^T V: one Allreduce)
        H = both[:self.k]
        M = both[self.k:] - H.T @ H
        near = np.flatnonzero(np.diag(M) < PROJECTED_EXPLICITLY)
        if len(near):
            Wn = Vl[:, near] - Qk @ H[:, near]
            cross = allreduce(self.comm, np.concatenate([Wn.T @ Vl, Wn.T @ Wn], axis=1))
            M[near, :] = cross[:, :V.shape[1]]
            M[:, near] = cross[:, :V.shape[1]].T
            M[np.ix_(near, near)] = cross[:, V.shape[1]:]
        return H, M

    def projected_row(self, V: np.ndarray, H: np.ndarray, i: int) -> np.ndarray:
        """Row ``i`` (global) of the projected columns ``V - Q H`` ``(p,)`` (:meth:`project`), on every rank."""
        own = self.lo <= i < self.hi
        q = allreduce(self.comm, self.Q[i - self.lo, :self.k] if own else np.zeros(self.k))
        return V[i] - q @ H

    def append_projected(self, V: np.ndarray, H: np.ndarray, chosen: list[int], rtol: float = 1e-12) -> list[bool]:
        """Append the columns ``chosen`` of ``V`` in this order, from their first pass ``H`` (:meth:`project`, with the
        factors as they were then; the projected columns ``V - Q H`` formed for these columns only): the second pass
        against those factors for all of them at once (block classical Gram-Schmidt twice, BCGS2: Barlow &
        Smoktunovicz 2013), then Gram-Schmidt twice against the block's earlier new columns, and a third pass against all of ``Q`` where that cancelled more than ``1 -
        REORTHOGONALIZE`` of the column (Kahan-Parlett). Returns, per chosen column, whether it was appended (False:
        numerically dependent, ``|R_kk| <= rtol |R_00|``, as :meth:`append`)."""
        k0, T = self.k, len(chosen)
        while self.Q.shape[1] < k0 + T:
            self._grow()
        if not T:
            return []
        Q0 = self.Q[:, :k0]
        Hc = H[:, chosen].copy()
        Wc = np.asfortranarray(V[self.lo:self.hi][:, chosen]) - Q0 @ Hc
        # the second pass and the columns' squared norms before it, in one Allreduce; the norms after each pass
        # follow by Pythagoras (||w - Q g||^2 = ||w||^2 - ||g||^2, Q^T w = g), exact up to the cancellation that the
        # Kahan-Parlett test below catches (where the norm is then recomputed)
        both = allreduce(self.comm, np.vstack([Q0.T @ Wc, np.einsum("ij,ij->j", Wc, Wc)[None, :]]))
        H2, norms_sq = both[:k0], both[k0]
        Wc -= Q0 @ H2
        Hc += H2
        after_sq = norms_sq - np.einsum("ij,ij->j", H2, H2)
        redo = np.flatnonzero(~(after_sq >= REORTHOGONALIZE ** 2 * norms_sq))  # the second pass cancelled: explicitly
        if len(redo):
            after_sq[redo] = allreduce(self.comm, np.einsum("ij,ij->j", Wc[:, redo], Wc[:, redo]))
        norms_sq = after_sq
        ok = []
        for t, j in enumerate(chosen):
            k = self.k
            w = Wc[:, t]
            h = np.zeros(k)
            h[:k0] = Hc[:, t]
            w_sq = float(norms_sq[t])
            if k > k0:  # the block's earlier new columns, twice (a few columns: cheap)
                Qn = self.Q[:, k0:k]
                before_sq = w_sq
                for _ in range(2):
                    g = allreduce(self.comm, Qn.T @ w)
                    w = w - Qn @ g
                    h[k0:] += g
                    w_sq -= float(g @ g)
                if not w_sq >= REORTHOGONALIZE ** 2 * before_sq:  # cancellation: a pass against all of Q
                    g = allreduce(self.comm, self.Q[:, :k].T @ w)
                    w = w - self.Q[:, :k] @ g
                    h += g
                    w_sq = float(allreduce(self.comm, float(w @ w)))
                    self.n_reorthogonalized += 1
            rho = float(np.sqrt(max(w_sq, 0.0)))
            if (k and rho <= rtol * abs(self.R[0, 0])) or not rho > 0.0:
                ok.append(False)
                continue
            self.Q[:, k] = w / rho
            self.R[:k, k] = h
            self.R[k, :k] = 0.0
            self.R[k, k] = rho
            self.A[:, k] = V[self.lo:self.hi, j]
            self.k = k + 1
            ok.append(True)
        return ok

    def load(self, A: np.ndarray) -> None:
        """Start from the unit columns ``A`` ``(n, k)`` (independent; the same on every rank), factorized by one
        Householder QR (on every rank; this rank keeps its rows)."""
        k = A.shape[1]
        while self.Q.shape[1] < k:
            self._grow()
        Q, R = sla.qr(A, mode="economic")
        self.Q[:, :k], self.R[:k, :k], self.A[:, :k] = Q[self.lo:self.hi], R, A[self.lo:self.hi]
        self.k = k

    def delete(self, j: int) -> None:
        """Remove column ``j`` (:meth:`delete_many`)."""
        self.delete_many([j])

    def delete_many(self, columns) -> None:
        """Remove the columns ``columns`` (positions before the removal, any order). For each, from the last: only
        the trailing factors change (``Q[:, j:]``, ``R[j:, j:]``: the first column of their product deleted by
        :func:`scipy.linalg.qr_delete`, Givens rotations, in place); when a rank holds fewer rows than the trailing
        columns (small problems), the trailing ``Q`` is gathered. The rows of ``R`` above a removed column lose it
        once, not once per removal: rows between two removed columns are compacted just before their trailing block
        is needed, the rows above the first at the end. The stored columns ``A`` are compacted once."""
        drop = sorted({int(j) for j in columns}, reverse=True)
        k0 = self.k
        keep = np.arange(k0)  # the original position of each current column
        last = k0  # rows >= last hold the current columns; rows above, the columns as they were
        for j in drop:
            k = self.k
            if last < k:  # rows [j, last): the current columns (right of last) gathered
                self.R[j:last, last:k] = self.R[j:last, keep[last:k]]
            R_t = self.R[j:k, j:k]  # (a strided view: qr_delete works on it in place, no copy)
            if int(np.diff(self.ranges).min()) >= k - j:  # economic factors of this rank's rows: rotations from R
                Q, R = sla.qr_delete(self.Q[:, j:k], R_t, 0, which="col", overwrite_qr=True, check_finite=False)
                if not np.shares_memory(Q, self.Q):
                    self.Q[:, j:k - 1] = Q[:, :k - 1 - j]
            else:
                full = np.vstack(self.comm.allgather(np.ascontiguousarray(self.Q[:, j:k])))  # rank order = row order
                Q, R = sla.qr_delete(full, R_t, 0, which="col", overwrite_qr=True, check_finite=False)
                self.Q[:, j:k - 1] = Q[self.lo:self.hi, :k - 1 - j]
            same = R.strides == R_t.strides and R.__array_interface__["data"][0] == R_t.__array_interface__["data"][0]
            if not same:  # (updated elsewhere than in place: copied back; numpy handles an overlap)
                self.R[j:k - 1, j:k - 1] = R[:k - 1 - j, :k - 1 - j]
            keep = np.delete(keep, j)
            self.k = k - 1
            last = j
        if drop:
            if last < self.k:
                self.R[:last, last:self.k] = self.R[:last, keep[last:]]
            self.A[:, last:self.k] = self.A[:, keep[last:]]

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Least squares ``argmin ||A x - b||`` ``(k,)`` (``b`` ``(n,)``, the same on every rank):
        :meth:`least_squares` without its residual."""
        return self.least_squares(b)[0]

    def least_squares(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least squares ``argmin ||A x - b||`` (``b`` ``(n,)``, the same on every rank) with up to two steps of
        iterative refinement (the updated factors lose digits on ill-conditioned column sets). Returns ``x`` ``(k,)``
        and its residual ``b - A x`` ``(n,)``, both on every rank. A refinement step's correction ``dx`` is computed
        from the current ``x``'s residual; when it is at round-off (``||dx||_inf <= REFINED ||x||_inf``: ``x`` is
        accurate to working precision, the next step would change it less still, each step contracting the error by
        about ``cond(A)`` times the loss of orthogonality of ``Q``), ``x`` is returned with that residual, so that no
        further product with ``A`` is needed."""
        k = self.k
        Q, A = self.Q[:, :k], self.A[:, :k]
        bl = b[self.lo:self.hi]
        x = solve_upper(self.R, k, allreduce(self.comm, Q.T @ bl))  # (R in place: no copy of the k x k block)
        r = bl - A @ x
        for _ in range(2):
            dx = solve_upper(self.R, k, allreduce(self.comm, Q.T @ r))
            if not k or float(np.abs(dx).max()) <= REFINED * float(np.abs(x).max()):
                break
            x += dx
            r = bl - A @ x
        return x, self._full(r)

    def condition(self, iterations: int = 8) -> float:
        """An estimate of the 2-norm condition number of the columns ``A`` (that of ``R``): ``||R|| ||R^-1||`` by
        ``iterations`` steps of the power method on ``R^T R`` and on its inverse (triangular solves, ``O(k^2)`` each;
        a lower bound, usually within a few percent). 1 without columns."""
        k = self.k
        if not k:
            return 1.0
        R = self.R[:k, :k]  # (a view; the solves read the buffer in place)
        x = y = np.random.default_rng(0).standard_normal(k)
        big = small = 0.0
        for _ in range(iterations):
            x = R.T @ (R @ (x / np.linalg.norm(x)))
            big = float(np.linalg.norm(x))
            y = solve_upper(self.R, k, solve_upper(self.R, k, y / np.linalg.norm(y), trans=True))
            small = float(np.linalg.norm(y))
        return float(np.sqrt(big * small)) if np.isfinite(small) else float("inf")

    def combination(self, x: np.ndarray) -> np.ndarray:
        """``A x`` ``(n,)`` on every rank."""
        return self._full(self.A[:, :self.k] @ x)

    def last_direction(self) -> np.ndarray:
        """The last column of ``Q`` ``(n,)`` on every rank."""
        return self._full(self.Q[:, self.k - 1])
