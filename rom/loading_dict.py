"""Loadings from plain data: the TOML / JSON form of a loading (:func:`loading_from_dict`, what REST queries,
enrichment and the greedy training give) and the temperature tables of configurations
(:func:`temperature_from_config`). Every key is read or refused by name, never dropped."""
from __future__ import annotations

import numpy as np

from structrom.rom.loading import (COMPONENT_NAMES, Amplitude, Centrifugal, HotSpotTemperature, ImposedDisplacement,
                                   Loading, LoadingError, NodalTemperature, TemperatureField, UniformTemperature,
                                   VectorAmplitude)


#: Keys of a temperature table of each type (besides ``type``), as :func:`temperature_from_config` reads them.
TEMPERATURE_KEYS = {"uniform": {"reference", "amplitude"},
                    "hot_spot": {"center", "radius", "intensity", "reference", "gradient", "amplitude"},
                    "nodal": {"file", "times"}}


def temperature_from_config(cfg: dict, base_dir: str | None = None) -> TemperatureField:
    """Build a temperature field from a config table ``{"type": "uniform" | "hot_spot" | "nodal", ...}``."""
    cfg = dict(cfg)
    kind = cfg.pop("type", "uniform")
    if kind == "nodal" and "amplitude" in cfg:  # (read and dropped before: the values were used unscaled)
        raise LoadingError("temperature: ['amplitude'] not known for a 'nodal' temperature (known: ['file', 'times']): "
                           "scale the values in the file instead")
    amp = Amplitude.from_config(cfg.pop("amplitude", 1.0 if kind == "hot_spot" else 0.0), "temperature.amplitude")

    def number(key: str, default=None) -> float:
        value = cfg.pop(key, default)
        if value is None:
            raise LoadingError(f"temperature: {kind} needs {key!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise LoadingError(f"temperature.{key} must be a number, got {value!r}") from None

    def vector(key: str, default=None) -> tuple[float, float, float]:
        value = cfg.pop(key, default)
        if value is None:
            raise LoadingError(f"temperature: {kind} needs {key!r}")
        try:
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            out = ()
        if len(out) != 3:
            raise LoadingError(f"temperature.{key} must be 3 numbers [x, y, z], got {value!r}")
        return out

    def known(field: TemperatureField) -> TemperatureField:
        if cfg:  # a misspelt key would otherwise leave its default (reference = 0) in place without a word
            raise LoadingError(f"temperature: {sorted(cfg)} not known for a {kind!r} temperature (known: "
                               f"{sorted(TEMPERATURE_KEYS[kind])})")
        return field

    if kind == "uniform":
        return known(UniformTemperature(reference=number("reference", 0.0), amplitude=amp))
    if kind == "hot_spot":
        return known(HotSpotTemperature(center=vector("center"), radius=number("radius"), intensity=number("intensity"),
                                  reference=number("reference", 0.0), gradient=vector("gradient", (0.0, 0.0, 0.0)),
                                  amplitude=amp))
    if kind == "nodal":
        import os

        path = cfg.pop("file", None)
        if not isinstance(path, str) or "times" not in cfg:
            raise LoadingError("temperature: nodal needs 'file' (a .npy of (n_times, n_nodes) values) and 'times'")
        if base_dir and not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        try:
            data = np.load(path, allow_pickle=False)
            times = np.asarray(cfg.pop("times"), float)
            values = np.asarray(data, float)
        except (OSError, ValueError, TypeError) as exc:
            raise LoadingError(f"temperature.file {path!r}: {exc}") from None
        if values.ndim != 2 or times.ndim != 1 or len(values) != len(times):
            rows = f"{len(values)} rows" if values.ndim == 2 else f"shape {values.shape}"
            raise LoadingError(f"temperature.file {path!r}: has {rows} for {times.size} times in "
                               "loading.temperature.times: give one row per time (an array (n_times, n_nodes))")
        return known(NodalTemperature(times=times, values=values))
    raise LoadingError(f"temperature.type {kind!r} is unknown: use 'uniform', 'hot_spot' or 'nodal'")


def loading_from_dict(d: dict, base_dir: str | None = None) -> Loading:
    """A loading from plain data (JSON of a REST query, a TOML table)::

        {"times": [0, 0.5, 1.0],                      # or "end_time": 1.0, "increments": 10
         "temperature": {"type": "hot_spot", ...},    # see temperature_from_config; or "nodal" with "values"
         "pressure": {"holes": [[0, 0], [1, 20]]},    # surface set -> amplitude (number or [t, value] pairs)
         "traction": {"flange": [[0, 0, 0, 0], [1, 5, 0, -2]]},  # surface set -> [x, y, z] or [t, x, y, z] rows
         "force": {"tip": [0, 0, -100]},              # node set -> force at each node, same forms
         "centrifugal": {"omega": [[0, 0], [1, 300]], "axis_point": [...], "axis_direction": [...]},
         "gravity": [0, 0, -9.81],
         "displacement": {"right": [[0, 0], [1, 0.2]]}} # prescribed set -> imposed value (number or [t, value]
                                                      #  pairs) on the components the model prescribes there

    ``displacement`` also takes ``{"components": ["z"], "amplitude": ...}`` per set.
    """
    d = dict(d)
    allowed = {"times", "end_time", "increments", "temperature", "pressure", "traction", "force", "centrifugal",
               "gravity", "displacement"}
    unknown = set(d) - allowed
    if unknown:
        raise LoadingError(f"loading: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    times = _times_from_dict(d)
    pressures = {str(k): Amplitude.from_config(v, f"loading.pressure.{k}")
                 for k, v in _sets_table(d, "pressure", "amplitudes").items()}
    vectors = {key: {str(k): VectorAmplitude.from_config(v, f"loading.{key}.{k}")
                     for k, v in _sets_table(d, key, "vectors").items()} for key in ("traction", "force")}
    return Loading(times=times, temperature=_temperature_from_dict(d.get("temperature"), times, base_dir),
                   pressures=pressures, tractions=vectors["traction"], forces=vectors["force"],
                   centrifugal=_centrifugal_from_dict(d.get("centrifugal")), gravity=_gravity_from_dict(d.get("gravity")),
                   displacements=displacements_from_dict(d.get("displacement") or {}))


def _times_from_dict(d: dict) -> np.ndarray:
    """``(n_increments + 1,)``: ``times``, or ``end_time`` and ``increments`` (never both forms: one would be
    ignored)."""
    if "times" in d and ("end_time" in d or "increments" in d):
        raise LoadingError("loading: give times, or end_time and increments, not both (one of them would be ignored)")
    if "times" in d:
        try:
            return np.asarray(d["times"], dtype=float)
        except (TypeError, ValueError):
            raise LoadingError(f"loading.times must be a list of numbers, got {d['times']!r}") from None
    if "end_time" not in d or "increments" not in d:
        raise LoadingError("loading: give times, or end_time and increments")
    n, end = d["increments"], d["end_time"]
    if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)) or n != int(n) or n < 1:
        raise LoadingError(f"loading.increments must be a whole number >= 1, got {n!r}")
    if isinstance(end, bool) or not isinstance(end, (int, float, np.integer, np.floating)):
        raise LoadingError(f"loading.end_time must be a number, got {end!r}")
    return np.linspace(0.0, float(end), int(n) + 1)


