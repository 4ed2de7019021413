"""Validation points of the error indicator: integration points kept out of the reduced set.

:func:`select_validation_points` (collective): half evenly spread over the global point numbering, half
where the training plastic strain is largest (outside the reduced set), with non-negative weights fitted to
the training integrand (``scipy.optimize.nnls`` with a small Tikhonov term towards the rescaled FE
weights, so that the fit is unique and the same for any rank count to round-off): a second, independent
cubature of the same integrals. :func:`gather_at_points` and :func:`interpolation_rows` /
:func:`assemble_rows` bring their per-point data to rank 0.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from scipy.optimize import nnls

from structrom.mpi.assembly import gather_rows_to_root
from structrom.rom.fem.kernel import Discretization
from structrom.rom.integrand import Integrand, as_integrand

#: Tikhonov weight of the validation cubature fit, relative to the norm of the integrand matrix.
NNLS_REGULARIZATION = 1e-3


def _positions(gidx: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(local, where)``: local indices of this rank's points among ``points`` and their positions there."""
    order = np.argsort(points)
    pos = np.searchsorted(points[order], gidx)
    pos = np.minimum(pos, max(len(points) - 1, 0))
    hit = (points[order][pos] == gidx) if len(points) else np.zeros(len(gidx), bool)
    return np.flatnonzero(hit), order[pos[hit]]


def gather_at_points(comm: MPI.Comm, gidx: np.ndarray, values: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """``values`` ``(n_points_local, ...)`` at the global ``points`` ``(n,)`` -> ``(n, ...)`` on rank 0."""
    local, where = _positions(gidx, points)
    return gather_rows_to_root(comm, where, values[local], len(points))


def select_validation_points(comm: MPI.Comm, gidx: np.ndarray, point_weights: np.ndarray,
                             G_local: np.ndarray | Integrand,
                             reduced_points: np.ndarray, p_local: np.ndarray | None, n_points: int,
                             n_validation: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation points (global numbers, sorted) and their NNLS cubature weights, the same on every rank.

    ``G_local``: ``(n_rows, n_points_local)`` training integrand (the cubature's: a matrix or an integrand of
    :mod:`structrom.rom.integrand`); ``p_local``:
    ``(n_points_local, n_snap)`` training cumulated plastic strain or None; ``n_points``: global count."""
    excluded = np.zeros(n_points, bool)
    excluded[reduced_points] = True
    free = np.flatnonzero(~excluded)
    n_val = min(n_validation, len(free))
    if n_val == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    spread = free[np.unique(np.linspace(0, len(free) - 1, max(n_val // 2, 1)).round().astype(np.int64))]
    chosen = set(spread.tolist())
    if p_local is not None and p_local.size:
        peak = p_local.max(axis=1)
        # peaks compared at 1e-9 of the largest: points equal by symmetry differ only by the round-off of
        # the partition (e.g. a lifting's distributed elastic solves), so their order is the global number's
        top = float(comm.allreduce(float(peak.max(initial=0.0)), op=MPI.MAX))
        if top > 0:
            peak = np.round(peak / top * 1e9)
        mine = ~np.isin(gidx, reduced_points) & ~np.isin(gidx, spread) & (peak > 0)
        cand = np.stack([gidx[mine].astype(float), peak[mine]], axis=1)
        order = np.lexsort((cand[:, 0], -cand[:, 1]))[: n_val]
        allc = np.concatenate(comm.allgather(cand[order]))
        if len(allc):
            best = np.lexsort((allc[:, 0], -allc[:, 1]))
            for g in allc[best, 0].astype(np.int64):
                if len(chosen) >= n_val:
                    break
                chosen.add(int(g))
    rest = np.setdiff1d(free, np.fromiter(chosen, np.int64, len(chosen)))
    if len(chosen) < n_val and len(rest):
        extra = rest[np.unique(np.linspace(0, len(rest) - 1, n_val - len(chosen)).round().astype(np.int64))]
        chosen.update(extra.tolist())
    points = np.array(sorted(chosen), dtype=np.int64)
    return points, validation_weights(comm, gidx, point_weights, G_local, points)


def validation_weights(comm: MPI.Comm, gidx: np.ndarray, point_weights: np.ndarray,
                       G_local: np.ndarray | Integrand, points: np.ndarray) -> np.ndarray:
    """Non-negative cubature weights ``(n_val,)`` at the global validation ``points`` for the integrand
    ``G_local`` ``(n_rows, n_points_local)`` (as in :func:`select_validation_points`) and the volume, the same on
    every rank (collective)."""
    # NNLS weights: G_val w ~ G w_FE, plus the volume (the constant integrand), rows scaled alike
    G = as_integrand(G_local)
    b = G.weighted_sums(comm, np.asarray(point_weights, float))
    volume = comm.allreduce(float(point_weights.sum()))
    local, where = _positions(gidx, points)
    G_val = gather_rows_to_root(comm, where, np.ascontiguousarray(G.columns(local).T), len(points))
    w_fe_sel = gather_at_points(comm, gidx, np.asarray(point_weights, float), points)
    weights = None
    if comm.Get_rank() == 0:
        c = np.linalg.norm(b) / max(volume, 1e-300)
        A = np.vstack([G_val.T, c * np.ones(len(points))])
        rhs = np.concatenate([b, [c * volume]])
        # Tikhonov term towards the FE weights rescaled to the volume: a strictly convex problem, so the
        # weights are unique and continuous in the data (the same for any rank count to round-off),
        # where plain NNLS picks one of many near-optimal active sets
        w0 = w_fe_sel * volume / max(w_fe_sel.sum(), 1e-300)
        lam = NNLS_REGULARIZATION * np.linalg.norm(A, 2)
        weights, _ = nnls(np.vstack([A, lam * np.eye(len(points))]), np.concatenate([rhs, lam * w0]),
                          maxiter=50 * A.shape[1])
    return comm.bcast(weights, root=0)


def interpolation_rows(disc: Discretization, gidx: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
    """This rank's rows of the temperature interpolation at the global ``points``: (positions, CSR rows)."""
    local, where = _positions(gidx, points)
    return where, disc.temperature_operator().tocsr()[local]


def assemble_rows(parts, n: int, n_nodes: int) -> sp.csr_matrix:
    """Rank 0: the gathered ``(positions, rows)`` parts as one CSR ``(n, n_nodes)`` in position order."""
    where = np.concatenate([w for w, _ in parts]) if parts else np.zeros(0, np.int64)
    M = sp.vstack([m for _, m in parts]).tocsr() if parts else sp.csr_matrix((0, n_nodes))
    out = sp.csr_matrix((n, n_nodes))
    if len(where):
        out = sp.csr_matrix(M[np.argsort(where)])
    return out
