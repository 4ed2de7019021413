"""Abstract constitutive law, its result type and the input checks shared by all laws."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .errors import MaterialError


@dataclass
class MaterialResponse:
    """Result of :meth:`ConstitutiveLaw.integrate` at ``n`` integration points.

    Attributes
    ----------
    stress:  ``(n, 6)`` Cauchy stress at the end of the increment (Voigt, tensor shears).
    tangent: ``(n, 6, 6)`` consistent (algorithmic) tangent ``d stress_new / d eps_new``; may be a
        read-only array shared between calls (the elastic tangent at unchanged temperatures): copy it
        before modifying it.
    state:   ``(n, n_state)`` state variables at the end of the increment.
    """

    stress: np.ndarray
    tangent: np.ndarray
    state: np.ndarray


def _count_bad(name: str, a: np.ndarray, what: str = "integration points", detail: str = "") -> None:
    """Raise if ``a`` holds NaN or inf, saying at how many points (rows)."""
    total = float(np.add.reduce(a, axis=None)) if a.size else 0.0
    if np.isfinite(total) or np.all(np.isfinite(a)):  # a finite sum: no NaN/inf (one pass, no temporary)
        return
    rows = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1)
    n_nan = int(np.isnan(rows).any(-1).sum())
    n_inf = int((np.isinf(rows).any(-1) & ~np.isnan(rows).any(-1)).sum())
    parts = []
    if n_nan:
        parts.append(f"NaN at {n_nan} {what}")
    if n_inf:
        parts.append(f"inf at {n_inf} {what}")
    detail = f" ({detail})" if detail else ""
    raise MaterialError(f"{name} contains {' and '.join(parts)}{detail}; pass finite values")


def check_temperature(temperature: np.ndarray | float, n: int | None = None,
                      name: str = "temperature", detail: str = "") -> np.ndarray:
    """Return ``temperature`` as a finite float array ``(n,)`` (scalars are broadcast)."""
    t = np.asarray(temperature, dtype=float)
    if n is not None:
        if t.ndim == 0:
            t = np.full(n, float(t))
        elif t.shape != (n,):
            raise MaterialError(f"{name}{' ' + detail if detail else ''} must have shape ({n},) "
                                f"(one value per integration point), got {t.shape}")
    _count_bad(name, t, detail=detail)
    return t


def check_increment(eps_old: np.ndarray, deps: np.ndarray, temp_old, temp_new, dt: float,
                    state_old: np.ndarray, n_state: int, *, require_positive_dt: bool):
    """Validate and normalise the arguments of :meth:`ConstitutiveLaw.integrate`."""
    eps_old = np.asarray(eps_old, dtype=float)
    deps = np.asarray(deps, dtype=float)
    if eps_old.ndim != 2 or eps_old.shape[1] != 6:
        raise MaterialError(f"eps_old must have shape (n, 6), got {eps_old.shape}")
    n = eps_old.shape[0]
    if deps.shape != (n, 6):
        raise MaterialError(f"deps must have shape ({n}, 6) like eps_old, got {deps.shape}")
    _count_bad("eps_old", eps_old)
    _count_bad("deps", deps)
    temp_old = check_temperature(temp_old, n, "temperature", "temp_old")
    temp_new = check_temperature(temp_new, n, "temperature", "temp_new")
    state_old = np.asarray(state_old, dtype=float)
    if state_old.shape != (n, n_state):
        raise MaterialError(f"state_old must have shape ({n}, {n_state}) "
                            f"(use law.initial_state(n)), got {state_old.shape}")
    _count_bad("state_old", state_old)
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise MaterialError(f"dt must be a float time increment, got {dt!r}") from None
    if not np.isfinite(dt) or dt < 0.0 or (require_positive_dt and dt <= 0.0):
        rel = "> 0" if require_positive_dt else ">= 0"
        raise MaterialError(f"dt must be finite and {rel} (got {dt}); pass the time increment")
    return eps_old, deps, temp_old, temp_new, dt, state_old


class ConstitutiveLaw(ABC):
    """Small-strain constitutive law evaluated in batches of ``n`` integration points.

    Conventions: see :mod:`structrom.rom.voigt` (order xx yy zz xy yz zx, stresses with tensor shears,
    strains with engineering shears). Units are whatever consistent set the parameters use
    (e.g. MPa, mm, s, K). Temperatures must be in the unit of the parameter tables.
    """

    #: Identifier, also the ``"type"`` key of :meth:`to_config`.
    name: str = "abstract"
    #: Names of the columns of the state array.
    state_names: tuple[str, ...] = ()
    #: Mass density (for mass matrices and centrifugal loads).
    density: float = 0.0

    @property
    def n_state(self) -> int:
        """Number of state variables per integration point."""
        return len(self.state_names)

    def initial_state(self, n: int) -> np.ndarray:
        """Virgin state ``(n, n_state)`` (zeros)."""
        return np.zeros((int(n), self.n_state))

    @abstractmethod
    def thermal_strain(self, temperature: np.ndarray) -> np.ndarray:
        """Free thermal strain ``(n, 6)`` at temperatures ``(n,)``."""

    @abstractmethod
    def elastic_tangent(self, temperature: np.ndarray) -> np.ndarray:
        """Elastic stiffness ``(n, 6, 6)`` at temperatures ``(n,)``."""

    @abstractmethod
    def integrate(self, eps_old: np.ndarray, deps: np.ndarray, temp_old: np.ndarray,
                  temp_new: np.ndarray, dt: float, state_old: np.ndarray) -> MaterialResponse:
        """Update stress and state over one increment.

        Parameters
        ----------
        eps_old, deps: ``(n, 6)`` total strain (mechanical + thermal) at the start of the
            increment and its increment.
        temp_old, temp_new: ``(n,)`` temperatures at the start and end (scalars broadcast).
        dt: time increment (> 0 for rate-dependent laws).
        state_old: ``(n, n_state)`` state at the start of the increment.
        """

    @abstractmethod
    def cumulated_plastic_strain(self, state: np.ndarray) -> np.ndarray:
        """Equivalent (cumulated) plastic strain ``(n,)``."""

    @abstractmethod
    def to_config(self) -> dict:
        """Plain, JSON/TOML-serializable description; see :func:`structrom.rom.materials.law_from_config`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_config()!r})"
