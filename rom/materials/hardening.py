"""Isotropic hardening laws R(p, T): yield stress as a function of the cumulated plastic strain.

Every law returns ``(R, dR/dp)`` for arrays ``p`` and ``T`` of shape ``(n,)``. ``R`` includes the
initial yield stress. Hardening moduli must be non-negative (no softening), which keeps the
radial-return equation monotone and its solution unique.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from .errors import MaterialError
from .tables import TableLike, as_table


class Hardening(ABC):
    """Isotropic hardening ``R(p, T)`` (yield stress, same stress unit as the elastic moduli)."""

    name: str = "abstract"
    #: True when ``dR/dp`` does not depend on ``p`` (the radial return then has a closed form).
    linear_in_p: bool = False

    @abstractmethod
    def __call__(self, p: np.ndarray, temperature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Yield stress ``R`` and slope ``dR/dp`` at ``p`` ``(n,)`` and ``temperature`` ``(n,)``."""

    def initial_yield_stress(self, temperature: np.ndarray) -> np.ndarray:
        """``R(0, T)`` ``(n,)``."""
        t = np.asarray(temperature, dtype=float)
        return self(np.zeros(t.shape), t)[0]

    @abstractmethod
    def to_config(self) -> dict:
        """JSON/TOML-serializable description (inverse: :func:`hardening_from_config`)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_config()!r})"


class LinearHardening(Hardening):
    """``R = sigma_y0(T) + H(T) p`` with tables ``yield_stress`` (>= 0) and ``modulus`` H (>= 0)."""

    name = "linear"
    linear_in_p = True

    def __init__(self, yield_stress: TableLike, modulus: TableLike = 0.0) -> None:
        self.yield_stress = as_table(yield_stress, "yield_stress")
        self.modulus = as_table(modulus, "modulus")
        self.yield_stress.check_range(lower=0.0, hint="give the initial yield stress")
        self.modulus.check_range(lower=0.0, hint="softening (negative hardening modulus) is "
                                                 "not supported; use modulus >= 0")

    def __call__(self, p, temperature):
        h = self.modulus(temperature)
        return self.yield_stress(temperature) + h * p, h

    def to_config(self) -> dict:
        return {"type": self.name, "yield_stress": self.yield_stress.to_config(),
                "modulus": self.modulus.to_config()}


class VoceHardening(Hardening):
    """``R = sigma_y0(T) + Q(T) (1 - exp(-b(T) p))`` (Voce saturation law).

    ``yield_stress`` sigma_y0 >= 0, ``saturation`` Q >= 0 [stress], ``rate`` b >= 0 [-].
    """

    name = "voce"

    def __init__(self, yield_stress: TableLike, saturation: TableLike, rate: TableLike) -> None:
        self.yield_stress = as_table(yield_stress, "yield_stress")
        self.saturation = as_table(saturation, "saturation")
        self.rate = as_table(rate, "rate")
        self.yield_stress.check_range(lower=0.0, hint="give the initial yield stress")
        self.saturation.check_range(lower=0.0, hint="softening (Q < 0) is not supported")
        self.rate.check_range(lower=0.0, hint="the saturation rate b must be >= 0")

    def __call__(self, p, temperature):
        q = self.saturation(temperature)
        b = self.rate(temperature)
        e = np.exp(-b * p)
        return self.yield_stress(temperature) + q * (1.0 - e), q * b * e

    def to_config(self) -> dict:
        return {"type": self.name, "yield_stress": self.yield_stress.to_config(),
                "saturation": self.saturation.to_config(), "rate": self.rate.to_config()}


def _as_curves(x: Any, n_curves: int | None, name: str) -> list[np.ndarray]:
    """Normalise one curve (1-D) or one curve per temperature (sequence of 1-D) to a list."""
    if n_curves is None:
        a = np.asarray(x, dtype=float)
        if a.ndim != 1:
            raise MaterialError(f"{name} must be a 1-D sequence when no temperatures are given "
                                f"(got shape {a.shape})")
        return [a]
    try:
        curves = [np.asarray(c, dtype=float) for c in x]
    except TypeError:
        raise MaterialError(f"{name} must be a sequence of {n_curves} curves (one per temperature)"
                            ) from None
    if len(curves) != n_curves:
        raise MaterialError(f"{name}: {len(curves)} curves for {n_curves} temperatures; give one "
                            f"curve per temperature")
    return curves


class TabulatedHardening(Hardening):
    """Piecewise-linear yield stress vs equivalent plastic strain, matching CalculiX's ``*PLASTIC``.

    Parameters
    ----------
    plastic_strain: equivalent plastic strains of the data points, strictly increasing from 0;
        ``(m,)`` or, with ``temperatures``, one sequence per temperature (lengths may differ).
    yield_stress: von Mises yield stress at those strains (non-decreasing, >= 0); same layout.
    temperatures: optional ``(k,)`` strictly increasing temperatures, one per curve.

    Semantics (CalculiX ``plinterpol``/``plmix``/``plcopy``): beyond the last point of a curve the
    yield stress stays constant (perfect plasticity, slope 0); the slope at a data point is the one
    of the segment to its right. Below the first temperature the first curve is used, at or above
    the last temperature the last curve; for ``T_j <= T < T_{j+1}`` the two curves are interpolated
    linearly in T at equal plastic strain on the intersection of their strain ranges, i.e. up to
    ``min(last strain of curve j, last strain of curve j+1)``, constant beyond. (CalculiX resamples
    to 200 points when the union of the strain points exceeds 200; that case is not reproduced.)
    """

    name = "tabulated"

    def __init__(self, plastic_strain: Sequence, yield_stress: Sequence,
                 temperatures: Sequence[float] | None = None) -> None:
        if temperatures is None:
            self.temperatures = None
            n_curves = None
        else:
            t = np.asarray(temperatures, dtype=float).reshape(-1)
            if t.size == 0 or not np.all(np.isfinite(t)):
                raise MaterialError("temperatures of the tabulated hardening must be finite and "
                                    "non-empty")
            if t.size > 1 and not np.all(np.diff(t) > 0):
                raise MaterialError("temperatures of the tabulated hardening must be strictly "
                                    f"increasing (got {t.tolist()}); sort the curves by temperature")
            self.temperatures = t
            n_curves = t.size
        eps = _as_curves(plastic_strain, n_curves, "plastic_strain")
        sig = _as_curves(yield_stress, n_curves, "yield_stress")
        for i, (e, s) in enumerate(zip(eps, sig)):
            where = "" if n_curves is None else f" (curve {i}, temperature {self.temperatures[i]:g})"
            if e.ndim != 1 or s.ndim != 1 or e.size != s.size or e.size == 0:
                raise MaterialError(f"plastic_strain and yield_stress{where} must be 1-D with the "
                                    f"same non-zero length (got {e.shape} and {s.shape})")
            if not (np.all(np.isfinite(e)) and np.all(np.isfinite(s))):
                raise MaterialError(f"plastic_strain and yield_stress{where} must be finite")
            if e[0] != 0.0:
                raise MaterialError(f"plastic_strain{where} must start at 0 (the initial yield "
                                    f"point), got {e[0]:g}; add the point (sigma_y0, 0)")
            if e.size > 1 and not np.all(np.diff(e) > 0):
                raise MaterialError(f"plastic_strain{where} must be strictly increasing "
                                    f"(got {e.tolist()})")
            if np.any(s < 0):
                raise MaterialError(f"yield_stress{where} must be >= 0 (got {s.tolist()})")
            if s.size > 1 and np.any(np.diff(s) < 0):
                raise MaterialError(f"yield_stress{where} must be non-decreasing (softening is not "
                                    f"supported), got {s.tolist()}")
        self.plastic_strain = eps
        self.yield_stress = sig

    @staticmethod
    def _curve(e: np.ndarray, s: np.ndarray, p: np.ndarray,
               p_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Piecewise-linear curve at ``p`` held constant beyond ``p_end`` (<= e[-1])."""
        m = e.size
        if m == 1:
            return np.full(p.shape, s[0]), np.zeros(p.shape)
        q = np.clip(p, 0.0, p_end)
        j = np.clip(np.searchsorted(e, q, side="right") - 1, 0, m - 2)
        slope = (s[j + 1] - s[j]) / (e[j + 1] - e[j])
        val = s[j] + slope * (q - e[j])
        return val, np.where(p >= p_end, 0.0, slope)

    def __call__(self, p, temperature):
        p = np.asarray(p, dtype=float)
        eps, sig = self.plastic_strain, self.yield_stress
        if self.temperatures is None or self.temperatures.size == 1:
            return self._curve(eps[0], sig[0], p, eps[0][-1])
        t_tab = self.temperatures
        temperature = np.broadcast_to(np.asarray(temperature, dtype=float), p.shape)
        k = t_tab.size
        j = np.searchsorted(t_tab, temperature, side="right") - 1
        r = np.empty(p.shape)
        dr = np.empty(p.shape)
        # loop over the (few) table temperatures, not over points
        for c, mask in ((0, j < 0), (k - 1, j >= k - 1)):
            if mask.any():
                r[mask], dr[mask] = self._curve(eps[c], sig[c], p[mask], eps[c][-1])
        for i in range(k - 1):
            mask = j == i
            if not mask.any():
                continue
            p_end = min(eps[i][-1], eps[i + 1][-1])
            w = (temperature[mask] - t_tab[i]) / (t_tab[i + 1] - t_tab[i])
            r0, d0 = self._curve(eps[i], sig[i], p[mask], p_end)
            r1, d1 = self._curve(eps[i + 1], sig[i + 1], p[mask], p_end)
            r[mask] = r0 + w * (r1 - r0)
            dr[mask] = d0 + w * (d1 - d0)
        return r, dr

    def to_config(self) -> dict:
        if self.temperatures is None:
            return {"type": self.name,
                    "plastic_strain": [float(v) for v in self.plastic_strain[0]],
                    "yield_stress": [float(v) for v in self.yield_stress[0]]}
        return {"type": self.name,
                "plastic_strain": [[float(v) for v in c] for c in self.plastic_strain],
                "yield_stress": [[float(v) for v in c] for c in self.yield_stress],
                "temperatures": [float(t) for t in self.temperatures]}

    def calculix_lines(self) -> list[str]:
        """Data lines of a CalculiX ``*PLASTIC`` card: ``von Mises stress, eq. plastic strain[, T]``."""
        lines = []
        for i, (e, s) in enumerate(zip(self.plastic_strain, self.yield_stress)):
            for ei, si in zip(e, s):
                if self.temperatures is None:
                    lines.append(f"{si!r}, {ei!r}")
                else:
                    lines.append(f"{si!r}, {ei!r}, {self.temperatures[i]!r}")
        return lines


_HARDENING_TYPES: dict[str, type[Hardening]] = {
    LinearHardening.name: LinearHardening,
    VoceHardening.name: VoceHardening,
    TabulatedHardening.name: TabulatedHardening,
}
_HARDENING_KEYS = {
    "linear": (("yield_stress",), ("modulus",)),
    "voce": (("yield_stress", "saturation", "rate"), ()),
    "tabulated": (("plastic_strain", "yield_stress"), ("temperatures",)),
}


def hardening_from_config(cfg: dict | Hardening) -> Hardening:
    """Build a hardening law from ``{"type": "linear"|"voce"|"tabulated", ...}``."""
    if isinstance(cfg, Hardening):
        return cfg
    if not isinstance(cfg, dict):
        raise MaterialError(f"hardening must be a dict with a 'type' key, got {type(cfg).__name__}")
    kind = cfg.get("type")
    if kind not in _HARDENING_TYPES:
        raise MaterialError(f"hardening type {kind!r} is unknown; use one of "
                            f"{sorted(_HARDENING_TYPES)}")
    required, optional = _HARDENING_KEYS[kind]
    from .registry import _take
    kw = _take(cfg, f"hardening ({kind})", required=required, optional=optional)
    return _HARDENING_TYPES[kind](**kw)
