"""The result of a POD and its truncation rule (how many modes a POD keeps).

:class:`PODResult` holds this rank's rows of the modes ``(n_local_rows, N)``, the singular values ``(N,)``
and the eigenvalues ``(M,)`` of the correlation matrix (``lambda_i = sigma_i^2``, in the squared units of
the snapshots times those of the weight). The truncation criterion (exact): the number of modes is the
smallest ``N`` such that::

    sum_{i > N} lambda_i <= tolerance^2 * sum_i lambda_i

i.e. the relative projection error of the snapshot set in the energy (Frobenius, weighted) sense
``sqrt(sum_j ||s_j - P s_j||^2 / sum_j ||s_j||^2) <= tolerance``; then ``N = min(N, max_modes)``. When
only part of the spectrum is computed, the energy outside it (``total - sum(eigenvalues)``) counts as
discarded. Shared by every method of :mod:`structrom.rom.pod` and by other snapshot compressions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from structrom.mpi.errors import StructromError

EPS = float(np.finfo(float).eps)


class PODError(StructromError, ValueError):
    """Bad POD input (names the field and the fix)."""


@dataclass
class PODResult:
    """Outcome of a POD.

    ``modes_local``: ``(n_local_rows, N)`` this rank's rows of the modes, orthonormal in the weighted
    product; ``singular_values``: ``(N,)`` square roots of the retained eigenvalues, descending;
    ``eigenvalues``: ``(M,)`` the non-negative eigenvalues of the correlation matrix above round-off,
    descending (``M = `` numerical rank; for ``"randomized"`` only the ``M`` computed ones);
    ``tolerance``: the requested relative energy tolerance; ``total_energy``: ``sum_j ||s_j||_W^2``
    (trace of the correlation matrix; defaults to ``eigenvalues.sum()``).
    """

    modes_local: np.ndarray
    singular_values: np.ndarray
    eigenvalues: np.ndarray
    tolerance: float
    total_energy: float | None = None
    method: str = "gram"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.total_energy is None:
            self.total_energy = float(np.sum(self.eigenvalues))

    @property
    def n_modes(self) -> int:
        return int(self.modes_local.shape[1])

    def discarded_energy(self) -> float:
        """``sum_{i > N} lambda_i`` (plus the energy outside the computed spectrum, if partial)."""
        n = self.n_modes
        tail = float(np.sum(self.eigenvalues[n:]))
        return tail + _outside(float(self.total_energy), self.eigenvalues)

    def relative_energy_error(self) -> float:
        """``sqrt(sum discarded / sum all)``: the relative (weighted Frobenius) projection error."""
        total = float(self.total_energy)
        return float(np.sqrt(self.discarded_energy() / total)) if total > 0 else 0.0


def _check_tolerance(tolerance: float, max_modes: int | None) -> None:
    if not (isinstance(tolerance, (int, float)) and 0.0 < float(tolerance) < 1.0):
        raise PODError(f"tolerance must be in (0, 1) (relative energy error, e.g. 1e-6), got {tolerance!r}")
    if max_modes is not None and (not isinstance(max_modes, (int, np.integer)) or max_modes < 1):
        raise PODError(f"max_modes must be a positive integer or None, got {max_modes!r}")


def _outside(total: float, eigenvalues: np.ndarray) -> float:
    """Energy outside the computed spectrum, ``total - sum(eigenvalues)``; differences below the
    round-off of that subtraction (``64 eps total``) count as zero."""
    out = total - float(np.sum(eigenvalues))
    return out if out > 64 * EPS * total else 0.0


def _truncation(eigenvalues: np.ndarray, total: float, tolerance: float, max_modes: int | None) -> int:
    """Smallest ``N`` with ``total - sum_{i<=N} lambda_i <= tolerance^2 total`` (tail summed exactly when
    the spectrum is complete), capped by ``max_modes`` and by the number of eigenvalues."""
    lam = np.asarray(eigenvalues, dtype=float)
    m = len(lam)
    if m == 0:
        return 0
    outside = _outside(total, lam)
    # tails[N] = sum_{i >= N} lam_i (0-based), summed from the small end for accuracy
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]]) + outside
    ok = np.flatnonzero(tails <= tolerance ** 2 * total)
    n = int(ok[0]) if ok.size else m
    n = max(n, 1)
    if max_modes is not None:
        n = min(n, int(max_modes))
    return min(n, m)
