"""Calibration of the online error indicator without extra HF runs (leave-one-out over the training cases).

For each training case ``k`` in turn (:func:`calibrate_indicator`, collective over the offline ranks):

1. the displacement POD and the Gappy PODs are redone on the snapshots of the OTHER cases (same
   tolerances), the reduced operators rebuilt at the same reduced and validation points, the loading
   schema recomputed without case ``k`` (so that its out-of-family distance is seen);
2. case ``k`` is solved online with that reduced model (rank 0), every component of the indicator
   recorded per increment (:mod:`structrom.rom.online.indicator`);
3. its true relative errors per increment (:func:`relative_errors`) are measured against its own HF
   snapshots (displacement, Gappy-reconstructed stress and cumulated plastic strain), distributed.

4. (in sample) the model rebuilt from every case answers each training loading too, and these answers'
   components and true errors join the samples (:func:`_in_sample_cases`): the folds do not show the errors
   the model keeps on the loadings it was trained on.

The factors ``a_Q >= 0`` of each quantity's bound ``a_Q0 + sum_k a_Qk I_k`` are then the linear program
(:func:`fit_factors`)

    minimize   sum_s (a_Q . I_s) / max(margin e_s, tol / 100)
    subject to a_Q . I_s >= margin e_s     for every sample s (increment of a left-out or in-sample case),

the tightest bound in the relative L1 sense that holds with the safety ``margin`` on every sample.
The cubature is not re-selected in the folds (its points saw case ``k``); the validation cubature, kept
out of it, measures what it misses.

Prescribed displacements (:mod:`structrom.rom.offline.lifting`): a fold is built like the lifted model, the POD
on the homogeneous parts ``u - sum_j b_j G_j`` of the other cases' snapshots, the cubature's integrand with the
unit fields' strains appended, the lifting's strains at the fold's reduced and validation points and its
reaction loads in the fold's model (the unit fields ``G_j`` are the full model's: they depend only on the
prescribed sets), so that the online solve of case ``k`` takes its prescribed amplitudes; the true
displacement error is that of the total ``Phi q + G b`` against the HF snapshots.

Validation points: :mod:`structrom.rom.offline.validation`. Entry points: :func:`calibrate_indicator`
(from the data a rank holds, :class:`TrainingData`) and :func:`calibrate_from_cases` (from the offline
stage's state: training cases, partition, replayed duals), which :func:`structrom.rom.offline.pipeline.run_offline`
calls after assembling the model and before writing it.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from structrom.rom import model_file
from structrom.rom.fem.kernel import Discretization
from structrom.rom.loading import Loading
from structrom.rom.online.envelope import loading_parameters, parameter_scales
from structrom.rom.online.indicator import (COMPONENTS, FORCE_FLOOR_KEY, GUARANTEE, HISTORY_KEY, QUANTITIES,
                                           Calibration, ValidationSet)
from structrom.rom.pod import pod

from .calibration_samples import (COMPONENT_CAP, NOT_IN_BOUND, CalibrationError, case_record,  # noqa: F401
                                  fit_calibration, fit_factors, held_out_errors, reduced_answer, relative_errors,
                                  true_errors)
from .validation import _positions, gather_at_points

#: Error floors: relative errors are measured against max(largest HF norm of the answer, FLOOR x largest
#: training norm), so that a quantity that is (nearly) zero in a loading, e.g. p of an elastic one,
#: does not turn round-off into large relative errors.
ERROR_FLOOR = 0.05


@dataclass
class TrainingData:
    """What the offline stage holds on each rank for the calibration (local rows only).

    ``snapshots``: ``(n_rows_local, n_snap)`` displacements at this rank's dofs ``rows`` (global numbers);
    ``mass``: the element-assembled local mass ``(n_rows_local, n_rows_local)``; ``gidx``: ``(n_points_local,)``
    global integration point numbers; ``duals``: quantity -> ``((n_points_local * c, n_snap), c)`` replayed
    training values; ``case_columns``: the snapshot columns of each case; ``loads``: load vectors at this
    rank's rows ``rows`` (``pressure`` surface -> ``(n_rows_local,)``, ``traction`` / ``force`` set ->
    ``(n_rows_local, 3)`` unit loads along x, y, z, ``centrifugal`` ``(n_rows_local,)`` or None, ``gravity``
    ``(n_rows_local, 3)`` or None); POD settings as in the offline configuration.
    """

    comm: MPI.Comm
    disc: Discretization
    names: list[str]
    loadings: list[Loading]
    case_columns: list[slice]
    snapshots: np.ndarray
    rows: np.ndarray
    mass: sp.spmatrix
    gidx: np.ndarray
    duals: dict[str, tuple[np.ndarray, int]]
    loads: dict
    n_dofs: int
    pod_tolerance: float = 1e-4
    pod_max_modes: int | None = None
    pod_method: str = "gram"
    dual_tolerance: float = 1e-4
    dual_max_modes: int | None = None
    schema_of: object = None  # callable(list of case indices) -> loading schema
    #: cross-validated cubature: ECM settings (``tolerance``, ``row_tolerance``, ``max_rows``, ``max_points``),
    #: the material index of this rank's points and the mesh node coordinates; None keeps the model's points
    ecm: dict | None = None
    stress: np.ndarray | None = None  # (n_points_local * 6, n_snap) training stresses (default: duals["stress"])
    material_index: np.ndarray | None = None
    node_coordinates: np.ndarray | None = None
    #: prescribed displacements: the offline stage's :class:`~structrom.rom.offline.lifting.OfflineLifting` and the
    #: amplitudes ``b`` ``(n_snap, n_G)`` of every snapshot column; ``snapshots`` are then the total displacements
    lifting: object = None
    lift_amplitudes: np.ndarray | None = None

    def homogeneous(self, columns) -> np.ndarray:
        """``(n_rows_local, n_cols)`` the homogeneous parts ``u - G b`` of the snapshot ``columns`` (zero on the
        Dirichlet dofs), as the offline stage's POD sees them (without prescribed displacements: the columns)."""
        S = self.snapshots[:, columns]
        if not self.lifting:
            return S
        S = S - self.lifting.G[self.rows] @ self.lift_amplitudes[columns].T
        S[self.lifting.dirichlet[self.rows]] = 0.0
        return S


