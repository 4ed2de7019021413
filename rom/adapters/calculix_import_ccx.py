"""Runs given as decks, solved by CalculiX during the import (``structrom import calculix --solve ccx``).

Each run deck is written as the flat deck ccx reads (:func:`.calculix_cards.read_cards`: ``*INCLUDE`` files read in
place, an Abaqus part/assembly deck flattened; :func:`.abaqus_cards.write_cards`) into a scratch directory of the
import's output, ``OUT/ccx/<run>/<run>.inp`` (nothing is written beside the user's decks), with its own output
requests replaced by those the import reads (:mod:`.calculix_import_runs`): ``*NODE FILE`` ``U`` (displacements at
every increment, ``.frd``) and ``*EL PRINT`` ``S, E, PEEQ`` on every element (ccx's integration-point reference
fields, ``.dat``) in every step. ccx runs there (:func:`.calculix_runner.run_ccx`) with
``OMP_NUM_THREADS``/``CCX_NPROC_EQUATION_SOLVER`` = :func:`ccx_threads`, and its results are imported as a run
with results is. A ccx run that fails is refused naming the run, its deck, ccx's ``*ERROR`` lines (or its output's
last lines) and the last lines of its ``.sta``.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np

from .abaqus_cards import write_cards
from .calculix_cards import Card, read_cards
from .calculix_error import CalculixError
from .calculix_keywords import IGNORED, _OUTPUT
from .calculix_runner import run_ccx

__all__ = ["CCX_OUTPUT", "ALL_ELEMENTS", "OUTPUT_REPLACED", "ccx_threads", "require_ccx", "check_ccx_solve",
           "write_ccx_deck", "solve_with_ccx"]

#: The element set of every element the written deck's ``*EL PRINT`` names (``_`` appended while the deck has a
#: set of that name).
ALL_ELEMENTS = "STRUCTROM_ALL_ELEMENTS"

#: The output requests written into every step of a deck given to ccx (what the import of ccx results reads);
#: ``ELSET`` is :data:`ALL_ELEMENTS`.
CCX_OUTPUT = (("NODE FILE", {}, ["U"]), ("EL PRINT", {"ELSET": ALL_ELEMENTS}, ["S, E, PEEQ"]))

#: Why a run deck's output request is ignored (``family.json``'s ``ignored``).
OUTPUT_REPLACED = ("output request: the deck given to ccx requests *NODE FILE U and *EL PRINT S, E, PEEQ on every "
                   "element, in every step, in place of the deck's own")

#: A run name ccx takes as its job name as it is.
_JOBNAME = re.compile(r"[A-Za-z0-9_.+-]{1,100}")

#: The cards of a user's deck that are output requests (replaced by :data:`CCX_OUTPUT`).
_REQUESTS = frozenset(k for k, why in IGNORED.items() if why == _OUTPUT)


def ccx_threads(environ: dict | None = None) -> int:
    """ccx's threads: ``CCX_NPROC_EQUATION_SOLVER``, else ``OMP_NUM_THREADS``, else 1 (a positive integer)."""
    environ = os.environ if environ is None else environ
    for key in ("CCX_NPROC_EQUATION_SOLVER", "OMP_NUM_THREADS"):
        value = environ.get(key, "").strip()
        if value:
            try:
                n = int(value)
            except ValueError:
                n = 0
            if n < 1:
                raise CalculixError(f"{key}={value!r}: expected a positive integer (ccx's threads)")
            return n
    return 1


def require_ccx(ccx: str = "ccx") -> str:
    """The path of the ``ccx`` executable; refused naming the fix when it is not on ``PATH``."""
    found = shutil.which(ccx)
    if found is None:
        raise CalculixError(f"--solve ccx: CalculiX's {ccx!r} is not on PATH: install it (e.g. apt-get install "
                            "calculix-ccx) or put it on PATH, or give --solve hf (the in-house HF solver)")
    return found


