"""Loadings: time histories of temperature fields, pressures, tractions, concentrated forces, rotation speed
and imposed displacements.

A loading is what a user varies between queries. It is evaluated at the times of the increments:
``times[0]`` is the unloaded reference state (zero displacement), each later time ends an increment.
The same description drives the HF solver and the reduced model, and has no MPI or PETSc dependency.

Temperature fields are nodal: a family (``uniform``, ``hot_spot``) evaluated at node coordinates, or an
explicit ``(n_times, n_nodes)`` array.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from structrom.mpi.errors import StructromError


class LoadingError(StructromError, ValueError):
    """A loading is inconsistent; the message names the field and the fix."""


@dataclass(frozen=True)
class Amplitude:
    """Piecewise-linear function of time, constant outside its range. ``times``, ``values``: ``(n,)``."""

    times: np.ndarray
    values: np.ndarray

    @classmethod
    def from_config(cls, value: float | list, name: str = "amplitude") -> "Amplitude":
        """A number (constant) or a list of ``[time, value]`` pairs with increasing times."""
        shape = f"{name}: give a number or a list of [time, value] pairs, got {value!r}"
        if np.isscalar(value):
            try:
                v = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise LoadingError(shape) from None
            if not np.isfinite(v):
                raise LoadingError(f"{name}: value must be finite, got {value}")
            return cls(np.array([0.0]), np.array([v]))
        try:
            table = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise LoadingError(shape) from None
        if table.ndim != 2 or table.shape[1] != 2 or len(table) == 0:
            raise LoadingError(f"{name}: give a number or a list of [time, value] pairs")
        if not np.all(np.isfinite(table)):
            raise LoadingError(f"{name}: contains non-finite entries")
        if np.any(np.diff(table[:, 0]) <= 0):
            raise LoadingError(f"{name}: times must be strictly increasing")
        if not np.all(np.isfinite(np.diff(table[:, 0]))):  # interpolation would divide by an infinite span
            raise LoadingError(f"{name}: times span more than the largest float ({table[0, 0]:g} to "
                               f"{table[-1, 0]:g}); use times of physical magnitude")
        return cls(table[:, 0].copy(), table[:, 1].copy())

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        return np.interp(t, self.times, self.values)

    def __add__(self, other: "Amplitude") -> "Amplitude":
        """The sum of two histories: piecewise linear on the union of their times, constant outside it."""
        times = np.union1d(self.times, other.times)
        return Amplitude(times, self(times) + other(times))

    def to_config(self) -> list[list[float]]:
        return np.column_stack([self.times, self.values]).tolist()


@dataclass(frozen=True)
class VectorAmplitude:
    """Piecewise-linear vector function of time ``(3,)`` (x, y, z), constant outside its range: a traction
    [force/area] or a concentrated force [force]. ``components``: one :class:`Amplitude` per axis."""

    components: tuple[Amplitude, Amplitude, Amplitude]

    @classmethod
    def from_config(cls, value: list, name: str = "vector") -> "VectorAmplitude":
        """A constant vector ``[x, y, z]`` or a list of ``[time, x, y, z]`` rows with increasing times."""
        try:
            table = np.asarray(value, dtype=float) if not isinstance(value, (str, bytes, dict)) else np.zeros(0)
        except (TypeError, ValueError):
            table = np.zeros(0)
        if table.shape == (3,):
            return cls(tuple(Amplitude.from_config(float(v), f"{name}[{i}]") for i, v in enumerate(table)))
        if table.ndim != 2 or table.shape[1] != 4 or len(table) == 0:
            raise LoadingError(f"{name}: give a vector [x, y, z] or a list of [time, x, y, z] rows, got {value!r}")
        return cls(tuple(Amplitude.from_config(table[:, [0, i + 1]].tolist(), f"{name}[{'xyz'[i]}]")
                         for i in range(3)))

    def __call__(self, t: float) -> np.ndarray:
        return np.array([float(a(t)) for a in self.components])

    def __add__(self, other: "VectorAmplitude") -> "VectorAmplitude":
        """The sum of two vector histories, component by component (:meth:`Amplitude.__add__`)."""
        return VectorAmplitude(tuple(a + b for a, b in zip(self.components, other.components)))

    def to_config(self) -> list[list[float]]:
        times = np.unique(np.concatenate([a.times for a in self.components]))
        return np.column_stack([times] + [a(times) for a in self.components]).tolist()


class TemperatureField(Protocol):
    def __call__(self, t: float, points: np.ndarray) -> np.ndarray:
        """Nodal temperature ``(n_nodes,)`` at time ``t`` for node coordinates ``(n_nodes, 3)``."""


@dataclass(frozen=True)
class UniformTemperature:
    """``T(x, t) = reference + amplitude(t)``."""

    reference: float = 0.0
    amplitude: Amplitude = field(default_factory=lambda: Amplitude.from_config(0.0))

    def __call__(self, t: float, points: np.ndarray) -> np.ndarray:
        return np.full(len(points), self.reference + float(self.amplitude(t)))

    def history(self, times: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``(n_times, n_nodes)``: the field at every time of ``times`` (one evaluation per time, as ``__call__``)."""
        return np.repeat((self.reference + self.amplitude(np.asarray(times, float)))[:, None], len(points), axis=1)


