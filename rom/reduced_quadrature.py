"""Hyper-reduction by the Empirical Cubature Method (ECM), distributed over MPI ranks.

Offline stage of the ROM (Hernandez, Caicedo, Ferrer 2017, CMAME 313, Algorithm 1; as used by Casenave
et al., arXiv 1812.07228): pick a few integration points and non-negative weights that integrate a
set of integrands as the full finite-element quadrature does.

Data distribution (per rank): the integration points of the rank's elements, each with a unique
GLOBAL point number. The integrand matrix ``G`` has one row per integrand and one column per point;
for the Galerkin internal forces of a ROM with modes ``psi_i`` (``N``) and stress snapshots
``sigma_s`` (``n_s``) the rows are ``(i, s) -> eps(psi_i)(x_k) : sigma_s(x_k)`` (:func:`integrand_rows`).
A rank holds ``G_local`` ``(n_rows, n_local)`` (its columns), the FE weights ``w_fe_local`` ``(n_local,)``
and ``global_points_local`` ``(n_local,)``. The FE quadrature is ``b = G w_FE`` (summed over ranks).
``G`` is never gathered: only the selected columns travel (``n_rows + 1`` doubles per selection).

Algorithm (:func:`empirical_cubature`), on the rows of ``G`` augmented, with ``include_constant``,
by the constant function scaled to ``c = ||b|| / V`` (``V = sum w_FE`` the volume, so that the
constant row's integral weighs as much as all other rows together)::

    b = G w_FE (Allreduce, reproducible: independent of the rank count), r = b, z = {}
    repeat
        k* = argmax_k  G_k . r / ||G_k||      over candidate points of all ranks (positive values only;
                                              scores within 1e-10 ||r|| of the max tie -> lowest
                                              global point number)
        z <- z + {k*}; the column G_k* is sent to every rank (Allreduce of a vector non-zero on the owner)
        alpha = least squares on the selected (normalized) columns;
        if some alpha <= 0: those points leave z (they become candidates again) and alpha is recomputed
                           (and become candidates again, as in the paper)
        r = b - G_z alpha
    until ||r_aug|| <= tolerance ||b||  (this implies ||G w - b|| <= tolerance ||b|| and, with the
          constant row, |sum w - V| <= tolerance V),  or |z| == max_points

In exact arithmetic the residual decreases strictly at every selection (the previous weights plus a
small positive weight on a positively correlated point do better), so the greedy loop terminates;
numerically, when the residual reaches its round-off level (``4 eps sqrt(n_rows) (||b|| + sum_k w_k
||G_k||)``), stops decreasing (relative decrease < 1e-9 on 5 consecutive selections), no candidate
correlates positively with it, or the number of selections exceeds
``4 (n_rows + 1) + 20``, :class:`ECMError` reports that the tolerance is below what is reachable
(round-off), with the best residual reached.

Determinism: ``b`` and the volume are summed reproducibly (pre-rounding to a common power-of-two grid,
Demmel & Nguyen, so that every partial sum is exact and the result does not depend on how points are
distributed); the selected columns travel exactly; all small problems are solved identically on every
rank. Hence the same points and weights for any number of ranks (bit-for-bit when the ranks' ``G``
columns are bit-for-bit the same), and the tie rule makes symmetric problems deterministic.

Non-negativity and the point count: the non-negative least-squares solution keeps linearly
independent columns, so the reduced rule has at most ``rank(G_aug) <= n_rows + 1`` points
(Caratheodory).

Row compression (:func:`compress_rows`): with many integrands (``N n_s`` rows), replace ``G`` by
``U_r^T G`` (``U_r``: leading left singular vectors), see its docstring for the error bound.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

import time
from collections.abc import Callable

from structrom.mpi.collectives import (allreduce, raise_collectively, reproducible_row_sums,
                                       reproducible_weighted_row_sums)
from structrom.rom.progress import bar
from structrom.mpi.errors import StructromError

EPS = float(np.finfo(float).eps)
#: Scores within ``SCORE_TIE_RTOL * ||r||`` of the best one tie; the lowest global point number wins. Wider than
#: the rank-count-dependent rounding of the integrand (modes equal to ~1e-10 for P = 1, 2, 3), so that
#: near-ties are broken the same way whatever the number of ranks.
SCORE_TIE_RTOL = 1e-8

#: Stagnation: this many consecutive selections with a relative residual decrease below STALL_RTOL.
STALL_COUNT = 5
STALL_RTOL = 1e-9
#: A residual below ``ROUNDOFF_FACTOR eps sqrt(n_rows) (||b|| + sum_k w_k ||G_k||)`` is round-off.
ROUNDOFF_FACTOR = 4.0


class ECMError(StructromError, ValueError):
    """Bad ECM input or an unreachable tolerance (names the field / cause and the fix)."""


@dataclass
class ReducedQuadrature:
    """A reduced quadrature rule (identical on every rank).

    ``points``: ``(n_rp,)`` GLOBAL point numbers, in selection order (points dropped by the NNLS step
    are removed; a point selected again appears at its last selection); ``weights``: ``(n_rp,)`` >= 0;
    ``residual``: final ``||G w - G w_FE|| / ||G w_FE||`` (rows of ``G`` only, without the constant);
    ``history``: ``(n_selections,)`` that relative residual after each selection;
    ``volume_error``: ``|sum w - V| / V``; ``tolerance``: the requested tolerance;
    ``converged``: False when ``max_points`` stopped the loop before the tolerance was met;
    ``extra``: counters (``n_selections``, ``n_dropped``, ``n_removals``).
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


