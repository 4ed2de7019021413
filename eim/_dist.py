"""Rank-count-independent reductions for rows spread over MPI ranks.

Every quantity the greedy algorithms compare must be bitwise identical for any number of ranks:

* maxima: ``Allreduce(MAX)`` is exact;
* argmax: the largest value, ties broken by the smallest *global* row id (:func:`global_argmax`);
* sums over rows (squared l2 norms): :func:`exact_column_sums` accumulates the terms in fixed point
  (four 32-bit limbs below the largest term, exact int64 sums, exact Allreduce) and rounds the exact
  rational once; the result is the correctly rounded sum of the float terms except when that sum lies
  within ``n 2^-128`` (relative) of a rounding midpoint, i.e. it equals ``math.fsum`` in practice, and
  never depends on how the rows are split.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from mpi4py import MPI

LIMB_BITS = 32
N_LIMBS = 4
#: Rows a column sum may have (each limb sum must stay below 2**63).
MAX_ROWS = 2 ** (63 - LIMB_BITS)


def size(comm: MPI.Comm | None) -> int:
    return 1 if comm is None else comm.Get_size()


def allreduce_max(comm: MPI.Comm | None, a: np.ndarray) -> np.ndarray:
    """Elementwise maximum over ranks of a float64 array (exact)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    if size(comm) == 1:
        return a.copy()
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=MPI.MAX)
    return out


def allreduce_sum_int(comm: MPI.Comm | None, a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    if size(comm) == 1:
        return a.copy()
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=MPI.SUM)
    return out


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


def global_argmax(comm: MPI.Comm | None, values: np.ndarray, ids: np.ndarray) -> tuple[float, int, int]:
    """``(max value, global id, owner rank)`` of ``values`` ``(n_local,)`` over all ranks.

    Ties (equal values) go to the smallest global id. ``values`` must not contain NaN. A rank
    without rows contributes ``-inf``.
    """
    if len(values):
        v = float(values.max())
        gid = int(ids[values == v].min())
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
