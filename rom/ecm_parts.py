"""Building blocks of the empirical cubature (:mod:`structrom.rom.reduced_quadrature`): input checks, the
updated QR of the selected columns, the block rule's candidate pool, the columns' exchange, the progress line,
the resulting rule (:class:`ReducedQuadrature`).

Every function here is collective (or purely local) exactly as :func:`structrom.rom.reduced_quadrature.
empirical_cubature` calls it; the arrays' shapes are those of its docstring (``G`` ``(n_rows, n_local)``, global
point numbers ``gpts`` ``(n_local,)``, augmented columns ``(n_rows + 1, m)`` with the constant row).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.mpi.assembly import gather_to_all
from structrom.mpi.collectives import allreduce, raise_collectively
from structrom.mpi.errors import StructromError
from structrom.rom.progress import bar

EPS = float(np.finfo(float).eps)


@dataclass
class ReducedQuadrature:
    """A reduced quadrature rule (identical on every rank).

    ``points``: ``(n_rp,)`` GLOBAL point numbers, in selection order (points dropped by the NNLS step
    are removed; a point selected again appears at its last selection); ``weights``: ``(n_rp,)`` >= 0;
    ``residual``: final ``||G w - G w_FE|| / ||G w_FE||`` (rows of ``G`` only, without the constant);
    ``history``: ``(n_selections,)`` that relative residual after each selection;
    ``volume_error``: ``|sum w - V| / V``; ``tolerance``: the requested tolerance;
    ``converged``: False when ``max_points`` stopped the loop before the tolerance was met;
    ``extra``: counters (``n_selections``, ``n_dropped``, ``n_removals``, ``n_scorings``: products ``G^T r``),
    the ``selection`` rule, ``block_size`` and the score products' ``screening`` precision.
    """

    points: np.ndarray
    weights: np.ndarray
    residual: float
    history: list[float]
    volume_error: float = float("nan")
    tolerance: float = float("nan")
    converged: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return int(len(self.points))

    def local_weights(self, global_points_local: np.ndarray) -> np.ndarray:
        """``(n_local,)`` reduced weights at a rank's points (zero where not selected)."""
        g = np.asarray(global_points_local, dtype=np.int64)
        out = np.zeros(len(g))
        if len(g) and self.n_points:
            order = np.argsort(self.points)
            pos = np.clip(np.searchsorted(self.points[order], g), 0, self.n_points - 1)
            hit = self.points[order][pos] == g
            out[hit] = self.weights[order][pos[hit]]
        return out


class ECMError(StructromError, ValueError):
    """Bad ECM input or an unreachable tolerance (names the field / cause and the fix)."""

def _raise_collectively(comm: MPI.Comm, message: str | None) -> None:
    """Raise the same :class:`ECMError` on every rank if any rank has a message (no deadlock)."""
    raise_collectively(comm, message, ECMError)


def _unique_sorted(a: np.ndarray) -> bool:
    return bool(len(a) < 2 or np.all(np.diff(np.sort(a)) > 0))


