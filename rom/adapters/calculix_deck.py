"""Read a user's CalculiX 2.20 deck into the project's objects: mesh, sets, laws, boundary conditions,
loads, temperatures and step times.

:func:`read_deck` parses every card (following ``*INCLUDE``); each keyword is mapped, ignored with a
reason, or refused by name and line (``not supported: *CONTACT PAIR, model.inp:812: contact is not
modelled``), see :mod:`.calculix_keywords`. Nothing is dropped silently.

Time histories follow ccx 2.20 (checked on ccx runs): steps follow each other in *total time*; a
``*STATIC``/``*VISCO`` step lasts its time period (second number of the data line, default 1); a value
given in a step without ``AMPLITUDE`` is ramped linearly over the step from the value at the end of the
previous step (loads, prescribed displacements and ``*TEMPERATURE`` alike, also when the card has
``OP=NEW``) in a ``*STATIC`` step, and applied at once from the start of a ``*VISCO`` step; with
``AMPLITUDE=A`` it is ``value * A(step time)`` (``A(total time)`` for ``*AMPLITUDE, TIME=TOTAL TIME``;
``A(t - d)`` with the card's ``TIME DELAY=d``), amplitudes being piecewise linear and constant outside their points; a load not
given again in a later step keeps its value at the end of the previous step, constant (``OP=MOD``; its
amplitude is not carried on), unless the amplitude is in total time (it goes on) or the value is a
temperature (its amplitude goes on, in the later step's time); ``OP=NEW`` removes the earlier loads of the
card's kind that it does not define again, from the step's start (no ramp down), and only on the step's first card of its kind (ccx
ignores it on later ones). Loads given to one node dof or face more than once in a step (two lines or
cards, overlapping sets, a set listing it twice) add up, as in ccx; boundary values and temperatures given
twice take the last value. Initial temperatures come from ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` (0 elsewhere).

:class:`StepTable` stores these histories for many keys at once (nodes, faces, dofs) and evaluates them
at any times, vectorized over the keys.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fem.mesh import Mesh
from .calculix_cards import Card, DeckLimits, _error, _float, as_id, line_at, not_supported, read_cards
from .calculix_error import CalculixError
from .inp import LISTED_PER_LINE, InpIds, read_inp
from .calculix_history import Amplitude, Step, StepTable, evaluate
from .calculix_keywords import classify
from .calculix_loads import _check_boundary_renewal, _load_card
from .calculix_materials import material_config

__all__ = ["Card", "Deck", "StepTable", "read_cards", "read_deck", "not_supported"]


# -- the deck ------------------------------------------------------------------------------------------
@dataclass
class Deck:
    """A parsed deck. Mesh and ids from :func:`~.calculix.read_inp`; ``materials``: ``[(element set,
    law config, card)]``; histories as :class:`StepTable` (``temperature`` per node, ``pressure`` per
    face key ``(element index, face)``, ``boundary`` and ``cload`` per dof ``3 node + c``,
    ``centrifugal`` and ``gravity`` one key each, their geometry in ``centrifugal_axis``/``gravity_dir``);
    ``first_card``: keyword -> first card (for error messages); ``ignored``: ``[(keyword, where, why)]``."""

    path: Path
    mesh: Mesh
    ids: InpIds
    materials: list[tuple[str, dict, Card]]
    steps: list[Step]
    amplitudes: dict[str, Amplitude]
    temperature: StepTable
    pressure: StepTable
    boundary: StepTable
    cload: StepTable
    centrifugal: StepTable
    gravity: StepTable
    centrifugal_axis: tuple | None = None
    gravity_dir: tuple | None = None
    first_card: dict[str, Card] = field(default_factory=dict)
    ignored: list[tuple[str, str, str]] = field(default_factory=list)
    heading: str = ""
    #: how many node, element or face entries the load, boundary and temperature lines may name in all, sets
    #: expanded: :data:`.inp.LISTED_PER_LINE` per data line, plus every dof, node and face of the mesh once per step
    #: (a step may set them all: the histories hold that much anyway); thousands of lines naming one large set would
    #: grow the histories without bound. ``listed``: how many they named so far
    listed_limit: int | None = None
    listed: int = 0

    def count_listed(self, card: Card, number: int, n: int) -> None:
        """Count ``n`` entries named by line ``number`` of ``card``; refused past :attr:`listed_limit`."""
        self.listed += n
        if self.listed_limit is not None and self.listed > self.listed_limit:
            raise _error(card, number, f"the load, boundary and temperature lines name {self.listed} nodes, elements "
                                       f"or faces up to this line (sets expanded), more than the {self.listed_limit} "
                                       f"a deck of this size holds ({LISTED_PER_LINE} per data line, and each dof, "
                                       "node and face once per step): name a large set once per step and load, not "
                                       "on many lines")

    @property
    def end_time(self) -> float:
        return self.steps[-1].end if self.steps else 0.0

    def model_times(self, times: np.ndarray) -> np.ndarray:
        """Our loading times of ccx total ``times``: the same, except in a deck with a creep law, where each
        ``*STATIC`` step lasts :data:`STATIC_CREEP_SCALE` times its period (ccx does not creep in a
        ``*STATIC`` step, checked on ccx runs; our Norton law creeps whenever time passes, so the step is made
        (almost) instantaneous: creep strain of order ``STATIC_CREEP_SCALE`` times a second's)."""
        times = np.asarray(times, float)
        creep = any(law.get("type") == "norton_viscoplasticity" for _, law, _ in self.materials
                    if isinstance(law, dict))
        if not creep or all(not s.ramp for s in self.steps):
            return times
        knots = np.array([self.steps[0].start] + [s.end for s in self.steps])
        spans = np.diff(knots) * np.array([STATIC_CREEP_SCALE if s.ramp else 1.0 for s in self.steps])
        return np.interp(times, knots, knots[0] + np.concatenate([[0.0], np.cumsum(spans)]))

    def history(self, name: str, times: np.ndarray) -> np.ndarray:
        """``(n_times, n_keys)`` history of table ``name`` at total ``times``."""
        return evaluate(getattr(self, name), self.steps, self.amplitudes, times)


#: Duration factor of *STATIC steps in decks with a creep law (see Deck.model_times).
STATIC_CREEP_SCALE = 1e-9


def read_deck(path: str | os.PathLike, limits: DeckLimits | None = None, cards: list[Card] | None = None) -> Deck:
    """Parse a CalculiX 2.20 deck (module docstring); raise :class:`CalculixError` naming the keyword,
    file and line of anything that cannot be imported. ``limits``: bounds on the flat deck of a part/assembly deck
    (:class:`~.calculix_cards.DeckLimits`); ``cards``: the deck's cards when the caller has read them
    (``read_cards(path)``, not changed here; None: read here)."""
    path = Path(path)
    cards = read_cards(path, limits=limits) if cards is None else cards
    for card in cards:
        status, why = classify(card.keyword)
        if status == "refused":
            raise not_supported(card, why)
        if card.keyword == "RESTART" and any(k.upper() == "READ" for k in card.params):
            raise not_supported(card, "READ: the run continues from a restart file's state, which the deck does not "
                                      "hold; give the whole history in one deck (*RESTART, WRITE is ignored)")
        if card.keyword == "INITIAL CONDITIONS" and card.params.get("TYPE", "").upper() != "TEMPERATURE":
            raise not_supported(card, f"TYPE={card.params.get('TYPE', '(missing)')}: only TYPE=TEMPERATURE "
                                      "initial conditions are imported (no initial stresses, strains or velocities)")
    mesh, ids = read_inp(path, cards)
    n_nodes = mesh.n_nodes
    deck = Deck(path, mesh, ids, [], [], {}, StepTable(np.zeros(n_nodes), keep_amplitudes=True),
                StepTable(accumulate=True), StepTable(np.zeros(3 * n_nodes)),
                StepTable(np.zeros(3 * n_nodes), accumulate=True), StepTable(np.zeros(1)), StepTable(np.zeros(1)),
                listed_limit=LISTED_PER_LINE * sum(len(c.data) for c in cards) + (
                    sum(c.keyword == "STEP" for c in cards) + 1) * (7 * n_nodes + 6 * mesh.n_elements))
    upper_nsets = {k.upper(): k for k in mesh.node_sets}
    upper_elsets = {k.upper(): k for k in mesh.element_sets}
    upper_surfs = {k.upper(): k for k in mesh.surface_sets}

    def members(kind: str, card: Card, token: str, number: int) -> np.ndarray:
        """Our indices of the node/element id or set name ``token``."""
        lookup, names, sets = ((ids.node_index, upper_nsets, mesh.node_sets) if kind == "node" else
                               (ids.element_index, upper_elsets, mesh.element_sets))
        number_id = as_id(token)
        if number_id is not None:
            try:
                return lookup(np.array([number_id]))
            except CalculixError as exc:
                raise _error(card, number, str(exc)) from None
        if not token:  # (body loads on no element set are on the whole model: abaqus_assembly.on_whole_model)
            raise _error(card, number, f"the {kind} field is empty (only a body load, GRAV or CENTRIF, on no "
                                       f"element set is on the whole model): name the {kind} or its set")
        if token.upper() not in names:
            article = "an" if kind == "element" else "a"
            raise _error(card, number, f"{token!r} is neither {article} {kind} id nor {article} {kind} set")
        name = names[token.upper()]
        if not len(sets[name]):  # (a mesher's group that came out empty: ccx runs the line silently)
            deck.ignored.append((card.keyword, line_at(card, number), f"{kind} set {name} is empty: the line applies "
                                                                      "nothing (ccx runs it so too, without a warning)"))
        out = ids.repeated.get((kind, name), sets[name])  # (as listed: ccx loads twice)
        deck.count_listed(card, number, len(out))
        return out

    def nodes_of(card: Card, token: str, number: int) -> np.ndarray:
        return members("node", card, token, number)

    def elements_of(card: Card, token: str, number: int) -> np.ndarray:
        return members("element", card, token, number)

    def amplitude_of(card: Card) -> str | None:
        """The card's amplitude (``TIME DELAY=d``: the amplitude shifted by ``d``, ``A(t - d)``, as in ccx)."""
        name = card.params.get("AMPLITUDE")
        delay = card.params.get("TIMEDELAY")
        if name is None:
            if delay is not None:
                raise _error(card, card.line, "TIME DELAY needs an AMPLITUDE (the delay shifts it)")
            return None
        if name.upper() not in deck.amplitudes:
            raise CalculixError(f"{card.where}: *{card.keyword}: AMPLITUDE={name} is not defined by an *AMPLITUDE "
                                "card before it")
        if delay is None:
            return name.upper()
        shift = _float(card, delay, card.line, "TIME DELAY")
        key = f"{name.upper()} DELAYED BY {shift!r}"
        a = deck.amplitudes[name.upper()]
        deck.amplitudes.setdefault(key, Amplitude(key, a.times + shift, a.values, a.total))
        return key

    def check_op(card: Card, table: StepTable, step: int) -> None:
        op = card.params.get("OP", "MOD").upper()
        if op not in ("MOD", "NEW"):
            raise _error(card, card.line, f"OP={op} is unknown; use OP=MOD or OP=NEW")
        if op == "NEW" and step in table.carded:  # (ccx: only the first card of its kind in a step removes loads)
            deck.ignored.append((f"{card.keyword}, OP=NEW", card.where, "not the step's first card of its kind: ccx "
                                 "removes loads only with the first one (the loads are added to the step's earlier ones)"))
        elif op == "NEW":
            table.clear(step, card)
            if table is deck.pressure:  # (ccx: *DLOAD, OP=NEW removes the body loads too, checked)
                deck.gravity.clear(step, card)
                deck.centrifugal.clear(step, card)
        table.carded.add(step)

    materials: dict[str, list[Card]] = {}
    current_material: str | None = None
    step: int = -1
    in_step = False
    total = 0.0
    for card in cards:
        kw = card.keyword
        deck.first_card.setdefault(kw, card)
        status, why = classify(kw)
        if status == "ignored":
            deck.ignored.append((kw, card.where, why))
            continue
        if kw in ("NODE", "ELEMENT", "NSET", "ELSET", "SURFACE"):
            continue  # the mesh: read_inp
        if kw == "HEADING":
            deck.heading = " ".join(card.data)
        elif kw == "MATERIAL":
            current_material = card.params.get("NAME", "").upper()
            if not current_material:
                raise _error(card, card.line, "missing NAME=<material name>")
            materials[current_material] = []
        elif kw in ("ELASTIC", "EXPANSION", "DENSITY", "PLASTIC", "CYCLIC HARDENING", "CREEP"):
            if current_material is None:
                raise _error(card, card.line, "material property outside a *MATERIAL definition")
            materials[current_material].append(card)
        elif kw == "SOLID SECTION":
            elset, mat = card.params.get("ELSET", ""), card.params.get("MATERIAL", "").upper()
            if "ORIENTATION" in card.params:
                raise not_supported(card, "ORIENTATION: anisotropic orientations are not modelled")
            if elset.upper() not in upper_elsets:
                raise _error(card, card.line, f"ELSET={elset!r} is not an element set of the deck")
            if mat not in materials:
                raise _error(card, card.line, f"MATERIAL={mat!r} is not defined by a *MATERIAL card before it")
            deck.materials.append((upper_elsets[elset.upper()], mat, card))  # type: ignore[arg-type]
        elif kw == "AMPLITUDE":
            name = card.params.get("NAME", "").upper()
            if not name:
                raise _error(card, card.line, "missing NAME=<amplitude name>")
            extra = set(card.params) - {"NAME", "TIME", "DEFINITION"}
            if extra or card.params.get("DEFINITION", "TABULAR").upper() != "TABULAR":
                raise not_supported(card, f"parameters {sorted(extra) or ['DEFINITION=' + card.params['DEFINITION']]}: "
                                          "only tabular amplitudes (NAME, TIME) are imported")
            vals = [_float(card, t, n, "amplitude entry") for tokens, n in card.rows() for t in tokens if t]
            if len(vals) % 2 or not vals:
                raise _error(card, card.line, "needs pairs 'time, value'")
            table = np.array(vals).reshape(-1, 2)
            if np.any(np.diff(table[:, 0]) < 0):
                raise _error(card, card.line, "amplitude times must be increasing")
            time = "".join(card.params.get("TIME", "STEP TIME").upper().split())  # (ccx: blanks dropped)
            if time not in ("STEPTIME", "TOTALTIME"):
                raise _error(card, card.line, f"TIME={card.params['TIME']} is unknown; use TIME=STEP TIME or TOTAL TIME")
            deck.amplitudes[name] = Amplitude(name, table[:, 0], table[:, 1], time == "TOTALTIME")
        elif kw == "INITIAL CONDITIONS":
            for tokens, n in card.rows():
                if len(tokens) < 2:
                    raise _error(card, n, "lines must be 'node or node set, temperature'")
                deck.temperature.initial[nodes_of(card, tokens[0], n)] = _float(card, tokens[1], n, "temperature")
        elif kw == "STEP":
            if in_step:
                raise _error(card, card.line, "*STEP inside a step: close the previous one with *END STEP")
            nlgeom = card.params.get("NLGEOM", "NO").upper() if "NLGEOM" in card.params else "NO"
            if nlgeom not in ("NO",):
                raise not_supported(card, "NLGEOM: geometrically nonlinear steps are not modelled (small strains)")
            if "PERTURBATION" in card.params:
                raise not_supported(card, "PERTURBATION steps are not modelled")
            if "AMPLITUDE" in card.params:
                raise not_supported(card, f"AMPLITUDE={card.params['AMPLITUDE']}: give amplitudes on the load cards "
                                          "(*STATIC steps ramp, *VISCO steps apply values at once)")
            step += 1
            in_step = True
            deck.steps.append(Step(step + 1, total, total + 1.0, card))
        elif kw in ("STATIC", "VISCO"):
            if not in_step:
                raise _error(card, card.line, "procedure outside a *STEP")
            if "TIMERESET" in card.params:
                raise not_supported(card, "TIME RESET: every step must advance the total time")
            if "TOTALTIMEATSTART" in card.params:
                raise not_supported(card, "TOTAL TIME AT START: the first step must start at total time 0 and every "
                                          "later one where the previous one ended")
            known = {"DIRECT", "SOLVER"} | ({"CETOL"} if kw == "VISCO" else set())
            for name in sorted(set(card.params) - known):  # (Abaqus's RIKS, STABILIZE...: ccx warns and goes on)
                deck.ignored.append((kw, card.where, f"parameter {name}: ccx 2.20 does not read it (it warns and runs "
                                                     f"a plain *{kw} step, as imported); remove it from the deck"))
            period = 1.0
            rows = card.rows()
            if rows and len(rows[0][0]) > 1 and rows[0][0][1]:
                period = _float(card, rows[0][0][1], rows[0][1], "time period")
            if not period > 0:
                raise _error(card, card.line, f"time period must be > 0, got {period}")
            deck.steps[-1].end = total + period
            deck.steps[-1].ramp = kw == "STATIC"
            deck.steps[-1].procedure = card
        elif kw == "END STEP":
            if not in_step:
                raise _error(card, card.line, "*END STEP without *STEP")
            in_step = False
            total = deck.steps[-1].end
            _check_boundary_renewal(deck, step)
        elif kw in ("BOUNDARY", "CLOAD", "DLOAD", "DSLOAD", "TEMPERATURE"):
            _load_card(deck, card, step, in_step, nodes_of, elements_of, amplitude_of, check_op, upper_surfs)
        else:  # pragma: no cover - every mapped keyword has a branch
            raise not_supported(card, "no import rule")
    if in_step:
        raise CalculixError(f"{path}: the last *STEP has no *END STEP")
    if not deck.steps:
        raise CalculixError(f"{path}: no *STEP: the deck has no analysis to import")
    mats = {name: material_config(name, props) for name, props in materials.items()}
    deck.materials = [(elset, mats[name], card) for elset, name, card in deck.materials]  # type: ignore[index]
    if not deck.materials:
        raise CalculixError(f"{path}: no *SOLID SECTION: assign a material to the elements")
    viscoplastic = [law for _, law, _ in deck.materials
                    if law["type"] == "norton_viscoplasticity" and law["hardening"]["type"] != "linear"]
    static = [s for s in deck.steps if s.ramp]
    if viscoplastic and static:
        raise not_supported(static[0].procedure or static[0].card, "a *STATIC step in a model with *CREEP and *PLASTIC: ccx solves it without creep, "
                                  "rate-independently, which our Norton law cannot reproduce; use *VISCO steps")
    covered = np.zeros(mesh.n_elements, np.int64)
    for elset, _, _ in deck.materials:
        covered[mesh.element_sets[elset]] += 1
    if np.any(covered != 1):
        bad = np.flatnonzero(covered != 1)
        raise CalculixError(f"{path}: elements with ids {ids.element_ids[bad][:10].tolist()} have "
                            f"{int(covered[bad[0]])} *SOLID SECTION assignments; every element needs exactly one")
    return deck
