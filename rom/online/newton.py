"""The reduced Newton-Raphson solve of one increment, vectorized over the reduced points.

With ``B_k`` the integrator ``(6, N)`` of reduced point ``k`` (strain of each mode there) and ``w_k`` its
weight, the reduced unknowns ``q`` ``(N,)`` give

* strains ``eps_k = B_k q`` at every reduced point (also the zero-weight dual points),
* internal force ``f_int = sum_k w_k B_k^T sigma_k`` and consistent tangent
  ``K = sum_k w_k B_k^T C_k B_k`` (only points with ``w_k > 0`` contribute),

with stresses, tangents and states from the laws integrated from the converged state of the previous
increment. Convergence as in the HF solver (:mod:`structrom.rom.hifi.solver`): ``||f_ext - f_int|| <= rtol *
f_ref`` with ``f_ref`` the largest of the earlier references, ``||f_ext||`` and the internal-force scale
``|| sum_k w_k |B_k|^T |sigma_k| ||`` (entrywise absolute values; the reduced space has no reactions; this scale plays their role,
e.g. for purely thermal loadings), or a correction below ``1e-12`` of the increment's ``||q - q_old||``.

Nothing here depends on the mesh size: every array has ``n_rp`` (reduced points) or ``N`` rows.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dgesv

from structrom.rom.materials import ConstitutiveLaw, MaterialError


class StepFailure(Exception):
    """One Newton attempt failed (the caller cuts the increment back)."""


@dataclass
class Region:
    """A law on a subset ``points`` ``(n,)`` of the reduced points (indices into the reduced arrays)."""

    law: ConstitutiveLaw
    points: np.ndarray


@dataclass
class State:
    """Converged state at ``time``: everything at the reduced points."""

    time: float
    q: np.ndarray  # (N,)
    strain: np.ndarray  # (n_rp, 6)
    stress: np.ndarray  # (n_rp, 6)
    temperature: np.ndarray  # (n_rp,)
    law_states: list[np.ndarray]  # one (n_region, n_state) per region
    f_ref: float = 0.0
    lift: np.ndarray | None = None  # (n_G,) prescribed-displacement amplitudes b (structrom.rom.lifting), or None


class ReducedSystem:
    """The reduced operators and laws; evaluates residuals and tangents at the reduced points."""

    def __init__(self, integrator: np.ndarray, weights: np.ndarray, regions: list[Region]) -> None:
        self.integrator = np.ascontiguousarray(integrator, dtype=float)  # (n_rp, 6, N)
        self.n_points, _, self.n_modes = self.integrator.shape
        self.weights = np.asarray(weights, dtype=float)
        self.regions = regions
        self.B_flat = self.integrator.reshape(-1, self.n_modes)  # (6 n_rp, N)
        self.active = np.flatnonzero(self.weights > 0)
        self.B_active = self.integrator[self.active]  # (n_act, 6, N)
        self.Bw_active = self.B_active * self.weights[self.active, None, None]  # (n_act, 6, N)
        self.Bw_flat = self.Bw_active.reshape(-1, self.n_modes)  # (6 n_act, N)
        self.w6 = np.repeat(self.weights, 6)  # (6 n_rp,): weight of each stress component
        self.absBwT = np.ascontiguousarray(np.abs(self.Bw_flat.T))  # (N, 6 n_act)
        self._abs_norm = float(np.linalg.norm(self.absBwT, 2)) if self.absBwT.size else 0.0
        self.lifting_flat: np.ndarray | None = None  # (6 n_rp, n_G): strains of the lifting's unit fields

    def set_lifting(self, lifting: np.ndarray | None) -> None:
        """The strains ``(n_rp, 6, n_G)`` of the unit fields of prescribed displacements at the points: then
        :meth:`strain` is ``B q + E b`` (:mod:`structrom.rom.lifting`)."""
        self.lifting_flat = None if lifting is None else np.ascontiguousarray(lifting, float).reshape(6 * self.n_points, -1)

    def initial_state(self, time: float, temperature: np.ndarray) -> State:
        n, N = self.n_points, self.n_modes
        return State(time, np.zeros(N), np.zeros((n, 6)), np.zeros((n, 6)), np.asarray(temperature, float),
                     [r.law.initial_state(len(r.points)) for r in self.regions])

    def strain(self, q: np.ndarray, lift: np.ndarray | None = None) -> np.ndarray:
        """``(n_rp, 6)`` strains ``B_k q`` (``+ E_k b`` with prescribed-displacement amplitudes ``lift`` (n_G,))."""
        if lift is not None and self.lifting_flat is not None:
            return (self.B_flat @ q + self.lifting_flat @ lift).reshape(self.n_points, 6)
        return (self.B_flat @ q).reshape(self.n_points, 6)

    def integrate(self, old: State, strain: np.ndarray, temperature: np.ndarray, dt: float, stats: dict):
        """Stress ``(n_rp, 6)``, tangent ``(n_rp, 6, 6)`` and new law states from the converged ``old``;
        adds the time spent in the laws to ``stats["law"]`` and counts ``stats["law_calls"]``."""
        n = self.n_points
        stress, tangent, states = np.empty((n, 6)), np.empty((n, 6, 6)), []
        t0 = time.perf_counter()
        try:
            if len(self.regions) == 1 and len(self.regions[0].points) == n:  # one law everywhere: no gathers
                resp = self.regions[0].law.integrate(old.strain, strain - old.strain, old.temperature,
                                                     temperature, dt, old.law_states[0])
                stress, tangent, states = resp.stress, resp.tangent, [resp.state]
            else:
                for reg, st in zip(self.regions, old.law_states):
                    p = reg.points
                    resp = reg.law.integrate(old.strain[p], strain[p] - old.strain[p], old.temperature[p],
                                             temperature[p], dt, st)
                    stress[p], tangent[p] = resp.stress, resp.tangent
                    states.append(resp.state)
        except (MaterialError, ArithmeticError) as exc:
            raise StepFailure(f"constitutive law failed: {exc}") from None
        finally:
            stats["law"] = stats.get("law", 0.0) + time.perf_counter() - t0
            stats["law_calls"] = stats.get("law_calls", 0) + 1
        if not (np.all(np.isfinite(stress)) and np.all(np.isfinite(tangent))):
            raise StepFailure("constitutive law returned a non-finite stress or tangent")
        return stress, tangent, states

    def _active_stress(self, stress: np.ndarray) -> np.ndarray:
        return stress[self.active].ravel() if len(self.active) < self.n_points else stress.ravel()

    def internal_force(self, stress: np.ndarray) -> np.ndarray:
        """``f_int`` ``(N,)``."""
        # with B_flat itself (the strain operator): one (6 n_rp, N) matrix per Newton iteration stays in cache
        return (stress.ravel() * self.w6) @ self.B_flat

    def force_scale(self, stress: np.ndarray) -> float:
        """The internal-force scale ``|| sum_k w_k |B_k|^T |sigma_k| ||``."""
        g = self.absBwT @ np.abs(self._active_stress(stress))
        return math.sqrt(g @ g)

    def force_scale_bound(self, stress: np.ndarray) -> float:
        """An upper bound of :meth:`force_scale` without the product: ``|| |Bw|^T ||_2 ||sigma||``."""
        s = self._active_stress(stress)
        return self._abs_norm * math.sqrt(s @ s)

    def stiffness(self, tangent: np.ndarray, cache: dict | None = None) -> np.ndarray:
        """``K = sum_k w_k B_k^T C_k B_k`` ``(N, N)``.

        ``cache`` (one per solve, not shared between threads): holds the last tangent and ``K``; when
        only some points' tangents changed since (the plastic points, within an increment at fixed
        temperature), ``K`` is updated with ``sum_changed w_k B_k^T (C_k - C_k^old) B_k``."""
        C = tangent[self.active] if len(self.active) < self.n_points else tangent
        old = cache.get("tangent") if cache is not None else None
        if old is not None:
            changed = np.flatnonzero(np.any(C != old, axis=(1, 2)))
            if len(changed) <= len(C) // 3:
                K = cache["K"]
                if len(changed):
                    dCB = np.matmul(C[changed] - old[changed], self.B_active[changed])
                    K = K + self.Bw_active[changed].reshape(-1, self.n_modes).T @ dCB.reshape(-1, self.n_modes)
                cache["tangent"], cache["K"] = C, K
                return K
        CB = np.matmul(C, self.B_active)  # (n_act, 6, N)
        K = self.Bw_flat.T @ CB.reshape(-1, self.n_modes)
        if cache is not None:
            cache["tangent"], cache["K"] = C, K
        return K


@dataclass
class StepOutcome:
    iterations: int
    residual: float  # relative
    state: State


def newton_step(system: ReducedSystem, old: State, t_new: float, f_ext: np.ndarray, temperature: np.ndarray,
                rtol: float, max_iterations: int, stats: dict, cache: dict | None = None,
                guess: np.ndarray | None = None, lift: np.ndarray | None = None) -> StepOutcome:
    """One Newton solve from the converged ``old`` to ``t_new``; raises :class:`StepFailure`.
    ``stats``: accumulates ``law`` / ``law_calls`` and ``linear`` (seconds in the reduced solves);
    ``cache``: see :meth:`ReducedSystem.stiffness` (one dict per solve); ``guess``: the first iterate
    ``(N,)`` (default ``old.q``), e.g. extrapolated from the previous increments; ``lift``: the prescribed
    displacement amplitudes ``(n_G,)`` at ``t_new`` (:meth:`ReducedSystem.set_lifting`)."""
    dt = t_new - old.time
    q = old.q.copy() if guess is None else np.array(guess, dtype=float)
    f_ext_norm = math.sqrt(f_ext @ f_ext)
    residual, ref, dq_norm, q_norm = np.inf, old.f_ref, np.inf, 0.0
    for it in range(max_iterations + 1):
        strain = system.strain(q, lift)
        stress, tangent, states = system.integrate(old, strain, temperature, dt, stats)
        r = f_ext - system.internal_force(stress)
        residual = math.sqrt(r @ r)
        if not math.isfinite(residual):
            raise StepFailure("residual is not finite")
        ref = max(old.f_ref, f_ext_norm)
        small_dq = it > 0 and dq_norm <= 1e-12 * q_norm
        # the internal-force scale only when it can decide (or at convergence, for the stored reference)
        if small_dq or residual <= rtol * max(ref, system.force_scale_bound(stress)):
            ref = max(ref, system.force_scale(stress))
            if residual <= rtol * ref or small_dq:
                return StepOutcome(it, residual / max(ref, 1e-300),
                                   State(t_new, q, strain, stress, temperature, states, ref, lift))
        if it == max_iterations:
            break
        t0 = time.perf_counter()
        K = system.stiffness(tangent, cache)
        _, _, dq, info = dgesv(K, r)  # LU with partial pivoting (LAPACK, without numpy.linalg's wrapper cost)
        stats["linear"] = stats.get("linear", 0.0) + time.perf_counter() - t0
        if info != 0:
            raise StepFailure(f"reduced tangent is singular (LAPACK dgesv info {info})")
        dq_norm = math.sqrt(dq @ dq)
        if not math.isfinite(dq_norm):
            raise StepFailure("reduced correction is not finite (singular or ill-conditioned tangent)")
        q = q + dq
        dq_q = q - old.q
        q_norm = math.sqrt(dq_q @ dq_q) + 1e-300
    raise StepFailure(f"Newton did not converge in {max_iterations} iterations "
                      f"(residual {residual:.3e}, reference force {ref:.3e})")
