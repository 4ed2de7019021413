"""Configuration of the offline stage (``structrom offline config.toml``).

Example::

    [snapshots]
    files = ["out/train/case_*.h5"]        # HF snapshot files (globs), relative to this file

    [pod]
    tolerance = 1e-4                       # relative energy (see structrom.rom.pod)
    method = "gram"                        # gram | tsqr | randomized

    [dual]
    quantities = ["cumulated_plastic_strain", "stress"]
    tolerance = 1e-4

    [ecm]
    tolerance = 1e-4                       # relative ||G w - G w_FE||
    max_rows = 500                         # compress the integrand rows above this count (POD of G G^T)

    [indicator]
    quantity = "cumulated_plastic_strain"
    tolerance = 0.05

    [output]
    file = "out/model.h5"

The mesh, the laws, the Dirichlet sets and the training loadings come from the snapshot files' metadata.
``kind = "separated"`` selects the separated (EIM) linear model instead: see
:mod:`structrom.rom.offline.separated_config`.
"""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from structrom.rom.config import ConfigError, load_toml, parse


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnapshotsConfig(Strict):
    files: list[str] = Field(min_length=1)


class PODConfig(Strict):
    tolerance: float = Field(1e-4, gt=0, lt=1)
    method: Literal["gram", "tsqr", "randomized"] = "gram"
    max_modes: int | None = Field(None, ge=1)


class DualConfig(Strict):
    quantities: list[Literal["cumulated_plastic_strain", "stress"]] = ["cumulated_plastic_strain"]
    tolerance: float = Field(1e-4, gt=0, lt=1)
    max_modes: int | None = Field(None, ge=1)


class ECMConfig(Strict):
    tolerance: float = Field(1e-4, gt=0, lt=1)
    #: Relative energy tolerance of the row compression; default ``tolerance / 10`` (the compressed ECM
    #: then meets ``tolerance`` on the full integrand, see structrom.rom.reduced_quadrature.compress_rows).
    row_tolerance: float | None = Field(None, gt=0, lt=1)
    #: Integrand rows (modes x snapshots) above which the rows are compressed first (POD of G G^T).
    #: Uncompressed, the selection and weights are the same for any rank count to round-off; compressed,
    #: the weights agree to about 1e-7 across rank counts.
    max_rows: int = Field(500, ge=1)
    max_points: int | None = Field(None, ge=1)


class IndicatorConfig(Strict):
    quantity: Literal["cumulated_plastic_strain", "stress"] = "cumulated_plastic_strain"
    tolerance: float = Field(0.05, gt=0)


class OutputConfig(Strict):
    file: str = "out/model.h5"


class OfflineConfig(Strict):
    kind: Literal["hyper_reduced"] = "hyper_reduced"
    snapshots: SnapshotsConfig
    pod: PODConfig = PODConfig()
    dual: DualConfig = DualConfig()
    ecm: ECMConfig = ECMConfig()
    indicator: IndicatorConfig = IndicatorConfig()
    output: OutputConfig = OutputConfig()
    base_dir: str = "."

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    def snapshot_files(self) -> list[Path]:
        files: list[Path] = []
        for pattern in self.snapshots.files:
            matches = sorted(glob.glob(str(self.path(pattern))))
            if not matches:
                raise ConfigError(f"snapshots.files: {pattern!r} matches no file (relative to {self.base_dir})")
            files += [Path(m) for m in matches]
        return files


class _Kind(BaseModel):
    """Only the model kind of an offline configuration (everything else passes through)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["hyper_reduced", "separated"] = "hyper_reduced"


def load_offline_config(path: str | Path):
    """The :class:`OfflineConfig` of a hyper-reduced model, or for ``kind = "separated"`` the
    :class:`~structrom.rom.offline.separated_config.SeparatedOfflineConfig`."""
    head = load_toml(path, _Kind)
    raw = head.model_dump()
    if head.kind == "separated":
        from .separated_config import SeparatedOfflineConfig

        scfg = parse(raw, SeparatedOfflineConfig, str(path))
        scfg.base_dir = str(Path(path).resolve().parent)
        scfg.check_files()
        return scfg
    cfg = parse(raw, OfflineConfig, str(path))
    cfg.base_dir = str(Path(path).resolve().parent)
    if cfg.indicator.quantity not in cfg.dual.quantities:
        raise ConfigError(f"{path}: indicator.quantity {cfg.indicator.quantity!r} must be one of "
                          f"dual.quantities {cfg.dual.quantities}")
    return cfg
