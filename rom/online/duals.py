"""Dual quantities at the reduced points of a converged online state.

:data:`DUAL_QUANTITIES` names the quantities the online solver can evaluate at the ``n_rp`` reduced points,
with their number of components per point; :func:`dual_values` evaluates one of them from a converged
:class:`~structrom.rom.online.newton.State`: ``(n_rp,)`` (1 component) or ``(n_rp, 6)`` (Voigt, stresses
and back stresses with tensor shears, strains with engineering shears), in the model's units.
"""
from __future__ import annotations

import numpy as np

from structrom.rom.voigt import von_mises

from .errors import OnlineError
from .newton import Region, State


#: Dual quantities the online solver can evaluate at the reduced points, with their components.
DUAL_QUANTITIES = {"cumulated_plastic_strain": 1, "plastic_strain": 6, "stress": 6, "strain": 6,
                   "von_mises": 1, "temperature": 1, "back_stress": 6}


def dual_values(name: str, regions: list[Region], state: State) -> np.ndarray:
    """Quantity ``name`` at the reduced points of a converged state: ``(n_rp,)`` or ``(n_rp, 6)``."""
    if name == "stress":
        return state.stress.copy()
    if name == "strain":
        return state.strain.copy()
    if name == "von_mises":
        return von_mises(state.stress)
    if name == "temperature":
        return state.temperature.copy()
    n = len(state.stress)
    if name == "cumulated_plastic_strain":
        out = np.zeros(n)
        for reg, st in zip(regions, state.law_states):
            out[reg.points] = reg.law.cumulated_plastic_strain(st)
        return out
    if name in ("plastic_strain", "back_stress"):
        first = "eps_p_xx" if name == "plastic_strain" else "X_xx"
        out = np.zeros((n, 6))
        for reg, st in zip(regions, state.law_states):
            names = reg.law.state_names
            if first in names:
                i = names.index(first)
                out[reg.points] = st[:, i:i + 6]
        return out
    raise OnlineError(f"unknown dual quantity {name!r}; known: {sorted(DUAL_QUANTITIES)}")
