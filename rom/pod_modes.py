"""Final steps shared by the POD methods: weighted re-orthonormalization and the sign convention of the modes.

Every retained mode set ``Phi`` ``(n_local_rows, N)`` is re-orthonormalized by one weighted Cholesky-QR pass
(``Phi R^-1`` with ``R^T R = Phi^T W Phi``), which removes the loss of orthogonality of ``S V Sigma^-1`` for
small singular values without changing the spanned spaces of the leading modes. Then each mode is multiplied
by +-1 so that its entry of largest magnitude is positive; entries within a relative :data:`SIGN_TIE_RTOL`
of the largest magnitude count as ties and the lowest global row among them decides (independent of the
number of ranks when ``global_rows`` is given). All steps work by row blocks and are collective.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.rom.pod_product import _Product
from structrom.rom.pod_truncation import PODResult

#: Relative tolerance under which two entries' magnitudes tie for the sign convention.
SIGN_TIE_RTOL = 1e-8


def _reorthonormalize(prod: _Product, Phi: np.ndarray) -> np.ndarray:
    """One weighted Cholesky-QR pass ``Phi R^-1`` (second pass if still off by more than 1e-13)."""
    for _ in range(2):
        if Phi.shape[1] == 0:
            return Phi
        G = prod.inner(Phi)
        if np.max(np.abs(G - np.eye(len(G)))) <= 1e-14:
            return Phi
        try:
            R = sla.cholesky(G, lower=False)
        except sla.LinAlgError:
            return Phi
        if not (Phi.flags.owndata and Phi.flags.c_contiguous):
            Phi = np.array(Phi, order="C")  # never overwrite the caller's array
        for a, b in prod._blocks(Phi.shape[1]):  # Phi <- Phi R^-1 in place, by row blocks
            Phi[a:b] = sla.solve_triangular(R, Phi[a:b].T, trans="T", lower=False).T
    return Phi


def _fix_signs(prod: _Product, Phi: np.ndarray) -> np.ndarray:
    """Make each mode's largest-magnitude entry positive, ties (rel. 1e-8) -> lowest global row."""
    comm, n_modes = prod.comm, Phi.shape[1]
    if n_modes == 0:
        return Phi
    blocks = list(prod._blocks(n_modes))  # by row blocks: no full-size temporaries
    local_max = np.zeros(n_modes)
    for a, b in blocks:
        local_max = np.maximum(local_max, np.abs(Phi[a:b]).max(axis=0))
    gmax = np.empty(n_modes)
    comm.Allreduce(np.ascontiguousarray(local_max), gmax, op=MPI.MAX)
    big = np.iinfo(np.int64).max
    local_row = np.full(n_modes, big)
    for a, b in blocks:
        cand = np.where(np.abs(Phi[a:b]) >= (1.0 - SIGN_TIE_RTOL) * gmax[None, :], prod.global_rows[a:b, None], big)
        local_row = np.minimum(local_row, cand.min(axis=0))
    grow = np.empty(n_modes, dtype=np.int64)
    comm.Allreduce(np.ascontiguousarray(local_row, dtype=np.int64), grow, op=MPI.MIN)
    votes = np.zeros(n_modes)
    for a, b in blocks:
        votes += np.sum(np.sign(Phi[a:b]) * (prod.global_rows[a:b, None] == grow[None, :]), axis=0)
    votes = prod.allreduce(votes)
    signs = np.where(votes < 0, -1.0, 1.0)
    if not Phi.flags.owndata:  # a view of the caller's array (e.g. IncrementalPOD's modes): leave it alone
        return Phi * signs[None, :]
    Phi *= signs[None, :]
    return Phi


def _finish(prod: _Product, Phi: np.ndarray, sigma: np.ndarray, eigenvalues: np.ndarray, total: float,
            tolerance: float, method: str, **extra) -> PODResult:
    Phi = _fix_signs(prod, _reorthonormalize(prod, Phi))
    return PODResult(np.ascontiguousarray(Phi), np.asarray(sigma, dtype=float),
                     np.asarray(eigenvalues, dtype=float), float(tolerance), float(total), method, extra)


def _orthonormal_basis(prod: _Product, Y: np.ndarray, rtol: float) -> np.ndarray:
    """W-orthonormal basis of the span of ``Y``'s columns (directions below ``rtol`` dropped)."""
    G = prod.inner(Y)
    lam, V = sla.eigh(G)
    lam, V = lam[::-1], V[:, ::-1]
    keep = lam > rtol ** 2 * max(lam[0], 0.0) if len(lam) else np.zeros(0, bool)
    if not np.any(keep):
        return Y[:, :0]
    Q = Y @ (V[:, keep] / np.sqrt(lam[keep]))
    return _reorthonormalize(prod, Q)
