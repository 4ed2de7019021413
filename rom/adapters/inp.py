"""The mesh of a CalculiX/Abaqus-style input deck (``.inp``): nodes, elements, sets and surfaces.

:func:`read_inp` reads ``*NODE``, ``*ELEMENT``, ``*NSET``/``*ELSET`` and ``*SURFACE`` (following
``*INCLUDE``) into our :class:`~structrom.rom.fem.mesh.Mesh` (0-based, nodes and elements in file order) and
:class:`InpIds`, the file ids of our nodes and elements. The rest of a user's deck (laws, steps, loads) is
read by :mod:`.calculix_deck`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fem.mesh import NODES_PER_ELEMENT, CellBlock, Mesh, MeshError, check_faces
from .calculix_cards import as_id, exact_ids, fortran_float, line_at, read_cards
from .calculix_error import CalculixError

__all__ = ["InpIds", "read_inp"]


#: Why ccx's other solid elements are refused, and the remesh that keeps the model (appended to the refusal).
_UNSUPPORTED_SOLIDS = {
    "C3D8R": " (one integration point with ccx's hourglass control, whose answer no kernel element reproduces): use "
             "C3D8 or C3D20R; the displacements differ, so run ccx again with the new type",
    "C3D8I": " (incompatible modes, whose answer no kernel element reproduces): use C3D20R, or C3D8 with a finer mesh; "
             "the displacements differ, so run ccx again with the new type",
    **dict.fromkeys(("C3D4T", "C3D8T", "C3D20T", "C3D20RT"), " (thermally coupled: give temperatures with "
                                                                       "*TEMPERATURE): use the element without 'T'"),
}


#: The most ids the sets and surfaces of a deck list in all, per data line of the deck (a node or element takes a
#: line): a set naming earlier sets (``*NSET, NSET=B`` with ``A, A``) lists their members again, so a chain of such
#: sets, or many sets naming one large set, would grow without bound (doubling per card).
LISTED_PER_LINE = 16


@dataclass
class InpIds:
    """File ids of the mesh read by :func:`read_inp`: ``node_ids`` ``(n_nodes,)`` and ``element_ids``
    ``(n_elements,)``, the CalculiX ids of our node/element ``i``."""

    node_ids: np.ndarray
    element_ids: np.ndarray
    #: members of the node/element sets that list a member more than once, as listed (our 0-based indices; the
    #: mesh's sets hold each member once): ``{("node" | "element", name): (m,)}``. ccx applies a load on such a
    #: set once per listing.
    repeated: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def node_index(self, ids: np.ndarray) -> np.ndarray:
        """Our 0-based node indices of CalculiX node ids (raises on unknown ids)."""
        return _lookup(self.node_ids, ids, "node")

    def element_index(self, ids: np.ndarray) -> np.ndarray:
        """Our 0-based element indices of CalculiX element ids (raises on unknown ids)."""
        return _lookup(self.element_ids, ids, "element")


def _lookup(known: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(known, kind="stable")
    pos = np.minimum(np.searchsorted(known[order], ids), max(len(known) - 1, 0))
    ok = known[order][pos] == ids if len(known) else np.zeros(ids.shape, dtype=bool)
    if not np.all(ok):
        raise CalculixError(f"{what} ids {np.unique(ids[~ok])[:10].tolist()} are not in the mesh")
    return order[pos]


@dataclass
class _Card:
    keyword: str  # upper case, without '*'
    params: dict[str, str]  # upper-case keys; values as written
    line: int  # 1-based line number of the keyword line
    data: list[str] = field(default_factory=list)
    data_lines: list[int] = field(default_factory=list)


def _cards(path: Path) -> list[_Card]:
    """The deck's keyword cards, ``*INCLUDE`` followed (:func:`.calculix_cards.read_cards`)."""
    return read_cards(path)  # type: ignore[return-value]


def _at(path: Path, card: _Card, number: int) -> str:
    """``file:line`` of a line of ``card`` (:func:`.calculix_cards.line_at`; ``path`` for cards made here)."""
    return line_at(card, number) if hasattr(card, "file") else f"{getattr(number, 'file', path)}:{number}"


def _tokens(card: _Card) -> list[str]:
    return [t.strip() for t in ",".join(card.data).split(",") if t.strip()]


