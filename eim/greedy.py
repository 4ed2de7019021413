"""Greedy Empirical Interpolation Method on sampled two-variable functions, rows spread over ranks.

Data: ``f(x_i, y_j)`` for points ``x_i`` (rows; matrix entries, dofs, sensors...) and parameters
``y_j`` (columns, training parameters). Each rank holds ``samples`` ``(n_local, m)``: the rows of its
points for all ``m`` parameters, with ``ids`` ``(n_local,)`` their global ids (unique over ranks).

Classical EIM (Maday et al.; Casenave, Ern, Lelievre arXiv 1508.05330, eqs. (1a)-(1b) and (2)):
at step ``k = 1..d``, with ``r_{k-1} = f - I_{k-1} f``,

* ``y_k = argmax_y || r_{k-1}(., y) ||``      (1a)  the norm is the user's choice (``norm``)
* ``x_k = argmax_x | r_{k-1}(x, y_k) |``      (1b)
* ``q_k = r_{k-1}(., y_k) / r_{k-1}(x_k, y_k)``, ``B_ij = q_j(x_i)`` (unit lower triangular) and
  ``I_d f(x, y) = sum_k q_k(x) beta_k(y)`` with ``B beta(y) = f(x_I, y)``                       (2)

The residual is updated by the rank-one recurrence ``r_k = r_{k-1} - q_k r_{k-1}(x_k, .)`` (valid
because ``q_k`` vanishes at ``x_1..x_{k-1}`` and equals 1 at ``x_k``; it is the interpolation property
(3a)-(3b) of 1508.05330), which is exactly the forward substitution with ``B`` in natural order.
All row-wise operations are elementwise (no BLAS reductions over rows), so every rank computes
bitwise the same numbers for its rows as a single rank would; the l2 norms that decide (1a) and the
reported errors are exactly rounded sums (:mod:`structrom.mpi.collectives`), computed only for the
columns that plain sums cannot rule out (:func:`select_column`). Hence the selections and errors are
identical for any number of ranks.

Tie-breaking (deterministic): among parameters of equal residual norm the smallest column index;
among points of equal ``|r|`` the smallest global id. Already selected parameters are not selected
again (their residual is round-off); ``errors`` are maxima over *all* parameters.

Per step the result reports the greedy error, the pivot, the Lebesgue constant
``Lambda_k = max_x sum_i |L_i(x)|`` of the interpolation operator (``L_i`` its Lagrange functions,
updated by the same rank-one recurrence), and the condition numbers (2-norm) of ``B`` and of the
symmetric-formulation matrix ``F = f(x_I, y_J)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from structrom.mpi import collectives as _dist
from .errors import EIMError, EIMWarning, raise_collectively

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

EPS = float(np.finfo(float).eps)
#: Round-off floor: the greedy stops when the error falls below ``ROUNDOFF * errors[0]``.
ROUNDOFF = 1e3 * EPS
NORMS = ("max", "l2", "weighted_l2")


@dataclass
class EIMResult:
    """Outcome of :func:`eim_greedy` (replicated on every rank except the ``*_local`` arrays).

    ``point_ids`` ``(d,)`` global ids of the selected points ``x_1..x_d`` (selection order);
    ``param_indices`` ``(d,)`` selected columns ``y_1..y_d``; ``errors`` ``(d + 1,)``:
    ``errors[k] = max_y ||f(., y) - I_k f(., y)||`` (``errors[0]`` the largest sample norm);
    ``pivots`` ``(d,)`` ``r_{k-1}(x_k, y_k)``; ``lebesgue``, ``cond_B``, ``cond_F`` ``(d,)`` after
    each step; ``B`` ``(d, d)`` ``q_j(x_i)``; ``F`` ``(d, d)`` ``f(x_i, y_j)``; ``point_rows``
    ``(d, m)`` ``f(x_i, .)`` for all parameters; ``basis_local`` / ``lagrange_local`` /
    ``columns_local`` ``(n_local, d)``: ``q_k``, Lagrange functions ``L_k`` and ``f(., y_k)`` at this
    rank's rows ``ids_local``; ``stop_reason`` one of ``tolerance, max_terms, round-off, exact,
    exhausted``.
    """

    point_ids: np.ndarray
    param_indices: np.ndarray
    errors: np.ndarray
    pivots: np.ndarray
    lebesgue: np.ndarray
    cond_B: np.ndarray
    cond_F: np.ndarray
    B: np.ndarray
    F: np.ndarray
    point_rows: np.ndarray
    basis_local: np.ndarray
    lagrange_local: np.ndarray
    columns_local: np.ndarray
    ids_local: np.ndarray
    norm: str
    stop_reason: str
    threshold: float = 0.0
    history: list = field(default_factory=list)

    @property
    def n_terms(self) -> int:
        return len(self.point_ids)

    def coefficients(self, values_at_points: np.ndarray) -> np.ndarray:
        """Classical coefficients ``beta = B^-1 f(x_I, y)``; ``(d,)`` or ``(d, k)`` in, same out (eq. (2))."""
        v = np.asarray(values_at_points, dtype=float)
        if v.shape[0] != self.n_terms:
            raise EIMError(f"expected {self.n_terms} values at the interpolation points, got {v.shape[0]}")
        return sla.solve_triangular(self.B, v, lower=True, unit_diagonal=True)

    def interpolate_local(self, values_at_points: np.ndarray) -> np.ndarray:
        """``I_d f`` at this rank's rows from the values at the points: ``(n_local,)`` or ``(n_local, k)``."""
        return self.basis_local @ self.coefficients(values_at_points)

    def local_positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions in this rank's rows of the given global ids (-1 where not held here)."""
        return local_positions(self.ids_local, ids)


