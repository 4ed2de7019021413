"""Norton elasto-viscoplasticity (Perzyna/Norton overstress) with isotropic hardening."""
from __future__ import annotations

import numpy as np

from .elastic import LinearElastic
from .hardening import Hardening, hardening_from_config
from .kinematic import KinematicHardening, kinematic_from_config
from .plasticity import RadialReturnLaw
from .tables import TableLike, as_table


class NortonViscoplasticity(RadialReturnLaw):
    """``dp/dt = < (sigma_eq - R(p, T)) / K(T) >^n(T)``, flow direction ``3/2 s / sigma_eq``.

    Backward Euler (all parameters at T_new) gives, with dp the increment over ``dt``,

        g(dp) = q_trial - 3 G dp - R(p_old + dp) - K (dp / dt)^(1/n) = 0,

    the overstress form that stays well scaled for large ``n`` (residual in stress units). It is
    solved by the bracketed Newton of :func:`structrom.rom.materials.newton.solve_decreasing`, the tangent is
    the radial-return one with ``F' = dR/dp + K / (n dt) (dp / dt)^(1/n - 1)``.

    Parameters
    ----------
    elastic: :class:`LinearElastic` part.
    hardening: ``R(p, T)``, includes the initial yield stress (may be 0).
    K: drag stress table [stress * time^(1/n)], > 0.
    n: Norton exponent table [-], > 0.
    kinematic: optional back stress (:class:`KinematicHardening`); the overstress is then measured from
        the moved yield surface, ``q(s - X) - R``.
    """

    name = "norton_viscoplasticity"
    _require_positive_dt = True

    def __init__(self, elastic: LinearElastic, hardening: Hardening, K: TableLike,
                 n: TableLike, kinematic: KinematicHardening | None = None) -> None:
        super().__init__(elastic, hardening, kinematic)
        self.K = as_table(K, "K")
        self.n = as_table(n, "n")
        self.K.check_range(lower=0.0, lower_strict=True,
                           hint="the Norton drag stress K must be positive")
        self.n.check_range(lower=0.0, lower_strict=True,
                           hint="the Norton exponent n must be positive")

    def _viscous_setup(self, temperature: np.ndarray, dt: float) -> dict:
        return {"K": self.K(temperature), "inv_n": 1.0 / self.n(temperature), "dt": dt}

    def _viscous_stress(self, dp, idx, ctx):
        k, inv_n, dt = ctx["K"][idx], ctx["inv_n"][idx], ctx["dt"]
        rate = dp / dt
        with np.errstate(divide="ignore", invalid="ignore"):
            v = k * rate ** inv_n
            dv = k * inv_n / dt * rate ** (inv_n - 1.0)  # inf at dp = 0 when n > 1
        return v, dv

    def _upper_bound(self, f_trial, ctx):
        # without elastic relief and hardening, dp = dt (f / K)^n exactly bounds the root
        with np.errstate(over="ignore"):
            return ctx["dt"] * (f_trial / ctx["K"]) ** (1.0 / ctx["inv_n"])

    def to_config(self) -> dict:
        cfg = self._base_config()
        cfg["K"] = self.K.to_config()
        cfg["n"] = self.n.to_config()
        return cfg

    @classmethod
    def from_config(cls, cfg: dict) -> "NortonViscoplasticity":
        from .registry import _take
        kw = _take(cfg, cls.name, required=("elastic", "hardening", "K", "n"), optional=("kinematic",))
        return cls(LinearElastic.from_config(kw["elastic"]), hardening_from_config(kw["hardening"]),
                   kw["K"], kw["n"], kinematic_from_config(kw.get("kinematic")))
