"""Build constitutive laws from plain dicts (e.g. parsed TOML/JSON) and back.

Example (TOML)::

    type = "j2_plasticity"
    [elastic]
    young = {temperatures = [20.0, 600.0], values = [210000.0, 150000.0]}
    poisson = 0.3
    expansion = 1.2e-5
    reference_temperature = 20.0
    density = 7.85e-9
    [hardening]
    type = "linear"
    yield_stress = 250.0
    modulus = 1000.0
    [kinematic]                     # optional: Prager ("prager", modulus C) or Armstrong-Frederick
    type = "armstrong_frederick"
    modulus = 40000.0               # C [stress]
    recall = 250.0                  # gamma [-]; the back stress saturates at C / gamma

Tables are either a number or ``{temperatures = [...], values = [...]}``. ``law.to_config()``
returns the same layout, so ``law_from_config(law.to_config())`` reproduces the law exactly.
"""
from __future__ import annotations

from typing import Any, Iterable

from .base import ConstitutiveLaw
from .elastic import LinearElastic
from .errors import MaterialError
from .plasticity import J2Plasticity
from .viscoplasticity import NortonViscoplasticity

LAW_TYPES: dict[str, type[ConstitutiveLaw]] = {
    LinearElastic.name: LinearElastic,
    J2Plasticity.name: J2Plasticity,
    NortonViscoplasticity.name: NortonViscoplasticity,
}


def _take(cfg: Any, what: str, *, required: Iterable[str] = (),
          optional: Iterable[str] = ()) -> dict:
    """Check a config dict's keys (``type`` is ignored) and return the keyword arguments."""
    if not isinstance(cfg, dict):
        raise MaterialError(f"{what}: expected a dict, got {type(cfg).__name__}")
    required, optional = tuple(required), tuple(optional)
    keys = set(cfg) - {"type"}
    unknown = keys - set(required) - set(optional)
    if unknown:
        raise MaterialError(f"{what}: unknown key(s) {sorted(unknown)}; allowed keys are "
                            f"{sorted(required + optional)}")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise MaterialError(f"{what}: missing key(s) {missing}")
    return {k: cfg[k] for k in keys}


def law_from_config(d: dict) -> ConstitutiveLaw:
    """Build a law from ``{"type": "linear_elastic" | "j2_plasticity" | "norton_viscoplasticity", ...}``.

    ``linear_elastic`` keys: young, poisson, expansion, reference_temperature, density;
    ``j2_plasticity``: elastic (a linear_elastic dict, its "type" optional), hardening
    (``{"type": "linear"|"voce"|"tabulated", ...}``), optional kinematic (``{"type": "prager"|
    "armstrong_frederick", "modulus": C[, "recall": gamma]}``); ``norton_viscoplasticity``: same plus K, n.
    """
    if not isinstance(d, dict):
        raise MaterialError(f"a material config must be a dict, got {type(d).__name__}")
    kind = d.get("type")
    if kind not in LAW_TYPES:
        raise MaterialError(f"material type {kind!r} is unknown; set 'type' to one of "
                            f"{sorted(LAW_TYPES)}")
    if kind != LinearElastic.name and isinstance(d.get("elastic"), dict):
        el = d["elastic"]
        if el.get("type", LinearElastic.name) != LinearElastic.name:
            raise MaterialError(f"elastic: type must be {LinearElastic.name!r}, got {el['type']!r}")
    return LAW_TYPES[kind].from_config(d)  # type: ignore[attr-defined]
