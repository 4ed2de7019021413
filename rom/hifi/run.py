"""Run a HF computation from a configuration: read the mesh, solve every increment, write snapshots."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mpi4py import MPI

from structrom.mpi.assembly import gather_rows_to_root
from structrom.mpi.collectives import on_root
from structrom.mpi.linear_solver import LinearSolverOptions
from structrom.rom.config import ConfigError, check_output_file
from structrom.rom.fem.io import read_mesh
from structrom.rom.fem.mesh import Mesh, MeshError
from structrom.rom.hifi.config import HifiConfig
from structrom.rom.hifi.output import SnapshotWriter, element_point_offsets, global_point_index
from structrom.rom.hifi.solver import HifiSolver, NewtonSettings
from structrom.rom.loading import Loading, COMPONENT_NAMES
from structrom.rom.prescribed_overlap import displacement_overlap
from structrom.rom.materials import MaterialError, law_from_config


def load_mesh(path: Path, quadratic_hex: str = "C3D20") -> Mesh:
    """A mesh from any meshio format, a CalculiX/Abaqus ``.inp`` (sets and surfaces kept) or the ``/mesh``
    group of a structrom HDF5 file."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise FileNotFoundError("mesh file not found (mesh.file)")
    if suffix == ".inp":
        from structrom.rom.adapters.calculix import read_inp

        return read_inp(path)[0]
    if suffix in (".h5", ".hdf5"):
        import h5py

        from structrom.rom.hifi.output import read_mesh_group

        with h5py.File(path, "r") as f:
            return read_mesh_group(f["mesh"])
    return read_mesh(path, quadratic_hex=quadratic_hex)


def check_supports(mesh: Mesh, cfg: HifiConfig) -> None:
    """Refuse a problem whose stiffness is singular for want of supports: every connected part of the mesh
    (elements sharing nodes) must have each of x, y and z prescribed at some of its nodes by a ``[[boundary]]``
    (a necessary condition only: rotations are not checked). Without it the linear solver fails after every
    cutback, or a direct solver returns an arbitrary rigid-body position of the part."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    conn = [b.connectivity for b in mesh.blocks]
    first = np.concatenate([np.repeat(c[:, 0], c.shape[1]) for c in conn])  # each element's nodes to its first
    graph = coo_matrix((np.ones(len(first)), (first, np.concatenate([c.ravel() for c in conn]))),
                       shape=(mesh.n_nodes, mesh.n_nodes))
    n_parts, part = connected_components(graph, directed=False)
    element_parts = np.unique(part[np.concatenate([c[:, 0] for c in conn])])
    fixed = np.zeros((n_parts, 3), dtype=bool)
    for b in cfg.boundary:
        fixed[np.ix_(np.unique(part[mesh.node_set(b.node_set)]), [COMPONENT_NAMES[c] for c in b.components])] = True
    for k in element_parts:
        free = [name for name, i in COMPONENT_NAMES.items() if not fixed[k, i]]
        if free:
            nodes = np.flatnonzero(part == k)
            where = "the mesh" if len(element_parts) == 1 else (
                f"part {list(element_parts).index(k) + 1} of {len(element_parts)} disconnected parts of the mesh "
                f"({len(nodes)} nodes, one at {tuple(mesh.points[nodes[0]].tolist())})")
            raise ConfigError(f"boundary: no [[boundary]] prescribes {', '.join(free)} on {where}: the stiffness is "
                              "singular (a rigid-body motion is free); add a [[boundary]] on a node set of it")


def check_material_sets(mesh: Mesh, cfg: HifiConfig) -> None:
    """Refuse two ``[[material]]`` tables on the same elements (the first listed took them, the other was
    ignored there without a word), and a table that gets no element: an empty element set, or the table
    without element_set when the others cover the mesh (both ignored without a word before)."""
    sets = [(i, m.element_set, mesh.element_set(m.element_set)) for i, m in enumerate(cfg.material)
            if m.element_set is not None]
    for i, name, elements in sets:
        if not len(elements):
            raise ConfigError(f"material[{i}] (element_set {name!r}) holds no element: the set is empty in the mesh "
                              f"{cfg.mesh.file}; name a set with elements, or remove the table")
    default = [i for i, m in enumerate(cfg.material) if m.element_set is None]
    covered = np.unique(np.concatenate([e for _, _, e in sets])) if sets else np.zeros(0, np.int64)
    if default and len(covered) == mesh.n_elements:
        raise ConfigError(f"material[{default[0]}] (no element_set: the elements no other table holds) gets no "
                          f"element: {', '.join(f'material[{i}]' for i, _, _ in sets)} hold all {mesh.n_elements} "
                          "elements; remove it, or give the others fewer elements")
    for a, (i, name_i, el_i) in enumerate(sets):
        for j, name_j, el_j in sets[a + 1:]:
            both = np.intersect1d(el_i, el_j)
            if len(both):
                raise ConfigError(f"material[{i}] (element_set {name_i!r}) and material[{j}] (element_set "
                                  f"{name_j!r}) both hold {len(both)} elements: give each element one material")


def check_boundary_overlaps(mesh: Mesh, cfg: HifiConfig, loading: Loading | None = None) -> None:
    """Refuse two ``[[boundary]]`` tables that prescribe the same node and component with different values
    (value x amplitude(t) at some time of the loading): the last table took the node without a word. The same
    history on shared nodes (two symmetry faces sharing an edge, both 0) is accepted. ``loading``: the
    configuration's (built if not given)."""
    loading = loading or cfg.build_loading()
    overlap = displacement_overlap(loading.displacements, mesh.node_set, loading.times)
    if overlap is not None:
        labels = tuple(f"boundary[{i}] (node_set {cfg.boundary[i].node_set!r})"
                       for i in (overlap.first, overlap.second))
        raise ConfigError(f"{cfg.base_dir}: boundary: {overlap.message(labels, mesh.points)}")


