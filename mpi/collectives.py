"""Collectives of the project, in one place: raise on every rank, maxima, reproducible sums, global argmax,
rows spread over ranks. Used by POD, ECM, EIM and DEIM.

``comm`` may be ``None`` (serial): then nothing here imports :mod:`mpi4py`, so serial users of
:mod:`structrom.eim` and friends never start MPI. With a communicator, MPI is already initialized by
whoever made it, and the operations are imported lazily.

Every quantity the greedy algorithms compare must be bitwise identical for any number of ranks:

* maxima: ``Allreduce(MAX)`` is exact;
* argmax: the largest value, ties broken by the smallest *global* row id (:func:`global_argmax`);
* sums over rows (squared l2 norms): :func:`exact_column_sums` accumulates the terms in fixed point
  (four 32-bit limbs below the largest term, exact int64 sums, exact Allreduce) and rounds the exact
  rational once; the result is the correctly rounded sum of the float terms except when that sum lies
  within ``n 2^-128`` (relative) of a rounding midpoint, i.e. it equals ``math.fsum`` in practice, and
  never depends on how the rows are split;
* row sums of a matrix whose columns are spread (:func:`reproducible_row_sums`): pre-rounded sums,
  the same in any order.
"""
from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI


def _op(name: str):
    """The MPI reduction ``"sum"``, ``"max"`` or ``"min"`` (imported only when a communicator is in use)."""
    from mpi4py import MPI
    return {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[name]


def size(comm: MPI.Comm | None) -> int:
    return 1 if comm is None else comm.Get_size()


def rank(comm: MPI.Comm | None) -> int:
    return 0 if comm is None else comm.Get_rank()


def on_root(comm: MPI.Comm | None, fn):
    """``fn()`` run on rank 0 only; its value on every rank (broadcast), or its exception raised on every
    rank (so that no rank waits in a collective the others have left). Serial: ``fn()``."""
    if size(comm) == 1:
        return fn()
    out = None
    if comm.Get_rank() == 0:
        try:
            out = fn()
        except Exception as exc:  # re-raised on every rank
            out = exc
    out = comm.bcast(out, root=0)
    if isinstance(out, Exception):
        raise out
    return out


def raise_collectively(comm: MPI.Comm | None, message: str | None, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` on every rank if any rank has a message (the lowest rank's wins, prefixed with
    ``"rank r: "`` when there are several ranks).

    Keeps all ranks in step: a rank raising alone would leave the others blocked in a collective.
    """
    if size(comm) == 1:
        if message:
            raise error(message)
        return
    messages = comm.allgather(message)
    for r, m in enumerate(messages):
        if m:
            raise error(f"rank {r}: {m}")


def allreduce(comm: MPI.Comm | None, a, op: str = "sum"):
    """Elementwise reduction (``op`` in ``"sum"``, ``"max"``, ``"min"``) of a float/int array or a Python
    number over ranks; a copy (or the number itself) when serial."""
    if isinstance(a, (int, float, np.integer, np.floating)):
        return a if size(comm) == 1 else comm.allreduce(a, op=_op(op))
    a = np.ascontiguousarray(a)
    if size(comm) == 1:
        return a.copy()
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=_op(op))
    return out


#: Pre-rounding passes of :func:`reproducible_row_sums` (each resolves ~52 - log2(n_points) more bits).
REPRO_FOLDS = 3

LIMB_BITS = 32
N_LIMBS = 4
#: Rows a column sum may have (each limb sum must stay below 2**63).
MAX_ROWS = 2 ** (63 - LIMB_BITS)


def allreduce_max(comm: MPI.Comm | None, a: np.ndarray) -> np.ndarray:
    """Elementwise maximum over ranks of a float64 array (exact)."""
    return allreduce(comm, np.asarray(a, dtype=np.float64), "max")


def allreduce_sum_int(comm: MPI.Comm | None, a: np.ndarray) -> np.ndarray:
    return allreduce(comm, np.asarray(a, dtype=np.int64), "sum")


def exact_column_sums(comm: MPI.Comm | None, terms: np.ndarray) -> np.ndarray:
    """Sums over rows (and ranks) of non-negative ``terms`` ``(n_local, m)``: ``(m,)`` floats.

    Rank-count independent and correctly rounded up to a truncation of ``2^-128`` times the largest
    term per term (see the module docstring). Zero columns give 0.
    """
    terms = np.asarray(terms, dtype=np.float64)
    m = terms.shape[1]
    top = allreduce_max(comm, terms.max(axis=0) if terms.shape[0] else np.zeros(m))
    # Power-of-two scale per column so that every scaled term lies in [0, 1): exact scaling.
    _, exps = np.frexp(top)
    exps = np.where(top > 0, exps, 0).astype(np.int64)
    limbs = np.zeros((N_LIMBS, m), dtype=np.int64)
    if terms.shape[0]:
        t = np.ldexp(terms, -exps[None, :])
        scale = float(2 ** LIMB_BITS)
        for k in range(N_LIMBS):
            t = t * scale
            digit = np.floor(t)
            t = t - digit
            limbs[k] = digit.astype(np.int64).sum(axis=0)
    limbs = allreduce_sum_int(comm, limbs)
    out = np.empty(m)
    den = 1 << (LIMB_BITS * N_LIMBS)
    for j in range(m):
        num = 0
        for k in range(N_LIMBS):
            num = (num << LIMB_BITS) + int(limbs[k, j])
        e = int(exps[j])
        frac = Fraction(num << e, den) if e >= 0 else Fraction(num, den << (-e))
        out[j] = float(frac)
    return out


def global_argmax(comm: MPI.Comm | None, values: np.ndarray, ids: np.ndarray,
                  ids_increasing: bool = False) -> tuple[float, int, int]:
    """``(max value, global id, owner rank)`` of ``values`` ``(n_local,)`` over all ranks.

    Ties (equal values) go to the smallest global id (``ids_increasing=True`` says that ``ids`` are
    increasing, so the first maximal position is that id: one pass less). ``values`` must not contain
    NaN. A rank without rows contributes ``-inf``.
    """
    if len(values):
        i = int(np.argmax(values))
        v = float(values[i])
        gid = int(ids[i]) if ids_increasing else int(ids[values == v].min())
    else:
        v, gid = -np.inf, np.iinfo(np.int64).max
    if size(comm) == 1:
        return v, gid, 0
    cand = comm.allgather((v, gid))
    best_v = max(c[0] for c in cand)
    best_id = min(c[1] for c in cand if c[0] == best_v)
    owner = next(r for r, c in enumerate(cand) if c == (best_v, best_id))
    return best_v, best_id, owner


def bcast_from(comm: MPI.Comm | None, owner: int, array: np.ndarray | None, length: int) -> np.ndarray:
    """Broadcast a float64 ``(length,)`` array from ``owner`` to all ranks."""
    if size(comm) == 1:
        return np.asarray(array, dtype=np.float64)
    buf = (np.ascontiguousarray(array, dtype=np.float64) if comm.Get_rank() == owner
           else np.empty(length, dtype=np.float64))
    comm.Bcast(buf, root=owner)
    return buf


def default_ids(comm: MPI.Comm | None, n_local: int) -> np.ndarray:
    """Global ids numbering the rows rank after rank: ``offset + arange(n_local)``."""
    if size(comm) == 1:
        return np.arange(n_local, dtype=np.int64)
    offset = comm.exscan(n_local) or 0
    return offset + np.arange(n_local, dtype=np.int64)


def total_rows(comm: MPI.Comm | None, n_local: int) -> int:
    return n_local if size(comm) == 1 else int(comm.allreduce(n_local))


def reproducible_row_sums(comm: MPI.Comm | None, X: np.ndarray, folds: int = REPRO_FOLDS) -> np.ndarray:
    """``(m,)`` row sums over all ranks' columns of ``X`` ``(m, n_local)``, independent of the distribution.

    Pre-rounding (Demmel & Nguyen): per row, a power of two ``M >= 2 n_total max|x|`` is added and
    subtracted, which rounds every term to a multiple of ``ulp(M)``; sums of such multiples below ``M``
    are exact, hence the same in any order and on any number of ranks. The remainder is folded
    again (``folds`` times ``k``); the error is about ``eps |sum| + n_total max|x|
    2^(-k (51 - log2 n_total))``, at least as accurate as a plain sum.
    """
    return _prerounded_sums(comm, np.array(X, dtype=float, copy=True), int(allreduce(comm, np.shape(X)[1])),
                            folds)


def reproducible_weighted_row_sums(comm: MPI.Comm | None, G: np.ndarray, w: np.ndarray,
                                   folds: int = REPRO_FOLDS, block_bytes: int = 32 * 2**20) -> np.ndarray:
    """:func:`reproducible_row_sums` of ``G * w[None, :]`` (``G`` ``(m, n_local)``, ``w`` ``(n_local,)``)
    without the scaled copy of ``G``: the rows are independent, so they are summed by row blocks of at most
    ``block_bytes`` (each block scaled into a fresh buffer), with bitwise the same result."""
    G = np.asarray(G, dtype=float)
    w = np.asarray(w, dtype=float)
    m, n_local = G.shape
    n_total = int(allreduce(comm, n_local))
    step = max(1, block_bytes // max(8 * int(allreduce(comm, n_local, "max")), 1))  # the same on every rank
    out = np.zeros(m)
    for a in range(0, m, step):
        out[a:a + step] = _prerounded_sums(comm, G[a:a + step] * w[None, :], n_total, folds)
    return out


def _prerounded_sums(comm: MPI.Comm | None, X: np.ndarray, n_total: int, folds: int) -> np.ndarray:
    """Row sums of ``X`` ``(m, n_local)`` (overwritten) over all ranks, pre-rounded as in
    :func:`reproducible_row_sums`; ``n_total``: the column count over all ranks."""
    m = X.shape[0]
    total = np.zeros(m)
    if n_total == 0:
        return total
    headroom = int(np.ceil(np.log2(n_total + 1))) + 1
    for _ in range(folds):
        local_max = np.abs(X).max(axis=1) if X.shape[1] else np.zeros(m)
        amax = allreduce(comm, local_max, "max")
        if not np.any(amax > 0):
            break
        exponent = np.frexp(amax)[1]  # amax < 2**exponent
        M = np.where(amax > 0, np.ldexp(1.0, exponent + headroom), 0.0)
        hi = (X + M[:, None]) - M[:, None]
        X -= hi
        total += allreduce(comm, hi.sum(axis=1))
    return total


def _unique_sorted(a: np.ndarray) -> bool:
    return bool(len(a) < 2 or np.all(np.diff(np.sort(a)) > 0))


# -- row compression ----------------------------------------------------------------------------------
