"""Rectangular extension of the EIM (Casenave, Ern, Lelievre, arXiv 1508.05330, Sect. 4).

The numbers of selected points ``p`` and parameters ``d`` may differ:

    I f(x, y) = f(x, y_J) F^+ f(x_I, y),      F = f(x_I, y_J)  (p x d)

with ``F^+`` the Moore-Penrose pseudo-inverse (truncated SVD, ``rcond``): for ``p > d`` a least-squares
fit of the ``d`` fields to the ``p`` point values, for ``p < d`` the minimum-norm combination that
interpolates at the ``p`` points. ``p = d`` is the symmetric EIM.

Use case (sensor failure): run the greedy for ``d + e`` steps, keep the first ``d`` fields and all
``d + e`` points (:meth:`RectangularInterpolant.from_greedy`); when a sensor breaks,
:meth:`RectangularInterpolant.drop_points` removes it and the least-squares fit on the remaining
points keeps (nearly) the accuracy of the ``d``-term EIM, and keeps the field associated with the
broken sensor.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import numpy as np

from structrom.mpi import collectives as _dist
from .errors import EIMError
from .greedy import EIMResult

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

DEFAULT_RCOND = 1e-13


@dataclass
class RectangularInterpolant:
    """``I f = f(., y_J) F^+ f(x_I, .)``; ``F`` ``(p, d)``, ``point_ids`` ``(p,)``, ``param_indices`` ``(d,)``."""

    F: np.ndarray
    point_ids: np.ndarray
    param_indices: np.ndarray
    rcond: float = DEFAULT_RCOND

    def __post_init__(self) -> None:
        self.F = np.asarray(self.F, dtype=float)
        self.point_ids = np.asarray(self.point_ids, dtype=np.int64)
        self.param_indices = np.asarray(self.param_indices, dtype=np.int64)
        if self.F.shape != (len(self.point_ids), len(self.param_indices)):
            raise EIMError(f"F must be ({len(self.point_ids)}, {len(self.param_indices)}), got {self.F.shape}")
        if len(self.point_ids) == 0:
            raise EIMError("a rectangular interpolant needs at least one point")
        U, s, Vt = np.linalg.svd(self.F, full_matrices=False)
        keep = s > self.rcond * s[0] if len(s) and s[0] > 0 else np.zeros(len(s), bool)
        self.rank = int(keep.sum())
        self.singular_values = s
        self._pinv = (Vt[keep].T / s[keep]) @ U[:, keep].T  # (d, p)

    @classmethod
    def from_greedy(cls, result: EIMResult, n_points: int | None = None, n_params: int | None = None,
                    rcond: float = DEFAULT_RCOND) -> "RectangularInterpolant":
        """First ``n_points`` points and first ``n_params`` parameters of a greedy run."""
        p = result.n_terms if n_points is None else n_points
        d = result.n_terms if n_params is None else n_params
        if max(p, d) > result.n_terms:
            raise EIMError(f"the greedy selected {result.n_terms} terms, cannot take {p} points / {d} parameters; "
                           "run it with more max_terms")
        J = result.param_indices[:d]
        return cls(result.point_rows[:p][:, J], result.point_ids[:p], J, rcond)

    @property
    def condition(self) -> float:
        s = self.singular_values[: self.rank]
        return float(s[0] / s[-1]) if self.rank else np.inf

    def drop_points(self, point_ids) -> "RectangularInterpolant":
        """The interpolant without the given (broken) points; the fields are kept."""
        drop = np.isin(self.point_ids, np.asarray(point_ids, dtype=np.int64))
        missing = np.setdiff1d(np.asarray(point_ids, dtype=np.int64), self.point_ids)
        if len(missing):
            raise EIMError(f"points {missing.tolist()} are not interpolation points")
        return RectangularInterpolant(self.F[~drop], self.point_ids[~drop], self.param_indices, self.rcond)

    def coefficients(self, values_at_points: np.ndarray) -> np.ndarray:
        """``F^+ f(x_I, y)``: ``(p,)`` or ``(p, k)`` in, ``(d,)`` or ``(d, k)`` out."""
        v = np.asarray(values_at_points, dtype=float)
        if v.shape[0] != len(self.point_ids):
            raise EIMError(f"expected {len(self.point_ids)} values at the points, got {v.shape[0]}")
        return self._pinv @ v

    def evaluate(self, columns: np.ndarray, values_at_points: np.ndarray) -> np.ndarray:
        """``f(x, y_J) F^+ f(x_I, y)`` for rows ``columns`` ``(n, d)``."""
        return np.asarray(columns) @ self.coefficients(values_at_points)

    def lebesgue(self, columns_local: np.ndarray, comm: MPI.Comm | None = None) -> float:
        """``max_x sum_i |(f(x, y_J) F^+)_i|`` over all ranks' rows ``columns_local`` ``(n_local, d)``."""
        lag = np.asarray(columns_local) @ self._pinv
        loc = np.abs(lag).sum(axis=1).max() if len(lag) else 0.0
        return float(_dist.allreduce_max(comm, np.array([loc]))[0])
