"""Abaqus decks with parts and assemblies (as Abaqus/CAE writes them by default) as the flat deck ccx reads.

:func:`flatten_assembly` turns the keyword cards of a deck (:func:`.calculix_cards.read_cards`) into those of the
equivalent flat deck, each card keeping the file and line it was read from (errors name the user's line):

* ``*PART, NAME=P`` ... ``*END PART`` holds nodes, elements, sets (``*NSET``/``*ELSET``, with ``GENERATE``),
  surfaces and ``*SOLID SECTION`` in part-local numbering; ``*INSTANCE, NAME=I, PART=P`` ... ``*END INSTANCE``
  in the ``*ASSEMBLY`` places a copy of it: data line 1 a translation ``t``, optional line 2 a rotation by ``angle``
  degrees about the axis through points ``a`` and ``b`` (right-hand rule about ``b - a``), applied after the
  translation: ``x' = R (x + t - a) + a`` (Abaqus Keywords Reference, ``*INSTANCE``). An instance without ``PART``
  holds its own nodes, elements, sets and sections (read as a part of its own).
* Ids: the instances are numbered in turn, instance ``k`` adding ``offset_k`` = the largest node (element) id of the
  instances before it to its part's ids; the first keeps the part's ids, so a one-instance deck has the ids of the
  deck Abaqus/CAE writes flat. Instances share no node (they are connected by nothing but ``*TIE``, refused).
* Names: a set or surface ``S`` of the part is ``I.S`` in the flat deck (the name Abaqus gives it from the
  assembly); assembly-level sets keep their names (``*NSET, NSET=S, INSTANCE=I`` lists instance-local ids). A node or
  element label ``I.12`` on a data line (assembly sets and surfaces, ``*BOUNDARY``, ``*CLOAD``, ``*DLOAD``,
  ``*TEMPERATURE``, ``*INITIAL CONDITIONS``) is the flat id of node 12 of instance ``I``.
* Sections are placed after the model's materials (before the first ``*STEP``): Abaqus/CAE writes the materials
  after the assembly, ccx wants them before the sections. Each instance of a part has the part's sections.

Refused by name, with the fix: assembly-level nodes and elements (reference points: used by couplings and rigid
bodies, not modelled), a bare node or element label where the assembly's nodes are meant (write ``I.12``), an
unknown part or instance, a name given twice, unmatched ``*END`` cards, a mapped card ccx would not accept in a part.

:func:`boundary_types` reads Abaqus's named boundary types (``ENCASTRE``, ``PINNED``, ``XSYMM``...) in any deck as
the dof ranges they fix (rotations 4-6 included: the import ignores them on solid nodes, as ccx does).
:func:`write_cards` writes cards as a deck (for ccx).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

from ..atomic import atomic_write_text
from ..fem.mesh import NODES_PER_ELEMENT
from .calculix_cards import as_id, fortran_float, line_at, not_supported
from .calculix_error import CalculixError
from .calculix_keywords import classify
from .inp import _node_lines, _numbers

if TYPE_CHECKING:
    from .calculix_cards import Card

__all__ = ["boundary_types", "flatten_assembly", "write_cards"]

STRUCTURE = ("PART", "END PART", "ASSEMBLY", "END ASSEMBLY", "INSTANCE", "END INSTANCE")

#: The cards a part (or an instance of no part) may hold that the flattening maps.
PART_CARDS = ("NODE", "ELEMENT", "NSET", "ELSET", "SURFACE", "SOLID SECTION")

#: Abaqus's named boundary types: the dofs they fix (Abaqus Keywords Reference, ``*BOUNDARY``).
BOUNDARY_TYPES = {
    "ENCASTRE": (1, 2, 3, 4, 5, 6), "PINNED": (1, 2, 3),
    "XSYMM": (1, 5, 6), "YSYMM": (2, 4, 6), "ZSYMM": (3, 4, 5),
    "XASYMM": (2, 3, 4), "YASYMM": (1, 3, 5), "ZASYMM": (1, 2, 6),
}

#: Cards whose data lines start with a node (element, for *DLOAD) label or set.
_LABELLED = {"BOUNDARY": "node", "CLOAD": "node", "TEMPERATURE": "node", "INITIAL CONDITIONS": "node",
             "DLOAD": "element"}


def _error(card: Card, number: int, message: str) -> CalculixError:
    return CalculixError(f"{line_at(card, number)}: *{card.keyword}: {message}")


@dataclass
class _Part:
    """A part's cards (or an instance's own) and its largest node and element ids."""

    name: str
    card: Card
    body: list = field(default_factory=list)
    _ids: tuple[int, int] | None = None

    def largest_ids(self) -> tuple[int, int]:
        if self._ids is None:
            nodes, elements = [0], [0]
            for c in self.body:
                if c.keyword == "NODE" and c.data:
                    nodes.append(int(_node_table(c)[:, 0].max()))
                elif c.keyword == "ELEMENT" and c.data and _element_table(c) is not None:
                    elements.append(int(_element_table(c)[:, 0].max()))
            self._ids = (max(nodes), max(elements))
        return self._ids

    def set_names(self) -> set[str]:
        return {c.params.get(k, "").upper() for c in self.body for k in ("NSET", "ELSET", "NAME")}


@dataclass
class _Instance:
    name: str
    part: _Part
    node_offset: int
    element_offset: int
    rotation: Rotation | None = None
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    axis_point: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def place(self, x: np.ndarray) -> np.ndarray:
        """Assembly coordinates ``(n, 3)`` of part coordinates ``x`` ``(n, 3)``: ``R (x + t - a) + a``."""
        x = x + self.translation
        return x if self.rotation is None else self.rotation.apply(x - self.axis_point) + self.axis_point

    @property
    def moved(self) -> bool:
        return self.rotation is not None or bool(np.any(self.translation != 0.0))


def _node_table(card: Card) -> np.ndarray:
    """``(n, 4)`` ids and coordinates of a ``*NODE`` card (as :func:`.inp.read_inp` reads them)."""
    vals = _numbers(card, card.file, float, "numbers 'id, x, y, z'")
    if card.data and (vals.size != 4 * len(card.data) or max(d.count(",") for d in card.data) > 3):
        vals = _node_lines(card, card.file)
    return vals.reshape(-1, 4)


def _element_table(card: Card) -> np.ndarray | None:
    """``(n, 1 + nodes)`` ids of an ``*ELEMENT`` card; None for a type :func:`.inp.read_inp` refuses (it names it)."""
    n = NODES_PER_ELEMENT.get(card.params.get("TYPE", "").upper())
    if n is None:
        return None
    vals = _numbers(card, card.file, np.int64, "integer ids")
    if vals.size % (n + 1):
        return None  # (read_inp names the missing continuation lines)
    return vals.reshape(-1, n + 1)


def _token_lines(card: Card) -> list[int]:
    """The line number of each data token of ``card`` (the order of :func:`.inp._tokens`)."""
    return [number for text, number in zip(card.data, card.data_lines) for t in text.split(",") if t.strip()]


def flatten_assembly(cards: list[Card]) -> list[Card]:
    """The cards of the flat deck equivalent to ``cards`` (module docstring); a deck without ``*PART``,
    ``*ASSEMBLY`` and ``*INSTANCE`` cards is returned as it is, its named boundary types read
    (:func:`boundary_types`)."""
    if not any(c.keyword in STRUCTURE for c in cards):
        return [boundary_types(c) for c in cards]
    return [boundary_types(c) for c in _Flattening(cards).run()]


def boundary_types(card: Card) -> Card:
    """``card``, a ``*BOUNDARY`` with Abaqus's named types (``SET, ENCASTRE``) as dof ranges (``SET, 1, 6``;
    ``XSYMM`` is ``SET, 1, 1`` and ``SET, 5, 6``); other cards unchanged."""
    if card.keyword != "BOUNDARY" or not any(len(t) > 1 and t[1].upper() in BOUNDARY_TYPES for t, _ in card.rows()):
        return card
    data, lines = [], []
    for (tokens, number), text in zip(card.rows(), card.data):
        kind = tokens[1].upper() if len(tokens) > 1 else ""
        if kind not in BOUNDARY_TYPES:
            data.append(text)
            lines.append(number)
            continue
        if len(tokens) > 2:
            raise _error(card, number, f"'{tokens[0]}, {tokens[1]}' takes no further entries (a named boundary type "
                                       "fixes its dofs at zero)")
        dofs = BOUNDARY_TYPES[kind]
        runs = np.split(np.array(dofs), np.flatnonzero(np.diff(dofs) != 1) + 1)  # contiguous dof ranges
        data += [f"{tokens[0]}, {r[0]}, {r[-1]}" for r in runs]
        lines += [number] * len(runs)
    return replace(card, data=data, data_lines=lines)


class _Flattening:
    """One pass over a part/assembly deck's cards (:func:`flatten_assembly`)."""

    def __init__(self, cards: list[Card]):
        self.cards = cards
        self.parts: dict[str, _Part] = {}
        self.instances: dict[str, _Instance] = {}
        self.sections: list[Card] = []  # instance sections, placed before the first *STEP
        self.assembly_names: dict[str, Card] = {}
        self.node_end = 0
        self.element_end = 0

    def run(self) -> list[Card]:
        out: list[Card] = []
        part: _Part | None = None  # the part (or instance of no part) being read
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
                part = self.parts.setdefault(name.upper(), _Part(name, card))
            elif kw == "END PART":
                if part is None or instance is not None:
                    raise _error(card, card.line, "*END PART without *PART")
                part = None
            elif kw == "ASSEMBLY":
                if part is not None or assembly is not None or assembly_done:
                    raise not_supported(card, "an *ASSEMBLY inside a *PART, or a second one: a model has one assembly")
                assembly = card
            elif kw == "END ASSEMBLY":
                if assembly is None or instance is not None:
                    raise _error(card, card.line, "*END ASSEMBLY without *ASSEMBLY (or inside an *INSTANCE)")
                assembly, assembly_done = None, True
            elif kw == "INSTANCE":
                if assembly is None or instance is not None:
                    raise _error(card, card.line, "*INSTANCE outside an *ASSEMBLY (or inside another *INSTANCE)")
                instance = card
                if "PART" not in card.params:  # (an instance of no part: its own cards are its part)
                    part = _Part(self._name(card, "NAME"), card)
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
                c = open_card.card if isinstance(open_card, _Part) else open_card
                raise _error(c, c.line, f"no {what} closes it")
        if not assembly_done:
            first = next(iter(self.parts.values()))
            raise not_supported(first.card, "a deck with *PART cards and no *ASSEMBLY: a part is meshed in the model "
                                            "only through an *INSTANCE of it in the *ASSEMBLY")
        return out + self.sections

    @staticmethod
    def _name(card: Card, key: str) -> str:
        name = card.params.get(key, "").strip().strip('"')
        if not name:
            raise _error(card, card.line, f"missing {key}=<name>")
        return name

    # -- instances ---------------------------------------------------------------------------------
    def _instance(self, card: Card, own: _Part | None) -> list[Card]:
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
        inst = _Instance(name, part, self.node_end, self.element_end)
        self._placement(inst, card)
        self.instances[name.upper()] = inst
        nodes, elements = part.largest_ids()
        self.node_end += nodes
        self.element_end += elements
        out = []
        for c in part.body:
            flat = self._part_card(c, inst)
            (self.sections if c.keyword == "SOLID SECTION" else out).append(flat)
        return out

    def _placement(self, inst: _Instance, card: Card) -> None:
        rows = card.rows()
        if len(rows) > 2:
            raise _error(card, rows[2][1], "an *INSTANCE has at most two data lines (translation; rotation axis "
                                           "points and angle)")
        values = []
        for (tokens, number), size, what in zip(rows, (3, 7), ("translation 'x, y, z'",
                                                               "rotation 'xa, ya, za, xb, yb, zb, angle'")):
            if len(tokens) > size:
                raise _error(card, number, f"{what} has {len(tokens)} entries")
            try:
                v = np.array([fortran_float(t) if t else 0.0 for t in tokens] + [0.0] * (size - len(tokens)))
            except ValueError:
                raise _error(card, number, f"{what} must be numbers, got {', '.join(tokens)!r}") from None
            if not np.all(np.isfinite(v)):
                raise _error(card, number, f"{what} must be finite")
            values.append((v, number))
        if values:
            inst.translation = values[0][0]
        if len(values) > 1 and values[1][0][6] != 0.0:
            (a, b, angle), number = (values[1][0][:3], values[1][0][3:6], values[1][0][6]), values[1][1]
            axis = b - a
            if not np.linalg.norm(axis) > 0:
                raise _error(card, number, "the rotation axis points a and b coincide")
            inst.rotation = Rotation.from_rotvec(np.deg2rad(angle) * axis / np.linalg.norm(axis))
            inst.axis_point = a

    def _part_card(self, card: Card, inst: _Instance) -> Card:
        """A card of ``inst``'s part in the flat deck: ids offset, coordinates placed, names qualified."""
        kw, params = card.keyword, dict(card.params)
        q = f"{inst.name}."
        if kw == "NODE":
            if "NSET" in params:
                params["NSET"] = q + params["NSET"]
            if not inst.moved and inst.node_offset == 0:
                return replace(card, params=params)
            table = _node_table(card)
            x = inst.place(table[:, 1:])
            ids = table[:, 0].astype(np.int64) + inst.node_offset
            data = [f"{i}, {a!r}, {b!r}, {c!r}" for i, (a, b, c) in zip(ids.tolist(), x.tolist())]
            starts = card.data_lines if len(card.data_lines) == len(data) else [card.line] * len(data)
            return replace(card, params=params, data=data, data_lines=list(starts))
        if kw == "ELEMENT":
            if "ELSET" in params:
                params["ELSET"] = q + params["ELSET"]
            table = _element_table(card)
            if table is None or (inst.node_offset == 0 and inst.element_offset == 0):
                return replace(card, params=params)  # (an unknown type: read_inp refuses it by name)
            table = table + np.array([inst.element_offset] + [inst.node_offset] * (table.shape[1] - 1))
            lines = _token_lines(card)[::table.shape[1]]
            data, numbers = [], []
            for row, number in zip(table.tolist(), lines):  # (at most 10 ids a line: ccx reads 132 characters)
                chunks = [row[i:i + 10] for i in range(0, len(row), 10)]
                data += [", ".join(map(str, ch)) + ("," if k < len(chunks) - 1 else "") for k, ch in enumerate(chunks)]
                numbers += [number] * len(chunks)
            return replace(card, params=params, data=data, data_lines=numbers)
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

    def _members(self, card: Card, inst: _Instance | None, nodes: bool) -> Card:
        """An ``*NSET``/``*ELSET`` with ``inst``'s ids offset and its set names qualified (``I.S``); with no
        ``inst`` (an assembly set of no instance), labels ``I.12`` as flat ids."""
        offset = 0 if inst is None else (inst.node_offset if nodes else inst.element_offset)
        params = {k: v for k, v in card.params.items() if k not in ("INTERNAL", "INSTANCE")}
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
        data = []
        for tokens, number in card.rows():
            out = []
            for t in tokens:
                if not t:
                    continue
                value = as_id(t)
                if value is not None and inst is not None:
                    out.append(str(value + offset))
                elif value is not None:
                    raise self._bare_label(card, number, t, "node" if nodes else "element")
                elif inst is not None:
                    out.append(f"{inst.name}.{t}")
                else:
                    out.append(self._label(card, number, t, "node" if nodes else "element"))
            data.append(", ".join(out))
        return replace(card, params=params, data=data)

    def _surface(self, card: Card, inst: _Instance | None) -> Card:
        """A ``*SURFACE``: the element (``TYPE=NODE``: node) or set of each line offset or qualified."""
        nodes = card.params.get("TYPE", "ELEMENT").upper() == "NODE"
        offset = 0 if inst is None else (inst.node_offset if nodes else inst.element_offset)
        data = []
        for tokens, number in card.rows():
            if not tokens:
                data.append("")
                continue
            head, value = tokens[0], as_id(tokens[0])
            if value is not None and inst is not None:
                head = str(value + offset)
            elif value is not None:
                raise self._bare_label(card, number, head, "node" if nodes else "element")
            elif inst is not None:
                head = f"{inst.name}.{head}"
            else:
                head = self._label(card, number, head, "node" if nodes else "element")
            data.append(", ".join([head] + tokens[1:]))
        return replace(card, data=data)

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
        for (tokens, number), text in zip(card.rows(), card.data):
            if tokens and as_id(tokens[0]) is not None:
                raise self._bare_label(card, number, tokens[0], what)
            if tokens and "." in tokens[0]:
                data.append(", ".join([self._label(card, number, tokens[0], what)] + tokens[1:]))
            else:
                data.append(text)
        return replace(card, data=data)

    def _check_assembly_name(self, card: Card, name: str) -> None:
        prefix = name.split(".", 1)[0].upper()
        if "." in name and prefix in self.instances:
            raise _error(card, card.line, f"the name {name!r} is that of instance {prefix}'s set "
                                          f"{name.split('.', 1)[1]!r} too (ambiguous); rename the assembly set")

    def _instance_named(self, card: Card, name: str) -> _Instance:
        inst = self.instances.get(name.strip().strip('"').upper())
        if inst is None:
            raise _error(card, card.line, f"INSTANCE={name!r} is not an *INSTANCE of the assembly (instances: "
                                          f"{', '.join(i.name for i in self.instances.values()) or 'none'})")
        return inst

    def _label(self, card: Card, number: int, token: str, what: str) -> str:
        """The flat name of a token of the assembly: ``I.12`` -> the flat id of label 12 of instance ``I``;
        names (``S``, ``I.S``) as they are."""
        m = re.fullmatch(r'"?(.+?)"?\.([^.]+)', token)
        if m is None or as_id(m.group(2)) is None:
            return token
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


def write_cards(cards: list[Card], path: str | os.PathLike) -> Path:
    """Write ``cards`` as a deck (``*KEYWORD, KEY=value`` lines and their data lines): the flat deck of
    :func:`flatten_assembly`, for ccx. Written atomically."""
    lines = []
    for card in cards:
        params = "".join(f", {k}={v}" if v else f", {k}" for k, v in card.params.items())
        lines.append(f"*{card.keyword}{params}")
        lines += card.data
    path = Path(path)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
