"""Calibration data of the online error indicator: the components' names, the quantities bounded, the
calibrated factors with their provenance (:class:`Calibration`), and the validation points kept out of the
reduced set (:class:`ValidationSet`). What the components are and how the bound is formed:
:mod:`structrom.rom.online.indicator`; how the factors are fitted: :mod:`structrom.rom.offline.calibration`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from structrom.mpi.errors import StructromError

from .envelope import family_distance, loading_parameters, nearest_training_distance, node_envelope_distance

#: Per-increment components, in the order of the calibration factors' columns (after the constant).
COMPONENTS = ("gappy_stress", "gappy_p", "equilibrium", "validation_stress", "validation_p", "time_step",
              "state_envelope", "loading_envelope", "plastic_sensitivity")
#: Relative strain perturbation of the ``plastic_sensitivity`` component (its calibrated factor carries the
#: ratio of the reduced model's actual strain error to it).
SENSITIVITY_STRAIN = 0.01
#: Key of ``Calibration.references`` (1.0) for models whose relative components (Gappy residuals, validation
#: errors) are measured against the largest value of the answer so far, as the true errors are; absent
#: (files calibrated before): against the increment's own value.
HISTORY_KEY = "history_normalization"
#: Key of ``Calibration.references`` (1.0) for models whose ``equilibrium`` component is relative to the force
#: reference raised as the stress is floored: ``f_ref max(1, f s_ref / max_{j <= i} ||s_rp(j)||)``, the force
#: scale the answer's own stress pattern has at the stress floor ``f s_ref`` (``f_ref`` is homogeneous of
#: degree 1 in the stress when no external force dominates it). Without it a zero loading divides round-off by
#: round-off; the true errors have the same floor. Absent (files calibrated before): the bare ``f_ref``.
FORCE_FLOOR_KEY = "equilibrium_floor"
#: Quantities whose relative errors the calibrated indicator bounds.
QUANTITIES = ("displacement", "stress", "cumulated_plastic_strain")

GUARANTEE = (
    "Upper bound on the calibration set only: on every increment of every training loading left out in turn "
    "(the reduced model rebuilt without it, solved online, compared with its HF snapshots) and answered by "
    "the model itself, the calibrated indicator of each quantity is at least the safety margin times the true "
    "relative error. Elsewhere the "
    "bound is empirical: it is not a mathematical error bound, it assumes the loading resembles the training "
    "family (the loading_envelope component grows with the distance to it, with a factor fitted on the "
    "left-out cases only), the same mesh, laws and time-step sizes of the same order; the time_step component "
    "(step doubling of the constitutive integration along the reduced solution) enters as a measure of the "
    "inelastic flow per step, not as the time-discretization error, which the HF snapshots share and that "
    "these bounds do not contain. For rate-dependent laws, past the last time of the training loadings the bounds "
    "grow in proportion to time ((t - t0) / T), assuming the error rate stays below its calibrated average.")


class IndicatorError(StructromError, ValueError):
    """Inconsistent indicator data (validation set or calibration) in a model."""


@dataclass
class ValidationSet:
    """Integration points kept out of the reduced set (``n_val`` points, ``N`` modes).

    ``integrator`` ``(n_val, 6, N)``: strain of each mode; ``weights`` ``(n_val,)`` >= 0: a second cubature
    of the training integrand (NNLS on these points); ``material`` ``(n_val,)`` index into the model's
    materials; ``interpolation`` CSR ``(n_val, n_tn)`` from the model's temperature nodes;
    ``duals``: quantity -> ``(n_val * c, m_q)`` rows of the full Gappy basis; ``point`` ``(n_val,)``
    global integration point numbers.
    """

    point: np.ndarray
    integrator: np.ndarray
    weights: np.ndarray
    material: np.ndarray
    interpolation: sp.csr_matrix
    duals: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return len(self.weights)


@dataclass
class Calibration:
    """Calibrated factors ``(n_quantities, 1 + n_components)`` (constant first) and their provenance.

    ``references``: scales of the components (``stress``, ``cumulated_plastic_strain``: largest training
    norms at the reduced points; ``*_validation``: at the validation points); ``cases``: per left-out
    case its name, largest true errors and bounds; ``margin``: the safety factor of the fit;
    ``tolerance``: the trust threshold on the relative errors.
    """

    factors: np.ndarray
    references: dict[str, float]
    margin: float
    tolerance: float
    cases: list[dict] = field(default_factory=list)
    #: parameters of the training loadings (:func:`~structrom.rom.online.envelope.loading_parameters`) and
    #: their normalization, for the ``loading_envelope`` component
    training: list[dict] = field(default_factory=list)
    scales: dict[str, float] = field(default_factory=dict)
    components: tuple[str, ...] = COMPONENTS
    quantities: tuple[str, ...] = QUANTITIES
    statement: str = GUARANTEE

    def __post_init__(self) -> None:
        self.factors = np.asarray(self.factors, dtype=float)
        want = (len(self.quantities), 1 + len(self.components))
        if self.factors.shape != want:
            raise IndicatorError(f"indicator/calibration/factors has shape {self.factors.shape}, expected {want}")
        if not (np.all(np.isfinite(self.factors)) and np.all(self.factors >= 0)):
            raise IndicatorError("indicator/calibration/factors must be finite and non-negative")
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown:  # the bounds pick this version's components by name
            raise IndicatorError(f"indicator/calibration names components this version does not compute: {unknown}")

    def bounds(self, components: np.ndarray) -> np.ndarray:
        """``(n_inc, n_quantities)`` error bounds from the raw components ``(n_inc, n_components)``, in the
        order of ``self.components`` or of :data:`COMPONENTS` (their running maxima are taken here)."""
        c = np.asarray(components, float)
        if c.ndim == 2 and c.shape[1] == len(COMPONENTS) != len(self.components):
            # a table of this version's components against a calibration of fewer (a file written before
            # a component was added): its factors apply to the components it names
            c = c[:, [COMPONENTS.index(name) for name in self.components]]
        c = np.maximum.accumulate(c, axis=0) if len(c) else c
        return self.factors[:, 0][None, :] + c @ self.factors[:, 1:].T

    def envelope(self, loading, schema: dict) -> np.ndarray:
        """``(n_inc,)`` ``loading_envelope`` component: distance to the nearest training loading (constant
        over the increments) when the training parameters are known, else to the training box."""
        if self.training:
            d = nearest_training_distance(loading_parameters(loading, schema), self.training, self.scales)
            # nodal temperature fields are not parameters: their per-node envelope counts beside them
            return np.maximum(np.full(len(loading.times) - 1, d), node_envelope_distance(loading, schema))
        return family_distance(loading, schema)

    def card(self) -> dict:
        """What the model card shows."""
        return {"quantities": list(self.quantities), "components": list(self.components),
                "factors": {q: dict(zip(("constant",) + tuple(self.components), map(float, row)))
                            for q, row in zip(self.quantities, self.factors)},
                "margin": self.margin, "tolerance": self.tolerance,
                "calibration_cases": [{k: v for k, v in c.items() if k != "samples"} for c in self.cases],
                "training_parameters": self.training, "parameter_scales": self.scales,
                "guarantee": self.statement}

    def to_attrs(self) -> dict:
        return {"components": json.dumps(list(self.components)), "quantities": json.dumps(list(self.quantities)),
                "references": json.dumps(self.references), "margin": float(self.margin),
                "tolerance": float(self.tolerance), "cases": json.dumps(self.cases), "statement": self.statement,
                "training": json.dumps(self.training), "scales": json.dumps(self.scales)}

    @classmethod
    def from_attrs(cls, attrs, factors: np.ndarray) -> "Calibration":
        try:
            return cls(factors=factors, references=json.loads(attrs["references"]), margin=float(attrs["margin"]),
                       tolerance=float(attrs["tolerance"]), cases=json.loads(attrs["cases"]),
                       training=json.loads(attrs["training"]), scales=json.loads(attrs["scales"]),
                       components=tuple(json.loads(attrs["components"])),
                       quantities=tuple(json.loads(attrs["quantities"])), statement=str(attrs["statement"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise IndicatorError(f"indicator/calibration: unreadable attributes ({exc})") from None