def _fold_points(td: TrainingData, keep: np.ndarray, eps: np.ndarray, dual_modes: dict, log) -> tuple | None:
    """Cross-validated cubature of a fold (collective): the ECM on the fold's modes and stress snapshots
    plus the Q-DEIM points of its dual bases, as the offline stage selects them. Returns ``(points,
    weights)`` or None (no ``td.ecm`` settings, no stress snapshots, or the ECM failed: the model's points
    are kept)."""
    from structrom.rom.reduced_quadrature import ECMError

    from .cubature import cubature, dual_points

    stress = td.stress if td.stress is not None else (td.duals["stress"][0] if "stress" in td.duals else None)
    if td.ecm is None or stress is None:
        return None
    comm = td.comm
    stress = stress.reshape(td.disc.n_points, 6, -1)[:, :, keep]
    if td.lifting:  # the reactions' volume terms too, as in the offline stage
        eps = td.lifting.integrand_modes(eps)
    try:
        quad = cubature(comm, eps, stress, td.disc.point_weights, td.gidx, tolerance=td.ecm["tolerance"],
                        row_tolerance=td.ecm["row_tolerance"], max_rows=td.ecm["max_rows"],
                        max_gram_rows=td.ecm.get("max_gram_rows", 8192),
                        max_points=td.ecm["max_points"], selection=td.ecm.get("selection", "greedy"),
                        block_size=td.ecm.get("block_size", 16),
                        block_correlation=td.ecm.get("block_correlation", 0.5),
                        screening=td.ecm.get("screening", "float32"),
                        shortlist=td.ecm.get("shortlist", 0), full_scores_every=td.ecm.get("full_scores_every", 1),
                        removal=td.ecm.get("removal", "nonpositive"),
                        block_choice=td.ecm.get("block_choice", "correlation"),
                        form=td.ecm.get("integrand", "assembled"),
                        stress_compression=td.ecm.get("stress_compression", False)).quadrature
    except ECMError as exc:
        log(f"calibration: the fold's cubature failed ({exc}); the model's reduced points are kept")
        return None
    extra = [dual_points(comm, m, (c * td.gidx[:, None] + np.arange(c)).ravel(), c)
             for (_, c), m in ((td.duals[k], m) for k, m in dual_modes.items())]
    extra = np.setdiff1d(np.unique(np.concatenate(extra)) if extra else np.zeros(0, np.int64), quad.points)
    return (np.concatenate([quad.points, extra]).astype(np.int64),
            np.concatenate([quad.weights, np.zeros(len(extra))]))


