"""Incremental update of a reduced model with new HF snapshots (no access to the old snapshots).

Needs only the model file (its modes, singular values, Gappy bases, reduced points) and the new
training cases; collective over the ranks, distributed as the offline stage (element ownership):

1. displacement basis: :func:`structrom.rom.pod.update_pod` (new snapshots orthogonalized against the
   modes in the mass product, small SVD of the residual block, truncated by the model's POD
   tolerance against the energy of old and new snapshots);
2. the laws replayed on the new snapshots; every Gappy basis updated the same way (point-weighted L2
   product);
3. cubature warm-started from the current points (:func:`structrom.rom.reduced_quadrature.empirical_cubature`
   with ``initial_points``: their columns factorized at once, then the ECM loop adds points and
   re-solves the weights non-negatively) on the integrand ``eps(psi_i) : sigma``. The old stress snapshots are
   represented by the updated stress basis scaled by its singular values, ``sigma_old ~= Psi S V^T``:
   with ``V`` orthonormal, the integrand rows ``eps(psi_i) : Psi_j s_j`` have the same quadrature error
   norm as the rows of all stress snapshots, up to the stress basis truncation. The Gappy bases'
   Q-DEIM points are added with zero weight and the old points are kept;
4. reduced operators and loads at the new points; the validation points of the indicator follow the new
   bases; the indicator recalibrated (:mod:`structrom.rom.offline.recalibrate`: the Gappy reference norm,
   and for calibrated models the component scales and the factors refitted with the new loadings'
   held-out samples).

Prescribed displacements (a ``/lifting``, :mod:`structrom.rom.lifting`): the unit fields ``G_j`` are kept (the
new cases must have the model's Dirichlet specifications and prescribe nonzero values only on its lifted sets:
:func:`~structrom.rom.offline.lifting.model_unit_fields`), every rank reading its rows of them. As in the offline
stage, step 1 works on the homogeneous parts ``u - sum_j b_j G_j`` of the new snapshots (zero on the Dirichlet
dofs), step 2 replays the laws on ``h + sum_j b_j G_j``, step 3's integrand has the unit fields' strains
appended (the reactions' volume terms ``eps(G_j) : sigma``), and step 4 gives the lifting its strains at the new
reduced and validation points and the reaction loads ``G_j^T f``; the held-out samples compare ``Phi q + G b``
with the total snapshots.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import h5py
import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from structrom.rom import model_file
from structrom.rom.materials import law_from_config
from structrom.rom.offline.config import OfflineConfig
from structrom.rom.offline.operators import Distribution, ReducedDuals, distribute, local_at, read_rows, \
    reduced_model_data
from structrom.rom.offline.cubature import dual_points, integrand, reduced_rule
from structrom.rom.offline.lifting import OfflineLifting, displacement_schema, model_unit_fields
from structrom.rom.offline.pipeline import loading_schema
from structrom.rom.offline.recalibrate import carry_calibration, held_out_cases, recalibrate_indicator, \
    rescaled_references
from structrom.rom.offline.validation import gather_at_points, validation_weights
from structrom.rom.online.indicator import ValidationSet
from structrom.rom.offline.replay import replay
from structrom.rom.offline.snapshots import SnapshotError, TrainingCase
from structrom.rom.pod import update_pod
from structrom.rom.integrand import Integrand


@dataclass
class ModelUpdate:
    """The updated model (rank 0): ``data``, ``mesh``, full ``modes`` ``(n_dofs, N)``, full Gappy bases,
    and ``stats`` (sizes before / after, seconds per step)."""

    data: model_file.ReducedModelData
    mesh: object
    modes: np.ndarray
    full_duals: dict[str, np.ndarray]
    stats: dict = field(default_factory=dict)


def model_settings(data: model_file.ReducedModelData) -> OfflineConfig:
    """The offline settings the model was built with (its provenance), defaults where absent."""
    cfg = data.provenance.get("config") if isinstance(data.provenance, dict) else None
    try:
        return OfflineConfig.model_validate(cfg) if cfg else OfflineConfig(snapshots={"files": ["-"]})
    except ValueError:
        return OfflineConfig(snapshots={"files": ["-"]})


def _old_energy(sv: np.ndarray, recorded: float | None, relative_error: float | None) -> float:
    """Total snapshot energy behind singular values ``sv``: recorded, else from the relative energy
    error of the truncation, else ``sum sv^2`` (no discarded energy known)."""
    kept = float(np.sum(np.asarray(sv) ** 2))
    if recorded:
        return float(recorded)
    if relative_error is not None and 0.0 <= relative_error < 1.0:
        return kept / (1.0 - relative_error ** 2)
    return kept


def _merge_ranges(old, new):
    """Union of two loading schemas' ranges (``[lo, hi]`` pairs merged, other values kept if equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("type", new.get("type")) != new.get("type", old.get("type")):
            return {"type": "any"}
        return {k: _merge_ranges(old[k], new[k]) if k in old and k in new else old.get(k, new.get(k))
                for k in {**old, **new}}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        if len(old) == 2 and all(isinstance(x, (int, float)) for x in old + new):
            return [min(old[0], new[0]), max(old[1], new[1])]
        return [_merge_ranges(a, b) for a, b in zip(old, new)]
    return old if old == new else new


