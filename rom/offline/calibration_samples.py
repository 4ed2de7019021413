"""Calibration samples and the fit of the indicator's factors (no MPI except :func:`held_out_errors`).

A *sample* is one increment of an answer the model did not train on (a left-out training case, or a loading
that enrichment adds, solved by the version before): the indicator components of that answer and its true
relative errors against the HF snapshots. :func:`case_record` keeps a case's samples in the model file;
:func:`fit_calibration` fits each quantity's factors (:func:`fit_factors`, a linear program) so that the bound
is at least margin x the true error on every sample. Used by the leave-one-out calibration
(:mod:`structrom.rom.offline.calibration`) and by enrichment (:mod:`structrom.rom.offline.recalibrate`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from scipy.optimize import linprog

from structrom.rom import model_file
from structrom.rom.online.indicator import COMPONENTS, GUARANTEE, QUANTITIES, Calibration
from structrom.mpi.errors import StructromError

#: Components are clipped to this value in the fit (an infinite component means "do not trust").
COMPONENT_CAP = 1e6
#: Components reported but kept out of the fitted bounds (none). The step-doubling estimate (``time_step``)
#: measures the constitutive time-integration error along the reduced solution, which the HF snapshots share,
#: so it is no term of the error against them; it enters the fit as a measure of the inelastic flow of each
#: step (zero where nothing flows, growing with the flow rate and its change over the step: creep holds, hot
#: regions), along which the reduced model's state and reconstruction errors accumulate. The fit gives it a
#: factor only where the left-out cases show that relation (leave-one-out on the creep bar: Spearman of the
#: indicator and the true errors of unseen holds 0.75 without it, 0.83 with it; docs/rom_accuracy.md).
NOT_IN_BOUND: tuple[str, ...] = ()


class CalibrationError(StructromError, RuntimeError):
    """The indicator cannot be calibrated (e.g. fewer than 2 training cases, or an infeasible fit)."""


def relative_errors(diff_norms: np.ndarray, hf_norms: np.ndarray, floor: float) -> np.ndarray:
    """``(n_inc,)`` relative errors ``||Q_rom(t_i) - Q_hf(t_i)|| / max(max_j ||Q_hf(t_j)||, floor)``: the
    error at each increment relative to the largest value of the whole answer (or the floor)."""
    hf = np.asarray(hf_norms, float)
    den = np.full(len(hf), max(float(hf.max(initial=0.0)), floor))
    return np.divide(diff_norms, den, out=np.zeros(len(den)), where=den > 0)


def true_errors(result, u_hf: np.ndarray, stress_hf: np.ndarray, p_hf: np.ndarray, mass: sp.spmatrix,
                point_weights: np.ndarray, floors: dict[str, float]) -> dict[str, np.ndarray]:
    """Per-increment relative errors of an online ``result`` against HF fields on one process
    (``u_hf`` ``(n_inc, n_dofs)``, ``stress_hf`` ``(n_inc, n_points, 6)``, ``p_hf`` ``(n_inc, n_points)``),
    with the norms of :func:`calibrate_indicator` (mass norm for displacements, point-weighted L2 for
    the Gappy-reconstructed stress and p). ``floors``: ``Calibration.references`` (``floor_*`` entries)."""
    n = result.n_increments
    u = result.displacement(increment=None).reshape(n, -1)
    du, hu = u - u_hf.reshape(n, -1), u_hf.reshape(n, -1)
    mnorm = lambda X: np.sqrt(np.einsum("ij,ij->i", X, (mass @ X.T).T))  # noqa: E731
    out = {"displacement": relative_errors(mnorm(du), mnorm(hu), floors.get("floor_displacement", 0.0))}
    w = np.asarray(point_weights)
    for name, hf, comps in (("stress", stress_hf, 6), ("cumulated_plastic_strain", p_hf, 1)):
        rec = result.dual_field(name, None).reshape(n, -1)
        wc = np.repeat(w, comps)
        d, h = rec - hf.reshape(n, -1), hf.reshape(n, -1)
        out[name] = relative_errors(np.sqrt((d * d) @ wc), np.sqrt((h * h) @ wc), floors.get(f"floor_{name}", 0.0))
    return out


def reduced_answer(data: model_file.ReducedModelData, loading, duals: list[str], *, lifting: bool = False,
                   n_mesh_nodes: int | None = None):
    """Online solve of ``loading`` by the model ``data`` (one process): ``(q (n_inc, N), Gappy coefficients
    quantity -> (m, n_inc), components (n_inc, n_components))``, with ``lifting`` also the prescribed-displacement
    amplitudes ``b`` ``(n_inc, n_G)`` the solve used (:mod:`structrom.rom.lifting`), or the failure message (str).
    ``n_mesh_nodes``: the mesh's node count, so that a training loading's nodal temperatures given on every mesh
    node (an imported CalculiX run's) are read at the model's temperature nodes."""
    from structrom.rom.online import OnlineSolverError, ReducedModel

    try:
        res = ReducedModel(data, n_mesh_nodes=n_mesh_nodes).solve(loading, extrapolate=True)
    except OnlineSolverError as exc:
        return str(exc)
    table = np.column_stack([res.indicator_components[c] for c in COMPONENTS])
    betas = {name: res.model.gappy[name].coefficients(res.dual_reduced[name].reshape(res.n_increments, -1).T)
             for name in duals}
    if lifting:
        return res.coordinates, betas, table, res.lift
    return res.coordinates, betas, table


def held_out_errors(comm: MPI.Comm, modes_rows: np.ndarray, q: np.ndarray, snapshots: np.ndarray,
                    mass: sp.spmatrix, dual_modes: dict[str, np.ndarray], betas: dict[str, np.ndarray],
                    dual_values: dict[str, tuple[np.ndarray, int]], point_weights: np.ndarray,
                    references: dict[str, float], lifting: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> dict[str, np.ndarray]:
    """Per-increment relative errors (:func:`relative_errors`) of a reduced answer against its HF snapshots,
    distributed over ``comm`` (collective): ``modes_rows`` ``(n_rows_local, N)`` the model's modes at this
    rank's dofs, ``q`` ``(n_inc, N)`` the reduced coordinates, ``snapshots`` ``(n_rows_local, n_inc)`` HF
    displacements, ``mass`` their element-assembled mass (mass norm); ``dual_modes`` quantity -> ``(n_loc * c,
    m)`` local Gappy bases, ``betas`` quantity -> ``(m, n_inc)`` the answer's Gappy coefficients,
    ``dual_values`` quantity -> ``((n_loc * c, n_inc), c)`` the laws replayed on the HF snapshots
    (point-weighted L2); floors from ``references``; ``lifting``: ``(G (n_rows_local, n_G), b (n_inc, n_G))``, the
    unit fields at this rank's dofs and the answer's amplitudes, so that the reduced displacement compared with the
    (total) snapshots is ``Phi q + G b`` (:mod:`structrom.rom.lifting`). Returns quantity -> ``(n_inc,)``."""
    du = modes_rows @ q.T - snapshots
    if lifting is not None:
        du += lifting[0] @ np.asarray(lifting[1], float).T
    rows = [np.stack([np.einsum("ij,ij->j", du, mass @ du), np.einsum("ij,ij->j", snapshots, mass @ snapshots)])]
    for name, (values, c) in dual_values.items():
        w = np.repeat(point_weights, c)
        d = dual_modes[name] @ betas[name] - values
        rows.append(np.stack([w @ (d * d), w @ (values * values)]))
    norms = np.sqrt(np.maximum(comm.allreduce(np.stack(rows)), 0.0))  # (1 + n_duals, 2, n_inc)
    e = {"displacement": relative_errors(norms[0, 0], norms[0, 1], references.get("floor_displacement", 0.0))}
    for j, name in enumerate(dual_values, start=1):
        e[name] = relative_errors(norms[j, 0], norms[j, 1], references.get(f"floor_{name}", 0.0))
    return e


def fit_factors(samples: np.ndarray, errors: np.ndarray, margin: float, tolerance: float,
                allowed: np.ndarray | None = None) -> np.ndarray:
    """Non-negative factors ``(1 + n_components,)`` (constant first) of one quantity's bound.

    ``samples``: ``(n_s, n_components)`` running-max components; ``errors``: ``(n_s,)`` true errors.
    ``allowed``: ``(n_components,)`` bool, the components that may enter (others get factor 0).
    Solves the linear program of the module docstring (HiGHS); raises :class:`CalibrationError` if
    it fails."""
    A = np.hstack([np.ones((len(samples), 1)), np.minimum(np.asarray(samples, float), COMPONENT_CAP)])
    target = margin * np.asarray(errors, float)
    weight = 1.0 / np.maximum(target, 0.1 * tolerance)
    free = np.ones(A.shape[1], bool) if allowed is None else np.concatenate([[True], np.asarray(allowed, bool)])
    bounds = [(0, None) if f else (0, 0) for f in free]
    res = linprog(c=weight @ A, A_ub=-A, b_ub=-target, bounds=bounds, method="highs")
    if res.status != 0:
        raise CalibrationError(f"the calibration linear program failed: {res.message}")
    return np.maximum(res.x, 0.0)


def case_record(name: str, table: np.ndarray, errors: dict[str, np.ndarray]) -> dict:
    """One calibration case: its largest true errors and components, and its samples per increment (the
    raw components ``table`` ``(n_inc, n_components)`` and the true errors quantity -> ``(n_inc,)``), kept in
    the model file so that the fit can be redone when cases are added (:mod:`structrom.rom.offline.recalibrate`)."""
    return {"case": name, "errors": {qn: float(np.max(v, initial=0.0)) for qn, v in errors.items()},
            "components": {c: float(v) for c, v in zip(COMPONENTS, np.max(table, axis=0))},
            "samples": {"components": np.minimum(table, COMPONENT_CAP).tolist(),
                        "errors": {qn: np.asarray(v, float).tolist() for qn, v in errors.items()}}}


def _components(case: dict) -> np.ndarray:
    """``(n_inc, len(COMPONENTS))`` a case's stored raw components; samples stored before a component was
    added (files of earlier versions, in the order of :data:`COMPONENTS`, which only grows at its end) get 0
    for it: they do not inform its factor, and the other components must still cover them."""
    table = np.asarray(case["samples"]["components"], float).reshape(len(case["samples"]["components"]), -1)
    if table.shape[1] > len(COMPONENTS):
        raise CalibrationError(f"calibration case {case.get('case')!r} has {table.shape[1]} components, more than "
                               f"the {len(COMPONENTS)} this version knows")
    return np.pad(table, ((0, 0), (0, len(COMPONENTS) - table.shape[1])))


def fit_calibration(cases: list[dict], references: dict[str, float], margin: float, tolerance: float, *,
                    training: list[dict], scales: dict[str, float], statement: str = GUARANTEE) -> Calibration:
    """The :class:`Calibration` fitted (:func:`fit_factors`, per quantity) on the samples of ``cases``
    (:func:`case_record`); each case gets its largest bounds."""
    tables = [np.maximum.accumulate(_components(c), axis=0) for c in cases]
    A = np.concatenate(tables)
    allowed = np.array([c not in NOT_IN_BOUND for c in COMPONENTS])
    factors = np.array([fit_factors(A, np.concatenate([c["samples"]["errors"][qn] for c in cases]), margin,
                                    tolerance, allowed) for qn in QUANTITIES])
    cal = Calibration(factors, references, margin, tolerance, [], training=training, scales=scales,
                      statement=statement)
    for case, S in zip(cases, tables):
        b = cal.bounds(S)
        case["bounds"] = {qn: float(b[:, i].max()) for i, qn in enumerate(QUANTITIES)}
    cal.cases = cases
    return cal
