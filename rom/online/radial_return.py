"""The reduced system for one rate-independent J2 law with linear hardening at every reduced point
(:class:`RadialReturnSystem`), or with kinematic hardening (:class:`KinematicReturnSystem`, at the end).

Same equations as :class:`~structrom.rom.online.newton.ReducedSystem` with
:class:`~structrom.rom.materials.J2Plasticity` (closed-form radial return, Simo & Hughes 1998, Box 3.1), written for
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
points only. Per Newton iteration the law is about twenty numpy operations on ``(n_rp, 6)`` arrays.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from structrom.rom.materials import J2Plasticity, MaterialError
from structrom.rom.materials.hardening import Hardening, LinearHardening
from structrom.rom.materials.kinematic import kinematic_return
from structrom.rom.materials.plasticity import TO_ENGINEERING, YIELD_RTOL
from structrom.rom.voigt import STRESS_WEIGHTS

from .newton import ReducedSystem, Region, State, StepFailure

_SQRT_D = np.sqrt(np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5]))
_D = _SQRT_D * _SQRT_D
_M = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
#: ``eps @ _DEV_TRACE`` = ``[P_dev eps, tr eps]`` for engineering-shear strains ``(n, 6)``.
_DEV_TRACE = np.hstack([np.diag(_D) - np.outer(_M, _M) / 3.0, _M[:, None]])
#: ``(s * s) @ _VM_WEIGHTS`` = von Mises^2 of stress-like deviators ``s`` (3/2 s:s).
_VM_WEIGHTS = 1.5 * STRESS_WEIGHTS
_EMPTY, _EMPTY_S = np.zeros(0), np.zeros((0, 6))


@dataclass(frozen=True)
class PointConstants:
    """Material constants at the reduced points for one temperature array ``(n_rp,)``: shear ``G``,
    bulk ``kappa``, Lame ``lame`` [stress], free thermal strain ``thermal`` (normal components) [-],
    yield stress ``yield_stress`` and hardening slope ``slope`` of ``R = yield_stress + slope p``; all
    ``(n_rp,)``."""

    temperature: np.ndarray
    shear: np.ndarray
    bulk: np.ndarray
    lame: np.ndarray
    thermal: np.ndarray
    yield_stress: np.ndarray
    slope: np.ndarray
    two_shear: np.ndarray  # (n, 1): 2 G as a column
    thermal3: np.ndarray  # (n,): trace of the free thermal strain
    g3h: np.ndarray  # (n,): 3 G + slope


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
        p_dev = np.diag(_D) - np.outer(_M, _M) / 3.0
        out = c.bulk[:, None, None] * np.outer(_M, _M) + (2.0 * c.shear)[:, None, None] * p_dev
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

    requirement = "one rate-independent J2 law with linear hardening at every reduced point"

    def __init__(self, integrator: np.ndarray, weights: np.ndarray, regions: list[Region]) -> None:
        super().__init__(integrator, weights, regions)
        if not self.applies(regions, self.n_points):
            raise ValueError(f"{type(self).__name__} needs {self.requirement}")
        self.law: J2Plasticity = regions[0].law  # type: ignore[assignment]
        B = self.integrator
        self.trace_B = np.ascontiguousarray(B[:, :3].sum(1))  # (n_rp, N): m^T B_k
        half_B = B * _SQRT_D[:, None]  # (n_rp, 6, N): D^(1/2) B_k
        self.trace_half_B = np.concatenate([self.trace_B[:, None], half_B], axis=1)  # (n_rp, 7, N)
        self._half_active = np.ascontiguousarray(half_B[self.active].reshape(-1, self.n_modes))
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
        self._fixed_expansion = float(el.expansion.values[0]) if el.expansion.is_constant else None
        self._fixed_derived = None
        if self._fixed_moduli is not None and self._fixed_hardening is not None:
            g = self._fixed_moduli[0]
            self._fixed_derived = ((2.0 * g)[:, None], 3.0 * g + self._fixed_hardening[1])
        self._old: tuple | None = None  # (state, plastic strain, p) of the last converged state seen
        self._elastic_K: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (shear, lame, K_el)

    @staticmethod
    def applies(regions: list[Region], n_points: int) -> bool:
        """One region covering every point, with a :class:`J2Plasticity` law (exactly, not a subclass)
        whose radial return is in closed form (hardening linear in ``p``)."""
        return (len(regions) == 1 and len(regions[0].points) == n_points
                and np.array_equal(regions[0].points, np.arange(n_points))
                and type(regions[0].law) is J2Plasticity and regions[0].law._closed_form
                and regions[0].law.kinematic is None)

    def constants(self, temperature: np.ndarray) -> PointConstants:
        """:class:`PointConstants` at ``temperature`` ``(n_rp,)``, kept for the last temperature array object
        (the Newton iterations of an increment share it). Moduli and hardening from temperature-independent
        tables are computed once (the same arrays for every temperature, so ``K_el`` is kept too).
        Thread-safe: each cache is one object swapped whole (a stale read only recomputes)."""
        c = self._constants
        if c is not None and c.temperature is temperature:
            return c
        t = np.asarray(temperature, dtype=float)
        el = self.law.elastic
        if self._fixed_moduli is not None:
            g, k, lame = self._fixed_moduli
        else:
            g, k = el.shear_bulk(t)
            lame = k - 2.0 * g / 3.0
        sy, slope = self._fixed_hardening if self._fixed_hardening is not None else _hardening_at(self.law.hardening, t)
        fixed = self._fixed_derived  # (2 G column, 3 G + slope) when moduli and hardening are both fixed
        two_g, g3h = fixed if fixed is not None else ((2.0 * g)[:, None], 3.0 * g + slope)
        alpha = self._fixed_expansion if self._fixed_expansion is not None else el.expansion(t)
        thermal = alpha * (t - el.reference_temperature)
        c = self._constants = PointConstants(t, g, k, lame, thermal, sy, slope, two_g, 3.0 * thermal, g3h)
        return c

    def _history(self, old: State) -> tuple[np.ndarray, np.ndarray]:
        """``(plastic strain (n_rp, 6), p (n_rp,))`` of the converged ``old``, contiguous (kept per state)."""
        h = self._old
        if h is None or h[0] is not old:
            st = old.law_states[0]
            h = self._old = (old, np.ascontiguousarray(st[:, :6]), st[:, 6].copy())
        return h[1], h[2]

    def integrate(self, old: State, strain: np.ndarray, temperature: np.ndarray, dt: float, stats: dict):
        """Stress ``(n_rp, 6)``, :class:`FactoredTangent` and the new law state, from the converged ``old``
        (same update as :meth:`J2Plasticity.integrate` at a closed-form return). Non-finite strains give
        non-finite stresses, which :func:`~structrom.rom.online.newton.newton_step` rejects through the residual."""
        t0 = time.perf_counter()
        c = self.constants(temperature)
        eps_p, p_old = self._history(old)
        # (n_rp, 7): stress-like deviator (P_dev) and trace of the total - plastic strain (engineering
        # shears); the isotropic thermal strain has no deviator
        y = (strain - eps_p).dot(_DEV_TRACE)
        s = y[:, :6] * c.two_shear  # trial deviatoric stress
        q = np.sqrt((s * s).dot(_VM_WEIGHTS))
        f = q - (c.yield_stress + c.slope * p_old)
        ip = (f > YIELD_RTOL * q).nonzero()[0]
        stress = s + np.multiply.outer(c.bulk * (y[:, 6] - c.thermal3), _M)
        state = old.law_states[0].copy()
        if ip.size:
            s_p, g, qp, g3h = s[ip], c.shear[ip], q[ip], c.g3h[ip]
            ratio = f[ip] / (g3h * qp)  # dp / q
            k3 = 3.0 * g * ratio
            stress[ip] -= k3[:, None] * s_p
            a = 2.0 * g * k3  # 6 G^2 dp / q
            dstate = np.empty((ip.size, 7))
            np.multiply((1.5 * ratio)[:, None], s_p * TO_ENGINEERING, out=dstate[:, :6])
            dstate[:, 6] = ratio * qp
            state[ip] += dstate
            b = 9.0 * (g / qp) ** 2 * (1.0 / g3h - ratio)
            tangent = FactoredTangent(c, ip, a, b, s_p)
        else:
            tangent = FactoredTangent(c, ip, _EMPTY, _EMPTY, _EMPTY_S)
        stats["law"] = stats.get("law", 0.0) + time.perf_counter() - t0
        stats["law_calls"] = stats.get("law_calls", 0) + 1
        # no finiteness check here: a non-finite stress makes the residual of newton_step non-finite
        return stress, tangent, [state]

    def _elastic_stiffness(self, c: PointConstants) -> np.ndarray:
        """``K_el`` ``(N, N)``, kept while the moduli at the reduced points do not change."""
        el = self._elastic_K
        if el is None or not ((el[0] is c.shear and el[1] is c.lame)
                              or (np.array_equal(el[0], c.shear) and np.array_equal(el[1], c.lame))):
            act, w = self.active, self._w_active
            two_g = np.repeat(2.0 * c.shear[act] * w, 6)
            K = self._half_active.T @ (self._half_active * two_g[:, None])
            K += self._trace_active.T @ (self._trace_active * (c.lame[act] * w)[:, None])
            el = self._elastic_K = (c.shear, c.lame, K)
        return el[2]

    def stiffness(self, tangent: FactoredTangent, cache: dict | None = None) -> np.ndarray:  # type: ignore[override]
        """``K`` ``(N, N)`` from the factored tangent (module docstring); ``cache`` is not used."""
        K = self._elastic_stiffness(tangent.constants)
        ip = tangent.plastic
        if ip.size:
            # one product over the plastic points: rows [t_k; B~_k; c_k] (8 per point), weights
            # w_k [a_k / 3; -a_k (x6); -b_k]
            n_p, N = ip.size, self.n_modes
            X = np.empty((n_p, 8, N))
            X[:, :7] = self.trace_half_B[ip]
            X[:, 7] = np.matmul((tangent.s / _SQRT_D)[:, None, :], X[:, 1:7])[:, 0]  # s_k^T B_k
            wa, wb = tangent.a * self.weights[ip], tangent.b * self.weights[ip]
            c = np.empty((n_p, 8))
            c[:, 0] = wa / 3.0
            c[:, 1:7] = -wa[:, None]
            c[:, 7] = -wb
            X = X.reshape(-1, N)
            K = K + X.T @ (X * c.reshape(-1, 1))
        return K


@dataclass(frozen=True)
class KinematicTangent:
    """The consistent tangent with a back stress in factored form (:mod:`structrom.rom.materials.kinematic`):
    ``C_k = C_el - a P_dev + b_n n n^T + b_y y n^T`` at the plastic points ``plastic`` ``(n_p,)``, with ``a``,
    ``b_n``, ``b_y`` ``(n_p,)`` and the flow directions ``n`` and ``y = gamma beta X_old`` ``(n_p, 6)``."""

    constants: PointConstants
    plastic: np.ndarray
    a: np.ndarray
    b_n: np.ndarray
    b_y: np.ndarray
    n: np.ndarray
    y: np.ndarray

    def dense(self) -> np.ndarray:
        """The ``(n_rp, 6, 6)`` tangent (for checks against the law's own tangent)."""
        c = self.constants
        p_dev = np.diag(_D) - np.outer(_M, _M) / 3.0
        out = c.bulk[:, None, None] * np.outer(_M, _M) + (2.0 * c.shear)[:, None, None] * p_dev
        out[self.plastic] += (self.b_n[:, None, None] * np.einsum("ni,nj->nij", self.n, self.n)
                              + self.b_y[:, None, None] * np.einsum("ni,nj->nij", self.y, self.n)
                              - self.a[:, None, None] * p_dev)
        return out


class KinematicReturnSystem(RadialReturnSystem):
    """:class:`ReducedSystem` specialised to one rate-independent :class:`J2Plasticity` law with kinematic
    hardening (Prager or Armstrong-Frederick, any isotropic hardening) at all reduced points: the return of
    :func:`~structrom.rom.materials.kinematic.kinematic_return` at every point at once (closed form for
    Prager with linear isotropic hardening, a vectorized scalar Newton on dp otherwise) and the reduced
    tangent from the factored point tangents (:class:`KinematicTangent`): ``K_el`` plus, over the plastic
    points, ``(a / 3) t t^T - a B~^T B~ + b_n (n^T B)^T (n^T B) + b_y (y^T B)^T (n^T B)`` (unsymmetric when
    ``b_y != 0``; the reduced solve is an LU). Same results as the law to rounding."""

    requirement = "one rate-independent J2 law with kinematic hardening at every reduced point"

    @staticmethod
    def applies(regions: list[Region], n_points: int) -> bool:
        """One region covering every point, with a :class:`J2Plasticity` law (exactly) with kinematic hardening."""
        return (len(regions) == 1 and len(regions[0].points) == n_points
                and np.array_equal(regions[0].points, np.arange(n_points))
                and type(regions[0].law) is J2Plasticity and regions[0].law.kinematic is not None)

    def _history(self, old: State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[override]
        """``(plastic strain (n_rp, 6), p (n_rp,), back stress (n_rp, 6))`` of the converged ``old``."""
        h = self._old
        if h is None or h[0] is not old:
            st = old.law_states[0]
            h = self._old = (old, np.ascontiguousarray(st[:, :6]), st[:, 6].copy(),
                             np.ascontiguousarray(st[:, 7:13]))
        return h[1], h[2], h[3]

    def integrate(self, old: State, strain: np.ndarray, temperature: np.ndarray, dt: float, stats: dict):
        """Stress ``(n_rp, 6)``, :class:`KinematicTangent` and the new law state from the converged ``old`` (same
        update as :meth:`J2Plasticity.integrate`); a local Newton failure raises :class:`StepFailure`."""
        t0 = time.perf_counter()
        c = self.constants(temperature)
        eps_p, p_old, x_old = self._history(old)
        y = (strain - eps_p).dot(_DEV_TRACE)
        s = y[:, :6] * c.two_shear  # trial deviatoric stress
        stress = s + np.multiply.outer(c.bulk * (y[:, 6] - c.thermal3), _M)
        law = self.law
        try:
            with np.errstate(invalid="ignore", over="ignore"):
                ret = kinematic_return(s, x_old, p_old, c.shear, c.temperature, law.hardening, law.kinematic,
                                       tol=law.local_tol, max_iter=law.local_max_iter, yield_rtol=YIELD_RTOL,
                                       what="reduced return with kinematic hardening")
        except MaterialError as exc:
            raise StepFailure(f"constitutive law failed: {exc}") from None
        finally:
            stats["law"] = stats.get("law", 0.0) + time.perf_counter() - t0
            stats["law_calls"] = stats.get("law_calls", 0) + 1
        state = old.law_states[0].copy()
        ip = ret.plastic
        if ip.size:
            g, n = c.shear[ip], ret.direction
            stress[ip] -= (3.0 * g * ret.dp)[:, None] * n
            state[ip, :6] += (1.5 * ret.dp)[:, None] * n * TO_ENGINEERING
            state[ip, 6] += ret.dp
            state[ip, 7:13] = ret.beta[:, None] * x_old[ip] + ret.k[:, None] * n
            a, b_n, b_y = ret.tangent_coefficients(g)
            tangent = KinematicTangent(c, ip, a, b_n, b_y, n, ret.y)
        else:
            tangent = KinematicTangent(c, ip, _EMPTY, _EMPTY, _EMPTY, _EMPTY_S, _EMPTY_S)
        return stress, tangent, [state]

    def stiffness(self, tangent: KinematicTangent, cache: dict | None = None) -> np.ndarray:  # type: ignore[override]
        """``K`` ``(N, N)`` from the factored tangent (class docstring); ``cache`` is not used."""
        K = self._elastic_stiffness(tangent.constants)
        ip = tangent.plastic
        if not ip.size:
            return K
        n_p, N = ip.size, self.n_modes
        w = self.weights[ip]
        X = np.empty((n_p, 8, N))
        X[:, :7] = self.trace_half_B[ip]
        B = self.integrator[ip]
        X[:, 7] = np.matmul(tangent.n[:, None, :], B)[:, 0]  # n_k^T B_k
        wa = tangent.a * w
        cw = np.empty((n_p, 8))
        cw[:, 0] = wa / 3.0
        cw[:, 1:7] = -wa[:, None]
        cw[:, 7] = tangent.b_n * w
        X = X.reshape(-1, N)
        K = K + X.T @ (X * cw.reshape(-1, 1))
        if np.any(tangent.b_y):
            yB = np.matmul(tangent.y[:, None, :], B)[:, 0]  # (n_p, N): y_k^T B_k
            K = K + (yB * (tangent.b_y * w)[:, None]).T @ X.reshape(n_p, 8, N)[:, 7]
        return K
