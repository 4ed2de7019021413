"""Symmetric formulation of the EIM (Casenave, Ern, Lelievre, arXiv 1508.05330, Sect. 2).

With the selected points ``x_I`` and parameters ``y_J`` of a classical greedy,

    I_d f(x, y) = f(x, y_J) F^-1 f(x_I, y),      F = f(x_I, y_J)  (d x d)

is the same approximation as the classical one (eq. (2)), and it is symmetric in ``x`` and ``y``:
swapping the roles of the variables (``f^T`` with ``x_I`` <-> ``y_J``) gives the transpose. It needs
no basis functions: the "basis" are the sampled columns ``f(., y_J)`` themselves, which is what makes
the nonintrusive matrix separation possible (the columns are the training matrices ``A(mu_J)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from .errors import EIMError
from .greedy import EIMResult


@dataclass
class SymmetricInterpolant:
    """``I_d f = f(., y_J) F^-1 f(x_I, .)``.

    ``F`` ``(d, d)``: ``F[i, j] = f(x_i, y_j)``; ``point_ids`` ``(d,)``; ``param_indices`` ``(d,)``.
    The LU factors of ``F`` are computed once.
    """

    F: np.ndarray
    point_ids: np.ndarray
    param_indices: np.ndarray

    def __post_init__(self) -> None:
        self.F = np.asarray(self.F, dtype=float)
        d = len(self.point_ids)
        if self.F.shape != (d, d) or len(self.param_indices) != d:
            raise EIMError(f"F must be ({d}, {d}) for {d} points and {len(self.param_indices)} parameters, "
                           f"got {self.F.shape}")
        self._lu = sla.lu_factor(self.F) if d else None

    @classmethod
    def from_greedy(cls, result: EIMResult, n_terms: int | None = None) -> "SymmetricInterpolant":
        d = result.n_terms if n_terms is None else n_terms
        return cls(result.F[:d, :d], result.point_ids[:d], result.param_indices[:d])

    @property
    def n_terms(self) -> int:
        return len(self.point_ids)

    @property
    def condition(self) -> float:
        return float(np.linalg.cond(self.F)) if self.n_terms else 1.0

    def coefficients(self, values_at_points: np.ndarray) -> np.ndarray:
        """``beta(y) = F^-1 f(x_I, y)``: ``(d,)`` or ``(d, k)`` values in, same shape out."""
        v = np.asarray(values_at_points, dtype=float)
        if v.shape[0] != self.n_terms:
            raise EIMError(f"expected {self.n_terms} values at the interpolation points, got {v.shape[0]}")
        return sla.lu_solve(self._lu, v)

    def evaluate(self, columns: np.ndarray, values_at_points: np.ndarray) -> np.ndarray:
        """``f(x, y_J) beta(y)`` for the rows ``columns`` ``(n, d)`` (= ``f(., y_J)`` at those points)."""
        return np.asarray(columns) @ self.coefficients(values_at_points)

    def transpose(self) -> "SymmetricInterpolant":
        """The interpolant of ``g(y, x) = f(x, y)`` with the roles of points and parameters swapped."""
        return SymmetricInterpolant(self.F.T.copy(), self.param_indices.copy(), self.point_ids.copy())
