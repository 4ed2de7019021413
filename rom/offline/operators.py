"""Distributed pieces of a reduced model, shared by the offline stage, enrichment and greedy training.

:func:`distribute` partitions the elements as the offline stage does (recursive bisection of the
element centroids) and builds this rank's discretization; :func:`reduced_point_data` gathers the model's
arrays at a given point set on rank 0 (strains of the modes, coordinates, elements, materials, temperature
interpolation, Gappy bases: the offline stage's "reduced operators" and enrichment use this one
implementation); :func:`reduced_model_data` adds the reduced loads and assembles the model for enrichment.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import h5py
import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from structrom.mpi.assembly import gather_rows_to_root
from structrom.mpi.partition import recursive_bisection
from structrom.rom import model_file
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import Mesh
from structrom.rom.hifi.output import element_point_offsets, global_point_index
from structrom.rom.offline.replay import MaterialRegions

#: Rows read from a model file's full arrays at a time (bounds the memory of :func:`read_rows`).
READ_BLOCK = 65536


@dataclass
class Distribution:
    """This rank's share of the mesh: ``rows`` ``(n_rows,)`` global dofs touched by its elements,
    ``gidx`` ``(n_loc,)`` global numbers of its integration points, ``mass`` its element-assembled
    consistent mass on ``rows`` (unit density), ``n_points`` integration points of the whole mesh."""

    mesh: Mesh
    disc: Discretization
    regions: MaterialRegions
    gidx: np.ndarray
    nodes: np.ndarray
    rows: np.ndarray
    mass: sp.csr_matrix
    n_points: int

    def dual_rows(self, components: int) -> np.ndarray:
        """Global rows ``(n_loc * c,)`` of a point quantity with ``components`` values per point."""
        return (components * self.gidx[:, None] + np.arange(components)).ravel()


def distribute(mesh: Mesh, materials: list, comm: MPI.Comm) -> Distribution:
    """``materials``: ``[(element set or None, law)]``; same partition as the offline stage."""
    rank, size = comm.Get_rank(), comm.Get_size()
    centroids = np.concatenate([mesh.points[b.connectivity].mean(axis=1) for b in mesh.blocks])
    part = recursive_bisection(centroids, size)
    disc = Discretization(mesh, np.flatnonzero(part == rank))
    regions = MaterialRegions.build(mesh, disc, materials)
    offsets = element_point_offsets(mesh)
    gidx = global_point_index(disc.point_elements, offsets)
    nodes = np.unique(np.concatenate([g.nodes.ravel() for g in disc.groups])) if disc.groups else np.zeros(0, int)
    rows = (3 * nodes[:, None] + np.arange(3)).ravel()
    mass = disc.mass_matrix(1.0).tocsr()[rows][:, rows]
    return Distribution(mesh, disc, regions, gidx, nodes, rows, mass, int(offsets[-1]))


def read_rows(dataset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``dataset[rows]`` for sorted unique ``rows``, read block by block (never the whole dataset)."""
    out = np.zeros((len(rows),) + dataset.shape[1:])
    if not len(rows):
        return out
    for a in range(int(rows[0]) // READ_BLOCK * READ_BLOCK, int(rows[-1]) + 1, READ_BLOCK):
        sel = np.flatnonzero((rows >= a) & (rows < a + READ_BLOCK))
        if len(sel):
            block = dataset[a:min(a + READ_BLOCK, dataset.shape[0])]
            out[sel] = block[rows[sel] - a]
    return out


def local_at(gidx: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(which, loc)``: positions in ``points`` held by this rank and their local point indices."""
    order = np.argsort(gidx)
    if not len(gidx):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos = np.searchsorted(gidx[order], points)
    here = (pos < len(gidx)) & (gidx[order][np.minimum(pos, len(gidx) - 1)] == points)
    return np.flatnonzero(here), order[pos[here]]


@dataclass
class ReducedDuals:
    """A dual quantity's distributed Gappy basis: ``modes`` ``(n_loc * c, m)``, ``singular_values``
    ``(m,)``, ``components`` c, ``total_energy`` of the snapshots it compresses."""

    modes: np.ndarray
    singular_values: np.ndarray
    components: int
    total_energy: float


def reduced_point_data(comm: MPI.Comm, disc: Discretization, gidx: np.ndarray, material_index: np.ndarray,
                       eps_modes: np.ndarray, points: np.ndarray, duals: dict[str, tuple[np.ndarray, int]],
                       extra: dict[str, np.ndarray] | None = None) -> dict | None:
    """The model's arrays at the reduced ``points`` ``(n_rp,)`` gathered on rank 0 in the order of
    ``points`` (collective; None on the other ranks): ``integrator`` ``(n_rp, 6, N)`` from this rank's
    ``eps_modes`` ``(n_loc, 6, N)``, ``coordinates`` ``(n_rp, 3)``, ``element``, ``material`` ``(n_rp,)``
    (from ``material_index`` ``(n_loc,)``), ``interpolation`` CSR ``(n_rp, n_nodes)`` of the nodal
    temperatures (:meth:`~structrom.rom.fem.kernel.Discretization.temperature_operator`: the element mean
    where CalculiX uses it), ``duals`` quantity -> ``(n_rp * c, m)`` rows of the local Gappy bases ``duals``
    quantity -> ``((n_loc * c, m), c)``, and every ``extra`` array ``(n_loc, ...)`` at the points."""
    which, loc = local_at(gidx, points)
    piece = {"which": which, "integrator": eps_modes[loc], "coordinates": disc.point_coordinates[loc],
             "element": disc.point_elements[loc], "material": material_index[loc],
             "interp": disc.temperature_operator().tocsr()[loc],
             "duals": {k: m.reshape(disc.n_points, c, -1)[loc] for k, (m, c) in duals.items()},
             "extra": {k: v[loc] for k, v in (extra or {}).items()}}
    pieces = comm.gather(piece, root=0)
    if comm.Get_rank() != 0:
        return None
    n_rp = len(points)

    def assemble(get):
        first = get(pieces[0])
        arr = np.zeros((n_rp,) + first.shape[1:], dtype=first.dtype)
        for pc in pieces:
            arr[pc["which"]] = get(pc)
        return arr

    which_all = np.concatenate([pc["which"] for pc in pieces])
    out = {"integrator": assemble(lambda pc: pc["integrator"]), "coordinates": assemble(lambda pc: pc["coordinates"]),
           "element": assemble(lambda pc: pc["element"]).astype(np.int64),
           "material": assemble(lambda pc: pc["material"]).astype(np.int64),
           "interpolation": sp.vstack([pc["interp"] for pc in pieces]).tocsr()[np.argsort(which_all)],
           "duals": {k: assemble(lambda pc, k=k: pc["duals"][k]).reshape(n_rp * c, -1) for k, (_, c) in duals.items()},
           "extra": {k: assemble(lambda pc, k=k: pc["extra"][k]) for k in (extra or {})}}
    return out


def reduced_model_data(comm: MPI.Comm, dist: Distribution, modes_local: np.ndarray, points: np.ndarray,
                       weights: np.ndarray, duals: dict[str, ReducedDuals], *, surfaces: list[str],
                       centrifugal_axis, gravity: bool, base: model_file.ReducedModelData, lifting=None
                       ) -> tuple[model_file.ReducedModelData | None, np.ndarray | None, dict | None]:
    """The model at reduced ``points`` ``(n_rp,)`` with ``weights`` for the modes ``modes_local``
    ``(n_rows, N)`` and the ``duals``; other fields (units, materials, schema, indicator settings,
    provenance, versions) copied from ``base``. ``lifting``: the prescribed displacements'
    :class:`~structrom.rom.offline.lifting.OfflineLifting` on this rank's rows
    (:meth:`~structrom.rom.offline.lifting.OfflineLifting.at_rows`), or None: the model's ``lifting`` then has
    their strains at the points and their reaction loads (its ``validation`` is set by the caller). Returns
    ``(data, full modes (n_dofs, N), full dual bases)`` on rank 0, ``(None, None, None)`` elsewhere.
    Collective; every rank works on its rows only (unit loads and modes)."""
    mesh, disc, regions, rows = dist.mesh, dist.disc, dist.regions, dist.rows
    n_modes = modes_local.shape[1]
    eps = (disc.strain_operator()[:, rows] @ modes_local).reshape(disc.n_points, 6, n_modes)
    extra = {"lifting": lifting.eps} if lifting else None
    at = reduced_point_data(comm, disc, dist.gidx, regions.index, eps, points,
                            {k: (v.modes, v.components) for k, v in duals.items()}, extra=extra)
    del eps
    # unit loads at this rank's rows (a rank's elements load only its rows; summed over ranks below)
    unit: dict = {"pressure": {s: disc.pressure_force(mesh.surface_set(s), 1.0)[rows] for s in surfaces},
                  "traction": {}, "force": {}, "centrifugal": None, "gravity": None}
    density = np.zeros(disc.n_points)
    for law, pts in zip(regions.laws, regions.points):
        density[pts] = law.density
    if centrifugal_axis is not None:
        unit["centrifugal"] = disc.centrifugal_force(density, 1.0, np.array(centrifugal_axis[0]),
                                                     np.array(centrifugal_axis[1]))[rows]
    if gravity:
        unit["gravity"] = np.stack([disc.body_force(e, density)[rows] for e in np.eye(3)], axis=1)
    pressure = {s: comm.allreduce(modes_local.T @ f) for s, f in unit["pressure"].items()}
    centrifugal = None if unit["centrifugal"] is None else comm.allreduce(modes_local.T @ unit["centrifugal"])
    grav = None if unit["gravity"] is None else comm.allreduce(modes_local.T @ unit["gravity"])
    reaction_loads = lifting.reaction_loads(comm, unit, np.arange(len(rows))) if lifting else None
    full_modes = gather_rows_to_root(comm, rows, modes_local, mesh.n_dofs)
    full_duals = {k: gather_rows_to_root(comm, dist.dual_rows(v.components), v.modes, dist.n_points * v.components)
                  for k, v in duals.items()}
    full_lift = gather_rows_to_root(comm, rows, lifting.G, mesh.n_dofs) if lifting else None
    if comm.Get_rank() != 0:
        return None, None, None
    interp = at["interpolation"]
    t_nodes = np.unique(interp.indices)
    dual_bases = {k: model_file.DualBasis(v.components, at["duals"][k], v.singular_values) for k, v in duals.items()}
    data = model_file.ReducedModelData(
        units=base.units, materials=base.materials, loading_schema=base.loading_schema, dirichlet=base.dirichlet,
        provenance=dict(base.provenance), singular_values=np.zeros(n_modes), element=at["element"],
        point=np.asarray(points, np.int64), weights=np.asarray(weights, float), coordinates=at["coordinates"],
        material=at["material"], integrator=at["integrator"], temperature_nodes=t_nodes,
        temperature_coordinates=mesh.points[t_nodes], temperature_interpolation=interp[:, t_nodes],
        pressure=pressure, centrifugal=centrifugal, centrifugal_axis=centrifugal_axis, gravity=grav,
        duals=dual_bases, indicator_quantity=base.indicator_quantity, indicator_tolerance=base.indicator_tolerance,
        indicator_reference=base.indicator_reference, versions=list(base.versions))
    if lifting:
        data.lifting = dataclasses.replace(lifting, G=full_lift).model_data(at["extra"]["lifting"], None,
                                                                              reaction_loads)
    return data, full_modes, full_duals
