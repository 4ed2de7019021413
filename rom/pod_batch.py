"""POD of a whole distributed snapshot set at once: the Gram, TSQR and randomized methods and :func:`pod`.

* ``"gram"``: correlation ``C = sum_ranks S^T W S`` (Allreduce, ``n_s x n_s``), ``scipy.linalg.eigh``,
  modes ``S V Sigma^-1``; accurate for singular values down to ~``sqrt(eps)`` of the largest.
* ``"tsqr"``: tall-skinny QR of ``F^T S`` (``W = F F^T``, :func:`structrom.rom.pod_product._half_factor`);
  the ``n_s x n_s`` R factors are Allgathered and QR-ed again identically on every rank; the SVD of the
  final R gives singular values accurate down to ~``eps`` relative.
* ``"randomized"``: randomized range finder (seeded Gaussian test matrix, identical on all ranks,
  oversampling, power iterations) in the weighted product, for many snapshots and few wanted modes.

``S`` is ``(n_local_rows, n_s)`` on every rank; only ``n_s``-sized objects travel. All methods return a
:class:`~structrom.rom.pod_truncation.PODResult` truncated by the rule of :mod:`structrom.rom.pod_truncation`.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from mpi4py import MPI

from structrom.rom.pod_modes import _finish, _orthonormal_basis
from structrom.rom.pod_product import _Product, _validate_snapshots
from structrom.rom.pod_truncation import EPS, PODError, PODResult, _check_tolerance, _truncation

METHODS = ("gram", "tsqr", "randomized")


def _pod_gram(prod, S, tolerance, max_modes):
    C = prod.inner(S)
    total = float(np.trace(C))
    lam, V = sla.eigh(C)
    lam, V = lam[::-1], V[:, ::-1]
    n_s = len(lam)
    keep = lam > EPS * max(lam[0], 0.0) * n_s  # drop negative / round-off eigenvalues
    lam, V = lam[keep], V[:, keep]
    n = _truncation(lam, float(np.sum(lam)), tolerance, max_modes)
    sigma = np.sqrt(lam[:n])
    Phi = S @ (V[:, :n] / sigma)
    return _finish(prod, Phi, sigma, lam, float(np.sum(lam)), tolerance, "gram", trace=total)


def _pod_tsqr(prod, S, tolerance, max_modes):
    n_s = S.shape[1]
    B = prod.half(S)  # (m, n_s), B^T B = S^T W_local S
    R_loc = sla.qr(B, mode="r")[0] if B.shape[0] else np.zeros((0, n_s))
    R_loc = np.triu(R_loc[:n_s])
    R_pad = np.zeros((n_s, n_s))
    R_pad[: len(R_loc)] = R_loc
    stacked = np.empty((prod.comm.Get_size() * n_s, n_s))
    prod.comm.Allgather(np.ascontiguousarray(R_pad), stacked)
    R = sla.qr(stacked, mode="r")[0][:n_s] if prod.comm.Get_size() > 1 else R_pad
    _, s, Vt = sla.svd(R, lapack_driver="gesvd")
    keep = s > EPS * max(s[0], 0.0) * n_s  # round-off level of singular values (not of eigenvalues)
    s, V = s[keep], Vt[keep].T
    lam = s ** 2
    n = _truncation(lam, float(np.sum(lam)), tolerance, max_modes)
    sigma = s[:n]
    Phi = S @ (V[:, :n] / sigma)
    return _finish(prod, Phi, sigma, lam, float(np.sum(lam)), tolerance, "tsqr")


def _pod_randomized(prod, S, tolerance, max_modes, oversampling, power_iterations, seed, initial_rank):
    n_s = S.shape[1]
    total = float(np.sum(prod.column_energy(S)))
    rng = np.random.default_rng(seed)  # same seed -> same test matrix on every rank
    k = min(n_s, (max_modes if max_modes is not None else initial_rank) + oversampling)
    rtol = np.sqrt(EPS) * 10
    while True:
        omega = rng.standard_normal((n_s, k))
        Y = _orthonormal_basis(prod, S @ omega, rtol)
        for _ in range(power_iterations):  # subspace iteration, re-orthonormalized after S^T W and S
            Z = sla.qr(prod.inner(S, Y), mode="economic")[0]  # (n_s, r), identical on all ranks
            Y = _orthonormal_basis(prod, S @ Z, rtol)
        T = prod.inner(Y, S)  # (r, n_s) = Y^T W S
        Ut, s, _ = sla.svd(T, full_matrices=False, lapack_driver="gesvd")
        keep = s > EPS * max(s[0], 0.0) * n_s if len(s) else np.zeros(0, bool)
        s, Ut = s[keep], Ut[:, keep]
        lam = s ** 2
        n = _truncation(lam, total, tolerance, max_modes)
        captured = total - float(np.sum(lam[:n])) <= tolerance ** 2 * total
        if max_modes is not None or captured or k >= n_s or len(s) < Y.shape[1] or len(s) < k:
            break
        k = min(n_s, 2 * k)
    Phi = Y @ Ut[:, :n]
    return _finish(prod, Phi, s[:n], lam, total, tolerance, "randomized", sketch_size=int(k))


def pod(
    comm: MPI.Comm | None,
    snapshots_local: np.ndarray,
    weight_local: sp.spmatrix | np.ndarray | None = None,
    owned: np.ndarray | None = None,
    *,
    tolerance: float = 1e-6,
    max_modes: int | None = None,
    method: str = "gram",
    global_rows: np.ndarray | None = None,
    oversampling: int = 10,
    power_iterations: int = 2,
    seed: int = 0,
    initial_rank: int = 10,
) -> PODResult:
    """POD of distributed snapshots in the weighted product (collective over ``comm``).

    ``snapshots_local``: ``(n_local_rows, n_snapshots)``; ``weight_local``: ``(n_local_rows,
    n_local_rows)`` symmetric PSD (sparse or dense), or ``(n_local_rows,)`` lumped weights, or None
    with ``owned`` ``(n_local_rows,)`` bool (Euclidean on owned rows); ``global_rows``:
    ``(n_local_rows,)`` global row ids (for a sign convention independent of the rank count).
    ``tolerance`` in (0, 1): relative energy error (see the module docstring for the criterion);
    ``max_modes``: cap on the number of modes (for ``"randomized"``: the target rank, sketch size
    ``max_modes + oversampling``; without it the sketch starts at ``initial_rank + oversampling`` and
    doubles until the energy criterion, measured against the exact total energy ``trace(C)``, holds).

    Raises :class:`PODError` (on every rank) for bad input.
    """
    comm = MPI.COMM_SELF if comm is None else comm
    _check_tolerance(tolerance, max_modes)
    if method not in METHODS:
        raise PODError(f"method must be one of {METHODS} (or use IncrementalPOD for streaming), got {method!r}")
    S = _validate_snapshots(comm, snapshots_local)
    prod = _Product(comm, S.shape[0], weight_local, owned, global_rows)
    if method == "gram":
        return _pod_gram(prod, S, tolerance, max_modes)
    if method == "tsqr":
        return _pod_tsqr(prod, S, tolerance, max_modes)
    if oversampling < 0 or power_iterations < 0:
        raise PODError("oversampling and power_iterations must be >= 0")
    return _pod_randomized(prod, S, tolerance, max_modes, oversampling, power_iterations, seed, initial_rank)