def _check_materials(data: model_file.ReducedModelData, case: TrainingCase) -> list:
    import json

    laws = [(s, law_from_config(c)) for s, c in case.materials]
    if json.loads(json.dumps([law.to_config() for _, law in laws])) != json.loads(json.dumps(data.materials)):
        raise SnapshotError(f"{case.path}: its materials differ from the model's: enrichment needs HF solves of the "
                            "model's own problem (same laws and element sets)")
    return laws


def _updated_validation(comm: MPI.Comm, dist: Distribution, old: ValidationSet | None, points: np.ndarray,
                        eps_modes: np.ndarray, duals: dict[str, ReducedDuals], G: Integrand, lift: OfflineLifting
                        ) -> tuple[ValidationSet | None, np.ndarray | None]:
    """The model's validation points for the updated bases (collective; the set on rank 0, None elsewhere):
    strains of the new modes ``eps_modes`` ``(n_loc, 6, N)`` and rows of the new Gappy bases there, weights
    refitted on the new integrand ``G`` (:func:`~structrom.rom.offline.validation.validation_weights`).
    Points the new reduced set took (new cubature or dual Q-DEIM points) leave the validation set. Also
    returned: the strains of the prescribed displacements' unit fields there ``(n_val, 6, n_G)`` (None
    without them)."""
    if old is None:
        return None, None
    keep = ~np.isin(old.point, points)
    pts = old.point[keep]
    integrator = gather_at_points(comm, dist.gidx, eps_modes, pts)
    val_lift = gather_at_points(comm, dist.gidx, lift.eps, pts) if lift else None
    rows = {k: gather_at_points(comm, dist.gidx, v.modes.reshape(dist.disc.n_points, v.components, -1), pts)
            for k, v in duals.items() if k in old.duals}
    weights = validation_weights(comm, dist.gidx, dist.disc.point_weights, G, pts)
    if comm.Get_rank() != 0:
        return None, None
    return ValidationSet(point=pts, integrator=integrator, weights=weights, material=old.material[keep],
                         interpolation=sp.csr_matrix(old.interpolation)[keep],
                         duals={k: v.reshape(len(pts) * v.shape[1], -1) for k, v in rows.items()}), val_lift


def _attach_validation(new: model_file.ReducedModelData, validation: ValidationSet,
                       old: model_file.ReducedModelData, mesh) -> None:
    """Give ``new`` the ``validation`` set whose interpolation rows index ``old``'s temperature nodes: the
    temperature nodes become the union of both sets' nodes (rank 0)."""
    n_nodes = len(mesh.points)

    def to_global(m, nodes):
        m = sp.csr_matrix(m)
        return sp.csr_matrix((m.data, np.asarray(nodes)[m.indices], m.indptr), shape=(m.shape[0], n_nodes))
    rp = to_global(new.temperature_interpolation, new.temperature_nodes)
    val = to_global(validation.interpolation, old.temperature_nodes)
    nodes = np.union1d(new.temperature_nodes, np.unique(val.indices)).astype(np.int64)
    new.temperature_nodes, new.temperature_coordinates = nodes, mesh.points[nodes]
    new.temperature_interpolation = rp[:, nodes].tocsr()
    validation.interpolation = val[:, nodes].tocsr()
    new.validation = validation


