"""CalculiX 2.20 material cards -> law configurations of :func:`structrom.rom.materials.law_from_config`.

* ``*ELASTIC`` (``TYPE=ISO``): ``E, nu[, T]`` lines -> ``young``/``poisson`` tables (piecewise linear in T,
  constant outside, as ccx);
* ``*EXPANSION`` (``TYPE=ISO``, ``ZERO=T_z``, default 0): ``alpha[, T]`` lines -> ``expansion`` (secant
  coefficient, as ours) and ``reference_temperature = T_z``. ccx's thermal strain is relative to the
  initial temperature ``T_0`` (``alpha(T)(T - T_z) - alpha(T_0)(T_0 - T_z)``), ours to the reference; the
  import reconciles them (:func:`reference_temperature`);
* ``*DENSITY``: ``rho`` (one value: our density is not temperature dependent);
* ``*PLASTIC`` (``HARDENING=ISOTROPIC``, the default): ``sigma_y, eps_p[, T]`` lines -> ``hardening =
  {"type": "tabulated", ...}`` (same interpolation as ccx, see TabulatedHardening). ``HARDENING=KINEMATIC``
  -> ``hardening = {"type": "kinematic_tabulated", ...}`` and ``COMBINED`` -> ``hardening = {"type":
  "combined", "kinematic": <*PLASTIC curves>, "isotropic": <*CYCLIC HARDENING curves>}``, refused with a
  clear message while the law registry does not know these types;
* ``*CREEP, LAW=NORTON``: ``A, n, m[, T]`` lines. ccx's law is ``d eps_cr/dt = A sigma^n t^m`` (von Mises
  stress ``sigma``, total time ``t``; with ``*PLASTIC`` the overstress above the yield curve, without it a
  zero yield surface). Only ``m = 0`` is imported; then ccx's law is our Norton law
  ``dp/dt = <(sigma_eq - R(p))/K>^n`` with ``K = A^(-1/n)`` [stress time^(1/n)] and the same ``n``
  (units: ``A`` in 1/(stress^n time), the deck's stress and time units). ccx interpolates ``A`` and ``n``
  linearly in T; we interpolate ``K`` and ``n``: ``K`` is tabulated at the creep temperatures and at
  :data:`CREEP_SUBDIVISIONS` - 1 points inside each interval, where ``K = A(T)^(-1/n(T))`` is evaluated
  from ccx's interpolated ``A`` and ``n`` (relative difference between the points below 1e-3 for ``A``
  varying by a decade per interval, ``n`` fixed). ``R`` is the ``*PLASTIC`` curve, or 0 without it.
"""
from __future__ import annotations

import numpy as np

from .calculix_cards import _error, _float, not_supported
from .calculix_error import CalculixError

__all__ = ["material_config", "norton_from_calculix", "CREEP_SUBDIVISIONS"]

CREEP_SUBDIVISIONS = 64


