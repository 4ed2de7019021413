"""A user's CalculiX runs as :func:`.calculix_import.import_calculix` takes them: found, read and checked.

A run is a deck (same mesh and materials as the base deck, its own loads, temperatures and steps) with
its results beside it, ``.frd`` and/or ``.dat``: :func:`find_runs` lists the runs of a directory,
:func:`_read_results` reads a run's displacement ``(n_inc, n_nodes, 3)`` at its increment end times (ccx
total time) and its integration-point fields from ``*EL PRINT`` (``(n_inc, n_points[, 6])``), and
:func:`_check_same_model` refuses a run whose mesh or materials differ from the base deck's.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calculix_deck import Deck
from .calculix_error import CalculixError
from .dat import read_dat
from .frd import read_frd_file
from .magnitudes import ABSURD, beyond

__all__ = ["ImportedRun", "find_runs", "TIME_RTOL"]

#: Relative tolerance on increment times matched between .frd/.dat results and between runs' decks.
TIME_RTOL = 1e-6


@dataclass
class ImportedRun:
    """One run: its ``deck``, result files, increment end ``times`` ``(n_inc,)`` (ccx total time),
    ``displacement`` ``(n_inc, n_nodes, 3)`` (None for a run without results, to be solved) and optional integration-point ``points`` fields
    (``stress``, ``strain``, ``cumulated_plastic_strain``: ``(n_inc, n_points[, 6])``)."""

    name: str
    deck: Deck
    results: list[Path]
    times: np.ndarray
    displacement: np.ndarray | None
    points: dict[str, np.ndarray] = field(default_factory=dict)



def find_runs(directory: str | os.PathLike) -> list[tuple[str, Path, list[Path]]]:
    """``[(name, deck, [result files])]`` for every ``<name>.inp`` in ``directory`` that has a ``<name>.frd``
    and/or ``<name>.dat`` beside it, or none but a ``*STEP`` card (a run to solve: an empty list; a deck
    without steps, such as an included mesh, is no run). Sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalculixError(f"runs directory {str(directory)!r} does not exist")
    out = []
    for deck in sorted(directory.glob("*.inp")):
        results = [p for p in (deck.with_suffix(".frd"), deck.with_suffix(".dat")) if p.exists()]
        if results or _has_step(deck):
            out.append((deck.stem, deck, results))
    if not out:
        raise CalculixError(f"{directory}: no run found: each run is '<name>.inp' with a *STEP, and '<name>.frd' "
                            "and/or '<name>.dat' (ccx's results) beside it, or none (solved by the in-house HF solver)")
    return out


_STEP_CARD = re.compile(rb"^[ \t]*\*[ \t]*STEP\b", re.IGNORECASE | re.MULTILINE)


def _has_step(deck: Path) -> bool:
    """Whether the file holds a ``*STEP`` card (a run's deck; an included mesh or material file has none)."""
    try:
        return _STEP_CARD.search(deck.read_bytes()) is not None
    except OSError as exc:
        raise CalculixError(f"cannot read {str(deck)!r}: {exc}") from None


