"""One interface for high-fidelity solvers: given a loading, write a snapshot file.

The offline stage (snapshot generation) and enrichment ask a :class:`HifiSolverProtocol` for the HF
solution of a loading; every implementation writes a snapshot file in the layout of
``docs/hdf5_layout.md``, including the ``metadata`` attribute whose ``config`` is a
:class:`~structrom.rom.hifi.config.HifiConfig` describing the same problem (mesh, materials, boundary, *this*
loading), so that :func:`structrom.rom.offline.snapshots.read_training_case` replays it like any in-house run.

Implementations:

* :class:`InHouseSolver` - the PETSc solver (:func:`structrom.rom.hifi.run.run_hifi`);
* :class:`CalculixSolver` - CalculiX ``ccx`` run nonintrusively: a deck from the mesh, the declared law and
  the loading (:func:`structrom.rom.adapters.calculix.write_static_deck`), run in a temporary directory, nodal
  displacements (and, optionally, stress, strain and equivalent plastic strain at the integration points)
  parsed from the ``.dat`` file and stored under our numbering (node id ``i + 1`` -> node ``i``;
  ``(element id, integration point)`` -> global point ``offsets[element] + point - 1``, CalculiX's point
  order being ours).

Both are built from a base :class:`~structrom.rom.hifi.config.HifiConfig` (or its TOML path): everything but the
loading and the output file comes from it; the imposed displacements are the base's ``[[boundary]]``
entries (they belong to the model, not to a loading), whose values and amplitudes a loading in the form of a
query of a model with prescribed displacements (``loading.displacement``) may set (:func:`prescribed_boundary`).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from structrom.rom.hifi.config import HifiConfig, load_config
from structrom.rom.loading import (Centrifugal, HotSpotTemperature, ImposedDisplacement, Loading, LoadingError,
                                   NodalTemperature, UniformTemperature)
from structrom.rom.loading_dict import loading_from_dict
from structrom.rom.prescribed_overlap import check_named_once

__all__ = ["HifiRun", "HifiSolverProtocol", "InHouseSolver", "CalculixSolver", "loading_to_config",
           "case_config", "prescribed_boundary", "write_calculix_snapshot", "same_case"]


@dataclass
class HifiRun:
    """A finished HF solve: the snapshot ``path``, the solver's wall ``seconds`` (for CalculiX: ccx's
    process alone), the solver ``name`` and free-form ``info``."""

    path: Path
    seconds: float
    solver: str
    info: dict = field(default_factory=dict)


@runtime_checkable
class HifiSolverProtocol(Protocol):
    """A HF solver as the offline stage and enrichment see it.

    ``solve(loading, output)``: solve the model for ``loading`` (a :class:`~structrom.rom.loading.Loading`, or the
    plain-data form of :func:`structrom.rom.loading_dict.loading_from_dict`; its imposed displacements, if any, set the
    values of the configuration's ``[[boundary]]`` entries they name: :func:`prescribed_boundary`) and write the
    snapshot file ``output`` (``docs/hdf5_layout.md``: at least ``fields/displacement`` and
    ``increments/time``, one entry per loading increment, and the ``metadata`` attribute with a
    HifiConfig ``config`` of this case). Raises on failure with the solver's own message; never leaves a
    partial file under ``output``.
    """

    name: str

    def solve(self, loading: Loading | dict, output: str | Path) -> HifiRun: ...


# -- loading <-> configuration --------------------------------------------------------------------------
def loading_to_config(loading: Loading, nodal_file: Path | None = None) -> dict:
    """The ``[loading]`` table (:class:`structrom.rom.hifi.config.LoadingConfig`) of a loading without imposed
    displacements. A :class:`~structrom.rom.loading.NodalTemperature` is saved to ``nodal_file`` (``.npy``)."""
    if loading.displacements:
        raise LoadingError("imposed displacements belong to the model configuration ([[boundary]]), not to a "
                           "loading passed to a HF solver; remove them from the loading")
    out: dict = {"times": [float(t) for t in loading.times]}
    temp = loading.temperature
    if isinstance(temp, UniformTemperature):
        out["temperature"] = {"type": "uniform", "reference": float(temp.reference),
                              "amplitude": temp.amplitude.to_config()}
    elif isinstance(temp, HotSpotTemperature):
        out["temperature"] = {"type": "hot_spot", "center": [float(x) for x in temp.center],
                              "radius": float(temp.radius), "intensity": float(temp.intensity),
                              "reference": float(temp.reference), "gradient": [float(x) for x in temp.gradient],
                              "amplitude": temp.amplitude.to_config()}
    elif isinstance(temp, NodalTemperature):
        if nodal_file is None:
            raise LoadingError("a nodal temperature needs a file to be stored in (nodal_file)")
        np.save(nodal_file, np.asarray(temp.values, dtype=float))
        out["temperature"] = {"type": "nodal", "file": str(Path(nodal_file).resolve()),
                              "times": [float(t) for t in temp.times]}
    else:
        raise LoadingError(f"temperature field {type(temp).__name__} cannot be written to a configuration; "
                           "use uniform, hot_spot or nodal temperatures")
    out["pressure"] = [{"surface": s, "amplitude": a.to_config()} for s, a in loading.pressures.items()]
    if loading.tractions:
        out["traction"] = [{"surface": s, "vector": v.to_config()} for s, v in loading.tractions.items()]
    if loading.forces:
        out["force"] = [{"node_set": s, "vector": v.to_config()} for s, v in loading.forces.items()]
    c: Centrifugal | None = loading.centrifugal
    if c is not None:
        out["centrifugal"] = {"omega": c.omega.to_config(), "axis_point": [float(x) for x in c.axis_point],
                              "axis_direction": [float(x) for x in c.axis_direction]}
    if loading.gravity is not None:
        out["gravity"] = [float(g) for g in loading.gravity]
    return out


def _as_loading(loading: Loading | dict) -> Loading:
    return loading if isinstance(loading, Loading) else loading_from_dict(dict(loading))


def prescribed_boundary(boundary: list[dict], displacements) -> list[dict]:
    """The ``[[boundary]]`` entries ``boundary`` (``BoundaryConfig`` dumps) with the imposed displacements of a
    loading (:class:`~structrom.rom.loading.ImposedDisplacement`, the form of a reduced model's query) put in:
    each sets ``value`` and ``amplitude`` of the one entry it names (its node set, with its components if
    given, or ``<node set>.<components>`` as a lifted model names a node set with several entries). Entries
    no displacement names keep their values. Raises :class:`LoadingError` naming a displacement that matches
    no entry or several."""
    out = [dict(b) for b in boundary]
    axes = "xyz"
    given: dict[int, ImposedDisplacement] = {}
    for d in displacements:
        comps = "".join(axes[int(c)] for c in d.components)
        found = [i for i, b in enumerate(out)
                 if (b["node_set"] == d.node_set and (not comps or "".join(b["components"]) == comps))
                 or f"{b['node_set']}.{''.join(b['components'])}" == d.node_set]
        if len(found) != 1:
            names = [b["node_set"] + "." + "".join(b["components"]) for b in out]
            why = "matches no" if not found else "matches several"
            raise LoadingError(f"loading.displacement.{d.node_set}: {why} [[boundary]] entry of the HF configuration "
                               f"(entries {names}); name one node set (with 'components' or as <node set>.<axes>)")
        check_named_once(given.setdefault(found[0], d), d, f"the [[boundary]] entry {names_of(out[found[0]])}")
        out[found[0]].update(value=float(d.value), amplitude=d.amplitude.to_config())
    return out


def names_of(b: dict) -> str:
    """``<node set>.<axes>`` of a ``[[boundary]]`` entry ``b``."""
    return f"{b['node_set']}.{''.join(b['components'])}"


def case_config(base: HifiConfig, loading: Loading | dict, output: str | Path) -> HifiConfig:
    """``base`` with ``loading`` and ``output.file = output`` (absolute): the configuration of one case. The
    loading's imposed displacements, if any, set the values of the base's ``[[boundary]]`` entries they name
    (:func:`prescribed_boundary`: a query of a model with prescribed displacements)."""
    import dataclasses

    output = Path(output).resolve()
    loading = _as_loading(loading)
    data = base.model_dump(mode="json")
    if loading.displacements:
        data["boundary"] = prescribed_boundary(data["boundary"], loading.displacements)
        loading = dataclasses.replace(loading, displacements=())
    table = loading_to_config(loading, output.with_suffix(".temperature.npy"))
    data["loading"] = table
    data["output"] = dict(data["output"], file=str(output))
    data["mesh"] = dict(data["mesh"], file=str(base.path(base.mesh.file).resolve()))
    return HifiConfig.model_validate(data)


def same_case(path: str | Path, cfg: HifiConfig) -> bool:
    """True when ``path`` is a complete snapshot file of the case ``cfg`` (same loading, materials,
    boundary and mesh file): used to reuse cached HF results."""
    import h5py

    path = Path(path)
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            meta = json.loads(f.attrs["metadata"])
            n_inc = len(f["increments/time"])
    except (OSError, KeyError, ValueError):
        return False
    old, new = meta.get("config", {}), cfg.model_dump(mode="json")
    keys = ("mesh", "material", "boundary", "loading", "units")
    return all(old.get(k) == new.get(k) for k in keys) and n_inc == len(cfg.loading.time_points()) - 1


def _base(config: HifiConfig | str | Path) -> HifiConfig:
    return config if isinstance(config, HifiConfig) else load_config(config)


# -- in-house solver -----------------------------------------------------------------------------------
class InHouseSolver:
    """The in-house PETSc solver behind :class:`HifiSolverProtocol` (``comm``: default one rank)."""

    name = "structrom"

    def __init__(self, config: HifiConfig | str | Path, comm=None, log=lambda *a, **k: None) -> None:
        from mpi4py import MPI

        from structrom.rom.hifi.run import load_mesh

        self.base = _base(config)
        self.comm = comm or MPI.COMM_SELF
        self.log = log
        self.mesh = load_mesh(self.base.path(self.base.mesh.file), self.base.mesh.quadratic_hex)

    def solve(self, loading: Loading | dict, output: str | Path) -> HifiRun:
        from structrom.rom.hifi.run import run_hifi

        cfg = case_config(self.base, loading, output)
        t0 = time.perf_counter()
        path = run_hifi(cfg, comm=self.comm, log=self.log, mesh=self.mesh)
        return HifiRun(Path(path), time.perf_counter() - t0, self.name)


# -- CalculiX ------------------------------------------------------------------------------------------
def _sta_iterations(path: Path, n_steps: int) -> np.ndarray:
    """Newton iterations per ``*STEP`` summed over its increments, from ccx's ``.sta`` (0 if absent)."""
    its = np.zeros(n_steps, dtype=np.int64)
    if not path.exists():
        return its
    for ln in path.read_text().splitlines():
        parts = ln.split()
        if len(parts) == 7 and parts[0].isdigit() and parts[3].isdigit():
            step = int(parts[0])
            if 1 <= step <= n_steps:
                its[step - 1] += int(parts[3])
    return its


def write_calculix_snapshot(output: str | Path, mesh, cfg: HifiConfig, dat_path: str | Path,
                            ccx_times: np.ndarray, *, point_fields: bool = True, xdmf: bool = False,
                            extra_metadata: dict | None = None, newton_iterations: np.ndarray | None = None) -> Path:
    """Convert a ccx ``.dat`` file (from a deck of :func:`~structrom.rom.adapters.calculix.write_static_deck` on
    ``mesh``, node ids ``i + 1``, element ids ``e + 1``) into a snapshot file of the case ``cfg``.

    ``ccx_times``: ccx total times of the loading increments (what ``write_static_deck`` returned).
    Raises :class:`~structrom.rom.adapters.calculix.CalculixError` naming the file and the block on a missing
    increment, a node or point count that does not match the mesh, or unknown ids.
    """
    from structrom.rom.adapters.calculix import CalculixError, read_dat
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.hifi.output import SnapshotWriter, element_point_offsets

    dat_path = Path(dat_path)
    dat = read_dat(dat_path)
    keys = np.array(sorted(dat))
    loading = cfg.build_loading()
    times = loading.times
    if len(ccx_times) != len(times) - 1:
        raise CalculixError(f"{dat_path}: {len(ccx_times)} ccx times for {len(times) - 1} loading increments")
    disc = Discretization(mesh)
    offsets = element_point_offsets(mesh)
    n_points = int(offsets[-1])
    metadata = {"config": cfg.model_dump(mode="json"), "n_ranks": 1, "units": cfg.units.model_dump(),
                "solver": dict({"name": "calculix"}, **(extra_metadata or {}))}
    its = newton_iterations if newton_iterations is not None else np.zeros(len(ccx_times), np.int64)
    writer = SnapshotWriter(output, mesh, metadata, disc.point_elements, disc.point_weights,
                            disc.point_coordinates, point_fields=point_fields, xdmf=xdmf)
    ok = False
    try:
        for k, t in enumerate(ccx_times):
            j = int(np.argmin(np.abs(keys - t))) if len(keys) else -1
            if j < 0 or abs(keys[j] - t) > 1e-6 * max(1.0, abs(t)):
                raise CalculixError(
                    f"{dat_path}: no results for increment {k + 1} (ccx total time {t:.7g}); times in the file: "
                    f"{[float('%.7g' % x) for x in keys[:10]]}: the run stopped early or the file is truncated")
            blocks = dat[keys[j]]
            if "U" not in blocks:
                raise CalculixError(f"{dat_path}: no displacement block at time {keys[j]:.7g} (request U in "
                                    "*NODE PRINT)")
            u = blocks["U"]
            if len(u.ids) != mesh.n_nodes or not np.array_equal(np.sort(u.ids), np.arange(1, mesh.n_nodes + 1)):
                raise CalculixError(
                    f"{dat_path}: displacement block for set {u.set_name} at time {keys[j]:.7g} has {len(u.ids)} "
                    f"nodes (ids {u.ids.min() if len(u.ids) else '-'}..{u.ids.max() if len(u.ids) else '-'}) but the "
                    f"mesh has {mesh.n_nodes} (ids 1..{mesh.n_nodes}): node count mismatch")
            disp = np.zeros((mesh.n_nodes, 3))
            disp[u.ids - 1] = u.values[:, :3]
            points: dict[str, np.ndarray] = {}
            if point_fields:
                for q, name, c in (("S", "stress", 6), ("E", "strain", 6), ("PEEQ", "cumulated_plastic_strain", 1)):
                    if q not in blocks:
                        continue
                    b = blocks[q]
                    elem, ip = b.ids[:, 0] - 1, b.ids[:, 1] - 1
                    if elem.min(initial=0) < 0 or elem.max(initial=0) >= mesh.n_elements or \
                            np.any(ip >= np.diff(offsets)[np.clip(elem, 0, mesh.n_elements - 1)]):
                        raise CalculixError(f"{dat_path}: block {q} at time {keys[j]:.7g} has element ids or "
                                            "integration points outside the mesh")
                    if len(b.ids) != n_points:
                        raise CalculixError(f"{dat_path}: block {q} at time {keys[j]:.7g} has {len(b.ids)} "
                                            f"integration points, the mesh has {n_points}: point count mismatch")
                    vals = np.zeros((n_points, c))
                    vals[offsets[elem] + ip] = b.values[:, :c]
                    points[name] = vals[:, 0] if c == 1 else vals
            temp = loading.nodal_temperature(float(times[k + 1]), mesh.points)
            writer.append(float(times[k + 1]), int(its[k]) if k < len(its) else 0, 0.0, 0,
                          {"displacement": disp, "temperature": temp}, points)
        ok = True
    finally:
        writer.close(ok)
    return Path(output).resolve()


class CalculixSolver:
    """CalculiX ``ccx`` behind :class:`HifiSolverProtocol`.

    ``config``: base HifiConfig (one ``[[material]]`` on all elements: ``write_static_deck`` assigns one law
    to every element); ``workdir``: where job directories are made (default the system's temporary
    directory; kept after a failure and with ``keep=True``); ``increments``: fixed ccx increments per
    loading increment; ``point_fields``: also store ``stress``, ``strain`` and ``cumulated_plastic_strain``
    at the integration points (from the ``.dat``; ``plastic_strain`` is not printed by ccx and is
    omitted); ``field_tolerances``: ccx's Newton residual / correction ratios (``None``: ccx's defaults
    0.005 / 0.01, fewer iterations but errors ~1e-4); ``threads``: ``OMP_NUM_THREADS`` and
    ``CCX_NPROC_EQUATION_SOLVER`` of the ccx process.
    """

    name = "calculix"

    def __init__(self, config: HifiConfig | str | Path, *, workdir: str | Path | None = None, keep: bool = False,
                 timeout: float = 3600.0, threads: int = 1, increments: int = 1, point_fields: bool = True,
                 field_tolerances: tuple[float, float] | None = (1e-7, 1e-5), ccx: str = "ccx") -> None:
        from structrom.rom.adapters.calculix import CalculixError
        from structrom.rom.hifi.run import load_mesh
        from structrom.rom.materials import law_from_config

        self.base = _base(config)
        if len(self.base.material) != 1 or self.base.material[0].element_set is not None:
            raise CalculixError("CalculixSolver: the configuration must have exactly one [[material]] without "
                                "element_set (write_static_deck assigns one law to every element)")
        self.law = law_from_config(self.base.material[0].law)
        self.mesh = load_mesh(self.base.path(self.base.mesh.file), self.base.mesh.quadratic_hex)
        self.workdir = Path(workdir) if workdir is not None else None
        self.keep, self.timeout, self.threads = keep, timeout, threads
        self.increments, self.point_fields, self.ccx = increments, point_fields, ccx
        self.field_tolerances = field_tolerances

    def solve(self, loading: Loading | dict, output: str | Path) -> HifiRun:
        from structrom.rom.adapters.calculix import CalculixError, run_ccx, write_static_deck

        from structrom.rom.hifi.run import check_boundary_overlaps

        cfg = case_config(self.base, loading, output)
        full = cfg.build_loading()
        check_boundary_overlaps(self.mesh, cfg, full)  # the deck would keep the last value of a dof given twice
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        jobdir = Path(tempfile.mkdtemp(prefix="ccx_", dir=self.workdir))
        ok = False
        try:
            outputs = ("U", "S", "E", "PEEQ") if self.point_fields else ("U",)
            ccx_times = write_static_deck(jobdir / "job.inp", self.mesh, self.law, full, increments=self.increments,
                                          outputs=outputs, field_tolerances=self.field_tolerances)
            try:
                run = run_ccx(jobdir, "job", timeout=self.timeout, ccx=self.ccx, threads=self.threads,
                              require=("dat",))
            except CalculixError as exc:
                raise CalculixError(f"{exc}\n(job directory kept: {jobdir})") from None
            its = _sta_iterations(jobdir / "job.sta", len(ccx_times))
            path = write_calculix_snapshot(output, self.mesh, cfg, run.dat, ccx_times, point_fields=self.point_fields,
                                           newton_iterations=its,
                                           extra_metadata={"wall_seconds": run.seconds, "threads": self.threads,
                                                           "increments_per_step": self.increments})
            ok = True
            return HifiRun(path, run.seconds, self.name, {"jobdir": str(jobdir) if self.keep else None,
                                                          "newton_iterations": its.tolist()})
        finally:
            if ok and not self.keep:
                shutil.rmtree(jobdir, ignore_errors=True)
