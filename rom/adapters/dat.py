"""CalculiX ``.dat`` result files: the ``*NODE PRINT``/``*EL PRINT`` blocks.

Facts about ccx 2.20's ``.dat`` this module relies on (checked against ccx 2.20 runs): header lines like
``displacements (vx,vy,vz) for set XMAX and time  0.1000000E+01``; element blocks list ``elem, integ.pnt.``
then values; stresses and strains come in the order ``xx yy zz xy xz yz`` and strains' shears are *tensor*
shears; 7 significant digits; ``time`` is ccx's total time; a three-digit exponent loses its ``E``
(``1.000000-100``).

Results are returned in :mod:`structrom.rom.voigt` order (``xx yy zz xy yz zx``, engineering strain shears).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .calculix_cards import exact_ids
from .calculix_error import CalculixError

__all__ = ["DatBlock", "read_dat"]

# .dat: tensor columns xx yy zz xy xz yz -> ours xx yy zz xy yz zx
_DAT_TENSOR_TO_OURS = np.array([0, 1, 2, 3, 5, 4])


@dataclass
class DatBlock:
    """One printed block of a ``.dat`` file.

    ``quantity``: ``"U"``, ``"RF"``, ``"S"``, ``"E"``, ``"PEEQ"`` (or the header's words for others);
    ``ids``: ``(n,)`` node ids or ``(n, 2)`` (element id, integration point, both 1-based);
    ``values``: ``(n, k)``, tensors converted to :mod:`structrom.rom.voigt` order (strains with engineering
    shears); ``columns``: the names in ccx's header; ``time``: ccx's total time.
    """

    quantity: str
    set_name: str
    time: float
    ids: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]


_DAT_HEADER = re.compile(r"^\s*([a-z][a-z ]*?)\s*\(([^)]*)\)\s*for set\s+(\S+)\s+and time\s+(\S+)")
_DAT_NAMES = {
    "displacements": "U",
    "forces": "RF",
    "stresses": "S",
    "strains": "E",
    "equivalent plastic strain": "PEEQ",
}
_FORTRAN_EXP = re.compile(r"(?<=[0-9.])([+-]\d{3})\b")


def _floats(text: str) -> np.ndarray:
    try:
        return np.array(text.split(), dtype=float)
    except ValueError:
        return np.array(_FORTRAN_EXP.sub(r"E\1", text).split(), dtype=float)


def read_dat(path: str | os.PathLike) -> dict[float, dict[str, DatBlock]]:
    """Parse ``*NODE PRINT``/``*EL PRINT`` blocks of a ccx ``.dat`` file.

    Returns ``{time: {quantity: DatBlock}}`` (blocks of the same quantity and time printed for several
    sets are concatenated). Stresses ``S`` come in our order ``xx yy zz xy yz zx``; strains ``E`` also,
    with engineering shears (ccx prints tensor shears).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalculixError(f"cannot read ccx results {str(path)!r}: {exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        raise CalculixError(f"{path}: the file is gzip-compressed; decompress it (gunzip) and give the plain ccx "
                            ".dat file")
    if b"\x00" in raw[:65536]:
        raise CalculixError(f"{path}: not a text file (it holds NUL bytes): give ccx's .dat as written (ASCII)")
    lines = raw.decode("latin-1").splitlines()  # (ccx writes ASCII; any byte decodes, junk fails as a number)
    out: dict[float, dict[str, DatBlock]] = {}
    i = 0
    while i < len(lines):
        m = _DAT_HEADER.match(lines[i])
        if not m:  # other lines (e.g. "total force" summaries) are not parsed
            i += 1
            continue
        words, cols, set_name, t = m.groups()
        columns = tuple(c.strip() for c in cols.split(",") if c.strip())
        header_line = i + 1
        i += 1
        data = []
        while i < len(lines) and (not lines[i].strip() or lines[i].strip()[0].isdigit()
                                  or lines[i].strip()[0] == "-"):
            if lines[i].strip():
                data.append(lines[i])
            elif data:
                break
            i += 1
        is_element = columns[:1] == ("elem",)  # element blocks list (elem, integ.pnt.) in the header
        whole = columns[:1] == ("element",)  # whole-element values (ELSE, EVOL, EMAS): (element, value)
        is_total = words.startswith("total")  # TOTALS=ONLY/YES sums: one line of values, no id
        n_id = 0 if is_total else 2 if is_element else 1
        # node headers omit the id column
        n_val = len(columns) - 2 if is_element else len(columns) - 1 if whole and not is_total else len(columns)
        n_col = n_id + n_val
        try:
            vals = _floats(" ".join(data))
        except ValueError:
            vals = np.zeros(0)
        if vals.size != n_col * len(data) and words not in _DAT_NAMES and not is_total:
            continue  # a block of another layout that nothing here reads (e.g. contact or section output)
        if vals.size != n_col * len(data):
            raise CalculixError(
                f"{path}:{header_line}: block '{words}' for set {set_name} has lines that are not "
                f"{n_col} numbers; the file is truncated or not a ccx 2.20 .dat"
            )
        vals = vals.reshape(len(data), n_col)
        id_vals = vals[:, :n_id]
        if not exact_ids(id_vals).all():
            raise CalculixError(f"{path}:{header_line}: block '{words}' for set {set_name} has ids that are not "
                                "integers; the file is damaged or not a ccx 2.20 .dat")
        ids = id_vals.astype(np.int64)
        ids = ids[:, 0] if n_id == 1 else ids if n_id else np.zeros(0, np.int64)
        values = vals[:, n_id:]
        quantity = _DAT_NAMES.get(words, words)
        if is_total:  # e.g. "total force" -> "RF_TOTAL" (not merged with the per-node "RF" blocks)
            base = _DAT_NAMES.get(words[len("total"):].strip(), words[len("total"):].strip())
            quantity = f"{_DAT_NAMES.get('forces') if base == 'force' else base}_TOTAL"
        if quantity in ("S", "E") and n_val == 6:
            values = values[:, _DAT_TENSOR_TO_OURS]
            if quantity == "E":
                values[:, 3:] *= 2.0
        try:
            time = float(_FORTRAN_EXP.sub(r"E\1", t))
            if not np.isfinite(time):
                raise ValueError
        except ValueError:
            raise CalculixError(f"{path}:{header_line}: block '{words}' for set {set_name}: time {t!r} is not a "
                                "number") from None
        block = DatBlock(quantity, set_name, time, ids, values, columns)
        slot = out.setdefault(time, {})
        if quantity in slot:
            old = slot[quantity]
            block = DatBlock(quantity, f"{old.set_name},{set_name}", time,
                             np.concatenate([old.ids, ids]), np.concatenate([old.values, values]), columns)
        slot[quantity] = block
    return out

