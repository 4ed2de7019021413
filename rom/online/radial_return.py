"""The reduced system for one rate-independent J2 law with linear hardening at every reduced point.

Same equations as :class:`~rom.online.newton.ReducedSystem` with
:class:`~rom.materials.J2Plasticity` (closed-form radial return, Simo & Hughes 1998, Box 3.1), written for
the online hot path: no ``(n_rp, 6, 6)`` tangent is formed. With isotropic elasticity the consistent tangent
at a point is (Simo & Hughes eq. 3.3.13, ``m = [1, 1, 1, 0, 0, 0]``, ``P_dev = D - m m^T / 3``,
``D = diag(1, 1, 1, 1/2, 1/2, 1/2)``)

    C_k = kappa m m^T + (2 G - a_k) P_dev - b_k s_k s_k^T,
    a_k = 6 G^2 dp / q,   b_k = 9 G^2 / q^2 (1 / (3 G + H) - dp / q)      (a = b = 0 at elastic points),

so with ``t_k = m^T B_k`` ``(N,)``, ``B~_k = D^(1/2) B_k`` ``(6, N)`` and ``c_k = s_k^T B_k`` ``(N,)`` the
reduced tangent is a sum of rank-structured terms,

    K = sum_k w_k [lambda_k t_k t_k^T + 2 G_k B~_k^T B~_k]                        (elastic, K_el)
        + sum_{k plastic} w_k [(a_k / 3) t_k t_k^T - a_k B~_k^T B~_k - b_k c_k c_k^T].

``K_el`` is one product per distinct set of elastic moduli (kept while the moduli at the reduced points do
not change, e.g. temperature-independent elasticity); the plastic terms cost products over the plastic
points only. Per Newton iteration the law is a dozen numpy operations on ``(n_rp, 6)`` arrays.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rom.materials import J2Plasticity
from rom.materials.hardening import Hardening, LinearHardening
from rom.materials.plasticity import TO_ENGINEERING, YIELD_RTOL
from rom.voigt import STRESS_WEIGHTS

from .newton import ReducedSystem, Region, State, StepFailure

_SQRT_D = np.sqrt(np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5]))
_D = _SQRT_D * _SQRT_D


@dataclass(frozen=True)
class PointConstants:
    """Material constants at the reduced points for one temperature array ``(n_rp,)``: shear ``G``,
    bulk ``kappa``, Lame ``lame`` [stress], free thermal strain ``thermal`` (normal components) [-],
    yield stress ``yield_stress`` and hardening slope ``slope`` of ``R = yield_stress + slope p``."""

    temperature: np.ndarray
    shear: np.ndarray
    bulk: np.ndarray
    lame: np.ndarray
    thermal: np.ndarray
    yield_stress: np.ndarray
    slope: np.ndarray


@dataclass(frozen=True)
class FactoredTangent:
    """The consistent tangent of all reduced points in factored form: the constants (elastic part) and,
    at the plastic points ``plastic`` ``(n_p,)``, ``a``, ``b`` ``(n_p,)`` and the trial deviators ``s``
    ``(n_p, 6)`` (see the module docstring)."""

    constants: PointConstants
    plastic: np.ndarray
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray

    def dense(self) -> np.ndarray:
        """The ``(n_rp, 6, 6)`` tangent (for checks against the law's own tangent)."""
        c = self.constants
        m = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
        p_dev = np.diag(_D) - np.outer(m, m) / 3.0
        out = c.bulk[:, None, None] * np.outer(m, m) + (2.0 * c.shear)[:, None, None] * p_dev
        out[self.plastic] -= self.a[:, None, None] * p_dev + self.b[:, None, None] * np.einsum("ni,nj->nij", self.s, self.s)
        return out


def _hardening_at(hardening: Hardening, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yield stress and slope ``(n,)`` of a hardening linear in ``p``: ``R(p, t) = R(0, t) + slope p``."""
    sy, slope = hardening(np.zeros_like(t), t)
    return (np.broadcast_to(np.asarray(sy, float), t.shape).copy(),
            np.broadcast_to(np.asarray(slope, float), t.shape).copy())


class RadialReturnSystem(ReducedSystem):
    """:class:`ReducedSystem` specialised to one :class:`J2Plasticity` law with hardening linear in ``p``
    at all reduced points (:meth:`applies`); same results to rounding."""

    def __init__(self, integrator: np.ndarray, weights: np.ndarray, regions: list[Region]) -> None:
        super().__init__(integrator, weights, regions)
        if not self.applies(regions, self.n_points):
            raise ValueError("RadialReturnSystem needs one rate-independent J2 law with linear hardening "
                             "at every reduced point")
        self.law: J2Plasticity = regions[0].law  # type: ignore[assignment]
        B = self.integrator
        self.trace_B = np.ascontiguousarray(B[:, :3].sum(1))  # (n_rp, N): m^T B_k
        self.half_B = np.ascontiguousarray(B * _SQRT_D[:, None])  # (n_rp, 6, N): D^(1/2) B_k
        self._half_active = self.half_B[self.active].reshape(-1, self.n_modes)
        self._trace_active = self.trace_B[self.active]
        self._w_active = self.weights[self.active]
        self._constants: PointConstants | None = None
        # moduli (G, kappa, lame) and hardening (yield stress, slope) from temperature-independent tables
        el, h, t0 = self.law.elastic, self.law.hardening, np.zeros(self.n_points)
        self._fixed_moduli = self._fixed_hardening = None
        if el.young.is_constant and el.poisson.is_constant:
            g, k = el.shear_bulk(t0)
            self._fixed_moduli = (g, k, k - 2.0 * g / 3.0)
        if isinstance(h, LinearHardening) and h.yield_stress.is_constant and h.modulus.is_constant:
            self._fixed_hardening = _hardening_at(h, t0)
        self._elastic_K: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (shear, lame, K_el)

    @staticmethod
    def applies(regions: list[Region], n_points: int) -> bool:
        """One region covering every point, with a :class:`J2Plasticity` law (exactly, not a subclass)
        whose radial return is in closed form (hardening linear in ``p``)."""
        return (len(regions) == 1 and len(regions[0].points) == n_points
                and np.array_equal(regions[0].points, np.arange(n_points))
                and type(regions[0].law) is J2Plasticity and regions[0].law._closed_form)

    def constants(self, temperature: np.ndarray) -> PointConstants:
        """:class:`PointConstants` at ``temperature`` ``(n_rp,)``, kept for the last temperature array (the
        Newton iterations of an increment share it). Moduli and hardening from temperature-independent
        tables are computed once (the same arrays for every temperature, so ``K_el`` is kept too).
        Thread-safe: each cache is one object swapped whole (a stale read only recomputes)."""
        c = self._constants
        if c is not None and (c.temperature is temperature or np.array_equal(c.temperature, temperature)):
            return c
        t = np.asarray(temperature, dtype=float)
        el = self.law.elastic
        if self._fixed_moduli is not None:
            g, k, lame = self._fixed_moduli
        else:
            g, k = el.shear_bulk(t)
            lame = k - 2.0 * g / 3.0
        sy, slope = self._fixed_hardening if self._fixed_hardening is not None else _hardening_at(self.law.hardening, t)
        thermal = el.expansion(t) * (t - el.reference_temperature)
        c = self._constants = PointConstants(t, g, k, lame, thermal, sy, slope)
        return c

    def integrate(self, old: State, strain: np.ndarray, temperature: np.ndarray, dt: float, stats: dict):
        """Stress ``(n_rp, 6)``, :class:`FactoredTangent` and the new law state, from the converged ``old``
        (same update as :meth:`J2Plasticity.integrate` at a closed-form return)."""
        t0 = time.perf_counter()
        c = self.constants(temperature)
        state_old = old.law_states[0]
        ee = strain - state_old[:, :6]  # total - plastic strain (engineering shears)
        tr = ee[:, 0] + ee[:, 1] + ee[:, 2]
        s = ee * _D  # deviator of ee, stress-like: the isotropic thermal strain has none
        s[:, :3] -= (tr / 3.0)[:, None]
        s *= (2.0 * c.shear)[:, None]
        q = np.sqrt(1.5 * ((s * s) @ STRESS_WEIGHTS))
        f = q - (c.yield_stress + c.slope * state_old[:, 6])
        ip = np.flatnonzero(f > YIELD_RTOL * q)
        s_p = s[ip]  # trial deviators at the plastic points (a copy)
        stress = s
        stress[:, :3] += (c.bulk * (tr - 3.0 * c.thermal))[:, None]
        state = state_old.copy()
        a = b = np.zeros(0)
        if ip.size:
            g, qp = c.shear[ip], q[ip]
            g3h = 3.0 * g + c.slope[ip]
            dp = f[ip] / g3h
            ratio = dp / qp
            stress[ip] -= (3.0 * g * ratio)[:, None] * s_p
            state[ip, :6] += (1.5 * ratio)[:, None] * s_p * TO_ENGINEERING
            state[ip, 6] += dp
            a = 6.0 * g * g * ratio
            b = 9.0 * g * g / (qp * qp) * (1.0 / g3h - ratio)
        stats["law"] = stats.get("law", 0.0) + time.perf_counter() - t0
        stats["law_calls"] = stats.get("law_calls", 0) + 1
        if not np.isfinite(stress.sum()):
            raise StepFailure("constitutive law returned a non-finite stress")
        return stress, FactoredTangent(c, ip, a, b, s_p), [state]

    def stiffness(self, tangent: FactoredTangent, cache: dict | None = None) -> np.ndarray:  # type: ignore[override]
        """``K`` ``(N, N)`` from the factored tangent (module docstring); ``cache`` is not used."""
        c = tangent.constants
        el = self._elastic_K
        if el is None or not ((el[0] is c.shear and el[1] is c.lame)
                              or (np.array_equal(el[0], c.shear) and np.array_equal(el[1], c.lame))):
            act, w = self.active, self._w_active
            two_g = np.repeat(2.0 * c.shear[act] * w, 6)
            K = self._half_active.T @ (self._half_active * two_g[:, None])
            K += self._trace_active.T @ (self._trace_active * (c.lame[act] * w)[:, None])
            el = self._elastic_K = (c.shear, c.lame, K)
        K = el[2]
        ip = tangent.plastic
        if ip.size:
            w = self.weights[ip]
            a, b = tangent.a * w, tangent.b * w
            t = self.trace_B[ip]
            hb = self.half_B[ip].reshape(-1, self.n_modes)
            cb = np.matmul(tangent.s[:, None, :], self.integrator[ip])[:, 0]  # (n_p, N): s_k^T B_k
            K = (K + t.T @ (t * (a / 3.0)[:, None]) - hb.T @ (hb * np.repeat(a, 6)[:, None])
                 - cb.T @ (cb * b[:, None]))
        return K
