"""Gappy POD at the reduced points: least-squares coefficients and the relative residual (the indicator)."""
from __future__ import annotations

import numpy as np

#: Singular values of the reduced basis below this fraction of the largest are treated as zero.
RCOND = 1e-12


class Gappy:
    """Least-squares fit ``beta* = argmin ||v - Psi_rp beta||`` of values ``v`` at the reduced points.

    ``reduced_basis``: ``Psi_rp`` ``(n_rp * c, m)`` (point-major rows). Pre-factorized once (thin SVD,
    rank-revealing with :data:`RCOND`), so each fit costs ``O(n_rp c m)``.
    """

    def __init__(self, reduced_basis: np.ndarray, components: int) -> None:
        self.basis = np.asarray(reduced_basis, dtype=float)
        self.components = int(components)
        if self.basis.shape[1] == 0:
            self.U = np.zeros((self.basis.shape[0], 0))
            self.pinv = np.zeros((0, self.basis.shape[0]))
            return
        U, s, Vt = np.linalg.svd(self.basis, full_matrices=False)
        keep = s > RCOND * s[0] if s.size and s[0] > 0 else np.zeros(len(s), bool)
        self.U = U[:, keep]
        self.pinv = (Vt[keep].T / s[keep]) @ U[:, keep].T  # (m, n_rp c)

    @property
    def n_modes(self) -> int:
        """Columns of the basis: 0 for a quantity that was zero in every training snapshot."""
        return int(self.basis.shape[1])

    def coefficients(self, values: np.ndarray) -> np.ndarray:
        """``beta*`` ``(m,)`` (or ``(m, k)`` for ``k`` value sets ``(n_rp * c, k)``)."""
        return self.pinv @ values

    def residual_norms(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(||v - Psi_rp beta*||, ||v||)`` ``(k,)`` each, for ``k`` value sets ``(k, ...)`` (each with
        ``n_rp * c`` values), in one product."""
        V = np.asarray(values, dtype=float).reshape(len(values), -1)  # (k, n_rp c)
        R = V - (V @ self.U) @ self.U.T
        return np.sqrt(np.einsum("ij,ij->i", R, R)), np.sqrt(np.einsum("ij,ij->i", V, V))

    def indicators(self, values: np.ndarray, reference: float = 0.0, history: bool = False) -> np.ndarray:
        """``||v - Psi_rp beta*|| / max(||v||, reference)`` ``(k,)`` for ``k`` value sets ``(k, ...)``
        (0 where both norms are 0).

        ``history``: the ``k`` value sets are the increments of one answer, and ``||v||`` of increment
        ``i`` is replaced by its running maximum ``max_{j <= i} ||v_j||`` (the residual relative to the
        largest value of the answer so far, as its true errors are measured: an unloaded increment's small
        residual stress does not make a small absolute residual look large).

        With ``reference`` the largest training norm of the quantity at the reduced points, the residual
        is measured against the training scale while ``||v||`` is small (e.g. the first plastic
        increments, where ``||p_rp||`` -> 0 makes the purely relative residual of Casenave & Akkari
        (2019) blow up for a negligible error) and relative to ``||v||`` beyond the training range."""
        r, nv = self.residual_norms(values)
        if history and nv.size:
            nv = np.maximum.accumulate(nv)
        den = np.maximum(nv, float(reference))
        return np.divide(r, den, out=np.zeros_like(r), where=den > 0.0)

    def indicator(self, values: np.ndarray, reference: float = 0.0) -> float:
        """:meth:`indicators` of one value set (``n_rp * c`` values, any shape)."""
        return float(self.indicators(np.asarray(values, dtype=float).reshape(1, -1), reference)[0])

    def relative_residual(self, values: np.ndarray) -> float:
        """``||v - Psi_rp beta*|| / ||v||``; 0 when ``||v|| == 0`` (nothing to approximate)."""
        return self.indicator(values, 0.0)
