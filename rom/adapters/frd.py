"""CalculiX ``.frd`` result files (ASCII, as ccx 2.20 writes them by default): mesh and nodal results.

Layout (ccx 2.20, ``frd.f``; checked on ccx runs):

* ``    2C  <n>  ... <format>``: node block, ``-1 <id> x y z`` lines (``format`` 0: ``I5`` ids, 1: ``I10``
  ids, both ``E12.5`` values; others are *binary*, as ``*NODE OUTPUT``/``*ELEMENT OUTPUT`` write them, refused
  here);
* ``    3C  <n>  ... <format>``: element block, ``-1 <id> <type> <group> <material>`` then ``-2`` lines of
  node ids; types 1 he8, 3 te4, 4 he20, 6 te10 (others: 2 pe6, 5 pe15, 7 tr3, 8 tr6, 9 qu4, 10 qu8,
  11 be2, 12 be3); 20-node hexahedra list nodes 13-16 and 17-20 swapped relative to the ``.inp``;
* a result block: ``    1PSTEP  <block> <increment> <step>``, ``  100CL ... <time> <n> ...``,
  ``-4 <NAME> <n_components> <ictype>``, one ``-5`` line per component (a 7th token ``1`` marks a
  derived component such as ``ALL`` with no data column), ``-1 <node> <values>`` lines (``-2``
  continuation lines past 6 values), ``-3`` to end;
* quantities: ``DISP`` (u), ``NDTEMP`` (nodal temperature), ``STRESS`` and ``TOSTRAIN`` (``xx yy zz xy
  yz zx``, strains with *tensor* shears), ``PE`` (equivalent plastic strain, extrapolated to the nodes),
  ``FORC`` (reaction forces), ``ME``, ``ENER``, ``ERROR``...; element results are extrapolated to and
  averaged at the nodes (integration-point values are only in the ``.dat``, ``*EL PRINT``);
* 6 significant digits for values and coordinates (take coordinates from the ``.inp``).

:func:`read_frd_file` returns everything in :mod:`structrom.rom.voigt` order (engineering strain shears);
:func:`read_frd` the nodal results only, one :class:`FrdResult` per increment with ``(n, k)`` fields.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calculix_error import CalculixError
from .dat import _floats
from .magnitudes import ABSURD, beyond

__all__ = ["FrdIncrement", "FrdFile", "read_frd_file", "FrdResult", "read_frd", "FRD_ELEMENT_TYPES",
           "FRD_FIELD_NAMES"]

#: frd element type code -> (our element name or None, number of nodes).
FRD_ELEMENT_TYPES: dict[int, tuple[str | None, int]] = {
    1: ("C3D8", 8), 2: ("C3D6", 6), 3: ("C3D4", 4), 4: ("C3D20", 20), 5: ("C3D15", 15), 6: ("C3D10", 10),
    7: (None, 3), 8: (None, 6), 9: (None, 4), 10: (None, 8), 11: (None, 2), 12: (None, 3)}
#: frd block names -> the ``*NODE FILE``/``*EL FILE`` keys that request them.
FRD_FIELD_NAMES = {"DISP": "U", "NDTEMP": "NT", "STRESS": "S", "TOSTRAIN": "E", "PE": "PEEQ", "FORC": "RF",
                   "ME": "ME", "ENER": "ENER"}
#: frd node order -> .inp node order of the types whose .frd lists the nodes otherwise (involutions): the 20-node
#: hexahedron's mid-edge nodes 13-16 and 17-20 swapped, the 15-node wedge's 10-12 and 13-15 (ccx 2.20's frd.f)
FRD_TO_INP = {4: np.r_[0:12, 16:20, 12:16], 5: np.r_[0:9, 12:15, 9:12]}


def _fixed_width(lines: list[str], start: int, width: int, count: int) -> np.ndarray:
    """Parse ``count`` fixed-width float fields starting at column ``start`` of every line, ``(n, count)``."""
    if not lines:
        return np.zeros((0, count))
    length = start + width * count
    arr = np.array([ln.ljust(length)[:length] for ln in lines], dtype=f"S{length}")
    chars = arr.view(np.uint8).reshape(len(lines), length)[:, start:]
    fields = np.ascontiguousarray(chars).view(f"S{width}").reshape(len(lines), count)
    try:
        return fields.astype(float)
    except ValueError:
        text = "\n".join(" ".join(f.decode() for f in row) for row in fields)
        return _floats(text).reshape(len(lines), count)


@dataclass
class FrdIncrement:
    """Nodal results of one increment.

    ``step``, ``increment``: ccx's step and increment numbers; ``time``: ccx's total time;
    ``node_ids`` ``(n,)`` ascending ids of the nodes with results; ``fields``: frd name -> ``(n, k)``
    (``(n,)`` for one component) aligned with ``node_ids``, NaN where a field has no value at a node.
    ``DISP`` ``(n, 3)``, ``NDTEMP`` ``(n,)``, ``STRESS``/``TOSTRAIN`` ``(n, 6)`` in our Voigt order with
    engineering shears, ``PE`` ``(n,)``.
    """

    step: int
    increment: int
    time: float
    node_ids: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    #: frd name -> ``(m,)`` ascending ids of the nodes its block lists (the others are NaN in ``fields``)
    listed: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def nodal(self, name: str, node_ids: np.ndarray) -> np.ndarray:
        """Field ``name`` at ``node_ids`` (``(m,)`` ccx ids, any order); raises naming the missing ids."""
        if name not in self.fields:
            raise CalculixError(f"no {name} block in step {self.step}, increment {self.increment} (time "
                                f"{self.time:g}); request {FRD_FIELD_NAMES.get(name, name)} in *NODE FILE/*EL FILE. "
                                f"Blocks present: {sorted(self.fields)}")
        ids = np.asarray(node_ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.node_ids, ids), 0, max(len(self.node_ids) - 1, 0))
        ok = self.node_ids[pos] == ids if len(self.node_ids) else np.zeros(len(ids), bool)
        values = self.fields[name][pos]
        flat = values.reshape(len(ids), -1)
        wild = beyond(flat, nan_ok=True)
        absurd = ok & wild.any(axis=1)
        if absurd.any():
            k = int(np.flatnonzero(absurd)[0])
            raise CalculixError(f"{name} at time {self.time:g} is {float(flat[k][wild[k]][0]):.6g} "
                                f"at node id {int(ids[k])} ({int(absurd.sum())} nodes infinite or above {ABSURD:g} in "
                                "magnitude): not a result of a converged increment (a diverged solve or a damaged file)")
        written_nan = ok & np.isnan(flat).any(axis=1) & np.isin(ids, self.listed.get(name, ids))
        if written_nan.any():
            k = int(np.flatnonzero(written_nan)[0])
            raise CalculixError(f"{name} at time {self.time:g} is NaN at node id {int(ids[k])} ({int(written_nan.sum())} "
                                "nodes): not a result of a converged increment (a diverged solve or a damaged file)")
        missing = ~ok | np.isnan(flat).any(axis=1)
        if missing.any():
            raise CalculixError(f"{name} at time {self.time:g} has no value at node ids "
                                f"{ids[missing][:10].tolist()} ({int(missing.sum())} nodes): the results do not "
                                "belong to this mesh, or the output was requested for a subset (use NSET of all nodes)")
        return values


@dataclass
class FrdFile:
    """A parsed ``.frd`` file: ``node_ids`` ``(n,)``, ``coordinates`` ``(n, 3)`` (6 digits), elements
    ``element_ids`` ``(m,)``, ``element_types`` ``(m,)`` frd codes, ``connectivity`` list of ``(k,)`` node
    id arrays in ``.inp`` order, and the ``increments`` in file order."""

    path: Path
    node_ids: np.ndarray
    coordinates: np.ndarray
    element_ids: np.ndarray
    element_types: np.ndarray
    connectivity: list[np.ndarray]
    increments: list[FrdIncrement]

    @property
    def times(self) -> np.ndarray:
        return np.array([inc.time for inc in self.increments])


def _check_text(path: Path, head: bytes) -> None:
    if head[:2] == b"\x1f\x8b":
        raise CalculixError(f"{path}: the file is gzip-compressed; decompress it (gunzip) and give the plain "
                            "ccx results file")
    if b"\x00" in head:
        raise CalculixError(f"{path}: binary .frd results are not supported; rerun ccx with ASCII results "
                            "(ccx's default .frd format: request them with *NODE FILE/*EL FILE, not *NODE OUTPUT/"
                            "*ELEMENT OUTPUT, which write binary), or convert the file to ASCII with cgx")


def read_frd_file(path: str | os.PathLike) -> FrdFile:
    """Parse an ASCII ccx ``.frd`` file (mesh and every result block of every increment).

    Raises :class:`~structrom.rom.adapters.calculix.CalculixError` naming the file and line for binary
    files, truncated blocks and malformed lines.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalculixError(f"cannot read ccx results {str(path)!r}: {exc}") from None
    _check_text(path, raw[:65536])
    lines = raw.decode("latin-1").splitlines()
    n = len(lines)
    out = FrdFile(path, np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, np.int64), [], [])
    current: FrdIncrement | None = None
    step = increment = 0

    def block_end(j: int) -> int:
        k = j
        while k < n and not lines[k].startswith(" -3"):
            k += 1
        if k >= n:
            raise CalculixError(f"{path}:{j + 1}: block without ' -3' terminator; the file is truncated")
        return k

    def declared(line: str, number: int, found: int, what: str) -> None:
        """A block's count (columns 25-36 of its header line, ``number`` 1-based) must be the ``found`` lines."""
        try:
            count = int(line[24:36])
        except ValueError:
            raise CalculixError(f"{path}:{number}: cannot read the block's {what} count: {line[:60]!r}") from None
        if count != found:
            raise CalculixError(f"{path}:{number}: the block declares {count} {what} but holds {found} ' -1' lines: "
                                "the file is damaged or truncated")

    def unique(ids: np.ndarray, number: int, what: str) -> None:
        if len(np.unique(ids)) != len(ids):
            vals, counts = np.unique(ids, return_counts=True)
            raise CalculixError(f"{path}:{number}: {what} id {int(vals[counts > 1][0])} is listed twice in the block: "
                                "the file is damaged")

    def fmt_of(line: str, number: int) -> int:
        tokens = line.split()
        try:
            fmt = int(tokens[-1])
        except (ValueError, IndexError):
            raise CalculixError(f"{path}:{number}: cannot read the block's format field: {line[:60]!r}") from None
        if fmt not in (0, 1):
            raise CalculixError(f"{path}:{number}: .frd format {fmt} (binary) is not supported; rerun ccx with "
                                "ASCII results (*NODE FILE/*EL FILE, not *NODE OUTPUT/*ELEMENT OUTPUT) or convert the "
                                "file with cgx")
        return fmt

    i = 0
    while i < n:
        ln = lines[i]
        key = ln[:12].strip().split(" ")[0] if ln[:12].strip() else ""
        try:
            if key == "2C":
                idw = 10 if fmt_of(ln, i + 1) == 1 else 5
                end = block_end(i + 1)
                data = [d for d in lines[i + 1:end] if d.startswith(" -1")]
                declared(ln, i + 1, len(data), "nodes")
                out.node_ids = np.array([int(d[3:3 + idw]) for d in data], dtype=np.int64)
                unique(out.node_ids, i + 1, "node")
                out.coordinates = _fixed_width(data, 3 + idw, 12, 3)
                i = end + 1
                continue
            if key == "3C":
                idw = 10 if fmt_of(ln, i + 1) == 1 else 5
                end = block_end(i + 1)
                ids, types, conn = [], [], []
                for d in lines[i + 1:end]:
                    if d.startswith(" -1"):
                        parts = d[3:].split()
                        ids.append(int(parts[0]))
                        types.append(int(parts[1]))
                        conn.append([])
                    elif d.startswith(" -2") and conn:
                        body = d[3:]
                        conn[-1] += [int(body[k:k + idw]) for k in range(0, len(body.rstrip()), idw)]
                declared(ln, i + 1, len(ids), "elements")
                out.element_ids = np.array(ids, dtype=np.int64)
                unique(out.element_ids, i + 1, "element")
                out.element_types = np.array(types, dtype=np.int64)
                for t, c in zip(types, conn):
                    c = np.array(c, dtype=np.int64)
                    perm = FRD_TO_INP.get(t)
                    out.connectivity.append(c[perm] if perm is not None and len(c) == len(perm) else c)
                i = end + 1
                continue
            if key == "1PSTEP":
                parts = ln.split()
                increment, step = int(parts[-2]), int(parts[-1])
            elif key == "100CL":
                t = float(ln[12:24])
                if not np.isfinite(t):
                    raise CalculixError(f"{path}:{i + 1}: the block's time {ln[12:24].strip()!r} is not a finite "
                                        "number: the file is damaged")
                idw = 10 if (int(ln[73:75]) if len(ln) >= 75 and ln[73:75].strip() else 1) == 1 else 5
                j = i + 1
                if j >= n or not lines[j].startswith(" -4"):
                    raise CalculixError(f"{path}:{j + 1}: expected a ' -4' field header after '100CL'")
                name = lines[j].split()[1]
                j += 1
                n_comp = 0
                while j < n and lines[j].startswith(" -5"):
                    tokens = lines[j].split()
                    n_comp += not (len(tokens) > 6 and tokens[6].startswith("1"))
                    j += 1
                end = block_end(j)
                data: list[str] = []
                for d in lines[j:end]:
                    if d.startswith(" -1"):
                        data.append(d.rstrip())
                    elif d.startswith(" -2") and data:
                        data[-1] = data[-1] + d[3 + idw:].rstrip()
                declared(ln, i + 1, len(data), "nodes")
                ids = np.array([int(d[3:3 + idw]) for d in data], dtype=np.int64)
                unique(ids, i + 1, f"{name}: node")
                values = _fixed_width(data, 3 + idw, 12, n_comp)
                order = np.argsort(ids, kind="stable")
                ids, values = ids[order], values[order]
                if name == "TOSTRAIN" and n_comp == 6:
                    values[:, 3:] *= 2.0  # tensor -> engineering shears
                if name == "DISP" and n_comp > 3:
                    values = values[:, :3]
                if current is None or (current.step, current.increment) != (step, increment):
                    current = FrdIncrement(step, increment, t, ids, {})
                    out.increments.append(current)
                if not np.array_equal(ids, current.node_ids):
                    union = np.union1d(current.node_ids, ids)
                    pos = np.searchsorted(union, current.node_ids)
                    for k, v in current.fields.items():
                        full = np.full((len(union),) + v.shape[1:], np.nan)
                        full[pos] = v
                        current.fields[k] = full
                    current.node_ids = union
                    full = np.full((len(union), values.shape[1]), np.nan)
                    full[np.searchsorted(union, ids)] = values
                    values = full
                current.fields[name] = values[:, 0] if values.shape[1] == 1 else values
                current.listed[name] = ids
                i = end + 1
                continue
            if ln.startswith(" -4"):
                raise CalculixError(f"{path}:{i + 1}: a field header ' -4' without its '  100CL' line before it: the "
                                    "file is damaged")
        except CalculixError:
            raise
        except (ValueError, IndexError, OverflowError) as exc:  # (a field cut short, a number that is not one)
            raise CalculixError(f"{path}:{i + 1}: malformed .frd block at line {ln[:60]!r} ({exc})") from None
        i += 1
    if not len(out.node_ids):
        raise CalculixError(f"{path}: no node block ('    2C'): not a ccx .frd file, or an empty one")
    return out


