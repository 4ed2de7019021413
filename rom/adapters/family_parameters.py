"""The parameters of an imported family of runs (``family.json``): the columns of a user's CSV, or the inputs that
differ between the runs' decks (:func:`family_parameters`)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .calculix_error import CalculixError
from .calculix_import_runs import ImportedRun

__all__ = ["family_parameters"]


def family_parameters(runs: list[ImportedRun], per_run: list[dict], csv_path: Path | None,
                      per_run_bc: list[list[dict]] | None = None) -> dict:
    """Parameter values per run: the CSV's columns (first column: the run name), or the inputs that
    differ between runs (peak pressure per surface, min/max temperature, min/max value of each prescribed
    set's displacement, peak omega, gravity, end time)."""
    if csv_path is not None:
        try:
            with open(csv_path, newline="") as f:
                rows = list(csv.reader(f))
        except OSError as exc:
            raise CalculixError(f"cannot read parameters {str(csv_path)!r}: {exc}") from None
        if len(rows) < 2 or len(rows[0]) < 2:
            raise CalculixError(f"{csv_path}: expected a header 'run,<parameter>,...' and one line per run")
        header = [h.strip() for h in rows[0]]
        values = {}
        for number, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise CalculixError(f"{csv_path}:{number}: {len(row)} columns, the header has {len(header)}")
            try:
                values[row[0].strip()] = {h: float(v) for h, v in zip(header[1:], row[1:])}
            except ValueError:
                raise CalculixError(f"{csv_path}:{number}: parameter values must be numbers, got {row[1:]}") from None
        missing = [r.name for r in runs if r.name not in values]
        if missing:
            raise CalculixError(f"{csv_path}: no line for run(s) {missing} (first column: the run name = deck file stem)")
        return {"source": str(csv_path), "values": {r.name: values[r.name] for r in runs}}
    per: list[dict[str, float]] = []
    for d, r, bcs in zip(per_run, runs, per_run_bc or [[] for _ in runs]):
        c: dict[str, float] = {}
        for s, table in d.get("pressure", {}).items():
            v = np.asarray(table)[:, 1]
            c[f"pressure.{s}"] = float(v[np.argmax(np.abs(v))])
        for s, table in d.get("force", {}).items():  # peak of each component (sign kept) and of the magnitude
            v = np.asarray(table)[:, 1:]
            c.update({f"force.{s}.{x}": float(v[np.argmax(np.abs(v[:, k])), k]) for k, x in enumerate("xyz")})
            c[f"force.{s}.magnitude"] = float(np.linalg.norm(v, axis=1).max())
        for bc in bcs:  # the extremes of each prescribed displacement (both: a cycle has a range and a ratio)
            v = np.asarray(bc["amplitude"])[:, 1] * bc["value"]
            c[f"displacement.{bc['node_set']}.min"], c[f"displacement.{bc['node_set']}.max"] = float(v.min()), float(v.max())
        temp = d["temperature_values"]
        c["temperature.min"], c["temperature.max"] = float(temp.min()), float(temp.max())
        if "centrifugal" in d:
            c["centrifugal.omega"] = float(np.abs(np.asarray(d["centrifugal"]["omega"])[:, 1]).max())
        c["times.end"] = float(r.times[-1])
        per.append(c)
    # a load absent from a run is 0 there (a set loaded in some runs only)
    cand = {k: [c.get(k, 0.0) for c in per] for k in sorted(set().union(*per))}
    varying = {k: v for k, v in cand.items() if (max(v) - min(v)) > 1e-12 * max(1.0, abs(max(v)))}
    return {"source": "detected (inputs that differ between the runs' decks)",
            "values": {r.name: {k: v[i] for k, v in varying.items()} for i, r in enumerate(runs)}}
