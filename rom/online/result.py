"""What an online solve returns: reduced coordinates, indicators and lazy reconstructions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from structrom.rom.voigt import von_mises

if TYPE_CHECKING:  # pragma: no cover
    from structrom.rom.loading import Loading

    from .model import ReducedModel


def _finite(a: np.ndarray) -> list:
    """``a`` as a list with non-finite values as None (JSON has no infinity)."""
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, None).tolist()


@dataclass
class Result:
    """Outcome of :meth:`structrom.rom.online.ReducedModel.solve` (``n_inc`` requested increments).

    Attributes
    ----------
    times: ``(n_inc,)`` end time of each increment (``loading.times[1:]``).
    coordinates: ``(n_inc, N)`` reduced coordinates ``q`` (displacement ``u = Phi q``).
    newton_iterations, cutbacks: ``(n_inc,)`` per increment (iterations summed over cut-back sub-steps).
    residuals: ``(n_inc,)`` final relative residual of each increment.
    indicator: ``(n_inc,)``: for a calibrated model, the largest of ``error_bounds`` (bounds of the relative
        errors, see :mod:`structrom.rom.online.indicator`); otherwise
        ``E = ||p_rp - Psi_rp beta*|| / max(||p_rp||, p_ref)`` of the model's indicator quantity (Gappy
        residual at the reduced points; ``p_ref``: ``model.data.indicator_reference``, the largest training
        norm at the reduced points; ``E = 0`` when ``p_rp == 0``, e.g. elastic).
    trusted: ``(n_inc,)`` bool, ``indicator <= model.indicator_tolerance``.
    indicator_components: component name -> ``(n_inc,)`` raw per-increment components (empty when
        solved with ``indicator=False``).
    error_bounds: quantity (``displacement``, ``stress``, ``cumulated_plastic_strain``) -> ``(n_inc,)``
        calibrated bounds of its relative error so far (empty for an uncalibrated model). Each bounds its own
        quantity on the calibration cases; beyond them only their largest, ``indicator``, which the trust flag
        uses, has been validated against the largest true error (docs/rom_accuracy.md: on cyclic loadings the
        displacement and stress bounds alone fell below their own errors on about half of the validation set,
        the p bound covering every largest error): read them as a breakdown, not as separate guarantees.
    dual_reduced: quantity -> ``(n_inc, n_rp)`` or ``(n_inc, n_rp, 6)`` values at the reduced points,
        for every dual quantity of the model.
    stress_reduced: ``(n_inc, n_rp, 6)`` stress at the reduced points.
    timings: seconds: ``total``, ``check`` (loading validation), ``per_increment`` ``(n_inc,)``,
        ``law`` (constitutive law evaluations, ``law_calls`` calls), ``linear`` (reduced tangent + solve).
    warnings: family violations accepted with ``extrapolate=True`` (empty otherwise).
    """

    model: "ReducedModel"
    loading: "Loading"
    times: np.ndarray
    coordinates: np.ndarray
    newton_iterations: np.ndarray
    cutbacks: np.ndarray
    residuals: np.ndarray
    indicator: np.ndarray
    trusted: np.ndarray
    dual_reduced: dict[str, np.ndarray]
    stress_reduced: np.ndarray
    timings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    indicator_components: dict[str, np.ndarray] = field(default_factory=dict)
    error_bounds: dict[str, np.ndarray] = field(default_factory=dict)
    #: ``(n_inc, n_G)`` prescribed-displacement amplitudes of the lifting (:mod:`structrom.rom.lifting`)
    lift: np.ndarray | None = None
    #: ``<set>.<axis>`` -> ``(n_inc,)`` reaction resultant on each prescribed set along each prescribed axis
    #: [force]: the force the support applies to the part there (sum over the set's dofs of f_int - f_ext)
    reactions: dict[str, np.ndarray] = field(default_factory=dict)
    #: ``(n_inc, n_rp, 6)`` total strain at the reduced points (engineering shears), or None
    strain_reduced: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"Result({self.n_increments} increments, t={self.times[-1]:g}, Newton "
                f"{self.newton_iterations.tolist()}, indicator max {self.indicator.max():.3g}, "
                f"trusted {bool(self.trusted.all())}, {self.timings.get('total', 0.0) * 1e3:.1f} ms)")

    @property
    def n_increments(self) -> int:
        return len(self.times)

    @property
    def extrapolated(self) -> bool:
        """True when the loading was outside the training family (solved with ``extrapolate=True``)."""
        return bool(self.warnings)

    def _increments(self, increment: int | None) -> tuple[np.ndarray, bool]:
        """Indices of the selected increments and whether a single one was asked for."""
        from .errors import OnlineError

        n = self.n_increments
        if increment is None:
            return np.arange(n), False
        i = int(increment)
        if not -n <= i < n:
            raise OnlineError(f"increment {increment} is out of range: the result has {n} increments "
                              f"(0..{n - 1}, or negative from the end)")
        return np.array([i % n]), True

    def displacement(self, nodes: np.ndarray | str | None = None, increment: int | None = -1) -> np.ndarray:
        """Nodal displacements ``u = Phi q`` from the full modes (read lazily from the model file).

        ``nodes``: node indices, a node-set name of the model's mesh, or None (all nodes);
        ``increment``: an increment index (default the last) or None for all. Returns ``(n_nodes, 3)``,
        or ``(n_inc, n_nodes, 3)`` with ``increment=None``.
        """
        from .errors import OnlineError

        idx, single = self._increments(increment)
        if isinstance(nodes, str):
            nodes = self.model.node_set(nodes)
        if nodes is None:
            Phi = self.model.modes()
            n_nodes = Phi.shape[0] // 3
        else:
            nodes = np.asarray(nodes)
            if nodes.ndim != 1 or (nodes.size and not np.issubdtype(nodes.dtype, np.integer)):
                raise OnlineError(f"nodes must be a 1-D array of node indices or a node-set name, got {nodes!r}")
            n_mesh = self.model.n_mesh_nodes
            if nodes.size and (nodes.min() < 0 or (n_mesh is not None and nodes.max() >= n_mesh)):
                raise OnlineError(f"node indices must be in 0..{n_mesh - 1 if n_mesh else '?'}")
            Phi = self.model.modes((3 * nodes[:, None] + np.arange(3)).ravel())
            n_nodes = len(nodes)
        u = Phi @ self.coordinates[idx].T
        if self.lift is not None and self.lift.shape[1]:  # + sum_j b_j G_j
            G = self.model.lifting_fields(None if nodes is None else (3 * nodes[:, None] + np.arange(3)).ravel())
            u = u + G @ self.lift[idx].T
        u = u.T.reshape(len(idx), n_nodes, 3)
        return u[0] if single else u

    def dual_field(self, quantity: str, increment: int | None = -1) -> np.ndarray:
        """Gappy reconstruction of a dual quantity over all integration points of the mesh:
        ``Psi beta*`` with ``beta*`` the least-squares fit of the reduced-point values.

        Returns ``(n_points,)`` (scalars) or ``(n_points, 6)`` (tensors), or with ``increment=None`` an
        extra leading ``(n_inc,)`` axis. Reads the full basis from the file on first use.
        """
        from .errors import OnlineError

        if quantity not in self.dual_reduced:
            raise OnlineError(f"no dual quantity {quantity!r} in this result; available: "
                              f"{sorted(self.dual_reduced)}")
        idx, single = self._increments(increment)
        gappy = self.model.gappy[quantity]
        values = self.dual_reduced[quantity][idx].reshape(len(idx), -1)  # (k, n_rp c)
        beta = gappy.coefficients(values.T)  # (m, k)
        full = beta.T @ self.model.dual_basis(quantity).T  # (k, n_points c), C-ordered: reshapes are views
        c = gappy.components
        out = full.reshape((len(idx), -1) if c == 1 else (len(idx), -1, c))
        return out[0] if single else out

    def max_von_mises(self, reconstruct: bool | None = None) -> np.ndarray:
        """``(n_inc,)`` largest von Mises stress per increment: over the reconstructed stress field if the
        model has a ``stress`` dual basis (or ``reconstruct=True``), else over the reduced points."""
        if reconstruct is None:
            reconstruct = "stress" in self.dual_reduced
        if reconstruct:
            from .errors import OnlineError

            if "stress" not in self.dual_reduced:
                raise OnlineError(f"no dual quantity 'stress' in this result; available: {sorted(self.dual_reduced)}")
            # von Mises^2 = ||V sigma||^2 at each point (V: see ReducedModel.von_mises_basis), so the
            # reconstructed field's maximum needs one product with the basis and no stress tensor
            values = self.dual_reduced["stress"].reshape(self.n_increments, -1)
            beta = self.model.gappy["stress"].coefficients(values.T)  # (m, n_inc)
            y = beta.T @ self.model.von_mises_basis().T  # (n_inc, n_points 6)
            y *= y
            vm2 = y.reshape(-1, 6) @ np.ones(6)  # sum of the 6 squares (a product: much faster than .sum(-1))
            return np.sqrt(vm2.reshape(self.n_increments, -1).max(axis=1))
        return von_mises(self.stress_reduced).max(axis=1)

    def cycles(self, bounds) -> dict[str, np.ndarray]:
        """Per-cycle quantities at the reduced points (:mod:`structrom.rom.online.cycles`: ``strain_range``,
        ``mean_stress``, ``stress_amplitude``, ``ratcheting``), each ``(n_cycles, n_rp)``, for cycle
        ``bounds`` (increasing times, increment ends of the loading; the first may be its start time). The
        reduced points include the cubature's points where the energy concentrates; ``model.data.point``
        gives their integration-point numbers."""
        from .cycles import CycleError, cycle_quantities
        from .errors import OnlineError

        if self.strain_reduced is None:
            raise OnlineError("this result has no strains at the reduced points")
        try:
            return cycle_quantities(self.times, self.strain_reduced, self.stress_reduced, np.asarray(bounds, float))
        except CycleError as exc:
            raise OnlineError(str(exc)) from None

    def summary(self) -> dict:
        """A JSON-serializable summary (no full-size data)."""
        return {
            "times": self.times.tolist(), "newton_iterations": self.newton_iterations.tolist(),
            "cutbacks": self.cutbacks.tolist(), "indicator": self.indicator.tolist(),
            "trusted": self.trusted.tolist(), "indicator_tolerance": self.model.indicator_tolerance,
            "error_bounds": {k: _finite(v) for k, v in self.error_bounds.items()},
            "indicator_components": {k: _finite(v) for k, v in self.indicator_components.items()},
            "max_von_mises_reduced_points": von_mises(self.stress_reduced).max(axis=1).tolist(),
            "warnings": list(self.warnings),
            "timings": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.timings.items()},
        }
