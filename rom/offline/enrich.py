"""Enrichment of a published reduced model with the loadings it does not trust (``structrom enrich``).

For each loading: an online solve (:class:`structrom.rom.online.ReducedModel`) and its error indicator
(max over the increments; a failed online solve counts as infinite). For every loading whose
indicator is above the model's tolerance: one HF solve through :mod:`structrom.rom.hifi_protocol`
(in-house solver on all ranks, or CalculiX on rank 0). All HF solves succeed or nothing is published:
a failed solve (solver error, non-zero exit, non-finite snapshots) raises :class:`EnrichError` naming
the loading, with the model file untouched. Then :func:`structrom.rom.offline.update.update_model`
(incremental bases, warm-started cubature, recalibrated indicator) and
:func:`structrom.rom.offline.versions.publish_version` (the old file kept under ``versions/``).

Loadings file (``--loadings``): JSON, a list of loadings or ``{"loadings": [...]}``, or TOML with
``[[loading]]`` tables; each loading in the form of :func:`structrom.rom.loading_dict.loading_from_dict`
plus an optional ``name``.

Models with prescribed displacements (:mod:`structrom.rom.lifting`): a loading gives the prescribed sets' values
as the online query does (``displacement``); the HF solve imposes them on the configuration's ``[[boundary]]``
entries of those sets (a set the loading omits is held at zero, as online), and a loading naming a set the model
does not prescribe is refused at the screening (:class:`~structrom.rom.config.ConfigError` naming the loading and
the set) before any HF solve. The update keeps the model's unit fields (:mod:`structrom.rom.offline.update`).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from structrom.mpi.collectives import on_root
from structrom.rom.config import ConfigError
from structrom.rom.offline.snapshots import SnapshotError, TrainingCase, read_training_case

SOLVERS = ("inhouse", "calculix")


class EnrichError(SnapshotError):
    """Enrichment could not produce its snapshots (a failed HF solve); the published model is untouched."""


@dataclass
class Screening:
    """A loading's online check: ``indicator`` max over increments (inf: the online solve failed)."""

    name: str
    loading: dict
    indicator: float
    flagged: bool
    error: str | None = None


@dataclass
class EnrichResult:
    """``path`` of the model, its ``version`` after enrichment, the loadings ``screened`` before, the
    names ``enriched`` (HF-solved and added), their indicators ``after`` under the new model, wall
    ``seconds`` and rank 0's process ``cpu_seconds`` per step."""

    path: Path
    version: int
    screened: list[Screening]
    enriched: list[str]
    after: dict[str, float] = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    cpu_seconds: dict = field(default_factory=dict)

    def table(self, tolerance: float) -> str:
        lines = [f"| loading | indicator before | HF solve | indicator after (v{self.version}) | trusted |",
                 "| --- | ---: | --- | ---: | --- |"]
        for s in self.screened:
            after = self.after.get(s.name, s.indicator)
            lines.append(f"| {s.name} | {s.indicator:.3e} | {'yes' if s.name in self.enriched else 'no'} | "
                         f"{after:.3e} | {'yes' if after <= tolerance else 'no'} |")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"path": str(self.path), "version": self.version, "enriched": self.enriched, "after": self.after,
                "screened": [{"name": s.name, "indicator": s.indicator, "flagged": s.flagged, "error": s.error}
                             for s in self.screened], "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
                "stats": self.stats}