def _numbers(card: _Card, path: Path, dtype: type, what: str) -> np.ndarray:
    """The card's data tokens as ``dtype`` (finite; integers exact and below 2^53 in size); a token that is not
    such a number is refused, naming its line."""
    tokens = _tokens(card)
    try:
        vals = np.array(tokens, dtype=float)
    except ValueError:
        try:
            vals = np.array([fortran_float(t) for t in tokens])
        except ValueError:
            vals = None
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    if vals is not None and (exact_ids(vals) if integer else np.isfinite(vals)).all():
        return vals.astype(dtype)
    for line, number in zip(card.data, card.data_lines):
        for t in line.split(","):
            t = t.strip()
            if not t:
                continue
            try:
                ok = np.isfinite(fortran_float(t)) and (not integer or as_id(t) is not None)
            except ValueError:
                ok = False
            if not ok:
                raise CalculixError(f"{_at(path, card, number)}: *{card.keyword}: {what} expected, got {t!r}"
                                    + (" (finite numbers only)" if t.lower().lstrip("+-") in ("nan", "inf", "infinity")
                                       else ""))
    raise CalculixError(f"{_at(path, card, card.line)}: *{card.keyword}: {what} expected")  # (not reached: a token is named)


def _node_lines(card: _Card, path: Path) -> np.ndarray:
    """``(n, 4)`` ids and coordinates of a ``*NODE`` card whose lines do not all hold 4 numbers: as in CalculiX and
    Abaqus, coordinates left out at the end of a line, or left blank, are 0 (``1, 0.5, 1.`` is ``z = 0``)."""
    out = np.zeros((len(card.data), 4))
    for i, (line, number) in enumerate(zip(card.data, card.data_lines)):
        fields = [t.strip() for t in line.split(",")]
        while fields and not fields[-1]:
            fields.pop()
        if not 2 <= len(fields) <= 4 or not fields[0]:
            raise CalculixError(f"{_at(path, card, number)}: *NODE lines must be 'id, x[, y[, z]]' (coordinates left out are "
                                f"0), got {len(fields)} entries")
        out[i, :len(fields)] = [fortran_float(t) if t else 0.0 for t in fields]  # (numbers: checked by _numbers)
    return out


