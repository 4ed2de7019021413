"""Greedy training: the offline stage chooses its training loadings by the error indicator.

Configured by ``[greedy]`` (:class:`structrom.rom.offline.config.GreedyConfig`): a loading family (a
loading whose ``"$name"`` strings are parameters) and the parameters' ranges. Candidates: a grid
(``points`` per parameter) or a Latin hypercube (``points`` in all, :class:`scipy.stats.qmc.LatinHypercube`,
``seed``) in the ranges. Starting from the model of the configured snapshots, each round screens every
remaining candidate online (:func:`structrom.rom.offline.enrich.screen`), stops when all indicators are
within the model's tolerance, else enriches the model with the candidate of largest indicator
(:func:`structrom.rom.offline.enrich.enrich`: one HF solve, incremental update, new version) until
``budget`` HF solves (greedy selection as in reduced-basis methods, e.g. Hesthaven, Rozza & Stamm 2016,
sec. 3.2.2, with the indicator in place of an a-posteriori bound).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from structrom.rom.offline.config import GreedyConfig, OfflineConfig


def substitute(template, values: dict[str, float]):
    """``template`` with every ``"$name"`` string replaced by ``values[name]`` (recursively)."""
    if isinstance(template, str) and template.startswith("$"):
        return float(values[template[1:]])
    if isinstance(template, dict):
        return {k: substitute(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [substitute(v, values) for v in template]
    return template


def candidates(g: GreedyConfig) -> list[tuple[str, dict, dict]]:
    """``[(name, parameter values, loading dict)]`` of the candidate loadings."""
    names = list(g.parameters)
    lo = np.array([g.parameters[n][0] for n in names])
    hi = np.array([g.parameters[n][1] for n in names])
    if g.sampling == "grid":
        axes = [np.linspace(a, b, g.points) if b > a else np.array([a]) for a, b in zip(lo, hi)]
        samples = np.array(list(itertools.product(*axes)))
    else:
        from scipy.stats import qmc

        samples = qmc.scale(qmc.LatinHypercube(d=len(names), seed=g.seed).random(g.points), lo, np.maximum(hi, lo + 1e-300))
    out = []
    for i, s in enumerate(samples):
        values = {n: float(v) for n, v in zip(names, s)}
        out.append((f"candidate_{i}", values, substitute(g.loading, values)))
    return out


@dataclass
class GreedyRound:
    """One round: the largest indicator over the remaining candidates and which one it was."""

    hf_solves: int
    max_indicator: float
    worst: str
    parameters: dict


@dataclass
class GreedyResult:
    rounds: list[GreedyRound] = field(default_factory=list)
    converged: bool = False
    hf_solves: int = 0

    def table(self) -> str:
        lines = ["| HF solves so far | max indicator over candidates | at | parameters |", "| ---: | ---: | --- | --- |"]
        lines += [f"| {r.hf_solves} | {r.max_indicator:.3e} | {r.worst} | {r.parameters} |" for r in self.rounds]
        return "\n".join(lines)


def run_greedy(cfg: OfflineConfig, model_path: str | Path, comm: MPI.Comm | None = None, log=print,
               solver=None) -> GreedyResult:
    """Greedy enrichment of the model ``model_path`` over ``cfg.greedy``'s candidates (collective).
    ``solver``: a HifiSolverProtocol (default: ``cfg.greedy.solver`` on ``cfg.greedy.hifi``)."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.model_file import load
    from structrom.rom.offline.enrich import enrich, make_solver, screen

    comm = comm or MPI.COMM_WORLD
    rank = comm.Get_rank()
    say = log if rank == 0 else (lambda *a, **k: None)
    g = cfg.greedy
    if g is None:
        raise ValueError("run_greedy needs a [greedy] table in the offline configuration")
    if solver is None:
        solver = make_solver(g.solver, load_config(cfg.path(g.hifi)), comm)
    pool = candidates(g)
    params = {name: p for name, p, _ in pool}
    remaining = [(name, d) for name, _, d in pool]
    result = GreedyResult()
    tolerance = load(model_path).indicator_tolerance
    while remaining:
        screened = None
        if rank == 0:
            try:
                screened = screen(model_path, remaining)
            except Exception as exc:  # re-raised on every rank
                screened = exc
        screened = comm.bcast(screened, root=0)
        if isinstance(screened, Exception):
            raise screened
        worst = max(screened, key=lambda s: s.indicator)
        result.rounds.append(GreedyRound(result.hf_solves, worst.indicator, worst.name, params[worst.name]))
        say(f"greedy: {result.hf_solves} HF solves, max indicator {worst.indicator:.3e} over {len(screened)} "
            f"candidates at {worst.name} {params[worst.name]} (tolerance {tolerance:g})")
        if worst.indicator <= tolerance:
            result.converged = True
            break
        if result.hf_solves >= g.budget:
            break
        enrich(model_path, [(worst.name, worst.loading)], solver, comm, log=lambda *a, **k: None)
        result.hf_solves += 1
        remaining = [(n, d) for n, d in remaining if n != worst.name]
    say("greedy: " + ("every candidate within the tolerance" if result.converged else
                      f"budget of {g.budget} HF solves spent") + "\n" + result.table())
    return result
