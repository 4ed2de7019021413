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
    integrand = "factored"                 # factored (from the modes' strains and the stress snapshots) | assembled
    stress_compression = true              # factored: the ECM on the leading rotated stress snapshots
    # max_rows = 500                       # assembled only: compress the integrand rows above this count
    # max_gram_rows = 8192                 # assembled only: above, a randomized range finder
    selection = "block"                    # block (up to block_size points per score product) | greedy | all
    block_size = 16
    block_correlation = 0.5                # block: a pool point joins while it correlates >= this x the first's
    screening = "float32"                  # block rule's score products: float32 (a half-size copy) | float64
    shortlist = 2048                       # block: candidates scored between full products (0: every block scores all)
    full_scores_every = 4                  # block with a shortlist: blocks per full score product

    [indicator]
    quantity = "cumulated_plastic_strain"
    tolerance = 0.05                       # trust threshold on the calibrated relative-error bounds
    validation_points = 200                # integration points kept out of the reduced set
    calibrate = true                       # leave-one-out calibration (structrom.rom.offline.calibration)
    margin = 2.0                           # safety factor of the bounds over the left-out errors
    cross_validate_cubature = true         # re-select the reduced points in each leave-one-out fold

    [output]
    file = "out/model.h5"

    [greedy]                               # optional: training loadings chosen by the error indicator
    hifi = "hifi_base.toml"                # HF configuration of the problem (mesh, materials, boundary, solver)
    solver = "inhouse"                     # inhouse | calculix
    budget = 6                             # HF solves at most
    sampling = "grid"                      # grid (points per parameter) | latin_hypercube (points in all)
    points = 4
    [greedy.parameters]                    # ranges of the loading family's parameters
    traction = [-250.0, -150.0]
    [greedy.loading]                       # the family: a loading whose "$name" strings are parameters
    times = [0.0, 1.0, 2.0]
    pressure = { right = [[0.0, 0.0], [1.0, "$traction"], [2.0, 0.0]] }

A keyword given for a mode that does not read it is refused (``max_rows`` with ``integrand = "factored"``,
``block_size`` with ``selection = "greedy"``, anything but ``selection`` with ``selection = "all"``, ``margin``
with ``calibrate = false``...): :mod:`structrom.rom.offline.unread_keywords`.

