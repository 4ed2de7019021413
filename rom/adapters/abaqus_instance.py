"""The parts and instances of an Abaqus part/assembly deck (:mod:`.abaqus_assembly`): a part's cards and largest ids
(:class:`Part`), an instance's placement (:class:`Instance`: translation, then rotation about an axis, Abaqus Keywords
Reference, ``*INSTANCE``) and the ``*NODE``/``*ELEMENT`` cards of a part as the instance's (:func:`placed_nodes`,
:func:`renumbered_elements`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

from ..fem.mesh import NODES_PER_ELEMENT
from .calculix_cards import _error, fortran_float
from .inp import _node_lines, _numbers

if TYPE_CHECKING:
    from .calculix_cards import Card

__all__ = ["Instance", "Part", "element_ids_of", "placed_nodes", "renumbered_elements"]


@dataclass
class Part:
    """A part's cards (or an instance's own) and its largest node and element ids."""

    name: str
    card: Card
    body: list = field(default_factory=list)
    _ids: tuple[int, int] | None = None
    _size: dict[str, int] | None = None
    _names: tuple[int, set[str]] | None = None

    def largest_ids(self) -> tuple[int, int]:
        if self._ids is None:
            nodes, elements = [0], [0]
            for c in self.body:
                if c.keyword == "NODE" and c.data:
                    nodes.append(int(_node_table(c)[:, 0].max(initial=0)))
                elif c.keyword == "ELEMENT" and c.data:
                    table = _element_table(c)
                    elements += [] if table is None else [int(table[:, 0].max(initial=0))]
            self._ids = (max(nodes), max(elements))
        return self._ids

    def size(self) -> dict[str, int]:
        """What one instance adds to the flat deck: ``lines`` and ``bytes`` of data of the cards other than ``*NODE``
        and ``*ELEMENT`` (sets, surfaces...), ``mesh_lines`` and ``mesh_bytes`` of those, ``nodes``, ``elements``
        (counted on the part's cards, cheaply: an element card's rows are its ids over its element's width)."""
        if self._size is None:
            mesh = [c for c in self.body if c.keyword in ("NODE", "ELEMENT")]
            tokens = [(sum(1 for d in c.data for t in d.split(",") if t.strip()),
                       NODES_PER_ELEMENT.get(c.params.get("TYPE", "").upper(), 0) + 1)
                      for c in mesh if c.keyword == "ELEMENT"]
            lines, data_bytes = sum(len(c.data) for c in self.body), sum(len(d) + 1 for c in self.body for d in c.data)
            self._size = {"mesh_lines": sum(len(c.data) for c in mesh),
                          "mesh_bytes": sum(len(d) + 1 for c in mesh for d in c.data),
                          "nodes": sum(len(c.data) for c in mesh if c.keyword == "NODE"),
                          "elements": sum(n // width for n, width in tokens)}
            self._size["lines"] = lines - self._size["mesh_lines"]
            self._size["bytes"] = data_bytes - self._size["mesh_bytes"]
        return self._size

    def element_ids(self) -> np.ndarray:
        """``(n,)`` the part's element ids (of the types :func:`.inp.read_inp` reads)."""
        return element_ids_of(self.body)

    def set_names(self) -> set[str]:
        """The upper-case names of the part's sets and surfaces (kept while the body does not grow: asked for each
        label ``I.12`` of the assembly)."""
        if self._names is None or self._names[0] != len(self.body):
            self._names = (len(self.body), {c.params.get(k, "").upper() for c in self.body
                                            for k in ("NSET", "ELSET", "NAME")})
        return self._names[1]


@dataclass
class Instance:
    """A part placed in the assembly: its ids offset by ``node_offset``/``element_offset``, its coordinates moved
    by :meth:`place`."""

    name: str
    part: Part
    node_offset: int
    element_offset: int
    rotation: Rotation | None = None
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    axis_point: np.ndarray = field(default_factory=lambda: np.zeros(3))
    card: Card | None = None  # the *INSTANCE card (errors name it)

    def place_by(self, card: Card) -> None:
        """Set the placement from the data lines of the ``*INSTANCE`` ``card`` (translation; rotation)."""
        self.card = card
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
            self.translation = values[0][0]
        if len(values) > 1 and values[1][0][6] != 0.0:
            (a, b, angle), number = (values[1][0][:3], values[1][0][3:6], values[1][0][6]), values[1][1]
            axis = b - a
            if not np.linalg.norm(axis) > 0:
                raise _error(card, number, "the rotation axis points a and b coincide")
            # (the angle modulo a turn: the same rotation, and a finite one for any finite angle)
            self.rotation = Rotation.from_rotvec(np.deg2rad(np.fmod(angle, 360.0)) * axis / np.linalg.norm(axis))
            self.axis_point = a

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


def element_ids_of(cards: list[Card]) -> np.ndarray:
    """``(n,)`` the element ids of the ``*ELEMENT`` cards among ``cards`` (of the types :func:`.inp.read_inp`
    reads)."""
    tables = [_element_table(c) for c in cards if c.keyword == "ELEMENT" and c.data]
    return np.concatenate([t[:, 0] for t in tables if t is not None] + [np.zeros(0, np.int64)])


def _token_lines(card: Card) -> list[int]:
    """The line number of each data token of ``card`` (the order of :func:`.inp._tokens`)."""
    return [number for text, number in zip(card.data, card.data_lines) for t in text.split(",") if t.strip()]


def placed_nodes(card: Card, inst: Instance) -> dict:
    """The data (and line numbers) of a ``*NODE`` card of ``inst``'s part: ids offset, coordinates placed."""
    if not inst.moved and inst.node_offset == 0:
        return {}
    table = _node_table(card)
    with np.errstate(over="ignore", invalid="ignore"):
        x = inst.place(table[:, 1:])
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad) and inst.card is not None:
        raise _error(inst.card, inst.card.line, f"placed by this instance, node {int(table[bad[0], 0])} of part "
                                                f"{inst.part.name!r} has coordinates beyond the floating-point range "
                                                f"({len(bad)} nodes): give a translation and rotation axis points "
                                                "of the model's size")
    ids = table[:, 0].astype(np.int64) + inst.node_offset
    data = [f"{i}, {a!r}, {b!r}, {c!r}" for i, (a, b, c) in zip(ids.tolist(), x.tolist())]  # (repr: exact)
    starts = card.data_lines if len(card.data_lines) == len(data) else [card.line] * len(data)
    return {"data": data, "data_lines": list(starts)}


def renumbered_elements(card: Card, inst: Instance) -> dict:
    """The data (and line numbers) of an ``*ELEMENT`` card of ``inst``'s part: element and node ids offset."""
    table = _element_table(card)
    if table is None or (inst.node_offset == 0 and inst.element_offset == 0):
        return {}  # (an unknown type: read_inp refuses it by name)
    table = table + np.array([inst.element_offset] + [inst.node_offset] * (table.shape[1] - 1))
    lines = _token_lines(card)[::table.shape[1]]
    data, numbers = [], []
    for row, number in zip(table.tolist(), lines):  # (16 ids a line, as Abaqus and ccx write them)
        chunks = [row[i:i + 16] for i in range(0, len(row), 16)]
        data += [",".join(map(str, ch)) + ("," if k < len(chunks) - 1 else "") for k, ch in enumerate(chunks)]
        numbers += [number] * len(chunks)
    return {"data": data, "data_lines": numbers}