@dataclass
class RowCompression:
    """Orthonormal basis of the row space of ``G`` (see :func:`compress_rows`).

    ``basis``: ``(n_rows, r)`` ``U_r`` (orthonormal columns, each with its largest-magnitude entry
    positive); ``singular_values``: ``(r,)`` retained singular values of ``G``, descending;
    ``eigenvalues``: ``(m,)`` the eigenvalues of ``sum_ranks G G^T`` above round-off (``m`` = numerical
    rank, ``r <= m``); ``energy_error``: ``sqrt(discarded / total)`` with ``total = trace(sum G G^T)``
    (relative Frobenius error of ``U_r U_r^T G``, round-off eigenvalues counted as discarded);
    ``compressed_local``: ``(r, n_local)`` ``U_r^T G_local`` when the input was an array or a sequence
    of chunks (concatenated along the points), None for a one-shot iterator (then use :meth:`project`).
    """

    basis: np.ndarray
    singular_values: np.ndarray
    eigenvalues: np.ndarray
    energy_error: float
    compressed_local: np.ndarray | None = None
    #: "gram" (:func:`compress_rows`) or "randomized" (:func:`structrom.rom.row_sketch.sketch_rows`, whose
    #: range had ``range_rank`` columns before the truncation)
    method: str = "gram"
    range_rank: int | None = None

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def project(self, G_local: np.ndarray) -> np.ndarray:
        """``U_r^T G_local``: ``(n_rows, n) -> (r, n)``."""
        G = np.asarray(G_local, dtype=float)
        if G.ndim != 2 or G.shape[0] != self.basis.shape[0]:
            raise ECMError(f"G_local must have shape ({self.basis.shape[0]}, n_points), got {G.shape}")
        return self.basis.T @ G


# -- helpers ------------------------------------------------------------------------------------------


def integrand_rows(eps_modes_local: np.ndarray, stress_local: np.ndarray) -> np.ndarray:
    """Integrand matrix of the Galerkin internal forces at a rank's points.

    ``eps_modes_local``: ``(n_local, 6, N)`` strains of the modes (Voigt, ENGINEERING shears);
    ``stress_local``: ``(n_local, 6, n_s)`` stress snapshots (Voigt, TENSOR shears), so that the Voigt
    dot product is the double contraction ``eps : sigma`` (:mod:`structrom.rom.voigt`).
    Returns ``G_local`` ``(N n_s, n_local)`` with row ``i n_s + s`` = ``eps(psi_i) : sigma_s``.
    """
    E = np.asarray(eps_modes_local, dtype=float)
    S = np.asarray(stress_local, dtype=float)
    if E.ndim != 3 or E.shape[1] != 6:
        raise ECMError(f"eps_modes_local must have shape (n_local, 6, N_modes), got {E.shape}")
    if S.ndim != 3 or S.shape[1] != 6 or S.shape[0] != E.shape[0]:
        raise ECMError(f"stress_local must have shape ({E.shape[0]}, 6, n_snapshots) like eps_modes_local, "
                       f"got {S.shape}")
    n_local, _, n_modes = E.shape
    return np.einsum("kci,kcs->isk", E, S, optimize=True).reshape(n_modes * S.shape[2], n_local)


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