def _all_finite(A: np.ndarray, block_bytes: int = 8 * 2**20) -> bool:
    """``np.all(np.isfinite(A))`` for a 2-D array, by row blocks (no full-size mask)."""
    if A.size == 0:
        return True
    step = max(1, block_bytes // max(A.itemsize * A.shape[1], 1))
    return all(bool(np.isfinite(A[a:a + step]).all()) for a in range(0, A.shape[0], step))


def _abs_max(A: np.ndarray) -> float:
    """``max |A|`` without a copy of ``A`` (0 for an empty array)."""
    return float(max(A.max(), -A.min())) if A.size else 0.0


class _ECMProgress:
    """Progress of the ECM's selections: a tqdm bar (rank 0) and, every ``every`` selections or
    ``seconds``, one line through ``log`` with the points, the residual, the elapsed time and an estimate of
    the time left (the last ``window`` residuals' geometric decrease per selection, extrapolated to the
    tolerance)."""

    def __init__(self, enabled: bool, tolerance: float, log=None, every: int = 100, seconds: float = 30.0,
                 window: int = 50) -> None:
        self.bar = bar(None, "ECM selections", "sel", enabled=enabled)
        self.log = log if enabled else None
        self.tolerance, self.every, self.seconds, self.window = tolerance, every, seconds, window
        self.t0 = self.last = time.perf_counter()

    def eta(self, history: list[float], selections: int) -> float:
        """Seconds left, extrapolated (nan while unknown)."""
        h = [v for v in history[-self.window:] if v > 0]
        if len(h) < 2 or not h[-1] > self.tolerance:
            return 0.0 if h and h[-1] <= self.tolerance else float("nan")
        rate = (np.log(h[0]) - np.log(h[-1])) / (len(h) - 1)  # decrease of log(residual) per selection
        if not rate > 0:
            return float("nan")
        per = (time.perf_counter() - self.t0) / max(selections, 1)
        return float(np.log(h[-1] / self.tolerance) / rate * per)

    def update(self, n_points: int, history: list[float], selections: int) -> str:
        res = history[-1] if history else 1.0
        eta = self.eta(history, selections)
        text = (f"{n_points} points, residual {res:.2e}, {time.perf_counter() - self.t0:.1f} s, "
                f"ETA {'?' if not np.isfinite(eta) else f'{eta:.0f} s'}")
        self.bar.update(1)
        self.bar.set_postfix_str(text)
        now = time.perf_counter()
        if self.log is not None and (selections % self.every == 0 or now - self.last >= self.seconds):
            self.log(f"ECM: {selections} selections, {text}")
            self.last = now
        return text

    def close(self) -> None:
        self.bar.close()


def _validate(comm, G, w_fe_local, global_points_local, tolerance, max_points):
    """Checks of :func:`structrom.rom.reduced_quadrature.empirical_cubature`'s input (collective): ``G`` an integrand
    of :mod:`structrom.rom.integrand`; returns ``(G, w, global points as int64)``."""
    if not (isinstance(tolerance, (int, float, np.floating)) and 0.0 < float(tolerance) < 1.0):
        raise ECMError(f"tolerance must be in (0, 1) (relative quadrature error, e.g. 1e-4), got {tolerance!r}")
    if max_points is not None and (not isinstance(max_points, (int, np.integer)) or max_points < 1):
        raise ECMError(f"max_points must be a positive integer or None, got {max_points!r}")
    message = None
    w = g = None
    n_local = G.shape[1]
    try:
        w = np.asarray(w_fe_local, dtype=float)
        g = np.asarray(global_points_local)
        bad = G.non_finite()
        if w.shape != (n_local,):
            message = (f"w_fe_local must have shape ({n_local},) (one FE weight per column of G_local), "
                       f"got {w.shape}")
        elif g.shape != (n_local,):
            message = (f"global_points_local must have shape ({n_local},) (one global point number per "
                       f"column of G_local), got {g.shape}")
        elif g.size and not np.issubdtype(g.dtype, np.integer):
            message = f"global_points_local must be integers, got dtype {g.dtype}"
        elif bad:
            message = f"G_local contains {bad}: remove failed snapshots / check the stresses"
        elif not np.all(np.isfinite(w)):
            message = f"w_fe_local contains NaN or Inf at {int(np.count_nonzero(~np.isfinite(w)))} points"
        elif np.any(w < 0):
            message = (f"w_fe_local has {int(np.count_nonzero(w < 0))} negative FE weights (min {w.min():.3g}): "
                       "the ECM needs a non-negative reference quadrature (check element orientation)")
        elif g.size and g.min() < 0:
            message = f"global_points_local must be >= 0, got min {int(g.min())}"
        elif not _unique_sorted(g):
            message = "global_points_local has repeated point numbers on this rank"
    except (TypeError, ValueError) as exc:
        message = f"G_local / w_fe_local / global_points_local are not numeric arrays: {exc}"
    _raise_collectively(comm, message)
    rows = comm.allgather(G.shape[0])
    if len(set(rows)) > 1:
        raise ECMError(f"G_local has different numbers of rows on the ranks: {rows}; every rank must hold "
                       "all integrands (rows) at its points (columns)")
    return G, w, g.astype(np.int64)


#: Gram-Schmidt's second pass when the first leaves less than this fraction of the column's norm (1 / sqrt(2)).
REORTHOGONALIZE = 0.7071067811865476


class _ColumnQR:
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
        self.R = np.zeros((capacity, capacity))
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
        R = np.zeros((cap, cap))
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
        :func:`scipy.linalg.qr_delete`, Givens rotations), ``R[:j, j + 1:]`` shifts left; when a rank holds fewer
        rows than the trailing columns (small problems), the trailing ``Q`` is gathered. The stored columns ``A``
        are compacted once."""
        drop = sorted({int(j) for j in columns}, reverse=True)
        k0 = self.k
        for j in drop:
            k = self.k
            R_t = np.asfortranarray(self.R[j:k, j:k])
            if int(np.diff(self.ranges).min()) >= k - j:  # economic factors of this rank's rows: rotations from R
                Q, R = sla.qr_delete(self.Q[:, j:k], R_t, 0, which="col", overwrite_qr=True, check_finite=False)
                if not np.shares_memory(Q, self.Q):
                    self.Q[:, j:k - 1] = Q[:, :k - 1 - j]
            else:
                full = np.vstack(self.comm.allgather(np.ascontiguousarray(self.Q[:, j:k])))  # rank order = row order
                Q, R = sla.qr_delete(full, R_t, 0, which="col", overwrite_qr=True, check_finite=False)
                self.Q[:, j:k - 1] = Q[self.lo:self.hi, :k - 1 - j]
            self.R[:j, j:k - 1] = self.R[:j, j + 1:k]
            self.R[j:k - 1, j:k - 1] = R[:k - 1 - j, :k - 1 - j]
            self.k = k - 1
        if drop:
            keep = np.setdiff1d(np.arange(k0), drop)
            first = int(drop[-1])
            self.A[:, first:self.k] = self.A[:, keep[first:]]

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Least squares ``argmin ||A x - b||`` (``b`` ``(n,)``, the same on every rank) with two steps of iterative
        refinement (the updated factors lose digits on ill-conditioned column sets)."""
        k = self.k
        Q, A = self.Q[:, :k], self.A[:, :k]
        bl = b[self.lo:self.hi]
        R = np.ascontiguousarray(self.R[:k, :k])  # one copy for the three solves (the same LAPACK calls)
        x = sla.solve_triangular(R, allreduce(self.comm, Q.T @ bl), check_finite=False)
        for _ in range(2):
            x += sla.solve_triangular(R, allreduce(self.comm, Q.T @ (bl - A @ x)), check_finite=False)
        return x

    def combination(self, x: np.ndarray) -> np.ndarray:
        """``A x`` ``(n,)`` on every rank."""
        return self._full(self.A[:, :self.k] @ x)

    def last_direction(self) -> np.ndarray:
        """The last column of ``Q`` ``(n,)`` on every rank."""
        return self._full(self.Q[:, self.k - 1])


