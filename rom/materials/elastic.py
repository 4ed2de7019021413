"""Isotropic, temperature-dependent linear (thermo-)elasticity."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..voigt import IDENTITY, isotropic_stiffness
from .base import ConstitutiveLaw, MaterialResponse, check_increment, check_temperature
from .errors import MaterialError
from .tables import TableLike, as_table


@dataclass(frozen=True)
class ElasticProperties:
    """Elastic data at ``n`` temperatures (read-only arrays, shared by the memo of :class:`LinearElastic`).

    ``temperature`` ``(n,)``; ``shear``, ``bulk``, ``lame`` (lambda) ``(n,)`` [stress]; ``tangent``
    ``(n, 6, 6)``; ``thermal_strain`` ``(n, 6)`` (engineering shears, zero)."""

    temperature: np.ndarray
    shear: np.ndarray
    bulk: np.ndarray
    lame: np.ndarray
    tangent: np.ndarray
    thermal_strain: np.ndarray

    def stress(self, strain: np.ndarray) -> np.ndarray:
        """``C : strain`` ``(n, 6)`` for mechanical strains ``(n, 6)`` (engineering shears), using
        isotropy: ``lambda tr(eps) I + 2 mu eps`` (normal), ``mu gamma`` (shear); same as ``tangent @ eps``."""
        out = strain * (self.shear[:, None] * _HOOKE_DIAG)
        out[:, :3] += (self.lame * strain[:, :3].sum(1))[:, None]
        return out


#: Diagonal factors of the isotropic Hooke law on engineering-shear Voigt strains (times mu).
_HOOKE_DIAG = np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0])


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class LinearElastic(ConstitutiveLaw):
    """Isotropic Hooke law with temperature tables for E, nu and the secant expansion coefficient.

    ``sigma = C(E(T), nu(T)) : (eps - eps_th(T))`` with
    ``eps_th = alpha(T) (T - reference_temperature) [1, 1, 1, 0, 0, 0]``: ``alpha`` is the SECANT
    coefficient about ``reference_temperature`` (CalculiX ``*EXPANSION, ZERO=reference_temperature``).

    Parameters
    ----------
    young: Young's modulus table [stress], > 0.
    poisson: Poisson's ratio table [-], in (-1, 0.5).
    expansion: secant thermal expansion coefficient table [1/temperature].
    reference_temperature: temperature of zero thermal strain.
    density: mass density [mass/volume], >= 0.
    """

    name = "linear_elastic"
    state_names: tuple[str, ...] = ()

    def __init__(self, young: TableLike, poisson: TableLike, expansion: TableLike = 0.0,
                 reference_temperature: float = 0.0, density: float = 0.0) -> None:
        self.young = as_table(young, "young")
        self.poisson = as_table(poisson, "poisson")
        self.expansion = as_table(expansion, "expansion")
        self.young.check_range(lower=0.0, lower_strict=True,
                               hint="give Young's modulus as a positive stiffness")
        self.poisson.check_range(lower=-1.0, lower_strict=True, upper=0.5, upper_strict=True,
                                 hint="an isotropic solid needs -1 < poisson < 0.5 "
                                      "(use e.g. 0.4999 for near-incompressibility)")
        try:
            self.reference_temperature = float(reference_temperature)
            self.density = float(density)
        except (TypeError, ValueError):
            raise MaterialError("reference_temperature and density must be numbers") from None
        if not np.isfinite(self.reference_temperature):
            raise MaterialError("reference_temperature must be finite")
        if not np.isfinite(self.density) or self.density < 0.0:
            raise MaterialError(f"density must be finite and >= 0 (got {self.density})")

    # ------------------------------------------------------------------ elastic pieces
    def properties(self, temperature: np.ndarray) -> ElasticProperties:
        """:class:`ElasticProperties` at temperatures ``(n,)``, memoized on the last temperature array:
        Newton iterations of one increment (HF or reduced) call the law at the same temperatures, and the
        tables, tangents and thermal strains are then evaluated once. Thread-safe (one tuple swap)."""
        t = check_temperature(temperature)
        memo = getattr(self, "_memo", None)
        if memo is not None and memo.temperature.shape == t.shape and np.array_equal(memo.temperature, t):
            return memo
        g, k = self.shear_bulk(t)
        memo = ElasticProperties(_frozen(t.copy()), _frozen(g), _frozen(k), _frozen(k - 2.0 * g / 3.0),
                                 _frozen(isotropic_stiffness(self.young(t), self.poisson(t))),
                                 _frozen((self.expansion(t) * (t - self.reference_temperature))[..., None] * IDENTITY))
        self._memo = memo
        return memo

    def shear_bulk(self, temperature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shear and bulk moduli ``(n,)`` at temperatures ``(n,)``."""
        e = self.young(temperature)
        nu = self.poisson(temperature)
        return e / (2.0 * (1.0 + nu)), e / (3.0 * (1.0 - 2.0 * nu))

    def thermal_strain(self, temperature: np.ndarray) -> np.ndarray:
        t = check_temperature(temperature)
        return ((self.expansion(t) * (t - self.reference_temperature))[..., None] * IDENTITY)

    def elastic_tangent(self, temperature: np.ndarray) -> np.ndarray:
        t = check_temperature(temperature)
        return isotropic_stiffness(self.young(t), self.poisson(t))

    # ------------------------------------------------------------------ law
    def integrate(self, eps_old: np.ndarray, deps: np.ndarray, temp_old: np.ndarray,
                  temp_new: np.ndarray, dt: float, state_old: np.ndarray) -> MaterialResponse:
        """See :meth:`ConstitutiveLaw.integrate`; returns stress ``(n, 6)``, tangent ``(n, 6, 6)``,
        state ``(n, n_state)``."""
        eps_old, deps, temp_old, temp_new, dt, state_old = check_increment(
            eps_old, deps, temp_old, temp_new, dt, state_old, 0, require_positive_dt=False)
        props = self.properties(temp_new)
        eps_mech = eps_old + deps - props.thermal_strain
        return MaterialResponse(stress=props.stress(eps_mech), tangent=props.tangent, state=state_old.copy())

    def cumulated_plastic_strain(self, state: np.ndarray) -> np.ndarray:
        return np.zeros(np.asarray(state).shape[0])

    def to_config(self) -> dict:
        return {"type": self.name,
                "young": self.young.to_config(),
                "poisson": self.poisson.to_config(),
                "expansion": self.expansion.to_config(),
                "reference_temperature": self.reference_temperature,
                "density": self.density}

    @classmethod
    def from_config(cls, cfg: dict) -> "LinearElastic":
        from .registry import _take  # local import: registry imports this module
        kw = _take(cfg, cls.name, required=("young", "poisson"),
                   optional=("expansion", "reference_temperature", "density"))
        return cls(**kw)