# -- row compression ----------------------------------------------------------------------------------


def compress_rows(comm: MPI.Comm | None,
                  G_chunks: Iterable[np.ndarray] | np.ndarray | Callable[[], Iterable[np.ndarray]],
                  tolerance: float) -> RowCompression:
    """Orthonormal basis ``U_r`` of the row space of the distributed ``G`` and ``U_r^T G_local``.

    ``G_chunks``: this rank's ``(n_rows, n_local)`` array, or an iterable of ``(n_rows, n_j)`` chunks of
    its columns (points), e.g. produced element block by element block, or a function returning a fresh
    such iterable (then the chunks are made twice, once for ``C`` and once for ``U_r^T G``, which is
    written block by block into one ``(r, n_local)`` array: the uncompressed ``G`` never exists whole);
    ``tolerance`` in (0, 1).
    ``C = sum_ranks sum_chunks G_j G_j^T`` ``(n_rows, n_rows)`` (upper triangle, BLAS ``syrk``) is
    Allreduced and ``eigh``-ed on every rank (two ``n_rows^2`` arrays per rank, whatever the rank count); ``r`` is the smallest number with ``sum_{i>r} lambda_i <= tolerance^2 sum_i lambda_i``
    (relative Frobenius energy of the discarded part). The Gram matrix squares the condition number:
    eigenvalues below ``~ n_rows eps lambda_1`` are round-off, so tolerances below ``~1e-7`` are not
    resolved. Returns a :class:`RowCompression` (``compressed_local = U_r^T G_local`` ``(r, n_local)``
    unless the chunks came from a one-shot iterator).

    Why the ECM on ``Gt = U_r^T G`` still controls the quadrature error of ``G``: for any weights
    ``w`` and ``d = w - w_FE``, the orthogonal splitting ``G = P G + (I - P) G`` (``P = U_r U_r^T``) gives
    exactly ``||G d||^2 = ||Gt d||^2 + ||(I - P) G d||^2``. The first term is what the ECM makes small
    (``<= tol_ecm ||U_r^T b|| <= tol_ecm ||b||``). The second is the truncation: ``||(I - P) G d|| <=
    sum_k |d_k| ||(I - P) G_k|| <= ||d||_1 max_k ||(I - P) G_k||``, and every column's discarded part is
    bounded by the discarded energy, ``||(I - P) G_k|| <= ||(I - P) G||_F <= tolerance ||G||_F``. With
    non-negative weights and the constant row, ``||d||_1 <= sum w + sum w_FE ~ 2 V``. So the error on
    ``G`` is the ECM's plus a truncation term proportional to ``tolerance`` (the Frobenius bound is
    pessimistic: the discarded part is spread over all points, while only the few selected points and
    the FE average matter). Measured on FE internal-force integrands, the error on ``G`` is about
    ``sqrt(ecm^2 + energy_error^2)``: compressing at ``tol / 10`` and running the ECM at ``0.9 tol``
    meets ``tol`` on ``G``; measure it (``||G (w - w_FE)||``, one Allreduce) when it matters.
    Across rank counts, ``C`` differs by the round-off of the Allreduce; trailing basis vectors near
    the cut amplify it by ``lambda_1 / gap``, so the ECM on compressed rows reproduces points but its
    weights only to ~1e-9 (uncompressed: bit for bit).
    Also ``U_r^T`` is injective on the row space kept, so no integrand combination with significant
    energy is lost; signs or rotations of ``U_r`` do not change the ECM's choices (its scores
    ``G_k^T P r`` depend on the subspace only).
    """
    comm = MPI.COMM_SELF if comm is None else comm
    if not (isinstance(tolerance, (int, float, np.floating)) and 0.0 < float(tolerance) < 1.0):
        raise ECMError(f"tolerance must be in (0, 1) (relative energy of the discarded rows), got {tolerance!r}")
    factory = G_chunks if callable(G_chunks) else None
    keep_chunks = factory is not None or isinstance(G_chunks, np.ndarray) or isinstance(G_chunks, Sequence)
    chunks = factory() if factory is not None else [G_chunks] if isinstance(G_chunks, np.ndarray) else G_chunks
    C = None
    n_rows = None
    n_cols = 0
    message = None
    for j, chunk in enumerate(chunks):
        A = np.asarray(chunk, dtype=float)
        if A.ndim != 2:
            message = f"G_chunks[{j}] must be 2-D (n_rows, n_points), got shape {A.shape}"
            break
        if n_rows is None:
            n_rows = A.shape[0]
            C = np.zeros((n_rows, n_rows), order="F")
        if A.shape[0] != n_rows:
            message = f"G_chunks[{j}] has {A.shape[0]} rows, earlier chunks had {n_rows}"
            break
        if not _all_finite(A):
            message = f"G_chunks[{j}] contains NaN or Inf at {int(np.count_nonzero(~np.isfinite(A)))} entries"
            break
        n_cols += A.shape[1]
        if A.shape[1]:  # C += A A^T, upper triangle (A.T is Fortran-ordered: no copy)
            C = sla.blas.dsyrk(1.0, np.asarray(A.T, order="F"), beta=1.0, c=C, trans=1, lower=0, overwrite_c=1)
    _raise_collectively(comm, message)
    rows = comm.allgather(n_rows)
    known = {r for r in rows if r is not None}
    if len(known) != 1:
        raise ECMError(f"G_chunks must have the same number of rows on every rank (got {rows}; a rank "
                       "without points may pass an empty (n_rows, 0) array)" if known else
                       "G_chunks is empty on every rank")
    n_rows = known.pop()
    if C is None:
        C = np.zeros((n_rows, n_rows), order="F")
    if comm.Get_size() > 1:
        comm.Allreduce(MPI.IN_PLACE, C, op=MPI.SUM)
    total = float(np.trace(C))
    lam, V = sla.eigh(C, lower=False, overwrite_a=True, check_finite=False)
    del C
    lam, V = lam[::-1], V[:, ::-1]
    if not len(lam) or lam[0] <= 0:
        raise ECMError("G is zero on every rank: nothing to compress")
    lam = np.maximum(lam, 0.0)
    n_above = int(np.count_nonzero(lam > EPS * lam[0] * max(n_rows, 1)))  # the rest is round-off
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # all of them, round-off ones included
    ok = np.flatnonzero(tails[: n_above + 1] <= tolerance ** 2 * total)
    r = max(1, int(ok[0]) if ok.size else n_above)
    U = np.ascontiguousarray(V[:, :r])
    del V
    big = np.argmax(np.abs(U), axis=0)  # deterministic signs (the rows are global)
    U *= np.where(U[big, np.arange(r)] < 0, -1.0, 1.0)
    compressed = None
    if keep_chunks:
        compressed = np.empty((r, n_cols))
        j = 0
        for c in (factory() if factory is not None else chunks):
            c = np.asarray(c, dtype=float)
            np.matmul(U.T, c, out=compressed[:, j:j + c.shape[1]])
            j += c.shape[1]
    outside = total - float(tails[0])  # trace vs sum of the eigenvalues: zero up to round-off
    discarded = float(tails[r]) + (outside if outside > 64 * EPS * total else 0.0)
    return RowCompression(U, np.sqrt(lam[:r]), lam[:n_above], float(np.sqrt(discarded / total)), compressed)