def check_temperature(mesh: Mesh, cfg: HifiConfig, loading: Loading | None = None) -> None:
    """Refuse a nodal temperature file (``loading.temperature``, ``type = "nodal"``) with another number of
    columns than the mesh has nodes (an error at the first increment without the file's name before).
    ``loading``: the configuration's (built if not given; building it refuses rows whose ``times`` do not span
    the loading's, naming the file: :meth:`HifiConfig.build_loading`)."""
    if cfg.loading.temperature.get("type") != "nodal":
        return
    loading = loading or cfg.build_loading()
    field, path = loading.temperature, cfg.path(str(cfg.loading.temperature.get("file")))
    n = field.values.shape[1]
    if n != mesh.n_nodes:
        raise ConfigError(f"{path}: loading.temperature.file has {n} values per row but the mesh has {mesh.n_nodes} "
                          "nodes: write one column per mesh node (in the mesh's node order)")


def check_problem(cfg: HifiConfig, mesh: Mesh) -> tuple[Loading, list]:
    """Every check of a configured problem that needs no solve (supports, material sets and laws, loading,
    boundary overlaps, nodal temperature file); returns the loading and ``[(elements or None, law)]``.
    Raises :class:`ConfigError` / :class:`MaterialError` / :class:`~structrom.rom.loading.LoadingError`."""
    check_supports(mesh, cfg)
    check_material_sets(mesh, cfg)
    loading = cfg.build_loading()
    check_boundary_overlaps(mesh, cfg, loading)
    check_temperature(mesh, cfg, loading)
    materials = []
    for i, m in enumerate(cfg.material):
        try:
            law = law_from_config(m.law)
        except ValueError as exc:
            raise MaterialError(f"material[{i}].law: {exc}") from None
        elements = None if m.element_set is None else mesh.element_set(m.element_set)
        materials.append((elements, law))
    return loading, materials


