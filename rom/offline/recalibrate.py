"""Recalibration of the error indicator after enrichment has grown the training set of a model.

Called by :func:`structrom.rom.offline.update.update_model` (enrichment and greedy training) once the
new model is assembled. Two parts:

* the Gappy reference norm (:func:`recalibrate_indicator`): the largest training norm of the indicator
  quantity at the reduced points; the old training snapshots are not re-read, so the new reference is
  the larger of the old one and the new snapshots' largest norm at the new reduced points (the new
  point set contains the old one, so the old snapshots' norms there are at least the old reference);
* the calibrated bounds (:func:`held_out_cases`, :func:`carry_calibration`), without re-reading the old
  snapshots. The leave-one-out calibration (:mod:`structrom.rom.offline.calibration`) stores its samples
  (per increment of every left-out case: the indicator components and the true errors of the model
  built without that case). Enrichment adds, for every new loading, the samples of the model *before*
  enrichment against the new HF snapshots: that model never saw the loading, so these are held-out samples
  of exactly the kind leave-one-out produces (a model trained without the case, then asked it). The
  factors are refitted on the old and the new samples (the same linear program), with the old error floors
  and the component scales carried to the grown point sets (:func:`rescaled_references`), so the bound
  again holds with the margin on every calibration sample, including the loadings that made the model
  enrich.

What this does not redo: the folds of the old cases are not rebuilt with the new snapshots (that needs
every snapshot); their samples are those of models trained on fewer loadings than the enriched one, so
they describe larger errors for the same family (conservative for the old cases as long as errors decrease
as training grows, which POD and cubature errors do on nested training sets; not a theorem). Files whose
calibration has no stored samples (written before the samples were kept) get the old factors scaled up
until the new samples are covered with the margin.
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from structrom.rom.model_file import ReducedModelData
from structrom.rom.online.envelope import loading_parameters
from structrom.rom.online.indicator import QUANTITIES, Calibration

from .calibration_samples import case_record, fit_calibration, held_out_errors, reduced_answer


def recalibrate_indicator(data: ReducedModelData, new_values: np.ndarray) -> dict:
    """Update ``data``'s Gappy reference norm in place from the new training snapshots.

    ``new_values``: ``(n_snapshots, n_rp * c)`` the indicator quantity of the new snapshots at the
    model's reduced points (point-major, ``c`` components). Returns what changed (for the provenance)."""
    v = np.asarray(new_values, dtype=float).reshape(len(new_values), -1)
    old = float(data.indicator_reference)
    new = float(np.linalg.norm(v, axis=1).max(initial=0.0))
    data.indicator_reference = max(old, new)
    return {"reference": data.indicator_reference, "previous_reference": old}


def held_out_cases(comm: MPI.Comm, old: ReducedModelData, cases: list, modes_rows: np.ndarray,
                   dual_modes: dict[str, np.ndarray], snapshots: np.ndarray, mass, point_weights: np.ndarray,
                   new_values: dict[str, np.ndarray], log=lambda *a: None,
                   lift_rows: np.ndarray | None = None, n_mesh_nodes: int | None = None) -> list[dict]:
    """Calibration samples (:func:`~structrom.rom.offline.calibration.case_record`) of the new ``cases``
    under the model ``old`` (the version before enrichment; the same on every rank), collective.

    ``modes_rows`` ``(n_rows_local, N)`` and ``dual_modes`` quantity -> ``(n_loc * c, m)``: ``old``'s bases
    at this rank's dofs / points; ``snapshots`` ``(n_rows_local, n_snap)``: the new HF displacements (the
    cases' increments one after the other); ``new_values`` quantity -> ``(n_loc * c, n_snap)``: the laws
    replayed on them; ``lift_rows`` ``(n_rows_local, n_G)``: the unit fields of the prescribed displacements at
    this rank's dofs (None without them), so that the reduced displacement is ``Phi q + G b`` with the
    amplitudes ``b`` of the online solve, against the total snapshots, as the leave-one-out calibration measures
    it; ``n_mesh_nodes``: the mesh's node count (nodal temperatures given on every mesh node are read at the
    model's temperature nodes). A case the old model cannot solve online gives no samples (logged)."""
    refs = old.calibration.references
    duals = list(old.duals)
    out, start = [], 0
    for case in cases:
        cols = slice(start, start + len(case.times))
        start += len(case.times)
        answer = reduced_answer(old, case.loading, duals, lifting=lift_rows is not None,
                                n_mesh_nodes=n_mesh_nodes) if comm.Get_rank() == 0 else None
        answer = comm.bcast(answer, root=0)
        if isinstance(answer, str):
            log(f"recalibration: {case.path.stem}: the model before enrichment cannot solve it ({answer}); no "
                "calibration samples from it")
            continue
        q, betas, table = answer[:3]
        values = {k: (new_values[k][:, cols], old.duals[k].components) for k in duals}
        e = held_out_errors(comm, modes_rows, q, snapshots[:, cols], mass, dual_modes, betas, values, point_weights,
                            refs, lifting=None if lift_rows is None else (lift_rows, answer[3]))
        rec = case_record(case.path.stem, table, {qn: e.get(qn, np.zeros(len(table))) for qn in QUANTITIES})
        rec["held_out_by"] = f"version {old.version}"
        out.append(rec)
    return out


