"""Imposed displacements given twice to one node and component: two prescriptions must have one history there
(the HF solver, the lifting of the reduced model and the queries refuse them otherwise), so that no definition wins
over another without a word."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structrom.rom.loading import ImposedDisplacement, LoadingError


@dataclass(frozen=True)
class DisplacementOverlap:
    """Two imposed displacements ``first`` < ``second`` (indices in the loading's list) that prescribe
    component ``component`` of node ``node`` (0-based mesh index) with different values: ``values``
    ``(2,)`` at time ``time``."""

    first: int
    second: int
    node: int
    component: int
    time: float
    values: tuple[float, float]

    def message(self, labels: tuple[str, str], points: np.ndarray) -> str:
        """One line naming both specifications by ``labels``, the node (index and coordinates ``points``
        ``(n_nodes, 3)``), the component, the two values and the fix."""
        where = tuple(float(x) for x in points[self.node])
        return (f"{labels[0]} and {labels[1]} both prescribe {'xyz'[self.component]} at node {self.node} {where} "
                f"with different values ({self.values[0]:g} and {self.values[1]:g} at t={self.time:g}): one would "
                "override the other; give the shared nodes one value (the same value and amplitude in both, or "
                "remove the shared nodes from one of the node sets)")


def displacement_history(d: ImposedDisplacement, times: np.ndarray) -> np.ndarray:
    """``(len(times),)``: the prescribed value ``value x amplitude(t)`` of ``d``."""
    return float(d.value) * d.amplitude(np.asarray(times, dtype=float))


def comparison_times(displacements, times: np.ndarray) -> np.ndarray:
    """The times ``times`` and every amplitude breakpoint of ``displacements`` between ``times[0]`` and
    ``times[-1]``: two piecewise-linear histories equal at these times are equal on the whole interval (the
    HF solver's cut-back increments included)."""
    times = np.asarray(times, dtype=float)
    knots = np.concatenate([times] + [d.amplitude.times for d in displacements])
    return np.unique(knots[(knots >= times[0]) & (knots <= times[-1])])


def same_history(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two prescribed histories ``(n_times,)`` agree to rounding (1e-12 of the larger magnitude)."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return bool(np.all(np.abs(a - b) <= 1e-12 * scale))


def check_named_once(first: ImposedDisplacement, again: ImposedDisplacement, target: str) -> None:
    """Refuse two imposed displacements of one query, ``first`` and ``again``, that drive the same prescribed
    ``target`` (e.g. ``right`` with components ``["x"]`` and ``right.x``) with different histories: the later
    one replaced the earlier without a word. The same history given twice is accepted."""
    if first is again:
        return
    t = comparison_times((first, again), np.concatenate([first.amplitude.times, again.amplitude.times, [0.0]]))
    if not same_history(displacement_history(first, t), displacement_history(again, t)):
        raise LoadingError(f"loading.displacement.{first.node_set} and loading.displacement.{again.node_set} both "
                           f"set {target} with different values: give it once")


def prescribed_dofs(d: ImposedDisplacement, node_set) -> np.ndarray:
    """``(m,)`` sorted global dofs ``3 node + component`` that ``d`` prescribes; ``node_set``: set name -> node
    indices (``Mesh.node_set``)."""
    nodes = np.asarray(node_set(d.node_set), np.int64)
    return np.unique((3 * nodes[:, None] + np.asarray(d.components, np.int64)).ravel())


def displacement_overlap(displacements, node_set, times: np.ndarray) -> DisplacementOverlap | None:
    """The first pair of ``displacements`` (:class:`ImposedDisplacement`) that prescribe a common node and
    component with different histories over ``times`` (``(n,)``, the loading's times), or None. ``node_set``:
    set name -> node indices ``(m,)`` (``Mesh.node_set``). Overlaps with the same history (two symmetry
    faces sharing an edge, both 0) are no conflict."""
    displacements = list(displacements)
    t = comparison_times(displacements, times)
    hist = [displacement_history(d, t) for d in displacements]
    dofs = [prescribed_dofs(d, node_set) for d in displacements]
    for i in range(len(displacements)):
        for j in range(i + 1, len(displacements)):
            if same_history(hist[i], hist[j]):
                continue
            shared = np.intersect1d(dofs[i], dofs[j], assume_unique=True)
            if len(shared):
                gap = np.abs(hist[i] - hist[j])
                k = 1 + int(np.argmax(gap[1:])) if len(t) > 1 and gap[1:].any() else 0  # a time after the start
                return DisplacementOverlap(i, j, int(shared[0] // 3), int(shared[0] % 3), float(t[k]),
                                           (float(hist[i][k]), float(hist[j][k])))
    return None
