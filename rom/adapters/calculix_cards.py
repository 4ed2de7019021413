"""The keyword cards of a CalculiX deck: :func:`read_cards` (``*INCLUDE`` followed), :func:`keyword_of` (how a line's
keyword is read, also by the screening of uploaded decks), numbers and ids as ccx reads them (:func:`fortran_float`,
:func:`as_id`, :func:`exact_ids`), and the errors that name a card's keyword, file and line.

ccx reads a keyword case-insensitively and without its blanks (``*SOLIDSECTION`` is ``*SOLID SECTION``): the keyword
of a card is the table's spelling (:func:`.calculix_keywords.canonical`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calculix_error import CalculixError
from .calculix_keywords import canonical

__all__ = ["Card", "DeckLimits", "DeckTooLarge", "ID_LIMIT", "as_id", "exact_ids", "fortran_float", "keyword_of", "line_at", "not_supported",
           "read_cards"]


def keyword_of(line: str) -> str | None:
    """The keyword (upper case, without ``*``, the table's spelling) of a stripped keyword line, None for data and
    comment lines."""
    if not line.startswith("*") or line.startswith("**"):
        return None
    return canonical(" ".join(line[1:].split(",", 1)[0].upper().split()))


def card_parameters(line: str) -> dict[str, str]:
    """The parameters of a stripped keyword line: upper-case names without blanks (ccx drops them: ``TIME RESET``
    is ``TIMERESET``) -> values without blanks (``INPUT``: as written, without enclosing double quotes)."""
    params = {}
    for p in line[1:].split(",")[1:]:
        p = p.strip()
        if p:
            k, _, v = p.partition("=")
            k = "".join(k.upper().split())
            # (names: 'Tip Nodes' is TIPNODES; a file name in double quotes, as Abaqus allows, is read without them
            # by ccx too)
            params[k] = v.strip().strip('"') if k == "INPUT" else "".join(v.split())
    return params


@dataclass
class Card:
    """A keyword card: ``keyword`` upper case without ``*``, ``params`` upper-case keys without blanks, as ccx
    compares them (``TIMERESET``; values as written), ``file``/``line`` of the keyword line, ``data`` lines and their line numbers."""

    keyword: str
    params: dict[str, str]
    file: Path
    line: int
    data: list[str] = field(default_factory=list)
    data_lines: list[int] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def rows(self) -> list[tuple[list[str], int]]:
        """Data lines split on commas (stripped tokens, trailing empties dropped) with line numbers."""
        out = []
        for text, number in zip(self.data, self.data_lines):
            tokens = [t.strip() for t in text.split(",")]
            while tokens and not tokens[-1]:
                tokens.pop()
            out.append((tokens, number))
        return out


@dataclass(frozen=True)
class DeckLimits:
    """Bounds on the flat deck an Abaqus part/assembly deck becomes (:func:`.abaqus_assembly.flatten_assembly`),
    checked on counts before an instance's cards are made: a part of ``N`` nodes instanced ``M`` times is ``N M``
    nodes and lines. ``max_nodes``/``max_elements``: the nodes and elements of the mesh it must have (a reduced model
    answers decks of its own mesh); ``max_lines``/``max_bytes``: data lines and characters of the flat deck (a
    service's limits on an uploaded deck, applied to what it expands to: :class:`DeckTooLarge`), of its cards other
    than ``*NODE`` and ``*ELEMENT`` when the nodes and elements are bounded (a mesh the model has may be larger than
    an upload). None: no bound."""

    max_lines: int | None = None
    max_bytes: int | None = None
    max_nodes: int | None = None
    max_elements: int | None = None


class DeckTooLarge(CalculixError):
    """A deck larger than a :class:`DeckLimits`' ``max_lines`` or ``max_bytes`` once its instances are expanded."""


def not_supported(card: Card, reason: str) -> CalculixError:
    return CalculixError(f"not supported: *{card.keyword}, {card.where}: {reason}")


def line_at(card: Card, number: int) -> str:
    """``file:line`` of a line of ``card`` (a data line read from an ``*INCLUDE``'d file names that file)."""
    return f"{getattr(number, 'file', card.file)}:{number}"


class _IncludedLine(int):
    """The number of a data line read from another file than its card's (``*NODE`` in the deck, its lines in an
    ``*INCLUDE``'d file, as meshers write them): ``file`` is that file."""

    file: Path


def _located(number: int, path: Path) -> int:
    out = _IncludedLine(number)
    out.file = path
    return out


def _error(card: Card, number: int, message: str) -> CalculixError:
    return CalculixError(f"{line_at(card, number)}: *{card.keyword}: {message}")


def read_cards(path: str | os.PathLike, _depth: int = 0, _top: Path | None = None,
               _cards: list[Card] | None = None, *, limits: DeckLimits | None = None) -> list[Card]:
    """Keyword cards of a deck in order, ``*INCLUDE, INPUT=file`` read in place. A relative ``file`` is found
    relative to the including file or, as ccx opens it (relative to the directory it runs in, taken to be the
    deck's), relative to the deck's directory; a nested include naming two different existing files that way
    is refused (ccx's reading depends on where it runs). The included text is read in place, as ccx does: an
    included file may hold the data lines of the card before its ``*INCLUDE`` (their numbers name their file,
    :func:`line_at`). Comment lines (``**``) and blank lines are skipped. An Abaqus deck with parts and
    assemblies comes as the cards of its flat deck (:func:`.abaqus_assembly.flatten_assembly`), bounded by
    ``limits`` (:class:`DeckLimits`) before it is made."""
    path = Path(path)
    top = path.parent if _top is None else _top
    if _depth > 20:
        raise CalculixError(f"{path}: *INCLUDE nested more than 20 deep (a file including itself?)")
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise CalculixError(f"cannot read CalculiX input {str(path)!r}: file not found") from None
    except OSError as exc:
        raise CalculixError(f"cannot read CalculiX input {str(path)!r}: {exc.strerror or exc}") from None
    cards: list[Card] = [] if _cards is None else _cards
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):  # (a Windows editor's BOM)
        line = raw.strip()
        if not line or line.startswith("**"):
            continue
        keyword = keyword_of(line)
        if keyword is not None:
            params = card_parameters(line)
            if keyword == "INCLUDE":
                if not params.get("INPUT"):
                    raise CalculixError(f"{path}:{number}: *INCLUDE needs INPUT=<file>")
                inc = _include(Path(params["INPUT"]), path, number, top)
                read_cards(inc, _depth + 1, top, cards)
                continue
            cards.append(Card(keyword, params, path, number))
        elif cards:
            cards[-1].data.append(line if cards[-1].keyword == "HEADING" else _names_without_blanks(line))
            cards[-1].data_lines.append(number if cards[-1].file == path else _located(number, path))
        else:
            raise CalculixError(f"{path}:{number}: data line before any keyword card: {line[:60]!r}")
    if _depth == 0:  # (Abaqus's parts and assemblies as the flat deck, cards keeping their lines)
        from .abaqus_assembly import flatten_assembly
        return flatten_assembly(cards, limits)
    return cards


def _names_without_blanks(line: str) -> str:
    """A data line with the blanks inside its names removed, as ccx reads every line without its blanks (a set
    ``Tip Nodes``, as gmsh writes a physical group's name, is ``TIPNODES``). A number written with a blank inside
    (``210 000``) keeps it: ccx would read 210000, and such a line is more likely a separator missing, so it is
    refused where it is read, naming the token."""
    if _INNER_BLANK.search(line) is None:  # (the usual line: blanks around commas only)
        return line
    tokens = [t.strip() for t in line.split(",")]
    for i, token in enumerate(tokens):
        joined = "".join(token.split())
        if joined != token:
            try:
                fortran_float(joined)
            except ValueError:
                tokens[i] = joined
    return ",".join(tokens)


#: A blank between two characters of one token (not next to a comma).
_INNER_BLANK = re.compile(r"[^\s,][ \t]+[^\s,]")


def _include(name: Path, path: Path, number: int, top: Path) -> Path:
    """The file an ``*INCLUDE, INPUT=name`` on ``path:number`` reads (:func:`read_cards`)."""
    if name.is_absolute():
        found = [name] if name.exists() else []
    else:
        found = [p for p in dict.fromkeys([path.parent / name, top / name]) if p.exists()]
    if not found:
        raise CalculixError(f"{path}:{number}: *INCLUDE file {str(path.parent / name)!r} does not exist")
    if len(found) > 1 and found[0].read_bytes() != found[1].read_bytes():
        raise CalculixError(f"{path}:{number}: *INCLUDE, INPUT={name}: two different files {str(found[0])!r} (beside "
                            f"the including file) and {str(found[1])!r} (beside the deck: ccx, run in the deck's "
                            "directory, reads this one) exist; remove one or give the path from the deck's directory")
    return found[-1]


#: Ids are exact integers below this in size (every such integer is a double, as ids are read).
ID_LIMIT = 2 ** 53


def fortran_float(token: str) -> float:
    """A number as ccx reads it: Fortran's double-precision exponents too (``1.5D+02``); ValueError otherwise."""
    return float(token.replace("d", "e").replace("D", "E"))


def exact_ids(values: np.ndarray) -> np.ndarray:
    """Which of ``values`` (any shape, float) are ids: finite integers below 2^53 in size (a bool mask)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values == np.trunc(values)) & (np.abs(values) < ID_LIMIT)


def as_id(token: str) -> int | None:
    """The integer id a token writes (``12``, ``12.``, ``1.2e1``), None when it is not one: not a number (a set
    name, say), or a number that is not a finite integer below 2^53 in size (``1.5``, ``1e400``, ``nan``)."""
    try:
        value = fortran_float(token)
    except ValueError:
        return None
    return int(value) if exact_ids(np.array(value)) else None


def _float(card: Card, token: str, number: int, what: str) -> float:
    try:
        value = fortran_float(token)
    except ValueError:
        raise _error(card, number, f"{what} must be a number, got {token!r}") from None
    if not np.isfinite(value):
        raise _error(card, number, f"{what} must be finite, got {token!r}")
    return value