The mesh, the laws, the Dirichlet sets and the training loadings come from the snapshot files' metadata.
``kind = "separated"`` selects the separated (EIM) linear model instead: see
:mod:`structrom.rom.offline.separated_config`.
"""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from structrom.rom.config import ConfigError, load_toml, parse
from structrom.rom.offline.unread_keywords import check_offline_keywords


class Strict(BaseModel):
    # unknown keys refused; nan and inf refused in every number (an infinite indicator.tolerance trusted any answer)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SnapshotsConfig(Strict):
    files: list[str] = Field(min_length=1)


class PODConfig(Strict):
    tolerance: float = Field(1e-4, gt=0, lt=1)
    method: Literal["gram", "tsqr", "randomized"] = "gram"
    max_modes: int | None = Field(None, ge=1)


class DualConfig(Strict):
    quantities: list[Literal["cumulated_plastic_strain", "stress", "back_stress"]] = ["cumulated_plastic_strain"]
    tolerance: float = Field(1e-4, gt=0, lt=1)
    max_modes: int | None = Field(None, ge=1)


class ECMConfig(Strict):
    tolerance: float = Field(1e-4, gt=0, lt=1)
    #: Form of the integrand eps(psi_i) : sigma_s (structrom.rom.integrand): "factored" (the default) works on
    #: the modes' strains and the stress snapshots themselves, with no integrand matrix and no row compression
    #: (memory: the snapshots the stage holds anyway; a score product is one GEMM per block of points);
    #: "assembled" builds the N n_s x points matrix, row-compressed above max_rows (row_tolerance,
    #: max_gram_rows apply to it only). docs/benchmarks.md, "Offline stage: the factored integrand".
    integrand: Literal["factored", "assembled"] = "factored"
    #: Factored integrand: the ECM runs on the leading rotated stress snapshots (relative energy of the discarded
    #: rows <= row_tolerance, structrom.rom.stress_compression); the rule is then checked on all rows and the
    #: ECM continued on them when it misses the tolerance there. False: on all stress snapshots.
    stress_compression: bool = True
    #: Relative energy tolerance of the row compression (assembled) or of the stress compression (factored);
    #: default ``tolerance / 10`` (see structrom.rom.reduced_quadrature.compress_rows).
    row_tolerance: float | None = Field(None, gt=0, lt=1)
    #: Integrand rows (modes x snapshots) above which the rows are compressed first (POD of G G^T).
    #: Uncompressed, the selection and weights are the same for any rank count to round-off; compressed,
    #: the weights agree to about 1e-7 across rank counts. The compression (Gram n_points R^2 plus the
    #: projection n_points R r) costs more than the block ECM saves on its score products when the rank r is
    #: not much below R (35k-dof plate: 1976 -> 1462 rows, 18 s of compression against an 18 s block ECM, see
    #: docs/benchmarks.md): with selection = "block", set max_rows = 8192 (only integrands above 8,192 rows
    #: compressed, randomized, see max_gram_rows; the uncompressed integrand is R x points doubles per rank).
    max_rows: int = Field(500, ge=1)
    #: Integrand rows up to which the compression diagonalizes the Allreduced G G^T on every rank (two
    #: rows^2 arrays per rank); above, a randomized range finder (structrom.rom.row_sketch) with no such array.
    max_gram_rows: int = Field(8192, ge=1)
    max_points: int | None = Field(None, ge=1)
    #: Selection rule (structrom.rom.reduced_quadrature.empirical_cubature): "block" (the default) up to
    #: ``block_size`` points per product G^T r (each the best of a pool of candidates against the updated
    #: residual): 5-6x faster ECM loop on the 35k-dof plate with the same accuracy (docs/benchmarks.md, "Offline
    #: stage: ECM selection rules"); "greedy" one point per product (Hernandez et al. 2017), the rule before.
    #: Both are rank-count independent when the integrand is (the lifting fields are solved to round-off for
    #: that: with fields at the Krylov tolerance, points equal by symmetry were ordered differently by the two
    #: partitions' round-off, tests/test_lifting.py).
    #: "all": no hyper-reduction, every integration point with its FE weight (the Galerkin ROM with the FE
    #: quadrature: a diagnostic that tells the cubature's share of the test errors from the projection's; every rank
    #: then holds the list of all points, and the model file the integrator at all of them).
    selection: Literal["block", "greedy", "all"] = "block"
    block_size: int = Field(16, ge=1)
    #: Block rule: the pool's next best joins the block while its normalized correlation with the updated residual
    #: is at least this fraction of the first point's. 32 points at 0.3 need half the score products on the
    #: 117k-dof plate, for test errors in u 10-25 % higher (docs/benchmarks.md, "Offline stage: rotated stress
    #: snapshots").
    block_correlation: float = Field(0.5, gt=0, le=1)
    #: Precision of the block rule's score products: "float32" (a single-precision copy of the integrand, half
    #: its memory, for half the memory traffic per product; the candidates are rescored exactly) or "float64".
    screening: Literal["float32", "float64"] = "float32"
    #: Block rule: after a full score product, the next ``full_scores_every - 1`` blocks score only the
    #: ``shortlist`` best candidates of that product (0: every block scores all candidates). The shortlist is cut
    #: on exact scores (the candidates near the cut of the single-precision product are rescored in double
    #: precision), so that it does not depend on the rank count. 2048 / 4 on the 117k-dof plate: a quarter of the
    #: full products, the ECM loop 1.25x shorter on 2 ranks, test errors within the spread of the selection's
    #: round-off (docs/benchmarks.md, "Offline stage: the shortlist and the block projection").
    shortlist: int = Field(2048, ge=0)
    full_scores_every: int = Field(4, ge=1)
    #: Points that leave the rule when the least squares gives some a non-positive weight: "nonpositive" (all of
    #: them, Hernandez et al. 2017) or "lawson_hanson" (only those that reach zero first on the way from the
    #: previous weights, the NNLS of Lawson and Hanson; the others stay). Fewer selections on smooth integrands, but
    #: 1.4x slower on the 117k-dof plate, where as many points leave, one per least squares (docs/benchmarks.md,
    #: "Offline stage: Lawson-Hanson removals against the paper's").
    removal: Literal["nonpositive", "lawson_hanson"] = "nonpositive"
    #: Block rule: which of the pool's candidates that still correlate well enough joins the block next:
    #: "correlation" (the most correlated) or "decrease" (the one whose join decreases the residual most: its
    #: correlation over the norm of its part orthogonal to the selected points, as in orthogonal least squares).
    #: "decrease" picks better-conditioned points: on the 47k- and 117k-dof plates a quarter fewer removals, 4-5 %
    #: fewer points and a 1.2-1.3x shorter ECM loop, but a 1.6-1.8x larger u error on the held-out loading of largest
    #: error (docs/benchmarks.md, "Offline stage: the block's points by residual decrease").
    block_choice: Literal["correlation", "decrease"] = "correlation"

    def selection_keywords(self) -> dict:
        """The selection rule's keywords of :func:`structrom.rom.reduced_quadrature.empirical_cubature`."""
        return {"selection": self.selection, "block_size": self.block_size, "block_correlation": self.block_correlation,
                "screening": self.screening, "shortlist": self.shortlist, "full_scores_every": self.full_scores_every,
                "removal": self.removal, "block_choice": self.block_choice}