@dataclass
class FrdResult:
    """Nodal results of one increment of a ``.frd`` file.

    ``node_ids``: ``(n,)`` ids of the nodes with results (ascending); ``fields``: name -> ``(n, k)``
    values aligned with ``node_ids`` (NaN where a field has no value at a node): ``DISP`` (n, 3),
    ``STRESS`` (n, 6, our order), ``TOSTRAIN`` (n, 6, converted to engineering shears), ``PE`` (n, 1)...
    """

    step: int
    increment: int
    time: float
    node_ids: np.ndarray
    fields: dict[str, np.ndarray]

    @property
    def disp(self) -> np.ndarray:
        return self.fields["DISP"]

    @property
    def stress(self) -> np.ndarray:
        return self.fields["STRESS"]


def read_frd(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[FrdResult]]:
    """Parse an ASCII ``.frd`` file.

    Returns ``node_ids`` ``(n,)``, ``coordinates`` ``(n, 3)`` (6 significant digits only) and the nodal
    results of every increment, in file order, each field ``(n, k)``. Stresses are in our order (the .frd's),
    strains are converted to engineering shears. (:func:`read_frd_file` gives the elements too.)
    """
    f = read_frd_file(path)
    results = [FrdResult(inc.step, inc.increment, inc.time, inc.node_ids,
                         {k: v.reshape(len(v), -1) for k, v in inc.fields.items()}) for inc in f.increments]
    return f.node_ids, f.coordinates, results