def _sets_table(d: dict, key: str, what: str) -> dict:
    """``d[key]``, a table of set name -> load (absent or empty: ``{}``)."""
    table = d.get(key) or {}
    if not isinstance(table, dict):
        raise LoadingError(f"loading.{key} must map set names to {what}, got {type(table).__name__}")
    return table


def _temperature_from_dict(cfg, times: np.ndarray, base_dir: str | None) -> TemperatureField:
    """The temperature table of a loading dict (:func:`temperature_from_config`, or ``nodal`` with inline
    ``values`` ``(n_times, n_nodes)`` at ``times`` (default: the loading's ``times``))."""
    if cfg is None:
        return UniformTemperature()
    if not isinstance(cfg, dict):
        raise LoadingError(f"loading.temperature must be a table with a 'type', got {cfg!r}")
    cfg = dict(cfg)
    if cfg.get("type") != "nodal" or "values" not in cfg:
        return temperature_from_config(cfg, base_dir)
    extra = sorted(set(cfg) - {"type", "values", "times"})
    if extra:
        hint = ": scale the values instead" if "amplitude" in extra else ""
        raise LoadingError(f"temperature: {extra} not known for a 'nodal' temperature with inline values (known: "
                           f"['times', 'values']){hint}")
    try:
        values = np.asarray(cfg["values"], dtype=float)
        temp_times = np.asarray(cfg.get("times", times), dtype=float)
    except (TypeError, ValueError):
        raise LoadingError("temperature: nodal 'values' must be rows of numbers (n_times, n_nodes) and 'times' "
                           "numbers") from None
    return NodalTemperature(temp_times, values)