def _pool(comm: MPI.Comm, score: np.ndarray, gpts: np.ndarray, floor: float, band: float, size: int) -> np.ndarray:
    """The block rule's candidate pool: the global numbers of the (at most ``size``) best candidates of all ranks
    by ``score`` ``(n_local,)`` (scores above ``floor`` only), best first. Scores within ``band`` of a group's
    best form one group, ordered by global point number, and the pool ends with a whole group (it may exceed
    ``size`` by the last group's length), so that near-equal scores (symmetric points, rounding that depends on
    the rank count) give the same pool for any number of ranks, closed under the symmetries of the mesh. One
    allgather (each rank sends its ``size`` best and whatever is within ``2 band`` of them: all that can be in
    the pool)."""
    ok = np.flatnonzero(score > floor)
    if len(ok) > size:
        kth = np.partition(score[ok], len(ok) - size)[len(ok) - size]
        ok = ok[score[ok] >= kth - 2 * band]
    mine = np.stack([score[ok], gpts[ok].astype(float)])
    allv = np.concatenate(comm.allgather(mine), axis=1) if comm.Get_size() > 1 else mine
    allv = allv[:, np.lexsort((allv[1], -allv[0]))]
    group = np.zeros(allv.shape[1], dtype=np.int64)  # a new group where the score drops band below its first
    first = allv[0, 0] if allv.shape[1] else 0.0
    for i in range(1, allv.shape[1]):  # a few hundred candidates at most
        if allv[0, i] < first - band:
            group[i], first = group[i - 1] + 1, allv[0, i]
        else:
            group[i] = group[i - 1]
    order = np.lexsort((allv[1], group))
    n = int(np.searchsorted(group[order], group[order][size - 1], side="right")) if len(order) > size else len(order)
    return allv[1, order[:n]].astype(np.int64)


def _columns(comm: MPI.Comm, G: np.ndarray, gpts: np.ndarray, points: np.ndarray, c: float | None,
             order: np.ndarray | None = None, initial: bool = True) -> np.ndarray:
    """The augmented columns ``(n_aug, len(points))`` of global ``points`` (one Allreduce), on every rank
    (``order``: ``argsort(gpts)`` when known; ``initial``: the points are the caller's ``initial_points``,
    else selected ones, for the error message)."""
    n_rows = G.shape[0]  # G: an integrand of structrom.rom.integrand
    n_aug = n_rows + (c is not None)
    buf = np.zeros((n_aug + 1, len(points)))
    order = np.argsort(gpts) if order is None else order
    pos = np.clip(np.searchsorted(gpts[order], points), 0, max(len(gpts) - 1, 0))
    here = np.flatnonzero(gpts[order][pos] == points) if len(gpts) else np.zeros(0, np.int64)
    loc = order[pos[here]]
    buf[:n_rows, here] = G.columns(loc)
    if c is not None:
        buf[n_rows, here] = c
    buf[-1, here] = 1.0
    buf = allreduce(comm, buf)
    bad = np.flatnonzero(buf[-1] != 1.0)
    if len(bad):
        p, held = int(points[bad[0]]), int(buf[-1, bad[0]])
        raise ECMError(f"initial point {p} is held by {held} ranks (expected 1): initial_points must be global "
                       "point numbers of this discretization" if initial else
                       f"global point {p} is held by {held} ranks: global_points_local must number every point "
                       "uniquely over all ranks")
    return buf[:n_aug]
