"""Streaming POD: :class:`IncrementalPOD` (Brand-style incremental SVD) and :func:`update_pod`.

Snapshot batches ``(n_local_rows, b)`` arrive one at a time and only the modes ``(n_local_rows, k)`` and the
singular values ``(k,)`` are kept, in the same distributed weighted product as the batch methods of
:mod:`structrom.rom.pod_batch`; the total energy ``sum_j ||s_j||_W^2`` is tracked exactly so that the
truncation rule of :mod:`structrom.rom.pod_truncation` accounts for what intermediate truncations dropped.
:func:`update_pod` enriches an existing POD with new snapshots without the old ones (one incremental step).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.rom.pod_modes import _finish
from structrom.rom.pod_product import _Product, _raise_collectively, _validate_snapshots
from structrom.rom.pod_truncation import EPS, PODError, PODResult, _check_tolerance, _truncation

class IncrementalPOD:
    """Streaming POD: snapshot batches arrive one at a time; only the modes and singular values are kept.

    Brand's incremental SVD in the weighted product: for a batch ``B`` ``(n_local_rows, b)``,
    ``P = Phi^T W B`` and the residual ``B - Phi P`` (projected twice) is W-orthonormalized
    (``Q_r R_r``, directions below ``sqrt(n eps)`` of the scale dropped); the SVD of the small
    ``[[diag(sigma), P], [0, R_r]]`` updates ``Phi <- [Phi, Q_r] U`` and ``sigma``. After each update
    the trailing singular values are re-truncated with ``update_tolerance`` (default
    ``tolerance / 10``) against the running total energy ``sum_j ||s_j||_W^2`` (tracked exactly), and
    to ``max_rank`` if given. The discarded energy accumulates and is accounted for in
    :meth:`result` (``total_energy`` is the exact total, so ``relative_energy_error`` includes it).
    The constructor arguments have the meaning of :func:`pod`'s; calls are collective.
    """

    def __init__(self, comm: MPI.Comm | None, weight_local=None, owned=None, *, n_local_rows: int | None = None,
                 tolerance: float = 1e-6, max_modes: int | None = None, max_rank: int | None = None,
                 update_tolerance: float | None = None, global_rows: np.ndarray | None = None) -> None:
        self.comm = MPI.COMM_SELF if comm is None else comm
        _check_tolerance(tolerance, max_modes)
        self.tolerance = float(tolerance)
        self.max_modes = max_modes
        self.max_rank = max_rank
        self.update_tolerance = tolerance / 10 if update_tolerance is None else float(update_tolerance)
        self._args = (weight_local, owned, global_rows)
        self._prod: _Product | None = None
        if n_local_rows is not None:
            self._prod = _Product(self.comm, n_local_rows, *self._args)
        self.modes: np.ndarray | None = None
        self.sigma = np.zeros(0)
        self.total_energy = 0.0
        self.n_snapshots = 0

    def update(self, batch_local: np.ndarray) -> None:
        """Add a batch ``(n_local_rows, b)`` (or one snapshot ``(n_local_rows,)``) of snapshots."""
        B = np.asarray(batch_local, dtype=float)
        if B.ndim == 1:
            B = B[:, None]
        B = _validate_snapshots(self.comm, B, "batch_local")
        if self._prod is None:
            self._prod = _Product(self.comm, B.shape[0], *self._args)
        prod = self._prod
        mismatch = None if B.shape[0] == prod.n_rows else (
            f"batch_local has {B.shape[0]} rows but earlier batches (or n_local_rows) had {prod.n_rows}: keep "
            "the same local rows for all batches")
        _raise_collectively(self.comm, mismatch)
        Phi = self.modes if self.modes is not None else np.zeros((prod.n_rows, 0))
        k = Phi.shape[1]
        energy = prod.column_energy(B)
        self.total_energy += float(np.sum(energy))
        self.n_snapshots += B.shape[1]
        P = prod.inner(Phi, B)
        Rres = B - Phi @ P
        P2 = prod.inner(Phi, Rres)  # second projection pass (classical Gram-Schmidt twice)
        Rres -= Phi @ P2
        P += P2
        scale2 = max(float(np.max(energy)), float(self.sigma[0]) ** 2 if k else 0.0)
        G = prod.inner(Rres)
        lam, V = sla.eigh(G)
        lam, V = lam[::-1], V[:, ::-1]
        keep = lam > EPS * 64 * scale2  # residual norms below ~1e-7 of the scale are round-off
        Qr = Rres @ (V[:, keep] / np.sqrt(lam[keep]))
        Rr = np.sqrt(lam[keep])[:, None] * V[:, keep].T  # (r, b): Rres ~= Qr Rr
        if Qr.shape[1]:
            C = prod.inner(Phi, Qr)  # re-orthogonalize against Phi, then within Qr
            Qr2 = Qr - Phi @ C
            G2 = prod.inner(Qr2)
            try:
                R2 = sla.cholesky(G2, lower=False)
                Qr = sla.solve_triangular(R2, Qr2.T, trans="T", lower=False).T
                P = P + C @ Rr
                Rr = R2 @ Rr
            except sla.LinAlgError:
                pass
        r = Qr.shape[1]
        K = np.zeros((k + r, k + B.shape[1]))
        K[:k, :k] = np.diag(self.sigma)
        K[:k, k:] = P
        K[k:, k:] = Rr
        U, s, _ = sla.svd(K, full_matrices=False, lapack_driver="gesvd")
        keep_s = s > EPS * max(s[0], 0.0) * (k + B.shape[1]) if len(s) else np.zeros(0, bool)
        s, U = s[keep_s], U[:, keep_s]
        n = _truncation(s ** 2, self.total_energy, self.update_tolerance, self.max_rank)
        self.modes = np.hstack([Phi, Qr]) @ U[:, :n]
        self.sigma = s[:n]

    def result(self) -> PODResult:
        """The POD of all snapshots seen so far, truncated with ``tolerance`` / ``max_modes``."""
        if self._prod is None or self.modes is None:
            raise PODError("IncrementalPOD has no snapshots: call update(batch_local) at least once")
        lam = self.sigma ** 2
        n = _truncation(lam, self.total_energy, self.tolerance, self.max_modes)
        return _finish(self._prod, self.modes[:, :n], self.sigma[:n], lam, self.total_energy,
                       self.tolerance, "incremental", n_snapshots=self.n_snapshots)


def update_pod(comm: MPI.Comm | None, modes_local: np.ndarray, singular_values: np.ndarray, total_energy: float,
               new_snapshots_local: np.ndarray, weight_local=None, owned=None, *, tolerance: float = 1e-6,
               max_modes: int | None = None, global_rows: np.ndarray | None = None) -> PODResult:
    """Enrich an existing POD with new snapshots, without the old snapshots (collective over ``comm``).

    ``modes_local`` ``(n_local_rows, N)``: the current modes (orthonormal in the weighted product);
    ``singular_values`` ``(N,)``: theirs; ``total_energy``: ``sum_j ||s_j||_W^2`` of the snapshots they
    came from (at least ``sum sigma^2``; the part not in ``sigma`` counts as already discarded);
    ``new_snapshots_local`` ``(n_local_rows, b)``. One step of :class:`IncrementalPOD` (Brand 2002): the
    new snapshots are orthogonalized against the modes in the weighted product (twice), the residual
    block is orthonormalized, the SVD of the small ``(N + r) x (N + b)`` core
    ``[[diag(sigma), Phi^T W B], [0, R]]`` rotates ``[Phi, Q]``, and the result is truncated with
    ``tolerance`` against the total energy of old and new snapshots (:func:`pod`'s criterion). Since
    ``S_old ~= Phi diag(sigma) V^T``, this is the POD of the union up to the energy the old truncation
    discarded. Returns a :class:`PODResult` (``method="update"``).
    """
    inc = IncrementalPOD(comm, weight_local, owned, n_local_rows=np.shape(modes_local)[0], tolerance=tolerance,
                         max_modes=max_modes, update_tolerance=tolerance, global_rows=global_rows)
    sigma = np.asarray(singular_values, dtype=float)
    if np.shape(modes_local)[1] != len(sigma):
        raise PODError(f"modes_local has {np.shape(modes_local)[1]} columns but singular_values has {len(sigma)} "
                       "entries: pass the singular values of these modes")
    inc.modes = np.asarray(modes_local, dtype=float)
    inc.sigma = sigma
    inc.total_energy = max(float(total_energy), float(np.sum(sigma ** 2)))
    inc.update(new_snapshots_local)
    res = inc.result()
    res.method = "update"
    return res
