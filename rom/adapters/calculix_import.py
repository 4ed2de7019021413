"""A user's CalculiX runs -> training cases of the offline stage (``structrom import calculix``).

Input: the base deck and one run per training loading: the run's deck (same mesh and materials, its own
loads, temperatures and steps) and its results, ``.frd`` and/or ``.dat`` (``*NODE FILE U`` or
``*NODE PRINT U`` on all nodes; ``*EL PRINT S, E, PEEQ`` adds integration-point reference fields), found,
read and checked by :mod:`.calculix_import_runs`; or decks only, solved by the in-house HF solver
(:mod:`.calculix_import_hf`) or run through ccx here (``solve="ccx"``: :mod:`.calculix_import_ccx`).
Output, in ``out``:

* ``mesh.inp``: the base deck's mesh with its sets, plus the surfaces and node sets the loads need
  (faces loaded by the same pressure history in every run form one surface ``PRESSURE_<k>``; nodes with
  the same fixed components one node set ``FIXED_<XYZ>``; prescribed dofs ``PRESCRIBED_<k>_<c>``);
* ``train/<run>.h5``: one snapshot file per run (``docs/hdf5_layout.md``) whose metadata holds the
  HifiConfig of the run (mesh, laws from the deck's materials, boundary, loading at the result times), as
  :func:`structrom.rom.offline.snapshots.read_training_case` reads them;
* ``offline.toml``: an offline configuration over ``train/*.h5`` (``structrom offline out/offline.toml``);
* ``family.json`` / ``family.npz``: the parameters (CSV columns, or the inputs that differ between the
  runs) with their per-run values and ranges, and the per-node min/max envelope of the nodal temperature
  over all runs and times (:func:`temperature_envelope_violations` flags a field outside it).

The loading of a run is sampled at ``[0, result times...]`` (ccx total times): our HF solver and the
reduced model evaluate loads and temperatures at increment ends only, so nothing is lost for runs whose
every increment is in the results (ccx's default output frequency).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .calculix_deck import Deck, not_supported, read_cards, read_deck
from .calculix_error import CalculixError
from .calculix_import_runs import TIME_RTOL  # noqa: F401 - importable from here too
from .calculix_import_runs import ImportedRun, _check_same_model, _read_results, find_runs
from .family_parameters import family_parameters
from .inp_writer import write_mesh_inp
from ..atomic import atomic_write_text
from ..config import write_toml
from .calculix_import_ccx import OUTPUT_REPLACED, check_ccx_solve, solve_with_ccx
from .calculix_import_hf import SOLVERS, check_run, deck_run, solve_runs
from .training_cases import (group_nodes_by_history, imported_offline_config, temperature_envelope_violations,
                             training_config, write_training_snapshot)

__all__ = ["ImportedRun", "ImportResult", "import_calculix", "find_runs", "temperature_envelope_violations"]

_COMPONENTS = "XYZ"
#: Why an output request of a run solved by the HF solver is ignored.
_OUTPUT_SOLVED = "output request: the HF solver writes displacements and integration-point fields at every increment"
#: Why an output request of a run solved here is ignored (by solver).
_OUTPUT_WHY = {"hf": _OUTPUT_SOLVED, "ccx": OUTPUT_REPLACED}


@dataclass
class ImportResult:
    out: Path
    mesh_file: Path
    snapshots: list[Path]
    offline_config: Path
    family: dict
    runs: list[ImportedRun]


def _reference_temperatures(materials: list, t0: np.ndarray, where: str) -> list:
    """Our ``reference_temperature`` per law so that our thermal strain equals ccx's (relative to the
    initial temperature ``t0`` ``(n_nodes,)``): exact when ``t0`` equals ccx's ``ZERO`` at every node, or
    when the expansion is constant and ``t0`` uniform (then the reference is ``t0``)."""
    out = []
    for elset, law, card in materials:
        law = json.loads(json.dumps(law))
        el = law.get("elastic", law)
        alpha = el.get("expansion", 0.0)
        zero = el.get("reference_temperature", 0.0)
        if alpha != 0.0 and not np.all(t0 == zero):
            if isinstance(alpha, float) and np.all(t0 == t0[0]):
                el["reference_temperature"] = float(t0[0])
            elif isinstance(alpha, float):
                raise CalculixError(
                    f"{where}: material of {elset}: ccx's thermal strain alpha (T - T0) is relative to the initial "
                    f"temperatures T0 (*INITIAL CONDITIONS, {t0.min():g}..{t0.max():g}), which are not uniform; the "
                    "law has one reference temperature: give uniform initial temperatures and apply the "
                    "non-uniform field with *TEMPERATURE in the first step")
            else:
                raise CalculixError(
                    f"{where}: material of {elset}: ccx measures thermal strain from the initial temperature; with a "
                    f"temperature-dependent *EXPANSION this equals ours only if the initial temperatures "
                    f"(*INITIAL CONDITIONS, {t0.min():g}..{t0.max():g}) equal ZERO={zero:g} everywhere: set ZERO to the "
                    "initial temperature (and the expansion coefficients accordingly)")
        out.append((elset, law))
    return out


def _signature_groups(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group keys whose histories agree in every run: ``columns[r]`` ``(n_t_r, n_keys)``; returns the
    group of each key ``(n_keys,)`` and the representative key of each group."""
    sig = np.concatenate(columns, axis=0).T if columns else np.zeros((0, 0))
    _, first, inverse = np.unique(sig, axis=0, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


def _loading_parts(base: Deck, runs: list[ImportedRun]):
    """Per-run loading tables and the extra mesh sets (surfaces, node sets) they refer to."""
    mesh = base.mesh
    per_run = [dict() for _ in runs]
    times = [np.concatenate([[0.0], r.times]) for r in runs]  # ccx total times: the histories' argument
    model = [r.deck.model_times(t) for r, t in zip(runs, times)]  # our loading times (Deck.model_times)
    surfaces: dict[str, np.ndarray] = {}
    # pressure faces: union of keys of every run, grouped by identical histories
    keys = sorted({k for r in runs for k in r.deck.pressure.keys})
    if keys:
        cols = []
        for r, t in zip(runs, times):
            h = r.deck.history("pressure", t)
            col = np.zeros((len(t), len(keys)))
            pos = {k: i for i, k in enumerate(keys)}
            for k, j in r.deck.pressure.keys.items():
                col[:, pos[k]] = h[:, j]
            cols.append(col)
        group, first = _signature_groups(cols)
        for g in range(len(first)):
            members = np.flatnonzero(group == g)
            if all(np.all(c[:, members[0]] == 0.0) for c in cols):
                continue
            name = f"PRESSURE_{len(surfaces) + 1}"
            surfaces[name] = np.array([keys[i] for i in members], np.int64)
            for d, c, t in zip(per_run, cols, model):
                d.setdefault("pressure", {})[name] = np.column_stack([t, c[:, members[0]]]).tolist()
    # boundary: the same constrained dofs in every run
    dofs = np.array(sorted(base.boundary.keys), np.int64)
    for r in runs:
        if sorted(r.deck.boundary.keys) != dofs.tolist():
            raise CalculixError(f"run {r.name} ({r.deck.path}): its *BOUNDARY constrains other dofs than the base deck's; "
                                "the constrained dofs are part of the model and must be the same in every run")
    node_sets: dict[str, np.ndarray] = {}
    boundary: list[dict] = []
    per_run_bc: list[list[dict]] = [[] for _ in runs]
    if len(dofs):
        cols = [r.deck.history("boundary", t)[:, dofs] for r, t in zip(runs, times)]
        zero = np.all([np.all(c == 0.0, axis=0) for c in cols], axis=0)
        mask = np.zeros((mesh.n_nodes, 3), bool)
        mask[dofs[zero] // 3, dofs[zero] % 3] = True
        code = mask @ np.array([1, 2, 4])
        for c in sorted(set(code.tolist()) - {0}):
            comps = [_COMPONENTS[i] for i in range(3) if c & (1 << i)]
            name = "FIXED_" + "".join(comps)
            node_sets[name] = np.flatnonzero(code == c)
            boundary.append({"node_set": name, "components": [x.lower() for x in comps], "value": 0.0})
        moving = np.flatnonzero(~zero)
        if len(moving):
            group, first = _signature_groups([c[:, moving] for c in cols])
            for g in range(len(first)):
                members = moving[group == g]
                for comp in range(3):
                    sel = members[dofs[members] % 3 == comp]
                    if not len(sel):
                        continue
                    name = f"PRESCRIBED_{g + 1}_{_COMPONENTS[comp]}"
                    node_sets[name] = dofs[sel] // 3
                    for lst, c, t in zip(per_run_bc, cols, model):
                        lst.append({"node_set": name, "components": [_COMPONENTS[comp].lower()], "value": 1.0,
                                    "amplitude": np.column_stack([t, c[:, sel[0]]]).tolist()})
    node_sets.update(_force_sets(runs, times, model, per_run))
    for d, r, t, tm in zip(per_run, runs, times, model):
        temp = r.deck.history("temperature", t)
        d["temperature_values"] = temp
        if r.deck.centrifugal.entries:
            w2 = r.deck.history("centrifugal", t)[:, 0]
            if np.any(w2 != 0):
                if np.any(w2 < 0):
                    raise not_supported(r.deck.first_card["DLOAD"], "CENTRIF with a negative omega^2")
                ax = r.deck.centrifugal_axis
                d["centrifugal"] = {"omega": np.column_stack([tm, np.sqrt(w2)]).tolist(), "axis_point": list(ax[:3]),
                                    "axis_direction": list(ax[3:6])}
        if r.deck.gravity.entries:
            g = r.deck.history("gravity", t)[:, 0]
            if np.any(g != 0):
                if np.any(g[1:] != g[-1]):
                    raise not_supported(r.deck.first_card["DLOAD"], f"run {r.name}: GRAV varies over the output times "
                                        f"({g[1:].min():g}..{g[1:].max():g}): the loading family applies gravity in full "
                                        "at every time; use an AMPLITUDE that is 1 at every output time")
                d["gravity"] = (np.asarray(r.deck.gravity_dir[:3], float) * g[-1]).tolist()
    return per_run, per_run_bc, boundary, surfaces, node_sets, model


def _force_sets(runs: list[ImportedRun], times: list[np.ndarray], model: list[np.ndarray],
                per_run: list[dict]) -> dict[str, np.ndarray]:
    """``*CLOAD`` forces as node sets ``FORCE_<k>``: the nodes whose force vector has the same history in
    every run form one set (a ``*CLOAD`` on a node set gives each node the value, as our loading's
    ``forces``); each run's table ``force.FORCE_<k>`` gets ``[time, fx, fy, fz]`` rows. Returns the sets."""
    n_nodes = runs[0].deck.mesh.n_nodes
    histories = [r.deck.history("cload", t).reshape(len(t), n_nodes, 3) if r.deck.cload.entries else None
                 for r, t in zip(runs, times)]
    sets = {}
    for g, (nodes, vectors) in enumerate(group_nodes_by_history(histories, n_nodes)):
        name = f"FORCE_{g + 1}"
        sets[name] = nodes
        for d, vec, t in zip(per_run, vectors, model):
            if vec is not None:
                d.setdefault("force", {})[name] = np.column_stack([t, vec]).tolist()
    return sets


def import_calculix(base: str | os.PathLike, runs: list[tuple[str, Path, list[Path]]] | str | os.PathLike,
                    out: str | os.PathLike, *, parameters: str | os.PathLike | None = None, units: dict | None = None,
                    log=lambda msg: None, solve: str | None = None, solver: dict | None = None,
                    comm=None, ccx_timeout: float | None = None) -> ImportResult | None:
    """Import a base deck and its runs (``[(name, deck, [results])]`` or a directory, see :func:`find_runs`)
    into training cases in ``out`` (module docstring). Raises :class:`CalculixError` naming the file,
    keyword and line of anything that cannot be imported.

    ``solve="hf"``: every run is solved by the in-house HF solver (results beside the decks are not read);
    ``solve="ccx"``: every run deck is run through ccx in ``out/ccx/<run>/`` (:mod:`.calculix_import_ccx`;
    ``ccx_timeout`` seconds per run, None: no limit) and its results imported (in this process: ``comm`` must be
    None or of one rank);
    ``None``: the runs' results are read, and runs given without results are solved when no run has any (a
    family mixing both is refused, naming the runs). ``solver``: the HF ``[solver]`` table (default: the HF
    solver's); ``comm``: the solves' communicator (default: this process alone). Under MPI every rank of
    ``comm`` calls this: rank 0 reads the decks and writes the files, all ranks solve; the result is rank 0's
    (None on the others)."""
    if solve is not None and solve not in SOLVERS:
        raise CalculixError(f"solve={solve!r}: expected one of {list(SOLVERS)} (or none: read the runs' results)")
    if solve == "ccx":
        check_ccx_solve(comm, solver)
    rank0, prepared = comm is None or comm.Get_rank() == 0, None
    if rank0:
        try:
            prepared = _prepare(base, runs, out, parameters=parameters, units=units, log=log, solve=solve,
                                solver=solver, ccx_timeout=ccx_timeout)
        except Exception as exc:  # (raised on every rank below: no rank waits for a solve that never comes)
            if comm is None or comm.Get_size() == 1:
                raise
            prepared = exc
    if comm is not None and comm.Get_size() > 1:
        cases = comm.bcast(prepared if not rank0 or isinstance(prepared, Exception) else prepared[1], root=0)
        if isinstance(cases, Exception):
            raise cases
    else:
        cases = prepared[1]
    if cases:
        from mpi4py import MPI

        solve_runs(cases, comm or MPI.COMM_SELF, log)
    if not rank0:
        return None
    result, _, plastic = prepared
    result.offline_config = write_toml(Path(out) / "offline.toml", imported_offline_config(plastic),
                                       f"written by structrom import calculix from {Path(base).name} and "
                                       f"{len(result.runs)} runs")
    return result


def _prepare(base, runs, out, *, parameters, units, log, solve, solver,
             ccx_timeout=None) -> tuple[ImportResult, list[dict], bool]:
    """The import up to the HF solves: decks read and checked, files written but ``offline.toml`` (written
    once every snapshot is). Returns the result, the cases to solve (:func:`.calculix_import_hf.check_run`)
    and whether a law is plastic."""
    from ..fem.kernel import Discretization
    from ..loading import Amplitude, Loading, NodalTemperature, UniformTemperature
    from ..loading_dict import loading_from_dict

    from pydantic import ValidationError

    from ..units import Units

    try:
        Units.model_validate(units or {})
    except ValidationError as exc:
        raise CalculixError("units: " + "; ".join(e["msg"] for e in exc.errors())) from None
    out = Path(out)
    base_deck = read_deck(base)
    run_list = find_runs(runs) if isinstance(runs, (str, os.PathLike)) else list(runs)
    if not run_list:
        raise CalculixError("no runs given: one run (deck + results) per training loading is needed")
    given = [name for name, _, results in run_list if results]
    bare = [name for name, _, results in run_list if not results]
    if solve is None and given and bare:
        raise CalculixError(f"runs {', '.join(bare)} have no results (.frd/.dat) beside their decks while runs "
                            f"{', '.join(given)} have: one family has one solver; run ccx on them, or pass --solve ccx "
                            "(every run through ccx) or --solve hf (every run through the in-house HF solver)")
    if solve is None and bare:
        log(f"  no results (.frd/.dat) beside the {len(bare)} run decks: solving them with the in-house HF solver "
            "(as --solve hf)")
    elif solve == "hf" and given:
        log(f"  --solve hf: every run is solved by the in-house HF solver; the results beside {', '.join(given)} "
            "are not read")
    elif solve == "ccx" and given:
        log(f"  --solve ccx: every run is solved by ccx in {out / 'ccx'}; the results beside {', '.join(given)} "
            "are not read")
    by_hf = solve == "hf" or (solve is None and not given)
    imported = []
    for name, deck_path, results in run_list:
        cards = read_cards(deck_path) if solve == "ccx" else None  # (read once: parsed here, rewritten for ccx)
        deck = read_deck(deck_path, cards=cards)
        if solve == "ccx":  # (the model checked before ccx runs)
            _check_same_model(base_deck, deck_run(name, deck))
            results = solve_with_ccx(name, deck_path, deck.ids.element_ids, out / "ccx", timeout=ccx_timeout, log=log,
                                     cards=cards)
        run = deck_run(name, deck) if by_hf else _read_results(name, deck, [Path(p) for p in results])
        if solve != "ccx":  # (a ccx run's deck is checked above, before ccx runs)
            _check_same_model(base_deck, run)
        imported.append(run)
        log(f"  {name}: {len(run.times)} increments to t = {run.times[-1]:g} from " +
            (f"{Path(deck_path).name} (to solve)" if by_hf else ", ".join(str(p) if solve == "ccx" else p.name
                                                                              for p in run.results)))
    per_run, per_run_bc, boundary, surfaces, node_sets, times = _loading_parts(base_deck, imported)
    mesh = base_deck.mesh
    mesh.surface_sets.update(surfaces)
    mesh.node_sets.update(node_sets)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train").mkdir(exist_ok=True)
    if by_hf:  # (written again once every run is solved: a failed solve leaves no configuration of a partial family)
        (out / "offline.toml").unlink(missing_ok=True)
    mesh_file = out / "mesh.inp"
    write_mesh_inp(mesh_file, mesh, all_nset=None, all_elset=None)
    disc = Discretization(mesh)
    warnings = []
    if not by_hf and any(b.element == "C3D20" for b in mesh.blocks) and any(
            np.any(d["temperature_values"] != d["temperature_values"][:, :1]) for d in per_run):
        warnings.append("C3D20 (full integration) with non-uniform temperatures: ccx evaluates the point "
                        "temperatures of C3D20 with a trilinear fit (lintemp.f), the HF solver and the reduced model "
                        "with the shape functions (differences of a few % in stress); use C3D20R or C3D10")
        log("  warning: " + warnings[-1])
    env_min = np.full(mesh.n_nodes, np.inf)
    env_max = np.full(mesh.n_nodes, -np.inf)
    snapshots = []
    cases: list[dict] = []
    for run, d, bcs, t in zip(imported, per_run, per_run_bc, times):
        temp = d["temperature_values"]
        env_min, env_max = np.minimum(env_min, temp.min(0)), np.maximum(env_max, temp.max(0))
        materials = _reference_temperatures(run.deck.materials, temp[0], str(run.deck.path))
        spatially_uniform = np.all(temp == temp[:, :1])
        temperature = (UniformTemperature(0.0, Amplitude(t, temp[:, 0].copy())) if spatially_uniform
                       else NodalTemperature(t, temp))
        plain = {k: v for k, v in d.items() if k != "temperature_values"}
        loading = loading_from_dict(dict({"times": t.tolist()}, **plain))
        loading = Loading(loading.times, temperature, loading.pressures, forces=loading.forces,
                          centrifugal=loading.centrifugal, gravity=loading.gravity)
        path = out / "train" / f"{run.name}.h5"
        if by_hf:  # (checked now, solved once every run is checked)
            cases.append(check_run(run, training_config(path, mesh_file, materials=materials, boundary=boundary + bcs,
                                                        loading=loading, units=units, solver=solver), mesh))
            path = path.resolve()
        else:
            path = write_training_snapshot(
                path, mesh, mesh_file, disc, materials=materials, boundary=boundary + bcs, loading=loading,
                displacement=run.displacement, temperature=temp[1:], units=units, points=run.points,
                solver={"name": "calculix", "imported_from": [str(p.resolve()) for p in run.results],
                        "deck": str(run.deck.path.resolve())})
        snapshots.append(path)
    params = family_parameters(imported, per_run, Path(parameters) if parameters is not None else None, per_run_bc)
    names = sorted({k for v in params["values"].values() for k in v})
    params["ranges"] = {k: [min(v[k] for v in params["values"].values()), max(v[k] for v in params["values"].values())]
                        for k in names}
    plastic = any(law["type"] != "linear_elastic" for _, law, _ in base_deck.materials)
    family = dict(params, runs=[r.name for r in imported],
                  temperature_envelope={"file": "family.npz", "min": float(env_min.min()), "max": float(env_max.max())},
                  surfaces={k: int(len(v)) for k, v in surfaces.items()}, warnings=warnings,
                  ignored=[{"keyword": k, "where": w, "why": _OUTPUT_WHY.get("hf" if by_hf else solve, y) if y.startswith("output request:") else y}
                           for k, w, y in base_deck.ignored])
    atomic_write_text(out / "family.json", json.dumps(family, indent=1))
    np.savez(out / "family.npz", temperature_min=env_min, temperature_max=env_max)
    return ImportResult(out, mesh_file, snapshots, out / "offline.toml", family, imported), cases, plastic
