"""Replay of the constitutive laws over a snapshot's loading history (nonintrusive dual quantities).

Only displacements are data: strains ``eps = B u`` at this rank's integration points, temperatures from the
loading, and the declared laws integrated increment after increment from the virgin state give the
stresses and internal variables the HF code computed (to its equilibrium tolerance).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import Mesh, MeshError
from structrom.rom.loading import Loading
from structrom.rom.materials import ConstitutiveLaw


@dataclass
class MaterialRegions:
    """Laws over a Discretization's points: ``laws[i]`` on ``points[i]``; ``index`` ``(n_points,)``."""

    laws: list[ConstitutiveLaw]
    points: list[np.ndarray]
    index: np.ndarray

    @classmethod
    def build(cls, mesh: Mesh, disc: Discretization, materials: list[tuple[str | None, ConstitutiveLaw]]):
        index = np.full(disc.n_points, -1, dtype=np.int64)
        default = None
        for i, (element_set, _) in enumerate(materials):
            if element_set is None:
                default = i
                continue
            pts = np.isin(disc.point_elements, mesh.element_set(element_set)) & (index < 0)
            index[pts] = i
        if default is not None:
            index[index < 0] = default
        if np.any(index < 0):
            raise MeshError(f"{int((index < 0).sum())} integration points have no material")
        laws = [law for _, law in materials]
        return cls(laws, [np.flatnonzero(index == i) for i in range(len(laws))], index)


@dataclass
class Replay:
    """Per increment at this rank's points: strain, stress ``(n_inc, n, 6)``; p ``(n_inc, n)``; back stress
    ``(n_inc, n, 6)`` (None when no law has kinematic hardening)."""

    strain: np.ndarray
    stress: np.ndarray
    cumulated_plastic_strain: np.ndarray
    back_stress: np.ndarray | None = None


def replay(disc: Discretization, regions: MaterialRegions, loading: Loading, displacements: np.ndarray,
           points: np.ndarray, rows: np.ndarray | None = None) -> Replay:
    """Integrate the laws along ``displacements`` ``(n_inc, n_nodes, 3)`` at times ``loading.times[1:]``.

    ``points``: node coordinates ``(n_nodes, 3)`` for evaluating the temperature field. With ``rows``
    ``(n_rows,)`` (the global dofs of this rank's elements), ``displacements`` holds only those dofs,
    ``(n_inc, n_rows)`` (or ``(n_inc, n_rows / 3, 3)``); one increment at a time is scattered into a
    global vector for the strains.
    """
    n_inc, n = len(displacements), disc.n_points
    strain = np.zeros((n_inc, n, 6))
    stress = np.zeros((n_inc, n, 6))
    p = np.zeros((n_inc, n))
    kinematic = any("X_xx" in law.state_names for law in regions.laws)
    back = np.zeros((n_inc, n, 6)) if kinematic else None
    states = [law.initial_state(len(pts)) for law, pts in zip(regions.laws, regions.points)]
    eps_old = np.zeros((n, 6))
    temp_old = disc.interpolate_temperature(loading.nodal_temperature(float(loading.times[0]), points))
    for k in range(n_inc):
        t_old, t_new = float(loading.times[k]), float(loading.times[k + 1])
        if rows is None:
            eps = disc.strain(displacements[k].ravel())
        else:
            u = np.zeros(disc.n_dofs)
            u[rows] = displacements[k].ravel()
            eps = disc.strain(u)
        temp_new = disc.interpolate_temperature(loading.nodal_temperature(t_new, points))
        for r, (law, pts) in enumerate(zip(regions.laws, regions.points)):
            resp = law.integrate(eps_old[pts], eps[pts] - eps_old[pts], temp_old[pts], temp_new[pts],
                                 t_new - t_old, states[r])
            stress[k, pts] = resp.stress
            p[k, pts] = law.cumulated_plastic_strain(resp.state)
            if back is not None and "X_xx" in law.state_names:
                i = law.state_names.index("X_xx")
                back[k, pts] = resp.state[:, i:i + 6]
            states[r] = resp.state
        strain[k] = eps
        eps_old, temp_old = eps, temp_new
    return Replay(strain, stress, p, back)
