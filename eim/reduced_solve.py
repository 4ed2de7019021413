"""Reduced (Galerkin) solve with separated operators (arXiv 1307.4330, Sect. 3).

Offline, for a reduced basis ``V`` ``(n, N)`` (columns, e.g. orthonormalized snapshots) and the
separations ``A(mu) ~ sum_k beta_k(mu) A_k`` (``A_k = A(mu_{J_k})``, ``k = 1..d``) and
``b(mu) ~ sum_q gamma_q(mu) b_q`` (or a fixed ``b``, ``Q = 1``, ``gamma = 1``):

    A_red[k] = V^T A_k V   (d, N, N),      b_red[q] = V^T b_q   (Q, N)

Online, for a new ``mu``: the ``d`` (+ ``Q``) entries from an :class:`~structrom.eim.separation.EntryEvaluator`,
``beta = F^-1 a`` (O(d^2)), ``A_N = sum_k beta_k A_red[k]`` (O(d N^2)), ``b_N = sum_q gamma_q b_red[q]``,
``u_N = A_N^-1 b_N`` (O(N^3)): no operation depends on ``n``.

Distributed offline: ``V_local`` are this rank's rows (the separation's row block); the full ``V`` is
gathered once (``n x N``) for the products ``A_k V`` of the local rows, and ``V^T (A_k V)`` is summed
over ranks.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from structrom.mpi import collectives as _dist
from .errors import EIMError
from .separation import EntryEvaluator, Separation

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI


def _gather_rows(comm: MPI.Comm | None, V_local: np.ndarray) -> np.ndarray:
    if _dist.size(comm) == 1:
        return V_local
    parts = comm.allgather(V_local)
    return np.vstack(parts)


@dataclass
class ReducedSystem:
    """Precomputed reduced operators. ``A_red`` ``(d, N, N)``; ``b_red`` ``(Q, N)``;
    ``matrix``: the matrix :class:`Separation`; ``rhs``: the vector :class:`Separation` or None
    (fixed right-hand side)."""

    A_red: np.ndarray
    b_red: np.ndarray
    matrix: Separation
    rhs: Separation | None

    @classmethod
    def build(cls, matrix: Separation, V_local: np.ndarray, rhs, *, comm: MPI.Comm | None = None) -> "ReducedSystem":
        """``rhs``: a fixed ``(n_local,)`` vector or a vector :class:`Separation`."""
        if matrix.kind != "matrix":
            raise EIMError("ReducedSystem.build needs a matrix separation first")
        V_local = np.asarray(V_local, dtype=float)
        if V_local.ndim != 2 or V_local.shape[0] != matrix.basis[0].shape[0]:
            raise EIMError(f"V_local must be ({matrix.basis[0].shape[0]}, N) (the separation's local rows), "
                           f"got {V_local.shape}")
        V_full = _gather_rows(comm, V_local)
        if V_full.shape[0] != matrix.shape[1]:
            raise EIMError(f"V has {V_full.shape[0]} rows, the matrices {matrix.shape[1]} columns")
        A_red = np.stack([V_local.T @ (A @ V_full) for A in matrix.basis])
        if isinstance(rhs, Separation):
            b_vecs = rhs.basis
            sep_rhs = rhs
        else:
            b_vecs = np.asarray(rhs, dtype=float).reshape(-1, 1)
            sep_rhs = None
        if b_vecs.shape[0] != V_local.shape[0]:
            raise EIMError(f"right-hand side has {b_vecs.shape[0]} local rows, V has {V_local.shape[0]}")
        b_red = (V_local.T @ b_vecs).T
        if _dist.size(comm) > 1:
            A_red = _dist.allreduce(comm, A_red)
            b_red = _dist.allreduce(comm, b_red)
        return cls(np.ascontiguousarray(A_red), np.ascontiguousarray(b_red), matrix, sep_rhs)

    @property
    def N(self) -> int:
        return self.A_red.shape[1]

    def coefficients(self, mu, matrix_entries: EntryEvaluator,
                     rhs_entries: EntryEvaluator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(beta (d,), gamma (Q,))`` for ``mu`` from the callbacks (gamma = [1] for a fixed rhs)."""
        beta = self.matrix.coefficients_for(mu, matrix_entries)
        if self.rhs is None:
            return beta, np.ones(1)
        if rhs_entries is None:
            raise EIMError("the right-hand side is separated: pass rhs_entries")
        return beta, self.rhs.coefficients_for(mu, rhs_entries)

    def solve(self, beta: np.ndarray, gamma: np.ndarray | None = None) -> np.ndarray:
        """``u_N`` ``(N,)`` solving ``(sum beta_k A_red[k]) u_N = sum gamma_q b_red[q]``."""
        gamma = np.ones(1) if gamma is None else np.asarray(gamma, dtype=float)
        A_N = np.tensordot(np.asarray(beta, dtype=float), self.A_red, axes=1)
        b_N = gamma @ self.b_red
        return sla.solve(A_N, b_N)

    def solve_mu(self, mu, matrix_entries: EntryEvaluator, rhs_entries: EntryEvaluator | None = None) -> np.ndarray:
        return self.solve(*self.coefficients(mu, matrix_entries, rhs_entries))