def _vector3(value, name: str) -> tuple[float, float, float]:
    """Three finite numbers ``(3,)`` from ``value``, or :class:`LoadingError` naming ``name``."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not np.all(np.isfinite(out)):
        raise LoadingError(f"{name} must be 3 finite numbers [x, y, z], got {value!r}")
    return out  # type: ignore[return-value]


def _centrifugal_from_dict(c) -> Centrifugal | None:
    """``{"omega": amplitude [rad/time], "axis_point": [x, y, z], "axis_direction": [x, y, z]}`` or None."""
    if c is None:
        return None
    if not isinstance(c, dict):
        raise LoadingError(f"loading.centrifugal must be a table with 'omega' (and axis_point, axis_direction), "
                           f"got {c!r}")
    c = dict(c)
    if "omega" not in c:
        raise LoadingError("loading.centrifugal needs 'omega' (a number or [time, omega] pairs, in rad/time)")
    omega = Amplitude.from_config(c.pop("omega"), "loading.centrifugal.omega")
    point = _vector3(c.pop("axis_point", (0.0, 0.0, 0.0)), "loading.centrifugal.axis_point")
    direction = _vector3(c.pop("axis_direction", (0.0, 0.0, 1.0)), "loading.centrifugal.axis_direction")
    if c:
        raise LoadingError(f"loading.centrifugal: unknown field(s) {sorted(c)}")
    if not np.any(direction):
        raise LoadingError("loading.centrifugal.axis_direction must be a non-zero vector (the rotation axis)")
    return Centrifugal(omega, point, direction)


def _gravity_from_dict(g) -> tuple[float, float, float] | None:
    """The gravity vector ``(3,)`` [length/time^2] or None."""
    if g is None:
        return None
    try:
        return _vector3(g, "loading.gravity")
    except LoadingError:
        raise LoadingError(f"loading.gravity must be three finite numbers [x, y, z], got {g!r}") from None


def displacements_from_dict(table: dict) -> tuple[ImposedDisplacement, ...]:
    """Imposed displacements of a query: set name -> amplitude, or ``{"components": [...], "amplitude": ...}``
    (no components: those the model prescribes on the set)."""
    if not isinstance(table, dict):
        raise LoadingError(f"loading.displacement must map set names to amplitudes, got {type(table).__name__}")
    out = []
    for name, spec in table.items():
        comps: tuple[int, ...] = ()
        if isinstance(spec, dict):
            spec = dict(spec)
            try:
                comps = tuple(COMPONENT_NAMES[c] for c in spec.pop("components", []))
            except (KeyError, TypeError):
                raise LoadingError(f"loading.displacement.{name}.components: use a list of 'x', 'y', 'z'") from None
            if "amplitude" not in spec or spec.keys() - {"amplitude"}:
                raise LoadingError(f"loading.displacement.{name}: give 'amplitude' (and optionally 'components'), "
                                   f"got {sorted(spec)}")
            spec = spec["amplitude"]
        out.append(ImposedDisplacement(str(name), comps, 1.0,
                                       Amplitude.from_config(spec, f"loading.displacement.{name}")))
    return tuple(out)