def _read_results(name: str, deck: Deck, results: list[Path]) -> ImportedRun:
    from ..hifi.output import element_point_offsets

    mesh, ids = deck.mesh, deck.ids
    frd = next((p for p in results if p.suffix.lower() == ".frd"), None)
    dat = next((p for p in results if p.suffix.lower() == ".dat"), None)
    disp: dict[float, np.ndarray] = {}
    points: dict[str, dict[float, np.ndarray]] = {}
    used = mesh.used_nodes()  # (ccx writes no result at a node of no element: its displacement is 0)
    if frd is not None:
        f = read_frd_file(frd)
        for inc in f.increments:
            if "DISP" in inc.fields:
                disp[inc.time] = np.zeros((mesh.n_nodes, 3))
                try:
                    disp[inc.time][used] = inc.nodal("DISP", ids.node_ids[used])
                except CalculixError as exc:
                    raise CalculixError(f"run {name}: {frd}: {exc}") from None
    if dat is not None:
        offsets = element_point_offsets(mesh)
        n_points = int(offsets[-1])
        # per printed quantity: the times it covers every node / point, and (time, rows) where it does not
        whole: dict[str, list[float]] = {}
        part: dict[str, list[tuple[float, int]]] = {}
        from_dat = not disp
        for t, blocks in read_dat(dat).items():
            u = blocks.get("U")
            if u is not None and from_dat:
                if len(np.unique(u.ids)) < int(used.sum()):  # (every node of an element, at least)
                    part.setdefault("U", []).append((t, len(np.unique(u.ids))))
                else:
                    whole.setdefault("U", []).append(t)
                    full = np.zeros((mesh.n_nodes, 3))
                    full[ids.node_index(u.ids)] = u.values[:, :3]
                    disp[t] = full
            for q, key, c in (("S", "stress", 6), ("E", "strain", 6), ("PEEQ", "cumulated_plastic_strain", 1)):
                b = blocks.get(q)
                if b is None or b.ids.ndim != 2:
                    continue
                el = ids.element_index(b.ids[:, 0])
                inside = (b.ids[:, 1] >= 1) & (b.ids[:, 1] <= offsets[el + 1] - offsets[el])
                if not inside.all():
                    k = int(np.flatnonzero(~inside)[0])
                    raise CalculixError(f"{dat}: the {q} block(s) at time {t:g} list integration point {b.ids[k, 1]} of "
                                        f"element {b.ids[k, 0]}, which has {offsets[el[k] + 1] - offsets[el[k]]}: the "
                                        "results belong to another mesh or element type")
                at = offsets[el] + b.ids[:, 1] - 1
                if len(np.unique(at)) != n_points:
                    part.setdefault(q, []).append((t, len(np.unique(at))))
                    continue
                whole.setdefault(q, []).append(t)
                vals = np.full((n_points, c), np.nan)
                vals[at] = b.values[:, :c]
                if not np.array_equal(vals[at], b.values[:, :c]):  # (a point printed twice with other values)
                    k = int(np.flatnonzero((vals[at] != b.values[:, :c]).any(axis=1))[0])
                    raise CalculixError(f"{dat}: the {q} block(s) at time {t:g} print element {b.ids[k, 0]}, point "
                                        f"{b.ids[k, 1]} twice with different values: the print requests differ (an "
                                        "orientation?) or the file is damaged")
                points.setdefault(key, {})[t] = vals[:, 0] if c == 1 else vals
        for q, short in part.items():
            if q in whole:  # (printed for a subset at every time is not read; complete at some times only: damage)
                t, rows = short[0]
                n = mesh.n_nodes if q == "U" else n_points
                raise CalculixError(f"{dat}: the {q} block(s) at time {t:g} cover {rows} of the {n} "
                                    f"{'nodes' if q == 'U' else 'integration points'}, those at time {whole[q][0]:g} "
                                    "all of them: the file is truncated or damaged; run ccx again")
    if not disp:
        raise CalculixError(f"run {name}: no displacements on all {mesh.n_nodes} nodes in {[str(p) for p in results]}; "
                            "request U in *NODE FILE (or *NODE PRINT on a set of all nodes)")
    times = np.array(sorted(disp))
    if np.any(np.diff(times) <= 0) or times[0] <= 0:
        raise CalculixError(f"run {name}: result times {times.tolist()[:10]} must be > 0 and increasing")
    end = deck.end_time
    if abs(times[-1] - end) > TIME_RTOL * max(1.0, end):
        raise CalculixError(f"run {name}: results end at time {times[-1]:g} but the deck's steps end at {end:g}: "
                            "the run stopped early (see its .sta/.dat) or the results belong to another deck")
    fields = {}
    for key, by_time in points.items():
        if len(by_time) == len(times):
            fields[key] = np.array([by_time[min(by_time, key=lambda s: abs(s - t))] for t in times])
    u = np.array([disp[t] for t in times])
    for what, values in (("displacements", u), *fields.items()):
        bad = beyond(values)  # (NaN, inf and finite values no converged increment has)
        if bad.any():
            at = np.argwhere(bad)[0]
            where = f"node id {int(ids.node_ids[at[1]])}" if what == "displacements" else \
                f"integration point {int(at[1])} (0-based, element order)"
            raise CalculixError(f"run {name}: {what} at time {times[at[0]]:g} is {float(values[tuple(at)]):.6g} at "
                                f"{where} in {[str(p) for p in results]}: not finite or above {ABSURD:g} in magnitude, "
                                "not a result of a converged increment (a diverged run or a damaged file)")
    return ImportedRun(name, deck, results, times, u, fields)


def _check_same_model(base: Deck, run: ImportedRun) -> None:
    m, b = run.deck.mesh, base.mesh
    same = m.points.shape == b.points.shape and np.array_equal(m.points, b.points) and len(m.blocks) == len(b.blocks) \
        and all(x.element == y.element and np.array_equal(x.connectivity, y.connectivity) for x, y in zip(m.blocks, b.blocks))
    if not same:
        raise CalculixError(f"run {run.name} ({run.deck.path}): its mesh differs from the base deck's {base.path}; "
                            "all runs must share the base deck's mesh")
    mats = [(e, law) for e, law, _ in run.deck.materials]
    if mats != [(e, law) for e, law, _ in base.materials]:
        raise CalculixError(f"run {run.name} ({run.deck.path}): materials differ from the base deck's; one reduced "
                            "model has one material assignment (material parameters cannot vary between runs)")
