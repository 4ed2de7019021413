"""Cycle quantities of a cyclic history (low-cycle fatigue, ratcheting, shakedown), per cycle and point.

For cycles bounded by the times ``b_0 < b_1 < ... < b_C`` (cycle ``c``: the states at ``b_c`` and at every
increment end in ``(b_c, b_{c+1}]``; the state at ``times[0]`` is the unloaded reference, zero strain and
stress), at every point:

* ``strain_range``: ``max_{i,j in c} eps_eq(eps_i - eps_j)``, the von Mises equivalent strain
  ``sqrt(2/3 e:e)`` (``e`` the deviator, tensor shears) of the largest strain difference within the cycle
  (the multiaxial strain range of ASME Section III / Wang-Brown type assessments) [-];
* ``mean_stress`` and ``stress_amplitude``: ``(max + min) / 2`` and ``(max - min) / 2`` over the cycle of
  the stress component with the largest range in that cycle (the loading direction of a uniaxial-
  dominated point) [stress];
* ``ratcheting``: ``eps_eq`` of the change of the cycle-mean strain tensor (mean over the increment ends in
  ``(b_c, b_{c+1}]``) from the previous cycle (from zero for the first); decays to 0 at shakedown, stays
  positive under ratcheting [-].

Vectorized over points (no loop over points); the pair loop is over the increments of one cycle.
"""
from __future__ import annotations

import numpy as np

from structrom.rom.voigt import STRESS_WEIGHTS
from structrom.mpi.errors import StructromError

_DEV = np.eye(6) - np.outer([1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0]) / 3.0
#: tensor components from engineering-shear strains
_HALF_SHEAR = np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])


class CycleError(StructromError, ValueError):
    """Cycle bounds that do not fit the history."""


def equivalent_strain(eps: np.ndarray) -> np.ndarray:
    """von Mises equivalent ``sqrt(2/3 e:e)`` of strains ``(..., 6)`` (engineering shears) -> ``(...)``."""
    e = (eps * _HALF_SHEAR) @ _DEV.T
    return np.sqrt(2.0 / 3.0 * np.einsum("...i,...i->...", e * STRESS_WEIGHTS, e))


def cycle_slices(times: np.ndarray, bounds: np.ndarray) -> list[np.ndarray]:
    """Per cycle, indices into the history with its reference state prepended (``-1`` = the reference,
    index ``k`` = increment ``k``): the state at ``b_c`` and the increments ending in ``(b_c, b_{c+1}]``."""
    times, bounds = np.asarray(times, float), np.asarray(bounds, float)
    if bounds.ndim != 1 or len(bounds) < 2 or np.any(np.diff(bounds) <= 0):
        raise CycleError(f"cycle bounds must be at least two increasing times, got {bounds.tolist()}")
    tol = 1e-9 * max(1.0, float(np.abs(times).max(initial=0.0)))
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        start = np.flatnonzero(np.abs(times - lo) <= tol)
        if abs(lo - bounds[0]) > tol and not len(start):
            raise CycleError(f"cycle bound {lo:g} is not an increment end time of the history")
        inside = np.flatnonzero((times > lo + tol) & (times <= hi + tol))
        if not len(inside) or abs(times[inside[-1]] - hi) > tol:
            raise CycleError(f"cycle bound {hi:g} is not an increment end time of the history "
                             f"(times {times.min():g}..{times.max():g})")
        out.append(np.concatenate([start[:1] if len(start) else [-1], inside]).astype(np.int64))
    return out


def cycle_quantities(times: np.ndarray, strain: np.ndarray, stress: np.ndarray, bounds) -> dict[str, np.ndarray]:
    """The quantities of the module docstring, each ``(n_cycles, n_points)``, from increment end ``times``
    ``(n_inc,)``, strains and stresses ``(n_inc, n_points, 6)`` and cycle ``bounds`` (``b_0`` may be the
    reference time ``times[0]`` of the loading, which is not an increment end)."""
    strain = np.concatenate([np.zeros_like(strain[:1]), strain])  # index 0: the reference state
    stress = np.concatenate([np.zeros_like(stress[:1]), stress])
    n_points = strain.shape[1]
    rng, mean, amp, ratchet = [], [], [], []
    prev_mean = np.zeros((n_points, 6))
    for idx in cycle_slices(times, bounds):
        e, s = strain[idx + 1], stress[idx + 1]  # (k, n, 6)
        r = np.zeros(n_points)
        for i in range(1, len(idx)):  # all pairs (i, j < i) of the cycle's states
            r = np.maximum(r, equivalent_strain(e[i][None] - e[:i]).max(axis=0))
        s_max, s_min = s.max(axis=0), s.min(axis=0)  # (n, 6)
        comp = np.argmax(s_max - s_min, axis=1)
        rows = np.arange(n_points)
        mean.append(0.5 * (s_max[rows, comp] + s_min[rows, comp]))
        amp.append(0.5 * (s_max[rows, comp] - s_min[rows, comp]))
        rng.append(r)
        m = e[1:].mean(axis=0)  # the increment ends in (b_c, b_c+1]: each state in one cycle only
        ratchet.append(equivalent_strain(m - prev_mean))
        prev_mean = m
    return {"strain_range": np.array(rng), "mean_stress": np.array(mean), "stress_amplitude": np.array(amp),
            "ratcheting": np.array(ratchet)}
