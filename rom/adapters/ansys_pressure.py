"""Element-face pressures (``SFE``/``SFEBLOCK``, label ``PRES``) of an Ansys archive (``.cdb``).

ansys-mapdl-reader's result object exposes no surface loads (the ``.rst`` boundary-condition record holds
the ``D`` and ``F`` records only) and its ``Archive`` skips the ``SFE`` lines of a ``.cdb``; this module reads
them from the archive's text:

* ``SFE,Elem,LKEY,PRES,KVAL,VAL1,VAL2,VAL3,VAL4`` (the command form; ``Elem`` an element number or an
  element component; ``LKEY`` blank = 1; ``VAL2..VAL4`` all blank = ``VAL1``, as the command documents);
* ``SFE,Elem,LKEY,PRES,KVAL,R5.0`` followed by one line of the four values (CDWRITE's unblocked form);
* ``SFEBLOCK,n,PRES,...`` with a Fortran format line, then rows ``element, face, value key, values`` read
  with that format's field widths, ended by ``SFE,END,LOC,-1`` (or ``-1``, or any command line).

``KVAL`` 0/1 rows are the (real) pressures; ``KVAL`` 2 rows (imaginary parts, harmonic analyses) must be
zero. A later load on the same face replaces the earlier one (``SFCUM`` default). The face value is the
corner values' common value: tapered pressures are refused (the reduced model's pressures are uniform per
surface). Refused with the file, line and the fix: other labels (``CONV``, ``HFLUX``, ...), tabular values
(``%TAB%``), ``SFE,ALL`` (depends on a selection the archive does not record), nodal/solid-model surface
loads (``SF``, ``SFA``, ``SFL``), ``SFGRAD``/``SFFUN``/``SFBEAM``/``SFEDELE``/``SFDELE``, ``SFCUM`` other
than replace, ``SFSCALE`` other than 1.

Ansys face numbers (Element Reference, "Surface Loads") -> our local faces (:data:`structrom.rom.fem.faces.FACES`):
SOLID185/186 bricks: 1 (J-I-L-K), 2 (I-J-N-M), 3 (J-K-O-N), 4 (K-L-P-O), 5 (L-I-M-P), 6 (M-N-O-P) are our
S1, S3, S4, S5, S6, S2; SOLID187/285 tetrahedra: 1 (J-I-K), 2 (I-J-L), 3 (J-K-L), 4 (K-I-L) are S1..S4.
Positive Ansys pressures act into the element, as ours (:func:`structrom.rom.fem.surface.surface_force`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ansys import AnsysError, _reader, archive_block_at, load_archive, read_isolated
from .magnitudes import ABSURD

__all__ = ["ANSYS_FACE_TO_LOCAL", "CdbPressures", "read_cdb_pressures"]

#: our element type -> ``(n_ansys_faces,)`` our local face of Ansys face ``k`` at position ``k - 1``.
ANSYS_FACE_TO_LOCAL = {"C3D8": np.array([0, 2, 3, 4, 5, 1]), "C3D20": np.array([0, 2, 3, 4, 5, 1]),
                       "C3D20R": np.array([0, 2, 3, 4, 5, 1]), "C3D4": np.arange(4), "C3D10": np.arange(4)}
_CORNERS = {"C3D8": 4, "C3D20": 4, "C3D20R": 4, "C3D4": 3, "C3D10": 3}
_REFUSED = {"SF": "surface loads on nodes", "SFA": "surface loads on areas (solid model)",
            "SFL": "surface loads on lines (solid model)", "SFGRAD": "a pressure gradient",
            "SFFUN": "a surface-load function", "SFBEAM": "beam surface loads",
            "SFEDELE": "deletions of element surface loads", "SFDELE": "deletions of surface loads"}
_FIX = "give the pressures per element face (SFE,elem,face,PRES,,value) in the archive"


@dataclass
class CdbPressures:
    """Pressures of one archive: ``faces`` ``(n, 2)`` (our global element, our local face), ``values``
    ``(n,)`` [force/area, the archive's units], ``ramped``: False when the archive sets ``KBC,1`` (stepped
    loads), True otherwise (Ansys' default for static load steps)."""

    path: Path
    faces: np.ndarray
    values: np.ndarray
    ramped: bool = True


def _widths(fmt: str) -> list[int] | None:
    """Field widths of a Fortran record format such as ``(i9,i4,i4,6(pg20.9))``; None if not understood."""
    s = fmt.strip().lower()
    if not (s.startswith("(") and s.endswith(")")):
        return None
    s = s[1:-1]
    group = re.compile(r"(\d*)\(([^()]*)\)")
    while group.search(s):
        s = group.sub(lambda m: ",".join([m.group(2)] * int(m.group(1) or 1)), s)
    out = []
    for item in filter(None, (x.strip() for x in s.split(","))):
        m = re.fullmatch(r"(?:-?\d*p)?(\d*)([iefgda])(\d+)(?:\.\d+)?(?:e\d+)?", item)  # [scale p][repeat]type width
        if m is None:
            return None
        out += [int(m.group(3))] * int(m.group(1) or 1)
    return out


def _fields(row: str, widths: list[int] | None) -> list[str]:
    if widths is None:
        return row.split()
    out, pos = [], 0
    for w in widths:
        if pos >= len(row.rstrip()):
            break
        out.append(row[pos:pos + w].strip())
        pos += w
    return out


class _Parser:
    def __init__(self, path: Path):
        self.path = path
        self.loads: dict[tuple[str, int], tuple[float, int]] = {}  # (element or component, Ansys face) -> value, line
        self.ramped = True

    def error(self, n: int, msg: str) -> AnsysError:
        return AnsysError(f"{self.path}:{n}: {msg}")

    def number(self, text: str, n: int, what: str) -> float | None:
        text = text.strip()
        if not text:
            return None
        if "%" in text:
            raise self.error(n, f"tabular {what} {text!r} (%TAB%): only constant pressures per archive are read; "
                                "write one archive per run with the pressure values of the run")
        try:
            value = float(text.replace("D", "E").replace("d", "e"))
        except ValueError:
            raise self.error(n, f"{what} {text!r} is not a number") from None
        if not abs(value) <= ABSURD:  # (inf, nan and absurd magnitudes)
            raise self.error(n, f"{what} {text!r} is not a finite number of magnitude <= {ABSURD:g}")
        return value

    def add(self, elem: str, lkey: str, kval: str, values: list[str], n: int) -> None:
        face = int(self.number(lkey, n, "face number (LKEY)") or 1)
        key = int(self.number(kval, n, "value key (KVAL)") or 0)
        v = [self.number(x, n, "pressure") for x in values[:4]]
        v += [None] * (4 - len(v))
        if v[0] is None:
            raise self.error(n, "SFE without a pressure value (VALUE1)")
        if all(x is None for x in v[1:]):
            v = [v[0]] * 4
        v = [0.0 if x is None else x for x in v]
        if key == 2:
            if any(v):
                raise self.error(n, "imaginary pressures (KVAL = 2) belong to harmonic analyses; the import reads "
                                    "static runs")
            return
        if key not in (0, 1):
            raise self.error(n, f"value key KVAL = {key}: PRES takes 0, 1 (real) or 2 (imaginary)")
        self.loads.pop((elem.upper(), face), None)  # the later load replaces (and orders after) the earlier
        self.loads[(elem.upper(), face)] = (tuple(v), n)

    def parse(self, text: str) -> None:
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            n, line = i + 1, lines[i].strip()
            i += 1
            if not line or line.startswith("!"):
                continue
            f = [x.strip() for x in line.split("!")[0].split(",")]
            cmd = f[0].upper()
            if cmd == "SFEBLOCK":
                i = self.block(lines, i, f, n)
            elif cmd == "SFE":
                f += [""] * (10 - len(f))
                if f[1].upper() == "END":
                    continue  # SFEBLOCK end marker (SFE,END,LOC,-1)
                if f[3].upper() != "PRES":
                    raise self.error(n, f"surface load label {f[3] or '(blank)'!r}: only pressures (PRES) are "
                                        "imported (thermal, fluid and electric surface loads do not enter the "
                                        "structural model)")
                if f[1].upper() in ("ALL", "P", ""):
                    raise self.error(n, f"SFE,{f[1] or '(blank)'}: the loaded elements depend on a selection the "
                                        f"archive does not record; {_FIX} or on an element component")
                if f[5].upper().startswith("R5"):  # CDWRITE unblocked: the values on the next line
                    if i >= len(lines):
                        raise self.error(n, "SFE,...,R5.0 without its line of values")
                    self.add(f[1], f[2], f[4], lines[i].split(","), n + 1)
                    i += 1
                else:
                    self.add(f[1], f[2], f[4], f[5:9], n)
            elif cmd in _REFUSED:
                if cmd == "SF" and len(f) > 2 and f[2].upper() != "PRES":
                    raise self.error(n, f"surface load label {f[2]!r}: only pressures (PRES) are imported")
                raise self.error(n, f"{cmd}: {_REFUSED[cmd]} are not read; {_FIX}")
            elif cmd == "SFCUM":
                f += [""] * 5
                factors = [self.number(x, n, "SFCUM factor") or 1.0 for x in f[3:5]]  # blank or 0: 1
                if f[2].upper() not in ("", "REPL") or factors != [1.0, 1.0]:
                    raise self.error(n, f"SFCUM,{','.join(f[1:5])}: only replacing loads (REPL, factors 1) are read")
            elif cmd == "SFSCALE":
                f += [""] * 3
                if (self.number(f[2], n, "SFSCALE factor") or 1.0) != 1.0:
                    raise self.error(n, "SFSCALE with a factor other than 1: write the scaled pressures instead")
            elif cmd == "KBC":
                self.ramped = (self.number((f + ["0"])[1], n, "KBC key") or 0) == 0

    def block(self, lines: list[str], i: int, header: list[str], n: int) -> int:
        header += [""] * 6
        if header[2].upper() != "PRES":
            raise self.error(n, f"SFEBLOCK of label {header[2] or '(blank)'!r}: only pressures (PRES) are imported")
        if header[5] not in ("", "0"):
            raise self.error(n, f"SFEBLOCK with table flag {header[5]} (tabular pressures %TAB%): only constant "
                                "pressures are read; write one archive per run with the run's values")
        widths = None
        if i < len(lines) and lines[i].strip().startswith("("):
            widths = _widths(lines[i])
            if widths is None:
                raise self.error(i + 1, f"SFEBLOCK format {lines[i].strip()!r} not understood")
            i += 1
        while i < len(lines):
            row = lines[i]
            parts = _fields(row, widths)
            if not parts or not re.fullmatch(r"\d+", parts[0]):
                return i  # the end marker (SFE,END,LOC,-1 / -1) or the next command
            if len(parts) < 4:
                raise self.error(i + 1, "SFEBLOCK row needs element, face, value key and values")
            self.add(parts[0], parts[1], parts[2], parts[3:], i + 1)
            i += 1
        return i


def _archive_element_nodes(path: Path, wanted: np.ndarray) -> tuple[dict[int, np.ndarray], dict]:
    """Ansys node numbers of the archive's elements ``wanted`` and its element components."""
    _reader()
    grid, _, element_components = read_isolated(load_archive, path, "an Ansys archive (.cdb, CDWRITE)",
                                                locate=archive_block_at)
    if grid is None:
        raise AnsysError(f"{path}: no mesh read (no NBLOCK/EBLOCK nodes and elements): the archive is cut short or "
                         "damaged; write it again (CDWRITE,DB)")
    enum, nnum = grid.cell_data["ansys_elem_num"], grid.point_data["ansys_node_num"]  # (int64 arrays)
    conn, offsets = grid.cell_connectivity, grid.cell_offsets
    cells = {int(e): c for c, e in enumerate(enum.tolist())}
    out = {int(e): nnum[conn[offsets[cells[e]]:offsets[cells[e] + 1]]] for e in wanted.tolist() if e in cells}
    comps = {str(k).upper(): np.asarray(v, np.int64) for k, v in element_components.items()}
    return out, comps


def read_cdb_pressures(path: str | os.PathLike, mesh, node_ids: np.ndarray, element_ids: np.ndarray) -> CdbPressures:
    """The ``PRES`` element-face loads of the archive ``path`` on ``mesh`` (read from the result file:
    ``node_ids`` ``(n_nodes,)``/``element_ids`` ``(n_elements,)`` its Ansys numbers). Raises
    :class:`AnsysError` naming the file and line for unsupported loads, and the element for loads on
    elements that are not in ``mesh`` or whose nodes differ from the result file's."""
    path = Path(path)
    if not path.exists():
        raise AnsysError(f"Ansys archive {str(path)!r} does not exist")
    p = _Parser(path)
    p.parse(path.read_text(errors="replace"))
    empty = CdbPressures(path, np.zeros((0, 2), np.int64), np.zeros(0), p.ramped)
    if not p.loads:
        return empty
    numeric = np.array(sorted({int(e) for e, _ in p.loads if e.isdigit()}), np.int64)
    nodes, comps = _archive_element_nodes(path, numeric)
    rows: dict[tuple[int, int], tuple[tuple, int]] = {}
    for (elem, face), (values, n) in p.loads.items():  # in file order: later loads replace earlier ones
        if elem.isdigit():
            targets = [int(elem)]
        elif elem in comps:
            targets = comps[elem].tolist()
            extra = np.setdiff1d(comps[elem], list(nodes))
            if len(extra):
                nodes.update(_archive_element_nodes(path, extra)[0])
        else:
            raise p.error(n, f"SFE on {elem!r}: not an element number nor an element component of the archive "
                             f"(components: {sorted(comps)})")
        for e in targets:
            rows[(e, face)] = (values, n)
    order = np.argsort(element_ids)
    block_of = np.repeat(np.arange(len(mesh.blocks)), [len(b) for b in mesh.blocks])
    conn_all = [b.connectivity for b in mesh.blocks]
    offsets = mesh.block_offsets
    faces, values = [], []
    for (e, face), (v, n) in rows.items():
        pos = int(np.searchsorted(element_ids[order], e))
        if pos >= len(order) or element_ids[order[pos]] != e:
            raise p.error(n, f"pressure on element {e}, which is not a solid element of the result file's mesh (a "
                             "surface-effect element such as SURF154 is skipped by the import): give the pressure "
                             "on the face of the solid element beneath (SFE,elem,face,PRES)")
        g = int(order[pos])
        b = int(block_of[g])
        kind = mesh.blocks[b].element
        if kind not in ANSYS_FACE_TO_LOCAL:
            raise p.error(n, f"pressure on element {e}, a {kind} (a SOLID185 prism): surface loads on prisms are not "
                             "mapped (their Ansys face numbers are those of the collapsed brick); load brick or "
                             "tetrahedron faces only")
        ours = node_ids[conn_all[b][g - offsets[b]]]
        theirs = nodes.get(e)
        if theirs is None or len(theirs) != len(ours) or not np.array_equal(theirs, ours):
            raise p.error(n, f"element {e} has other nodes in {path.name} than in the result file: the archive must "
                             "be of the run's model (same node and element numbers)")
        table = ANSYS_FACE_TO_LOCAL[kind]
        if not 1 <= face <= len(table):
            raise p.error(n, f"face {face} of element {e}: a {kind} element (Ansys solid) has faces 1..{len(table)}")
        corners = np.asarray(v[:_CORNERS[kind]])
        if np.ptp(corners) > 1e-12 * max(1.0, np.abs(corners).max()):
            raise p.error(n, f"tapered pressure {corners.tolist()} on face {face} of element {e}: the reduced "
                             "model's pressures are uniform per surface; give one value per face")
        faces.append((g, int(table[face - 1])))
        values.append(float(corners[0]))
    return CdbPressures(path, np.array(faces, np.int64).reshape(-1, 2), np.array(values), p.ramped)
