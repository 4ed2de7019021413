"""Configuration of the offline stage of a separated model (``kind = "separated"`` in the TOML).

Example::

    kind = "separated"

    [separated]
    format = "calculix"                    # calculix (job.sti + job.dof) | matrix_market (.mtx) | ansys_full (.full)
    parameter_names = ["intensity", "x_center"]
    parameter_ranges = [[300.0, 700.0], [30.0, 70.0]]   # optional; default: the training bounding box
    rhs = "train/load.mtx"                 # load vector in the matrices' row order (.mtx array or .npy),
                                           #   shared by every training parameter (or `rhs` per training)

    [[separated.training]]                 # one table per exported parameter value (>= 2)
    mu = [300.0, 30.0]
    matrix = "train/mu00/job"              # calculix: job path without extension; matrix_market: the file

    [[separated.validation]]               # optional exports NOT used for the model: they measure the
    mu = [410.0, 47.0]                     #   separation's operator error that the residual cannot see
    matrix = "valid/mu00/job"

    [separated.eim]
    max_terms = 24                         # at most the number of training parameters
    rtol = 1e-10                           # greedy tolerance relative to the largest entry (max norm)

    [separated.basis]
    tolerance = 1e-4                       # POD relative energy tolerance of the training solutions
    max_modes = 30

    [separated.solver]                     # PETSc KSP of the training solves (and of the estimator)
    ksp_type = "preonly"
    pc_type = "cholesky"
    factor_solver = "mumps"

    [separated.estimator]
    reference = 0                          # training index: X = A(mu_reference) is the error norm
    tolerance = 1e-3                       # trusted when the relative estimate is below
    safety = 0.9                           # alpha_LB = safety x min_j lambda_min(X^-1 A(mu_j))

    [separated.online]
    entries = "fe_kernel"                  # fe_kernel (mesh, material, temperature) | interpolation
    mesh = "mesh.inp"                      # CalculiX deck with the mesh, node ids = matrix node ids
    material = {type = "linear_elastic", young = {temperatures = [...], values = [...]}, poisson = 0.3}
    temperature = {type = "hot_spot", center = ["x_center", 20.0, 5.0], radius = 20.0,
                   intensity = "intensity", reference = 20.0}   # strings = parameter names

    [output]
    file = "model.h5"
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from structrom.rom.config import ConfigError

from .config import OutputConfig, Strict


class TrainingEntry(Strict):
    mu: list[float] = Field(min_length=1)
    matrix: str
    rhs: str | None = None


class SeparatedEIMConfig(Strict):
    max_terms: int | None = Field(None, ge=1)
    rtol: float = Field(1e-10, ge=0, lt=1)
    norm: Literal["max", "l2"] = "max"


class SeparatedBasisConfig(Strict):
    tolerance: float = Field(1e-4, gt=0, lt=1)
    max_modes: int | None = Field(None, ge=1)


class SeparatedSolverConfig(Strict):
    ksp_type: str = "preonly"
    pc_type: str = "cholesky"
    factor_solver: str | None = "mumps"
    rtol: float = Field(1e-12, gt=0, lt=1)
    max_it: int = Field(10000, ge=1)


class SeparatedEstimatorConfig(Strict):
    reference: int = Field(0, ge=0)
    tolerance: float = Field(1e-3, gt=0)
    safety: float = Field(0.9, gt=0, le=1)
    #: subspace iteration for lambda_min(X^-1 A(mu_j)): block size, iterations, relative change to stop
    eig_vectors: int = Field(2, ge=1)
    eig_iterations: int = Field(12, ge=1)
    eig_rtol: float = Field(1e-3, gt=0)


class SeparatedOnlineConfig(Strict):
    entries: Literal["fe_kernel", "interpolation"] = "interpolation"
    mesh: str | None = None
    material: dict | None = None
    temperature: dict | None = None
    time: float = 1.0

    @model_validator(mode="after")
    def _complete(self):
        if self.entries == "fe_kernel" and (self.mesh is None or self.material is None or self.temperature is None):
            raise ValueError("entries = 'fe_kernel' needs mesh, material and temperature")
        return self


class SeparatedSection(Strict):
    format: Literal["calculix", "matrix_market", "ansys_full"] = "calculix"
    parameter_names: list[str] = Field(min_length=1)
    parameter_ranges: list[list[float]] | None = None
    rhs: str | None = None
    training: list[TrainingEntry] = Field(min_length=2)
    validation: list[TrainingEntry] = []
    eim: SeparatedEIMConfig = SeparatedEIMConfig()
    basis: SeparatedBasisConfig = SeparatedBasisConfig()
    solver: SeparatedSolverConfig = SeparatedSolverConfig()
    estimator: SeparatedEstimatorConfig = SeparatedEstimatorConfig()
    online: SeparatedOnlineConfig = SeparatedOnlineConfig()

    @model_validator(mode="after")
    def _consistent(self):
        p = len(self.parameter_names)
        if len(set(self.parameter_names)) != p:
            raise ValueError(f"parameter_names has duplicates: {self.parameter_names}")
        for what, entries in (("training", self.training), ("validation", self.validation)):
            for j, t in enumerate(entries):
                if len(t.mu) != p:
                    raise ValueError(f"{what}[{j}].mu has {len(t.mu)} values for {p} parameters {self.parameter_names}")
                if self.rhs is None and t.rhs is None:
                    raise ValueError(f"{what}[{j}] has no rhs and there is no shared separated.rhs")
        if self.parameter_ranges is not None:
            if len(self.parameter_ranges) != p or any(len(r) != 2 or r[0] > r[1] for r in self.parameter_ranges):
                raise ValueError(f"parameter_ranges must be {p} pairs [lo, hi] with lo <= hi")
        if self.online.entries == "fe_kernel" and self.format != "calculix":
            raise ValueError("online.entries = 'fe_kernel' needs format = 'calculix' (the mesh deck and the .dof "
                             "numbering); use entries = 'interpolation'")
        if self.estimator.reference >= len(self.training):
            raise ValueError(f"estimator.reference {self.estimator.reference} is not a training index "
                             f"(0..{len(self.training) - 1})")
        return self


class SeparatedOfflineConfig(Strict):
    kind: Literal["separated"]
    separated: SeparatedSection
    output: OutputConfig = OutputConfig()
    base_dir: str = "."

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    def check_files(self) -> None:
        """Raise :class:`ConfigError` naming the first training file that does not exist."""
        s = self.separated
        for what, entries in (("training", s.training), ("validation", s.validation)):
            for j, t in enumerate(entries):
                files = [self.path(t.matrix + ext) for ext in (".sti", ".dof")] if s.format == "calculix" \
                    else [self.path(t.matrix)]
                if t.rhs is not None:
                    files.append(self.path(t.rhs))
                for f in files:
                    if not f.exists():
                        raise ConfigError(f"separated.{what}[{j}]: file {str(f)!r} not found (relative to "
                                          f"{self.base_dir})")
        if s.rhs is not None and not self.path(s.rhs).exists():
            raise ConfigError(f"separated.rhs: file {str(self.path(s.rhs))!r} not found")
        if s.online.mesh is not None and not self.path(s.online.mesh).exists():
            raise ConfigError(f"separated.online.mesh: file {str(self.path(s.online.mesh))!r} not found")
