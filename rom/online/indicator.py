"""Error indicator of an online solve: per-increment components and their calibrated combination.

Each component is one dimensionless number per increment, computed from reduced-size data only:

=========================  ================================================================================
``gappy_stress``           Gappy residual of the stress at the reduced points,
                           ``||s_rp - Psi_rp beta*|| / max(||s_rp||, f s_ref)`` (Casenave & Akkari 2019;
                           ``s_ref`` the largest training norm there, ``f`` the calibration's relative floor)
``gappy_p``                the same for the cumulated plastic (creep) strain ``p``
``equilibrium``            reduced equilibrium residual with the *validation* cubature, integration points
                           kept out of the reduced set: ``||f_ext - sum_v w_v B_v^T sigma_v|| / f_ref``
                           (sigma_v from the laws integrated along the reduced solution at those points;
                           ``f_ref`` the Newton's force reference, raised by ``max(1, f s_ref / ||s_rp||)``
                           with :data:`FORCE_FLOOR_KEY`, the stress floor of ``gappy_stress``)
``validation_stress``,     out-of-sample Gappy error at the validation points: the law's stress (``p``)
``validation_p``           there against the reconstruction ``Psi_v beta*`` fitted at the reduced points,
                           relative to ``max(||v_val||, f v_ref_val)``
``time_step``              step doubling of the constitutive integration at the reduced points that
                           flow (``dp > 0``): ``2 ||y(dt) - y(dt/2, dt/2)||`` (Richardson, backward Euler is
                           first order), accumulated over the increments, relative to ``p``/stress scales
``state_envelope``         how far the state leaves the training range at the reduced points:
                           ``max(0, ||p_rp|| / p_ref - 1, ||s_rp|| / s_ref - 1)``
``plastic_sensitivity``    how much ``p`` at the reduced points moves when the converged strain of the step is
                           scaled by ``1 + delta`` (:data:`SENSITIVITY_STRAIN`), the laws integrated again
                           from the step's start: ``||p(eps (1 + delta)) - p(eps)|| / max(||p_rp||, f p_ref)``
                           (running maximum of ``||p_rp||``); the reduced state's strain error amplified by the
                           laws, large at the onset of plastic flow (J2 radial return:
                           ``p = <s_tr - s_y> / (3 G + H)``, so ``dp / p = delta s_tr / (s_tr - s_y)``), where the
                           Gappy components, which measure how well the bases represent the reduced answer's own
                           ``p``, stay small
``loading_envelope``       distance of the loading's parameters (peaks of pressures, rotation, hot spot
                           centre / radius / intensity...) to the nearest training loading, in units of
                           the training ranges (:func:`~structrom.rom.online.envelope.nearest_training_distance`;
                           uncalibrated models: to the training box, :func:`~.envelope.family_distance`)
=========================  ================================================================================

Every component enters as its running maximum over the increments so far (errors accumulate along the
history). The calibrated bound of the relative error of each reported quantity ``Q`` (displacement,
stress, cumulated plastic strain) at increment ``i`` is

    eta_Q(i) = tau(i) (a_Q0 + sum_k a_Qk max_{j <= i} I_k(j)),        a_Qk >= 0,

with factors fitted offline (:mod:`structrom.rom.offline.calibration`) so that ``eta_Q >= margin x error``
on every increment of every left-out training case. ``tau(i) = max(1, (t_i - t_0) / T)`` for models with a
rate-dependent law (:func:`time_extrapolation`; 1 otherwise), ``T`` the longest training history: the
reduced answer's drift along a creep history accumulates with time, and the fit saw no history longer than
``T``, so past it the bound grows linearly in time (the error rate is assumed not to exceed its average
over the calibrated histories). The answer is trusted while ``max_Q eta_Q`` stays below the model's
tolerance.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from structrom.rom.materials import ConstitutiveLaw

from .envelope import family_distance, loading_parameters, nearest_training_distance, node_envelope_distance  # noqa: F401 (re-exported)

from .gappy import Gappy
from .newton import ReducedSystem, Region, State
from .indicator_calibration import (COMPONENTS, FORCE_FLOOR_KEY, GUARANTEE, HISTORY_KEY,  # noqa: F401 (re-exported)
                                    QUANTITIES, SENSITIVITY_STRAIN, Calibration, IndicatorError, ValidationSet)


# -- time step ------------------------------------------------------------------------------------------------
def step_doubling(law: ConstitutiveLaw, eps_old: np.ndarray, eps_new: np.ndarray, temp_old: np.ndarray,
                  temp_new: np.ndarray, dt: float, state_old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local error estimate of one backward-Euler step of ``law`` along the linear strain/temperature path.

    Integrates ``old -> new`` in one step and in two half steps; backward Euler being first order, the
    one-step error is about twice their difference (Richardson; Hairer, Norsett & Wanner, sec. II.4).
    Returns ``(d_p, d_stress)``: ``(n,)`` and ``(n, 6)`` estimated errors of ``p`` and of the stress at the
    end of the step (``O(dt^2)`` for a smooth path)."""
    one = law.integrate(eps_old, eps_new - eps_old, temp_old, temp_new, dt, state_old)
    eps_mid, temp_mid = 0.5 * (eps_old + eps_new), 0.5 * (np.asarray(temp_old) + np.asarray(temp_new))
    half = law.integrate(eps_old, eps_mid - eps_old, temp_old, temp_mid, 0.5 * dt, state_old)
    two = law.integrate(eps_mid, eps_new - eps_mid, temp_mid, temp_new, 0.5 * dt, half.state)
    d_p = 2.0 * (law.cumulated_plastic_strain(one.state) - law.cumulated_plastic_strain(two.state))
    return d_p, 2.0 * (one.stress - two.stress)


