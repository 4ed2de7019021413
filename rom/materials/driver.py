"""Mixed strain/stress-controlled material-point driver (tests, calibration).

Each strain component is either prescribed (strain control) or solved for so that the matching
stress component follows a target history (stress control, default 0 = stress-free), by Newton
iterations with the law's consistent tangent. Several independent material points are driven at
once (vectorized).

History convention: row 0 of every history is reached from the virgin state (zero strain, initial
state, temperature ``temperature[0]``) in one *instantaneous* increment (``dt`` = 1e-12 of the
total duration, i.e. a purely elastic jump for a viscoplastic law); rows ``k >= 1`` are reached
from row ``k - 1`` with ``dt = times[k] - times[k-1]``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import ConstitutiveLaw
from .errors import MaterialError


class DriverResult(NamedTuple):
    """Histories ``(n_steps, [n_points,] 6)`` of stress and strain, ``(n_steps, [n_points,] n_state)``
    of the state. Unpacks as ``stress, strain, state = result``."""

    stress: np.ndarray
    strain: np.ndarray
    state: np.ndarray


def _as_steps(a, n_steps: int, n_pts: int, name: str, comps: int | None) -> np.ndarray:
    """Broadcast a history to ``(n_steps, n_pts[, comps])``."""
    a = np.asarray(a, dtype=float)
    shape = (n_steps, n_pts) if comps is None else (n_steps, n_pts, comps)
    if comps is not None and a.ndim == 2:
        a = a[:, None, :]
    elif comps is None and a.ndim == 1:
        a = a[:, None]
    elif comps is None and a.ndim == 0:
        a = np.full((n_steps, 1), float(a))
    try:
        return np.broadcast_to(a, shape).astype(float)
    except ValueError:
        raise MaterialError(f"{name} has shape {np.shape(a)}; expected (n_steps={n_steps}"
                            f"{', n_points' if n_pts > 1 else ''}"
                            f"{', 6' if comps else ''})") from None


def mixed_control(law: ConstitutiveLaw, strain: np.ndarray, temperature: np.ndarray | float,
                  times: np.ndarray, *, prescribed: np.ndarray | None = None,
                  stress: np.ndarray | None = None, state0: np.ndarray | None = None,
                  tol: float = 1e-12, max_iter: int = 30) -> DriverResult:
    """Drive material points through a mixed-control history.

    Parameters
    ----------
    law: the constitutive law.
    strain: ``(n_steps, 6)`` or ``(n_steps, n_points, 6)`` total strain (engineering shears); only
        the ``prescribed`` components are used.
    temperature: ``(n_steps,)``, ``(n_steps, n_points)`` or a scalar.
    times: ``(n_steps,)`` strictly increasing times.
    prescribed: bool ``(6,)`` mask of strain-controlled components (default: all).
    stress: target stress history for the other components, same layout as ``strain``
        (default: zero, i.e. stress-free).
    state0: ``(n_points, n_state)`` initial state (default ``law.initial_state``).
    tol: relative tolerance of the stress residual (w.r.t. the stress magnitude).

    Returns
    -------
    :class:`DriverResult` with leading dimension ``n_steps``; the ``n_points`` axis is dropped
    when ``strain`` (and ``stress``) were given without it.
    """
    strain = np.asarray(strain, dtype=float)
    if strain.ndim not in (2, 3) or strain.shape[-1] != 6:
        raise MaterialError(f"strain must have shape (n_steps, 6) or (n_steps, n_points, 6), "
                            f"got {strain.shape}")
    squeeze = strain.ndim == 2 and (stress is None or np.ndim(stress) == 2) \
        and np.ndim(temperature) <= 1
    n_steps = strain.shape[0]
    n_pts = strain.shape[1] if strain.ndim == 3 else 1
    if stress is not None and np.ndim(stress) == 3:
        n_pts = max(n_pts, np.shape(stress)[1])
    if np.ndim(temperature) == 2:
        n_pts = max(n_pts, np.shape(temperature)[1])
    strain = _as_steps(strain, n_steps, n_pts, "strain", 6)
    target = np.zeros_like(strain) if stress is None else _as_steps(stress, n_steps, n_pts,
                                                                      "stress", 6)
    temp = _as_steps(temperature, n_steps, n_pts, "temperature", None)
    times = np.asarray(times, dtype=float)
    if times.shape != (n_steps,):
        raise MaterialError(f"times must have shape ({n_steps},), got {times.shape}")
    if n_steps > 1 and not np.all(np.diff(times) > 0):
        raise MaterialError("times must be strictly increasing")
    mask = np.ones(6, bool) if prescribed is None else np.asarray(prescribed, dtype=bool)
    if mask.shape != (6,):
        raise MaterialError(f"prescribed must be a boolean mask of shape (6,), got {mask.shape}")
    free = np.flatnonzero(~mask)
    state = law.initial_state(n_pts) if state0 is None else np.array(state0, dtype=float)
    if state.shape != (n_pts, law.n_state):
        raise MaterialError(f"state0 must have shape ({n_pts}, {law.n_state}), got {state.shape}")

    duration = times[-1] - times[0] if n_steps > 1 else 1.0
    out_s = np.zeros((n_steps, n_pts, 6))
    out_e = np.zeros((n_steps, n_pts, 6))
    out_x = np.zeros((n_steps, n_pts, law.n_state))
    eps_prev = np.zeros((n_pts, 6))
    t_prev = temp[0]
    for k in range(n_steps):
        dt = 1e-12 * duration if k == 0 else times[k] - times[k - 1]
        eps = eps_prev.copy()
        eps[:, mask] = strain[k][:, mask]
        for it in range(max_iter + 1):
            resp = law.integrate(eps_prev, eps - eps_prev, t_prev, temp[k], dt, state)
            if free.size == 0:
                break
            r = resp.stress[:, free] - target[k][:, free]
            scale = max(np.abs(resp.stress).max(), np.abs(target[k]).max(), 1e-300)
            if np.abs(r).max() <= tol * scale:
                break
            if it == max_iter:
                raise MaterialError(f"driver: step {k} did not converge in {max_iter} iterations "
                                    f"(stress residual {np.abs(r).max():.3e}); use smaller steps")
            jac = resp.tangent[:, free][:, :, free]
            eps[:, free] -= np.linalg.solve(jac, r[..., None])[..., 0]
        out_s[k], out_e[k], out_x[k] = resp.stress, eps, resp.state
        eps_prev, t_prev, state = eps, temp[k], resp.state
    if squeeze and n_pts == 1:
        return DriverResult(out_s[:, 0], out_e[:, 0], out_x[:, 0])
    return DriverResult(out_s, out_e, out_x)


def uniaxial_stress(law: ConstitutiveLaw, strain_history: np.ndarray,
                    temperature_history: np.ndarray | float, times: np.ndarray,
                    state0: np.ndarray | None = None) -> DriverResult:
    """Uniaxial stress, strain-controlled: ``eps_xx`` prescribed ``(n_steps,)`` or
    ``(n_steps, n_points)``, all other stress components zero."""
    h = np.asarray(strain_history, dtype=float)
    eps = np.zeros(h.shape + (6,))
    eps[..., 0] = h
    return mixed_control(law, eps, temperature_history, times,
                         prescribed=np.array([True, False, False, False, False, False]),
                         state0=state0)


def uniaxial_stress_control(law: ConstitutiveLaw, stress_history: np.ndarray,
                            temperature_history: np.ndarray | float, times: np.ndarray,
                            state0: np.ndarray | None = None) -> DriverResult:
    """Uniaxial stress, stress-controlled (e.g. creep): ``sigma_xx`` prescribed ``(n_steps,)`` or
    ``(n_steps, n_points)``, all other stress components zero."""
    h = np.asarray(stress_history, dtype=float)
    sig = np.zeros(h.shape + (6,))
    sig[..., 0] = h
    return mixed_control(law, np.zeros_like(sig), temperature_history, times,
                         prescribed=np.zeros(6, bool), stress=sig, state0=state0)


def simple_shear(law: ConstitutiveLaw, shear_history: np.ndarray,
                 temperature_history: np.ndarray | float, times: np.ndarray,
                 state0: np.ndarray | None = None, *, constrained: bool = False) -> DriverResult:
    """Shear ``gamma_xy`` (engineering) prescribed ``(n_steps,)`` or ``(n_steps, n_points)``.

    The other shear strains are held at zero; the normal strains are stress-free (default) or,
    with ``constrained=True``, held at zero (kinematic simple shear; thermal stresses then arise
    away from the reference temperature).
    """
    h = np.asarray(shear_history, dtype=float)
    eps = np.zeros(h.shape + (6,))
    eps[..., 3] = h
    mask = np.array([constrained] * 3 + [True] * 3)
    return mixed_control(law, eps, temperature_history, times, prescribed=mask, state0=state0)