# -- ECM ----------------------------------------------------------------------------------------------


def _validate(comm, G_local, w_fe_local, global_points_local, tolerance, max_points):
    if not (isinstance(tolerance, (int, float, np.floating)) and 0.0 < float(tolerance) < 1.0):
        raise ECMError(f"tolerance must be in (0, 1) (relative quadrature error, e.g. 1e-4), got {tolerance!r}")
    if max_points is not None and (not isinstance(max_points, (int, np.integer)) or max_points < 1):
        raise ECMError(f"max_points must be a positive integer or None, got {max_points!r}")
    message = None
    G = w = g = None
    try:
        G = np.asarray(G_local, dtype=float)
        w = np.asarray(w_fe_local, dtype=float)
        g = np.asarray(global_points_local)
        if G.ndim != 2:
            message = f"G_local must be 2-D (n_rows, n_local_points), got shape {G.shape}"
        elif w.shape != (G.shape[1],):
            message = (f"w_fe_local must have shape ({G.shape[1]},) (one FE weight per column of G_local), "
                       f"got {w.shape}")
        elif g.shape != (G.shape[1],):
            message = (f"global_points_local must have shape ({G.shape[1]},) (one global point number per "
                       f"column of G_local), got {g.shape}")
        elif g.size and not np.issubdtype(g.dtype, np.integer):
            message = f"global_points_local must be integers, got dtype {g.dtype}"
        elif not _all_finite(G):
            n_nan, n_inf = int(np.count_nonzero(np.isnan(G))), int(np.count_nonzero(np.isinf(G)))
            what = " and ".join(f"{k} at {v} entries" for k, v in (("NaN", n_nan), ("Inf", n_inf)) if v)
            message = f"G_local contains {what}: remove failed snapshots / check the stresses"
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