@dataclass(frozen=True)
class HotSpotTemperature:
    """A Gaussian hot spot on a linear gradient, scaled in time:

    ``T(x, t) = reference + a(t) [intensity exp(-|x - center|^2 / (2 radius^2)) + gradient . (x - center)]``.
    """

    center: tuple[float, float, float]
    radius: float
    intensity: float
    reference: float = 0.0
    gradient: tuple[float, float, float] = (0.0, 0.0, 0.0)
    amplitude: Amplitude = field(default_factory=lambda: Amplitude.from_config(1.0))

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise LoadingError(f"temperature.radius must be > 0, got {self.radius}")

    def shape(self, points: np.ndarray) -> np.ndarray:
        """``(n_nodes,)``: the bracket of the formula, ``T = reference + a(t) shape``."""
        d = points - np.asarray(self.center, dtype=float)
        dd = (d * d).sum(1)
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            # a radius above 1e154: 2 r^2 = inf (the flat limit); below 1e-154: 2 r^2 = 0 (a spike at the center,
            # intensity there and 0 elsewhere), never OverflowError or 0 / 0
            two_r2 = 2.0 * np.float64(self.radius) ** 2
            q = np.divide(dd, two_r2, out=np.zeros_like(dd), where=dd > 0)
        return self.intensity * np.exp(-q) + d @ np.asarray(self.gradient, float)

    def __call__(self, t: float, points: np.ndarray) -> np.ndarray:
        return self.reference + float(self.amplitude(t)) * self.shape(points)

    def history(self, times: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``(n_times, n_nodes)``: the field at every time of ``times`` (the shape evaluated once)."""
        return self.reference + self.amplitude(np.asarray(times, float))[:, None] * self.shape(points)[None, :]


@dataclass(frozen=True)
class NodalTemperature:
    """Explicit nodal temperatures ``values`` ``(n_times, n_nodes)`` at ``times``, linear in time."""

    times: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or len(self.times) != len(self.values):
            raise LoadingError(
                f"temperature.values must have shape (n_times={len(self.times)}, n_nodes), got {self.values.shape}"
            )
        bad = ~np.isfinite(self.values)
        if bad.any():
            raise LoadingError(f"temperature.values contains {int(bad.sum())} non-finite entries")
        t = np.asarray(self.times, dtype=float)
        if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0) and np.all(np.isfinite(np.diff(t)))):
            raise LoadingError(f"temperature.times must be finite and strictly increasing (with finite differences), "
                               f"got {np.array2string(t, threshold=6, precision=6)}")

    def __call__(self, t: float, points: np.ndarray) -> np.ndarray:
        if self.values.shape[1] != len(points):
            raise LoadingError(
                f"temperature.values has {self.values.shape[1]} nodes but the mesh has {len(points)}"
            )
        i = int(np.clip(np.searchsorted(self.times, t) - 1, 0, max(len(self.times) - 2, 0)))
        if len(self.times) == 1:
            return self.values[0].copy()
        s = np.clip((t - self.times[i]) / (self.times[i + 1] - self.times[i]), 0.0, 1.0)
        return (1 - s) * self.values[i] + s * self.values[i + 1]


@dataclass(frozen=True)
class Centrifugal:
    """Rotation about an axis at speed ``omega(t)`` [rad/time]: body force rho omega^2 r."""

    omega: Amplitude
    axis_point: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class ImposedDisplacement:
    """``u_c = value * amplitude(t)`` on the nodes of ``node_set`` for each component c in ``components``."""

    node_set: str
    components: tuple[int, ...]
    value: float = 0.0
    amplitude: Amplitude = field(default_factory=lambda: Amplitude.from_config(1.0))


@dataclass(frozen=True)
class Loading:
    """A full loading history. ``times``: ``(n_increments + 1,)`` strictly increasing.

    ``tractions``: surface set -> traction vector [force/area] (uniform on the faces, fixed direction in
    space); ``forces``: node set -> concentrated force vector [force] applied at EACH node of the set
    (CalculiX ``*CLOAD`` on a node set)."""

    times: np.ndarray
    temperature: TemperatureField = field(default_factory=UniformTemperature)
    pressures: dict[str, Amplitude] = field(default_factory=dict)
    tractions: dict[str, VectorAmplitude] = field(default_factory=dict)
    forces: dict[str, VectorAmplitude] = field(default_factory=dict)
    centrifugal: Centrifugal | None = None
    gravity: tuple[float, float, float] | None = None
    displacements: tuple[ImposedDisplacement, ...] = ()

    def __post_init__(self) -> None:
        t = np.asarray(self.times, dtype=float)
        if t.ndim != 1 or len(t) < 2:
            raise LoadingError("loading.times needs at least two times: the start and one increment end")
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise LoadingError("loading.times must be finite and strictly increasing")
        if not np.all(np.isfinite(np.diff(t))):
            raise LoadingError(f"loading.times span more than the largest float ({t[0]:g} to {t[-1]:g}); use times "
                               "of physical magnitude")
        object.__setattr__(self, "times", t)

    @property
    def n_increments(self) -> int:
        return len(self.times) - 1

    def nodal_temperature(self, t: float, points: np.ndarray) -> np.ndarray:
        """``(n_nodes,)`` temperature at time ``t``; raises :class:`LoadingError` on non-finite values."""
        temp = np.asarray(self.temperature(t, points), dtype=float)
        bad = ~np.isfinite(temp)
        if bad.any():
            raise LoadingError(
                f"temperature at t={t:g} is non-finite at {int(bad.sum())} nodes (first node {int(np.argmax(bad))})"
            )
        return temp

    def nodal_temperatures(self, times: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``(n_times, n_nodes)`` temperatures at each of ``times`` (same values as :meth:`nodal_temperature`,
        vectorized over time for fields with a ``history`` method); raises :class:`LoadingError` on
        non-finite values."""
        times = np.asarray(times, dtype=float)
        history = getattr(self.temperature, "history", None)
        if history is None:
            return np.array([self.nodal_temperature(float(t), points) for t in times]).reshape(len(times), len(points))
        temp = np.asarray(history(times, points), dtype=float)
        if not np.isfinite(temp.sum()) and not np.all(np.isfinite(temp)):
            bad = ~np.isfinite(temp)
            i = int(np.argmax(bad.any(1)))
            raise LoadingError(f"temperature at t={times[i]:g} is non-finite at {int(bad[i].sum())} nodes "
                               f"(first node {int(np.argmax(bad[i]))})")
        return temp


COMPONENT_NAMES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class DisplacementOverlap:
    """Two imposed displacements ``first`` < ``second`` (indices in the loading's list) that prescribe
    component ``component`` of node ``node`` (0-based mesh index) with different values: ``values``
    ``(2,)`` at time ``time``."""

    first: int
    second: int
    node: int
    component: int
    time: float
    values: tuple[float, float]

    def message(self, labels: tuple[str, str], points: np.ndarray) -> str:
        """One line naming both specifications by ``labels``, the node (index and coordinates ``points``
        ``(n_nodes, 3)``), the component, the two values and the fix."""
        where = tuple(float(x) for x in points[self.node])
        return (f"{labels[0]} and {labels[1]} both prescribe {'xyz'[self.component]} at node {self.node} {where} "
                f"with different values ({self.values[0]:g} and {self.values[1]:g} at t={self.time:g}): one would "
                "override the other; give the shared nodes one value (the same value and amplitude in both, or "
                "remove the shared nodes from one of the node sets)")


def displacement_history(d: ImposedDisplacement, times: np.ndarray) -> np.ndarray:
    """``(len(times),)``: the prescribed value ``value x amplitude(t)`` of ``d``."""
    return float(d.value) * d.amplitude(np.asarray(times, dtype=float))


def comparison_times(displacements, times: np.ndarray) -> np.ndarray:
    """The times ``times`` and every amplitude breakpoint of ``displacements`` between ``times[0]`` and
    ``times[-1]``: two piecewise-linear histories equal at these times are equal on the whole interval (the
    HF solver's cut-back increments included)."""
    times = np.asarray(times, dtype=float)
    knots = np.concatenate([times] + [d.amplitude.times for d in displacements])
    return np.unique(knots[(knots >= times[0]) & (knots <= times[-1])])


def same_history(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two prescribed histories ``(n_times,)`` agree to rounding (1e-12 of the larger magnitude)."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return bool(np.all(np.abs(a - b) <= 1e-12 * scale))


def check_named_once(first: ImposedDisplacement, again: ImposedDisplacement, target: str) -> None:
    """Refuse two imposed displacements of one query, ``first`` and ``again``, that drive the same prescribed
    ``target`` (e.g. ``right`` with components ``["x"]`` and ``right.x``) with different histories: the later
    one replaced the earlier without a word. The same history given twice is accepted."""
    if first is again:
        return
    t = comparison_times((first, again), np.concatenate([first.amplitude.times, again.amplitude.times, [0.0]]))
    if not same_history(displacement_history(first, t), displacement_history(again, t)):
        raise LoadingError(f"loading.displacement.{first.node_set} and loading.displacement.{again.node_set} both "
                           f"set {target} with different values: give it once")


def displacement_overlap(displacements, node_set, times: np.ndarray) -> DisplacementOverlap | None:
    """The first pair of ``displacements`` (:class:`ImposedDisplacement`) that prescribe a common node and
    component with different histories over ``times`` (``(n,)``, the loading's times), or None. ``node_set``:
    set name -> node indices ``(m,)`` (``Mesh.node_set``). Overlaps with the same history (two symmetry
    faces sharing an edge, both 0) are no conflict."""
    displacements = list(displacements)
    t = comparison_times(displacements, times)
    hist = [displacement_history(d, t) for d in displacements]
    dofs = [np.unique((3 * np.asarray(node_set(d.node_set), np.int64)[:, None]
                       + np.asarray(d.components, np.int64)).ravel()) for d in displacements]
    for i in range(len(displacements)):
        for j in range(i + 1, len(displacements)):
            if same_history(hist[i], hist[j]):
                continue
            shared = np.intersect1d(dofs[i], dofs[j], assume_unique=True)
            if len(shared):
                gap = np.abs(hist[i] - hist[j])
                k = 1 + int(np.argmax(gap[1:])) if len(t) > 1 and gap[1:].any() else 0  # a time after the start
                return DisplacementOverlap(i, j, int(shared[0] // 3), int(shared[0] % 3), float(t[k]),
                                           (float(hist[i][k]), float(hist[j][k])))
    return None


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
