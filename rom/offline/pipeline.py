"""The offline stage, distributed by element ownership (Casenave et al., arXiv 1812.07228, sec. 3).

Stages (each reported on rank 0 with sizes, time and peak memory):

1. read the training cases' metadata (rank 0) and broadcast; partition the elements as the HF solver does;
2. every rank reads the displacements of its own dofs only; displacement POD in the mass product
   (:func:`structrom.rom.pod.pod`, element-assembled mass so interface nodes are not counted twice);
3. replay of the laws on every snapshot (strains, stresses, internal variables at this rank's points);
4. POD of the dual quantities at integration points (Gappy bases);
5. empirical cubature on the integrand ``eps(psi_i) : sigma_s`` (:mod:`structrom.rom.offline.cubature`: built
   and row-compressed by blocks of points), then the dual bases' distributed Q-DEIM points added with zero
   weight;
6. reduced operators at the reduced points (gathered: a few hundred points), reduced loads (Allreduce);
   the modes and dual bases stay distributed: spilled by every rank and written by rank 0 in row blocks
   (:mod:`structrom.rom.offline.row_blocks`), the model file written atomically (:mod:`structrom.rom.model_file`).

No rank holds a full-size modes, snapshot, integrand or dual-basis array; the stage table records each
rank's row counts of them (:mod:`structrom.rom.offline.stages`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from structrom.mpi.collectives import on_root, raise_collectively
from structrom.mpi.partition import recursive_bisection
from structrom.rom.config import check_output_file
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import Mesh, MeshError
from structrom.rom.hifi.output import element_point_offsets, global_point_index, read_mesh_group
from structrom.rom.loading import HotSpotTemperature, NodalTemperature, UniformTemperature
from structrom.rom.materials import law_from_config
from structrom.rom.offline import calibration as calib
from structrom.rom.offline import validation
from structrom.rom.online.indicator import ValidationSet
from structrom.rom.online.schema import node_envelope
from structrom.rom.offline.config import OfflineConfig
from structrom.rom.offline.operators import reduced_point_data
from structrom.rom.offline.lifting import OfflineLifting, displacement_schema, unit_fields
from structrom.rom.offline.replay import MaterialRegions, replay
from structrom.rom.offline.snapshots import SnapshotError, TrainingCase, open_snapshot_file, read_training_case
from structrom.rom.pod import pod
from structrom.rom import model_file
from structrom.rom.offline.cubature import dual_points, integrand, reduced_rule
from structrom.rom.offline.row_blocks import remove_spill, spill_rows
from structrom.rom.offline.stages import StageLog
from structrom.rom.progress import bar

CODE_VERSION = "0.1.0"


def _read_cases(cfg: OfflineConfig, comm) -> tuple[Mesh, list[TrainingCase]]:
    def read() -> tuple[Mesh, list[TrainingCase]]:
        files = cfg.snapshot_files()
        check_output_file(cfg.path(cfg.output.file), "output.file", files)  # before hours of computation
        with open_snapshot_file(files[0]) as f:
            if "mesh" not in f:
                raise SnapshotError(f"{files[0]}: no /mesh group: not a structrom snapshot file")
            mesh = read_mesh_group(f["mesh"])
        cases = [read_training_case(p, mesh) for p in files]
        first, seen = cases[0], {}
        for c in cases:
            # a case counted twice weighs double in the POD and, in the leave-one-out calibration, is never left
            # out: its copy stays in training and the indicator's bounds come out too small
            if c.sha256 in seen:
                raise SnapshotError(f"{c.path}: the same snapshots as {seen[c.sha256]} (listed twice in "
                                    "snapshots.files, or a copy): give each training case once")
            seen[c.sha256] = c.path
        for c in cases[1:]:
            if c.materials != first.materials:
                raise SnapshotError(f"{c.path}: materials differ from {first.path}: one model needs one "
                                    "material assignment")
            if c.units != first.units:
                raise SnapshotError(f"{c.path}: units {c.units} differ from {first.units} of {first.path}: one "
                                    "model needs one units table (rerun the case in the same units)")
        unit_fields(cases)  # same Dirichlet sets and components in every case (values may differ)
        return mesh, cases

    return on_root(comm, read)


def loading_schema(cases: list[TrainingCase], temperature_nodes: np.ndarray | None = None) -> dict:
    """Training ranges of the loading family (peaks of amplitudes, temperature-family parameters); for nodal
    temperatures also the per-node envelope at ``temperature_nodes`` (the model's, mesh node indices)."""
    schema: dict = {"times": {"end_range": [min(float(c.loading.times[-1]) for c in cases),
                                            max(float(c.loading.times[-1]) for c in cases)]}}
    temps = [c.loading.temperature for c in cases]
    if all(isinstance(t, HotSpotTemperature) for t in temps):
        def rng(values):
            v = np.asarray(values, dtype=float)
            return np.stack([v.min(0), v.max(0)], axis=-1).tolist()

        schema["temperature"] = {"type": "hot_spot", "ranges": {
            "center": rng([t.center for t in temps]), "radius": rng([t.radius for t in temps]),
            "intensity": rng([t.intensity * np.abs(t.amplitude.values).max() for t in temps]),
            "reference": rng([t.reference for t in temps]), "gradient": rng([t.gradient for t in temps])}}
    elif all(isinstance(t, UniformTemperature) for t in temps):
        schema["temperature"] = {"type": "uniform", "ranges": {
            "reference": [min(t.reference for t in temps), max(t.reference for t in temps)],
            "amplitude": [min(t.amplitude.values.min() for t in temps), max(t.amplitude.values.max() for t in temps)]}}
    elif all(isinstance(t, NodalTemperature) for t in temps):
        # e.g. temperatures imported from CalculiX decks: the range of every nodal value (the per-node
        # envelope is in the import's family.npz)
        schema["temperature"] = {"type": "nodal", "value_range": [min(float(t.values.min()) for t in temps),
                                                                  max(float(t.values.max()) for t in temps)]}
        if temperature_nodes is not None:
            schema["temperature"]["node_envelope"] = node_envelope([t.values for t in temps], temperature_nodes)
    else:
        schema["temperature"] = {"type": "any"}
    surfaces = sorted({s for c in cases for s in c.loading.pressures})
    schema["pressure"] = {s: {"range": [min(c.loading.pressures[s].values.min() if s in c.loading.pressures else 0.0
                                            for c in cases),
                                        max(c.loading.pressures[s].values.max() if s in c.loading.pressures else 0.0
                                            for c in cases)]} for s in surfaces}
    schema.update(displacement_schema(unit_fields(cases), cases))
    for key, attr in (("traction", "tractions"), ("force", "forces")):
        # per component: training range of the component amplitudes (0 where a case does not load the set)
        names = sorted({s for c in cases for s in getattr(c.loading, attr)})
        if names:
            schema[key] = {s: {"range": [[min(min(getattr(c.loading, attr)[s].components[i].values.min(), 0.0)
                                              if s in getattr(c.loading, attr) else 0.0 for c in cases),
                                          max(max(getattr(c.loading, attr)[s].components[i].values.max(), 0.0)
                                              if s in getattr(c.loading, attr) else 0.0 for c in cases)]
                                         for i in range(3)]} for s in names}
    omegas = [np.abs(c.loading.centrifugal.omega.values).max() for c in cases if c.loading.centrifugal is not None]
    if omegas:
        schema["centrifugal"] = {"omega_range": [0.0 if len(omegas) < len(cases) else min(omegas), max(omegas)]}
    return schema


def partition(mesh: Mesh, comm) -> tuple[Discretization, np.ndarray, np.ndarray]:
    """This rank's elements (recursive bisection of the element centroids, as the HF solver): its
    discretization, the nodes its elements touch ``(n_my_nodes,)`` and their dofs ``(3 n_my_nodes,)``."""
    centroids = np.concatenate([mesh.points[b.connectivity].mean(axis=1) for b in mesh.blocks])
    part = recursive_bisection(centroids, comm.Get_size())
    disc, message = None, None
    try:  # a bad element is found by the rank that owns it: raised on every rank (none left waiting)
        disc = Discretization(mesh, np.flatnonzero(part == comm.Get_rank()))
    except MeshError as exc:
        message = str(exc)
    raise_collectively(comm, message, MeshError)
    my_nodes = np.unique(np.concatenate([g.nodes.ravel() for g in disc.groups])) if disc.groups else np.zeros(0, int)
    return disc, my_nodes, (3 * my_nodes[:, None] + np.arange(3)).ravel()


def run_offline(cfg: OfflineConfig, comm: MPI.Comm | None = None, log=print) -> Path:
    """Build the reduced model described by ``cfg``; rank 0 writes ``cfg.output.file``."""
    comm = comm or MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    say = log if rank == 0 else (lambda *a, **k: None)
    n_stages = 7 + bool(cfg.output.plots) + bool(cfg.indicator.calibrate)
    stages, t_all = StageLog(progress=bar(n_stages, "offline stages", "stage", enabled=rank == 0)), time.perf_counter()

    t0 = time.perf_counter()
    mesh, cases = _read_cases(cfg, comm)
    materials = [(s, law_from_config(c)) for s, c in cases[0].materials]
    disc, my_nodes, rows = partition(mesh, comm)
    regions = MaterialRegions.build(mesh, disc, materials)
    offsets = element_point_offsets(mesh)
    n_points = int(offsets[-1])
    gidx = global_point_index(disc.point_elements, offsets)
    n_snap = sum(len(c.times) for c in cases)
    lift = OfflineLifting.build(comm, mesh, materials, cases, disc)  # prescribed displacements (or none)
    stages.add(comm, "read + partition", f"{len(cases)} cases, {n_snap} snapshots, {mesh.n_dofs} dofs",
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    # this rank's dofs only, (n_rows_local, n_s); case k in columns case_cols[k]
    snapshots = np.concatenate([c.displacements(my_nodes).reshape(len(c.times), -1).T for c in cases], axis=1)
    case_cols = np.cumsum([0] + [len(c.times) for c in cases])
    snapshots = lift.homogeneous(snapshots, cases, rows)  # the modes span u - sum_j b_j G_j
    mass = disc.mass_matrix(1.0).tocsr()[rows][:, rows]
    pod_u = pod(comm, snapshots, weight_local=mass, tolerance=cfg.pod.tolerance, max_modes=cfg.pod.max_modes,
                method=cfg.pod.method, global_rows=rows)
    n_modes = pod_u.modes_local.shape[1]
    phi = pod_u.modes_local  # (n_rows_local, N): this rank's rows of the modes
    eps_modes = (disc.strain_operator()[:, rows] @ phi).reshape(disc.n_points, 6, n_modes)
    stages.add(comm, "displacement POD", f"{n_modes} modes, energy error {pod_u.relative_energy_error():.1e}",
               time.perf_counter() - t0, say, arrays={"snapshots": (snapshots, mesh.n_dofs), "modes": (phi, mesh.n_dofs),
                                                      "mode strains": (eps_modes, n_points)})

    t0 = time.perf_counter()
    if "back_stress" in cfg.dual.quantities and not any("X_xx" in law.state_names for law in regions.laws):
        raise SnapshotError("dual.quantities lists 'back_stress', but no material of the snapshots has kinematic "
                            "hardening; remove it from dual.quantities")
    # one contiguous array per quantity, filled case by case: (n_loc, 6, n_s) and (n_loc, n_s)
    stress_snap = np.empty((disc.n_points, 6, n_snap))
    p_snap = np.empty((disc.n_points, n_snap))
    back = np.empty((disc.n_points, 6, n_snap)) if "back_stress" in cfg.dual.quantities else None
    for k, c in enumerate(cases):
        cols = slice(case_cols[k], case_cols[k + 1])
        rep = replay(disc, regions, c.loading, lift.total(snapshots[:, cols], c, rows).T, mesh.points, rows=rows)
        stress_snap[:, :, cols] = rep.stress.transpose(1, 2, 0)
        p_snap[:, cols] = rep.cumulated_plastic_strain.T
        if back is not None:
            back[:, :, cols] = rep.back_stress.transpose(1, 2, 0)
        del rep
    del snapshots  # (the calibration reads its own)
    stages.add(comm, "replay of the laws", f"{n_snap} snapshots x {n_points} points",
               time.perf_counter() - t0, say, arrays={"stress snapshots": (stress_snap, n_points)})

    t0 = time.perf_counter()
    dual_data = {"cumulated_plastic_strain": (p_snap, 1), "stress": (stress_snap.reshape(disc.n_points * 6, -1), 6)}
    if back is not None:  # (n_loc * 6, n_s), point-major rows like the stress (views, no copies)
        dual_data["back_stress"] = (back.reshape(disc.n_points * 6, -1), 6)
    del back
    duals = {}
    for name in cfg.dual.quantities:
        values, c = dual_data[name]
        grows = (c * gidx[:, None] + np.arange(c)).ravel()
        if comm.allreduce(float(max(values.max(initial=0.0), -values.min(initial=0.0))), op=MPI.MAX) == 0.0:
            duals[name] = (np.zeros((len(values), 0)), np.zeros(0), c, grows)
            continue
        res = pod(comm, values, weight_local=np.repeat(disc.point_weights, c), tolerance=cfg.dual.tolerance,
                  max_modes=cfg.dual.max_modes, method="gram", global_rows=grows)
        duals[name] = (res.modes_local, res.singular_values, c, grows)
    stages.add(comm, "dual POD", ", ".join(f"{k}: {v[0].shape[1]} modes" for k, v in duals.items()),
               time.perf_counter() - t0, say, arrays={f"dual basis {k}": (v[0], n_points * v[2])
                                                      for k, v in duals.items()})

    t0 = time.perf_counter()
    row_tol = cfg.ecm.row_tolerance or cfg.ecm.tolerance / 10
    keep_stress = cfg.indicator.calibrate or cfg.indicator.quantity == "stress"
    # the stress snapshots' last use is the integrand's, unless kept: then rotated in their own buffer
    G, n_rows, compression = integrand(comm, lift.integrand_modes(eps_modes), stress_snap, gidx,
                                       row_tolerance=row_tol, max_rows=cfg.ecm.max_rows,
                                       max_gram_rows=cfg.ecm.max_gram_rows, form=cfg.ecm.integrand,
                                       stress_compression=cfg.ecm.stress_compression, overwrite=not keep_stress)
    if not keep_stress:
        del dual_data["stress"], stress_snap  # (assembled: freed before the ECM; factored: G holds the buffer)
    t_ecm = time.perf_counter()
    quad = reduced_rule(comm, G, disc.point_weights, gidx, tolerance=cfg.ecm.tolerance,
                        max_points=cfg.ecm.max_points, log=say, **cfg.ecm.selection_keywords())
    ecm_seconds = time.perf_counter() - t_ecm  # the selection loop alone (the stage adds the integrand's rows)
    extra = [dual_points(comm, v[0], v[3], v[2]) for v in duals.values()]
    extra = np.setdiff1d(np.unique(np.concatenate(extra)) if extra else np.zeros(0, np.int64), quad.points)
    points = np.concatenate([quad.points, extra]).astype(np.int64)
    weights = np.concatenate([quad.weights, np.zeros(len(extra))])
    rows_text = f"{n_rows} -> {G.shape[0]} rows" if cfg.ecm.integrand == "assembled" else f"{n_rows} rows (factored)"
    if "stress_rank" in quad.extra:
        rows_text = (f"{n_rows} -> {G.shape[0]} rows (factored, {quad.extra['stress_rank']} rotated stresses"
                     f"{', continued on all rows' if quad.extra['continued'] else ''})")
    stages.add(comm, "empirical cubature", f"{rows_text}, {len(quad.points)} points "
               f"(+{len(extra)} dual), residual {quad.residual:.1e}, {quad.extra['n_selections']} selections",
               time.perf_counter() - t0, say, arrays={k: (v, n_points) for k, v in G.arrays().items()})

    t0 = time.perf_counter()
    # validation points: kept out of the reduced set, for the error indicator (structrom.rom.offline.calibration)
    val_points, val_weights = validation.select_validation_points(
        comm, gidx, disc.point_weights, G, points, p_snap, n_points, cfg.indicator.validation_points)
    del G
    val_pieces = {"integrator": validation.gather_at_points(comm, gidx, eps_modes, val_points),
                  "material": validation.gather_at_points(comm, gidx, regions.index.astype(float), val_points),
                  "lifting": validation.gather_at_points(comm, gidx, lift.eps, val_points) if lift else None,
                  "interp": comm.gather(validation.interpolation_rows(disc, gidx, val_points), root=0),
                  "duals": {k: validation.gather_at_points(comm, gidx, v[0].reshape(disc.n_points, v[2], -1),
                                                           val_points) for k, v in duals.items()}}
    stages.add(comm, "validation points", f"{len(val_points)} points, {int((val_weights > 0).sum())} weighted",
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    q_values, q_c = dual_data[cfg.indicator.quantity]
    # training values of the indicator quantity at the reduced points: its reference norm
    at_points = reduced_point_data(comm, disc, gidx, regions.index, eps_modes, points,
                                   {k: (v[0], v[2]) for k, v in duals.items()},
                                   extra={"indicator": q_values.reshape(disc.n_points, q_c, -1),
                                          **({"lifting": lift.eps} if lift else {})})
    # Reduced loads: sum over ranks of Phi_local^T f_local (element contributions are not shared, and a rank's
    # elements load only its own rows). The load vectors are kept on this rank's rows only (the calibration's).
    surfaces = sorted({s for c in cases for s in c.loading.pressures})
    phi_loads: dict = {"pressure": {s: disc.pressure_force(mesh.surface_set(s), 1.0)[rows] for s in surfaces}}
    pressure = {s: comm.allreduce(phi.T @ f) for s, f in phi_loads["pressure"].items()}
    # tractions (N, 3): unit traction along x, y, z; forces (N, 3): unit force at each node of the set, each
    # node counted by the lowest rank holding its rows
    phi_loads["traction"] = {s: np.stack([disc.traction_force(mesh.surface_set(s), e)[rows] for e in np.eye(3)],
                                         axis=1) for s in sorted({s for c in cases for s in c.loading.tractions})}
    traction = {s: comm.allreduce(phi.T @ f) for s, f in phi_loads["traction"].items()}
    force, unit_force = {}, {}
    force_sets = sorted({s for c in cases for s in c.loading.forces})
    if force_sets:
        holder = np.full(mesh.n_nodes, size, dtype=np.int64)
        holder[my_nodes] = rank
        comm.Allreduce(MPI.IN_PLACE, holder, op=MPI.MIN)
    for s in force_sets:
        nodes = mesh.node_set(s)
        nodes = nodes[holder[nodes] == rank]
        at = np.searchsorted(rows, 3 * nodes[:, None] + np.arange(3))  # (n, 3) local rows of the set's dofs
        force[s] = comm.allreduce(phi[at].sum(0).T)  # (N, 3)
        unit_force[s] = np.zeros((len(rows), 3))  # (n_rows_local, 3): the same unit forces as vectors
        unit_force[s][at, np.arange(3)] = 1.0
    phi_loads["force"] = unit_force
    density = np.zeros(disc.n_points)
    for law, pts in zip(regions.laws, regions.points):
        density[pts] = law.density
    centrifugal = axis = None
    phi_loads["centrifugal"] = phi_loads["gravity"] = None
    cents = [c.loading.centrifugal for c in cases if c.loading.centrifugal is not None]
    if cents:
        axis = (tuple(map(float, cents[0].axis_point)), tuple(map(float, cents[0].axis_direction)))
        if any((tuple(map(float, c.axis_point)), tuple(map(float, c.axis_direction))) != axis for c in cents):
            raise SnapshotError("training loadings rotate about different axes: one model needs one axis")
        phi_loads["centrifugal"] = disc.centrifugal_force(density, 1.0, np.array(axis[0]), np.array(axis[1]))[rows]
        centrifugal = comm.allreduce(phi.T @ phi_loads["centrifugal"])
    gravity = None
    if any(c.loading.gravity is not None for c in cases):
        phi_loads["gravity"] = np.stack([disc.body_force(e, density)[rows] for e in np.eye(3)], axis=1)
        gravity = comm.allreduce(phi.T @ phi_loads["gravity"])
    reaction_loads = lift.reaction_loads(comm, phi_loads, rows)
    stages.add(comm, "reduced operators", f"{len(points)} reduced points, {n_modes} modes",
               time.perf_counter() - t0, say)

    out = cfg.path(cfg.output.file)

    def build_model() -> model_file.ReducedModelData:
        """Rank 0: assemble the gathered pieces into the model's data."""
        interp = at_points["interpolation"]
        val_interp = validation.assemble_rows(val_pieces["interp"], len(val_points), mesh.n_nodes)
        t_nodes = np.union1d(np.unique(interp.indices), np.unique(val_interp.indices)).astype(np.int64)
        interp = interp[:, t_nodes]
        dual_bases = {k: model_file.DualBasis(c, at_points["duals"][k], sv) for k, (_, sv, c, _) in duals.items()}
        data = model_file.ReducedModelData(
            units=cases[0].units, materials=[law.to_config() for _, law in materials],
            loading_schema=loading_schema(cases, t_nodes), dirichlet=cases[0].dirichlet,
            provenance={"code_version": CODE_VERSION, "config": cfg.model_dump(mode="json"), "n_ranks": size,
                        "snapshots": [{"file": str(c.path), "sha256": c.sha256, "increments": len(c.times)}
                                      for c in cases],
                        "pod": {"modes": n_modes, "relative_energy_error": pod_u.relative_energy_error(),
                                # all singular values above round-off (the decay plot's data), descending
                                "singular_values_all": np.sqrt(np.maximum(pod_u.eigenvalues, 0.0)).tolist()},
                        "ecm": {"points": len(quad.points), "dual_points": len(extra), "residual": quad.residual,
                                "integrand_rows": n_rows, "integrand": cfg.ecm.integrand,
                                "selections": quad.extra["n_selections"],
                                "scorings": quad.extra["n_scorings"],
                                "shortlist_scorings": quad.extra.get("n_short_scorings", 0),
                                "condition": quad.extra.get("condition"),
                                "selection": quad.extra["selection"],
                                "seconds": ecm_seconds,
                                "row_compression": compression},
                        "stages": stages.provenance(),
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            singular_values=pod_u.singular_values, element=at_points["element"],
            point=points, weights=weights, coordinates=at_points["coordinates"],
            material=at_points["material"], integrator=at_points["integrator"],
            temperature_nodes=t_nodes, temperature_coordinates=mesh.points[t_nodes],
            temperature_interpolation=interp, pressure=pressure, centrifugal=centrifugal, centrifugal_axis=axis,
            gravity=gravity, traction=traction, force=force, duals=dual_bases,
            indicator_quantity=cfg.indicator.quantity,
            indicator_tolerance=cfg.indicator.tolerance,
            indicator_reference=float(np.linalg.norm(at_points["extra"]["indicator"], axis=(0, 1)).max(initial=0.0)))
        data.lifting = lift.model_data(at_points["extra"].get("lifting"),
                                       val_pieces["lifting"] if len(val_points) else None, reaction_loads)
        if len(val_points):
            data.validation = ValidationSet(
                point=val_points, integrator=val_pieces["integrator"], weights=val_weights,
                material=val_pieces["material"].round().astype(np.int64), interpolation=val_interp[:, t_nodes],
                duals={k: v.reshape(len(val_points) * v.shape[1], -1) for k, v in val_pieces["duals"].items()})
        return data

    def write_model(data) -> None:
        t0 = time.perf_counter()
        model_file.write(out, data, mesh, spilled["modes"], {k: spilled[f"dual {k}"] for k in duals})
        stages.add(MPI.COMM_SELF, "write model file", str(out), time.perf_counter() - t0, say)
        if cfg.output.plots:
            t0 = time.perf_counter()
            from structrom.rom.report import write_model_plots

            try:
                written = write_model_plots(out, out.with_name(out.stem + "_plots"))
                stages.add(MPI.COMM_SELF, "plots", f"{len(written)} files in {out.stem}_plots/",
                           time.perf_counter() - t0, say)
            except Exception as exc:  # noqa: BLE001 - the model is written; plots are a convenience
                say(f"offline: warning: plots not written ({type(exc).__name__}: {exc})")

    data, error = None, None
    if rank == 0:
        try:
            data = build_model()
        except Exception as exc:  # shared so that no rank waits forever
            error = exc
    error = comm.bcast(error, root=0)
    if error is not None:
        raise error
    if cfg.indicator.calibrate and len(cases) >= 2:
        t0 = time.perf_counter()
        data = calib.calibrate_from_cases(cfg, comm, disc, cases, mesh, rows, mass, gidx, dual_data, phi_loads,
                                          points, val_points, data, say, material_index=regions.index, lifting=lift)
        stages.add(comm, "indicator calibration", f"leave-one-out over {len(cases)} cases",
                   time.perf_counter() - t0, say)
    elif cfg.indicator.calibrate:
        say(f"offline: warning: indicator.calibrate needs at least 2 training cases and there is 1: the indicator "
            f"is not calibrated, its tolerance {cfg.indicator.tolerance:g} applies to the Gappy residual (give more "
            "snapshot files, or set indicator.calibrate = false)")
    # modes and dual bases: every rank spills its rows next to the output, rank 0 writes them by row blocks
    spill_dir = out.with_name(f".{out.name}.rows")
    spilled = {"modes": spill_rows(comm, spill_dir, "modes", rows, phi, mesh.n_dofs)}
    for i, (k, v) in enumerate(duals.items()):
        spilled[f"dual {k}"] = spill_rows(comm, spill_dir, f"dual{i}", v[3], v[0], n_points * v[2])
    if rank == 0:
        try:
            write_model(data)
            stages.progress.close()
            say(f"offline: done in {time.perf_counter() - t_all:.2f} s on {size} ranks\n" + stages.table())
        except Exception as exc:  # shared so that no rank waits forever
            error = exc
        finally:
            remove_spill(spill_dir)
    error = comm.bcast(error, root=0)
    if error is not None:
        raise error
    if cfg.greedy is not None:  # training loadings chosen by the indicator, each an enrichment of `out`
        from structrom.rom.offline.greedy import run_greedy

        run_greedy(cfg, out, comm, log)
    return out