def rate_dependent(law: ConstitutiveLaw) -> bool:
    """Whether the law's response depends on the time increment (e.g. Norton creep), so that the
    step-doubling estimate is worth its two extra law evaluations per increment by default."""
    return bool(getattr(law, "_require_positive_dt", False))


def time_extrapolation(times: np.ndarray, schema: dict, laws: list[ConstitutiveLaw]) -> np.ndarray:
    """``(n_inc,)`` factor ``tau_i = max(1, (t_i - t_0) / T)`` of the bounds at the loading's times ``times``
    ``(n_inc + 1,)`` [s] (``t_0`` its start), ``T`` the largest last time of the training loadings (the
    schema's ``times.end_range``; training histories start at 0), when any of ``laws`` is rate-dependent
    (:func:`rate_dependent`): an error drift integrated over time, calibrated up to ``T``, is extrapolated
    linearly past it. 1 for rate-independent laws (their time is a load parameter) or without ``T``."""
    times = np.asarray(times, float)
    n = max(len(times) - 1, 0)
    end = ((schema or {}).get("times") or {}).get("end_range")
    if not n or not end or not any(rate_dependent(law) for law in laws) or not float(end[1]) > 0:
        return np.ones(n)
    return np.maximum(1.0, (times[1:] - times[0]) / float(end[1]))


def _norm(a: np.ndarray) -> float:
    a = np.ravel(a)
    return math.sqrt(float(a @ a))


