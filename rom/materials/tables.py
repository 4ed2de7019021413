"""Temperature tables: piecewise-linear functions of temperature with constant extrapolation."""
from __future__ import annotations

from typing import Any, Union

import numpy as np

from .errors import MaterialError

TableLike = Union["Table", float, int, dict]


class Table:
    """A material parameter as a piecewise-linear function of temperature.

    Outside ``[temperatures[0], temperatures[-1]]`` the value is held constant (as CalculiX and
    Abaqus do). A scalar ``values`` (or a single data point) gives a constant table.

    Parameters
    ----------
    temperatures:
        1-D strictly increasing temperatures ``(m,)`` (ignored / may be ``None`` for a scalar value).
    values:
        ``(m,)`` values at those temperatures, or a scalar.
    name:
        Parameter name used in error messages (e.g. ``"young"``).
    """

    def __init__(self, temperatures: Any, values: Any, *, name: str = "table") -> None:
        self.name = name
        vals = np.asarray(values, dtype=float)
        if vals.ndim == 0:
            temps = np.zeros(1)
            vals = vals.reshape(1)
        else:
            if temperatures is None:
                raise MaterialError(
                    f"{name}: {vals.size} values given without temperatures; pass "
                    f"temperatures of the same length or a single scalar value")
            temps = np.asarray(temperatures, dtype=float)
            if vals.ndim != 1 or temps.ndim != 1:
                raise MaterialError(
                    f"{name}: temperatures and values must be 1-D sequences "
                    f"(got shapes {temps.shape} and {vals.shape})")
            if temps.size != vals.size:
                raise MaterialError(
                    f"{name}: {temps.size} temperatures but {vals.size} values; give one value "
                    f"per temperature")
            if vals.size == 0:
                raise MaterialError(f"{name}: empty table; give at least one value")
        if not np.all(np.isfinite(vals)):
            raise MaterialError(f"{name}: values must be finite (got {vals.tolist()})")
        if not np.all(np.isfinite(temps)):
            raise MaterialError(f"{name}: temperatures must be finite (got {temps.tolist()})")
        if temps.size > 1 and not np.all(np.diff(temps) > 0.0):
            bad = int(np.argmax(~(np.diff(temps) > 0.0)))
            raise MaterialError(
                f"{name}: temperatures must be strictly increasing, but temperatures[{bad + 1}] = "
                f"{temps[bad + 1]} <= temperatures[{bad}] = {temps[bad]}; sort the table and "
                f"remove duplicate temperatures")
        self._t = temps
        self._v = vals

    # ------------------------------------------------------------------ construction
    @classmethod
    def constant(cls, value: float, *, name: str = "table") -> "Table":
        """A temperature-independent table."""
        return cls(None, float(value), name=name)

    @classmethod
    def from_config(cls, cfg: TableLike, *, name: str = "table") -> "Table":
        """Inverse of :meth:`to_config`: a number, ``{"temperatures": [...], "values": [...]}``,
        or an existing :class:`Table` (returned with its name updated)."""
        if isinstance(cfg, Table):
            return cls(None if cfg.is_constant else cfg.temperatures,
                       float(cfg.values[0]) if cfg.is_constant else cfg.values, name=name)
        if isinstance(cfg, bool):
            raise MaterialError(f"{name}: expected a number or a temperature table, got a bool")
        if isinstance(cfg, (int, float, np.floating, np.integer)):
            return cls(None, float(cfg), name=name)
        if isinstance(cfg, dict):
            extra = set(cfg) - {"temperatures", "values"}
            if extra or "values" not in cfg:
                raise MaterialError(
                    f"{name}: a table needs the keys 'temperatures' and 'values' "
                    f"(got {sorted(cfg)})")
            return cls(cfg.get("temperatures"), cfg["values"], name=name)
        raise MaterialError(
            f"{name}: expected a number or {{'temperatures': [...], 'values': [...]}}, "
            f"got {type(cfg).__name__}")

    # ------------------------------------------------------------------ evaluation
    def __call__(self, temperature: np.ndarray | float) -> np.ndarray:
        """Values at ``temperature`` (any shape); same shape as the input."""
        temperature = np.asarray(temperature, dtype=float)
        if self._v.size == 1:
            return np.full(temperature.shape, self._v[0])
        return np.interp(temperature, self._t, self._v)

    # ------------------------------------------------------------------ inspection
    @property
    def is_constant(self) -> bool:
        return self._v.size == 1

    @property
    def temperatures(self) -> np.ndarray:
        return self._t.copy()

    @property
    def values(self) -> np.ndarray:
        return self._v.copy()

    def to_config(self) -> float | dict:
        """A float for a constant table, else ``{"temperatures": [...], "values": [...]}``
        (JSON/TOML-serializable, exact float round-trip)."""
        if self.is_constant:
            return float(self._v[0])
        return {"temperatures": [float(t) for t in self._t], "values": [float(v) for v in self._v]}

    def check_range(self, *, lower: float | None = None, upper: float | None = None,
                    lower_strict: bool = False, upper_strict: bool = False,
                    hint: str = "") -> None:
        """Raise :class:`MaterialError` unless every tabulated value is within the bounds.

        Linear interpolation and constant extrapolation cannot leave the range of the data points,
        so checking the data points is sufficient.
        """
        v = self._v
        if lower is not None:
            bad = v <= lower if lower_strict else v < lower
            if bad.any():
                rel = ">" if lower_strict else ">="
                raise MaterialError(
                    f"{self.name} must be {rel} {lower} at every temperature (got {v[bad][0]:g})"
                    + (f"; {hint}" if hint else ""))
        if upper is not None:
            bad = v >= upper if upper_strict else v > upper
            if bad.any():
                rel = "<" if upper_strict else "<="
                raise MaterialError(
                    f"{self.name} must be {rel} {upper} at every temperature (got {v[bad][0]:g})"
                    + (f"; {hint}" if hint else ""))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return (np.array_equal(self._v, other._v)
                and (self.is_constant or np.array_equal(self._t, other._t)))

    def __repr__(self) -> str:
        if self.is_constant:
            return f"Table.constant({self._v[0]!r}, name={self.name!r})"
        return f"Table({self._t.tolist()!r}, {self._v.tolist()!r}, name={self.name!r})"


def as_table(x: TableLike, name: str) -> Table:
    """Coerce a number, a table config dict or a :class:`Table` into a :class:`Table` named ``name``."""
    return Table.from_config(x, name=name)
