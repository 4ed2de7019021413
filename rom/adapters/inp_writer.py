"""Our mesh as CalculiX (ccx 2.20) input cards: ``*NODE``, ``*ELEMENT``, ``*NSET``, ``*ELSET``, ``*SURFACE``.

Facts about ccx 2.20's input format this module relies on (checked against ccx 2.20 runs): data lines hold
at most 16 entries and 132 characters; real numbers are read with ``f20.0``, so a field longer than 20
characters is an input error (e.g. ``%.17g`` of ``-6.123233995736766e-17``): numbers are written exactly
when their repr fits, else with the most significant digits that fit; a 20-node element continues on a
second line after a trailing comma; set names are case-insensitive (ccx upper-cases them); ``NALL``/``EALL``
are *not* predefined, so :func:`write_mesh_inp` writes them.

Ids written to decks are 1-based (node ``i`` -> ``i + 1``, element ``e`` -> ``e + 1``). The number
formatting here is shared by the deck writers (:mod:`.calculix_static_deck`, :mod:`.calculix_matrices`).
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from ..fem.mesh import Mesh
from .calculix_error import CalculixError

__all__ = ["write_mesh_inp", "MAX_ENTRIES_PER_LINE", "MAX_LINE_LENGTH", "MAX_NUMBER_LENGTH"]

MAX_ENTRIES_PER_LINE = 16
MAX_LINE_LENGTH = 132
#: ccx reads real fields with Fortran ``f20.0``: longer numbers are input errors.
MAX_NUMBER_LENGTH = 20
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")


def _number(x: float) -> str:
    """``x`` in at most :data:`MAX_NUMBER_LENGTH` characters: the shortest round-trip repr when it fits
    (exact), else as many significant digits as fit."""
    text = repr(float(x))
    digits = 17
    while len(text) > MAX_NUMBER_LENGTH and digits > 1:
        digits -= 1
        text = f"{float(x):.{digits}g}"
    return text


def _number_strings(values: np.ndarray) -> np.ndarray:
    """Vectorized :func:`_number` (``%.17g`` where it fits, which also reads back exactly)."""
    values = np.asarray(values, dtype=float)
    text = np.char.mod("%.17g", values)
    long = np.char.str_len(text) > MAX_NUMBER_LENGTH
    if long.any():
        text = text.astype(f"<U{MAX_NUMBER_LENGTH + 4}")
        text[long] = [_number(v) for v in values[long].tolist()]
    return text


def _id_lines(ids: np.ndarray, per_line: int = MAX_ENTRIES_PER_LINE) -> Iterator[str]:
    """Comma-separated lines of at most ``per_line`` entries (and 132 characters)."""
    ids = np.asarray(ids, dtype=np.int64)
    width = len(str(int(ids.max()))) + 1 if ids.size else 2
    per_line = max(1, min(per_line, MAX_LINE_LENGTH // width))
    for start in range(0, len(ids), per_line):
        yield ",".join(map(str, ids[start : start + per_line].tolist())) + ",\n"


def _check_names(mesh: Mesh, extra: list[str]) -> None:
    seen: dict[tuple[str, str], str] = {}
    # a set named like the all-nodes/all-elements set (e.g. NALL read from a user's deck) is merged with
    # it by write_mesh_inp (checked there to hold every node/element), so it is no name clash
    kinds = [("NSET", n) for n in list(mesh.node_sets) if n.upper() != extra[0].upper()] + [("NSET", extra[0])]
    kinds += [("ELSET", n) for n in list(mesh.element_sets) if n.upper() != extra[1].upper()] + [("ELSET", extra[1])]
    kinds += [("SURFACE", n) for n in mesh.surface_sets]
    for kind, name in kinds:
        if not _NAME_RE.match(name) or len(name) > 80:
            raise CalculixError(
                f"{kind} name {name!r} is not a valid CalculiX name: use at most 80 letters, digits, "
                "'_', '-' or '.', starting with a letter or '_'; rename the set"
            )
        key = (kind, name.upper())
        if key in seen and seen[key] != name:
            raise CalculixError(
                f"{kind} names {seen[key]!r} and {name!r} are the same for CalculiX (names are "
                "case-insensitive); rename one of the sets"
            )
        seen[key] = name


def write_mesh_inp(
    stream_or_path: str | os.PathLike | IO[str],
    mesh: Mesh,
    *,
    all_nset: str | None = "Nall",
    all_elset: str | None = "Eall",
) -> None:
    """Write the mesh as CalculiX input cards.

    ``*NODE`` (1-based ids; exact doubles where they fit in ccx's 20-character fields), one
    ``*ELEMENT, TYPE=..., ELSET=<all_elset>`` card per block, ``*NSET`` for ``all_nset`` (every node)
    and each node set, ``*ELSET`` for each element set, and ``*SURFACE, NAME=..., TYPE=ELEMENT`` with
    ``element, S<face + 1>`` lines for each surface set. Pass ``None`` to skip the all-nodes /
    all-elements sets.
    """
    extra = [all_nset or "Nall", all_elset or "Eall"]
    _check_names(mesh, extra)
    if isinstance(stream_or_path, (str, os.PathLike)):
        path = Path(stream_or_path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w") as f:
            write_mesh_inp(f, mesh, all_nset=all_nset, all_elset=all_elset)
        os.replace(tmp, path)
        return
    out = stream_or_path
    out.write("*NODE\n")
    ids = np.arange(1, mesh.n_nodes + 1)
    coords = _number_strings(mesh.points)
    table = np.column_stack([ids.astype(str), coords])
    out.write("\n".join(",".join(row) for row in table.tolist()) + "\n")
    offsets = mesh.block_offsets
    for b, block in enumerate(mesh.blocks):
        elset = f", ELSET={all_elset}" if all_elset else ""
        out.write(f"*ELEMENT, TYPE={block.element}{elset}\n")
        table = np.column_stack([offsets[b] + 1 + np.arange(len(block)), block.connectivity + 1])
        n = table.shape[1]
        width = len(str(int(table.max()))) + 1 if table.size else 2
        per_line = min(MAX_ENTRIES_PER_LINE, MAX_LINE_LENGTH // width)
        cuts = list(range(per_line, n, per_line))
        # One element per record; continued lines end with a comma.
        pieces = [",".join(["%d"] * (min(c + per_line, n) - c)) for c in [0] + cuts]
        buf = io.StringIO()
        np.savetxt(buf, table, fmt=",\n".join(pieces), delimiter="")
        out.write(buf.getvalue())
    if all_nset:
        out.write(f"*NSET, NSET={all_nset}\n")
        out.writelines(_id_lines(ids))
    # (a set named like the all-nodes / all-elements set, e.g. of a mesh read back from one of our decks: ccx would
    # append to it, listing every node or element twice)
    _write_sets(out, "NSET", mesh.node_sets, all_nset, mesh.n_nodes, "node", "all_nset")
    _write_sets(out, "ELSET", mesh.element_sets, all_elset, mesh.n_elements, "element", "all_elset")
    for name, faces in mesh.surface_sets.items():
        out.write(f"*SURFACE, NAME={name}, TYPE=ELEMENT\n")
        out.writelines(f"{e},S{f}\n" for e, f in (faces + 1).tolist())


def _write_sets(out, card: str, sets: dict, all_name: str | None, count: int, what: str, option: str) -> None:
    """``*NSET`` / ``*ELSET`` cards (``card``) of the 0-based id ``sets``, but the one named like ``all_name`` (written
    already: it must hold all ``count`` ids, else :class:`CalculixError` naming ``option``)."""
    for name, ids in sets.items():
        if all_name and name.upper() == all_name.upper():
            if len(ids) != count:
                raise CalculixError(f"{what} set {name!r} is not every {what} but has the name of the all-{what}s set "
                                    f"{all_name!r}; rename it or pass {option}=")
            continue
        out.write(f"*{card}, {card}={name}\n")
        out.writelines(_id_lines(ids + 1))
