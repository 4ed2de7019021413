"""Online entry evaluators of a separated model: the ``d`` selected entries ``A(mu)[i_l, j_l]`` for a new mu.

Two sources, chosen offline (``[separated.online] entries``) and recorded in the model file:

* ``"fe_kernel"`` (:class:`FEKernelEntries`): the model carries the deck's mesh, its material (a law
  configuration, :func:`structrom.rom.materials.law_from_config`) and the temperature family (a temperature
  table of :func:`structrom.rom.loading_dict.temperature_from_config` in which a string equal to a parameter name stands
  for that parameter's value). The entries are integrated over the elements touching the selected dofs only
  (:class:`structrom.rom.eim_entries.StiffnessEntries`): exact up to the black box's own quadrature, cost independent
  of the mesh size. Requires that the black box computes ``A(mu)`` as our FE kernel does (same element,
  same evaluation of ``E(T)`` at the integration points; for CalculiX: C3D4/C3D10/C3D20R/C3D6/C3D15, see
  :mod:`structrom.rom.adapters.calculix`).
* ``"interpolation"`` (:class:`InterpolatedEntries`): the black box only gave matrices. The ``d`` entries are
  interpolated over the parameter domain from their training values (thin-plate-spline RBF with a linear
  polynomial on parameters scaled to [0, 1] by their ranges, exact at the training parameters). Its
  accuracy is that of a scattered-data interpolation of ``d`` scalar functions; the a posteriori
  estimator does not see this error (it measures the residual of the separated system). Separated
  right-hand sides always use it (there is no FE vector entry evaluator).
"""
from __future__ import annotations

import numpy as np

from .errors import OnlineError


def fill_template(template, names: list[str], mu: np.ndarray):
    """``template`` with every string equal to a parameter name replaced by its value (recursively)."""
    if isinstance(template, str):
        return float(mu[names.index(template)]) if template in names else template
    if isinstance(template, dict):
        return {k: fill_template(v, names, mu) for k, v in template.items()}
    if isinstance(template, (list, tuple)):
        return [fill_template(v, names, mu) for v in template]
    return template


class FEKernelEntries:
    """Entries of ``A(mu) = K(T(mu))`` by the FE kernel on the elements touching the requested dofs.

    ``mesh``: the deck's mesh; ``material``: law configuration; ``temperature``: template (see
    :func:`fill_template`); ``names``: parameter names; ``dof_map`` ``(n,)``: our dof of each matrix row;
    ``time``: time at which the temperature field is evaluated.
    """

    def __init__(self, mesh, material: dict, temperature: dict, names: list[str], dof_map: np.ndarray,
                 time: float = 1.0) -> None:
        from structrom.rom.eim_entries import StiffnessEntries
        from structrom.rom.loading_dict import temperature_from_config
        from structrom.rom.materials import law_from_config

        self.names = list(names)
        self.template = temperature
        self.dof_map = np.asarray(dof_map, dtype=np.int64)
        law = law_from_config(material)
        self._temperature = temperature_from_config
        self.kernel = StiffnessEntries(mesh, law, self.field, None, time=time)

    def field(self, mu):
        return self._temperature(fill_template(self.template, self.names, np.asarray(mu, float)))

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.kernel.entries(mu, self.dof_map[np.asarray(rows)], self.dof_map[np.asarray(cols)])


class InterpolatedEntries:
    """Entries interpolated over the parameters from their training values.

    ``training_parameters`` ``(m, p)``; ``ranges`` ``(p, 2)``; ``rows``, ``cols`` ``(d,)`` the entries it
    knows; ``values`` ``(d, m)`` their training values. With one training parameter the values are constant.
    """

    def __init__(self, training_parameters: np.ndarray, ranges: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 values: np.ndarray) -> None:
        from scipy.interpolate import RBFInterpolator

        P = np.asarray(training_parameters, float)
        self.lo = np.asarray(ranges, float)[:, 0]
        span = np.asarray(ranges, float)[:, 1] - self.lo
        self.scale = np.where(span > 0, span, 1.0)
        self.rows, self.cols = np.asarray(rows), np.asarray(cols)
        values = np.asarray(values, float)
        self._const = values[:, 0] if len(P) == 1 else None
        if self._const is None:
            # a linear polynomial needs p + 1 affinely independent points: fall back to degree 0 otherwise
            X = (P - self.lo) / self.scale
            degree = 1 if np.linalg.matrix_rank(np.hstack([X, np.ones((len(X), 1))])) == X.shape[1] + 1 else 0
            self._rbf = RBFInterpolator(X, values.T, kernel="thin_plate_spline", degree=degree)

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if not (np.array_equal(np.asarray(rows), self.rows) and np.array_equal(np.asarray(cols), self.cols)):
            raise OnlineError("interpolated entries are only known at the model's selected entries")
        if self._const is not None:
            return self._const.copy()
        x = (np.asarray(mu, float).reshape(1, -1) - self.lo) / self.scale
        return self._rbf(x)[0]
