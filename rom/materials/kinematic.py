"""Kinematic hardening of J2 laws: Prager (linear) and Armstrong-Frederick back stresses, and the vectorized
return mapping of a von Mises yield surface that moves (back stress ``X``) and grows (isotropic ``R(p)``).

Model (small strain, associative flow, ``xi = s - X`` the relative stress, ``q(.) = sqrt(3/2 . : .)``)::

    f = q(s - X) - R(p, T) <= 0,       eps_p' = p' (3/2) (s - X) / q(s - X),
    X' = (2/3) C(T) eps_p' - gamma(T) X p'       (Armstrong & Frederick 1966; gamma = 0: Prager 1956)

Back stresses are deviatoric, stored as stress-like Voigt vectors ``(n, 6)`` (tensor shears).

Time integration (parameters at the end-of-increment temperature, as for the other coefficients): the
flow direction ``N`` (``q(N) = 1``) is implicit, and over the increment the back-stress equation is
integrated exactly at that fixed direction,

    X_new = beta X_old + k N,     beta = exp(-gamma dp),     k = C (1 - beta) / gamma   (k = C dp if gamma = 0),

which is backward Euler's radial return when ``gamma = 0`` and, for ``gamma > 0``, is exact along any
proportional (fixed-direction) path: a uniaxial cycle follows the closed-form saturation
``X -> C / gamma`` to rounding whatever the increment size. With ``s = s_trial - 3 G dp N`` the relative
stress is ``xi_new = s_trial - beta X_old - (3 G dp + k) N``, so ``N`` is the direction of
``eta = s_trial - beta X_old`` and dp solves the scalar equation

    g(dp) = q(eta(dp)) - 3 G dp - k(dp) - R(p_old + dp) [- v(dp)] = 0,
    g'(dp) = (3/2) N : Y - 3 G - C beta - R' [- v'],        Y = d eta / d dp = gamma beta X_old,

decreasing as long as ``q(X_old) <= C / gamma`` (then ``(3/2) N : Y <= C beta``), always when ``gamma = 0``:
closed form ``dp = f_trial / (3 G + C + H)`` for Prager with linear isotropic hardening, otherwise the
bracketed Newton of :func:`.newton.solve_decreasing`. The consistent tangent (derivation as Simo & Hughes
1998, eq. 3.3.13, with ``dN = (d eta - (3/2) N (N : d eta)) / q`` and ``d dp = (3/2) N : d s_trial / h``,
``h = -g'``) is

    C_alg = C_el - (6 G^2 dp / q) P_dev + 2 G (c_N N (x) N + c_Y Y (x) N),
    c_N = 9 G / 2 (dp / q - 1 / h) + 27 G dp (N : Y) / (4 q h),     c_Y = -9 G dp / (2 q h),

with ``q = q(eta)``; it is unsymmetric when ``gamma X_old != 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..voigt import STRESS_WEIGHTS
from .errors import MaterialError
from .hardening import Hardening
from .newton import solve_decreasing
from .tables import TableLike, as_table

#: State columns of the back stress (stress-like Voigt, tensor shears).
BACK_STRESS_NAMES = ("X_xx", "X_yy", "X_zz", "X_xy", "X_yz", "X_zx")
_W15 = 1.5 * STRESS_WEIGHTS


class KinematicHardening:
    """Back-stress evolution ``X' = (2/3) C(T) eps_p' - gamma(T) X p'``.

    Parameters
    ----------
    modulus: C, table [stress], >= 0 (the slope of the uniaxial stress - plastic strain curve at ``X = 0``).
    recall: gamma, table [-], >= 0 (dynamic recovery; 0 everywhere gives Prager's linear rule). The back
        stress saturates at ``q(X) = C / gamma`` under monotonic loading.
    """

    def __init__(self, modulus: TableLike, recall: TableLike = 0.0) -> None:
        self.modulus = as_table(modulus, "kinematic modulus C")
        self.recall = as_table(recall, "kinematic recall gamma")
        self.modulus.check_range(lower=0.0, hint="a negative kinematic modulus (softening) is not supported; "
                                                  "use C >= 0")
        self.recall.check_range(lower=0.0, hint="the Armstrong-Frederick recall term needs gamma >= 0")
        temps = np.unique(np.concatenate([self.modulus.temperatures, self.recall.temperatures]))
        bad = (self.recall(temps) > 0.0) & (self.modulus(temps) == 0.0)
        if bad.any():
            raise MaterialError(
                f"kinematic hardening: recall gamma > 0 with modulus C = 0 (at temperature {temps[bad][0]:g}) "
                "has no back stress to recall; give the modulus C > 0 there or set gamma = 0")

    @property
    def name(self) -> str:
        return "prager" if self.linear else "armstrong_frederick"

    @property
    def linear(self) -> bool:
        """True for Prager's rule (gamma = 0 at every temperature)."""
        return bool(np.all(self.recall.values == 0.0))

    def __call__(self, temperature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``C`` and ``gamma`` ``(n,)`` at temperatures ``(n,)``."""
        return self.modulus(temperature), self.recall(temperature)

    def to_config(self) -> dict:
        cfg = {"type": self.name, "modulus": self.modulus.to_config()}
        if not self.linear:
            cfg["recall"] = self.recall.to_config()
        return cfg

    def __repr__(self) -> str:
        return f"KinematicHardening({self.to_config()!r})"


_KINEMATIC_KEYS = {"prager": (("modulus",), ()), "armstrong_frederick": (("modulus", "recall"), ())}


def kinematic_from_config(cfg: dict | KinematicHardening | None) -> KinematicHardening | None:
    """Build from ``{"type": "prager", "modulus": C}`` or ``{"type": "armstrong_frederick", "modulus": C,
    "recall": gamma}`` (tables: a number or ``{"temperatures": [...], "values": [...]}``); None stays None."""
    if cfg is None or isinstance(cfg, KinematicHardening):
        return cfg
    if not isinstance(cfg, dict):
        raise MaterialError(f"kinematic must be a dict with a 'type' key, got {type(cfg).__name__}")
    kind = cfg.get("type")
    if kind not in _KINEMATIC_KEYS:
        raise MaterialError(f"kinematic hardening type {kind!r} is unknown; use one of "
                            f"{sorted(_KINEMATIC_KEYS)}")
    from .registry import _take
    if kind == "prager" and "recall" in cfg:
        raise MaterialError("kinematic (prager): 'recall' (gamma) is an Armstrong-Frederick parameter; "
                            "use type = \"armstrong_frederick\" or remove it")
    required, optional = _KINEMATIC_KEYS[kind]
    kw = _take(cfg, f"kinematic ({kind})", required=required, optional=optional)
    return KinematicHardening(**kw)


def q_norm(a: np.ndarray) -> np.ndarray:
    """Von Mises norm ``sqrt(3/2 a : a)`` ``(n,)`` of deviatoric stress-like vectors ``(n, 6)``."""
    return np.sqrt((a * a) @ _W15)


@dataclass
class KinematicReturn:
    """Result of :func:`kinematic_return` at the plastic points ``plastic`` ``(n_p,)`` (indices).

    ``dp`` plastic multiplier, ``q`` = q(eta), ``h`` = -g'(dp), ``beta``, ``k`` ``(n_p,)``; ``direction`` N
    and ``y`` = gamma beta X_old ``(n_p, 6)`` (stress-like)."""

    plastic: np.ndarray
    dp: np.ndarray
    q: np.ndarray
    h: np.ndarray
    beta: np.ndarray
    k: np.ndarray
    direction: np.ndarray
    y: np.ndarray

    def tangent_coefficients(self, shear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``a = 6 G^2 dp / q``, ``2 G c_N``, ``2 G c_Y`` ``(n_p,)`` of the consistent tangent (module
        docstring) for shear moduli ``(n_p,)`` at the plastic points."""
        g, dp, q, h = shear, self.dp, self.q, self.h
        ratio = dp / q
        with np.errstate(divide="ignore"):
            inv = np.where(np.isfinite(h), 1.0 / h, 0.0)  # h infinite: Norton at dp -> 0
        ny = (self.direction * self.y) @ STRESS_WEIGHTS
        c_n = 4.5 * g * (ratio - inv) + 6.75 * g * ratio * inv * ny
        c_y = -4.5 * g * ratio * inv
        return 6.0 * g * g * ratio, 2.0 * g * c_n, 2.0 * g * c_y


#: ``v(dp, idx) -> (v, dv/ddp)``: rate-dependent overstress at plastic points ``idx``.
Viscous = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
#: ``(plastic point indices, trial yield function there) -> (Viscous, upper bound of dp)``.
ViscousSetup = Callable[[np.ndarray, np.ndarray], tuple[Viscous, np.ndarray]]


def kinematic_return(s_trial: np.ndarray, x_old: np.ndarray, p_old: np.ndarray, shear: np.ndarray,
                     temperature: np.ndarray, hardening: Hardening, kinematic: KinematicHardening, *,
                     viscous: ViscousSetup | None = None,
                     tol: float = 1e-12, max_iter: int = 40, yield_rtol: float = 1e-12,
                     what: str = "kinematic return") -> KinematicReturn:
    """Return mapping at ``n`` points (module docstring), vectorized over the points.

    Parameters
    ----------
    s_trial: ``(n, 6)`` trial stress deviators; x_old: ``(n, 6)`` back stresses at the start; p_old ``(n,)``.
    shear: ``(n,)`` G at the end temperatures ``temperature`` ``(n,)``.
    viscous: optional rate dependence, called once with the trial-plastic points and their trial yield
        function; returns ``v(dp, idx) -> (v, dv/ddp)`` (overstress, ``idx`` into those points) and an upper
        bound of dp there.
    """
    xi = s_trial - x_old
    q_xi = q_norm(xi)
    r_old, h_old = hardening(p_old, temperature)
    f = q_xi - r_old
    ip = np.flatnonzero(f > yield_rtol * q_xi)
    if ip.size == 0:
        e = np.zeros(0)
        return KinematicReturn(ip, e, e, e, e, e, np.zeros((0, 6)), np.zeros((0, 6)))
    g3 = 3.0 * shear[ip]
    tp, pp = temperature[ip], p_old[ip]
    c_mod, gamma = kinematic(tp)
    xo, st = x_old[ip], s_trial[ip]
    overstress, bound = viscous(ip, f[ip]) if viscous is not None else (None, np.inf)
    if kinematic.linear and hardening.linear_in_p and viscous is None:
        # Prager with linear isotropic hardening: q(eta) = q(xi_trial), g linear, dp = f / (3G + C + H)
        h = g3 + c_mod + h_old[ip]
        dp = f[ip] / h
        beta = np.ones(ip.size)
        eta, q = xi[ip], q_xi[ip]
        return KinematicReturn(ip, dp, q, h, beta, c_mod * dp, eta / q[:, None], np.zeros_like(xo))

    recall = gamma > 0.0
    g_safe = np.where(recall, gamma, 1.0)

    def parts(x, ii):
        gm = gamma[ii]
        e = -np.expm1(-gm * x)  # 1 - beta, accurate for small gamma dp
        k = c_mod[ii] * np.where(recall[ii], e / g_safe[ii], x)  # C (1 - beta) / gamma, C dp at gamma = 0
        beta = 1.0 - e
        eta = st[ii] - beta[:, None] * xo[ii]
        return beta, k, eta

    def residual(x, ii):
        beta, k, eta = parts(x, ii)
        q = q_norm(eta)
        r, dr = hardening(pp[ii] + x, tp[ii])
        g = q - g3[ii] * x - k - r
        # (3/2) N : Y with Y = gamma beta X_old
        dg = (1.5 * gamma[ii] * beta) * ((eta * xo[ii]) @ STRESS_WEIGHTS) / q - g3[ii] - c_mod[ii] * beta - dr
        if overstress is not None:
            v, dv = overstress(x, ii)
            g, dg = g - v, dg - dv
        return g, dg

    # g(dp) <= q(s_trial) + q(X_old) - 3 G dp - R(p_old): a bracket
    hi = np.minimum((q_norm(st) + q_norm(xo) - r_old[ip]) / g3, bound)
    x0 = np.minimum(f[ip] / (g3 + c_mod + h_old[ip]), hi)
    dp, dg = solve_decreasing(residual, x0, hi, q_xi[ip], tol=tol, max_iter=max_iter, what=what)
    beta, k, eta = parts(dp, np.arange(ip.size))
    q = q_norm(eta)
    return KinematicReturn(ip, dp, q, -dg, beta, k, eta / q[:, None], (gamma * beta)[:, None] * xo)