class _ColumnQR:
    """Economic QR ``A = Q R`` of the selected normalized columns ``A`` ``(n, k)``, in preallocated buffers
    (capacity doubled on demand): a column is appended by Gram-Schmidt twice ("twice is enough", O(n k),
    no copy of ``Q``), removed by :func:`scipy.linalg.qr_delete` on the economic factors. Identical
    operations on every rank, so identical factors."""

    def __init__(self, n: int, capacity: int = 64) -> None:
        self.n, self.k = n, 0
        self.Q = np.zeros((n, capacity))
        self.R = np.zeros((capacity, capacity))
        self.A = np.zeros((n, capacity))  # the normalized columns themselves (residual refinement)

    def _grow(self) -> None:
        cap = 2 * self.Q.shape[1]
        for name in ("Q", "A"):
            buf = np.zeros((self.n, cap))
            buf[:, :self.k] = getattr(self, name)[:, :self.k]
            setattr(self, name, buf)
        R = np.zeros((cap, cap))
        R[:self.k, :self.k] = self.R[:self.k, :self.k]
        self.R = R

    def append(self, v: np.ndarray, rtol: float = 1e-12) -> bool:
        """Append the unit column ``v`` ``(n,)``; False (nothing changed) when it is numerically dependent
        on the current columns (``|R_kk| <= rtol |R_00|``)."""
        k = self.k
        if k == self.Q.shape[1]:
            self._grow()
        Qk = self.Q[:, :k]
        h = Qk.T @ v
        w = v - Qk @ h
        h2 = Qk.T @ w
        w -= Qk @ h2
        rho = float(np.linalg.norm(w))
        if k and rho <= rtol * abs(self.R[0, 0]):
            return False
        if not rho > 0.0:
            return False
        self.Q[:, k] = w / rho
        self.R[:k, k] = h + h2
        self.R[k, :k] = 0.0
        self.R[k, k] = rho
        self.A[:, k] = v
        self.k = k + 1
        return True

    def load(self, A: np.ndarray) -> None:
        """Start from the unit columns ``A`` ``(n, k)`` (independent), factorized by one Householder QR."""
        k = A.shape[1]
        while self.Q.shape[1] < k:
            self._grow()
        Q, R = sla.qr(A, mode="economic")
        self.Q[:, :k], self.R[:k, :k], self.A[:, :k] = Q, R, A
        self.k = k

    def delete(self, j: int) -> None:
        """Remove column ``j``."""
        k = self.k
        Q, R = sla.qr_delete(self.Q[:, :k], self.R[:k, :k], j, which="col", check_finite=False)
        # economic factors: keep the first k - 1 columns of Q and the leading block of R
        self.Q[:, :k - 1] = Q[:, :k - 1]
        self.R[:k - 1, :k - 1] = R[:k - 1, :k - 1]
        self.A[:, j:k - 1] = self.A[:, j + 1:k]
        self.k = k - 1

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Least squares ``argmin ||A x - b||`` with two steps of iterative refinement (the updated
        factors lose digits on ill-conditioned column sets)."""
        k = self.k
        Q, R, A = self.Q[:, :k], self.R[:k, :k], self.A[:, :k]
        x = sla.solve_triangular(R, Q.T @ b, check_finite=False)
        for _ in range(2):
            x += sla.solve_triangular(R, Q.T @ (b - A @ x), check_finite=False)
        return x


def empirical_cubature(
    comm: MPI.Comm | None,
    G_local: np.ndarray,
    w_fe_local: np.ndarray,
    global_points_local: np.ndarray,
    *,
    tolerance: float = 1e-4,
    max_points: int | None = None,
    include_constant: bool = True,
    initial_points: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
) -> ReducedQuadrature:
    """ECM reduced quadrature of distributed integrands (collective over ``comm``).

    ``G_local``: ``(n_rows, n_local)`` integrands (rows) at this rank's points (columns);
    ``w_fe_local``: ``(n_local,)`` FE weights (>= 0); ``global_points_local``: ``(n_local,)`` unique
    global point numbers (over all ranks). ``tolerance`` in (0, 1): relative quadrature error
    ``||G w - G w_FE|| / ||G w_FE||`` to reach (with ``include_constant`` also ``|sum w - V| / V``);
    ``max_points``: stop after this many points even if the tolerance is not met (``converged`` False).
    See the module docstring for the algorithm. Returns a :class:`ReducedQuadrature`, identical on
    every rank.

    Warm start (``initial_points``, e.g. the rule of a reduced model whose integrand has grown): the
    initial columns are factorized at once (an independent subset, found by a column-pivoted QR) and get
    the positive least-squares weights of the loop, which then continues as usual (points added where
    the residual correlates most, non-positive weights removed). Every initial point stays in the rule:
    first, in the given order, with weight 0 where left out.

    Memory: besides ``G_local`` (read only, never copied: the reproducible sums scale it by row blocks),
    ``O(n_rows + n_local)`` per rank plus the QR of the selected columns ``O(n_rows k)``.
    ``log``: rank 0's progress lines (every 100 selections or 30 s: points, residual, elapsed time,
    estimated time left); a tqdm bar on stderr besides (:mod:`structrom.rom.progress`).

    Raises :class:`ECMError` (on every rank) for bad input, for ``G w_FE == 0`` (a relative tolerance is
    then undefined) and when the residual stagnates above the tolerance.
    """
    comm = MPI.COMM_SELF if comm is None else comm
    G, w_fe, gpts = _validate(comm, G_local, w_fe_local, global_points_local, tolerance, max_points)
    n_rows, n_local = G.shape
    n_total = int(comm.allreduce(n_local, op=MPI.SUM))
    if n_total == 0:
        raise ECMError("G_local has no points (columns) on any rank")

    b_G = reproducible_weighted_row_sums(comm, G, w_fe)
    volume = float(reproducible_row_sums(comm, w_fe[None, :])[0])
    norm_b = float(np.linalg.norm(b_G))
    scale_ref = float(comm.allreduce(_abs_max(G), op=MPI.MAX)) * volume
    if not norm_b > 64 * EPS * scale_ref * np.sqrt(max(n_rows, 1)) or norm_b == 0.0:
        raise ECMError(f"the FE integrals G w_FE vanish (||G w_FE|| = {norm_b:.3g}, volume {volume:.3g}): "
                       "the relative tolerance is undefined; add integrands with non-zero integrals")
    if include_constant and not volume > 0:
        raise ECMError("w_fe_local sums to zero over all ranks: include_constant needs a positive volume")
    c = norm_b / volume if include_constant else 0.0
    n_aug = n_rows + (1 if include_constant else 0)

    # Augmented local columns (only used through their norms and the score products).
    col_norm = np.sqrt(np.einsum("ij,ij->j", G, G) + c * c)
    candidate = col_norm > 0.0  # points where every integrand vanishes can never help
    b = np.concatenate([b_G, [c * volume]]) if include_constant else b_G
    r = b.copy()
    target = float(tolerance) * norm_b

    selected: list[int] = []  # global point numbers
    norms: list[float] = []  # norms of the selected augmented columns (identical on every rank)
    alpha = np.zeros(0)
    qr = _ColumnQR(n_aug)
    history: list[float] = []
    n_dropped = n_nnls = 0
    stall = 0
    max_iter = 4 * (n_aug + 1) + 20
    limit = max_points if max_points is not None else n_total
    converged = bool(np.linalg.norm(r) <= target)

    def positive_weights() -> np.ndarray | None:
        """Least-squares weights (normalized columns) of the selected points; points whose weight comes
        out non-positive are removed and the least squares redone (Hernandez et al. 2017, Algorithm 1);
        removed points become candidates again. None when every weight is non-positive."""
        nonlocal selected, norms, candidate, n_nnls, n_dropped
        alpha_n = qr.solve(b)
        drop = alpha_n <= 0.0
        while np.any(drop) and not np.all(drop):
            n_nnls += 1
            n_dropped += int(np.count_nonzero(drop))
            dropped = np.array([p for p, d in zip(selected, drop) if d], dtype=np.int64)
            candidate |= np.isin(gpts, dropped) & (col_norm > 0.0)
            for k in np.flatnonzero(drop)[::-1]:
                qr.delete(int(k))
            selected = [p for p, d in zip(selected, drop) if not d]
            norms = [nr for nr, d in zip(norms, drop) if not d]
            alpha_n = qr.solve(b)
            drop = alpha_n <= 0.0
        return None if np.all(drop) else alpha_n

    # Warm start: the initial columns enter first, factorized at once, with the positive least-squares
    # weights above; the greedy loop continues from there. Initial points left out stay in the rule at 0.
    initial = list(dict.fromkeys(int(p) for p in initial_points)) if initial_points is not None else []
    if initial:
        cols = _columns(comm, G, gpts, np.array(initial, dtype=np.int64), c if include_constant else None)
        candidate &= ~np.isin(gpts, initial)
        nrm = np.linalg.norm(cols, axis=0)
        use = np.flatnonzero(nrm > 0.0)
        if len(use):  # an independent subset (pivoted QR), in the given order, factorized by one QR
            _, R, piv = sla.qr(cols[:, use] / nrm[use], mode="economic", pivoting=True)
            d = np.abs(np.diag(R))
            use = np.sort(use[piv[:int(np.count_nonzero(d > 1e-10 * d[0]))]]) if d.size and d[0] > 0 else use[:0]
        if len(use):
            qr.load(cols[:, use] / nrm[use])
            selected, norms = [initial[j] for j in use], nrm[use].tolist()
            alpha_n = positive_weights()
            if alpha_n is None:  # nothing usable: a cold start (every point a candidate)
                candidate = col_norm > 0.0
                selected, norms, qr = [], [], _ColumnQR(n_aug)
            else:
                alpha = alpha_n / np.array(norms)
                r = b - qr.A[:, :qr.k] @ alpha_n
                history.append(float(np.linalg.norm(r[:n_rows]) / norm_b))
                converged = bool(np.linalg.norm(r) <= target)
    it = 0
    progress = _ECMProgress(comm.Get_rank() == 0, float(tolerance), log)
    while not converged and len(selected) < limit:
        if it:
            progress.update(len(selected), history, it)
        it += 1
        r_norm = float(np.linalg.norm(r))
        if it > max_iter:
            raise ECMError(f"ECM did not converge in {max_iter} selections: relative residual {r_norm / norm_b:.3g} "
                           f"> tolerance {tolerance:.3g} with {len(selected)} points; the tolerance is likely below "
                           "the reachable (round-off) level, raise it")
        # -- global argmax of the normalized positive correlation, ties -> lowest global point number
        if n_local:
            score = (G.T @ r[:n_rows] + (c * r[n_rows] if include_constant else 0.0))
            score = np.where(candidate, score / np.where(candidate, col_norm, 1.0), -np.inf)
            local_max = float(score.max())
        else:
            score = np.zeros(0)
            local_max = -np.inf
        best = float(comm.allreduce(local_max, op=MPI.MAX))
        if not best > SCORE_TIE_RTOL * r_norm:
            raise ECMError(f"ECM stagnated: no remaining point correlates positively with the residual "
                           f"(relative residual {r_norm / norm_b:.3g} > tolerance {tolerance:.3g}, "
                           f"{len(selected)} points); the tolerance is below the reachable (round-off) level")
        big = np.iinfo(np.int64).max
        ties = score >= best - SCORE_TIE_RTOL * r_norm
        local_pt = int(gpts[ties].min()) if np.any(ties) else big
        point = int(comm.allreduce(local_pt, op=MPI.MIN))
        # -- the selected column travels to every rank (plus an owner count as a consistency check)
        buf = np.zeros(n_aug + 1)
        own = np.flatnonzero(gpts == point)
        if len(own):
            k = int(own[0])
            buf[:n_rows] = G[:, k]
            if include_constant:
                buf[n_rows] = c
            buf[-1] = 1.0
            candidate[k] = False
        buf = allreduce(comm, buf)
        if buf[-1] != 1.0:
            raise ECMError(f"global point {point} is held by {int(buf[-1])} ranks: global_points_local must "
                           "number every point uniquely over all ranks")
        column = buf[:n_aug].copy()
        # -- weights: least squares on the selected normalized columns, through an economic QR updated
        #    column by column (:class:`_ColumnQR`: O(n_aug k) per step instead of a full solve); points
        #    whose weight comes out non-positive are removed and the least squares redone (Hernandez et
        #    al. 2017, Algorithm 1); removed points become candidates again.
        col_nrm = float(np.linalg.norm(column))
        if not qr.append(column / col_nrm):  # numerically dependent on the selected columns
            stall += 1
            if stall >= STALL_COUNT:
                raise ECMError(f"ECM stagnated at relative residual {r_norm / norm_b:.3g} > tolerance "
                               f"{tolerance:.3g} ({len(selected)} points): the tolerance is below the reachable "
                               "(round-off) level, raise it")
            continue
        selected.append(point)
        norms.append(col_nrm)

        alpha_n = positive_weights()
        if alpha_n is None:
            raise ECMError(f"ECM could not find positive weights on {len(selected)} selected points")
        nrm = np.array(norms)
        alpha = alpha_n / nrm
        r = b - qr.A[:, :qr.k] @ alpha_n  # A_z alpha = (normalized columns) alpha_n
        new_norm = float(np.linalg.norm(r))
        history.append(float(np.linalg.norm(r[:n_rows]) / norm_b))
        stall = stall + 1 if new_norm > (1.0 - STALL_RTOL) * r_norm else 0
        converged = new_norm <= target
        # round-off level of r = b - A alpha: below it, further selections only chase noise
        floor = ROUNDOFF_FACTOR * EPS * np.sqrt(n_aug) * (np.linalg.norm(b) + float(nrm @ alpha))
        if not converged and new_norm <= floor:
            raise ECMError(f"ECM reached the round-off level (relative residual {new_norm / norm_b:.3g}, "
                           f"{len(selected)} points) above the tolerance {tolerance:.3g}: the tolerance is below "
                           "the reachable level, raise it")
        if not converged and stall >= STALL_COUNT:
            raise ECMError(f"ECM stagnated at relative residual {new_norm / norm_b:.3g} > tolerance {tolerance:.3g} "
                           f"({len(selected)} points, no decrease over {STALL_COUNT} selections): the tolerance is "
                           "below the reachable (round-off) level, raise it")

    progress.close()
    weights = np.asarray(alpha, dtype=float)
    points = np.array(selected, dtype=np.int64)
    if initial:  # the initial points first, in their order (weight 0 where left out), then the new ones
        weight_of = dict(zip(selected, weights.tolist()))
        points = np.array(initial + [p for p in selected if p not in set(initial)], dtype=np.int64)
        weights = np.array([weight_of.get(int(p), 0.0) for p in points])
    weights_sum = float(np.sum(weights))
    residual = float(np.linalg.norm(r[:n_rows]) / norm_b)
    return ReducedQuadrature(
        points=points, weights=weights, residual=residual, history=history,
        volume_error=abs(weights_sum - volume) / volume if volume > 0 else float("nan"),
        tolerance=float(tolerance), converged=converged,
        extra={"n_selections": it, "n_dropped": n_dropped, "n_removals": n_nnls, "volume": volume,
               "n_total_points": n_total, "n_initial": len(initial)},
    )


def _columns(comm: MPI.Comm, G: np.ndarray, gpts: np.ndarray, points: np.ndarray, c: float | None) -> np.ndarray:
    """The augmented columns ``(n_aug, len(points))`` of global ``points`` (one Allreduce), on every rank."""
    n_rows = G.shape[0]
    n_aug = n_rows + (c is not None)
    buf = np.zeros((n_aug + 1, len(points)))
    order = np.argsort(gpts)
    pos = np.clip(np.searchsorted(gpts[order], points), 0, max(len(gpts) - 1, 0))
    here = np.flatnonzero(gpts[order][pos] == points) if len(gpts) else np.zeros(0, np.int64)
    loc = order[pos[here]]
    buf[:n_rows, here] = G[:, loc]
    if c is not None:
        buf[n_rows, here] = c
    buf[-1, here] = 1.0
    buf = allreduce(comm, buf)
    bad = np.flatnonzero(buf[-1] != 1.0)
    if len(bad):
        raise ECMError(f"initial point {int(points[bad[0]])} is held by {int(buf[-1, bad[0]])} ranks (expected 1): "
                       "initial_points must be global point numbers of this discretization")
    return buf[:n_aug]
