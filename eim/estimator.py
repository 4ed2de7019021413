"""Residual-based a posteriori error estimate of the reduced solve, with a round-off-stable evaluation
(Casenave, Ern, Lelievre, arXiv 1212.0970).

With separated operators the residual of ``u_N`` is an affine combination of fixed vectors:

    r(mu) = sum_q gamma_q b_q - sum_k sum_n beta_k u_n A_k v_n = Z theta(mu),
    Z = [b_1..b_Q, A_1 V, .., A_d V]  (n, p = Q + d N),   theta = [gamma, -(beta (x) u_N)]  (p,)

and the estimate is ``Delta(mu) = ||r(mu)||_{X'} / alpha_LB(mu)`` with ``||r||_{X'}^2 = r^T X^-1 r``
(``X`` the SPD inner-product matrix; Euclidean norm when ``X`` is None).

* ``classical`` (the "expanded" formula, 1212.0970 Sect. 2): ``||r||^2 = theta^T G theta`` with the
  precomputed ``G = Z^T X^-1 Z``. When ``||r|| << ||b||`` the terms ``theta_i theta_j G_ij`` of size
  ``||b||^2`` cancel, the absolute round-off is ``~eps ||b||^2``, so the computed ``||r||`` has a
  relative accuracy ``~eps ||b||^2 / ||r||^2``: it stalls at ``||r|| / ||b|| ~ sqrt(eps) ~ 1e-8``
  (and ``theta^T G theta`` may even be negative; it is clipped at 0).
* ``stabilized``: offline, ``X^-1/2 Z = W R`` with ``W`` orthonormal (Householder QR of ``Z`` when
  ``X`` is None, else twice-iterated Gram-Schmidt of ``Y = X^-1 Z`` in the ``X`` inner product);
  online ``||r||_{X'} = ||R theta||_2``. The cancellation now happens in the *vector* ``R theta``
  (absolute error ``~eps ||b||``), not in the squared norm, so the relative accuracy is
  ``~eps ||b|| / ||r||``: the estimate follows the true residual down to ``||r|| / ||b|| ~ 1e-12``.
  The online cost is ``O(rank(Z) p)``, independent of ``n``, like the classical formula.

This is the sum-of-squares idea of 1212.0970 (compute the small quantity before squaring it) with an
exact orthonormal basis of the residual space; the paper's EIM-based variant approximates the same
dual norm from point values of the residual at interpolation points (see :mod:`structrom.eim.greedy`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .errors import EIMError
from .reduced_solve import ReducedSystem


def residual_vectors(A_list, b_list: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``Z = [b_1..b_Q, A_1 V, .., A_d V]`` ``(n, Q + d N)``; ``b_list`` ``(n, Q)``."""
    b_list = np.asarray(b_list, dtype=float).reshape(V.shape[0], -1)
    return np.hstack([b_list] + [np.asarray(A @ V) for A in A_list])


def theta(beta: np.ndarray, gamma: np.ndarray, u_N: np.ndarray) -> np.ndarray:
    """``[gamma, -(beta (x) u_N)]`` ``(Q + d N,)``, ordered like :func:`residual_vectors`."""
    return np.concatenate([np.asarray(gamma, float), -np.outer(beta, u_N).ravel()])


@dataclass
class ResidualEstimator:
    """Precomputed data of both formulas. ``G`` ``(p, p)`` (classical); ``R`` ``(r, p)`` (stabilized)."""

    G: np.ndarray
    R: np.ndarray

    @classmethod
    def build(cls, A_list, b_list: np.ndarray, V: np.ndarray, norm_matrix=None) -> "ResidualEstimator":
        """Serial offline stage from the separated matrices ``A_list`` (``d`` sparse ``(n, n)``),
        right-hand sides ``b_list`` ``(n, Q)``, basis ``V`` ``(n, N)``, inner product ``norm_matrix``."""
        Z = residual_vectors(A_list, b_list, V)
        if not np.all(np.isfinite(Z)):
            raise EIMError("residual vectors contain NaN/inf")
        if norm_matrix is None:
            G = Z.T @ Z
            R = np.linalg.qr(Z, mode="r")
            return cls(G, R)
        X = sp.csc_matrix(norm_matrix)
        if X.shape != (Z.shape[0], Z.shape[0]):
            raise EIMError(f"norm_matrix must be ({Z.shape[0]}, {Z.shape[0]}), got {X.shape}")
        Y = spla.splu(X).solve(Z)  # Riesz representatives X^-1 z
        from .distributed_estimator import distributed_residual_estimator

        # Gram-Schmidt (twice) of the columns of Y in the X inner product: Y = W R, W^T X W = I (one rank)
        return distributed_residual_estimator(None, Z, Y, lambda w: X @ w)

    @classmethod
    def from_system(cls, system: ReducedSystem, V: np.ndarray, norm_matrix=None) -> "ResidualEstimator":
        b = system.rhs.basis if system.rhs is not None else None
        if b is None:
            raise EIMError("from_system needs the right-hand side vectors: use build(A_list, b_list, V)")
        return cls.build(system.matrix.basis, b, V, norm_matrix)

    def residual_norm(self, theta_: np.ndarray, method: str = "stabilized") -> float:
        """``||r||_{X'}`` for coefficients ``theta`` ``(p,)``: ``"stabilized"`` or ``"classical"``."""
        t = np.asarray(theta_, dtype=float)
        if t.shape != (self.G.shape[0],):
            raise EIMError(f"theta must have shape ({self.G.shape[0]},), got {t.shape}")
        if method == "stabilized":
            return float(np.linalg.norm(self.R @ t))
        if method == "classical":
            return float(np.sqrt(max(float(t @ (self.G @ t)), 0.0)))
        raise EIMError(f"method must be 'stabilized' or 'classical', got {method!r}")

    def error_bound(self, theta_: np.ndarray, alpha_lb: float, method: str = "stabilized") -> float:
        """``Delta = ||r||_{X'} / alpha_LB`` (``alpha_LB`` a lower bound of the coercivity/inf-sup constant)."""
        if not alpha_lb > 0:
            raise EIMError(f"alpha_lb must be positive, got {alpha_lb}")
        return self.residual_norm(theta_, method) / alpha_lb