def update_model(path, cases: list[TrainingCase], comm: MPI.Comm, log=lambda *a: None) -> ModelUpdate | None:
    """Update the model file ``path`` with the snapshots of ``cases`` (collective). Returns the new
    model on rank 0 (nothing is written), None on the other ranks."""
    rank = comm.Get_rank()
    stats: dict = {}
    t0 = time.perf_counter()
    head = None
    if rank == 0:
        try:
            head = model_file.load(path, mesh=True)
            for c in cases:
                _check_materials(head, c)
                model_unit_fields(head.lifting.fields if head.lifting else [], head.dirichlet, c)
            if "stress" not in head.duals:
                raise model_file.ModelFileError(
                    f"{path}: no stress Gappy basis: enrichment represents the old stress snapshots by it (rebuild "
                    "with dual.quantities including \"stress\")")
            vector_loads = sorted(set(head.traction or {}) | set(head.force or {}))
            if vector_loads or any(c.loading.tractions or c.loading.forces for c in cases):
                raise model_file.ModelFileError(
                    f"{path}: enrichment does not project tractions or concentrated forces yet (sets "
                    f"{vector_loads or 'in the new loadings'}): rebuild with `structrom offline` and all snapshots")
        except Exception as exc:  # re-raised on every rank
            head = exc
    head = comm.bcast(head, root=0)
    if isinstance(head, Exception):
        raise head
    data: model_file.ReducedModelData = head
    mesh = data.mesh
    settings = model_settings(data)
    prov = data.provenance if isinstance(data.provenance, dict) else {}
    dist: Distribution = distribute(mesh, _check_materials(data, cases[0]), comm)
    disc = dist.disc
    fields = model_unit_fields(data.lifting.fields if data.lifting else [], data.dirichlet, cases[0])
    with h5py.File(path, "r") as f:
        modes_old = read_rows(f["modes/full"], dist.rows)
        duals_old = {k: read_rows(f[f"dual/{k}/basis"], dist.dual_rows(v.components)) for k, v in data.duals.items()}
        G_rows = read_rows(f["lifting/full"], dist.rows) if fields else np.zeros((len(dist.rows), 0))
    # the prescribed displacements' unit fields at this rank's rows (arrays indexed by position in dist.rows)
    lift = OfflineLifting.at_rows(fields, G_rows, disc, dist.rows, mesh, cases[0].loading.displacements)
    here = np.arange(len(dist.rows))
    stats["read"] = time.perf_counter() - t0

    # 1. displacement basis: the homogeneous parts u - G b of the new snapshots, as the offline stage
    t0 = time.perf_counter()
    snapshots = np.concatenate([c.displacements(dist.nodes).reshape(len(c.times), -1).T for c in cases], axis=1)
    homogeneous = lift.homogeneous(snapshots.copy(), cases, here)
    pod_prov = prov.get("pod", {})
    energy = _old_energy(data.singular_values, pod_prov.get("total_energy"), pod_prov.get("relative_energy_error"))
    pod_u = update_pod(comm, modes_old, data.singular_values, energy, homogeneous, weight_local=dist.mass,
                       tolerance=settings.pod.tolerance, max_modes=settings.pod.max_modes, global_rows=dist.rows)
    stats["modes"] = [len(data.singular_values), pod_u.n_modes]
    stats["displacement update"] = time.perf_counter() - t0

    # 2. replay and Gappy bases
    t0 = time.perf_counter()
    stress, p, back = [], [], []
    start = 0
    for c in cases:  # on the prescribed values exactly (the homogeneous part is zero on the Dirichlet dofs)
        cols = slice(start, start + len(c.times))
        start += len(c.times)
        rep = replay(disc, dist.regions, c.loading, lift.total(homogeneous[:, cols], c, here).T, mesh.points,
                     rows=dist.rows)
        stress.append(rep.stress)
        p.append(rep.cumulated_plastic_strain)
        back.append(rep.back_stress)
    del homogeneous
    new_values = {"stress": np.concatenate(stress, axis=0).transpose(1, 2, 0).reshape(disc.n_points * 6, -1),
                  "cumulated_plastic_strain": np.concatenate(p, axis=0).T}
    if back[0] is not None:  # laws with kinematic hardening: point-major rows like the stress
        new_values["back_stress"] = np.concatenate(back, axis=0).transpose(1, 2, 0).reshape(disc.n_points * 6, -1)
    del back
    dual_energy = prov.get("dual_energy", {})
    duals: dict[str, ReducedDuals] = {}
    for name, old in data.duals.items():
        if name not in new_values:
            raise model_file.ModelFileError(f"{path}: dual quantity {name!r} cannot be replayed for enrichment")
        values, c = new_values[name], old.components
        e_old = _old_energy(old.singular_values, dual_energy.get(name), None)
        if comm.allreduce(float(np.abs(values).max(initial=0.0)), op=MPI.MAX) == 0.0:
            duals[name] = ReducedDuals(duals_old[name], old.singular_values, c, e_old)
            continue
        res = update_pod(comm, duals_old[name], old.singular_values, e_old, values,
                         weight_local=np.repeat(disc.point_weights, c), tolerance=settings.dual.tolerance,
                         max_modes=settings.dual.max_modes, global_rows=dist.dual_rows(c))
        duals[name] = ReducedDuals(res.modes_local, res.singular_values, c, float(res.total_energy))
    stats["dual modes"] = {k: [data.duals[k].reduced_basis.shape[1], v.modes.shape[1]] for k, v in duals.items()}
    stats["dual update"] = time.perf_counter() - t0

    held_out: list[dict] = []
    if data.calibration is not None:  # samples of the new cases under the current version (recalibrate.py)
        t0 = time.perf_counter()
        held_out = held_out_cases(comm, data, cases, modes_old, duals_old, snapshots, dist.mass, disc.point_weights,
                                  new_values, log, lift_rows=lift.G if lift else None,
                                  n_mesh_nodes=len(mesh.points))
        stats["held-out samples"] = time.perf_counter() - t0
    del snapshots

    # 3. cubature, warm-started
    t0 = time.perf_counter()
    n_modes = pod_u.n_modes
    eps_modes = (disc.strain_operator()[:, dist.rows] @ pod_u.modes_local).reshape(disc.n_points, 6, n_modes)
    s = duals["stress"]
    # with prescribed displacements, the reactions' volume terms eps(G_j) : sigma too (as the offline stage)
    stress_modes = s.modes.reshape(disc.n_points, 6, -1) * s.singular_values
    G, n_rows, _ = integrand(comm, lift.integrand_modes(eps_modes), stress_modes, dist.gidx,
                             row_tolerance=settings.ecm.row_tolerance or settings.ecm.tolerance / 10,
                             max_rows=settings.ecm.max_rows, max_gram_rows=settings.ecm.max_gram_rows,
                             form=settings.ecm.integrand, stress_compression=settings.ecm.stress_compression,
                             overwrite=True)
    old_ecm = data.point[data.weights > 0]
    quad = reduced_rule(comm, G, disc.point_weights, dist.gidx, tolerance=settings.ecm.tolerance,
                        max_points=settings.ecm.max_points, initial_points=old_ecm,
                        **settings.ecm.selection_keywords())
    extra = [dual_points(comm, v.modes, dist.dual_rows(v.components), v.components)
             for v in duals.values()]
    extra = np.setdiff1d(np.unique(np.concatenate(extra + [data.point])), quad.points)
    points = np.concatenate([quad.points, extra]).astype(np.int64)
    weights = np.concatenate([quad.weights, np.zeros(len(extra))])
    stats["points"] = [len(data.point), len(points)]
    stats["ecm"] = {"points": [len(old_ecm), len(quad.points)], "residual": quad.residual,
                    "rows": [n_rows, G.shape[0]], "converged": quad.converged}
    stats["cubature"] = time.perf_counter() - t0

    # 4. operators, schema, indicator
    t0 = time.perf_counter()
    surfaces = sorted(set(data.pressure) | {s for c in cases for s in c.loading.pressures})
    new, full_modes, full_duals = reduced_model_data(
        comm, dist, pod_u.modes_local, points, weights, duals, surfaces=surfaces,
        centrifugal_axis=data.centrifugal_axis, gravity=data.gravity is not None, base=data, lifting=lift or None)
    q, c_q = data.indicator_quantity, data.duals[data.indicator_quantity].components
    which, loc = local_at(dist.gidx, points)
    vals = new_values[q].reshape(disc.n_points, c_q, -1)[loc]
    gathered = comm.gather((which, vals), root=0)
    validation, val_lift = _updated_validation(comm, dist, data.validation, points, eps_modes, duals, G, lift)
    stats["operators"] = time.perf_counter() - t0
    if rank != 0:
        return None
    at_points = np.zeros((len(points), c_q, vals.shape[-1]))
    for w, v in gathered:
        at_points[w] = v
    calibration = recalibrate_indicator(new, at_points.reshape(len(points) * c_q, -1).T)
    new.singular_values = pod_u.singular_values
    schema = loading_schema(cases)
    if fields:  # the ranges of the model's prescribed sets (named as the model names them)
        schema.update(displacement_schema(fields, cases))
    new.loading_schema = _merge_ranges(data.loading_schema, schema)
    new.provenance = dict(prov, pod={"modes": n_modes, "relative_energy_error": pod_u.relative_energy_error(),
                                     "total_energy": float(pod_u.total_energy)},
                          dual_energy={k: v.total_energy for k, v in duals.items()},
                          ecm={"points": len(quad.points), "dual_points": len(extra), "residual": quad.residual,
                               "converged": quad.converged, "warm_start": {"initial": len(old_ecm)},
                               "condition": quad.extra.get("condition")},
                          snapshots=list(prov.get("snapshots", [])) + [
                              {"file": str(c.path), "sha256": c.sha256, "increments": len(c.times)} for c in cases],
                          indicator_calibration=calibration)
    if validation is not None:
        _attach_validation(new, validation, data, mesh)
        if new.lifting is not None:
            new.lifting.validation = val_lift
    if data.calibration is not None:
        new.calibration = carry_calibration(data.calibration, held_out, [c.loading for c in cases],
                                            new.loading_schema, data.version + 1,
                                            rescaled_references(data.calibration.references, data, new))
        new.provenance["indicator_calibration"] = dict(
            calibration, refitted={"cases": len(new.calibration.cases), "added": [c["case"] for c in held_out]})
        stats["calibration"] = {"cases": len(new.calibration.cases), "held_out": len(held_out)}
    return ModelUpdate(new, mesh, full_modes, full_duals, stats)