def check_ccx_solve(comm=None, solver: dict | None = None) -> None:
    """Refuse what ``--solve ccx`` cannot take, before any deck is read: ``comm`` of more than one rank (every rank
    would run every deck), an HF ``solver`` table, ccx missing, ccx's thread variables invalid."""
    if comm is not None and comm.Get_size() > 1:
        raise CalculixError("--solve ccx runs ccx once per deck in one process (its threads: OMP_NUM_THREADS): run "
                            "the import without mpirun")
    if solver is not None:
        raise CalculixError("--solver: the HF solver's [solver] table; ccx reads its controls from the decks: leave it "
                            "out, or give --solve hf")
    require_ccx()
    ccx_threads()


def write_ccx_deck(deck: str | os.PathLike, path: str | os.PathLike, element_ids: np.ndarray,
                   cards: list[Card] | None = None) -> Path:
    """Write ``deck`` (a run deck, flat or part/assembly) as the flat deck ``path`` ccx runs: its output requests
    replaced by :data:`CCX_OUTPUT` in every step, the set :data:`ALL_ELEMENTS` (a name the deck's sets do not have)
    of ``element_ids`` ``(n_elements,)`` (ccx ids) made before the first ``*STEP``. ``cards``: ``deck``'s cards
    when the caller has read them (``read_cards(deck)``; None: read here)."""
    cards = [c for c in (read_cards(deck) if cards is None else cards) if c.keyword not in _REQUESTS]
    here = Path(deck)
    taken = {c.params.get("ELSET", "").upper() for c in cards}
    name = ALL_ELEMENTS
    while name in taken:  # (a set of the user's is never added to)
        name += "_"
    ids = [str(int(i)) for i in np.asarray(element_ids)]
    elset = Card("ELSET", {"ELSET": name}, here, 0,
                 [", ".join(ids[i:i + 16]) + "," for i in range(0, len(ids), 16)])
    out: list[Card] = []
    for card in cards:
        if card.keyword == "STEP" and elset is not None:
            out.append(elset)
            elset = None
        if card.keyword == "END STEP":
            out += [Card(k, {q: name if q == "ELSET" else v for q, v in p.items()}, here, 0, list(d))
                    for k, p, d in CCX_OUTPUT]
        out.append(card)
    return write_cards(out, path)


def solve_with_ccx(name: str, deck: str | os.PathLike, element_ids: np.ndarray, scratch: str | os.PathLike, *,
                   timeout: float | None = None, log=lambda msg: None, cards: list[Card] | None = None) -> list[Path]:
    """Run ccx on run ``name``'s ``deck`` in ``scratch/<name>/`` (:func:`write_ccx_deck`, job ``name``, or ``job``
    for a name with other characters than letters, digits and ``_.+-``); returns its result files
    ``[<job>.frd, <job>.dat]``. ``timeout``: seconds per run (None: no limit); ``cards``: as :func:`write_ccx_deck`. Raises
    :class:`CalculixError` naming the run and deck, with ccx's errors and the tail of its ``.sta``."""
    jobdir = Path(scratch) / name
    jobdir.mkdir(parents=True, exist_ok=True)
    job = name if _JOBNAME.fullmatch(name) else "job"  # (ccx's job name: no blanks, at most 132 characters)
    write_ccx_deck(deck, jobdir / f"{job}.inp", element_ids, cards)
    threads = ccx_threads()
    try:
        run = run_ccx(jobdir, job, timeout=timeout, ccx=require_ccx(), threads=threads, require=("frd", "dat"))
    except CalculixError as exc:
        sta = jobdir / f"{job}.sta"
        tail = sta.read_text(errors="replace").splitlines()[-6:] if sta.exists() else []
        raise CalculixError(f"run {name} ({deck}): {exc}" +
                            (f"\nlast lines of {sta}:\n" + "\n".join(tail) if tail else "")) from None
    log(f"  {name}: ccx done in {run.seconds:.1f} s on {threads} thread{'s' if threads > 1 else ''} ({jobdir})")
    return [run.frd, run.dat]