def read_inp(path: str | os.PathLike, cards: list | None = None) -> tuple[Mesh, InpIds]:
    """Read the mesh of a CalculiX/Abaqus-style input deck (other cards are ignored).

    Parses ``*NODE``, ``*ELEMENT`` (``TYPE``, ``ELSET``), ``*NSET``/``*ELSET`` (ids, names of sets
    defined earlier, ``GENERATE``), ``*SURFACE`` with ``TYPE=ELEMENT`` (``element or elset, S<k>``;
    ``TYPE=NODE`` surfaces are checked, not kept: ccx uses them for contact only) and follows ``*INCLUDE``. Set names keep the case they have
    in the file (names differing only in case are one set, as in ccx: the first spelling is kept). Returns
    the mesh (nodes and elements in file order, one block per ``*ELEMENT`` card) and the file ids. ``cards``: the
    deck's cards when already read (:func:`.calculix_cards.read_cards`), else read from ``path``.
    """
    path = Path(path)
    cards = _cards(path) if cards is None else cards
    # no set can name more ids than the deck defines (one data line at least per node or element)
    data_lines = sum(len(card.data) for card in cards)
    node_ids, coords = [], []
    blocks: list[tuple[str, np.ndarray, np.ndarray]] = []  # element, ids, connectivity (file ids)
    nsets: dict[str, list[np.ndarray]] = {}
    elsets: dict[str, list[np.ndarray]] = {}
    surfaces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    n_elements = 0
    listed = [0]  # ids listed by the sets and surfaces so far (bounded: LISTED_PER_LINE)

    def count(card: _Card, n: int) -> None:
        """Count ``n`` more ids listed by ``card`` (a set or surface); refused past the deck's bound."""
        listed[0] += n
        if listed[0] > LISTED_PER_LINE * data_lines:
            raise CalculixError(f"{where(card)}: the sets and surfaces list {listed[0]} ids up to this card, more than "
                                f"{LISTED_PER_LINE} per data line of the deck ({data_lines} lines): sets naming earlier "
                                "sets list their members again; name each set once (list the ids, or GENERATE a "
                                "range) instead of repeating large sets")

    first_spelling: dict[int, dict[str, str]] = {}  # id of nsets/elsets/surfaces -> upper-case name -> name

    def spelled(sets: dict, name: str) -> str:
        """The name a set is kept under: its first spelling (ccx upper-cases names: ``fix`` and ``FIX`` are one
        set)."""
        return first_spelling.setdefault(id(sets), {}).setdefault(name.upper(), name)

    def merged(sets: dict, name: str) -> np.ndarray:
        """The members of set ``name`` in order, its cards' arrays merged into one (kept so: a set of thousands of
        cards named thousands of times is merged once)."""
        ids = np.concatenate(sets[name] or [np.zeros(0, np.int64)])
        sets[name][:] = [ids]
        return ids

    def kept_name(sets: dict, name: str) -> str | None:
        """The name ``name`` (any case) is kept under in ``sets``, None when no such set is defined (a dictionary
        look-up: a deck may name thousands of sets)."""
        kept = first_spelling.get(id(sets), {}).get(name.upper())
        return kept if kept in sets else None

    def where(card: _Card) -> str:
        return f"{_at(path, card, card.line)}: *{card.keyword}"

    def set_members(card: _Card, sets: dict, generate: bool) -> np.ndarray:
        tokens = _tokens(card)
        if generate:
            _numbers(card, path, np.int64, "integers 'first, last[, increment]'")  # names bad tokens
            out = []
            for data, number in zip(card.data, card.data_lines):
                v = [as_id(t) for t in data.split(",") if t.strip()]  # (checked by _numbers above)
                if len(v) not in (2, 3):
                    raise CalculixError(f"{_at(path, card, number)}: GENERATE lines need 'first, last[, increment]'")
                first, last, step = (v + [1])[:3]
                if step <= 0 or last < first:
                    raise CalculixError(f"{_at(path, card, number)}: GENERATE needs first <= last and increment > 0")
                if (last - first) // step + 1 > data_lines:
                    raise CalculixError(f"{_at(path, card, number)}: GENERATE {first}, {last}, {step} names "
                                        f"{(last - first) // step + 1} ids, more than the deck defines ({data_lines} "
                                        "data lines in all): check the range's last id and increment")
                count(card, (last - first) // step + 1)
                out.append(np.arange(first, last + 1, step))
            return np.concatenate(out) if out else np.zeros(0, np.int64)
        out = []
        numeric = []
        for t in tokens:
            value = as_id(t)
            if value is not None:
                numeric.append(value)
            else:
                if t not in sets:
                    kept = kept_name(sets, t)
                    if kept is None:
                        raise CalculixError(f"{where(card)}: {t!r} is neither an id nor a set defined earlier")
                    t = kept
                out.append(merged(sets, t))  # (a set naming itself: empty so far)
                count(card, len(out[-1]))
        out.append(np.array(numeric, dtype=np.int64))
        return np.concatenate(out)

    for card in cards:
        kw = card.keyword
        if kw in ("NODE", "ELEMENT", "NSET", "ELSET") and "INPUT" in card.params:
            raise CalculixError(f"not supported: *{kw}, {_at(path, card, card.line)}: INPUT={card.params['INPUT']} (Abaqus "
                                f"reads the lines from that file; ccx 2.20 ignores the parameter): put '*INCLUDE, "
                                f"INPUT={card.params['INPUT']}' on the line after the *{kw} line, as ccx reads it")
        if kw == "NODE":
            vals = _numbers(card, path, float, "numbers 'id, x, y, z'")
            n_line = len(card.data)
            if n_line and (vals.size != 4 * n_line or max(d.count(",") for d in card.data) > 3):
                vals = _node_lines(card, path)  # (lines of other lengths: line by line)
            vals = vals.reshape(-1, 4)
            bad = np.flatnonzero(~exact_ids(vals[:, 0]))
            if len(bad):
                line = card.data_lines[int(bad[0])] if len(card.data_lines) == len(vals) else card.line
                raise CalculixError(f"{_at(path, card, line)}: *NODE: node ids must be integers, got {vals[bad[0], 0]!r}")
            node_ids.append(vals[:, 0].astype(np.int64))
            coords.append(vals[:, 1:])
            if "NSET" in card.params:
                nsets.setdefault(spelled(nsets, card.params["NSET"]), []).append(vals[:, 0].astype(np.int64))
        elif kw == "ELEMENT":
            etype = card.params.get("TYPE", "").upper()
            if etype not in NODES_PER_ELEMENT:
                lower = etype.startswith(("CPS", "CPE", "CAX", "S", "M3D", "T3D", "T2D", "B3", "B2"))
                raise CalculixError(
                    f"{where(card)}: element TYPE={etype or '(missing)'} is not supported"
                    + _UNSUPPORTED_SOLIDS.get(etype, "") + f"; use one of {', '.join(NODES_PER_ELEMENT)}"
                    + ("; meshers (gmsh) export the surface and line elements of physical groups too: export the "
                       "volume elements only (node sets for the groups)" if lower else "")
                )
            n = NODES_PER_ELEMENT[etype] + 1
            vals = _numbers(card, path, np.int64, "integer ids")
            if vals.size % n:
                raise CalculixError(
                    f"{where(card)}: {vals.size} ids is not a multiple of {n} (id + {n - 1} nodes per "
                    f"{etype} element); check for missing continuation lines"
                )
            vals = vals.reshape(-1, n)
            blocks.append((etype, vals[:, 0], vals[:, 1:]))
            n_elements += len(vals)
            if "ELSET" in card.params:
                elsets.setdefault(spelled(elsets, card.params["ELSET"]), []).append(vals[:, 0])
        elif kw in ("NSET", "ELSET"):
            name = card.params.get(kw)
            if not name:
                raise CalculixError(f"{where(card)}: missing {kw}=<name>")
            if kw == "NSET" and "ELSET" in card.params:
                raise CalculixError(f"not supported: *NSET, {_at(path, card, card.line)}: ELSET={card.params['ELSET']} "
                                    "(Abaqus's nodes of an element set): ccx 2.20 ignores the parameter and leaves the "
                                    "set without these nodes (a load or boundary on it is lost); list the nodes on the "
                                    "card's lines")
            sets = nsets if kw == "NSET" else elsets
            sets.setdefault(spelled(sets, name), []).append(set_members(card, sets, "GENERATE" in card.params))
        elif kw == "SURFACE":
            name = card.params.get("NAME")
            if not name:
                raise CalculixError(f"{where(card)}: missing NAME=<name>")
            stype = card.params.get("TYPE", "ELEMENT").upper()
            if stype == "NODE":
                # (a node surface is not a node set in ccx: *CLOAD or *BOUNDARY on its name is refused by ccx, and a
                # node set of the same name keeps its own nodes; only contact and couplings use it, both refused)
                set_members(_Card("SURFACE", {}, card.line, [d.split(",")[0] for d in card.data], card.data_lines),
                            nsets, False)  # (its members checked)
                continue
            if stype != "ELEMENT":
                raise CalculixError(f"{where(card)}: TYPE={stype} is not supported (use TYPE=ELEMENT)")
            for data, number in zip(card.data, card.data_lines):
                parts = [t.strip() for t in data.split(",") if t.strip()]
                m = re.fullmatch(r"S([1-6])", parts[1].upper()) if len(parts) == 2 else None
                if m is None:
                    raise CalculixError(f"{_at(path, card, number)}: *SURFACE lines must be 'element or elset, S<1-6>', got {data!r}")
                value = as_id(parts[0])
                if value is not None:
                    els = np.array([value])
                else:
                    kept = kept_name(elsets, parts[0])
                    if kept is None:
                        raise CalculixError(f"{_at(path, card, number)}: element set {parts[0]!r} is not defined before this "
                                            "*SURFACE")
                    els = merged(elsets, kept)
                    count(card, len(els))
                surfaces.setdefault(spelled(surfaces, name), []).append((els, np.full(len(els), int(m.group(1)) - 1)))

    if not node_ids or not blocks:
        raise CalculixError(f"{path}: no *NODE or no *ELEMENT cards found; the deck must define the mesh")
    ids = InpIds(np.concatenate(node_ids), np.concatenate([b[1] for b in blocks]))
    for what, known in (("node", ids.node_ids), ("element", ids.element_ids)):
        u, c = np.unique(known, return_counts=True)
        if np.any(c > 1):
            raise CalculixError(f"{path}: {what} ids {u[c > 1][:10].tolist()} are defined more than once")

    def index(lookup, values, what, name):
        try:
            return lookup(values)
        except CalculixError as exc:
            raise CalculixError(f"{path}: {what} {name!r}: {exc}") from None

    mesh_blocks = [CellBlock(e, index(ids.node_index, conn, "connectivity of", e)) for e, _, conn in blocks]
    surface_sets = {
        k: np.column_stack([index(ids.element_index, np.concatenate([a for a, _ in v]), "surface", k),
                            np.concatenate([f for _, f in v])])
        for k, v in surfaces.items()
    }
    for k, faces in surface_sets.items():
        try:
            check_faces(mesh_blocks, faces, f"*SURFACE, NAME={k}", ids.element_ids)
        except MeshError as exc:
            raise CalculixError(f"{path}: {exc}") from None
    node_sets = {k: index(ids.node_index, np.concatenate(v), "node set", k) for k, v in nsets.items()}
    element_sets = {k: index(ids.element_index, np.concatenate(v), "element set", k) for k, v in elsets.items()}
    for kind, sets in (("node", node_sets), ("element", element_sets)):
        ids.repeated.update({(kind, k): v for k, v in sets.items() if len(np.unique(v)) < len(v)})
    mesh = Mesh(
        np.concatenate(coords),
        mesh_blocks,
        node_sets=node_sets,
        element_sets=element_sets,
        surface_sets=surface_sets,
    )
    return mesh, ids

