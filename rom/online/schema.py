"""Checks of a loading against a reduced model: what the model CAN solve and what it was TRAINED on.

Two kinds of checks, both raising :class:`structrom.rom.loading.LoadingError` with the field named:

* structural (always; ``extrapolate`` does not help): non-finite values anywhere; a pressure on a
  surface without a reduced load; a centrifugal load or gravity when the model has none (or a
  rotation axis other than the model's); imposed displacements on sets the model neither prescribes
  (its lifting, :mod:`structrom.rom.lifting`) nor fixes; a nodal temperature with the wrong number of nodes;
* family (skipped with ``extrapolate=True``, then returned as warnings): the ``loading_schema``.

``loading_schema`` format (JSON object; every key optional, an empty schema checks nothing; a range
is ``[lo, hi]`` with ``lo <= hi``, bounds included with a relative slack of 1e-9)::

    {"temperature": {"type": "hot_spot",                    # or "uniform" / "nodal" / "any" (no check)
                     "ranges": {"intensity": [lo, hi],      # hot_spot: intensity, radius, reference,
                                "center": [[lo, hi], [lo, hi], [lo, hi]],  #  center, gradient (per
                                "radius": [lo, hi],                       #  component), amplitude
                                "amplitude": [lo, hi]},     # uniform: reference, amplitude
                     "value_range": [lo, hi],               # any type: min and max temperature at the
                                                            #  model's temperature nodes, all times
                     "node_envelope": {"nodes": [...],      # nodal: per-node min/max of the training
                                       "min": [...], "max": [...]}},  # fields at the model's temperature
                                                            #  nodes (mesh indices), all times
     "pressure": {"<surface>": {"range": [lo, hi]}},        # peak pressure amplitude per surface
     "traction": {"<surface>": {"range": [[lo, hi]] * 3}},  # peak of each traction component (x, y, z)
     "force": {"<node set>": {"range": [[lo, hi]] * 3}},    # peak of each force component (per node)
     "displacement": {"<set>": {"range": [lo, hi]}},        # every value of a prescribed displacement
     "centrifugal": {"omega_range": [lo, hi]},              # peak rotation speed
     "gravity": {"range": [[lo, hi], [lo, hi], [lo, hi]]},  # acceleration components
     "times": {"end_range": [lo, hi],                       # last time of the loading
               "max_increment": dt_max}}                    # largest time increment

The *peak* of an amplitude is its value of largest magnitude over the loading's time window
``[times[0], times[-1]]``; a surface listed in the schema but absent from the loading has peak 0,
likewise a missing rotation or gravity. ``amplitude`` of a temperature field is the peak of its time
amplitude; a hot spot's ``intensity`` is its effective peak ``intensity x peak(amplitude)`` (the largest
hot-spot magnitude reached). A temperature field of another type than the schema's is outside the
family (type ``"any"`` accepts every field).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from structrom.rom.lifting import unknown_displacement_error
from structrom.rom.loading import (Amplitude, HotSpotTemperature, Loading, LoadingError, NodalTemperature,
                                   UniformTemperature, COMPONENT_NAMES)
from structrom.rom.loading_dict import loading_from_dict
from structrom.mpi.errors import StructromError

TEMPERATURE_TYPES = {"hot_spot": HotSpotTemperature, "uniform": UniformTemperature, "nodal": NodalTemperature,
                     "any": object}
#: Parameters of each temperature type that a schema may bound, with their number of components.
TEMPERATURE_RANGE_KEYS = {
    "hot_spot": {"intensity": 1, "radius": 1, "reference": 1, "center": 3, "gradient": 3, "amplitude": 1},
    "uniform": {"reference": 1, "amplitude": 1},
    "nodal": {},
    "any": {},
}
SCHEMA_KEYS = {
    "temperature": {"type", "ranges", "value_range", "node_envelope"},
    "pressure": None,  # surface names
    "traction": None,  # surface names
    "force": None,  # node set names
    "displacement": None,  # prescribed set names
    "centrifugal": {"omega_range"},
    "gravity": {"range"},
    "times": {"end_range", "max_increment"},
}
SLACK = 1e-9


class SchemaError(StructromError, ValueError):
    """A malformed ``loading_schema`` (the caller reports the model file as broken)."""


def _range(value: Any, where: str, components: int = 1) -> list[tuple[float, float]]:
    """``components`` validated ``(lo, hi)`` pairs (plain floats: checked on every solve, kept cheap)."""
    rows = [value] if components == 1 else value
    out = []
    try:
        if components > 1 and len(rows) != components:
            raise ValueError
        for row in rows:
            if isinstance(row, (str, bytes)) or len(row) != 2:
                raise ValueError
            lo, hi = float(row[0]), float(row[1])
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError
            out.append((lo, hi))
    except (TypeError, ValueError):
        want = "[lo, hi]" if components == 1 else f"{components} pairs [lo, hi]"
        raise SchemaError(f"loading_schema.{where} must be {want} with finite lo <= hi, got {value!r}") from None
    return out


def validate_schema(schema: dict) -> None:
    """Raise :class:`SchemaError` naming the first malformed entry of a ``loading_schema``."""
    if not isinstance(schema, dict):
        raise SchemaError(f"loading_schema must be a JSON object, got {type(schema).__name__}")
    unknown = set(schema) - set(SCHEMA_KEYS)
    if unknown:
        raise SchemaError(f"loading_schema: unknown key(s) {sorted(unknown)}; supported: {sorted(SCHEMA_KEYS)}")
    for key, allowed in SCHEMA_KEYS.items():
        sub = schema.get(key)
        if sub is None:
            continue
        if not isinstance(sub, dict):
            raise SchemaError(f"loading_schema.{key} must be an object")
        if allowed is not None and set(sub) - allowed:
            raise SchemaError(f"loading_schema.{key}: unknown key(s) {sorted(set(sub) - allowed)}; "
                              f"supported: {sorted(allowed)}")
    temp = schema.get("temperature") or {}
    kind = temp.get("type")
    if kind is not None and kind not in TEMPERATURE_TYPES:
        raise SchemaError(f"loading_schema.temperature.type {kind!r}: use one of {sorted(TEMPERATURE_TYPES)}")
    ranges = temp.get("ranges") or {}
    if ranges and kind is None:
        raise SchemaError("loading_schema.temperature.ranges needs temperature.type")
    for name, value in ranges.items():
        comps = TEMPERATURE_RANGE_KEYS[kind].get(name)
        if comps is None:
            raise SchemaError(f"loading_schema.temperature.ranges.{name}: not a parameter of {kind!r} "
                              f"temperatures (known: {sorted(TEMPERATURE_RANGE_KEYS[kind])})")
        _range(value, f"temperature.ranges.{name}", comps)
    if "value_range" in temp:
        _range(temp["value_range"], "temperature.value_range")
    if "node_envelope" in temp:
        env = temp["node_envelope"]
        try:
            lo, hi = np.asarray(env["min"], float), np.asarray(env["max"], float)
            nodes = np.asarray(env["nodes"])
            ok = (set(env) == {"nodes", "min", "max"} and lo.ndim == 1 and lo.shape == hi.shape == nodes.shape
                  and np.all(np.isfinite(lo)) and np.all(lo <= hi) and np.issubdtype(nodes.dtype, np.integer))
        except (TypeError, ValueError, KeyError):
            ok = False
        if not ok:
            raise SchemaError("loading_schema.temperature.node_envelope must be {\"nodes\": [...], \"min\": [...], "
                              "\"max\": [...]} of equal lengths with finite min <= max")
    for key in ("pressure", "displacement"):
        for surface, spec in (schema.get(key) or {}).items():
            if not isinstance(spec, dict) or set(spec) != {"range"}:
                raise SchemaError(f"loading_schema.{key}.{surface} must be {{\"range\": [lo, hi]}}")
            _range(spec["range"], f"{key}.{surface}.range")
    for key in ("traction", "force"):
        for name, spec in (schema.get(key) or {}).items():
            if not isinstance(spec, dict) or set(spec) != {"range"}:
                raise SchemaError(f"loading_schema.{key}.{name} must be {{\"range\": [[lo, hi], [lo, hi], [lo, hi]]}}")
            _range(spec["range"], f"{key}.{name}.range", 3)
    if "omega_range" in (schema.get("centrifugal") or {}):
        _range(schema["centrifugal"]["omega_range"], "centrifugal.omega_range")
    if "range" in (schema.get("gravity") or {}):
        _range(schema["gravity"]["range"], "gravity.range", 3)
    times = schema.get("times") or {}
    if "end_range" in times:
        _range(times["end_range"], "times.end_range")
    if "max_increment" in times:
        m = times["max_increment"]
        if isinstance(m, bool) or not (isinstance(m, (int, float)) and np.isfinite(m) and m > 0):
            raise SchemaError(f"loading_schema.times.max_increment must be a positive number, got {m!r}")


def node_envelope(fields: list[np.ndarray], nodes: np.ndarray) -> dict:
    """The ``node_envelope`` of a schema: per-node min and max over the training temperature ``fields``
    (each ``(n_times, n_mesh_nodes)``) at the mesh ``nodes``."""
    nodes = np.asarray(nodes, np.int64)
    lo = np.min([np.asarray(f)[:, nodes].min(0) for f in fields], axis=0)
    hi = np.max([np.asarray(f)[:, nodes].max(0) for f in fields], axis=0)
    return {"nodes": nodes.tolist(), "min": lo.tolist(), "max": hi.tolist()}


def envelope_exceedance(values: np.ndarray, envelope: dict) -> np.ndarray:
    """``(n_times, n_nodes)`` temperature beyond the per-node ``envelope`` (0 inside; ``values`` at the
    envelope's nodes), in units of the width of the training temperatures (at least 1 degree)."""
    lo, hi = np.asarray(envelope["min"], float), np.asarray(envelope["max"], float)
    scale = max(float(hi.max() - lo.min()), 1.0) if len(lo) else 1.0
    values = np.atleast_2d(values)
    return np.maximum(0.0, np.maximum(lo - values, values - hi)) / scale


def _check_node_envelope(values: np.ndarray, envelope: dict) -> str | None:
    """The violation message of temperatures ``values`` ``(n_times, n_nodes)`` outside ``envelope``."""
    if values.shape[-1] != len(envelope["min"]):
        return (f"loading.temperature: {values.shape[-1]} temperature nodes, the model's training envelope has "
                f"{len(envelope['min'])}")
    out = envelope_exceedance(values, envelope)
    bad = out > 1e-6  # the envelope's own rounding (nodal values written with 6 digits)
    if not bad.any():
        return None
    worst = np.unravel_index(np.argmax(out), out.shape)
    node, lo, hi = envelope["nodes"][worst[1]], envelope["min"][worst[1]], envelope["max"][worst[1]]
    return (f"loading.temperature is outside the per-node training envelope at {int(bad.any(0).sum())} of the model's "
            f"{len(envelope['min'])} temperature nodes (worst: mesh node {node}, {values[worst]:g} vs [{lo:g}, {hi:g}])")


def peak(amp: Amplitude, t0: float, t1: float) -> float:
    """Value of largest magnitude of a piecewise-linear amplitude over ``[t0, t1]``."""
    inside = amp.times[(amp.times > t0) & (amp.times < t1)]
    values = amp(np.concatenate([[t0, t1], inside]))
    return float(values[np.argmax(np.abs(values))])


def _extremes(amp: Amplitude, t0: float, t1: float) -> tuple[float, float]:
    """Smallest and largest value of a piecewise-linear amplitude over ``[t0, t1]``."""
    inside = amp.times[(amp.times > t0) & (amp.times < t1)]
    values = amp(np.concatenate([[t0, t1], inside]))
    return float(values.min()), float(values.max())


def _values(value) -> list[float]:
    return [float(value)] if np.ndim(value) == 0 else [float(v) for v in np.ravel(value)]


def _outside(value, rng: list[tuple[float, float]]) -> bool:
    for v, (lo, hi) in zip(_values(value), rng):
        slack = SLACK * max(1.0, abs(lo), abs(hi))
        if v < lo - slack or v > hi + slack:
            return True
    return False


def _fmt(value, rng: list[tuple[float, float]]) -> tuple[str, str]:
    v = _values(value)
    vs = f"{v[0]:g}" if len(v) == 1 else "[" + ", ".join(f"{x:g}" for x in v) + "]"
    rs = (f"[{rng[0][0]:g}, {rng[0][1]:g}]" if len(rng) == 1
          else "[" + ", ".join(f"[{a:g}, {b:g}]" for a, b in rng) + "]")
    return vs, rs


def _check_finite(loading: Loading) -> None:
    def amp(a: Amplitude, name: str) -> None:
        if not (np.all(np.isfinite(a.times)) and np.all(np.isfinite(a.values))):
            raise LoadingError(f"{name}: amplitude contains non-finite entries")

    for name, a in loading.pressures.items():
        amp(a, f"loading.pressure.{name}")
    for key, loads in (("traction", loading.tractions), ("force", loading.forces)):
        for name, vec in loads.items():
            for c, a in zip("xyz", vec.components):
                amp(a, f"loading.{key}.{name}[{c}]")
    if loading.centrifugal is not None:
        c = loading.centrifugal
        amp(c.omega, "loading.centrifugal.omega")
        if not (np.all(np.isfinite(c.axis_point)) and np.all(np.isfinite(c.axis_direction))):
            raise LoadingError("loading.centrifugal: axis_point and axis_direction must be finite")
    if loading.gravity is not None:
        g = np.asarray(loading.gravity, dtype=float)
        if g.shape != (3,) or not np.all(np.isfinite(g)):
            raise LoadingError("loading.gravity must be three finite numbers")
    temp = loading.temperature
    if dataclasses.is_dataclass(temp):
        for f in dataclasses.fields(temp):
            v = getattr(temp, f.name)
            if isinstance(v, Amplitude):
                amp(v, f"loading.temperature.{f.name}")
            elif isinstance(v, (int, float, tuple, list, np.ndarray)):
                if not np.all(np.isfinite(np.asarray(v, dtype=float))):
                    raise LoadingError(f"loading.temperature.{f.name} contains non-finite values")
    for d in loading.displacements:
        if not np.isfinite(d.value):
            raise LoadingError(f"loading.displacements ({d.node_set}): value must be finite")
        amp(d.amplitude, f"loading.displacements ({d.node_set}).amplitude")


def _same_axis(a_point, a_dir, b_point, b_dir) -> bool:
    a_point, b_point = np.asarray(a_point, float), np.asarray(b_point, float)
    da, db = np.asarray(a_dir, float), np.asarray(b_dir, float)
    if not (np.linalg.norm(da) > 0 and np.linalg.norm(db) > 0):
        return False
    da, db = da / np.linalg.norm(da), db / np.linalg.norm(db)
    scale = max(1.0, float(np.abs(a_point).max()), float(np.abs(b_point).max()))
    off = (b_point - a_point) - np.dot(b_point - a_point, da) * da
    return bool(abs(abs(np.dot(da, db)) - 1.0) <= 1e-9 and np.linalg.norm(off) <= 1e-9 * scale)


def _component(c) -> int:
    """A Dirichlet component as 0, 1, 2 (model files may store "x", "y", "z")."""
    return COMPONENT_NAMES[c] if isinstance(c, str) else int(c)


def as_loading(loading: Loading | dict) -> Loading:
    """A :class:`Loading` from a Loading or its dict form (``loading_from_dict``)."""
    if isinstance(loading, dict):
        return loading_from_dict(loading)
    if not isinstance(loading, Loading):
        raise LoadingError(f"loading must be a structrom.rom.loading.Loading or a dict, got {type(loading).__name__}")
    return loading


def check_structure(loading: Loading, *, pressure: dict, centrifugal, centrifugal_axis, gravity,
                    dirichlet: list[dict], n_mesh_nodes: int | None, n_temperature_nodes: int,
                    traction: dict | None = None, force: dict | None = None, lifting=None) -> None:
    """The structural checks (see the module docstring); raise :class:`LoadingError`."""
    _check_finite(loading)
    for key, loads, have in (("traction", loading.tractions, traction or {}), ("force", loading.forces, force or {})):
        missing = sorted(set(loads) - set(have))
        if missing:
            raise LoadingError(f"loading.{key}: this model has no reduced {key} for set(s) {missing}; it was built "
                               f"for {sorted(have) or f'no {key}'} (rebuild the model with these sets loaded)")
    missing = sorted(set(loading.pressures) - set(pressure))
    if missing:
        raise LoadingError(f"loading.pressure: this model has no reduced load for surface(s) {missing}; "
                           f"it was built for {sorted(pressure) or 'no pressure'} "
                           "(rebuild the model with these surfaces to load them)")
    if loading.centrifugal is not None:
        if centrifugal is None:
            raise LoadingError("loading.centrifugal: this model has no centrifugal load "
                               "(rebuild it with a centrifugal loading)")
        c = loading.centrifugal
        if not _same_axis(centrifugal_axis[0], centrifugal_axis[1], c.axis_point, c.axis_direction):
            raise LoadingError(f"loading.centrifugal: axis (point {list(c.axis_point)}, direction "
                               f"{list(c.axis_direction)}) differs from the model's (point "
                               f"{list(centrifugal_axis[0])}, direction {list(centrifugal_axis[1])})")
    if loading.gravity is not None and gravity is None and np.any(np.asarray(loading.gravity) != 0):
        raise LoadingError("loading.gravity: this model has no gravity load (rebuild it with gravity)")
    fixed = {(d.get("node_set"), _component(c)) for d in dirichlet for c in d.get("components", (0, 1, 2))}
    unknown_displacement_error(loading, lifting.match(loading) if lifting is not None else {}, lifting, fixed)
    temp = loading.temperature
    if isinstance(temp, NodalTemperature):
        n = temp.values.shape[1]
        if n not in (n_mesh_nodes, n_temperature_nodes):
            expected = (f"the mesh has {n_mesh_nodes} nodes" if n_mesh_nodes is not None else
                        f"this model's temperature nodes are {n_temperature_nodes}")
            raise LoadingError(f"loading.temperature: nodal values for {n} nodes, but {expected} (give one value "
                               "per mesh node)")


def check_family(loading: Loading, schema: dict, temperature_values=None) -> list[str]:
    """Violations of the ``loading_schema`` (an empty list when the loading is inside the family).

    ``temperature_values``: callable returning the temperatures ``(n_times, n_tn)`` at the model's
    temperature nodes (only called when the schema has a ``value_range``).
    """
    out: list[str] = []
    t0, t1 = float(loading.times[0]), float(loading.times[-1])

    def check(field: str, value, rng_spec, comps: int = 1) -> None:
        rng = _range(rng_spec, field, comps)
        if _outside(value, rng):
            vs, rs = _fmt(value, rng)
            out.append(f"loading.{field} = {vs} is outside the training range {rs} of this model")

    temp_schema = schema.get("temperature") or {}
    kind = temp_schema.get("type")
    temp = loading.temperature
    if kind is not None:
        if not isinstance(temp, TEMPERATURE_TYPES[kind]):
            got = next((k for k, c in TEMPERATURE_TYPES.items() if c is not object and isinstance(temp, c)),
                       type(temp).__name__)
            out.append(f"loading.temperature: this model was trained on {kind!r} temperatures, got {got!r}")
        else:
            for name, spec in (temp_schema.get("ranges") or {}).items():
                v = getattr(temp, name)
                value = peak(v, t0, t1) if isinstance(v, Amplitude) else v
                if kind == "hot_spot" and name == "intensity":
                    value = v * peak(temp.amplitude, t0, t1)
                check(f"temperature.{name}", value, spec, TEMPERATURE_RANGE_KEYS[kind][name])
    if "value_range" in temp_schema and temperature_values is not None:
        values = np.asarray(temperature_values())
        if values.size:
            check("temperature (minimum at the model's temperature nodes)", float(values.min()),
                  temp_schema["value_range"])
            check("temperature (maximum at the model's temperature nodes)", float(values.max()),
                  temp_schema["value_range"])
    if "node_envelope" in temp_schema and temperature_values is not None:
        message = _check_node_envelope(np.asarray(temperature_values()), temp_schema["node_envelope"])
        if message:
            out.append(message)
    for surface, spec in (schema.get("pressure") or {}).items():
        amp = loading.pressures.get(surface)
        check(f"pressure.{surface} (peak)", peak(amp, t0, t1) if amp is not None else 0.0, spec["range"])
    for key, loads in (("traction", loading.tractions), ("force", loading.forces)):
        for name, spec in (schema.get(key) or {}).items():
            vec = loads.get(name)
            value = [peak(a, t0, t1) for a in vec.components] if vec is not None else [0.0, 0.0, 0.0]
            check(f"{key}.{name} (peak per component)", value, spec["range"], 3)
    for name, spec in (schema.get("displacement") or {}).items():
        for d in loading.displacements:
            axes = "".join("xyz"[int(c)] for c in d.components)
            if d.node_set == name or name == f"{d.node_set}.{axes}":
                values = [d.value * v for v in _extremes(d.amplitude, t0, t1)]
                check(f"displacement.{name} (minimum)", min(values), spec["range"])
                check(f"displacement.{name} (maximum)", max(values), spec["range"])
    cen = schema.get("centrifugal") or {}
    if "omega_range" in cen:
        c = loading.centrifugal
        check("centrifugal.omega (peak)", peak(c.omega, t0, t1) if c is not None else 0.0, cen["omega_range"])
    grav = schema.get("gravity") or {}
    if "range" in grav:
        g = np.zeros(3) if loading.gravity is None else np.asarray(loading.gravity, float)
        check("gravity", g, grav["range"], 3)
    times = schema.get("times") or {}
    if "end_range" in times:
        check("times (end)", t1, times["end_range"])
    if "max_increment" in times:
        dt = float(np.max(np.diff(loading.times)))
        if dt > times["max_increment"] * (1 + SLACK):
            out.append(f"loading.times: largest increment {dt:g} exceeds the model's max_increment "
                       f"{times['max_increment']:g}")
    return out
