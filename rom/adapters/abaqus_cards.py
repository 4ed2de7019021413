"""Abaqus card conventions read in any deck, and cards written as a deck.

:func:`boundary_types`: Abaqus's named boundary types (``*BOUNDARY`` lines ``SET, ENCASTRE``; ccx reads dof numbers
only) as the dof ranges they fix (Abaqus Keywords Reference, ``*BOUNDARY``), rotations 4-6 included: the import
ignores them on the nodes of solid elements, as ccx does, and records them as ignored.
:func:`write_cards`: the cards of a deck (the flat deck of :func:`.abaqus_assembly.flatten_assembly`) as a deck file
ccx reads.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_write_text
from .calculix_cards import line_at
from .calculix_error import CalculixError

if TYPE_CHECKING:
    from .calculix_cards import Card

__all__ = ["BOUNDARY_TYPES", "boundary_types", "write_cards"]

#: Abaqus's named boundary types: the dofs they fix (Abaqus Keywords Reference, ``*BOUNDARY``).
BOUNDARY_TYPES = {
    "ENCASTRE": (1, 2, 3, 4, 5, 6), "PINNED": (1, 2, 3),
    "XSYMM": (1, 5, 6), "YSYMM": (2, 4, 6), "ZSYMM": (3, 4, 5),
    "XASYMM": (2, 3, 4), "YASYMM": (1, 3, 5), "ZASYMM": (1, 2, 6),
}


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
            raise CalculixError(f"{line_at(card, number)}: *BOUNDARY: '{tokens[0]}, {tokens[1]}' takes no further "
                                "entries (a named boundary type fixes its dofs at zero)")
        dofs = BOUNDARY_TYPES[kind]
        runs = np.split(np.array(dofs), np.flatnonzero(np.diff(dofs) != 1) + 1)  # contiguous dof ranges
        data += [f"{tokens[0]}, {r[0]}, {r[-1]}" for r in runs]
        lines += [number] * len(runs)
    return replace(card, data=data, data_lines=lines)


def write_cards(cards: list[Card], path: str | os.PathLike) -> Path:
    """Write ``cards`` as a deck (``*KEYWORD, KEY=value`` lines and their data lines): the flat deck of
    :func:`.abaqus_assembly.flatten_assembly`, for ccx. Written atomically."""
    lines = []
    for card in cards:
        params = "".join(f", {k}={v}" if v else f", {k}" for k, v in card.params.items())
        lines.append(f"*{card.keyword}{params}")
        lines += card.data
    path = Path(path)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
