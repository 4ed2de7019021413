"""Von Mises (J2) plasticity with isotropic and optional kinematic hardening: radial return and consistent
tangent (kinematic hardening: :mod:`.kinematic`)."""
from __future__ import annotations

import numpy as np

from ..voigt import IDENTITY, STRESS_WEIGHTS, deviator
from .base import ConstitutiveLaw, MaterialResponse, check_increment
from .elastic import LinearElastic
from .errors import MaterialError
from .hardening import Hardening, hardening_from_config
from .kinematic import BACK_STRESS_NAMES, KinematicHardening, kinematic_from_config, kinematic_return
from .newton import solve_decreasing

#: Maps an engineering-shear strain to the deviatoric part of the tensor, in stress-like Voigt form:
#: ``dev(eps) = P_DEV @ eps`` (so ``2 G P_DEV`` is the deviatoric elastic stiffness).
P_DEV = np.diag([1.0, 1.0, 1.0, 0.5, 0.5, 0.5]) - np.outer(IDENTITY, IDENTITY) / 3.0
#: Stress-like -> engineering-shear strain-like Voigt vector (doubles the shears).
TO_ENGINEERING = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
#: Relative threshold of the trial yield function above which a point is treated as plastic.
YIELD_RTOL = 1e-12

PLASTIC_STATE_NAMES = ("eps_p_xx", "eps_p_yy", "eps_p_zz", "eps_p_xy", "eps_p_yz", "eps_p_zx", "p")


