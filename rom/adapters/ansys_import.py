"""Ansys static results -> training cases of the offline stage (``structrom import ansys``).

Input: one ``.rst`` per training loading (the same mesh in each), as far as ``ansys-mapdl-reader`` reads
them: the mesh (:func:`~.ansys.read_ansys_result`), nodal displacements of every result set, nodal
temperatures when the file has them (else the material's reference temperature), the isotropic material
of the file (``EX``, ``NUXY``/``PRXY``, ``ALPX``, ``DENS``, ``REFT``) as a linear elastic law, the
constraints (``D``) and nodal forces (``F``) of every set. What the file does not hold must be given:

* ``material``: a law configuration (:func:`structrom.rom.materials.law_from_config`) for all elements,
  e.g. for plasticity (the ``.rst`` has no ``TB`` tables the reader exposes) or several materials;
* ``fixed``: ``{node component: "XYZ"}`` when the file has no constraint records.

Refused by name: non-static analyses (modal, harmonic, transient...; header ``kan``), large deflection
(``NLGEOM``), non-zero prescribed displacements, result files without any load (no ``F`` record, no
pressure and uniform temperatures), meshes that differ between the files, ``D``/``F`` records on nodes that are not
on the solid elements (e.g. the pilot node of a remote load).

Every record is read in ansys-mapdl-reader's process (:mod:`.ansys_records`): a file damaged in its ``D``/``F``,
temperature or any other record is refused naming the file, the set and the record, and the caller lives on.

Pressures: the ``.rst`` records the reader exposes hold no surface loads; they come from the run's archive
(``cdb``: one ``.cdb`` per run, or one for all runs), its ``SFE``/``SFEBLOCK`` ``PRES`` loads
(:func:`~.ansys_pressure.read_cdb_pressures`) being the values at the end of the run's single load step,
ramped from 0 at time 0 (``KBC,1`` in the archive: stepped). Faces loaded alike in every run (same value
per run) form one surface ``PRESSURE_<k>``. A run with several load steps and pressures is refused (one
archive holds one load state).

Output (as :mod:`.calculix_import`): ``mesh.inp`` (with ``FIXED_<XYZ>`` and ``FORCE_<k>`` node sets and
``PRESSURE_<k>`` surfaces), ``train/<name>.h5``, ``offline.toml`` and ``family.json`` (parameters: the peak
force components, peak pressures and temperature extremes that differ between the runs, with ranges).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..config import write_toml
from .ansys import AnsysError, _reader, check_magnitudes, read_ansys_result
from .ansys_records import ANALYSIS_TYPES, LoadRecords, NodalRecords, load_records

__all__ = ["import_ansys", "ANALYSIS_TYPES"]


def _aligned(node_ids: np.ndarray, nnum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in our node order of Ansys numbers ``nnum`` and the mask of those on our mesh."""
    order = np.argsort(node_ids)
    pos = np.minimum(np.searchsorted(node_ids[order], nnum), len(node_ids) - 1)
    hit = node_ids[order][pos] == nnum
    return order[pos], hit


def _records(records: NodalRecords | None, k: int, what: str, node_ids: np.ndarray, path: Path) -> np.ndarray | None:
    """``(n_nodes, 3)`` values of the constraint (``D``) or force (``F``) ``records`` of set ``k``, NaN where a
    dof has no record; None when the set has no such records. Records on nodes off the mesh are refused."""
    if records is None:
        return None
    nnum, component, values = records
    label = "constraint (D)" if what == "D" else "force (F)"
    out = np.full((len(node_ids), 3), np.nan)
    pos, hit = _aligned(node_ids, nnum)
    if not hit.all():
        raise AnsysError(f"{path}: result set {k + 1}: {label} records on nodes {np.unique(nnum[~hit])[:5].tolist()} "
                         "that no converted solid element uses (a pilot node of a remote load or constraint, or a "
                         "node of a skipped element): apply them on the solid's nodes")
    take = hit & (component >= 0)
    out[pos[take], component[take]] = values[take]
    check_magnitudes(out, f"{path}: result set {k + 1}: {label} records", node_ids)
    return out


