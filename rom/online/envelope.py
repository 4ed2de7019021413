"""Out-of-family measures of a loading: distances of its parameters to the training loadings.

* :func:`family_distance`: per increment, how far the loading's parameters (running peaks) leave the
  training *box* of the model's ``loading_schema`` (0 inside), in units of the ranges' widths;
* :func:`loading_parameters` / :func:`nearest_training_distance`: the loading's parameter vector and its
  normalized Euclidean distance to the NEAREST training loading. Inside a box filled by a grid of training
  loadings the box distance is 0 everywhere, including for a training loading left out of the grid; the
  nearest-neighbour distance is not, which is what the leave-one-out calibration needs to learn its factor.
"""
from __future__ import annotations

import numpy as np

from structrom.rom.loading import Amplitude, HotSpotTemperature, Loading, NodalTemperature, UniformTemperature

from .schema import envelope_exceedance, peak


def _running_peak(amp: Amplitude, times: np.ndarray) -> np.ndarray:
    """``(n_times,)`` value of largest magnitude of ``amp`` over ``[times[0], times[i]]`` (breakpoints included)."""
    grid = np.union1d(times, amp.times[(amp.times > times[0]) & (amp.times < times[-1])])
    v = amp(grid)
    absv = np.abs(v)
    new_max = absv >= np.maximum.accumulate(absv)
    arg = np.maximum.accumulate(np.where(new_max, np.arange(len(v)), 0))  # running argmax of |v|
    return v[arg][np.searchsorted(grid, times)]


def _distance(value: np.ndarray, rng, scale: float | None = None) -> np.ndarray:
    """Distance of ``value`` outside ``[lo, hi]`` over ``scale`` (default: the width, at least 10 % of the
    magnitude)."""
    lo, hi = float(rng[0]), float(rng[1])
    s = scale if scale is not None else max(hi - lo, 0.1 * max(abs(lo), abs(hi)), 1e-300)
    return np.maximum(0.0, np.maximum(lo - value, value - hi)) / s


def _peak_distance(running: np.ndarray, rng) -> np.ndarray:
    """Distance of a running peak to ``[lo, hi]``: ``min(d(peak so far), d(peak of the whole loading))``,
    so that a ramp towards an in-range peak counts as inside while it is below the range, and a peak beyond
    the range counts from the increment that passes it (up to the whole loading's distance)."""
    if not len(running):
        return running
    return np.minimum(_distance(running, rng), _distance(np.array(running[-1]), rng))


def family_distance(loading: Loading, schema: dict) -> np.ndarray:
    """``(n_inc,)`` distance of the loading, up to each increment's end, to the training ranges of
    ``schema`` (the model's ``loading_schema``; 0 inside). Peaks of pressures and rotation speed so far,
    hot-spot intensity x peak amplitude so far, hot-spot centre (in units of the largest training radius),
    radius, reference; the largest of the normalized distances."""
    times = np.asarray(loading.times, float)
    out = np.zeros(len(times))
    for surface, spec in (schema.get("pressure") or {}).items():
        amp = loading.pressures.get(surface)
        v = _running_peak(amp, times) if amp is not None else np.zeros(len(times))
        out = np.maximum(out, _peak_distance(v, spec["range"]))
    cen = schema.get("centrifugal") or {}
    if "omega_range" in cen and loading.centrifugal is not None:
        out = np.maximum(out, _peak_distance(np.abs(_running_peak(loading.centrifugal.omega, times)), cen["omega_range"]))
    temp = schema.get("temperature") or {}
    ranges = temp.get("ranges") or {}
    hs = loading.temperature
    if temp.get("type") == "hot_spot" and isinstance(hs, HotSpotTemperature):
        if "intensity" in ranges:
            out = np.maximum(out, _peak_distance(hs.intensity * _running_peak(hs.amplitude, times), ranges["intensity"]))
        r_scale = float(ranges["radius"][1]) if "radius" in ranges else None
        for name in ("center", "gradient"):
            if name in ranges:
                for v, rng in zip(np.ravel(getattr(hs, name)), ranges[name]):
                    d = _distance(np.array(float(v)), rng, r_scale if name == "center" else None)
                    out = np.maximum(out, float(d))
        for name in ("radius", "reference"):
            if name in ranges:
                out = np.maximum(out, float(_distance(np.array(float(getattr(hs, name))), ranges[name])))
    for key, loads in (("traction", loading.tractions), ("force", loading.forces)):
        for name, spec in (schema.get(key) or {}).items():
            vec = loads.get(name)
            for c, rng in enumerate(spec["range"]):
                v = _running_peak(vec.components[c], times) if vec is not None else np.zeros(len(times))
                out = np.maximum(out, _peak_distance(v, rng))
    out[1:] = np.maximum(out[1:], node_envelope_distance(loading, schema))
    return out[1:]