class RadialReturnLaw(ConstitutiveLaw):
    """Common radial-return machinery for J2 laws with isotropic hardening.

    Subclasses may add a rate-dependent resisting stress ``v(dp)`` via :meth:`_viscous_stress`.
    The local equation (backward Euler, radial return, Simo & Hughes 1998, Box 3.1/3.2) is

        g(dp) = q_trial - 3 G dp - R(p_old + dp, T) - v(dp) = 0,

    and the consistent tangent (Simo & Hughes eq. 3.3.13, here with F' = dR/dp + dv/ddp) is

        C_alg = C - 6 G^2 (dp / q) P_dev - 9 G^2 / q^2 (1 / (3 G + F') - dp / q) s_tr (x) s_tr,

    with ``q = q_trial`` and ``s_tr`` the trial deviator (stress-like Voigt).
    State: plastic strain tensor (engineering shears) and the cumulated plastic strain ``p``; with
    ``kinematic`` hardening (:class:`.kinematic.KinematicHardening`) also the back stress ``X`` (6 columns,
    stress-like), the return then being :func:`.kinematic.kinematic_return`.
    """

    state_names = PLASTIC_STATE_NAMES
    #: Relative tolerance of the local Newton iterations (on the residual / trial stress).
    local_tol: float = 1e-12
    local_max_iter: int = 40
    _require_positive_dt = False

    def __init__(self, elastic: LinearElastic, hardening: Hardening,
                 kinematic: KinematicHardening | None = None) -> None:
        if not isinstance(elastic, LinearElastic):
            raise MaterialError(f"elastic must be a LinearElastic, got {type(elastic).__name__}")
        if not isinstance(hardening, Hardening):
            raise MaterialError("hardening must be a LinearHardening, TabulatedHardening or "
                                f"VoceHardening, got {type(hardening).__name__}")
        if kinematic is not None and not isinstance(kinematic, KinematicHardening):
            raise MaterialError(f"kinematic must be a KinematicHardening or None, got {type(kinematic).__name__}")
        self.elastic = elastic
        self.hardening = hardening
        self.kinematic = kinematic
        if kinematic is not None:
            self.state_names = PLASTIC_STATE_NAMES + BACK_STRESS_NAMES
        # rate-independent with a hardening slope independent of p: closed-form return
        self._closed_form = hardening.linear_in_p and type(self)._viscous_stress is RadialReturnLaw._viscous_stress

    @property
    def density(self) -> float:  # type: ignore[override]
        return self.elastic.density

    def thermal_strain(self, temperature: np.ndarray) -> np.ndarray:
        return self.elastic.thermal_strain(temperature)

    def elastic_tangent(self, temperature: np.ndarray) -> np.ndarray:
        return self.elastic.elastic_tangent(temperature)

    def cumulated_plastic_strain(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state)[:, 6].copy()

    def plastic_strain(self, state: np.ndarray) -> np.ndarray:
        """Plastic strain ``(n, 6)`` (engineering shears)."""
        return np.asarray(state)[:, :6].copy()

    def back_stress(self, state: np.ndarray) -> np.ndarray:
        """Back stress ``(n, 6)`` (stress-like, tensor shears); zero without kinematic hardening."""
        state = np.asarray(state)
        return state[:, 7:13].copy() if self.kinematic is not None else np.zeros((state.shape[0], 6))

    # ------------------------------------------------------------------ hooks for rate dependence
    def _viscous_setup(self, temperature: np.ndarray, dt: float) -> dict:
        """Per-call parameters of the viscous stress at the plastic points (none for J2)."""
        return {}

    def _viscous_stress(self, dp: np.ndarray, idx: np.ndarray,
                        ctx: dict) -> tuple[np.ndarray, np.ndarray]:
        """Rate-dependent resisting stress ``v(dp)`` and ``dv/ddp`` at points ``idx``."""
        return np.zeros_like(dp), np.zeros_like(dp)

    def _upper_bound(self, f_trial: np.ndarray, ctx: dict) -> np.ndarray:
        """Upper bound of dp in addition to ``f_trial / 3G`` (none for J2)."""
        return np.full_like(f_trial, np.inf)

    # ------------------------------------------------------------------ integration
    def integrate(self, eps_old: np.ndarray, deps: np.ndarray, temp_old: np.ndarray,
                  temp_new: np.ndarray, dt: float, state_old: np.ndarray) -> MaterialResponse:
        """See :meth:`ConstitutiveLaw.integrate`; returns stress ``(n, 6)``, tangent ``(n, 6, 6)``,
        state ``(n, n_state)``."""
        eps_old, deps, temp_old, temp_new, dt, state_old = check_increment(
            eps_old, deps, temp_old, temp_new, dt, state_old, self.n_state,
            require_positive_dt=self._require_positive_dt)
        t = temp_new
        props = self.elastic.properties(t)
        g_mod, c = props.shear, props.tangent
        eps_p_old = state_old[:, :6]
        p_old = state_old[:, 6]

        # elastic predictor in total form: sigma_tr = C(T_new) : (eps_new - eps_th(T_new) - eps_p_old)
        sig_tr = props.stress(eps_old + deps - props.thermal_strain - eps_p_old)
        s_tr = deviator(sig_tr)
        q_tr = np.sqrt(1.5 * (STRESS_WEIGHTS * s_tr * s_tr).sum(-1))
        if self.kinematic is not None:
            return self._integrate_kinematic(sig_tr, s_tr, g_mod, c, t, dt, state_old)
        r_old, h_old = self.hardening(p_old, t)
        f_tr = q_tr - r_old
        plastic = f_tr > YIELD_RTOL * q_tr

        stress = sig_tr
        tangent = c  # read-only, shared: copied below if a point is plastic
        state = state_old.copy()
        ip = np.flatnonzero(plastic)
        if ip.size:
            tangent = c.copy()
            g3 = 3.0 * g_mod[ip]
            q, f, pp, tp = q_tr[ip], f_tr[ip], p_old[ip], t[ip]
            ctx = self._viscous_setup(tp, dt)

            def residual(x, ii):
                r, h = self.hardening(pp[ii] + x, tp[ii])
                v, dv = self._viscous_stress(x, ii, ctx)
                return q[ii] - g3[ii] * x - r - v, -(g3[ii] + h + dv)

            if self._closed_form:
                # g(dp) is linear: dp = f_trial / (3 G + H) (Simo & Hughes Box 3.1), exact
                dg = -(g3 + h_old[ip])
                dp = f / -dg
            else:
                hi = np.minimum(f / g3, self._upper_bound(f, ctx))
                x0 = np.minimum(f / (g3 + h_old[ip]), hi)
                dp, dg = solve_decreasing(residual, x0, hi, q, tol=self.local_tol,
                                          max_iter=self.local_max_iter,
                                          what=f"{type(self).__name__} radial return")
            s = s_tr[ip]
            ratio = dp / q
            stress = sig_tr.copy()
            stress[ip] -= (g3 * ratio)[:, None] * s
            state[ip, :6] += (1.5 * dp / q)[:, None] * s * TO_ENGINEERING
            state[ip, 6] += dp
            gm = g_mod[ip]
            # -dg = 3G + F'; 1/(3G + F') -> 0 when F' is infinite (Norton at dp -> 0)
            with np.errstate(divide="ignore"):
                inv = np.where(np.isfinite(dg), 1.0 / -dg, 0.0)
            a = 6.0 * gm * gm * ratio
            b = 9.0 * gm * gm / (q * q) * (inv - ratio)
            tangent[ip] -= a[:, None, None] * P_DEV + b[:, None, None] * np.einsum("ni,nj->nij", s, s)
        return MaterialResponse(stress=stress, tangent=tangent, state=state)

    def _integrate_kinematic(self, sig_tr, s_tr, g_mod, c, t, dt, state_old) -> MaterialResponse:
        """The return with a back stress (:func:`.kinematic.kinematic_return`); same arguments as the
        isotropic path of :meth:`integrate` at the end temperatures ``t``."""
        x_old = state_old[:, 7:13]
        viscous = None
        if type(self)._viscous_stress is not RadialReturnLaw._viscous_stress:
            def viscous(ip, f_trial):  # rate-dependent overstress at the trial-plastic points ip
                ctx = self._viscous_setup(t[ip], dt)
                return (lambda x, ii: self._viscous_stress(x, ii, ctx)), self._upper_bound(f_trial, ctx)
        ret = kinematic_return(s_tr, x_old, state_old[:, 6], g_mod, t, self.hardening, self.kinematic,
                               viscous=viscous, tol=self.local_tol,
                               max_iter=self.local_max_iter, yield_rtol=YIELD_RTOL,
                               what=f"{type(self).__name__} return with kinematic hardening")
        state = state_old.copy()
        ip = ret.plastic
        if not ip.size:
            return MaterialResponse(stress=sig_tr, tangent=c, state=state)
        gm = g_mod[ip]
        n = ret.direction
        stress = sig_tr.copy()
        stress[ip] -= (3.0 * gm * ret.dp)[:, None] * n
        state[ip, :6] += (1.5 * ret.dp)[:, None] * n * TO_ENGINEERING
        state[ip, 6] += ret.dp
        state[ip, 7:13] = ret.beta[:, None] * x_old[ip] + ret.k[:, None] * n
        a, b_n, b_y = ret.tangent_coefficients(gm)
        tangent = c.copy()
        tangent[ip] += (b_n[:, None, None] * np.einsum("ni,nj->nij", n, n)
                        + b_y[:, None, None] * np.einsum("ni,nj->nij", ret.y, n) - a[:, None, None] * P_DEV)
        return MaterialResponse(stress=stress, tangent=tangent, state=state)

    # ------------------------------------------------------------------ config
    def _base_config(self) -> dict:
        cfg = {"type": self.name, "elastic": self.elastic.to_config(),
               "hardening": self.hardening.to_config()}
        if self.kinematic is not None:
            cfg["kinematic"] = self.kinematic.to_config()
        return cfg


class J2Plasticity(RadialReturnLaw):
    """Rate-independent von Mises plasticity, associative flow, isotropic hardening.

    Parameters
    ----------
    elastic: the :class:`LinearElastic` part (E, nu, alpha tables, density).
    hardening: ``R(p, T)`` (:class:`LinearHardening`, :class:`TabulatedHardening`,
        :class:`VoceHardening`); parameters are taken at the end-of-increment temperature.
    kinematic: optional back-stress evolution (:class:`KinematicHardening`: Prager or
        Armstrong-Frederick), combined with the isotropic ``hardening``; config key ``kinematic``.
    """

    name = "j2_plasticity"

    def to_config(self) -> dict:
        return self._base_config()

    @classmethod
    def from_config(cls, cfg: dict) -> "J2Plasticity":
        from .registry import _take
        kw = _take(cfg, cls.name, required=("elastic", "hardening"), optional=("kinematic",))
        return cls(LinearElastic.from_config(kw["elastic"]), hardening_from_config(kw["hardening"]),
                   kinematic_from_config(kw.get("kinematic")))