def _material(records: LoadRecords, path: Path) -> dict:
    mats = records.materials
    if len(mats) != 1:
        raise AnsysError(f"{path}: {len(mats)} materials in the file: give the law with --material (one law for "
                         "all elements)")
    m = next(iter(mats.values()))
    if "EX" not in m:
        raise AnsysError(f"{path}: the material has no EX: give the law with --material")
    tables = sorted(k for k in ("EX", "NUXY", "PRXY", "ALPX", "REFT", "DENS") if np.size(m.get(k, 0.0)) != 1)
    if tables:
        raise AnsysError(f"{path}: temperature-dependent {', '.join(tables)} (MPDATA tables): the import reads "
                         "constant properties; give the law with --material")
    law = {"type": "linear_elastic", "young": float(m["EX"]), "poisson": float(m.get("NUXY", m.get("PRXY", 0.3)))}
    if m.get("ALPX"):
        law["expansion"] = float(m["ALPX"])
        law["reference_temperature"] = float(m.get("REFT", 0.0))
    if m.get("DENS"):
        law["density"] = float(m["DENS"])
    return law


def _pressure_groups(runs, paths, cdb, log=lambda msg: None) -> tuple[dict[str, np.ndarray],
                                                                      list[dict[str, tuple[float, bool]]]]:
    """Surfaces ``PRESSURE_<k>`` ``(n_faces, 2)`` of the faces loaded alike in every run, and per run
    ``{surface: (value, ramped)}`` (absent: not loaded in that run)."""
    from .ansys_pressure import read_cdb_pressures

    if not cdb:
        return {}, [{} for _ in runs]
    cdb = [Path(c) for c in cdb]
    if len(cdb) not in (1, len(paths)):
        raise AnsysError(f"--cdb: {len(cdb)} archives for {len(paths)} result files: give one archive per result "
                         "file (in the same order) or one for all")
    cdb = cdb * len(paths) if len(cdb) == 1 else cdb
    read = {}
    per_run = []
    base = runs[0]  # the mesh written (the runs' meshes are checked equal)
    for r, path, c in zip(runs, paths, cdb):
        if c not in read:
            log(f"  reading {c}")
            read[c] = read_cdb_pressures(c, base.mesh, base.node_ids, base.element_ids)
        p = read[c]
        if len(p.values) and r.records.load_steps > 1:
            raise AnsysError(f"{path}: {r.records.load_steps} load steps: the pressures of {c} are one load state; "
                             "import runs of one load step when they carry pressures")
        per_run.append(p)
    keys, inverse = np.unique(np.concatenate([p.faces for p in per_run]), axis=0, return_inverse=True)
    run_of = np.repeat(np.arange(len(per_run)), [len(p.faces) for p in per_run])
    table = np.zeros((len(keys), len(per_run)))  # value of each loaded face (row) in each run (column)
    table[inverse.reshape(-1), run_of] = np.concatenate([p.values for p in per_run])
    loaded = np.any(table != 0.0, axis=1)
    keys, table = keys[loaded], table[loaded]
    surfaces, amplitudes = {}, [{} for _ in per_run]
    if not len(keys):
        return surfaces, amplitudes
    _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    for g in np.argsort(first):  # surfaces numbered in face order
        name = f"PRESSURE_{len(surfaces) + 1}"
        surfaces[name] = keys[inverse.reshape(-1) == g]
        for j, p in enumerate(per_run):
            if table[first[g], j] != 0.0:
                amplitudes[j][name] = (float(table[first[g], j]), p.ramped)
    return surfaces, amplitudes


