"""Vectorized, bracketed scalar Newton solver for the local (per-point) return-mapping equations."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import MaterialError

#: ``residual(x, idx) -> (g, dg/dx)`` evaluated at the points ``idx`` only.
Residual = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def solve_decreasing(residual: Residual, x0: np.ndarray, hi: np.ndarray, scale: np.ndarray, *,
                     tol: float = 1e-12, max_iter: int = 40,
                     what: str = "return mapping") -> tuple[np.ndarray, np.ndarray]:
    """Solve ``g_i(x_i) = 0`` for ``n`` independent non-increasing scalar functions.

    Requires ``g(0) > 0 >= g(hi)``; the root is kept bracketed in ``[lo, hi]`` and Newton steps
    that leave the bracket are replaced by bisection (geometric when the bracket spans several
    decades, which happens for Norton laws with a large exponent). Converged when
    ``|g| <= tol * scale`` or when the bracket has shrunk to a few ulps.

    Parameters
    ----------
    residual: callable returning ``g`` and ``dg/dx`` ``(m,)`` at ``x`` ``(m,)`` for point indices ``idx``.
    x0, hi, scale: ``(n,)`` initial guess, upper bracket, residual scale (e.g. trial stress).

    Returns
    -------
    x, dg: ``(n,)`` roots and the residual derivatives there (for the consistent tangent).
    """
    n = x0.shape[0]
    hi = np.array(hi, dtype=float)
    lo = np.zeros(n)
    x = np.clip(np.asarray(x0, dtype=float), 0.0, hi)
    dg_out = np.empty(n)
    active = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_iter):
            if active.size == 0:
                break
            xa, loa, hia = x[active], lo[active], hi[active]
            g, dg = residual(xa, active)
            dg_out[active] = dg
            done = (np.abs(g) <= tol * scale[active]) | (hia - loa <= 4.0 * np.finfo(float).eps * hia)
            pos = g > 0.0
            loa = np.where(pos, xa, loa)
            hia = np.where(pos, hia, xa)
            xn = xa - g / dg
            inside = np.isfinite(xn) & (xn > loa) & (xn < hia)
            lo_eff = np.maximum(loa, 1e-30 * hia)
            wide = hia > 1e3 * lo_eff
            mid = np.where(wide, np.sqrt(lo_eff * hia), 0.5 * (loa + hia))
            x_new = np.where(inside, xn, mid)
            lo[active], hi[active] = loa, hia
            x[active] = np.where(done, xa, x_new)
            active = active[~done]
    if active.size:
        raise MaterialError(
            f"{what}: local Newton did not converge at {active.size} integration point(s) within "
            f"{max_iter} iterations; reduce the increment size or check the material parameters")
    return x, dg_out
