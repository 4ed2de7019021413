"""Abaqus decks with parts and assemblies (as Abaqus/CAE writes them by default) as the flat deck ccx reads.

:func:`flatten_assembly` turns the keyword cards of a deck (:func:`.calculix_cards.read_cards`) into those of the
equivalent flat deck, each card keeping the file and line it was read from (errors name the user's line):

* ``*PART, NAME=P`` ... ``*END PART`` holds nodes, elements, sets (``*NSET``/``*ELSET``, with ``GENERATE``),
  surfaces and ``*SOLID SECTION`` in part-local numbering; ``*INSTANCE, NAME=I, PART=P`` ... ``*END INSTANCE``
  in the ``*ASSEMBLY`` places a copy of it: data line 1 a translation ``t``, optional line 2 a rotation by ``angle``
  degrees about the axis through points ``a`` and ``b`` (right-hand rule about ``b - a``), applied after the
  translation: ``x' = R (x + t - a) + a`` (Abaqus Keywords Reference, ``*INSTANCE``). An instance without ``PART``
  holds its own nodes, elements, sets and sections (read as a part of its own). A part of no instance is not in the
  model (as in Abaqus).
* Ids: the instances are numbered in turn, instance ``k`` adding ``offset_k`` = the largest node (element) id of the
  instances before it to its part's ids; the first keeps the part's ids. Instances share no node (they are
  connected by nothing but ``*TIE``, refused).
* Names: a set or surface ``S`` of the part is ``I.S`` in the flat deck (the name Abaqus gives it from the
  assembly); assembly-level sets keep their names (``*NSET, NSET=S, INSTANCE=I`` lists instance-local ids). A node or
  element label ``I.12`` on a data line (assembly sets and surfaces, ``*BOUNDARY``, ``*CLOAD``, ``*DLOAD``,
  ``*TEMPERATURE``, ``*INITIAL CONDITIONS``) is the flat id of node 12 of instance ``I``.
* A body load on no element set (``*DLOAD`` line ``, GRAV, 9810., 0., 0., -1.``, as Abaqus/CAE writes gravity) is on
  the whole model: on the element set :data:`WHOLE_MODEL` of every instance's elements, made after the assembly (in
  a flat deck, of every element of its ``*ELEMENT`` cards, made before the first ``*STEP``; ccx 2.20 itself crashes
  on the empty field, the written flat deck names the set).
* Sections are placed after the model's materials (before the first ``*STEP``): Abaqus/CAE writes the materials
  after the assembly, ccx wants them before the sections. Each instance of a part has the part's sections.

Refused by name, with the fix: assembly-level nodes and elements (reference points: used by couplings and rigid
bodies, not modelled), a bare node or element label where the assembly's nodes are meant (write ``I.12``), an
unknown part or instance, a name given twice, unmatched ``*END`` cards, a mapped card ccx would not accept in a part.

Abaqus's named boundary types (``ENCASTRE``...) are read in any deck by :func:`.abaqus_cards.boundary_types`;
:func:`.abaqus_cards.write_cards` writes the flat deck's cards for ccx.
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from .abaqus_cards import boundary_types
from .abaqus_instance import Instance, Part, element_ids_of, placed_nodes, renumbered_elements
from .calculix_cards import Card, DeckLimits, DeckTooLarge, _error, as_id, not_supported
from .calculix_error import CalculixError
from .calculix_keywords import classify


__all__ = ["WHOLE_MODEL", "flatten_assembly", "on_whole_model", "whole_model_set"]

STRUCTURE = ("PART", "END PART", "ASSEMBLY", "END ASSEMBLY", "INSTANCE", "END INSTANCE")

#: The cards a part (or an instance of no part) may hold that the flattening maps.
PART_CARDS = ("NODE", "ELEMENT", "NSET", "ELSET", "SURFACE", "SOLID SECTION")

#: The element set of the whole model made for body loads on no element set (``*DLOAD`` line ``, GRAV, 9810., 0.,
#: 0., -1.``, as Abaqus/CAE writes gravity).
WHOLE_MODEL = "_WHOLE_MODEL"
_BODY_LOADS = ("GRAV", "CENTRIF")

#: Cards whose data lines start with a node (element, for *DLOAD) label or set.
_LABELLED = {"BOUNDARY": "node", "CLOAD": "node", "TEMPERATURE": "node", "INITIAL CONDITIONS": "node",
             "DLOAD": "element"}


def flatten_assembly(cards: list[Card], limits: DeckLimits | None = None) -> list[Card]:
    """The cards of the flat deck equivalent to ``cards`` (module docstring); a deck without ``*PART``,
    ``*ASSEMBLY`` and ``*INSTANCE`` cards is returned as it is, its named boundary types read
    (:func:`boundary_types`). The flat deck is held to ``limits`` (checked on counts as each instance is read,
    before its cards are made)."""
    if not any(c.keyword in STRUCTURE for c in cards):
        return [boundary_types(c) for c in _flat_whole_model(cards)]
    return [boundary_types(c) for c in _Flattening(cards, limits or DeckLimits()).run()]


def _on_no_element_set(card: Card) -> bool:
    """Whether ``card`` is a ``*DLOAD`` with a body load on no element set (a line ``, GRAV, ...``)."""
    return card.keyword == "DLOAD" and any(len(t) > 1 and not t[0] and t[1].upper() in _BODY_LOADS
                                           for t, _ in card.rows())


def on_whole_model(card: Card) -> Card:
    """``card`` with its body loads on no element set put on :data:`WHOLE_MODEL` (other cards unchanged)."""
    if not _on_no_element_set(card):
        return card
    data = [", ".join([WHOLE_MODEL] + tokens[1:]) if len(tokens) > 1 and not tokens[0]
            and tokens[1].upper() in _BODY_LOADS else text for (tokens, _), text in zip(card.rows(), card.data)]
    return replace(card, data=data)


def whole_model_set(element_ids: np.ndarray, card: Card) -> Card:
    """The ``*ELSET`` :data:`WHOLE_MODEL` of the elements ``element_ids`` ``(n,)`` (at ``card``'s line)."""
    data = [", ".join(map(str, element_ids[k:k + 16].tolist())) for k in range(0, len(element_ids), 16)]
    return Card("ELSET", {"ELSET": WHOLE_MODEL}, card.file, card.line, data, [card.line] * len(data))


def _flat_whole_model(cards: list[Card]) -> list[Card]:
    """A flat deck's cards with its body loads on no element set on :data:`WHOLE_MODEL` (:func:`on_whole_model`),
    the set of every element of its ``*ELEMENT`` cards placed before the first ``*STEP`` (or the first such load):
    the assembly's rule, for the decks Abaqus writes without parts."""
    first = next((i for i, c in enumerate(cards) if c.keyword == "STEP" or _on_no_element_set(c)), None)
    if first is None or not any(_on_no_element_set(c) for c in cards[first:]):
        return cards
    return cards[:first] + [whole_model_set(element_ids_of(cards[:first]), cards[first])] + [on_whole_model(c) for c in cards[first:]]


class _Flattening:
    """One pass over a part/assembly deck's cards (:func:`flatten_assembly`)."""

    def __init__(self, cards: list[Card], limits: DeckLimits):
        self.cards = cards
        self.limits = limits
        # sizes of the flat deck so far: data lines and characters (the deck's own, and each instance's part's),
        # nodes and elements
        self.size = {"lines": sum(len(c.data) for c in cards), "bytes": sum(len(d) + 1 for c in cards for d in c.data),
                     "nodes": 0, "elements": 0}
        self.parts: dict[str, Part] = {}
        self.instances: dict[str, Instance] = {}
        self.sections: list[Card] = []  # instance sections, placed before the first *STEP
        self.node_end = 0
        self.element_end = 0

    def run(self) -> list[Card]:
        whole_model = any(_on_no_element_set(c) for c in self.cards)
        out: list[Card] = []
        part: Part | None = None  # the part (or instance of no part) being read
        instance: Card | None = None
        assembly: Card | None = None
        assembly_done = False
        for card in self.cards:
            kw = card.keyword
            if kw == "PART":
                if part is not None or assembly is not None:
                    raise not_supported(card, "*PART inside a *PART or an *ASSEMBLY: close it first")
                name = self._name(card, "NAME")
                if name.upper() in self.parts:
                    raise _error(card, card.line, f"part {name!r} is defined twice")
                part = self.parts.setdefault(name.upper(), Part(name, card))
            elif kw == "END PART":
                if part is None or instance is not None:
                    raise _error(card, card.line, "*END PART without *PART")
                part = None
            elif kw == "ASSEMBLY":
                if part is not None and instance is None:
                    raise _error(card, card.line, f"part {part.name!r} ({part.card.where}) has no *END PART before "
                                                  "this *ASSEMBLY: close it with *END PART")
                if part is not None or assembly is not None or assembly_done:
                    raise not_supported(card, "a second *ASSEMBLY: a model has one assembly")
                assembly = card
            elif kw == "END ASSEMBLY":
                if assembly is None or instance is not None:
                    raise _error(card, card.line, "*END ASSEMBLY without *ASSEMBLY (or inside an *INSTANCE)")
                assembly, assembly_done = None, True
                if whole_model:
                    out.append(self._whole_model(card))
            elif kw == "INSTANCE":
                if assembly is None or instance is not None:
                    raise _error(card, card.line, "*INSTANCE outside an *ASSEMBLY (or inside another *INSTANCE)")
                instance = card
                if "PART" not in card.params:  # (an instance of no part: its own cards are its part)
                    part = Part(self._name(card, "NAME"), card)
            elif kw == "END INSTANCE":
                if instance is None:
                    raise _error(card, card.line, "*END INSTANCE without *INSTANCE")
                out += self._instance(instance, part)
                instance, part = None, None
            elif instance is not None and part is None:
                raise not_supported(card, f"inside *INSTANCE, PART={instance.params['PART']}: an instance of a part "
                                          "holds only its placement (data lines); define the cards in the *PART")
            elif part is not None:
                if classify(kw)[0] == "mapped" and kw not in PART_CARDS:
                    raise not_supported(card, f"inside *PART (or an *INSTANCE of no part): a part holds "
                                              f"{', '.join('*' + k for k in PART_CARDS)}; give *{kw} after the "
                                              "*END ASSEMBLY, as model or step data")
                part.body.append(card)
            elif assembly is not None or assembly_done:
                if kw == "STEP" and self.sections:
                    out += self.sections
                    self.sections = []
                out.append(self._assembly_card(card, in_assembly=assembly is not None))
            else:  # (before the parts: *HEADING, *PREPRINT...)
                if kw in PART_CARDS:
                    raise not_supported(card, "before the parts of a part/assembly deck: nodes, elements, sets and "
                                              "sections belong in a *PART (or write the whole deck flat)")
                out.append(card)
        for what, open_card in (("*END PART", part), ("*END INSTANCE", instance), ("*END ASSEMBLY", assembly)):
            if open_card is not None:
                c = open_card.card if isinstance(open_card, Part) else open_card
                raise _error(c, c.line, f"no {what} closes it")
        if not assembly_done:  # (here a *PART was read: any other structure card without an assembly is refused above)
            raise not_supported(next(iter(self.parts.values())).card, "a deck with *PART cards and no *ASSEMBLY: a "
                                "part is meshed in the model only through an *INSTANCE of it in the *ASSEMBLY")
        return out + self.sections

    @staticmethod
    def _name(card: Card, key: str) -> str:
        name = card.params.get(key, "").strip().strip('"')
        if not name:
            raise _error(card, card.line, f"missing {key}=<name>")
        return name

    # -- instances ---------------------------------------------------------------------------------
    def _instance(self, card: Card, own: Part | None) -> list[Card]:
        name = self._name(card, "NAME")
        if name.upper() in self.instances:
            raise _error(card, card.line, f"instance {name!r} is defined twice")
        if own is not None:
            part = own
        else:
            pname = card.params["PART"].strip().strip('"')
            if pname.upper() not in self.parts:
                raise _error(card, card.line, f"PART={pname!r} is not a *PART defined before the assembly (parts: "
                                              f"{', '.join(p.name for p in self.parts.values()) or 'none'})")
            part = self.parts[pname.upper()]
        self._grow(card, part)
        inst = Instance(name, part, self.node_end, self.element_end)
        inst.place_by(card)
        self.instances[name.upper()] = inst
        nodes, elements = part.largest_ids()
        self.node_end += nodes
        self.element_end += elements
        out = []
        for c in part.body:
            flat = self._part_card(c, inst)
            (self.sections if c.keyword == "SOLID SECTION" else out).append(flat)
        return out

    def _grow(self, card: Card, part: Part) -> None:
        """Count an instance of ``part`` (at ``card``) into the flat deck's size; refused past :attr:`limits`. With
        bounds on the nodes and elements (a model's mesh), the part's node and element lines count against those
        only; the lines and bytes limits bound the rest (sets, surfaces), else everything."""
        lim = self.limits
        added = dict(part.size())
        if lim.max_nodes is None or lim.max_elements is None:
            added["lines"] += added["mesh_lines"]
            added["bytes"] += added["mesh_bytes"]
        for key in ("lines", "bytes", "nodes", "elements"):
            self.size[key] += added[key]
        for key, limit in (("lines", lim.max_lines), ("bytes", lim.max_bytes)):
            if limit is not None and self.size[key] > limit:
                raise DeckTooLarge(
                    f"{card.where}: *INSTANCE: with this instance of part {part.name!r} ({added[key]} data {key}"
                    f"{' of sets and surfaces' if lim.max_nodes is not None and lim.max_elements is not None else ''}"
                    f") the flat deck holds {self.size[key]} data {key}, more than the {limit} allowed here (the "
                    "limit on a deck, applied to the deck its instances expand to): instance fewer or smaller parts, "
                    "or raise the limit")
        for key, limit in (("nodes", lim.max_nodes), ("elements", lim.max_elements)):
            if limit is not None and self.size[key] > limit:
                raise _error(card, card.line, f"with this instance of part {part.name!r} the instances hold "
                                              f"{self.size[key]} {key}, more than the model's {limit}: a reduced "
                                              "model answers decks of its own mesh")

    def _part_card(self, card: Card, inst: Instance) -> Card:
        """A card of ``inst``'s part in the flat deck: ids offset, coordinates placed, names qualified."""
        kw, params = card.keyword, dict(card.params)
        q = f"{inst.name}."
        if kw == "NODE":
            if "NSET" in params:
                params["NSET"] = q + params["NSET"]
            return replace(card, params=params, **placed_nodes(card, inst))
        if kw == "ELEMENT":
            if "ELSET" in params:
                params["ELSET"] = q + params["ELSET"]
            return replace(card, params=params, **renumbered_elements(card, inst))
        if kw in ("NSET", "ELSET"):
            params[kw] = q + self._name(card, kw)
            return self._members(replace(card, params=params), inst, kw == "NSET")
        if kw == "SURFACE":
            params["NAME"] = q + self._name(card, "NAME")
            return self._surface(replace(card, params=params), inst)
        if kw == "SOLID SECTION":
            if "ELSET" in params:
                params["ELSET"] = q + params["ELSET"]
            return replace(card, params=params)
        return card  # (a refused keyword: read_deck names it)

    def _members(self, card: Card, inst: Instance | None, nodes: bool) -> Card:
        """An ``*NSET``/``*ELSET`` with ``inst``'s ids offset and its set names qualified (``I.S``); with no
        ``inst`` (an assembly set of no instance), labels ``I.12`` as flat ids."""
        offset = 0 if inst is None else (inst.node_offset if nodes else inst.element_offset)
        params = {k: v for k, v in card.params.items() if k not in ("INTERNAL", "INSTANCE")}  # (INTERNAL: CAE's)
        if "GENERATE" in card.params:
            data = []
            for tokens, number in card.rows():
                values = [as_id(t) for t in tokens]
                if inst is None:
                    raise _error(card, number, "GENERATE at the assembly level needs INSTANCE=<instance> (the ids "
                                               "are an instance's)")
                if None in values or len(values) not in (2, 3):
                    raise _error(card, number, "GENERATE lines need integers 'first, last[, increment]'")
                data.append(", ".join(str(v + offset * (k < 2)) for k, v in enumerate(values)))
            return replace(card, params=params, data=data)
        data = [", ".join(self._member(card, number, t, inst, nodes) for t in tokens if t)
                for tokens, number in card.rows()]
        return replace(card, params=params, data=data)

    def _surface(self, card: Card, inst: Instance | None) -> Card:
        """A ``*SURFACE``: the element (``TYPE=NODE``: node) or set of each line offset or qualified."""
        nodes = card.params.get("TYPE", "ELEMENT").upper() == "NODE"
        data = [", ".join([self._member(card, number, tokens[0], inst, nodes)] + tokens[1:]) if tokens else ""
                for tokens, number in card.rows()]
        return replace(card, data=data)

    def _member(self, card: Card, number: int, token: str, inst: Instance | None, nodes: bool) -> str:
        """A node (element) or set of a set or surface line in the flat deck: of ``inst``, an id offset by its offset
        and a name qualified (``I.S``); of the assembly (no ``inst``), a label ``I.12`` as its flat id."""
        what = "node" if nodes else "element"
        value = as_id(token)
        if inst is None and value is not None:
            raise self._bare_label(card, number, token, what)
        if inst is None:
            return self._label(card, number, token, what)
        if value is not None:
            return str(value + (inst.node_offset if nodes else inst.element_offset))
        return f"{inst.name}.{token}"

    # -- the assembly and the model data -----------------------------------------------------------
    def _assembly_card(self, card: Card, in_assembly: bool) -> Card:
        kw = card.keyword
        if kw in ("NODE", "ELEMENT"):
            raise not_supported(card, f"at the assembly level: assembly {kw.lower()}s (reference points) serve "
                                      "couplings and rigid bodies, which are not modelled; mesh the parts only")
        if kw in ("NSET", "ELSET", "SURFACE") and in_assembly:
            name = self._name(card, kw if kw != "SURFACE" else "NAME")
            self._check_assembly_name(card, name)
        if kw in ("NSET", "ELSET"):
            inst = card.params.get("INSTANCE")
            return self._members(card, self._instance_named(card, inst) if inst else None, kw == "NSET")
        if kw == "SURFACE":
            return self._surface(card, None)
        what = _LABELLED.get(kw)
        if what is None:
            return card
        data = []
        card = on_whole_model(card)  # (no element set: the whole model)
        for (tokens, number), text in zip(card.rows(), card.data):
            if tokens and as_id(tokens[0]) is not None:
                raise self._bare_label(card, number, tokens[0], what)
            if tokens and "." in tokens[0]:
                data.append(", ".join([self._label(card, number, tokens[0], what)] + tokens[1:]))
            else:
                data.append(text)
        return replace(card, data=data)

    def _whole_model(self, card: Card) -> Card:
        """An ``*ELSET`` of every element of the instances, :data:`WHOLE_MODEL` (at ``card``'s line)."""
        return whole_model_set(np.concatenate([i.part.element_ids() + i.element_offset
                                               for i in self.instances.values()]), card)

    def _check_assembly_name(self, card: Card, name: str) -> None:
        prefix = name.split(".", 1)[0].upper()
        if "." in name and prefix in self.instances:
            raise _error(card, card.line, f"the name {name!r} is that of instance {self.instances[prefix].name}'s set "
                                          f"{name.split('.', 1)[1]!r} too (ambiguous); rename the assembly set")

    def _instance_named(self, card: Card, name: str) -> Instance:
        inst = self.instances.get(name.strip().strip('"').upper())
        if inst is None:
            raise _error(card, card.line, f"INSTANCE={name!r} is not an *INSTANCE of the assembly (instances: "
                                          f"{', '.join(i.name for i in self.instances.values()) or 'none'})")
        return inst

    def _label(self, card: Card, number: int, token: str, what: str) -> str:
        """The flat name of a token of the assembly: ``I.12`` -> the flat id of label 12 of instance ``I``;
        names (``S``, ``I.S``) as they are."""
        m = re.fullmatch(r'"?(.+?)"?\.([^.]+)', token)
        if m is None:
            return token
        if as_id(m.group(2)) is None:  # (a set of an instance: its name as the flat deck spells it, unquoted)
            return f"{m.group(1)}.{m.group(2)}" if m.group(1).upper() in self.instances else token
        inst = self.instances.get(m.group(1).upper())
        if inst is None:
            raise _error(card, number, f"{token!r}: {m.group(1)!r} is not an *INSTANCE of the assembly (instances: "
                                       f"{', '.join(i.name for i in self.instances.values()) or 'none'})")
        if m.group(2).upper() in inst.part.set_names():
            raise _error(card, number, f"{token!r} is both {what} {m.group(2)} of instance {inst.name} and its set "
                                       f"{m.group(2)!r} (ambiguous); rename the set")
        offset = inst.node_offset if what == "node" else inst.element_offset
        return str(as_id(m.group(2)) + offset)

    @staticmethod
    def _bare_label(card: Card, number: int, token: str, what: str) -> CalculixError:
        return _error(card, number, f"{what} label {token} without an instance: in a part/assembly deck the "
                                    f"{what}s are the instances'; write '<instance>.{token}' (e.g. Part-1-1.{token}) "
                                    "or a set name")