def import_ansys(results: list[str | os.PathLike], out: str | os.PathLike, *, material: dict | None = None,
                 fixed: dict[str, str] | None = None, units: dict | None = None,
                 cdb: list[str | os.PathLike] | None = None, log=lambda msg: None):
    """Import Ansys static result files (one per training loading) into training cases in ``out`` (module
    docstring). Returns the family dict written to ``family.json``. Raises :class:`AnsysError` naming the
    file and what cannot be imported."""
    from ..fem.kernel import Discretization
    from ..loading import Amplitude, Loading, NodalTemperature, UniformTemperature, VectorAmplitude
    from ..materials import law_from_config
    from .inp_writer import write_mesh_inp
    from .training_cases import group_nodes_by_history, imported_offline_config, write_training_snapshot

    paths = [Path(p) for p in results]
    if not paths:
        raise AnsysError("no result files given: one .rst per training loading is needed")
    _reader()  # (a broken install named before any process starts)
    runs = []
    for path in paths:
        log(f"  reading {path}")
        r = read_ansys_result(path, records=load_records)  # (analysis type refused there, before the records)
        for phrase in r.skipped:
            log(f"  skipped: {phrase}")
        if runs and (r.mesh.points.shape != runs[0].mesh.points.shape
                     or not np.allclose(r.mesh.points, runs[0].mesh.points) or not np.array_equal(
                         r.node_ids, runs[0].node_ids)):
            raise AnsysError(f"{path}: its mesh differs from {paths[0]}'s; all runs must share one mesh")
        if np.isnan(r.displacement).any():
            raise AnsysError(f"{path}: displacements missing at some nodes (OUTRES,NSOL for all nodes)")
        runs.append(r)
    mesh, node_ids = runs[0].mesh, runs[0].node_ids
    n = mesh.n_nodes
    law = material if material is not None else _material(runs[0].records, paths[0])
    law_from_config(law)  # a bad law fails here, naming the field
    reference = float(law.get("reference_temperature", 0.0)) if isinstance(law, dict) else 0.0
    temps, forces, fixed_mask = [], [], np.zeros((n, 3), bool)
    for r, path in zip(runs, paths):
        t = np.full((len(r.times) + 1, n), reference)
        for k, (nnum, v) in enumerate(r.records.temperatures or []):  # (none: the reference temperature)
            pos, hit = _aligned(node_ids, nnum)
            t[k + 1, pos[hit]] = v[hit]
        for k in range(len(r.times)):
            check_magnitudes(t[k + 1], f"{path}: result set {k + 1}: nodal temperatures", node_ids)
        temps.append(np.nan_to_num(t, nan=reference))
        f = np.zeros((len(r.times) + 1, n, 3))
        for k in range(len(r.times)):
            d = _records(r.records.constraints[k], k, "D", node_ids, path)
            if d is not None:
                if np.any(np.nan_to_num(d) != 0.0):
                    raise AnsysError(f"{path}: result set {k + 1}: non-zero prescribed displacements (D): the "
                                     "reduced model has homogeneous Dirichlet conditions only (yet)")
                fixed_mask |= ~np.isnan(d)
            load = _records(r.records.forces[k], k, "F", node_ids, path)
            if load is not None:
                f[k + 1] = np.nan_to_num(load)
        forces.append(f)
    for name, comps in (fixed or {}).items():
        if name not in mesh.node_sets:
            raise AnsysError(f"--fixed {name}: not a node component of {paths[0]} (components: "
                             f"{sorted(mesh.node_sets)})")
        for c in comps.upper():
            if c not in "XYZ":
                raise AnsysError(f"--fixed {name}:{comps}: components are letters of XYZ")
            fixed_mask[mesh.node_sets[name], "XYZ".index(c)] = True
    if not fixed_mask.any():
        raise AnsysError(f"{paths[0]}: no constraint (D) records: give the fixed node components with --fixed "
                         "NAME:XYZ")
    surfaces, pressures = _pressure_groups(runs, paths, cdb, log)
    if not surfaces and all(not f.any() for f in forces) and all(np.all(t == t[0, 0]) for t in temps):
        raise AnsysError(f"{paths[0]}: no nodal forces (F), no pressures and uniform temperatures in every run: no "
                         "loading to learn (pressures are not in the .rst records the reader exposes: give each "
                         "run's archive with its SFE loads, --cdb RUN.cdb)")
    out = Path(out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    code = fixed_mask @ np.array([1, 2, 4])
    boundary = []
    for c in sorted(set(code.tolist()) - {0}):
        comps = [x for i, x in enumerate("XYZ") if c & (1 << i)]
        name = "FIXED_" + "".join(comps)
        mesh.node_sets[name] = np.flatnonzero(code == c)
        boundary.append({"node_set": name, "components": [x.lower() for x in comps], "value": 0.0})
    groups = group_nodes_by_history(forces, n)
    for g, (nodes, _) in enumerate(groups):
        mesh.node_sets[f"FORCE_{g + 1}"] = nodes
    mesh.surface_sets.update(surfaces)
    mesh_file = out / "mesh.inp"
    write_mesh_inp(mesh_file, mesh, all_nset=None, all_elset=None)
    disc = Discretization(mesh)
    values, snapshots = {}, []
    for i, (r, path, temp) in enumerate(zip(runs, paths, temps)):
        times = np.concatenate([[0.0], r.times])
        if np.any(np.diff(times) <= 0):
            raise AnsysError(f"{path}: result times {r.times.tolist()[:8]} must be > 0 and increasing")
        loads = {f"FORCE_{g + 1}": VectorAmplitude(tuple(Amplitude(times, vec[i][:, c].copy()) for c in range(3)))
                 for g, (_, vec) in enumerate(groups) if vec[i] is not None}
        temperature = (UniformTemperature(0.0, Amplitude(times, temp[:, 0].copy())) if np.all(temp == temp[:, :1])
                       else NodalTemperature(times, temp))
        ramp = {True: times / times[-1], False: np.r_[0.0, np.ones(len(times) - 1)]}
        surface_loads = {s: Amplitude(times, value * ramp[ramped]) for s, (value, ramped) in pressures[i].items()}
        loading = Loading(times, temperature, pressures=surface_loads, forces=loads)
        name = path.stem if path.stem not in values else f"{path.stem}_{i}"
        snapshots.append(write_training_snapshot(
            out / "train" / f"{name}.h5", mesh, mesh_file, disc, materials=[(None, law)], boundary=boundary,
            loading=loading, displacement=r.displacement, temperature=temp[1:], units=units,
            solver={"name": "ansys", "imported_from": [str(path.resolve())]}))
        v = {f"force.{s}.{x}": float(a.values[np.argmax(np.abs(a.values))])
             for s, vec in loads.items() for x, a in zip("xyz", vec.components)}
        v.update({f"pressure.{s}": value for s, (value, _) in pressures[i].items()})
        v.update({"temperature.min": float(temp.min()), "temperature.max": float(temp.max())})
        values[name] = v
        log(f"  {name}: {len(r.times)} result sets to t = {r.times[-1]:g}")
    keys = sorted(set().union(*values.values()))
    table = {k: [v.get(k, 0.0) for v in values.values()] for k in keys}
    ranges = {k: [min(x), max(x)] for k, x in table.items() if max(x) - min(x) > 1e-12 * max(1.0, abs(max(x)))}
    family = {"source": "detected (inputs that differ between the runs)", "runs": list(values),
              "values": {r: {k: v.get(k, 0.0) for k in ranges} for r, v in values.items()}, "ranges": ranges,
              "material": law, "fixed": {b["node_set"]: len(mesh.node_sets[b["node_set"]]) for b in boundary},
              "forces": {f"FORCE_{g + 1}": len(nodes) for g, (nodes, _) in enumerate(groups)},
              "pressures": {s: len(faces) for s, faces in surfaces.items()}, "skipped": runs[0].skipped}
    atomic_write_text(out / "family.json", json.dumps(family, indent=1))
    write_toml(out / "offline.toml", imported_offline_config(law.get("type") != "linear_elastic"),
               f"written by structrom import ansys from {len(paths)} result files")
    family["snapshots"] = [str(p) for p in snapshots]
    return family