class IndicatorConfig(Strict):
    quantity: Literal["cumulated_plastic_strain", "stress"] = "cumulated_plastic_strain"
    #: Trust threshold on the calibrated bounds of the relative errors (uncalibrated: on the Gappy residual).
    tolerance: float = Field(0.05, gt=0)
    #: Integration points kept out of the reduced set for the indicator (0: none).
    validation_points: int = Field(200, ge=0)
    #: Leave-one-out calibration of the indicator (structrom.rom.offline.calibration; needs >= 2 cases).
    calibrate: bool = True
    #: Safety factor of the calibrated bounds over the left-out errors.
    margin: float = Field(2.0, ge=1.0)
    #: Re-select the reduced points (ECM + dual Q-DEIM) in every leave-one-out fold, so that the calibration
    #: sees the hyper-reduction error of loadings the cubature was not trained on.
    cross_validate_cubature: bool = True


class GreedyConfig(Strict):
    """Greedy training (:mod:`structrom.rom.offline.greedy`): after the model of ``snapshots`` is built,
    candidates of the declared family are screened online and the one of largest indicator gets the next
    HF solve and an enrichment, until every candidate is below the indicator tolerance or ``budget``."""

    hifi: str
    solver: Literal["inhouse", "calculix"] = "inhouse"
    budget: int = Field(8, ge=1)
    sampling: Literal["grid", "latin_hypercube"] = "grid"
    points: int = Field(4, ge=1)
    seed: int = 0
    parameters: dict[str, tuple[float, float]] = Field(min_length=1)
    loading: dict

    @model_validator(mode="after")
    def _check(self) -> "GreedyConfig":
        for name, (lo, hi) in self.parameters.items():
            if not lo <= hi:
                raise ValueError(f"greedy.parameters.{name}: range [{lo}, {hi}] must have lo <= hi")
        used: set[str] = set()

        def walk(v) -> None:
            if isinstance(v, str) and v.startswith("$"):
                used.add(v[1:])
            elif isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(self.loading)
        if used - set(self.parameters):
            raise ValueError(f"greedy.loading uses {sorted('$' + u for u in used - set(self.parameters))} that "
                             f"greedy.parameters does not declare (it declares {sorted(self.parameters)})")
        if set(self.parameters) - used:
            raise ValueError(f"greedy.parameters {sorted(set(self.parameters) - used)} are not used in greedy.loading "
                             "(write them as \"$name\" strings in the loading)")
        return self


class OutputConfig(Strict):
    file: str = "out/model.h5"
    #: Write the model's plots (POD decay, reduced points; PNG and SVG) to ``<file stem>_plots/`` beside it.
    plots: bool = True


class OfflineConfig(Strict):
    kind: Literal["hyper_reduced"] = "hyper_reduced"
    snapshots: SnapshotsConfig
    pod: PODConfig = PODConfig()
    dual: DualConfig = DualConfig()
    ecm: ECMConfig = ECMConfig()
    indicator: IndicatorConfig = IndicatorConfig()
    output: OutputConfig = OutputConfig()
    greedy: GreedyConfig | None = None
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
    kind: Literal["hyper_reduced", "separated", "dictionary"] = "hyper_reduced"


def load_offline_config(path: str | Path):
    """The :class:`OfflineConfig` of a hyper-reduced model, for ``kind = "separated"`` the
    :class:`~structrom.rom.offline.separated_config.SeparatedOfflineConfig`, for ``kind = "dictionary"`` the
    :class:`~structrom.rom.offline.dictionary.DictionaryConfig` (the offline configuration plus ``[dictionary]``).
    A keyword given for a mode that does not read it (``[ecm] block_size`` with ``selection = "greedy"``...) is
    refused: :func:`~structrom.rom.offline.unread_keywords.check_offline_keywords`."""
    head = load_toml(path, _Kind)
    raw = head.model_dump()
    if head.kind == "dictionary":
        from .dictionary import load_dictionary_config

        return load_dictionary_config(path)
    if head.kind == "separated":
        from .separated_config import SeparatedOfflineConfig

        scfg = parse(raw, SeparatedOfflineConfig, str(path))
        check_offline_keywords(scfg, str(path))
        scfg.base_dir = str(Path(path).resolve().parent)
        scfg.check_files()
        return scfg
    cfg = parse(raw, OfflineConfig, str(path))
    check_offline_keywords(cfg, str(path))
    cfg.base_dir = str(Path(path).resolve().parent)
    if cfg.indicator.quantity not in cfg.dual.quantities:
        raise ConfigError(f"{path}: indicator.quantity {cfg.indicator.quantity!r} must be one of "
                          f"dual.quantities {cfg.dual.quantities}")
    if cfg.greedy is not None:  # read now, not after the offline stage that precedes the greedy rounds
        from structrom.rom.hifi.config import load_config

        load_config(cfg.path(cfg.greedy.hifi))
    return cfg
