"""Voigt notation, stated once for the whole project.

Symmetric second-order tensors at integration points are stored as ``(n_points, 6)`` arrays with
components in the order

    0: xx, 1: yy, 2: zz, 3: xy, 4: yz, 5: zx          (same order as CalculiX's .frd output)

* stress ``sigma`` holds tensor components: ``[s_xx, s_yy, s_zz, s_xy, s_yz, s_zx]``;
* strain ``eps`` holds *engineering* shears: ``[e_xx, e_yy, e_zz, 2 e_xy, 2 e_yz, 2 e_zx]``,

so that ``sigma : eps == (sigma * eps).sum(-1)`` and a fourth-order tangent is a ``(6, 6)`` matrix
``C`` with ``sigma = C @ eps``. Norms of deviators need the weights below.
"""
from __future__ import annotations

import numpy as np

#: Order of components.
COMPONENTS = ("xx", "yy", "zz", "xy", "yz", "zx")
#: 1 for normal components, 0 for shears.
IDENTITY = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
#: Weights turning a stress-like Voigt vector into its tensor double product: s:s = sum(W * s * s).
STRESS_WEIGHTS = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
#: Weights for a strain-like (engineering shear) vector: e:e = sum(W * e * e).
STRAIN_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])


def deviator(sigma: np.ndarray) -> np.ndarray:
    """Deviatoric part of stress-like Voigt vectors ``(..., 6)``."""
    mean = sigma[..., :3].sum(-1, keepdims=True) / 3.0
    return sigma - mean * IDENTITY


def von_mises(sigma: np.ndarray) -> np.ndarray:
    """Von Mises equivalent stress of ``(..., 6)`` stress vectors, sqrt(3/2 s:s)."""
    s = deviator(sigma)
    return np.sqrt(1.5 * (STRESS_WEIGHTS * s * s).sum(-1))


def strain_to_tensor_shear(eps: np.ndarray) -> np.ndarray:
    """Engineering-shear strain vectors to tensor-shear ones (e.g. for CalculiX-style output)."""
    out = np.array(eps, dtype=float, copy=True)
    out[..., 3:] *= 0.5
    return out


def isotropic_stiffness(young: np.ndarray | float, poisson: np.ndarray | float) -> np.ndarray:
    """Isotropic Hooke tensors ``(..., 6, 6)`` for arrays of Young's moduli and Poisson ratios."""
    young = np.asarray(young, dtype=float)
    poisson = np.asarray(poisson, dtype=float)
    lam = young * poisson / ((1.0 + poisson) * (1.0 - 2.0 * poisson))
    mu = young / (2.0 * (1.0 + poisson))
    out = np.zeros(young.shape + (6, 6))
    out[..., :3, :3] = lam[..., None, None]
    idx = np.arange(6)
    out[..., idx[:3], idx[:3]] += 2.0 * mu[..., None]
    out[..., idx[3:], idx[3:]] = mu[..., None]
    return out