def read_loadings(path: str | Path) -> list[tuple[str, dict]]:
    """``[(name, loading dict)]`` from a JSON or TOML loadings file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: loadings file not found")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            raw = tomllib.loads(path.read_text()).get("loading")
        else:
            raw = json.loads(path.read_text())
            raw = raw.get("loadings") if isinstance(raw, dict) else raw
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path}: not a readable JSON / TOML loadings file ({exc})") from None
    if not isinstance(raw, list) or not raw or not all(isinstance(x, dict) for x in raw):
        raise ConfigError(f"{path}: expected a non-empty list of loadings (JSON list or {{\"loadings\": [...]}}, "
                          "or TOML [[loading]] tables)")
    out = []
    for i, d in enumerate(raw):
        d = dict(d)
        name = str(d.pop("name", f"loading_{i}"))
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise ConfigError(f"{path}: loading {i}: name {name!r} must be 1-64 letters, digits, '_', '.', '-'")
        out.append((name, d))
    if len({n for n, _ in out}) != len(out):
        raise ConfigError(f"{path}: loading names must be unique")
    return out


def screen(model_path: str | Path, loadings: list[tuple[str, dict]]) -> list[Screening]:
    """Online solve of every loading with the model; flag those above the indicator tolerance."""
    from structrom.rom.online import OnlineSolverError, ReducedModel

    from structrom.rom.loading import LoadingError

    model = ReducedModel.load(model_path)
    out = []
    for name, d in loadings:
        try:
            ind, err = float(model.solve(d, extrapolate=True).indicator.max(initial=0.0)), None
        except OnlineSolverError as exc:
            ind, err = float("inf"), str(exc)
        except LoadingError as exc:  # e.g. a prescribed set the model does not have: the model cannot take it
            raise ConfigError(f"loading {name!r}: {exc}") from None
        out.append(Screening(name, d, ind, not ind <= model.indicator_tolerance, err))
    return out


def hifi_loading(lifting, loading: dict) -> dict:
    """The loading ``loading`` (``loading_from_dict`` form) as the HF solver must see it for a model with the
    prescribed displacements ``lifting`` (:class:`structrom.rom.lifting.Lifting`, or None): every prescribed
    set the loading does not give held at zero, as the online solve holds it (the HF configuration's
    ``[[boundary]]`` values are those of a training case)."""
    from structrom.rom.loading_dict import loading_from_dict

    if lifting is None:
        return loading
    given = set(lifting.match(loading_from_dict(dict(loading))).values())
    missing = [name for name in lifting.sets if name not in given]
    if not missing:
        return loading
    return dict(loading, displacement={**(loading.get("displacement") or {}), **{name: 0.0 for name in missing}})


def hifi_base_config(model_path: str | Path, config: str | Path | None = None):
    """The HF configuration of the model's problem: ``config`` (a HF TOML) if given, else the one stored
    in the first training snapshot the model records."""
    from structrom.rom import model_file
    from structrom.rom.hifi.config import HifiConfig, load_config

    if config is not None:
        return load_config(config)
    prov = model_file.load(model_path).provenance
    snaps = prov.get("snapshots", []) if isinstance(prov, dict) else []
    for s in snaps:
        p = Path(str(s.get("file", "")))
        if p.exists():
            import h5py

            try:
                with h5py.File(p, "r") as f:
                    meta = json.loads(f.attrs["metadata"])
                return HifiConfig.model_validate(meta["config"])
            except (OSError, KeyError, TypeError, ValueError) as exc:  # (pydantic's ValidationError is a ValueError)
                raise ConfigError(f"{p}: the model's training snapshot holds no readable HF configuration "
                                  f"({type(exc).__name__}): pass the HF configuration of the model's problem "
                                  "(--config base.toml)") from None
    raise ConfigError(f"{model_path}: none of the model's training snapshot files is available to take the HF "
                      "configuration from: pass the HF configuration of the model's problem (--config base.toml)")


def make_solver(kind: str, base, comm: MPI.Comm, workdir: Path | None = None):
    """A :class:`~structrom.rom.hifi_protocol.HifiSolverProtocol` of ``kind`` (:data:`SOLVERS`)."""
    from structrom.rom.hifi_protocol import CalculixSolver, InHouseSolver

    if kind == "inhouse":
        return InHouseSolver(base, comm=comm)
    if kind == "calculix":
        return CalculixSolver(base, workdir=workdir)
    raise ConfigError(f"--solver {kind!r}: choose one of {SOLVERS}")


def _hf_solve(solver, comm: MPI.Comm, name: str, loading: dict, output: Path) -> str | None:
    """One HF solve; None or the failure message (same on every rank). Collective when the solver runs
    on ``comm`` (in-house), else rank 0 solves."""
    collective = getattr(solver, "comm", None) is not None and solver.comm.Get_size() > 1
    msg = None
    if collective or comm.Get_rank() == 0:
        try:
            solver.solve(loading, output)
        except Exception as exc:  # noqa: BLE001 - any solver failure aborts the enrichment, named below
            msg = f"{type(exc).__name__}: {exc}"
    msgs = comm.allgather(msg)
    return next((m for m in msgs if m), None)


def enrich(model_path: str | Path, loadings: list[tuple[str, dict]], solver, comm: MPI.Comm | None = None, *,
           workdir: str | Path | None = None, log=print) -> EnrichResult:
    """Enrich the model file ``model_path`` with the flagged ``loadings`` (collective); returns the
    :class:`EnrichResult` on every rank. ``solver``: a HifiSolverProtocol; ``workdir``: where the HF
    snapshots go (default ``<model dir>/enrichment/<id>.v<k>/``)."""
    from structrom.rom import model_file
    from structrom.rom.offline.update import update_model
    from structrom.rom.offline.versions import publish_version

    comm = comm or MPI.COMM_WORLD
    rank = comm.Get_rank()
    say = log if rank == 0 else (lambda *a, **k: None)
    model_path = Path(model_path)
    seconds: dict = {}
    cpu: dict = {}
    t_all = t0 = time.perf_counter()
    c_all = c0 = time.process_time()
    head = None

    def read_head():  # rank 0: the model (its mesh stays there) and the screened loadings
        nonlocal head
        head = model_file.load(model_path, mesh=True)
        screened = screen(model_path, loadings)
        return head.version, screened, {s.name: hifi_loading(head.lifting, s.loading) for s in screened if s.flagged}

    version, screened, hf_loadings = on_root(comm, read_head)
    mesh = head.mesh if head is not None else None
    seconds["online screening"] = time.perf_counter() - t0
    cpu["online screening"] = time.process_time() - c0
    flagged = [s for s in screened if s.flagged]
    say(f"enrich: {model_path} v{version}: {len(flagged)} of {len(screened)} loadings above the indicator tolerance")
    if not flagged:
        return EnrichResult(model_path, version, screened, [], seconds=seconds, cpu_seconds=cpu)

    t0, c0 = time.perf_counter(), time.process_time()
    work = Path(workdir) if workdir is not None else model_path.parent / "enrichment" / f"{model_path.stem}.v{version + 1}"
    if rank == 0:
        work.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    cases: list[TrainingCase] = []
    for s in flagged:
        output = (work / f"{s.name}.h5").resolve()
        say(f"enrich: HF solve of {s.name} (indicator {s.indicator:.3e}) -> {output}")
        failure = _hf_solve(solver, comm, s.name, hf_loadings[s.name], output)
        if failure is None:
            case = None
            if rank == 0:
                try:
                    case = read_training_case(output, mesh)  # checks the mesh and finiteness
                except Exception as exc:  # noqa: BLE001 - e.g. non-finite snapshots
                    case = f"{type(exc).__name__}: {exc}"
            case = comm.bcast(case, root=0)
            if isinstance(case, str):
                failure = case
            else:
                cases.append(case)
        if failure is not None:
            raise EnrichError(f"loading {s.name!r}: the HF solve failed ({failure.splitlines()[0]}); nothing was "
                              f"published: {model_path} is unchanged (v{version})")
    seconds["HF solves"] = time.perf_counter() - t0
    cpu["HF solves"] = time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    upd = update_model(model_path, cases, comm, log=say)
    seconds["model update"] = time.perf_counter() - t0
    cpu["model update"] = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    error = None
    if rank == 0:
        try:
            publish_version(model_path, upd.data, upd.mesh, upd.modes, upd.full_duals,
                            [{"name": s.name, "loading": s.loading, "indicator": s.indicator,
                              "snapshot": str((work / f"{s.name}.h5").resolve())} for s in flagged],
                            note="structrom enrich")
        except Exception as exc:  # shared so that no rank waits forever
            error = exc
    error = comm.bcast(error, root=0)
    if error is not None:
        raise error
    seconds["publish"] = time.perf_counter() - t0
    cpu["publish"] = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    after = None
    if rank == 0:
        after = {s.name: s.indicator for s in screen(model_path, [(s.name, s.loading) for s in flagged])}
    after = comm.bcast(after, root=0)
    seconds["online check"] = time.perf_counter() - t0
    cpu["online check"] = time.process_time() - c0
    seconds["total"] = time.perf_counter() - t_all
    cpu["total"] = time.process_time() - c_all
    stats = comm.bcast(upd.stats if rank == 0 else None, root=0)
    return EnrichResult(model_path, version + 1, screened, [s.name for s in flagged], after, seconds, stats, cpu)
