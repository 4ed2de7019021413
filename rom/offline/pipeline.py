"""The offline stage, distributed by element ownership (Casenave et al., arXiv 1812.07228, sec. 3).

Stages (each reported on rank 0 with sizes, time and peak memory):

1. read the training cases (rank 0) and broadcast; partition the elements as the HF solver does;
2. displacement POD in the mass product (:func:`structrom.rom.pod.pod`, element-assembled mass so interface
   nodes are not counted twice);
3. replay of the laws on every snapshot (strains, stresses, internal variables at this rank's points);
4. POD of the dual quantities at integration points (Gappy bases);
5. empirical cubature on the integrand ``eps(psi_i) : sigma_s`` (:mod:`structrom.rom.reduced_quadrature`), then the
   dual bases' Q-DEIM points added with zero weight;
6. reduced operators at the reduced points, reduced loads, full modes and bases gathered on rank 0,
   the model file written atomically (:mod:`structrom.rom.model_file`).
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from structrom.mpi.assembly import gather_rows_to_root
from structrom.mpi.partition import recursive_bisection
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import Mesh
from structrom.rom.hifi.output import element_point_offsets, global_point_index, read_mesh_group
from structrom.rom.loading import HotSpotTemperature, NodalTemperature, UniformTemperature
from structrom.rom.materials import law_from_config
from structrom.rom.offline import calibration as calib
from structrom.rom.offline import validation
from structrom.rom.online.indicator import ValidationSet
from structrom.rom.offline.config import OfflineConfig
from structrom.rom.offline.lifting import OfflineLifting, displacement_schema, unit_fields
from structrom.rom.offline.replay import MaterialRegions, replay
from structrom.rom.offline.snapshots import SnapshotError, TrainingCase, read_training_case
from structrom.rom.pod import pod
from structrom.rom.reduced_quadrature import compress_rows, empirical_cubature, integrand_rows
from structrom.rom import model_file
from structrom.rom.progress import bar

CODE_VERSION = "0.1.0"


@dataclass
class StageLog:
    rows: list[tuple[str, str, float, float]] = field(default_factory=list)
    progress: Any = None  # a structrom.rom.progress bar over the stages (rank 0), or None

    def add(self, comm, stage: str, sizes: str, seconds: float, log) -> None:
        rss = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, op=MPI.MAX)
        self.rows.append((stage, sizes, seconds, rss))
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix_str(f"done: {stage}")
        log(f"offline: {stage:<22s} {sizes:<48s} {seconds:8.2f} s  peak {rss:6.2f} GiB/rank")

    def table(self) -> str:
        lines = ["| stage | sizes | time [s] | peak RSS per rank [GiB] |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {s} | {z} | {t:.2f} | {m:.2f} |" for s, z, t, m in self.rows]
        return "\n".join(lines)


def _read_cases(cfg: OfflineConfig, comm) -> tuple[Mesh, list[TrainingCase]]:
    out: tuple | Exception | None = None
    if comm.Get_rank() == 0:
        try:
            import h5py

            files = cfg.snapshot_files()
            with h5py.File(files[0], "r") as f:
                if "mesh" not in f:
                    raise SnapshotError(f"{files[0]}: no /mesh group: not a structrom snapshot file")
                mesh = read_mesh_group(f["mesh"])
            cases = [read_training_case(p, mesh) for p in files]
            first = cases[0]
            for c in cases[1:]:
                if c.materials != first.materials:
                    raise SnapshotError(f"{c.path}: materials differ from {first.path}: one model needs one "
                                        "material assignment")
            unit_fields(cases)  # same Dirichlet sets and components in every case (values may differ)
            out = (mesh, cases)
        except Exception as exc:  # re-raised on every rank
            out = exc
    out = comm.bcast(out, root=0)
    if isinstance(out, Exception):
        raise out
    return out


def loading_schema(cases: list[TrainingCase]) -> dict:
    """Training ranges of the loading family (peaks of amplitudes, temperature-family parameters)."""
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


#: Q-DEIM pivots whose residual row norms are within this relative band of the largest tie; the lowest row
#: wins, so that symmetric meshes (exact ties up to rounding) select the same points for any rank count.
QDEIM_TIE_RTOL = 1e-8


def qdeim_rows(basis: np.ndarray) -> np.ndarray:
    """Q-DEIM pivots (Drmac and Gugercin 2016): the ``m`` rows of ``basis`` ``(n_rows, m)`` chosen by a
    row-pivoted QR of ``basis^T`` (largest residual row norm first, ties within :data:`QDEIM_TIE_RTOL`
    to the lowest row index). Returns ``(m,)`` row indices in pivot order.

    Residual row norms are downdated with one product ``basis @ q`` per pivot (no copy of ``basis``) and
    recomputed exactly, by row blocks, when they fall below 1e-6 of their initial values (cancellation).
    Not :func:`structrom.eim.deim.qdeim`: that one runs on distributed rows with elementwise column loops (bitwise the
    same for any partition of one basis) and breaks only exact ties; here the dual bases of different rank
    counts agree to rounding only, so near-ties need the band, and the gathered basis allows BLAS products
    (the stress basis has 6 rows per integration point: the column loops would dominate the offline stage)."""
    X = np.asarray(basis, dtype=float)
    n, m = X.shape
    piv = np.zeros(m, np.int64)
    Q = np.zeros((0, m))  # orthonormal directions of the pivots so far

    def exact_norms() -> np.ndarray:
        out = np.empty(n)
        for a in range(0, n, 65536):
            blk = X[a:a + 65536]
            res = blk - (blk @ Q.T) @ Q
            out[a:a + 65536] = np.einsum("ij,ij->i", res, res)
        return out

    norms = exact_norms()
    ref = norms.max(initial=0.0)
    for j in range(m):
        best = norms.max(initial=0.0)
        if best < 1e-6 * ref:
            norms, ref = exact_norms(), best
            best = norms.max(initial=0.0)
        if not best > 0.0:
            return piv[:j]
        i = int(np.flatnonzero(norms >= best * (1.0 - QDEIM_TIE_RTOL))[0])
        piv[j] = i
        q = X[i] - Q.T @ (Q @ X[i])
        q -= Q.T @ (Q @ q)  # twice is enough (Gram-Schmidt re-orthogonalization)
        q /= np.linalg.norm(q)
        Q = np.vstack([Q, q])
        norms = np.maximum(norms - (X @ q) ** 2, 0.0)
        norms[piv[:j + 1]] = 0.0
    return piv


def _qdeim_points(comm, basis_local: np.ndarray, rows_global: np.ndarray, n_rows: int, components: int) -> np.ndarray:
    """Q-DEIM (:func:`qdeim_rows`) on the gathered basis; returns the selected global points
    (rows // components), same on every rank."""
    full = gather_rows_to_root(comm, rows_global, basis_local, n_rows)
    sel = None
    if comm.Get_rank() == 0:
        sel = np.unique(qdeim_rows(full) // components) if full.shape[1] else np.zeros(0, np.int64)
    return comm.bcast(sel, root=0)


def partition(mesh: Mesh, comm) -> tuple[Discretization, np.ndarray, np.ndarray]:
    """This rank's elements (recursive bisection of the element centroids, as the HF solver): its
    discretization, the nodes its elements touch ``(n_my_nodes,)`` and their dofs ``(3 n_my_nodes,)``."""
    centroids = np.concatenate([mesh.points[b.connectivity].mean(axis=1) for b in mesh.blocks])
    part = recursive_bisection(centroids, comm.Get_size())
    disc = Discretization(mesh, np.flatnonzero(part == comm.Get_rank()))
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
    calibrate = cfg.indicator.calibrate and not lift
    if lift and cfg.indicator.calibrate:
        say(f"offline: warning: prescribed displacements {[f.key for f in lift.fields]}: the leave-one-out "
            "calibration of the indicator is not available for them yet; the model keeps the Gappy indicator")
    stages.add(comm, "read + partition", f"{len(cases)} cases, {n_snap} snapshots, {mesh.n_dofs} dofs",
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    snapshots = np.concatenate([c.displacements(my_nodes).reshape(len(c.times), -1).T for c in cases], axis=1)
    snapshots = lift.homogeneous(snapshots, cases, rows)  # the modes span u - sum_j b_j G_j
    mass = disc.mass_matrix(1.0).tocsr()[rows][:, rows]
    pod_u = pod(comm, snapshots, weight_local=mass, tolerance=cfg.pod.tolerance, max_modes=cfg.pod.max_modes,
                method=cfg.pod.method, global_rows=rows)
    n_modes = pod_u.modes_local.shape[1]
    phi = np.zeros((mesh.n_dofs, n_modes))
    phi[rows] = pod_u.modes_local
    eps_modes = (disc.strain_operator() @ phi).reshape(disc.n_points, 6, n_modes)
    del snapshots
    stages.add(comm, "displacement POD", f"{n_modes} modes, energy error {pod_u.relative_energy_error():.1e}",
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    if "back_stress" in cfg.dual.quantities and not any("X_xx" in law.state_names for law in regions.laws):
        raise SnapshotError("dual.quantities lists 'back_stress', but no material of the snapshots has kinematic "
                            "hardening; remove it from dual.quantities")
    stress, p, back = [], [], []
    for c in cases:
        rep = replay(disc, regions, c.loading, c.displacements(), mesh.points)
        stress.append(rep.stress)
        p.append(rep.cumulated_plastic_strain)
        if "back_stress" in cfg.dual.quantities:
            back.append(rep.back_stress)
    stress_snap = np.concatenate(stress, axis=0).transpose(1, 2, 0)  # (n_loc, 6, n_s)
    p_snap = np.concatenate(p, axis=0).T  # (n_loc, n_s)
    del stress, p
    stages.add(comm, "replay of the laws", f"{n_snap} snapshots x {comm.allreduce(disc.n_points)} points",
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    dual_data = {"cumulated_plastic_strain": (p_snap, 1), "stress": (stress_snap.reshape(disc.n_points * 6, -1), 6)}
    if back:  # (n_loc * 6, n_s), point-major rows like the stress
        dual_data["back_stress"] = (np.concatenate(back, axis=0).transpose(1, 2, 0).reshape(disc.n_points * 6, -1), 6)
    del back
    duals = {}
    for name in cfg.dual.quantities:
        values, c = dual_data[name]
        grows = (c * gidx[:, None] + np.arange(c)).ravel()
        if comm.allreduce(float(np.abs(values).max(initial=0.0)), op=MPI.MAX) == 0.0:
            duals[name] = (np.zeros((len(values), 0)), np.zeros(0), c, grows)
            continue
        res = pod(comm, values, weight_local=np.repeat(disc.point_weights, c), tolerance=cfg.dual.tolerance,
                  max_modes=cfg.dual.max_modes, method="gram", global_rows=grows)
        duals[name] = (res.modes_local, res.singular_values, c, grows)
    stages.add(comm, "dual POD", ", ".join(f"{k}: {v[0].shape[1]} modes" for k, v in duals.items()),
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    G = integrand_rows(lift.integrand_modes(eps_modes), stress_snap)
    n_rows = len(G)
    if n_rows > cfg.ecm.max_rows:
        G = compress_rows(comm, G, cfg.ecm.row_tolerance or cfg.ecm.tolerance / 10).compressed_local
    quad = empirical_cubature(comm, G, disc.point_weights, gidx, tolerance=cfg.ecm.tolerance,
                              max_points=cfg.ecm.max_points)
    extra = [_qdeim_points(comm, v[0], v[3], n_points * v[2], v[2]) for v in duals.values()]
    extra = np.setdiff1d(np.unique(np.concatenate(extra)) if extra else np.zeros(0, np.int64), quad.points)
    points = np.concatenate([quad.points, extra]).astype(np.int64)
    weights = np.concatenate([quad.weights, np.zeros(len(extra))])
    stages.add(comm, "empirical cubature", f"{n_rows} -> {len(G)} rows, {len(quad.points)} points "
               f"(+{len(extra)} dual), residual {quad.residual:.1e}", time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    # validation points: kept out of the reduced set, for the error indicator (structrom.rom.offline.calibration)
    val_points, val_weights = validation.select_validation_points(
        comm, gidx, disc.point_weights, G, points, p_snap, n_points, cfg.indicator.validation_points)
    val_pieces = {"integrator": validation.gather_at_points(comm, gidx, eps_modes, val_points),
                  "material": validation.gather_at_points(comm, gidx, regions.index.astype(float), val_points),
                  "lifting": validation.gather_at_points(comm, gidx, lift.eps, val_points) if lift else None,
                  "interp": comm.gather(validation.interpolation_rows(disc, gidx, val_points), root=0),
                  "duals": {k: validation.gather_at_points(comm, gidx, v[0].reshape(disc.n_points, v[2], -1),
                                                           val_points) for k, v in duals.items()}}
    stages.add(comm, "validation points", f"{len(val_points)} points, {int((val_weights > 0).sum())} weighted",
               time.perf_counter() - t0, say)

    t0 = time.perf_counter()
    # Rows of the reduced points held by this rank, in the order of `points`.
    order = np.argsort(gidx)
    pos = np.searchsorted(gidx[order], points)
    here = (pos < len(gidx)) & (gidx[order][np.minimum(pos, len(gidx) - 1)] == points) if len(gidx) else \
        np.zeros(len(points), bool)
    loc = order[pos[here]]
    interp = disc.temperature_operator().tocsr()[loc]
    piece = {"which": np.flatnonzero(here), "integrator": eps_modes[loc], "coordinates": disc.point_coordinates[loc],
             "element": disc.point_elements[loc], "material": regions.index[loc], "lifting": lift.eps[loc],
             "interp": interp, "duals": {k: v[0].reshape(disc.n_points, v[2], -1)[loc] for k, v in duals.items()},
             # training values of the indicator quantity at the reduced points (its reference norm)
             "indicator": dual_data[cfg.indicator.quantity][0].reshape(
                 disc.n_points, dual_data[cfg.indicator.quantity][1], -1)[loc]}
    pieces = comm.gather(piece, root=0)
    # Reduced loads: sum over ranks of Phi_local^T f_local (element contributions are not shared).
    surfaces = sorted({s for c in cases for s in c.loading.pressures})
    pressure = {s: comm.allreduce(phi.T @ disc.pressure_force(mesh.surface_set(s), 1.0)) for s in surfaces}
    # tractions (N, 3): unit traction along x, y, z; forces (N, 3): unit force at each node of the set, each
    # node counted by the lowest rank holding its rows
    traction = {s: np.stack([comm.allreduce(phi.T @ disc.traction_force(mesh.surface_set(s), e)) for e in np.eye(3)],
                            axis=1) for s in sorted({s for c in cases for s in c.loading.tractions})}
    holder = np.full(mesh.n_nodes, size, dtype=np.int64)
    holder[my_nodes] = rank
    comm.Allreduce(MPI.IN_PLACE, holder, op=MPI.MIN)
    force, unit_force = {}, {}
    for s in sorted({s for c in cases for s in c.loading.forces}):
        nodes = mesh.node_set(s)
        nodes = nodes[holder[nodes] == rank]
        force[s] = comm.allreduce(phi[3 * nodes[:, None] + np.arange(3)].sum(0).T)  # (N, 3)
        unit_force[s] = np.zeros((phi.shape[0], 3))  # (n_dofs, 3): the same unit forces as vectors
        unit_force[s][3 * nodes[:, None] + np.arange(3), np.arange(3)] = 1.0
    density = np.zeros(disc.n_points)
    for law, pts in zip(regions.laws, regions.points):
        density[pts] = law.density
    centrifugal = axis = None
    cents = [c.loading.centrifugal for c in cases if c.loading.centrifugal is not None]
    if cents:
        axis = (tuple(map(float, cents[0].axis_point)), tuple(map(float, cents[0].axis_direction)))
        if any((tuple(map(float, c.axis_point)), tuple(map(float, c.axis_direction))) != axis for c in cents):
            raise SnapshotError("training loadings rotate about different axes: one model needs one axis")
        centrifugal = comm.allreduce(phi.T @ disc.centrifugal_force(density, 1.0, np.array(axis[0]),
                                                                   np.array(axis[1])))
    gravity = None
    if any(c.loading.gravity is not None for c in cases):
        gravity = np.stack([comm.allreduce(phi.T @ disc.body_force(e, density)) for e in np.eye(3)], axis=1)
    phi_loads = {"pressure": {s: disc.pressure_force(mesh.surface_set(s), 1.0) for s in surfaces},
                 "traction": {s: np.stack([disc.traction_force(mesh.surface_set(s), e) for e in np.eye(3)], axis=1)
                              for s in traction},
                 "force": unit_force,
                 "centrifugal": (disc.centrifugal_force(density, 1.0, np.array(axis[0]), np.array(axis[1]))
                                 if centrifugal is not None else None),
                 "gravity": (np.stack([disc.body_force(e, density) for e in np.eye(3)], axis=1)
                             if gravity is not None else None)}
    reaction_loads = lift.reaction_loads(comm, phi_loads)
    full_modes = gather_rows_to_root(comm, rows, pod_u.modes_local, mesh.n_dofs)
    full_duals = {k: gather_rows_to_root(comm, v[3], v[0], n_points * v[2]) for k, v in duals.items()}
    stages.add(comm, "reduced operators", f"{len(points)} reduced points, {n_modes} modes",
               time.perf_counter() - t0, say)

    out = cfg.path(cfg.output.file)

    def build_model() -> model_file.ReducedModelData:
        """Rank 0: assemble the gathered pieces into the model's data."""
        t0 = time.perf_counter()
        n_rp = len(points)

        def assemble(key, shape):
            arr = np.zeros((n_rp,) + shape)
            for pc in pieces:
                arr[pc["which"]] = pc[key]
            return arr

        integrator = assemble("integrator", (6, n_modes))
        which = np.concatenate([pc["which"] for pc in pieces])
        interp = sp.vstack([pc["interp"] for pc in pieces]).tocsr()[np.argsort(which)]
        val_interp = validation.assemble_rows(val_pieces["interp"], len(val_points), mesh.n_nodes)
        t_nodes = np.union1d(np.unique(interp.indices), np.unique(val_interp.indices)).astype(np.int64)
        interp = interp[:, t_nodes]
        dual_bases = {}
        for k, (modes_k, sv, c, _) in duals.items():
            red = np.zeros((n_rp, c, modes_k.shape[1]))
            for pc in pieces:
                red[pc["which"]] = pc["duals"][k]
            dual_bases[k] = model_file.DualBasis(c, red.reshape(n_rp * c, -1), sv)
        data = model_file.ReducedModelData(
            units=cases[0].units, materials=[law.to_config() for _, law in materials],
            loading_schema=loading_schema(cases), dirichlet=cases[0].dirichlet,
            provenance={"code_version": CODE_VERSION, "config": cfg.model_dump(mode="json"), "n_ranks": size,
                        "snapshots": [{"file": str(c.path), "sha256": c.sha256, "increments": len(c.times)}
                                      for c in cases],
                        "pod": {"modes": n_modes, "relative_energy_error": pod_u.relative_energy_error(),
                                # all singular values above round-off (the decay plot's data), descending
                                "singular_values_all": np.sqrt(np.maximum(pod_u.eigenvalues, 0.0)).tolist()},
                        "ecm": {"points": len(quad.points), "dual_points": len(extra), "residual": quad.residual},
                        "stages": [{"stage": s, "sizes": z, "seconds": t, "peak_rss_gib": m}
                                   for s, z, t, m in stages.rows],
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            singular_values=pod_u.singular_values, element=assemble("element", ()).astype(np.int64),
            point=points, weights=weights, coordinates=assemble("coordinates", (3,)),
            material=assemble("material", ()).astype(np.int64), integrator=integrator,
            temperature_nodes=t_nodes, temperature_coordinates=mesh.points[t_nodes],
            temperature_interpolation=interp, pressure=pressure, centrifugal=centrifugal, centrifugal_axis=axis,
            gravity=gravity, traction=traction, force=force, duals=dual_bases,
            indicator_quantity=cfg.indicator.quantity,
            indicator_tolerance=cfg.indicator.tolerance,
            indicator_reference=float(np.linalg.norm(assemble("indicator", pieces[0]["indicator"].shape[1:]),
                                                     axis=(0, 1)).max(initial=0.0)))
        data.lifting = lift.model_data(assemble("lifting", (6, len(lift.fields))),
                                       val_pieces["lifting"] if len(val_points) else None, reaction_loads)
        if len(val_points):
            data.validation = ValidationSet(
                point=val_points, integrator=val_pieces["integrator"], weights=val_weights,
                material=val_pieces["material"].round().astype(np.int64), interpolation=val_interp[:, t_nodes],
                duals={k: v.reshape(len(val_points) * v.shape[1], -1) for k, v in val_pieces["duals"].items()})
        return data

    def write_model(data) -> None:
        t0 = time.perf_counter()
        model_file.write(out, data, mesh, full_modes, full_duals)
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
    if calibrate and len(cases) >= 2:
        t0 = time.perf_counter()
        data = calib.calibrate_from_cases(cfg, comm, disc, cases, mesh, rows, mass, gidx, dual_data, phi_loads,
                                          points, val_points, data, say, material_index=regions.index)
        stages.add(comm, "indicator calibration", f"leave-one-out over {len(cases)} cases",
                   time.perf_counter() - t0, say)
    if rank == 0:
        try:
            write_model(data)
            stages.progress.close()
            say(f"offline: done in {time.perf_counter() - t_all:.2f} s on {size} ranks\n" + stages.table())
        except Exception as exc:  # shared so that no rank waits forever
            error = exc
    error = comm.bcast(error, root=0)
    if error is not None:
        raise error
    if cfg.greedy is not None:  # training loadings chosen by the indicator, each an enrichment of `out`
        from structrom.rom.offline.greedy import run_greedy

        run_greedy(cfg, out, comm, log)
    return out

