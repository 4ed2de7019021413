"""The load, boundary and temperature cards of a CalculiX deck (``*BOUNDARY``, ``*CLOAD``, ``*DLOAD``,
``*TEMPERATURE``...) into the step tables of a :class:`~structrom.rom.adapters.calculix_deck.Deck`, with the rules of
ccx 2.20 that :mod:`.calculix_deck`'s docstring states (loads given twice on one key in a step add up, only with one
amplitude; ``OP=NEW`` on boundaries gives every constrained dof again; cards whose values come from elsewhere are
refused)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..fem.mesh import MeshError, check_faces
from .calculix_cards import Card, _error, _float, line_at, not_supported
from .calculix_history import StepTable

if TYPE_CHECKING:
    from .calculix_deck import Deck

_PRESSURE = re.compile(r"^P([1-6])$")


#: Parameters of ccx's load, boundary and temperature cards that take the values from elsewhere (the card's own
#: values would be read as if they were the load).
_OTHER_LOAD_SOURCES = {
    "USER": "values from a user subroutine", "SUBMODEL": "values interpolated from a global model",
    "FILE": "values from a result file", "LOADCASE": "a load case of steady-state dynamics",
    "SECTOR": "a sector of a cyclic-symmetry model", "OMEGA0": "a Green-function load",
}


def _load_card(deck: Deck, card: Card, step: int, in_step: bool, nodes_of, elements_of, amplitude_of, check_op,
               upper_surfs) -> None:
    kw = card.keyword
    mesh = deck.mesh
    if kw == "BOUNDARY" and not in_step:
        step = 0  # model-level boundary conditions hold from the start
    elif not in_step:
        raise _error(card, card.line, "load outside a *STEP")
    other = sorted(set(card.params) & set(_OTHER_LOAD_SOURCES))
    if other:
        raise not_supported(card, f"{other[0]}: {_OTHER_LOAD_SOURCES[other[0]]}; give the values in the deck")
    amp = amplitude_of(card)
    if kw == "TEMPERATURE":
        if card.params.get("OP", "MOD").upper() == "NEW":
            raise not_supported(card, "OP=NEW: temperatures keep their values between steps; give every node")
        if "FILE" in card.params or "USER" in card.params:
            raise not_supported(card, "FILE/USER temperatures: give the nodal values in the deck (or an *INCLUDE)")
        for tokens, n in card.rows():
            if len(tokens) < 2:
                raise _error(card, n, "lines must be 'node or node set, temperature'")
            nodes = nodes_of(card, tokens[0], n)
            deck.temperature.set(step, nodes, np.full(len(nodes), _float(card, tokens[1], n, "temperature")), amp)
        return
    if kw == "BOUNDARY":
        if card.params.get("TYPE", "DISPLACEMENT").upper() != "DISPLACEMENT" or "FIXED" in card.params \
                or "SUBMODEL" in card.params or "USER" in card.params or "MASSFLOW" in card.params:
            raise not_supported(card, f"parameters {sorted(card.params)}: only displacement values are imported")
        op = card.params.get("OP", "MOD").upper()
        if op not in ("MOD", "NEW"):
            raise _error(card, card.line, f"OP={op} is unknown; use OP=MOD or OP=NEW")
        if op == "NEW" and not in_step:
            raise not_supported(card, "OP=NEW outside a step: give the model's boundary conditions without it")
        if in_step:  # (OP=NEW: the dofs must all be given again in the step, checked at its *END STEP)
            check_op(card, deck.boundary, step)
        for tokens, n in card.rows():
            if len(tokens) < 2:
                raise _error(card, n, "lines must be 'node or node set, first dof[, last dof[, value]]'")
            first = int(_float(card, tokens[1], n, "first dof"))
            last = int(_float(card, tokens[2], n, "last dof")) if len(tokens) > 2 and tokens[2] else first
            value = _float(card, tokens[3], n, "value") if len(tokens) > 3 and tokens[3] else 0.0
            if 1 <= first <= last <= 6 and last > 3:  # (ccx ignores rotations at nodes of solid elements)
                deck.ignored.append(("BOUNDARY", line_at(card, n), f"dofs {max(first, 4)}-{last}: the nodes of solid "
                                     "elements have no rotations (ccx ignores them)"))
                if first > 3:
                    continue
                last = 3
            if not (1 <= first <= last <= 3):
                raise not_supported(card, f"dofs {first}-{last} at line {n}: only translations 1-3 of solid "
                                          "elements exist (no temperatures 11, pressures 8)")
            nodes = nodes_of(card, tokens[0], n)
            dofs = (3 * nodes[:, None] + np.arange(first - 1, last)[None, :]).ravel()
            new = [int(d) for d in dofs if int(d) not in deck.boundary.keys]
            if new and step > 0:
                raise not_supported(card, f"line {n} constrains dofs first in step {step + 1}: the constrained dofs "
                                          "must be the same in every step (give them in the first step, value 0)")
            deck.boundary.keys.update({d: step for d in new})
            deck.boundary.set(step, dofs, np.full(len(dofs), value), amp)
        return
    if kw == "CLOAD":
        check_op(card, deck.cload, step)
        for tokens, n in card.rows():
            if len(tokens) < 3:
                raise _error(card, n, "lines must be 'node or node set, dof, value'")
            dof = int(_float(card, tokens[1], n, "dof"))
            if not 1 <= dof <= 3:
                raise not_supported(card, f"dof {dof} at line {n}: only forces in directions 1-3")
            nodes = nodes_of(card, tokens[0], n)
            _check_added(deck.cload, card, n, step, 3 * nodes + dof - 1, amp, "node dof")
            deck.cload.set(step, 3 * nodes + dof - 1, np.full(len(nodes), _float(card, tokens[2], n, "force")), amp)
        return
    # DLOAD / DSLOAD
    check_op(card, deck.pressure, step)
    for tokens, n in card.rows():
        if len(tokens) < 3:
            raise _error(card, n, "lines must be 'element or element set, label, magnitude[, ...]'")
        label = tokens[1].upper()
        m = _PRESSURE.match(label)
        if kw == "DSLOAD" or (label == "P" and tokens[0].upper() in upper_surfs):
            # (ccx 2.20 reads '*DLOAD' lines 'surface, P, value' as *DSLOAD lines, checked: same displacements)
            if label != "P":
                raise not_supported(card, f"load label {label} at line {n}: only pressures P are imported")
            if tokens[0].upper() not in upper_surfs:
                raise _error(card, n, f"{tokens[0]!r} is not an element-face *SURFACE")
            faces = mesh.surface_sets[upper_surfs[tokens[0].upper()]]
            deck.count_listed(card, n, len(faces))
        elif m:
            els = elements_of(card, tokens[0], n)
            faces = np.column_stack([els, np.full(len(els), int(m.group(1)) - 1)])
            try:
                check_faces(mesh.blocks, faces, f"load label {label}", deck.ids.element_ids)
            except MeshError as exc:
                raise _error(card, n, str(exc)) from None
        elif label in ("CENTRIF", "GRAV"):
            els = elements_of(card, tokens[0], n)
            if len(np.unique(els)) != mesh.n_elements:
                raise not_supported(card, f"{label} on {len(np.unique(els))} of {mesh.n_elements} elements at line {n}: "
                                          "body loads are imported on all elements only")
            vals = [_float(card, t, n, f"{label} entry") for t in tokens[2:]]
            table = deck.centrifugal if label == "CENTRIF" else deck.gravity
            need = 8 if label == "CENTRIF" else 5
            if len(vals) < need - 1:
                raise _error(card, n, f"{label} needs {need - 1} numbers: " + (
                    "omega^2, point (3), axis direction (3)" if label == "CENTRIF" else "magnitude, direction (3)"))
            geometry = tuple(vals[1:need - 1])
            attr = "centrifugal_axis" if label == "CENTRIF" else "gravity_dir"
            old = getattr(deck, attr)
            if old is not None and not np.allclose(old, geometry):
                raise not_supported(card, f"{label} at line {n} with another axis/direction than before: the loading "
                                          "family has one rotation axis and one gravity direction")
            setattr(deck, attr, geometry)
            table.set(step, np.array([0]), np.array([vals[0]]), amp)
            continue
        elif label.startswith(("TRVEC", "TRSHR", "TRNOR")):
            raise not_supported(card, f"load label {label} at line {n}: ccx 2.20 has no traction labels (it stops "
                                      "reading such a deck); give tractions as pressures Pn or as *CLOAD nodal forces")
        else:
            raise not_supported(card, f"load label {label} at line {n}: only P1-P6, CENTRIF and GRAV are imported")
        keys = np.array([deck.pressure.index((int(e), int(f))) for e, f in faces.tolist()], np.int64)
        _check_added(deck.pressure, card, n, step, keys, amp, "face")
        deck.pressure.set(step, keys, np.full(len(keys), _float(card, tokens[2], n, "pressure")), amp)


def _check_added(table: StepTable, card: Card, number: int, step: int, keys: np.ndarray, amp: str | None,
                 what: str) -> None:
    """Refuse a load given to a key already loaded in the step with another amplitude (ccx adds the loads of a
    step on one key, and stops when their amplitudes differ)."""
    if table.other_amplitude(step, keys, amp).any():
        raise _error(card, number, f"a {what} loaded earlier in this step with another amplitude: ccx adds the "
                                   "loads of a step on one node dof or face and refuses different amplitudes; give "
                                   "the sum with one amplitude")


def _check_boundary_renewal(deck: Deck, step: int) -> None:
    """A ``*BOUNDARY, OP=NEW`` in ``step`` (as PrePoMax writes in every step) must give every constrained dof
    again: the constrained dofs are part of the model (ccx ramps the values given again from their old ones)."""
    card = deck.boundary.cleared.get(step)
    if card is None:
        return
    given = [idx for s, op, idx, _, _ in deck.boundary.entries if s == step and op == "set"]
    missing = np.setdiff1d(np.array(sorted(deck.boundary.keys), np.int64),
                           np.concatenate(given) if given else np.zeros(0, np.int64))
    if len(missing):
        dof = int(missing[0])
        raise not_supported(card, f"OP=NEW releases {len(missing)} constrained dofs (first: node "
                                  f"{int(deck.ids.node_ids[dof // 3])}, component {'xyz'[dof % 3]}) that the step does "
                                  "not give again: the constrained dofs must be the same in every step (give them "
                                  "again after OP=NEW, or change values with OP=MOD)")
