"""Reports of a reduced model: plots (:mod:`.plots`) and comparisons with HF runs (:mod:`.validation`).

:func:`write_model_plots` (called by the offline stage) writes what the model file alone tells: POD decay
and reduced points; :func:`write_report` (``structrom report``) adds, given HF snapshot files of
validation loadings, the indicator against the true error and the response curves, plus a table.
"""
from __future__ import annotations

import json
from pathlib import Path

from .validation import ValidationCase, table, validate

__all__ = ["model_figures", "write_model_plots", "write_report", "validate", "table", "ValidationCase"]


def model_figures(model_path: str | Path) -> dict:
    """``{"pod_decay": Figure, "reduced_points": Figure}`` of a model file."""
    from structrom.rom import model_file

    from . import plots

    data = model_file.load(model_path, mesh=True)
    prov = data.provenance if isinstance(data.provenance, dict) else {}
    pod = prov.get("pod", {}) if isinstance(prov.get("pod"), dict) else {}
    tol = (prov.get("config") or {}).get("pod", {}).get("tolerance") if isinstance(prov.get("config"), dict) else None
    # all singular values when the offline stage stored them, else the kept ones only
    sv = pod.get("singular_values_all") or data.singular_values
    return {"pod_decay": plots.pod_decay(sv, data.n_modes, tol),
            "reduced_points": plots.reduced_points(data.mesh.points, data.coordinates, data.weights,
                                                   str((data.units or {}).get("length", "")))}


def write_model_plots(model_path: str | Path, out_dir: str | Path) -> list[Path]:
    """POD decay and reduced points of a model file as PNG and SVG in ``out_dir``; returns the paths."""
    from . import plots

    written: list[Path] = []
    for name, fig in model_figures(model_path).items():
        written += plots.save(fig, out_dir, name)
    return written


def write_report(model_path: str | Path, out_dir: str | Path, validation: list[str | Path] | None = None,
                 hf_seconds: dict[str, float] | None = None) -> tuple[list[Path], list[ValidationCase]]:
    """The model's plots and, with ``validation`` HF snapshot files, ``indicator_vs_error``,
    ``response_curves`` (PNG, SVG), ``validation.md`` and ``validation.json`` in ``out_dir``."""
    from structrom.rom import model_file

    from . import plots

    out_dir = Path(out_dir)
    written = write_model_plots(model_path, out_dir)
    cases: list[ValidationCase] = []
    if validation:
        data = model_file.load(model_path)
        cases = validate(model_path, list(validation), hf_seconds)
        units = data.units or {}
        written += plots.save(plots.indicator_vs_error(cases, data.indicator_tolerance), out_dir, "indicator_vs_error")
        written += plots.save(plots.response_curves(cases, str(units.get("stress", "")), str(units.get("time", "s"))),
                              out_dir, "response_curves")
        (out_dir / "validation.md").write_text(table(cases) + "\n")
        (out_dir / "validation.json").write_text(json.dumps([c.row() for c in cases], indent=1))
        written += [out_dir / "validation.md", out_dir / "validation.json"]
    return written, cases
