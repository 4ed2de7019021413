"""Building blocks of the empirical cubature (:mod:`structrom.rom.reduced_quadrature`): input checks, the columns'
exchange, the progress line, the resulting rule (:class:`ReducedQuadrature`). The block rule's step is in
:mod:`structrom.rom.ecm_block`, the updated QR of the selected columns in :mod:`structrom.rom.column_qr`.

Every function here is collective (or purely local) exactly as :func:`structrom.rom.reduced_quadrature.
empirical_cubature` calls it; the arrays' shapes are those of its docstring (``G`` ``(n_rows, n_local)``, global
point numbers ``gpts`` ``(n_local,)``, augmented columns ``(n_rows + 1, m)`` with the constant row).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

from structrom.mpi.collectives import allreduce, raise_collectively
from structrom.mpi.errors import StructromError
from structrom.rom.column_qr import ColumnQR as _ColumnQR  # noqa: F401 (the ECM's QR)
from structrom.rom.progress import bar

EPS = float(np.finfo(float).eps)

#: Selection rules of :func:`structrom.rom.reduced_quadrature.empirical_cubature`: "greedy" (one point per score
#: product, Hernandez et al. 2017) and "block" (up to ``block_size`` points per score product, see its module docstring).
SELECTIONS = ("greedy", "block", "all")
#: Which selected points leave when the least squares gives some a non-positive weight: "nonpositive" (all of them,
#: Hernandez et al. 2017) or "lawson_hanson" (those that reach zero first on the way from the previous weights).
REMOVALS = ("nonpositive", "lawson_hanson")
#: How the block rule picks a block's next point from its pool (:func:`structrom.rom.ecm_block.choose_block`).
BLOCK_CHOICES = ("correlation", "decrease")

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


def _check_rule(selection, block_size, block_correlation, screening, shortlist, full_scores_every,
                removal="nonpositive", block_choice="correlation") -> None:
    """Checks of the selection rule's keywords of :func:`structrom.rom.reduced_quadrature.empirical_cubature` (the same
    on every rank: raised alike)."""
    if selection not in SELECTIONS:
        raise ECMError(f"selection must be one of {SELECTIONS} (the ECM's selection rule), got {selection!r}")
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ECMError(f"block_size must be a positive integer (points per score product), got {block_size!r}")
    if not (isinstance(block_correlation, (int, float, np.floating)) and 0.0 < float(block_correlation) <= 1.0):
        raise ECMError(f"block_correlation must be in (0, 1], got {block_correlation!r}")
    if not isinstance(shortlist, (int, np.integer)) or isinstance(shortlist, bool) or shortlist < 0:
        raise ECMError(f"shortlist must be a non-negative integer (candidates scored between full products; 0: off), "
                       f"got {shortlist!r}")
    if not isinstance(full_scores_every, (int, np.integer)) or isinstance(full_scores_every, bool) or full_scores_every < 1:
        raise ECMError(f"full_scores_every must be a positive integer (blocks per full score product), "
                       f"got {full_scores_every!r}")
    if block_choice not in BLOCK_CHOICES:
        raise ECMError(f"block_choice must be one of {BLOCK_CHOICES} (how the block rule picks a block's next point), "
                       f"got {block_choice!r}")
    if removal not in REMOVALS:
        raise ECMError(f"removal must be one of {REMOVALS} (the points that leave on non-positive weights), "
                       f"got {removal!r}")
    if screening not in ("float32", "float64"):
        raise ECMError(f"screening must be 'float32' or 'float64' (precision of the block rule's score products), "
                       f"got {screening!r}")


def leaving(removal: str, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The selected points that leave the rule after the least squares ``x`` ``(k,)`` (weights of the normalized
    columns), from the feasible weights before it ``w`` ``(k,)`` (>= 0; 0 for the points that joined since; with
    "lawson_hanson" moved in place to the step's point): ``removal`` "nonpositive", every point of non-positive
    weight (Hernandez et al. 2017, Algorithm 1); "lawson_hanson", those that reach zero first on the segment from
    ``w`` to ``x`` (Lawson and Hanson 1974, Algorithm 23.10, steps 8-11; new points of non-positive weight leave at
    once, the step being 0). Boolean ``(k,)``."""
    neg = x <= 0.0
    if removal == "nonpositive" or not np.any(neg):
        return neg
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(neg, w / (w - x), np.inf)
    t[neg & ~(w > 0.0)] = 0.0
    step = float(t.min())
    w += step * (x - w)
    return neg & ((t <= step * (1.0 + 1e-12)) | ~(w > 0.0))


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


def _columns(comm: MPI.Comm, G: np.ndarray, gpts: np.ndarray, points: np.ndarray, c: float | None,
             order: np.ndarray | None = None, initial: bool = True) -> np.ndarray:
    """The augmented columns ``(n_aug, len(points))`` of global ``points`` (one Allreduce), on every rank
    (``order``: ``argsort(gpts)`` when known; ``initial``: the points are the caller's ``initial_points``,
    else selected ones, for the error message)."""
    n_rows = G.shape[0]  # G: an integrand of structrom.rom.integrand
    n_aug = n_rows + (c is not None)
    buf = np.zeros((n_aug + 1, len(points)))
    order = np.argsort(gpts) if order is None else order
    sorted_points = gpts[order]
    pos = np.clip(np.searchsorted(sorted_points, points), 0, max(len(gpts) - 1, 0))
    here = np.flatnonzero(sorted_points[pos] == points) if len(gpts) else np.zeros(0, np.int64)
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


def every_point(comm, w_fe: np.ndarray, gpts: np.ndarray, tolerance: float, n_initial: int = 0,
                **rule) -> ReducedQuadrature:
    """The rule ``selection="all"`` of :func:`structrom.rom.reduced_quadrature.empirical_cubature`: every integration
    point with its FE weight (no hyper-reduction; the reduced model is then the Galerkin ROM with the FE quadrature,
    whose error separates the projection's from the cubature's). Collective: the points ``(n_total,)`` sorted by
    global number and their weights, gathered on every rank (``16 n_total`` bytes each). The residual is 0."""
    points = np.concatenate(comm.allgather(np.asarray(gpts, dtype=np.int64)))
    weights = np.concatenate(comm.allgather(np.asarray(w_fe, dtype=float)))
    order = np.argsort(points, kind="stable")
    volume = float(np.sum(weights))  # (exact to round-off; the ECM's reproducible sum is not needed for a rule of all)
    extra = {"n_selections": 0, "n_dropped": 0, "n_removals": 0, "volume": volume, "n_total_points": len(points),
             "n_initial": n_initial, "n_scorings": 0, "n_short_scorings": 0, "n_reorthogonalized": 0, "condition": 1.0,
             **{k: rule[k] for k in ("block_size", "block_correlation", "screening", "shortlist", "full_scores_every",
                                     "block_choice")
                if k in rule}, "selection": "all"}
    return ReducedQuadrature(points=points[order], weights=weights[order], residual=0.0, history=[],
                             volume_error=0.0, tolerance=float(tolerance), converged=True, extra=extra)
