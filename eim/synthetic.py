"""Synthetic parameter-dependent finite-difference diffusion matrices (tests, benchmarks, examples).

``-div(k(x; mu) grad u) = 1`` on the unit interval / square with homogeneous Dirichlet conditions, on
a uniform grid of interior nodes, ``k`` evaluated at the mid-faces (conservative scheme). Each matrix is SPD with the 3- / 5-point pattern, identical for every ``mu``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

Coefficient = Callable[[np.ndarray, float], np.ndarray]

COEFFICIENTS: dict[str, Coefficient] = {
    "exp": lambda r2, mu: np.exp(-mu * np.sqrt(r2)),       # k = exp(-mu |x|)
    "rational": lambda r2, mu: 1.0 / (1.0 + mu * r2),       # k = 1 / (1 + mu |x|^2)
}


def diffusion_1d(n: int, k: Callable[[np.ndarray], np.ndarray]) -> sp.csr_matrix:
    """``(n, n)`` matrix of ``-(k u')'`` on ``n`` interior nodes of [0, 1], ``h = 1 / (n + 1)``."""
    h = 1.0 / (n + 1)
    kf = k((np.arange(n + 1) + 0.5) * h)  # faces
    main = (kf[:-1] + kf[1:]) / h ** 2
    off = -kf[1:-1] / h ** 2
    return sp.diags([off, main, off], [-1, 0, 1], format="csr")


def diffusion_2d(m: int, k: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> sp.csr_matrix:
    """``(m^2, m^2)`` 5-point matrix of ``-div(k grad u)`` on the ``m x m`` interior nodes of the unit square
    (node ``(i, j)`` -> row ``i * m + j``, ``x = (j + 1) h``, ``y = (i + 1) h``)."""
    h = 1.0 / (m + 1)
    t = (np.arange(m) + 1) * h
    f = (np.arange(m + 1) + 0.5) * h
    kx = k(f[None, :], t[:, None])  # (m, m+1): faces between x-neighbours
    ky = k(t[None, :], f[:, None])  # (m+1, m)
    diag = (kx[:, :-1] + kx[:, 1:] + ky[:-1, :] + ky[1:, :]) / h ** 2
    n = m * m
    idx = np.arange(n).reshape(m, m)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [diag.ravel()]
    for (a, b, w) in ((idx[:, :-1], idx[:, 1:], kx[:, 1:-1]), (idx[:-1, :], idx[1:, :], ky[1:-1, :])):
        rows += [a.ravel(), b.ravel()]
        cols += [b.ravel(), a.ravel()]
        vals += [-w.ravel() / h ** 2] * 2
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def nonaffine_2d(m: int, mu: float, kind: str = "rational") -> sp.csr_matrix:
    """2-D diffusion matrix with ``k = COEFFICIENTS[kind](x^2 + y^2, mu)``."""
    c = COEFFICIENTS[kind]
    return diffusion_2d(m, lambda x, y: c(x * x + y * y, mu) + 0.0 * x * y)


def affine_1d(n: int, mu: np.ndarray) -> sp.csr_matrix:
    """Affine family ``A(mu) = A_0 + mu_1 A_1 + mu_2 A_2`` (3 terms): ``k = 1 + mu_1 x + mu_2 sin(pi x)^2``."""
    mu = np.atleast_1d(np.asarray(mu, dtype=float))
    return diffusion_1d(n, lambda x: 1.0 + mu[0] * x + mu[1] * np.sin(np.pi * x) ** 2)


class Diffusion2DEntries:
    """:class:`~structrom.eim.separation.EntryEvaluator` of :func:`nonaffine_2d` computing only the requested
    entries (the analogue of integrating only the elements touching the selected dofs): O(d) work."""

    def __init__(self, m: int, kind: str = "rational") -> None:
        self.m = m
        self.kind = kind

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        m, h = self.m, 1.0 / (self.m + 1)
        c = COEFFICIENTS[self.kind]
        mu = float(np.asarray(mu).ravel()[0])
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        ri, rj = divmod(rows, m)
        ci, cj = divmod(cols, m)
        x, y = (rj + 1) * h, (ri + 1) * h

        def k(px, py):
            return c(px * px + py * py, mu)

        diag = (k(x - h / 2, y) + k(x + h / 2, y) + k(x, y - h / 2) + k(x, y + h / 2)) / h ** 2
        # Neighbour entries: the face between the two nodes.
        fx = ((cj + 1) * h + x) / 2
        fy = ((ci + 1) * h + y) / 2
        adjacent = (np.abs(ri - ci) + np.abs(rj - cj)) == 1
        off = -k(fx, fy) / h ** 2
        return np.where(rows == cols, diag, np.where(adjacent, off, 0.0))
