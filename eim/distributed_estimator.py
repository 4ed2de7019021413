"""Stabilized residual factor of :mod:`structrom.eim.estimator` with the residual vectors spread over ranks.

Given this rank's rows of ``Z = [b_1..b_Q, A_1 V, .., A_d V]`` ``(n_local, P)`` and of the Riesz
representatives ``Y = X^-1 Z`` (computed by the caller's solver, e.g. a PETSc KSP on the distributed ``X``),
twice-iterated classical Gram-Schmidt of the columns of ``Y`` in the ``X`` inner product gives ``Y = W R``
with ``W^T X W = I``; then ``||r||_{X'} = ||R theta||`` for ``r = Z theta`` (arXiv 1212.0970; the serial
version is :meth:`structrom.eim.estimator.ResidualEstimator.build`). ``X w`` is applied once per column by the
caller's distributed product. Every inner product is one allreduce; the result is the same for any number of
ranks up to round-off of the sums.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from structrom.mpi import collectives as _dist
from .errors import raise_collectively
from .estimator import ResidualEstimator

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

#: A column whose X-norm after orthogonalization is below this fraction of its initial X-norm is dependent.
DEPENDENCE_RTOL = 1e-14


def distributed_residual_estimator(comm: MPI.Comm | None, Z_local: np.ndarray, Y_local: np.ndarray,
                                   apply_X: Callable[[np.ndarray], np.ndarray]) -> ResidualEstimator:
    """``ResidualEstimator(G, R)`` from this rank's rows of ``Z`` and ``Y = X^-1 Z`` (both ``(n_local, P)``);
    ``apply_X(w)``: this rank's rows of ``X w`` for ``w`` ``(n_local,)`` (collective). Collective over ``comm``."""
    Z = np.asarray(Z_local, dtype=float)
    Y = np.asarray(Y_local, dtype=float)
    msg = None
    if Z.shape != Y.shape or Z.ndim != 2:
        msg = f"Z_local {Z.shape} and Y_local {Y.shape} must be 2-D of the same shape"
    elif not (np.all(np.isfinite(Z)) and np.all(np.isfinite(Y))):
        msg = "residual vectors or their Riesz representatives contain NaN/inf"
    raise_collectively(comm, msg)
    n, p = Z.shape
    G = _dist.allreduce(comm, Z.T @ Y)
    G = 0.5 * (G + G.T)
    W = np.zeros((n, p))
    XW = np.zeros((n, p))
    R = np.zeros((p, p))
    for j in range(p):
        w = Y[:, j].copy()
        for _ in range(2):
            c = _dist.allreduce(comm, XW[:, :j].T @ w) if j else np.zeros(0)
            w -= W[:, :j] @ c
            R[:j, j] += c
        # X w exactly (not by the recurrence X y_j = z_j, whose round-off is relative to ||z_j||: a nearly
        # dependent column would lose its X-orthogonality)
        xw = np.asarray(apply_X(w), dtype=float)
        nrm2 = float(_dist.allreduce(comm, np.array([w @ xw]))[0])
        if nrm2 <= DEPENDENCE_RTOL ** 2 * max(G[j, j], 0.0) or nrm2 <= 0.0:
            continue
        nrm = np.sqrt(nrm2)
        W[:, j] = w / nrm
        XW[:, j] = xw / nrm
        R[j, j] = nrm
    return ResidualEstimator(G, R)