def _fold(td: TrainingData, keep: np.ndarray, points: np.ndarray, validation: ValidationSet | None, log=print):
    """Reduced operators without the held-out columns: ``(phi (n_rows_local, N) this rank's rows, data pieces on rank 0,
    local dual bases)``. With ``td.ecm``, the reduced points are re-selected too (``pieces["cubature"]``); with
    prescribed displacements, the lifting's strains at the points (``pieces["lifting"]``, ``"val_lifting"``)."""
    from .validation import interpolation_rows

    comm = td.comm
    S = td.homogeneous(keep)
    res = pod(comm, S, weight_local=td.mass, tolerance=td.pod_tolerance, max_modes=td.pod_max_modes,
              method=td.pod_method, global_rows=td.rows)
    N = res.modes_local.shape[1]
    phi = res.modes_local
    eps = (td.disc.strain_operator()[:, td.rows] @ phi).reshape(td.disc.n_points, 6, N)
    local_duals, svs = {}, {}
    for name, (values, c) in td.duals.items():
        grows = (c * td.gidx[:, None] + np.arange(c)).ravel()
        V = values[:, keep]
        if comm.allreduce(float(np.abs(V).max(initial=0.0)), op=MPI.MAX) == 0.0:
            modes, sv = np.zeros((len(V), 0)), np.zeros(0)
        else:
            r = pod(comm, V, weight_local=np.repeat(td.disc.point_weights, c), tolerance=td.dual_tolerance,
                    max_modes=td.dual_max_modes, method="gram", global_rows=grows)
            modes, sv = r.modes_local, r.singular_values
        local_duals[name], svs[name] = modes, sv
    pieces: dict = {}
    cubature = _fold_points(td, keep, eps, local_duals, log)
    if cubature is not None:
        points = cubature[0]
        pieces["cubature"] = (points, cubature[1],
                              gather_at_points(comm, td.gidx, td.material_index.astype(float), points),
                              comm.gather(interpolation_rows(td.disc, td.gidx, points), root=0))
    pieces["integrator"] = gather_at_points(comm, td.gidx, eps, points)
    if validation is not None:
        pieces["val_integrator"] = gather_at_points(comm, td.gidx, eps, validation.point)
    if td.lifting:
        pieces["lifting"] = gather_at_points(comm, td.gidx, td.lifting.eps, points)
        pieces["val_lifting"] = (gather_at_points(comm, td.gidx, td.lifting.eps, validation.point)
                                 if validation is not None else None)
    pieces["pressure"] = {s: comm.allreduce(phi.T @ f) for s, f in td.loads["pressure"].items()}
    for key in ("traction", "force"):  # (n_dofs, 3) unit loads per set -> (N, 3)
        pieces[key] = {s: comm.allreduce(phi.T @ f) for s, f in td.loads.get(key, {}).items()}
    pieces["centrifugal"] = (comm.allreduce(phi.T @ td.loads["centrifugal"])
                             if td.loads.get("centrifugal") is not None else None)
    pieces["gravity"] = comm.allreduce(phi.T @ td.loads["gravity"]) if td.loads.get("gravity") is not None else None
    pieces["singular_values"] = res.singular_values
    for name, (values, c) in td.duals.items():
        modes = local_duals[name]
        per_point = modes.reshape(td.disc.n_points, c, modes.shape[1])  # (an empty basis too: no -1 to infer)
        red = gather_at_points(comm, td.gidx, per_point, points)
        val = gather_at_points(comm, td.gidx, per_point, validation.point) if validation is not None else None
        pieces[f"dual/{name}"] = (red, val, svs[name], c)
    return phi, pieces, local_duals