class IndicatorTracker:
    """Computes the components along one online solve (reduced-size work only).

    ``substep(old, new, temperature_val)`` after each converged (sub-)step, ``finish(i, f_ext)`` at the end
    of each requested increment; :meth:`components` returns ``(n_inc, n_components)``.
    """

    def __init__(self, regions: list[Region], system: ReducedSystem, gappy: dict[str, Gappy],
                 validation: "ValidationRuntime | None", references: dict[str, float], n_inc: int,
                 envelope: np.ndarray, time_step: bool = True, time_factor: np.ndarray | None = None) -> None:
        self.regions, self.system, self.gappy, self.validation = regions, system, gappy, validation
        #: ``(n_inc,)`` :func:`time_extrapolation` factors of the bounds (default 1)
        self.time_factor = np.ones(n_inc) if time_factor is None else np.asarray(time_factor, float)
        self.time_step = time_step
        self.ref = references
        #: relative components against the largest value of the answer so far (models calibrated with it)
        self.history = bool(references.get(HISTORY_KEY, 0.0))
        self.values = np.zeros((n_inc, len(COMPONENTS)))
        self.values[:, COMPONENTS.index("loading_envelope")] = envelope
        self._time = 0.0  # accumulated time-step estimate
        self._sens = 0.0  # largest plastic sensitivity (absolute, ||dp||) over the sub-steps of the increment
        self._sens_rows: list[tuple[float, float]] = []  # per increment: (||dp||, ||p_rp||)
        self._val_state: State | None = None
        self._rec: list[tuple] = []  # per increment: f_ref, f_ext, time-step estimate, validation stress, states
        self._duals: list[dict] = []
        self._stress_norms: list[float] = []  # per increment: ||s_rp|| (all reduced points)
        #: ``(n_inc,)``: from the first increment where a dual quantity that was zero in every training snapshot
        #: (its Gappy basis has 0 modes, e.g. p of elastic training runs) is not zero any more, at the reduced or
        #: validation points
        self.unseen = np.zeros(n_inc, bool)

    def start(self, state: State, temperature_val: np.ndarray | None) -> None:
        if self.validation is not None:
            self._val_state = self.validation.system.initial_state(state.time, temperature_val)

    def substep(self, old: State, new: State, temperature_val: np.ndarray | None, stats: dict) -> None:
        dt = new.time - old.time
        if self.time_step:
            self._time += self._step_doubling(old, new, dt, stats)
        self._sens = max(self._sens, self._plastic_sensitivity(old, new, dt, stats))
        if self.validation is not None and self._val_state is not None:
            v = self.validation
            strain = v.system.strain(new.q, new.lift)
            try:
                stress, _, states = v.system.integrate(self._val_state, strain, temperature_val, dt, stats)
            except Exception:  # noqa: BLE001 - a law failing at a validation point is itself a warning sign
                stress = np.full((v.system.n_points, 6), np.nan)
                states = self._val_state.law_states
            self._val_state = State(new.time, new.q, strain, stress, temperature_val, states, new.f_ref, new.lift)

    def _step_doubling(self, old: State, new: State, dt: float, stats: dict) -> float:
        """Relative step-doubling estimate (:func:`step_doubling`) of the converged step ``old -> new`` at
        the reduced points, through the model's own system (the closed-form radial return when it applies):
        two half steps along the linear strain / temperature path against the Newton's one step."""
        if not any(np.any(reg.law.cumulated_plastic_strain(b) > reg.law.cumulated_plastic_strain(a))
                   for reg, a, b in zip(self.regions, old.law_states, new.law_states)):
            return 0.0  # nothing flows: the step is exact for the laws along this path
        sys_ = self.system
        T_mid = 0.5 * (old.temperature + new.temperature)
        eps_mid = 0.5 * (old.strain + new.strain)
        try:
            s_mid, _, st_mid = sys_.integrate(old, eps_mid, T_mid, 0.5 * dt, stats)
            mid = State(old.time + 0.5 * dt, 0.5 * (old.q + new.q), eps_mid, s_mid, T_mid, st_mid, new.f_ref)
            s_two, _, st_two = sys_.integrate(mid, new.strain, new.temperature, 0.5 * dt, stats)
        except Exception:  # noqa: BLE001 - a law failing on the half steps: the step is not resolved
            return np.inf
        d_p2 = 0.0
        for reg, a, b in zip(self.regions, new.law_states, st_two):
            d = reg.law.cumulated_plastic_strain(a) - reg.law.cumulated_plastic_strain(b)
            d_p2 += float(d @ d)
        d_s = new.stress - s_two
        floor = self.ref.get("relative_floor", 1.0)
        p_scale = max(floor * self.ref.get("cumulated_plastic_strain", 0.0), 1e-300)
        s_scale = max(floor * self.ref.get("stress", 0.0), 1e-300)
        # Richardson: the one-step error of a first-order method is about twice the difference
        return 2.0 * max(math.sqrt(d_p2) / p_scale, _norm(d_s) / s_scale)

    def _plastic_sensitivity(self, old: State, new: State, dt: float, stats: dict) -> float:
        """``||p(eps (1 + delta)) - p(eps)||`` at the reduced points (absolute), ``eps`` the converged strain
        ``(n_rp, 6)`` of the step ``old -> new``, ``delta`` = :data:`SENSITIVITY_STRAIN`: the laws integrated
        once more from ``old`` to the scaled strain (same temperatures and time step). Infinite when the laws
        fail there (a state they cannot integrate a 1 % strain away from is not resolved)."""
        try:
            _, _, states = self.system.integrate(old, new.strain * (1.0 + SENSITIVITY_STRAIN), new.temperature, dt,
                                                 stats)
        except Exception:  # noqa: BLE001 - see the docstring
            return np.inf
        d2 = 0.0
        for reg, a, b in zip(self.regions, new.law_states, states):
            d = reg.law.cumulated_plastic_strain(b) - reg.law.cumulated_plastic_strain(a)
            d2 += float(d @ d)
        return math.sqrt(d2)

    def _p_norm(self, state: State) -> float:
        """``||p_rp||`` of a converged state (all regions)."""
        return math.sqrt(sum(float(p @ p) for p in (reg.law.cumulated_plastic_strain(st)
                                                  for reg, st in zip(self.regions, state.law_states))))

    def finish(self, i: int, state: State, f_ext: np.ndarray, duals: dict[str, np.ndarray]) -> None:
        """Record increment ``i`` (``duals``: its values at the reduced points); the components are
        evaluated for all increments at once by :meth:`components`."""
        self._rec.append((state.f_ref, f_ext, self._time,
                          None if self._val_state is None else self._val_state.stress,
                          None if self._val_state is None else self._val_state.law_states))
        self._duals.append(duals)
        self._sens_rows.append((self._sens, self._p_norm(state)))
        self._stress_norms.append(_norm(state.stress))
        self._sens = 0.0

    def components(self) -> np.ndarray:
        """``(n_inc, n_components)``, batched over the increments (one product per component)."""
        n = len(self._rec)
        if not n:
            return self.values
        col = COMPONENTS.index
        floor = self.ref.get("relative_floor", 1.0)
        for name, key in (("stress", "gappy_stress"), ("cumulated_plastic_strain", "gappy_p")):
            if name in self.gappy:
                v = np.array([d[name] for d in self._duals]).reshape(n, -1)
                self.values[:n, col(key)] = self.gappy[name].indicators(v, floor * self.ref.get(name, 0.0),
                                                                        history=self.history)
                ref = self.ref.get(name, 0.0)
                if ref > 0:
                    env = np.sqrt(np.einsum("ij,ij->i", v, v)) / ref - 1.0
                    self.values[:n, col("state_envelope")] = np.maximum(self.values[:n, col("state_envelope")], env)
                if self.gappy[name].n_modes == 0:
                    self.unseen[:n] |= np.any(v != 0.0, axis=1)
        self.values[:n, col("time_step")] = [r[2] for r in self._rec]
        self.values[:n, col("plastic_sensitivity")] = self._sensitivity(floor)
        if self.validation is not None and self._rec[0][3] is not None:
            f_ref = self._force_reference(np.array([r[0] for r in self._rec]), floor)
            f_ext = np.array([r[1] for r in self._rec])
            val_stress = np.array([r[3] for r in self._rec])  # (n, n_val, 6)
            val_p = np.zeros(val_stress.shape[:2])
            for i, r in enumerate(self._rec):
                for reg, st in zip(self.validation.regions, r[4]):
                    val_p[i, reg.points] = reg.law.cumulated_plastic_strain(st)
            eq, dv = self.validation.evaluate_all(val_stress, val_p, f_ext, f_ref, self.gappy, self._duals, self.ref,
                                                  history=self.history)
            self.values[:n, col("equilibrium")] = eq
            self.values[:n, col("validation_stress")] = dv.get("stress", 0.0)
            self.values[:n, col("validation_p")] = dv.get("cumulated_plastic_strain", 0.0)
            if "cumulated_plastic_strain" in self.gappy and self.gappy["cumulated_plastic_strain"].n_modes == 0:
                self.unseen[:n] |= np.any(val_p != 0.0, axis=1)
        self.unseen = np.logical_or.accumulate(self.unseen)
        self.values[~np.isfinite(self.values)] = np.inf
        return self.values

    def _force_reference(self, f_ref: np.ndarray, floor: float) -> np.ndarray:
        """``(n,)`` denominators of ``equilibrium``: the Newton's force references ``f_ref`` ``(n,)`` (already a
        running maximum), raised with :data:`FORCE_FLOOR_KEY` to ``f_ref f s_ref / max_{j <= i} ||s_rp(j)||``
        where the stress so far is below its floor ``f s_ref`` (as ``gappy_stress`` is measured), so that the
        residual of a zero or tiny answer is not round-off over round-off."""
        s_ref = floor * self.ref.get("stress", 0.0)
        if not self.ref.get(FORCE_FLOOR_KEY, 0.0) or s_ref <= 0 or not len(f_ref):
            return f_ref
        s_hist = np.maximum.accumulate(np.asarray(self._stress_norms, float))
        # no stress at all (nothing to scale; the residual is then f_ext's, against f_ref >= ||f_ext||): 1
        raise_by = np.divide(s_ref, s_hist, out=np.ones(len(s_hist)), where=s_hist > 0)
        return f_ref * np.maximum(raise_by, 1.0)

    def _sensitivity(self, floor: float) -> np.ndarray:
        """``(n,)`` ``plastic_sensitivity``: ``||dp||`` of each increment relative to the running maximum of
        ``||p_rp||`` or the floor ``f p_ref`` (as ``gappy_p`` with ``history``; the true errors of ``p`` are
        relative to the answer's largest value or the same floor on the whole domain)."""
        rows = np.array(self._sens_rows, float).reshape(-1, 2)
        p_ref = floor * self.ref.get("cumulated_plastic_strain", 0.0)
        den = np.maximum(np.maximum.accumulate(rows[:, 1]) if len(rows) else rows[:, 1], p_ref)
        # no scale (no p anywhere, no p reference): nothing to measure against, 0; a failed integration stays inf
        return np.divide(rows[:, 0], den, out=np.where(np.isinf(rows[:, 0]), np.inf, 0.0), where=den > 0)

    def summary(self, calibration: "Calibration | None") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """``(components, bounds)``: component name -> ``(n_inc,)``, and with a calibration the quantity ->
        ``(n_inc,)`` error bounds (empty without one)."""
        table = self.components()
        comps = {name: table[:, k].copy() for k, name in enumerate(COMPONENTS)}
        if calibration is None or not len(table):
            return comps, {}
        b = calibration.bounds(table) * self.time_factor[:len(table), None]
        # the calibration saw this quantity zero on every left-out case, so its factors say nothing once it is not:
        # the answer has left the training regime (e.g. it yields where the training stayed elastic)
        b[self.unseen[:len(b)]] = np.inf
        return comps, {name: b[:, k] for k, name in enumerate(calibration.quantities)}