def _rows(card, n_values: int, what: str, curve: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``values (m, n_values)`` and temperatures ``(m,)`` (None when no line gives one)."""
    vals, temps = [], []
    for tokens, n in card.rows():
        if len(tokens) < n_values:
            raise _error(card, n, f"lines must be '{what}[, temperature]'")
        vals.append([_float(card, t, n, what.split(",")[i].strip()) for i, t in enumerate(tokens[:n_values])])
        temps.append(_float(card, tokens[n_values], n, "temperature") if len(tokens) > n_values and tokens[n_values]
                     else None)
    if not vals:
        raise _error(card, card.line, f"no data line ('{what}[, temperature]')")
    if curve and all(t is None for t in temps):
        return np.array(vals), None  # the points of one temperature-independent curve
    if len(vals) > 1 and any(t is None for t in temps):
        raise _error(card, card.line, "several data lines need a temperature on each")
    return np.array(vals), (None if temps[0] is None else np.array(temps, float))


def _table(values: np.ndarray, temps: np.ndarray | None) -> float | dict:
    if temps is None or len(values) == 1:
        return float(values[0])
    return {"temperatures": [float(t) for t in temps], "values": [float(v) for v in values]}


def _curves(card) -> dict:
    """``*PLASTIC``-style lines grouped by temperature -> a tabulated hardening config."""
    vals, temps = _rows(card, 2, "yield stress, plastic strain", curve=True)
    if temps is None:
        return {"type": "tabulated", "plastic_strain": vals[:, 1].tolist(), "yield_stress": vals[:, 0].tolist()}
    uniq = list(dict.fromkeys(temps.tolist()))
    return {"type": "tabulated", "temperatures": uniq,
            "plastic_strain": [vals[temps == t, 1].tolist() for t in uniq],
            "yield_stress": [vals[temps == t, 0].tolist() for t in uniq]}


def norton_from_calculix(A: np.ndarray, n: np.ndarray, temps: np.ndarray | None,
                         subdivisions: int = CREEP_SUBDIVISIONS) -> tuple[float | dict, float | dict]:
    """Our Norton ``(K, n)`` tables from ccx's ``A`` ``(m,)``, ``n`` ``(m,)`` at ``temps`` (``K = A^(-1/n)``)."""
    A, n = np.asarray(A, float), np.asarray(n, float)
    if temps is None or len(A) == 1:
        return float(A[0] ** (-1.0 / n[0])), float(n[0])
    dense = np.unique(np.concatenate([np.linspace(a, b, subdivisions + 1) for a, b in zip(temps[:-1], temps[1:])]))
    a_d, n_d = np.interp(dense, temps, A), np.interp(dense, temps, n)
    return ({"temperatures": dense.tolist(), "values": (a_d ** (-1.0 / n_d)).tolist()},
            {"temperatures": dense.tolist(), "values": n_d.tolist()})


def material_config(name: str, cards: list) -> dict:
    """The law configuration of the material ``name`` given by its property ``cards`` (module docstring).
    Raises :class:`CalculixError` naming the card and line of what is not supported."""
    from ..materials import MaterialError, law_from_config

    by_kw = {}
    for card in cards:
        if card.keyword in by_kw:
            raise not_supported(card, f"a second *{card.keyword} in material {name}")
        by_kw[card.keyword] = card
    if "ELASTIC" not in by_kw:
        first = cards[0] if cards else None
        raise CalculixError(f"material {name}{' (' + first.where + ')' if first else ''}: no *ELASTIC card")
    el = by_kw["ELASTIC"]
    # (ccx compares the first 8 characters, "TYPE=ISO": TYPE=ISOTROPIC, Abaqus's spelling, is the same law)
    if not el.params.get("TYPE", "ISO").upper().startswith("ISO"):
        raise not_supported(el, f"TYPE={el.params['TYPE']}: only isotropic elasticity (TYPE=ISO) is imported")
    vals, temps = _rows(el, 2, "young, poisson")
    elastic: dict = {"type": "linear_elastic", "young": _table(vals[:, 0], temps), "poisson": _table(vals[:, 1], temps)}
    if "EXPANSION" in by_kw:
        ex = by_kw["EXPANSION"]
        if not ex.params.get("TYPE", "ISO").upper().startswith("ISO"):
            raise not_supported(ex, f"TYPE={ex.params['TYPE']}: only isotropic expansion (TYPE=ISO) is imported")
        if "USER" in ex.params:  # (ccx then takes the thermal strain from its uexpan routine, not the card's lines)
            raise not_supported(ex, "USER: thermal strains from a user subroutine; give the expansion table")
        v, t = _rows(ex, 1, "alpha")
        elastic["expansion"] = _table(v[:, 0], t)
        zero = ex.params.get("ZERO", "0")
        try:
            elastic["reference_temperature"] = float(zero)
        except ValueError:
            raise not_supported(ex, f"ZERO={zero!r} is not a number") from None
    if "DENSITY" in by_kw:
        v, t = _rows(by_kw["DENSITY"], 1, "density")
        if len(np.unique(v[:, 0])) > 1:
            raise not_supported(by_kw["DENSITY"], "a temperature-dependent density (our density is one value)")
        elastic["density"] = float(v[0, 0])
    law: dict = elastic
    hardening = None
    where = el
    if "PLASTIC" in by_kw:
        pl = where = by_kw["PLASTIC"]
        kind = pl.params.get("HARDENING", "ISOTROPIC").upper()
        curves = _curves(pl)
        if kind == "ISOTROPIC":
            hardening = curves
        elif kind == "KINEMATIC":
            hardening = dict(curves, type="kinematic_tabulated")
        elif kind == "COMBINED":
            if "CYCLIC HARDENING" not in by_kw:
                raise not_supported(pl, "HARDENING=COMBINED without *CYCLIC HARDENING (the isotropic part)")
            hardening = {"type": "combined", "kinematic": curves, "isotropic": _curves(by_kw["CYCLIC HARDENING"])}
        else:
            raise not_supported(pl, f"HARDENING={kind}: use ISOTROPIC, KINEMATIC or COMBINED")
        law = {"type": "j2_plasticity", "elastic": elastic, "hardening": hardening}
    elif "CYCLIC HARDENING" in by_kw:
        raise not_supported(by_kw["CYCLIC HARDENING"], "*CYCLIC HARDENING without *PLASTIC, HARDENING=COMBINED")
    if "CREEP" in by_kw:
        cr = where = by_kw["CREEP"]
        if cr.params.get("LAW", "NORTON").upper() != "NORTON":
            raise not_supported(cr, f"LAW={cr.params['LAW']}: only LAW=NORTON is imported (user creep laws are not laws "
                                    "of the material registry)")
        v, t = _rows(cr, 3, "A, n, m")
        if np.any(v[:, 2] != 0.0):
            raise not_supported(cr, f"time-hardening exponent m = {v[v[:, 2] != 0, 2][0]:g}: only m = 0 (Norton "
                                    "secondary creep, d eps/dt = A sigma^n) maps onto our Norton law")
        if np.any(v[:, :2] <= 0):
            raise not_supported(cr, "A and n must be > 0")
        K, n = norton_from_calculix(v[:, 0], v[:, 1], t)
        if hardening is not None and hardening.get("type") != "tabulated":
            raise not_supported(cr, "*CREEP with kinematic or combined *PLASTIC hardening")
        law = {"type": "norton_viscoplasticity", "elastic": elastic, "K": K, "n": n,
               "hardening": hardening or {"type": "linear", "yield_stress": 0.0, "modulus": 0.0}}
    try:
        law_from_config(law)
    except MaterialError as exc:
        kind = where.params.get("HARDENING", "").upper()
        if hardening is not None and hardening.get("type") != "tabulated" and kind:
            raise not_supported(where, f"HARDENING={kind}: the material registry has no such law yet ({exc}); "
                                       "use HARDENING=ISOTROPIC") from None
        raise CalculixError(f"material {name} ({where.where}): {exc}") from None
    return law