def _fold_model(template: model_file.ReducedModelData, pieces: dict, schema: dict, references: dict,
                margin: float, tolerance: float, training: list[dict], scales: dict,
                node_coordinates: np.ndarray | None = None) -> model_file.ReducedModelData:
    """Rank 0: the fold's in-memory model (the full model's points, laws and temperature data)."""
    duals, vduals = {}, {}
    for key, value in pieces.items():
        if key.startswith("dual/"):
            red, val, sv, c = value
            name = key[5:]
            duals[name] = model_file.DualBasis(c, red.reshape(red.shape[0] * c, red.shape[-1]), sv)
            if val is not None:
                vduals[name] = val.reshape(val.shape[0] * c, val.shape[-1])
    validation = None
    if template.validation is not None:
        validation = dataclasses.replace(template.validation, integrator=pieces["val_integrator"], duals=vduals)
    points = {}
    if "cubature" in pieces:  # the fold's own reduced points: their materials and temperature interpolation
        from .validation import assemble_rows

        pts, weights, material, parts = pieces["cubature"]
        n_nodes = len(node_coordinates)
        interp = assemble_rows(parts, len(pts), n_nodes)
        val_global = None
        if validation is not None:
            val_global = sp.csr_matrix((validation.interpolation.data, template.temperature_nodes[
                validation.interpolation.indices], validation.interpolation.indptr), shape=(validation.n_points, n_nodes))
        nodes = np.unique(np.concatenate([interp.indices] + ([val_global.indices] if val_global is not None else [])))
        points = dict(point=pts, weights=weights, material=material.round().astype(np.int64),
                      element=np.zeros(len(pts), np.int64), coordinates=np.zeros((len(pts), 3)),
                      temperature_nodes=nodes, temperature_coordinates=node_coordinates[nodes],
                      temperature_interpolation=interp[:, nodes])
        if validation is not None:
            validation = dataclasses.replace(validation, interpolation=val_global[:, nodes].tocsr())
    lifting = None
    if template.lifting is not None:  # the unit fields' strains at the fold's points, the reaction loads
        lifting = dataclasses.replace(template.lifting, reduced=pieces["lifting"], validation=pieces["val_lifting"],
                                      loads=pieces["reaction_loads"], full=None)
    n_q = len(QUANTITIES)
    placeholder = Calibration(np.zeros((n_q, 1 + len(COMPONENTS))), references, margin, tolerance,
                              training=training, scales=scales)
    return dataclasses.replace(template, integrator=np.ascontiguousarray(pieces["integrator"]),
                               pressure=pieces["pressure"], traction=pieces["traction"], force=pieces["force"],
                               centrifugal=pieces["centrifugal"],
                               gravity=pieces["gravity"], singular_values=pieces["singular_values"], duals=duals,
                               loading_schema=schema, validation=validation, calibration=placeholder,
                               lifting=lifting, modes=None, mesh=None, **points)