def node_envelope_distance(loading: Loading, schema: dict) -> np.ndarray:
    """``(n_inc,)`` largest exceedance of the per-node training temperature envelope (``schema``'s
    ``temperature.node_envelope``) up to each increment's end, in units of the training temperatures'
    width (:func:`~.schema.envelope_exceedance`); zeros without an envelope or for a loading whose
    temperature is not given at the envelope's nodes."""
    times = np.asarray(loading.times, float)
    env = (schema.get("temperature") or {}).get("node_envelope")
    temp = loading.temperature
    if env is None or not isinstance(temp, NodalTemperature) or temp.values.shape[1] != len(env["min"]):
        return np.zeros(len(times) - 1)
    values = loading.nodal_temperatures(times, np.zeros((temp.values.shape[1], 3)))
    return np.maximum.accumulate(envelope_exceedance(values, env).max(1))[1:]



def loading_parameters(loading: Loading, schema: dict) -> dict[str, float]:
    """The loading's parameters named in ``schema`` (a model's ``loading_schema``): peaks of the pressures
    per surface (``pressure.<surface>``), of each traction/force component (``force.<set>.x``...) and of the
    rotation speed (``omega``), gravity components, hot-spot
    ``intensity`` (x peak amplitude), ``center.x/y/z``, ``radius``, ``reference``, ``gradient.x/y/z``, or a
    uniform temperature's ``reference`` and ``amplitude`` (peak)."""
    t0, t1 = float(loading.times[0]), float(loading.times[-1])
    out: dict[str, float] = {}
    for surface in (schema.get("pressure") or {}):
        amp = loading.pressures.get(surface)
        out[f"pressure.{surface}"] = peak(amp, t0, t1) if amp is not None else 0.0
    for key, loads in (("traction", loading.tractions), ("force", loading.forces)):
        for name in (schema.get(key) or {}):  # peak of each component (a direction change shows)
            vec = loads.get(name)
            out.update({f"{key}.{name}.{c}": peak(a, t0, t1) if vec is not None else 0.0
                        for c, a in zip("xyz", vec.components if vec is not None else (None,) * 3)})
    if "centrifugal" in schema:
        out["omega"] = abs(peak(loading.centrifugal.omega, t0, t1)) if loading.centrifugal is not None else 0.0
    if "gravity" in schema:
        g = np.zeros(3) if loading.gravity is None else np.asarray(loading.gravity, float)
        out.update({f"gravity.{c}": float(v) for c, v in zip("xyz", g)})
    kind = (schema.get("temperature") or {}).get("type")
    temp = loading.temperature
    if kind == "hot_spot" and isinstance(temp, HotSpotTemperature):
        out["intensity"] = temp.intensity * peak(temp.amplitude, t0, t1)
        out.update({f"center.{c}": float(v) for c, v in zip("xyz", temp.center)})
        out.update({f"gradient.{c}": float(v) for c, v in zip("xyz", temp.gradient)})
        out["radius"], out["reference"] = float(temp.radius), float(temp.reference)
    elif kind == "uniform" and isinstance(temp, UniformTemperature):
        out["reference"], out["amplitude"] = float(temp.reference), peak(temp.amplitude, t0, t1)
    return out


def parameter_scales(training: list[dict[str, float]]) -> dict[str, float]:
    """Normalization of each parameter: its training range width; for a parameter the training did not
    vary, 10 % of its magnitude (of the largest radius for a hot-spot centre; 1 for zero values), so that
    moving along a direction never trained counts as far."""
    names = sorted(set().union(*training)) if training else []
    radius = max((t.get("radius", 0.0) for t in training), default=0.0)
    out = {}
    for n in names:
        v = np.array([t.get(n, 0.0) for t in training], float)
        width = float(v.max() - v.min())
        if width > 1e-12 * max(1.0, float(np.abs(v).max())):
            out[n] = width
        elif n.startswith("center.") and radius > 0:
            out[n] = 0.1 * radius
        else:
            out[n] = 0.1 * max(float(np.abs(v).max()), 1.0) if np.abs(v).max() > 0 else 1.0
    return out


def nearest_training_distance(params: dict[str, float], training: list[dict[str, float]],
                              scales: dict[str, float]) -> float:
    """``min_j || (theta - theta_j) / s ||`` over the training loadings ``j`` (parameters missing on either
    side count as 0)."""
    if not training:
        return 0.0
    names = sorted(scales)
    x = np.array([params.get(n, 0.0) for n in names]) / np.array([scales[n] for n in names])
    T = np.array([[t.get(n, 0.0) for n in names] for t in training]) / np.array([scales[n] for n in names])
    return float(np.sqrt(((T - x) ** 2).sum(axis=1)).min())
