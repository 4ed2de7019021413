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


class TemperatureTimesError(LoadingError):
    """A nodal temperature's ``times`` do not span the loading's: the message starts with
    ``loading.temperature.times`` (a configuration prefixes the file it read the rows from)."""


@dataclass(frozen=True)
class Amplitude:
    """Piecewise-linear function of time, constant outside its range. ``times``, ``values``: ``(n,)``.

    A loading's times may go beyond a table's first or last time: the amplitude is then held at its first or
    last value, as CalculiX holds an ``*AMPLITUDE`` beyond its last point (a table that stops early is a load
    kept constant, not an error; a :class:`NodalTemperature` that stops early is refused by :class:`Loading`)."""

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
    """Explicit nodal temperatures ``values`` ``(n_times, n_nodes)`` at ``times``, linear in time. A single row
    is a field constant in time; with more rows, a :class:`Loading` refuses times that do not span its own
    (the field would be held at the first or last row without a word)."""

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
        check_temperature_times(self.temperature, t)

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


def check_temperature_times(temperature: TemperatureField, times: np.ndarray) -> None:
    """Raise :class:`TemperatureTimesError` for a :class:`NodalTemperature` of more than one row whose times
    ``(n_rows,)`` start after ``times[0]`` or stop before ``times[-1]`` (``times``: the loading's, ``(n + 1,)``):
    the rows would be held beyond their range without a word. One row is a constant field (any times)."""
    if not isinstance(temperature, NodalTemperature) or len(temperature.times) < 2:
        return
    rows = np.asarray(temperature.times, dtype=float)
    if rows[0] <= times[0] and rows[-1] >= times[-1]:
        return
    raise TemperatureTimesError(
        f"loading.temperature.times [{rows[0]:g}, {rows[-1]:g}] do not cover the loading times [{times[0]:g}, "
        f"{times[-1]:g}]: the temperature would be held at the first or last row; give rows from t={times[0]:g} up "
        f"to t={times[-1]:g} (or one row for a temperature constant in time)")


COMPONENT_NAMES = {"x": 0, "y": 1, "z": 2}