def rescaled_references(references: dict[str, float], old: ReducedModelData, new: ReducedModelData) -> dict:
    """The component scales of the enriched model ``new`` (:class:`~structrom.rom.online.indicator.Calibration`
    ``references``): the largest training norms of each dual quantity at the reduced points (and at the
    validation points, ``<q>_validation``) change with the point sets and the training set. The old
    snapshots are not re-read: each scale is multiplied by the ratio of the spectral norms of the Gappy
    representation of the training set there, ``||Psi_P diag(sigma)||_2`` (``S ~= Psi diag(sigma) V^T``, so
    every snapshot's norm at the points P is at most that, and the largest is close to it), new over old.
    Error floors (whole-domain norms) are kept: the calibration samples were measured with them."""
    out = dict(references)

    def spectral(rows, sv) -> float:
        rows = np.asarray(rows, float)
        return float(np.linalg.norm(rows * np.asarray(sv)[None, :], 2)) if rows.size and len(sv) else 0.0

    for name, basis in new.duals.items():
        if name not in old.duals:
            continue
        pairs = [(name, old.duals[name].reduced_basis, basis.reduced_basis)]
        if old.validation is not None and new.validation is not None and name in old.validation.duals \
                and name in new.validation.duals:
            pairs.append((f"{name}_validation", old.validation.duals[name], new.validation.duals[name]))
        for key, rows_old, rows_new in pairs:
            a = spectral(rows_old, old.duals[name].singular_values)
            b = spectral(rows_new, basis.singular_values)
            if key in out and a > 0 and b > 0:
                out[key] = float(out[key]) * b / a
    return out


def carry_calibration(old: Calibration, new_cases: list[dict], new_loadings: list, schema: dict,
                      version: int, references: dict[str, float] | None = None) -> Calibration:
    """The calibration of the enriched model: ``old`` refitted on its stored samples plus ``new_cases``
    (:func:`held_out_cases`), or, without stored samples, ``old``'s factors scaled to cover the new ones
    with the margin. ``new_loadings``: the new cases' loadings (their parameters join the training set of
    the ``loading_envelope`` component, with the old scales); ``schema``: the enriched model's loading
    schema; ``version``: the enriched model's version; ``references``: its component scales
    (:func:`rescaled_references`; default: the old ones)."""
    refs = dict(old.references if references is None else references)
    training = list(old.training) + [loading_parameters(ld, schema) for ld in new_loadings]
    note = (f" Version {version}: refitted by enrichment on the stored leave-one-out samples of the earlier "
            "training cases and, for every loading enrichment added, its samples under the version before (a "
            "model that never saw it); the folds of the earlier cases were not rebuilt with the new snapshots.")
    statement = old.statement.split(" Version ")[0] + note
    if all("samples" in c for c in old.cases):
        return fit_calibration([dict(c) for c in old.cases] + new_cases, refs, old.margin,
                               old.tolerance, training=training, scales=old.scales, statement=statement)
    scale = 1.0
    for c in new_cases:
        b = old.bounds(np.asarray(c["samples"]["components"], float))
        for i, qn in enumerate(old.quantities):
            e = old.margin * np.asarray(c["samples"]["errors"][qn], float)
            need = np.divide(e, b[:, i], out=np.full(len(e), np.inf), where=b[:, i] > 0)
            scale = max(scale, float(np.max(np.where(e > 0, need, 1.0), initial=1.0)))
    if not np.isfinite(scale):
        scale = 1e6  # a new sample with a zero bound: the bounds lose their meaning, flag everything
    cal = Calibration(old.factors * scale, refs, old.margin, old.tolerance,
                      list(old.cases) + new_cases, training=training, scales=old.scales,
                      statement=statement + f" (No stored samples: the earlier factors were scaled by {scale:.3g}.)")
    for c in new_cases:
        b = cal.bounds(np.asarray(c["samples"]["components"], float))
        c["bounds"] = {qn: float(b[:, i].max()) for i, qn in enumerate(cal.quantities)}
    return cal
