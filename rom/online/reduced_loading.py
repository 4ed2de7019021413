"""A loading as a reduced model sees it: validation, temperatures at the reduced points, reduced forces.

:class:`LoadingEvaluation` (a mixin of :class:`~structrom.rom.online.model.ReducedModel`) checks a loading
against the model (:mod:`structrom.rom.online.schema`), restricts a nodal temperature field to the model's
``n_tn`` temperature nodes, evaluates the temperatures ``(n_rp,)`` at the reduced points (and at the
validation points) and the reduced external force ``(N,)`` at a time. Nothing of the mesh size is touched.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from structrom.rom.lifting import load_vector
from structrom.rom.loading import Loading, LoadingError, NodalTemperature

from .schema import as_loading, check_family, check_structure


class LoadingEvaluation:
    """The loading-side methods of :class:`~structrom.rom.online.model.ReducedModel`.

    A mixin: it reads the host's ``data``, ``n_mesh_nodes``, ``n_modes``, ``validation`` and ``_interp``
    (the ``(n_rp, n_tn)`` temperature interpolation).
    """

    def _restricted(self, loading: Loading) -> Loading:
        """The loading with a nodal temperature field restricted to the model's temperature nodes."""
        temp = loading.temperature
        if isinstance(temp, NodalTemperature) and temp.values.shape[1] == self.n_mesh_nodes:
            temp = NodalTemperature(np.asarray(temp.times, float), temp.values[:, self.data.temperature_nodes])
            return dataclasses.replace(loading, temperature=temp)
        return loading

    def _temperature_nodes(self, loading: Loading, t: float) -> np.ndarray:
        return loading.nodal_temperature(t, self.data.temperature_coordinates)

    def temperature(self, loading: Loading, t: float) -> np.ndarray:
        """``(n_rp,)`` temperatures at the reduced points at time ``t`` (loading already restricted)."""
        return self._interp @ self._temperature_nodes(loading, t)

    def external_force(self, loading: Loading, t: float) -> np.ndarray:
        """``f_ext(t)`` ``(N,)``: pressures x amplitudes, tractions and forces (vector(t) per set),
        omega(t)^2 x centrifugal, gravity."""
        d = self.data
        return load_vector(loading, t, {"pressure": d.pressure, "traction": d.traction, "force": d.force,
                                        "centrifugal": d.centrifugal, "gravity": d.gravity}, self.n_modes)

    def check_loading(self, loading: Loading | dict, *, extrapolate: bool = False) -> tuple[Loading, list[str]]:
        """Validate ``loading`` for this model (see :mod:`structrom.rom.online.schema`).

        Returns the loading (temperature restricted to the model's temperature nodes) and the list of
        family violations (non-empty only with ``extrapolate=True``). Raises
        :class:`~structrom.rom.loading.LoadingError`.
        """
        loading, violations, _, _ = self._check(loading, extrapolate)
        return loading, violations

    def _check(self, loading: Loading | dict, extrapolate: bool) -> tuple[Loading, list[str], dict, dict]:
        """:meth:`check_loading`, also returning the temperatures at the reduced points and at the
        validation points for each of ``loading.times`` (computed once here for the checks, reused by the
        solve)."""
        d = self.data
        loading = as_loading(loading)
        check_structure(loading, pressure=d.pressure, centrifugal=d.centrifugal,
                        centrifugal_axis=d.centrifugal_axis, gravity=d.gravity, dirichlet=d.dirichlet,
                        n_mesh_nodes=self.n_mesh_nodes, n_temperature_nodes=len(d.temperature_nodes),
                        traction=d.traction, force=d.force, lifting=d.lifting)
        loading = self._restricted(loading)
        # temperatures at every time of the loading (raises LoadingError on non-finite values)
        nodal = loading.nodal_temperatures(loading.times, d.temperature_coordinates)
        violations = check_family(loading, d.loading_schema, lambda: nodal)
        if violations and not extrapolate:
            raise LoadingError("; ".join(violations) + ". This loading is outside the model's training family: "
                               "pass extrapolate=True (REST: \"extrapolate\": true) to solve it anyway "
                               "(check result.indicator)")
        at_points = np.ascontiguousarray((self._interp @ nodal.T).T)  # (n_times, n_rp): contiguous rows
        at_val = {}
        if self.validation is not None:
            val = np.ascontiguousarray((self.validation.interp @ nodal.T).T)
            at_val = {float(t): val[i] for i, t in enumerate(loading.times)}
        return loading, violations, {float(t): at_points[i] for i, t in enumerate(loading.times)}, at_val

    def _validation_temperature(self, loading: Loading, t: float, at_val: dict) -> np.ndarray | None:
        if self.validation is None:
            return None
        if t in at_val:
            return at_val[t]
        return self.validation.interp @ self._temperature_nodes(loading, t)