def _in_sample_cases(td: TrainingData, template, points: np.ndarray, validation, references: dict, margin: float,
                     tolerance: float, params: list[dict], scales: dict, reaction_loads, log) -> list[dict]:
    """Samples of the model's own answers to its training loadings (collective): the model rebuilt from every
    training case (the fold that leaves nothing out: POD and, with ``td.ecm``, cubature redone on all the
    snapshots with the model's settings; the model's validation points) solves each training loading,
    compared with that loading's HF snapshots. Returns :func:`case_record` dicts marked ``in_sample``.
    ``template``, ``points``, ``validation``, ``references``...: as in :func:`calibrate_indicator`.

    The folds alone miss an error the model keeps on loadings it was trained on: with the left-out case's
    pattern missing from the fold's Gappy bases, the folds' errors are dominated by that out-of-sample
    representation error, which the Gappy and validation components measure; in sample those components drop
    to the representation error of the model's own answer, while the reduced state's error remains, and the
    laws can amplify it many times (cumulated plastic strain at the onset of plastic flow: the J2 bar of
    ``examples/indicator_validation.py`` answered its own training loading 5.5 MPa / 450 degC with a 5.8 %
    error of p under components that bounded it at 1.1 %)."""
    comm = td.comm
    keep = np.ones(td.snapshots.shape[1], bool)
    phi, pieces, local_duals = _fold(td, keep, points, validation, log)
    pieces["reaction_loads"] = reaction_loads
    data = None
    if comm.Get_rank() == 0:
        everything = list(range(len(td.case_columns)))
        data = _fold_model(template, pieces, td.schema_of(everything), references, margin, tolerance, params,
                           scales, td.node_coordinates)
    lift = td.lifting if td.lifting else None
    out_cases = []
    for k, cols in enumerate(td.case_columns):
        out = reduced_answer(data, td.loadings[k], list(td.duals), lifting=lift is not None,
                             n_mesh_nodes=td.n_dofs // 3) if data is not None else None
        out = comm.bcast(out, root=0)
        if isinstance(out, str):
            log(f"calibration: training case {td.names[k]} in sample: the reduced solve failed ({out}); case skipped")
            continue
        q, betas, table = out[:3]
        # a training loading is inside its own envelopes: these components are 0 but for round-off (an answer's
        # norm 4e-7 above the training's largest), which the fit would otherwise take as the cheapest cover of
        # the in-sample errors (a factor 28 on state_envelope in the elastic test bar: far queries untrusted)
        table = np.array(table, float)
        table[:, [COMPONENTS.index("state_envelope"), COMPONENTS.index("loading_envelope")]] = 0.0
        e = held_out_errors(comm, phi, q, td.snapshots[:, cols], td.mass, local_duals, betas,
                            {name: (values[:, cols], c) for name, (values, c) in td.duals.items()},
                            td.disc.point_weights, references,
                            lifting=(lift.G[td.rows], out[3]) if lift is not None else None)
        record = case_record(f"{td.names[k]} (in sample)", table, {qn: e.get(qn, np.zeros(len(table)))
                                                                   for qn in QUANTITIES})
        record["in_sample"] = True
        out_cases.append(record)
    return out_cases


def calibrate_indicator(td: TrainingData, template: model_file.ReducedModelData | None, points: np.ndarray,
                        references: dict[str, float], *, margin: float = 2.0, tolerance: float = 0.05,
                        log=print) -> Calibration:
    """Leave-one-out calibration of the error indicator (collective over ``td.comm``; see the module
    docstring). ``template``: the full model's data (rank 0; ignored elsewhere), whose validation set (if
    any) is used; ``points``: ``(n_rp,)`` global reduced points; ``references``: component scales and
    error floors (:func:`indicator_references`). Returns the :class:`Calibration`, the same on every
    rank. Raises :class:`CalibrationError` with fewer than 2 cases or when no fold can be solved."""
    comm = td.comm
    rank = comm.Get_rank()
    n_cases = len(td.case_columns)
    if n_cases < 2:
        raise CalibrationError("the indicator calibration leaves one training case out: it needs >= 2 cases")
    validation = comm.bcast(template.validation if rank == 0 and template is not None else None, root=0)
    n_snap = td.snapshots.shape[1]
    cases: list[dict] = []
    full_schema = td.schema_of(list(range(n_cases)))
    params = [loading_parameters(ld, full_schema) for ld in td.loadings]
    scales = parameter_scales(params)
    lift = td.lifting if td.lifting else None
    reaction_loads = lift.reaction_loads(comm, td.loads, td.rows) if lift else None
    for k in range(n_cases):
        t0 = time.perf_counter()
        keep = np.ones(n_snap, bool)
        keep[td.case_columns[k]] = False
        phi, pieces, local_duals = _fold(td, keep, points, validation, log)
        pieces["reaction_loads"] = reaction_loads
        out = None
        if rank == 0:
            others = [j for j in range(n_cases) if j != k]
            data = _fold_model(template, pieces, td.schema_of(others), references, margin, tolerance,
                               [params[j] for j in others], scales, td.node_coordinates)
            out = reduced_answer(data, td.loadings[k], list(td.duals), lifting=lift is not None,
                                 n_mesh_nodes=td.n_dofs // 3)
        out = comm.bcast(out, root=0)
        if isinstance(out, str):
            log(f"calibration: left-out case {td.names[k]}: the reduced solve failed ({out}); case skipped")
            continue
        q, betas, table = out[:3]
        cols = td.case_columns[k]
        e = held_out_errors(comm, phi, q, td.snapshots[:, cols], td.mass, local_duals, betas,
                            {name: (values[:, cols], c) for name, (values, c) in td.duals.items()},
                            td.disc.point_weights, references,
                            lifting=(lift.G[td.rows], out[3]) if lift is not None else None)
        cases.append(case_record(td.names[k], table, {qn: e.get(qn, np.zeros(len(table))) for qn in QUANTITIES}))
        log(f"calibration: left-out case {td.names[k]}: errors "
            + ", ".join(f"{qn} {v:.2e}" for qn, v in cases[-1]["errors"].items())
            + f" ({time.perf_counter() - t0:.2f} s)")
    if not cases:
        raise CalibrationError("no left-out case could be solved by its reduced model: the indicator cannot be "
                               "calibrated (add training cases)")
    cases += _in_sample_cases(td, template, points, validation, references, margin, tolerance, params, scales,
                              reaction_loads, log)
    statement = GUARANTEE
    missing = [qn for qn in QUANTITIES if qn != "displacement" and qn not in td.duals]
    if missing:
        statement += (f" This model has no dual basis for {', '.join(missing)}: those errors are not measured, "
                      "their bounds are 0 and do not enter the trust flag.")
    return fit_calibration(cases, references, margin, tolerance, training=params, scales=scales, statement=statement)


def indicator_references(comm: MPI.Comm, gidx: np.ndarray, duals: dict[str, tuple[np.ndarray, int]],
                         points: np.ndarray, validation_points: np.ndarray, snapshots: np.ndarray,
                         mass: sp.spmatrix, point_weights: np.ndarray) -> dict[str, float]:
    """Scales of the components (largest training norms of stress and p at the reduced points and at the
    validation points) and error floors (:data:`ERROR_FLOOR` x largest training norms of displacement
    (mass norm), stress and p (point-weighted L2)), the same on every rank."""
    out: dict[str, float] = {"relative_floor": ERROR_FLOOR, HISTORY_KEY: 1.0, FORCE_FLOOR_KEY: 1.0}
    u2 = comm.allreduce(np.einsum("ij,ij->j", snapshots, mass @ snapshots))
    out["floor_displacement"] = ERROR_FLOOR * math.sqrt(max(float(u2.max(initial=0.0)), 0.0))
    for name, (values, c) in duals.items():
        for key, pts in ((name, points), (f"{name}_validation", validation_points)):
            local, _ = _positions(gidx, pts)
            sel = values.reshape(len(gidx), c, -1)[local]
            out[key] = math.sqrt(float(np.max(comm.allreduce(np.einsum("pcs,pcs->s", sel, sel)), initial=0.0)))
        w = np.repeat(point_weights, c)
        out[f"floor_{name}"] = ERROR_FLOOR * math.sqrt(float(np.max(comm.allreduce(w @ (values * values)),
                                                                    initial=0.0)))
    return out


def calibrate_from_cases(cfg, comm: MPI.Comm, disc: Discretization, cases: list, mesh, rows: np.ndarray,
                         mass: sp.spmatrix, gidx: np.ndarray, dual_data: dict, loads: dict, points: np.ndarray,
                         val_points: np.ndarray, data: model_file.ReducedModelData | None, say=print,
                         material_index: np.ndarray | None = None, lifting=None):
    """Leave-one-out calibration from the offline stage's state (collective); sets ``data.calibration``
    on rank 0 and returns ``data``.

    ``cfg``: the :class:`~structrom.rom.offline.config.OfflineConfig` (POD, dual and indicator settings);
    ``cases``: the :class:`~structrom.rom.offline.snapshots.TrainingCase` list; ``rows``: this rank's global
    dofs (3 per node); ``mass``: their element-assembled mass; ``gidx``: this rank's global point numbers;
    ``dual_data``: quantity -> ``(values (n_points_local * c, n_snap), c)`` replayed training values;
    ``loads``: see :class:`TrainingData`; ``points`` / ``val_points``: global reduced / validation points;
    ``data``: the assembled model (rank 0, None elsewhere); ``material_index``: ``(n_points_local,)``
    material of each local point (needed when ``cfg.indicator.cross_validate_cubature``); ``lifting``: the
    :class:`~structrom.rom.offline.lifting.OfflineLifting` of prescribed displacements (or None)."""
    from .pipeline import loading_schema

    cols, start = [], 0
    for c in cases:
        cols.append(slice(start, start + len(c.times)))
        start += len(c.times)
    my_nodes = rows[::3] // 3
    snapshots = np.concatenate([c.displacements(my_nodes).reshape(len(c.times), -1).T for c in cases], axis=1)
    lift_amplitudes = None
    if lifting:
        from .lifting import amplitudes

        lift_amplitudes = np.concatenate([amplitudes(lifting.fields, c.loading, c.times) for c in cases])
    duals = {k: dual_data[k] for k in cfg.dual.quantities}
    refs = indicator_references(comm, gidx, duals, points, val_points, snapshots, mass, disc.point_weights)
    td = TrainingData(
        comm=comm, disc=disc, names=[c.path.stem for c in cases], loadings=[c.loading for c in cases],
        case_columns=cols, snapshots=snapshots, rows=rows, mass=mass, gidx=gidx, duals=duals, loads=loads,
        n_dofs=mesh.n_dofs, pod_tolerance=cfg.pod.tolerance, pod_max_modes=cfg.pod.max_modes,
        pod_method=cfg.pod.method, dual_tolerance=cfg.dual.tolerance, dual_max_modes=cfg.dual.max_modes,
        schema_of=lambda idx: loading_schema([cases[j] for j in idx]),
        ecm=({"tolerance": cfg.ecm.tolerance, "row_tolerance": cfg.ecm.row_tolerance or cfg.ecm.tolerance / 10,
              "max_rows": cfg.ecm.max_rows, "max_gram_rows": cfg.ecm.max_gram_rows, "max_points": cfg.ecm.max_points,
              **cfg.ecm.selection_keywords(),
              "integrand": cfg.ecm.integrand, "stress_compression": cfg.ecm.stress_compression}
             if cfg.indicator.cross_validate_cubature else None),
        stress=dual_data["stress"][0], material_index=material_index, node_coordinates=mesh.points,
        lifting=lifting if lifting else None, lift_amplitudes=lift_amplitudes)
    cal = calibrate_indicator(td, data, points, refs, margin=cfg.indicator.margin,
                                    tolerance=cfg.indicator.tolerance, log=say)
    if data is not None:
        data.calibration = cal
    return data