def local_positions(ids_local: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``(len(ids),)`` positions of global ``ids`` among ``ids_local`` (-1 where absent)."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(len(ids), -1, dtype=np.int64)
    if len(ids_local) == 0:
        return out
    order = np.argsort(ids_local, kind="stable")
    sorted_ids = ids_local[order]
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    hit = sorted_ids[pos] == ids
    out[hit] = order[pos[hit]]
    return out


def validate_samples(comm: MPI.Comm | None, samples, ids=None, parameters=None) -> tuple[np.ndarray, np.ndarray]:
    """Checks shapes, NaN / inf in samples and parameters, unique local ids; returns float arrays."""
    msg = None
    try:
        S = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        S, msg = np.zeros((0, 0)), f"samples cannot be converted to a float array: {exc}"
    if msg is None and S.ndim != 2:
        msg = f"samples must be 2-D (n_points, n_parameters), got shape {S.shape}"
    if msg is None:
        bad = ~np.isfinite(S)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            kind = "NaN" if np.isnan(S[i, j]) else "inf"
            msg = (f"samples contain {int(bad.sum())} non-finite values ({kind} first at local row {i}, "
                   f"parameter {j}); remove the failed snapshot or fix the export")
    if msg is None and parameters is not None:
        P = np.asarray(parameters, dtype=np.float64)
        P2 = P.reshape(len(P), -1) if P.ndim else P.reshape(1, 1)
        if len(P2) != S.shape[1]:
            msg = f"{len(P2)} parameter values for {S.shape[1]} sample columns"
        elif not np.all(np.isfinite(P2)):
            j = int(np.flatnonzero(~np.all(np.isfinite(P2), axis=1))[0])
            msg = f"parameter values contain NaN/inf (training parameter {j}: {P[j]!r})"
    raise_collectively(comm, msg)
    m = comm.allgather(S.shape[1]) if _dist.size(comm) > 1 else [S.shape[1]]
    raise_collectively(comm, None if len(set(m)) == 1 else f"ranks hold different numbers of parameters {m}")
    if ids is None:
        ids = _dist.default_ids(comm, S.shape[0])
    ids = np.asarray(ids, dtype=np.int64)
    msg = None
    if ids.shape != (S.shape[0],):
        msg = f"ids must have shape ({S.shape[0]},), got {ids.shape}"
    elif len(np.unique(ids)) != len(ids):
        msg = "ids contain duplicates: every point must be held by exactly one rank"
    raise_collectively(comm, msg)
    n_total = _dist.total_rows(comm, S.shape[0])
    raise_collectively(comm, None if n_total > 0 and m[0] > 0 else f"empty samples ({n_total} x {m[0]})")
    raise_collectively(comm, None if n_total < _dist.MAX_ROWS else f"more than {_dist.MAX_ROWS} points")
    return S, ids


def column_norms(comm: MPI.Comm | None, R: np.ndarray, norm: str, weights: np.ndarray | None) -> np.ndarray:
    """``(m,)`` norms over the points of the columns of ``R`` ``(n_local, m)``, rank-count independent.

    ``max``: ``max_x |R|``; ``l2``: ``sqrt(sum_x R^2)``; ``weighted_l2``: ``sqrt(sum_x (w R) R)``
    (sums exactly rounded, :func:`structrom.mpi.collectives.exact_column_sums`).
    """
    if norm == "max":
        # max |R| = max(max R, -min R): exact, and no |R| temporary.
        local = np.maximum(R.max(axis=0), -R.min(axis=0)) if R.shape[0] else np.zeros(R.shape[1])
        return _dist.allreduce_max(comm, local)
    terms = R * R if norm == "l2" else (weights[:, None] * R) * R
    return np.sqrt(_dist.exact_column_sums(comm, terms))


def select_column(comm: MPI.Comm | None, R: np.ndarray, norm: str, weights: np.ndarray | None,
                  used: np.ndarray, n_total: int) -> tuple[float, int]:
    """``(max_y ||R(., y)||, argmax over the unused columns)`` with the exact norms of
    :func:`column_norms` (ties: the lowest column), at the cost of plain sums.

    For the l2 norms, plain sums ``s~`` of the ``n_total`` non-negative terms (numpy's order on each rank,
    then an Allreduce over ``P`` ranks) satisfy ``|s~ - s| <= (n_total + P) eps s`` (Higham, Accuracy and
    Stability of Numerical Algorithms, 2nd ed., eq. (4.4), with a product's rounding per term). Only the
    columns whose plain sum is within ``delta = 2 (n_total + P + 2) eps`` (three times, for margin) of the
    largest one can hold the maximum or tie with it; their exact sums decide. The candidate set is the union
    over ranks, so every rank takes part in the same exact sums.
    """
    if norm == "max":
        norms = column_norms(comm, R, norm, weights)
        masked = np.where(used, -1.0, norms)
        return float(norms.max()), int(np.argmax(masked))
    local = np.einsum("ij,ij->j", R, R) if norm == "l2" else np.einsum("i,ij,ij->j", weights, R, R)
    plain = _dist.allreduce(comm, local)
    delta = 2.0 * (n_total + _dist.size(comm) + 2) * np.finfo(float).eps
    cut = 1.0 - 3.0 * delta
    unused = np.where(used, -1.0, plain)
    near = (plain >= plain.max() * cut) | ((unused >= unused.max() * cut) & ~used)
    near = _dist.allreduce_max(comm, near.astype(np.float64)) > 0
    cols = np.flatnonzero(near)
    exact = column_norms(comm, R[:, cols], norm, weights)
    free = np.where(used[cols], -1.0, exact)
    return float(exact.max()), int(cols[np.argmax(free)])


def _check_norm(comm, norm: str, weights, n_local: int) -> np.ndarray | None:
    if norm not in NORMS:
        raise EIMError(f"norm must be one of {NORMS}, got {norm!r}")
    if norm != "weighted_l2":
        if weights is not None:
            raise EIMError("weights given but norm is not 'weighted_l2'")
        return None
    msg = None
    w = np.asarray(weights if weights is not None else np.zeros(0), dtype=np.float64)
    if weights is None:
        msg = "norm 'weighted_l2' needs weights (n_local,)"
    elif w.shape != (n_local,):
        msg = f"weights must have shape ({n_local},), got {w.shape}"
    elif not np.all(np.isfinite(w)) or np.any(w < 0):
        msg = "weights must be finite and non-negative"
    raise_collectively(comm, msg)
    return w


def eim_greedy(samples, *, comm: MPI.Comm | None = None, ids=None, norm: str = "max",
               weights=None, tol: float = 0.0, rtol: float | None = None, max_terms: int | None = None,
               parameters=None, warn: bool = True) -> EIMResult:
    """Run the classical EIM greedy on ``samples`` ``(n_local, m)`` (rows on this rank).

    ``ids``: ``(n_local,)`` global ids (default: rows numbered rank after rank); ``norm``: ``"max"``
    (classical), ``"l2"`` or ``"weighted_l2"`` (then ``weights`` ``(n_local,)``, e.g. lumped mass or
    quadrature weights) for the parameter selection (1a); the point selection (1b) always maximizes
    ``|r|``. Stops after the first step ``k`` with ``errors[k] <= max(tol, rtol * errors[0])``, at
    ``max_terms``, when the error reaches the round-off floor ``ROUNDOFF * errors[0]``, or when every
    parameter / point is used. ``parameters`` (optional, ``(m, ...)``) only serves input checking.
    Warns (:class:`EIMWarning`) when a requested tolerance is below the round-off floor or is not
    reached. Collective over ``comm``.
    """
    S, ids = validate_samples(comm, samples, ids, parameters)
    w = _check_norm(comm, norm, weights, S.shape[0])
    for name, val in (("tol", tol), ("rtol", rtol)):
        if val is not None and (not math.isfinite(val) or val < 0):
            raise EIMError(f"{name} must be a finite non-negative number, got {val}")
    if max_terms is not None and max_terms < 1:
        raise EIMError(f"max_terms must be >= 1, got {max_terms}")
    n_local, m = S.shape
    n_total = _dist.total_rows(comm, n_local)
    cap = min(m, n_total, max_terms if max_terms is not None else m)
    R = S.copy()
    smax = float(_dist.allreduce_max(comm, np.array([np.abs(S).max() if n_local else 0.0]))[0])
    pivot_floor = ROUNDOFF * smax
    Q = np.zeros((n_local, cap))
    L = np.zeros((n_local, cap))
    B = np.zeros((cap, cap))
    rows_f = np.zeros((cap, m))
    point_ids: list[int] = []
    params: list[int] = []
    errors: list[float] = []
    pivots: list[float] = []
    lebesgue: list[float] = []
    cond_B: list[float] = []
    cond_F: list[float] = []
    used_param = np.zeros(m, dtype=bool)
    stop = "exhausted"
    threshold = floor = 0.0
    warned = False
    while True:
        k = len(point_ids)
        err, ky = select_column(comm, R, norm, w, used_param, n_total)
        errors.append(err)
        if k == 0:
            threshold = max(tol, (rtol or 0.0) * err)
            floor = ROUNDOFF * err
            if warn and (tol > 0 or (rtol or 0) > 0) and threshold < floor:
                warnings.warn(f"requested tolerance {threshold:.3e} is below the round-off level {floor:.3e} "
                              f"of the data (1000 eps times the largest sample norm {err:.3e}); the greedy "
                              "stops at round-off instead", EIMWarning, stacklevel=2)
                warned = True
        if err == 0.0:
            stop = "exact"
            break
        if err <= threshold:
            stop = "tolerance"
            break
        if err <= floor:
            stop = "round-off"
            break
        if k == cap:
            stop = "max_terms" if max_terms is not None and k == max_terms else "exhausted"
            break
        col = np.abs(R[:, ky])
        _, gid, owner = _dist.global_argmax(comm, col, ids)
        pos = None
        packed = None
        if _dist.size(comm) == 1 or comm.Get_rank() == owner:
            pos = int(np.flatnonzero(ids == gid)[0])
            packed = np.concatenate([R[pos], S[pos], Q[pos, :k], L[pos, :k]])
        packed = _dist.bcast_from(comm, owner, packed, 2 * m + 2 * k)
        r_row, f_row, q_row, l_row = packed[:m], packed[m:2 * m], packed[2 * m:2 * m + k], packed[2 * m + k:]
        pivot = float(r_row[ky])
        if abs(pivot) <= pivot_floor:  # the whole column is round-off: nothing left to interpolate
            stop = "round-off"
            break
        q = R[:, ky] / pivot
        R -= np.multiply.outer(q, r_row)
        L[:, :k] -= np.multiply.outer(q, l_row)
        L[:, k] = q
        Q[:, k] = q
        B[k, :k] = q_row
        B[k, k] = 1.0
        rows_f[k] = f_row
        point_ids.append(gid)
        params.append(ky)
        used_param[ky] = True
        pivots.append(pivot)
        s = np.abs(L[:, 0]).copy()
        for i in range(1, k + 1):
            s += np.abs(L[:, i])
        lebesgue.append(float(_dist.allreduce_max(comm, np.array([s.max() if n_local else 0.0]))[0]))
        cond_B.append(float(np.linalg.cond(B[:k + 1, :k + 1])))
        cond_F.append(float(np.linalg.cond(rows_f[:k + 1][:, params])))
    d = len(point_ids)
    if warn and not warned and (tol > 0 or (rtol or 0) > 0) and errors[-1] > threshold:
        warnings.warn(f"tolerance {threshold:.3e} not reached: greedy stopped ({stop}) after {d} terms "
                      f"with error {errors[-1]:.3e}", EIMWarning, stacklevel=2)
    pidx = np.array(params, dtype=np.int64)
    return EIMResult(point_ids=np.array(point_ids, dtype=np.int64), param_indices=pidx,
                     errors=np.array(errors), pivots=np.array(pivots), lebesgue=np.array(lebesgue),
                     cond_B=np.array(cond_B), cond_F=np.array(cond_F), B=B[:d, :d].copy(),
                     F=rows_f[:d][:, pidx].copy(), point_rows=rows_f[:d].copy(),
                     basis_local=Q[:, :d].copy(), lagrange_local=L[:, :d].copy(),
                     columns_local=S[:, pidx].copy(), ids_local=ids, norm=norm, stop_reason=stop,
                     threshold=threshold)
