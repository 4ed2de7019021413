"""A reduced model against HF runs of the same loadings: errors, indicator, trust, response curves.

A validation case is a HF snapshot file (``docs/hdf5_layout.md``) computed on the model's mesh: its
metadata holds the loading, which the reduced model solves (``extrapolate=True``: validation loadings
may lie outside the training ranges; the indicator is what tells). Errors are space-time relative L2
norms over the stored increments: displacement at all nodes, cumulated plastic strain p reconstructed
(Gappy-POD) at all integration points; response curves are max von Mises stress and max p over the
integration points per increment, HF and reduced.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from structrom.rom.voigt import von_mises


@dataclass
class ValidationCase:
    """One HF run against the reduced model. Curves ``(n_inc,)`` over ``times`` (stress units of the model
    card); errors are relative (dimensionless); ``online_seconds``: one reduced solve (after a warm-up)."""

    name: str
    times: np.ndarray
    error_u: float
    error_p: float | None
    indicator: float  # max over increments
    tolerance: float
    trusted: bool
    online_seconds: float
    hf_max_von_mises: np.ndarray
    rom_max_von_mises: np.ndarray
    hf_max_p: np.ndarray | None
    rom_max_p: np.ndarray | None
    hf_seconds: float | None = None
    #: What a trusted answer of the model promises (its card's ``indicator.guarantee``).
    guarantee: str = ""

    @property
    def speedup(self) -> float | None:
        return self.hf_seconds / self.online_seconds if self.hf_seconds and self.online_seconds > 0 else None

    def row(self) -> dict:
        """JSON-ready summary (no curves)."""
        d = {k: v for k, v in asdict(self).items() if not isinstance(v, np.ndarray) and v is not None}
        d["speedup"] = self.speedup
        return d


def _relative(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref) / max(float(np.linalg.norm(ref)), 1e-300))


def validate(model_path: str | Path, hf_files: list[str | Path], hf_seconds: dict[str, float] | None = None,
             model=None) -> list[ValidationCase]:
    """Solve the loading of every HF file with the reduced model and compare (see the module docstring).

    ``hf_seconds``: HF wall times by file stem, for the speedup column. Raises
    :class:`~structrom.rom.offline.snapshots.SnapshotError` for a file of another mesh."""
    from structrom.rom import model_file
    from structrom.rom.offline.snapshots import read_training_case
    from structrom.rom.online import ReducedModel

    mesh = model_file.load(model_path, mesh=True).mesh
    model = model or ReducedModel.load(model_path)
    guarantee = str(model.card()["indicator"].get("guarantee") or "")
    cases = []
    for path in map(Path, hf_files):
        case = read_training_case(path, mesh)
        model.solve(case.loading, extrapolate=True)  # warm-up (caches, first-call overheads)
        t0 = time.perf_counter()
        res = model.solve(case.loading, extrapolate=True)
        online = time.perf_counter() - t0
        with h5py.File(path, "r") as f:
            u = f["fields/displacement"][()]
            stress = f["fields/stress"][()] if "fields/stress" in f else None
            p = f["fields/cumulated_plastic_strain"][()] if "fields/cumulated_plastic_strain" in f else None
        has_p = "cumulated_plastic_strain" in res.dual_reduced
        rom_p = res.dual_field("cumulated_plastic_strain", None) if has_p else None  # (n_inc, n_points)
        hf_vm = von_mises(stress).max(axis=1) if stress is not None else np.full(len(u), np.nan)
        cases.append(ValidationCase(
            name=path.stem, times=np.asarray(res.times, float),
            error_u=_relative(res.displacement(increment=None), u),
            error_p=_relative(rom_p, p) if rom_p is not None and p is not None else None,
            indicator=float(np.max(res.indicator)), tolerance=float(model.indicator_tolerance),
            trusted=bool(np.all(res.trusted)), online_seconds=online,
            hf_max_von_mises=hf_vm, rom_max_von_mises=np.asarray(res.max_von_mises(reconstruct="stress" in res.dual_reduced)),
            hf_max_p=p.max(axis=1) if p is not None else None,
            rom_max_p=rom_p.max(axis=1) if rom_p is not None else None,
            hf_seconds=(hf_seconds or {}).get(path.stem), guarantee=guarantee))
    return cases


def table(cases: list[ValidationCase]) -> str:
    """Markdown table: errors, indicator, trust flag, times and speedup per case; below it, what ``trusted``
    promises (the model's guarantee: a bound of the relative errors when the indicator is calibrated, a heuristic
    otherwise), so that a trusted row is read against it."""
    lines = ["| loading | u error | p error | indicator (tolerance) | trusted | HF [s] | ROM [ms] | speedup |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for c in cases:
        p = f"{c.error_p:.2e}" if c.error_p is not None else "-"
        hf = f"{c.hf_seconds:.1f}" if c.hf_seconds else "-"
        sp = f"{c.speedup:,.0f}" if c.speedup else "-"
        lines.append(f"| {c.name} | {c.error_u:.2e} | {p} | {c.indicator:.2e} ({c.tolerance:.0e}) | "
                     f"{'yes' if c.trusted else 'no'} | {hf} | {1e3 * c.online_seconds:.1f} | {sp} |")
    guarantees = sorted({c.guarantee for c in cases if c.guarantee})
    if guarantees:
        lines += [""] + [f"trusted: {g}" for g in guarantees]
    return "\n".join(lines)