class ValidationRuntime:
    """A :class:`ValidationSet` ready for the online solve: laws per point, its own reduced system."""

    def __init__(self, vset: ValidationSet, laws: list[ConstitutiveLaw]) -> None:
        self.set = vset
        regions = [Region(law, np.flatnonzero(vset.material == i)) for i, law in enumerate(laws)]
        regions = [r for r in regions if len(r.points)]
        from .radial_return import RadialReturnSystem

        system = RadialReturnSystem if RadialReturnSystem.applies(regions, vset.n_points) else ReducedSystem
        self.system = system(vset.integrator, vset.weights, regions)
        self.regions = regions
        self.interp = sp.csr_matrix(vset.interpolation)

    def evaluate_all(self, stress: np.ndarray, p: np.ndarray, f_ext: np.ndarray, f_ref: np.ndarray,
                     gappy: dict[str, Gappy], duals: list[dict], ref: dict[str, float], history: bool = False):
        """``(equilibrium (n,), {quantity: validation error (n,)})`` for ``n`` increments: validation
        stresses ``(n, n_val, 6)`` and ``p`` ``(n, n_val)``, ``f_ext`` ``(n, N)``, ``f_ref`` ``(n,)``;
        ``history``: relative to the running maximum of the law's norm (see :meth:`Gappy.indicators`)."""
        n = len(stress)
        flat = stress.reshape(n, -1)
        r = f_ext - (flat * self.system.w6) @ self.system.B_flat
        with np.errstate(invalid="ignore"):
            eq = np.sqrt(np.einsum("ij,ij->i", r, r)) / np.maximum(f_ref, 1e-300)
        out: dict[str, np.ndarray] = {}
        floor = ref.get("relative_floor", 1.0)
        for name, law_values in (("stress", flat), ("cumulated_plastic_strain", p)):
            if name not in gappy or name not in self.set.duals:
                continue
            rp = np.array([d[name] for d in duals]).reshape(n, -1)
            rec = (self.set.duals[name] @ gappy[name].coefficients(rp.T)).T  # (n, n_val c)
            d = law_values - rec
            num = np.sqrt(np.einsum("ij,ij->i", d, d))
            nv = np.sqrt(np.einsum("ij,ij->i", law_values, law_values))
            if history and n:
                nv = np.fmax.accumulate(nv)  # fmax: a failed (NaN) increment does not hide the later ones
            den = np.maximum(nv, floor * ref.get(f"{name}_validation", 0.0))
            out[name] = np.divide(num, den, out=np.zeros(n), where=den > 0)
        bad = ~np.all(np.isfinite(flat), axis=1)
        eq[bad] = np.inf
        for v in out.values():
            v[bad] = np.inf
        return eq, out