def build_solver(cfg: HifiConfig, mesh: Mesh, comm: MPI.Comm, log=print) -> HifiSolver:
    loading, materials = check_problem(cfg, mesh)
    orphans = mesh.unused_nodes()
    if len(orphans) and comm.Get_rank() == 0:
        log(f"warning: {cfg.mesh.file}: {len(orphans)} nodes belong to no element (one at "
            f"{tuple(mesh.points[orphans[0]].tolist())}): they have no stiffness and are held at zero displacement "
            "(as CalculiX reports them)")
    lin = cfg.solver.linear
    return HifiSolver(
        mesh, materials, loading,
        newton=NewtonSettings(cfg.solver.newton_rtol, cfg.solver.newton_max_iterations, cfg.solver.max_cutbacks),
        linear=LinearSolverOptions(lin.ksp_type, lin.pc_type, lin.rtol, max_it=lin.max_it,
                                   reuse_preconditioner=lin.reuse_preconditioner,
                                   eisenstat_walker=lin.eisenstat_walker, eta_max=lin.eta_max,
                                   petsc_options=lin.petsc_options),
        comm=comm, log=log)


def run_hifi(cfg: HifiConfig, comm: MPI.Comm | None = None, log=print, mesh: Mesh | None = None,
             inputs: Sequence[Path] = (), metadata: dict | None = None) -> Path:
    """Solve the configured problem on ``comm``; rank 0 writes ``cfg.output.file``. Returns its path.
    ``inputs``: files of the run besides the mesh (its configuration) that the output must not overwrite;
    ``metadata``: entries added to the file's metadata (e.g. ``solver``: where the problem came from)."""
    comm = comm or MPI.COMM_WORLD
    rank = comm.Get_rank()
    out = cfg.path(cfg.output.file)
    # an output that would overwrite an input, or that cannot be written, refused before the solve on every rank
    on_root(comm, lambda: check_output_file(out, "output.file", [cfg.path(cfg.mesh.file), *inputs]))
    if mesh is None:
        mesh_or_error = None
        if rank == 0:
            try:
                mesh_or_error = load_mesh(cfg.path(cfg.mesh.file), cfg.mesh.quadratic_hex)
            except Exception as exc:  # reported identically on every rank below
                mesh_or_error = MeshError(f"{cfg.path(cfg.mesh.file)}: {exc}")
        mesh_or_error = comm.bcast(mesh_or_error, root=0)
        if isinstance(mesh_or_error, Exception):
            raise mesh_or_error
        mesh = mesh_or_error
    t0 = time.perf_counter()
    solver = build_solver(cfg, mesh, comm, log)
    offsets = element_point_offsets(mesh)
    gidx = global_point_index(solver.disc.point_elements, offsets)
    n_points = int(offsets[-1])
    meta = {k: gather_rows_to_root(comm, gidx, v, n_points) for k, v in (
        ("element", solver.disc.point_elements.astype(float)), ("weights", solver.disc.point_weights),
        ("coordinates", solver.disc.point_coordinates))}
    writer = None
    if rank == 0:
        metadata = {"config": cfg.model_dump(mode="json"), "n_ranks": comm.Get_size(),
                    "units": cfg.units.model_dump(), **(metadata or {})}
        writer = SnapshotWriter(out, mesh, metadata, meta["element"].astype(np.int64), meta["weights"],
                                meta["coordinates"], point_fields=cfg.output.integration_point_fields,
                                xdmf=cfg.output.xdmf)

    def on_increment(s: HifiSolver, res) -> None:
        fields = {k: gather_rows_to_root(comm, gidx, v, n_points) for k, v in s.point_fields().items()}
        if writer is not None:
            writer.append(res.time, res.newton_iterations, res.residual, res.cutbacks,
                          {"displacement": s.u.reshape(-1, 3), "temperature": s.temperature}, fields)

    ok = False
    try:
        solver.run(on_increment)
        ok = True
    finally:
        if writer is not None:
            writer.close(ok)
    if rank == 0:
            log(f"hifi: done in {time.perf_counter() - t0:.2f} s; wrote {out}" + (" and .xdmf" if cfg.output.xdmf else ""))
    return out
