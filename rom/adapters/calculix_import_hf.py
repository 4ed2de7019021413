"""Runs given as decks without results, solved by the in-house HF solver (``structrom import calculix
--solve hf``, and a family of decks none of which has results beside it).

A run to solve takes its increment end times from its deck as ccx would step it
(:func:`.calculix_predict.deck_times`): a step of a linear problem (elastic materials) in one increment, the
others in fixed increments (``DIRECT``) or, where ccx would adapt them, its initial increment repeated (the HF
solver cuts an increment back where Newton fails); so that its training case has the loading of a ccx run of the
deck at the increments ccx would print (all of them for linear and ``DIRECT`` steps). Its HifiConfig (the one a ccx run's
snapshot metadata holds: :func:`.training_cases.training_config`) is checked by the HF solver's checks
(:func:`structrom.rom.hifi.run.check_problem`) for every run before the first solve, and a problem the
solver cannot take is refused naming the run's deck. The solves (:func:`solve_runs`) write
``train/<run>.h5`` in the format of ``structrom hifi`` (integration-point stress, strain and internal
variables included), on every rank of the communicator.
"""
from __future__ import annotations

import time
from pathlib import Path

from .calculix_deck import Deck
from .calculix_error import CalculixError
from .calculix_import_runs import ImportedRun

__all__ = ["deck_run", "check_run", "solve_runs", "SOLVERS"]

#: The ``--solve`` choices: ``hf`` = the in-house HF solver (``structrom hifi``), ``ccx`` = CalculiX
#: (:mod:`.calculix_import_ccx`).
SOLVERS = ("hf", "ccx")


def deck_run(name: str, deck: Deck) -> ImportedRun:
    """A run without results: its increment end times ``(n_inc,)`` from the deck's steps (ccx total time; one
    per step when every material is elastic), no displacement yet."""
    from .calculix_predict import deck_times

    linear = all(law["type"] == "linear_elastic" for _, law, _ in deck.materials)
    return ImportedRun(name, deck, [], deck_times(deck, linear=linear)[1:], None)


def check_run(run: ImportedRun, cfg, mesh) -> dict:
    """Refuse a run the HF solver cannot take (``cfg``: its HifiConfig on ``mesh``, the import's mesh with
    its sets), naming the run's deck and the reason; returns the case to solve ``{name, deck, config,
    increments}`` (JSON-able: sent to every rank)."""
    from structrom.mpi.errors import StructromError

    from ..hifi.run import check_problem

    try:
        check_problem(cfg, mesh)
    except (StructromError, ValueError) as exc:
        raise CalculixError(f"run {run.name} ({run.deck.path}): the in-house HF solver cannot solve it: {exc}") from None
    return {"name": run.name, "deck": str(Path(run.deck.path).resolve()), "config": cfg.model_dump(mode="json"),
            "increments": len(run.times)}


def solve_runs(cases: list[dict], comm, log=print) -> list[Path]:
    """Solve every case of :func:`check_run` on ``comm`` (all its ranks call this), writing each case's
    ``output.file`` (rank 0) with ``solver`` metadata naming the deck; one progress line per run (rank 0)."""
    from ..hifi.config import HifiConfig
    from ..hifi.run import run_hifi

    rank0 = comm.Get_rank() == 0
    say = log if rank0 else (lambda *a, **k: None)
    out = []
    for k, case in enumerate(cases):
        cfg = HifiConfig.model_validate(case["config"])
        say(f"  [{k + 1}/{len(cases)}] {case['name']}: HF solve of {case['increments']} increments on "
            f"{comm.Get_size()} rank{'s' if comm.Get_size() > 1 else ''}")
        t0 = time.perf_counter()
        path = run_hifi(cfg, comm, log=lambda *a, **kw: None,
                        metadata={"solver": {"name": "structrom hifi", "deck": case["deck"]}})
        say(f"  [{k + 1}/{len(cases)}] {case['name']}: done in {time.perf_counter() - t0:.1f} s -> {path}")
        out.append(path)
    return out
