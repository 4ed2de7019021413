"""Configuration of a high-fidelity run (``structrom hifi config.toml``).

Example::

    [units]
    length = "mm"
    force = "N"
    stress = "MPa"
    mass = "t"

    [mesh]
    file = "plate.msh"              # any meshio format; relative to this file

    [[material]]
    element_set = "plate"           # omitted: all elements
    law = { type = "j2_plasticity", ... }   # see structrom.rom.materials.law_from_config

    [[boundary]]
    node_set = "left"
    components = ["x", "y", "z"]
    value = 0.0

    [loading]
    times = [0.0, 0.5, 1.0]          # or: end_time = 1.0, increments = 10
    temperature = { type = "hot_spot", center = [50, 10, 0], radius = 8, intensity = 400, reference = 20 }
    pressure = [{ surface = "holes", amplitude = [[0, 0], [1, 100]] }]
    traction = [{ surface = "flange", vector = [[0, 0, 0, 0], [1, 5, 0, -2]] }]   # [t, x, y, z] rows
    force = [{ node_set = "tip", vector = [0, 0, -100] }]     # at each node of the set
    # a surface or node set loaded twice carries the sum of both loads (as CalculiX adds them)
    centrifugal = { omega = [[0, 0], [1, 1500]], axis_point = [0, 0, 0], axis_direction = [0, 0, 1] }

    [solver]
    newton_rtol = 1e-8
    linear = { ksp_type = "cg", pc_type = "gamg", rtol = 1e-10 }
    # also: reuse_preconditioner = true (an increment's first preconditioner serves its later Newton
    # iterations), eisenstat_walker = true (inexact Newton: linear tolerance between rtol and eta_max
    # from the residual decrease), eta_max = 1e-2; both false = exact linear solves to rtol at each iteration

    [output]
    file = "out/plate.h5"            # HDF5 snapshots (docs/hdf5_layout.md) + plate.xdmf for ParaView
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from structrom.rom.config import ConfigError, ReadWhen, check_unread_keywords, load_toml
from structrom.rom.loading import (Amplitude, Centrifugal, ImposedDisplacement, Loading, LoadingError,
                                   TemperatureTimesError, VectorAmplitude, COMPONENT_NAMES)
from structrom.rom.loading_dict import temperature_from_config
from structrom.rom.units import Units

AmplitudeLike = float | list[list[float]]


class Strict(BaseModel):
    # unknown keys refused; nan and inf refused in every number (an infinite indicator.tolerance trusted any answer)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MeshConfig(Strict):
    file: str
    quadratic_hex: Literal["C3D20", "C3D20R"] = "C3D20"


class MaterialConfig(Strict):
    element_set: str | None = None
    law: dict[str, Any]


class BoundaryConfig(Strict):
    """``u_c = value x amplitude(t)`` [length] on the nodes of ``node_set``, for each of ``components``."""

    node_set: str
    components: list[Literal["x", "y", "z"]] = Field(["x", "y", "z"], min_length=1)
    value: float = 0.0
    amplitude: AmplitudeLike = 1.0

    @model_validator(mode="after")
    def _value_with_amplitude(self) -> "BoundaryConfig":
        # value defaults to 0, so a nonzero amplitude alone prescribed 0 x amplitude(t) = 0 without a word
        if "amplitude" in self.model_fields_set and "value" not in self.model_fields_set and \
                np.any(np.asarray(self.amplitude, dtype=float) != 0):
            raise ValueError("amplitude without value: the prescribed displacement is value x amplitude(t) and value "
                             "defaults to 0; give value (1.0 to take the amplitude's values as displacements)")
        return self


class PressureConfig(Strict):
    surface: str
    amplitude: AmplitudeLike


class VectorLoadConfig(Strict):
    """A traction on ``surface`` [force/area] or a force at each node of ``node_set`` [force]: ``vector`` is
    ``[x, y, z]`` (constant) or a list of ``[time, x, y, z]`` rows."""

    vector: list[float] | list[list[float]]


class TractionConfig(VectorLoadConfig):
    surface: str


class ForceConfig(VectorLoadConfig):
    node_set: str


class CentrifugalConfig(Strict):
    omega: AmplitudeLike
    axis_point: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)

    @field_validator("axis_direction")
    @classmethod
    def _direction(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not any(v):
            raise ValueError("must be a non-zero vector (the rotation axis), e.g. [0, 0, 1]")
        return v


class LoadingConfig(Strict):
    times: list[float] | None = None
    end_time: float | None = Field(None, gt=0)
    increments: int | None = Field(None, ge=1)
    temperature: dict[str, Any] = {"type": "uniform", "reference": 0.0}
    pressure: list[PressureConfig] = []
    traction: list[TractionConfig] = []
    force: list[ForceConfig] = []
    centrifugal: CentrifugalConfig | None = None
    gravity: tuple[float, float, float] | None = None

    @model_validator(mode="after")
    def _times(self) -> "LoadingConfig":
        if self.times is None and (self.end_time is None or self.increments is None):
            raise ValueError("give loading.times, or loading.end_time and loading.increments")
        if self.times is not None and (self.end_time is not None or self.increments is not None):
            raise ValueError("give loading.times, or loading.end_time and loading.increments, not both (one of "
                             "them would be ignored)")
        return self

    def time_points(self) -> np.ndarray:
        if self.times is not None:
            return np.asarray(self.times, dtype=float)
        return np.linspace(0.0, float(self.end_time), int(self.increments) + 1)


class LinearConfig(Strict):
    ksp_type: str = "cg"
    pc_type: str = "gamg"
    rtol: float = Field(1e-10, gt=0, lt=1)
    max_it: int = Field(5000, ge=1)
    reuse_preconditioner: bool = True
    eisenstat_walker: bool = True
    eta_max: float = Field(1e-2, gt=0, lt=1)
    petsc_options: dict[str, str] = {}


class SolverConfig(Strict):
    newton_rtol: float = Field(1e-8, gt=0, lt=1)
    newton_max_iterations: int = Field(25, ge=1)
    max_cutbacks: int = Field(5, ge=0)
    linear: LinearConfig = LinearConfig()


class OutputConfig(Strict):
    file: str = "out/result.h5"
    xdmf: bool = True
    #: Store strain, stress and internal variables at integration points (large for big meshes).
    integration_point_fields: bool = True


class HifiConfig(Strict):
    units: Units = Units()
    mesh: MeshConfig
    material: list[MaterialConfig] = Field(min_length=1)
    boundary: list[BoundaryConfig] = []
    loading: LoadingConfig
    solver: SolverConfig = SolverConfig()
    output: OutputConfig = OutputConfig()

    #: Directory of the configuration file; relative paths are taken from there.
    base_dir: str = "."

    @field_validator("material")
    @classmethod
    def _one_default(cls, v: list[MaterialConfig]) -> list[MaterialConfig]:
        if sum(m.element_set is None for m in v) > 1:
            raise ValueError("at most one material may omit element_set (the default for all elements)")
        return v

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    def build_loading(self) -> Loading:
        """The :class:`structrom.rom.loading.Loading` this configuration describes. Loads given twice on one
        set (two ``[[loading.pressure]]`` on one surface, two ``[[loading.force]]`` on one node set) add up, as
        CalculiX adds the loads of a step on one face or node dof (their amplitudes may differ: the sum of two
        piecewise-linear histories is piecewise linear on the union of their times)."""
        lc = self.loading
        try:
            return Loading(
                times=lc.time_points(),
                temperature=temperature_from_config(lc.temperature, self.base_dir),
                pressures=summed((p.surface, Amplitude.from_config(p.amplitude, f"loading.pressure[{p.surface}]"))
                                 for p in lc.pressure),
                tractions=summed((c.surface, VectorAmplitude.from_config(c.vector, f"loading.traction[{c.surface}]"))
                                 for c in lc.traction),
                forces=summed((c.node_set, VectorAmplitude.from_config(c.vector, f"loading.force[{c.node_set}]"))
                              for c in lc.force),
                centrifugal=None if lc.centrifugal is None else Centrifugal(
                    omega=Amplitude.from_config(lc.centrifugal.omega, "loading.centrifugal.omega"),
                    axis_point=lc.centrifugal.axis_point, axis_direction=lc.centrifugal.axis_direction),
                gravity=lc.gravity,
                displacements=tuple(
                    ImposedDisplacement(b.node_set, tuple(COMPONENT_NAMES[c] for c in b.components), b.value,
                                        Amplitude.from_config(b.amplitude, f"boundary[{b.node_set}].amplitude"))
                    for b in self.boundary),
            )
        except TemperatureTimesError as exc:  # the rows of a nodal temperature file: name the file
            raise ConfigError(f"{self.path(str(lc.temperature.get('file')))}: {exc}") from None
        except LoadingError as exc:
            raise ConfigError(f"{self.base_dir}: loading: {exc}") from None


def summed(loads) -> dict:
    """Set name -> the sum of the histories (:class:`Amplitude` or :class:`VectorAmplitude`) of ``loads``, an
    iterable of ``(set name, history)``: a set loaded twice carries both loads."""
    out: dict = {}
    for name, history in loads:
        out[name] = out[name] + history if name in out else history
    return out


#: Keywords read only in some modes (:func:`~structrom.rom.config.check_unread_keywords`): ``eta_max`` caps the
#: inexact Newton's forcing terms, with ``eisenstat_walker = false`` every linear solve goes to ``rtol``.
READ_WHEN = {"solver.linear": {"eta_max": ReadWhen(lambda lin: lin.eisenstat_walker, ("eisenstat_walker",),
                                                   "eisenstat_walker = true")}}


class SolverTable(Strict):
    """A file holding only the HF configuration's ``[solver]`` table (Newton and linear-solver settings), for the HF
    solves of an import of decks (``structrom import calculix --solve hf --solver FILE``)."""

    solver: SolverConfig


def load_solver_table(path: str | Path) -> SolverConfig:
    """The ``[solver]`` table of ``path`` (:class:`SolverTable`); raises :class:`ConfigError` naming the file and key."""
    table = load_toml(path, SolverTable)
    check_unread_keywords(table, str(path), READ_WHEN)
    return table.solver


def load_config(path: str | Path) -> HifiConfig:
    cfg = load_toml(path, HifiConfig)
    check_unread_keywords(cfg, str(path), READ_WHEN)
    cfg.base_dir = str(Path(path).resolve().parent)
    return cfg
