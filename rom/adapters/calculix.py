"""CalculiX (ccx 2.20) adapter: mesh decks, running ccx, and parsing its ``.dat`` and ``.frd`` results.

Facts about ccx 2.20's formats this module relies on (checked against ccx 2.20 runs):

* input: data lines hold at most 16 entries and 132 characters; real numbers are read with ``f20.0``,
  so a field longer than 20 characters is an input error (e.g. ``%.17g`` of ``-6.123233995736766e-17``):
  numbers are written exactly when their repr fits, else with the most significant digits that fit;
  a 20-node element continues on a second line after a trailing comma; set names are
  case-insensitive (ccx upper-cases them); ``NALL``/``EALL`` are *not* predefined, so
  :func:`write_mesh_inp` writes them;
* analysis (see :func:`write_static_deck`): a ``*STEP`` without ``NLGEOM`` is geometrically linear, also
  with ``*PLASTIC`` (which only makes the step materially nonlinear); ``*STATIC, DIRECT`` keeps fixed
  increments; the default ``*CONTROLS`` field ratios (0.005 residual, 0.01 correction) leave Newton
  errors of ~1e-4; thermal strains are relative to the initial temperature; the point temperature of
  ``C3D8`` is the element mean and that of ``C3D20`` a trilinear fit (``C3D4``, ``C3D10``, ``C3D20R``:
  shape functions);
* ``.dat``: header lines like ``displacements (vx,vy,vz) for set XMAX and time  0.1000000E+01``;
  element blocks list ``elem, integ.pnt.`` then values; stresses and strains come in the order
  ``xx yy zz xy xz yz`` and strains' shears are *tensor* shears; 7 significant digits;
  ``time`` is ccx's total time; a three-digit exponent loses its ``E`` (``1.000000-100``);
* ``.frd``: fixed-width ASCII (``FORMAT=1``: ``I10`` node ids, ``E12.5`` values, 6 significant
  digits); a result block starts with ``1PSTEP  <block> <increment> <step>`` then
  ``100CL ... <time> ...``, ``-4 <NAME> <ncomp> ...``, ``-5`` component lines (``iexist=1`` marks a
  derived component such as ``ALL`` that has no data column) and ``-1 <node> <values>`` lines;
  tensors are ordered ``xx yy zz xy yz zx``; strains (``TOSTRAIN``) have tensor shears; the
  equivalent plastic strain is ``PE``; in the element block, 20-node hexahedra have nodes 13-16 and
  17-20 swapped relative to the ``.inp`` (parsed by :mod:`.frd`); node coordinates have 6 significant digits,
  so take coordinates from the ``.inp``.

* matrices (see :func:`read_matrix_storage`): a last step ``*FREQUENCY, SOLVER=MATRIXSTORAGE`` writes the
  upper triangles of K and M (``.sti``/``.mas``, 1-based ``row col value``) and the row dofs (``.dof``,
  ``node.direction``), without the dofs fixed by ``*BOUNDARY``; the material is evaluated at the
  ``*INITIAL CONDITIONS`` temperatures; a ``*DENSITY`` is required.

Our conventions: ids written to decks are 1-based (node ``i`` -> ``i + 1``, element ``e`` -> ``e + 1``);
results are returned in :mod:`structrom.rom.voigt` order (``xx yy zz xy yz zx``, engineering strain shears).
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from ..fem.mesh import NODES_PER_ELEMENT, CellBlock, Mesh
from structrom.mpi.errors import StructromError

__all__ = [
    "CalculixError",
    "InpIds",
    "CompletedRun",
    "DatBlock",
    "FrdResult",
    "write_mesh_inp",
    "read_inp",
    "run_ccx",
    "read_dat",
    "read_frd",
    "write_static_deck",
    "read_matrix_storage",
    "matrix_dofs_to_ours",
    "expand_matrix",
    "write_matrix_deck",
]

MAX_ENTRIES_PER_LINE = 16
MAX_LINE_LENGTH = 132
#: ccx reads real fields with Fortran ``f20.0``: longer numbers are input errors.
MAX_NUMBER_LENGTH = 20
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
# .dat: tensor columns xx yy zz xy xz yz -> ours xx yy zz xy yz zx
_DAT_TENSOR_TO_OURS = np.array([0, 1, 2, 3, 5, 4])


class CalculixError(StructromError, ValueError):
    """A CalculiX deck, run or result file is invalid; the message names the file, line and fix."""


# -- writing -----------------------------------------------------------------------------------------
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
    for name, nodes in mesh.node_sets.items():
        if all_nset and name.upper() == all_nset.upper():
            # e.g. a mesh read back from one of our decks: ccx would append, listing every node twice
            if len(nodes) != mesh.n_nodes:
                raise CalculixError(f"node set {name!r} is not every node but has the name of the all-nodes set "
                                    f"{all_nset!r}; rename it or pass all_nset=")
            continue
        out.write(f"*NSET, NSET={name}\n")
        out.writelines(_id_lines(nodes + 1))
    for name, elements in mesh.element_sets.items():
        if all_elset and name.upper() == all_elset.upper():
            if len(elements) != mesh.n_elements:
                raise CalculixError(f"element set {name!r} is not every element but has the name of the "
                                    f"all-elements set {all_elset!r}; rename it or pass all_elset=")
            continue
        out.write(f"*ELSET, ELSET={name}\n")
        out.writelines(_id_lines(elements + 1))
    for name, faces in mesh.surface_sets.items():
        out.write(f"*SURFACE, NAME={name}, TYPE=ELEMENT\n")
        out.writelines(f"{e},S{f}\n" for e, f in (faces + 1).tolist())


# -- reading decks -----------------------------------------------------------------------------------
@dataclass
class InpIds:
    """File ids of the mesh read by :func:`read_inp`: ``node_ids`` ``(n_nodes,)`` and ``element_ids``
    ``(n_elements,)``, the CalculiX ids of our node/element ``i``."""

    node_ids: np.ndarray
    element_ids: np.ndarray

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
    """The deck's keyword cards, ``*INCLUDE`` followed (:func:`.calculix_deck.read_cards`)."""
    from .calculix_deck import read_cards

    return read_cards(path)  # type: ignore[return-value]


def _tokens(card: _Card) -> list[str]:
    return [t.strip() for t in ",".join(card.data).split(",") if t.strip()]


def _numbers(card: _Card, path: Path, dtype: type, what: str) -> np.ndarray:
    tokens = _tokens(card)
    try:
        return np.array(tokens, dtype=float).astype(dtype)
    except ValueError:
        for line, number in zip(card.data, card.data_lines):
            for t in line.split(","):
                try:
                    float(t) if t.strip() else None
                except ValueError:
                    raise CalculixError(
                        f"{path}:{number}: *{card.keyword}: {what} expected, got {t.strip()!r}"
                    ) from None
        raise


def read_inp(path: str | os.PathLike) -> tuple[Mesh, InpIds]:
    """Read the mesh of a CalculiX/Abaqus-style input deck (other cards are ignored).

    Parses ``*NODE``, ``*ELEMENT`` (``TYPE``, ``ELSET``), ``*NSET``/``*ELSET`` (ids, names of sets
    defined earlier, ``GENERATE``), ``*SURFACE`` with ``TYPE=ELEMENT`` (``element or elset, S<k>``;
    ``TYPE=NODE`` surfaces become node sets) and follows ``*INCLUDE``. Set names keep the case they have
    in the file. Returns the mesh (nodes and elements in file order, one block per ``*ELEMENT`` card)
    and the file ids.
    """
    path = Path(path)
    cards = _cards(path)
    node_ids, coords = [], []
    blocks: list[tuple[str, np.ndarray, np.ndarray]] = []  # element, ids, connectivity (file ids)
    nsets: dict[str, list[np.ndarray]] = {}
    elsets: dict[str, list[np.ndarray]] = {}
    surfaces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    n_elements = 0

    def where(card: _Card) -> str:
        return f"{path}:{card.line}: *{card.keyword}"

    def set_members(card: _Card, sets: dict, generate: bool) -> np.ndarray:
        tokens = _tokens(card)
        if generate:
            _numbers(card, path, np.int64, "integers 'first, last[, increment]'")  # names bad tokens
            out = []
            for data, number in zip(card.data, card.data_lines):
                v = [int(float(t)) for t in data.split(",") if t.strip()]
                if len(v) not in (2, 3):
                    raise CalculixError(f"{path}:{number}: GENERATE lines need 'first, last[, increment]'")
                first, last, step = (v + [1])[:3]
                if step <= 0 or last < first:
                    raise CalculixError(f"{path}:{number}: GENERATE needs first <= last and increment > 0")
                out.append(np.arange(first, last + 1, step))
            return np.concatenate(out) if out else np.zeros(0, np.int64)
        out = []
        numeric = []
        for t in tokens:
            try:
                numeric.append(int(float(t)))
            except ValueError:
                if t not in sets:
                    upper = {k.upper(): k for k in sets}
                    if t.upper() not in upper:
                        raise CalculixError(f"{where(card)}: {t!r} is neither an id nor a set defined earlier") from None
                    t = upper[t.upper()]
                out.append(np.concatenate(sets[t]))
        out.append(np.array(numeric, dtype=np.int64))
        return np.concatenate(out)

    for card in cards:
        kw = card.keyword
        if kw == "NODE":
            vals = _numbers(card, path, float, "numbers 'id, x, y, z'")
            n_line = len(card.data)
            if n_line and vals.size != 4 * n_line:
                counts = [len([t for t in d.split(",") if t.strip()]) for d in card.data]
                bad = next(i for i, c in enumerate(counts) if c != 4)
                raise CalculixError(
                    f"{path}:{card.data_lines[bad]}: *NODE lines must be 'id, x, y, z' (3D), "
                    f"got {counts[bad]} entries"
                )
            vals = vals.reshape(-1, 4)
            node_ids.append(vals[:, 0].astype(np.int64))
            coords.append(vals[:, 1:])
            if "NSET" in card.params:
                nsets.setdefault(card.params["NSET"], []).append(vals[:, 0].astype(np.int64))
        elif kw == "ELEMENT":
            etype = card.params.get("TYPE", "").upper()
            if etype not in NODES_PER_ELEMENT:
                raise CalculixError(
                    f"{where(card)}: element TYPE={etype or '(missing)'} is not supported; "
                    f"use one of {', '.join(NODES_PER_ELEMENT)}"
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
                elsets.setdefault(card.params["ELSET"], []).append(vals[:, 0])
        elif kw in ("NSET", "ELSET"):
            name = card.params.get(kw)
            if not name:
                raise CalculixError(f"{where(card)}: missing {kw}=<name>")
            sets = nsets if kw == "NSET" else elsets
            sets.setdefault(name, []).append(set_members(card, sets, "GENERATE" in card.params))
        elif kw == "SURFACE":
            name = card.params.get("NAME")
            if not name:
                raise CalculixError(f"{where(card)}: missing NAME=<name>")
            stype = card.params.get("TYPE", "ELEMENT").upper()
            if stype == "NODE":
                nsets.setdefault(name, []).append(set_members(_Card("SURFACE", {}, card.line, [d.split(",")[0] for d in card.data], card.data_lines), nsets, False))
                continue
            if stype != "ELEMENT":
                raise CalculixError(f"{where(card)}: TYPE={stype} is not supported (use TYPE=ELEMENT)")
            for data, number in zip(card.data, card.data_lines):
                parts = [t.strip() for t in data.split(",") if t.strip()]
                m = re.fullmatch(r"S([1-6])", parts[1].upper()) if len(parts) == 2 else None
                if m is None:
                    raise CalculixError(f"{path}:{number}: *SURFACE lines must be 'element or elset, S<1-6>', got {data!r}")
                try:
                    els = np.array([int(float(parts[0]))])
                except ValueError:
                    upper = {k.upper(): k for k in elsets}
                    if parts[0].upper() not in upper:
                        raise CalculixError(f"{path}:{number}: element set {parts[0]!r} is not defined before this *SURFACE") from None
                    els = np.concatenate(elsets[upper[parts[0].upper()]])
                surfaces.setdefault(name, []).append((els, np.full(len(els), int(m.group(1)) - 1)))

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
    mesh = Mesh(
        np.concatenate(coords),
        mesh_blocks,
        node_sets={k: index(ids.node_index, np.concatenate(v), "node set", k) for k, v in nsets.items()},
        element_sets={k: index(ids.element_index, np.concatenate(v), "element set", k) for k, v in elsets.items()},
        surface_sets={
            k: np.column_stack(
                [index(ids.element_index, np.concatenate([a for a, _ in v]), "surface", k),
                 np.concatenate([f for _, f in v])]
            )
            for k, v in surfaces.items()
        },
    )
    return mesh, ids


# -- running -------------------------------------------------------------------------------------------
@dataclass
class CompletedRun:
    """A finished ccx run: ``dat``/``frd`` result paths, console ``output``, wall ``seconds``."""

    jobdir: Path
    jobname: str
    returncode: int
    output: str
    seconds: float

    @property
    def dat(self) -> Path:
        return self.jobdir / f"{self.jobname}.dat"

    @property
    def frd(self) -> Path:
        return self.jobdir / f"{self.jobname}.frd"


def run_ccx(
    jobdir: str | os.PathLike,
    jobname: str,
    *,
    timeout: float = 600.0,
    ccx: str = "ccx",
    threads: int = 1,
    require: tuple[str, ...] = ("dat", "frd"),
) -> CompletedRun:
    """Run ``ccx -i jobname`` in ``jobdir`` (``OMP_NUM_THREADS=threads``).

    Raises :class:`CalculixError` quoting ccx's ``*ERROR`` lines when it fails (non-zero exit, error
    lines, or a missing required result file) and on timeout.
    """
    jobdir = Path(jobdir)
    if not (jobdir / f"{jobname}.inp").exists():
        raise CalculixError(f"CalculiX input {str(jobdir / (jobname + '.inp'))!r} does not exist")
    for ext in require:  # stale results would hide a failure
        (jobdir / f"{jobname}.{ext}").unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CCX_NPROC_EQUATION_SOLVER=str(threads))
    start = _time.perf_counter()
    try:
        proc = subprocess.run(
            [ccx, "-i", jobname], cwd=jobdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise CalculixError(f"CalculiX executable {ccx!r} not found; install calculix-ccx or pass ccx=") from None
    except subprocess.TimeoutExpired:
        raise CalculixError(f"ccx on {jobdir / jobname}.inp did not finish within {timeout} s") from None
    run = CompletedRun(jobdir, jobname, proc.returncode, proc.stdout + proc.stderr, _time.perf_counter() - start)
    lines = run.output.splitlines()
    errors = [
        " ".join(lines[i : i + 3]).strip()
        for i, line in enumerate(lines)
        if "*ERROR" in line
    ]
    missing = [ext for ext in require if not (jobdir / f"{jobname}.{ext}").exists()]
    if proc.returncode != 0 or errors or missing:
        detail = "\n".join(errors[:10]) or "\n".join(lines[-10:])
        raise CalculixError(
            f"ccx failed on {jobdir / jobname}.inp (exit code {proc.returncode}"
            + (f", missing {', '.join(jobname + '.' + e for e in missing)}" if missing else "")
            + f"):\n{detail}"
        )
    return run


# -- .dat ----------------------------------------------------------------------------------------------
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
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise CalculixError(f"cannot read ccx results {str(path)!r}: {exc}") from exc
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
        is_total = words.startswith("total")  # TOTALS=ONLY/YES sums: one line of values, no id
        n_id = 0 if is_total else 2 if is_element else 1
        n_val = len(columns) - 2 if is_element else len(columns)  # node headers omit the id column
        n_col = n_id + n_val
        vals = _floats(" ".join(data))
        if vals.size != n_col * len(data):
            raise CalculixError(
                f"{path}:{header_line}: block '{words}' for set {set_name} has lines that are not "
                f"{n_col} numbers; the file is truncated or not a ccx 2.20 .dat"
            )
        vals = vals.reshape(len(data), n_col)
        ids = vals[:, :n_id].astype(np.int64)
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
        time = float(_FORTRAN_EXP.sub(r"E\1", t))
        block = DatBlock(quantity, set_name, time, ids, values, columns)
        slot = out.setdefault(time, {})
        if quantity in slot:
            old = slot[quantity]
            block = DatBlock(quantity, f"{old.set_name},{set_name}", time,
                             np.concatenate([old.ids, ids]), np.concatenate([old.values, values]), columns)
        slot[quantity] = block
    return out


# -- .frd ----------------------------------------------------------------------------------------------
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
    strains are converted to engineering shears. (:func:`.frd.read_frd_file` gives the elements too.)
    """
    from .frd import read_frd_file

    f = read_frd_file(path)
    results = [FrdResult(inc.step, inc.increment, inc.time, inc.node_ids,
                         {k: v.reshape(len(v), -1) for k, v in inc.fields.items()}) for inc in f.increments]
    return f.node_ids, f.coordinates, results


# -- full quasi-static decks ---------------------------------------------------------------------------
def _g(x: float) -> str:
    """A float for a deck data field (at most 20 characters, exact when the repr fits)."""
    return _number(x)


def _table_lines(tables: list) -> list[str]:
    """``v1, v2, ..., T`` lines of temperature tables on the union of their temperatures (piecewise-linear
    tables with constant extrapolation are represented exactly), or one ``v1, v2, ...`` line if all are
    constant."""
    if all(t.is_constant for t in tables):
        return [", ".join(_g(t.values[0]) for t in tables)]
    temps = np.unique(np.concatenate([t.temperatures for t in tables if not t.is_constant]))
    return [", ".join([_g(t(temp)) for t in tables] + [_g(temp)]) for temp in temps]


def _material_cards(law, mat_name: str, p_big: float) -> list[str]:
    from ..materials import J2Plasticity, LinearElastic, LinearHardening, NortonViscoplasticity, Table

    if isinstance(law, NortonViscoplasticity):
        raise CalculixError(
            "write_static_deck: NortonViscoplasticity is not supported (CalculiX's *CREEP is a different "
            "law: strain hardening, no yield stress); use LinearElastic or J2Plasticity"
        )
    if isinstance(law, J2Plasticity):
        elastic, hardening = law.elastic, law.hardening
    elif isinstance(law, LinearElastic):
        elastic, hardening = law, None
    else:
        raise CalculixError(
            f"write_static_deck: law {type(law).__name__} is not supported; use LinearElastic or J2Plasticity"
        )
    out = [f"*MATERIAL, NAME={mat_name}", "*ELASTIC"]
    out += _table_lines([elastic.young, elastic.poisson])
    if not (elastic.expansion.is_constant and elastic.expansion.values[0] == 0.0):
        out.append(f"*EXPANSION, ZERO={_g(elastic.reference_temperature)}")
        out += _table_lines([elastic.expansion])
    if elastic.density > 0.0:
        out += ["*DENSITY", _g(elastic.density)]
    if hardening is None:
        return out
    kinematic = getattr(law, "kinematic", None)
    if kinematic is None:
        return out + ["*PLASTIC"] + _isotropic_lines(hardening, p_big)
    # ccx 2.20 (plastics.f, cyclichardenings.f, incplas.f): HARDENING=KINEMATIC|COMBINED reads the *PLASTIC
    # table as the kinematic curve (back stress grows with its slope: linear kinematic, Prager, C = slope);
    # KINEMATIC takes the yield stress from that curve's first point, COMBINED from the isotropic curve of
    # *CYCLIC HARDENING (same layout as an isotropic *PLASTIC table). No Armstrong-Frederick recall term.
    if not kinematic.linear:
        raise CalculixError(
            "write_static_deck: Armstrong-Frederick kinematic hardening (recall gamma > 0) has no ccx 2.20 "
            "*PLASTIC equivalent (linear kinematic hardening only); use a Prager rule (gamma = 0) to compare")
    c_mod = kinematic.modulus
    perfect = isinstance(hardening, LinearHardening) and np.all(hardening.modulus.values == 0.0)
    sy = hardening.yield_stress if perfect else Table.constant(0.0)
    out.append("*PLASTIC, HARDENING=" + ("KINEMATIC" if perfect else "COMBINED"))
    out += _linear_curve_lines(sy, c_mod, p_big)
    if not perfect:
        out += ["*CYCLIC HARDENING"] + _isotropic_lines(hardening, p_big)
    return out


def _linear_curve_lines(sy, h, p_big: float) -> list[str]:
    """``stress, plastic strain[, T]`` lines of the curve ``sy(T) + h(T) p`` (two points per temperature,
    exact while p <= ``p_big``)."""
    if sy.is_constant and h.is_constant:
        s0, hh = sy.values[0], h.values[0]
        return [f"{_g(s0)}, 0.0", f"{_g(s0 + hh * p_big)}, {_g(p_big)}"]
    out = []
    for temp in np.unique(np.concatenate([t.temperatures for t in (sy, h) if not t.is_constant])):
        s0, hh = float(sy(temp)), float(h(temp))
        out += [f"{_g(s0)}, 0.0, {_g(temp)}", f"{_g(s0 + hh * p_big)}, {_g(p_big)}, {_g(temp)}"]
    return out


def _isotropic_lines(hardening, p_big: float) -> list[str]:
    """Data lines of an isotropic hardening curve (``*PLASTIC`` or ``*CYCLIC HARDENING``)."""
    from ..materials import LinearHardening, TabulatedHardening

    if isinstance(hardening, TabulatedHardening):
        if max(len(e) for e in hardening.plastic_strain) > 200 or len(
                np.unique(np.concatenate(hardening.plastic_strain))) > 200:
            raise CalculixError(
                "write_static_deck: a *PLASTIC curve with more than 200 distinct plastic strains is "
                "resampled by CalculiX; use at most 200 points"
            )
        return hardening.calculix_lines()
    if isinstance(hardening, LinearHardening):
        return _linear_curve_lines(hardening.yield_stress, hardening.modulus, p_big)
    raise CalculixError(
        f"write_static_deck: {type(hardening).__name__} is not supported by *PLASTIC; tabulate it as a "
        "TabulatedHardening (piecewise-linear, as CalculiX interpolates) or use LinearHardening"
    )


def _amplitude_lines(name: str, times: np.ndarray, values: np.ndarray) -> list[str]:
    pairs = [f"{_g(t)}, {_g(v)}" for t, v in zip(times, values)]
    return [f"*AMPLITUDE, NAME={name}, TIME=TOTAL TIME"] + [
        ", ".join(pairs[i : i + 4]) for i in range(0, len(pairs), 4)
    ]


def write_static_deck(
    path: str | os.PathLike,
    mesh: Mesh,
    law,
    loading,
    *,
    increments: int | None = None,
    outputs: tuple[str, ...] = ("U", "S", "E", "PEEQ"),
    field_tolerances: tuple[float, float] | None = (1e-7, 1e-5),
    p_big: float = 10.0,
    nlgeom: bool | None = None,
) -> np.ndarray:
    """Write a complete ccx 2.20 deck for a quasi-static small-strain problem given by our objects.

    ``law`` (one :class:`~structrom.rom.materials.ConstitutiveLaw` on every element) and ``loading``
    (:class:`structrom.rom.loading.Loading`) are translated as follows:

    * mesh: :func:`write_mesh_inp` (sets ``Nall``/``Eall``); ``*SOLID SECTION, ELSET=Eall``;
    * :class:`~structrom.rom.materials.LinearElastic`: ``*ELASTIC`` (``E, nu[, T]`` on the union of the tables'
      temperatures: exact, since both interpolate linearly and extrapolate constantly), ``*EXPANSION,
      ZERO=reference_temperature`` (secant coefficient, as ours) when the expansion is not 0, ``*DENSITY``
      when the density is > 0;
    * :class:`~structrom.rom.materials.J2Plasticity` adds ``*PLASTIC`` (isotropic hardening):
      :class:`~structrom.rom.materials.TabulatedHardening` via its ``calculix_lines()`` (same semantics);
      :class:`~structrom.rom.materials.LinearHardening` as the two points ``(sigma_y, 0)`` and
      ``(sigma_y + H p_big, p_big)`` per temperature (exact while p <= ``p_big``; ccx is perfectly plastic
      beyond). Not supported (:class:`CalculixError`): ``VoceHardening`` (tabulate it),
      ``NortonViscoplasticity`` (ccx's ``*CREEP`` is another law);
    * Prager kinematic hardening (``law.kinematic``, C(T)): ``*PLASTIC, HARDENING=KINEMATIC`` with the curve
      ``(sigma_y, 0), (sigma_y + C p_big, p_big)`` per temperature when the isotropic part is perfectly plastic
      (LinearHardening with modulus 0), otherwise ``*PLASTIC, HARDENING=COMBINED`` with ``(0, 0),
      (C p_big, p_big)`` and the isotropic curve under ``*CYCLIC HARDENING``; Armstrong-Frederick (gamma > 0)
      is not supported (ccx 2.20 has linear kinematic hardening only);
    * ``ImposedDisplacement`` -> ``*BOUNDARY`` (zero values fixed; other values with an ``*AMPLITUDE``);
      where several entries constrain the same dof the last one wins, as in our solver;
    * forces on node sets -> ``*CLOAD`` ``set, dof, 1.`` per non-zero component with that component's
      amplitude (ccx applies it at each node, as we do); tractions are refused (:class:`CalculixError`);
    * pressures -> ``*DLOAD`` ``element, P<face>, 1.`` lines with the pressure's amplitude; centrifugal ->
      ``Eall, CENTRIF, 1., point, axis`` with the amplitude ``omega(t)^2``; gravity -> ``Eall, GRAV`` with a
      constant amplitude (our solver applies gravity in full from the first increment);
    * temperature (written unless it is 0 at every node and time and the expansion is 0):
      ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` with the nodal values at ``times[0]`` and a ``*TEMPERATURE``
      card with the nodal values at the end of every step.

    Time: ccx's total time is ``t - times[0]``. Every loading increment is one ``*STEP`` (``*STATIC, DIRECT``,
    ``increments`` fixed ccx increments per step, default 1) so ccx ends increments exactly at our times;
    all amplitudes are tables in ``TIME=TOTAL TIME`` sampled at the loading times (every load and
    non-zero displacement has one, so nothing is ramped from zero at a step start). Loads are given only in
    the first step (ccx keeps them, ``OP=MOD``). ``*STEP`` has no ``NLGEOM`` (but see ``nlgeom``): ccx's default for
    ``*STATIC`` is geometrically linear (``*PLASTIC`` makes the step materially nonlinear,
    ``iperturb(1) = 3``, without switching NLGEOM on). With ``field_tolerances = (R_n, C_n)`` a nonlinear
    problem gets ``*CONTROLS, PARAMETERS=FIELD`` with these residual / correction ratios (ccx's defaults
    0.005 / 0.01 stop Newton early enough to be visible at the 1e-4 level).

    ``nlgeom``: write ``*STEP, NLGEOM``; default (None): only for kinematic hardening, because ccx 2.20's
    geometrically linear path uses the back stress of the previous increment with the wrong sign (a
    monotonic uniaxial test then depends on the increment count and softens), while its finite-strain path
    (Simo 1988, ``incplas.f``) is right and tends to our small-strain law as the strains go to zero: compare
    at strains of ~1e-6 (relative differences of that order).

    Facts about ccx 2.20 to keep in mind when comparing:

    * ccx's thermal strain is relative to the *initial* temperature, ``alpha(T) (T - ZERO) -
      alpha(T_0) (T_0 - ZERO)``, ours to ``reference_temperature`` only; they agree only when the thermal
      strain at ``times[0]`` is zero, so this writer raises otherwise;
    * ccx evaluates the temperature at integration points (for E(T), alpha(T), the yield curve and the
      thermal strain) with the element's shape functions, EXCEPT for ``C3D8``, which uses the mean of its 8
      nodal values at every point, and ``C3D20`` (full integration), which uses the trilinear function
      through the quadratic field's values at the 2x2x2 Gauss points (``lintemp.f``); C3D4, C3D10 and
      C3D20R interpolate as we do.

    Outputs: ``*NODE PRINT``/``*NODE FILE`` for the node quantities in ``outputs`` (``U``, ``RF``) on
    ``Nall`` and ``*EL PRINT``/``*EL FILE`` for the element ones (``S``, ``E``, ``PEEQ``, ``ENER``) on
    ``Eall`` (``PEEQ`` is dropped for elastic laws), in every step. Returns the ccx total times at the
    ends of the loading increments, ``times[1:] - times[0]`` (the keys of :func:`read_dat` for them).
    """
    from ..materials import J2Plasticity, LinearElastic

    path = Path(path)
    times = np.asarray(loading.times, dtype=float)
    ccx_times = times - times[0]
    n_inc = 1 if increments is None else int(increments)
    if n_inc < 1:
        raise CalculixError(f"write_static_deck: increments must be >= 1, got {increments!r}")
    nonlinear = isinstance(law, J2Plasticity)
    if nlgeom is None:
        nlgeom = getattr(law, "kinematic", None) is not None
    lines = _material_cards(law, "MAT", p_big)
    elastic = law.elastic if isinstance(law, J2Plasticity) else law
    if not isinstance(elastic, LinearElastic):  # pragma: no cover - _material_cards raised already
        raise CalculixError("unsupported law")

    # Temperatures at every loading time.
    temps = np.array([loading.nodal_temperature(float(t), mesh.points) for t in times])
    has_expansion = not (elastic.expansion.is_constant and elastic.expansion.values[0] == 0.0)
    thermal = bool(np.any(temps != 0.0)) or has_expansion
    if has_expansion:
        eps0 = elastic.expansion(temps[0]) * (temps[0] - elastic.reference_temperature)
        if np.any(np.abs(eps0) > 1e-14):
            raise CalculixError(
                "write_static_deck: the thermal strain at times[0] is not zero (initial temperature differs "
                "from reference_temperature where the expansion is non-zero); ccx measures thermal strain "
                "from the initial temperature, our solver from reference_temperature: start the loading at "
                "the reference temperature"
            )
    lines.append("*SOLID SECTION, ELSET=Eall, MATERIAL=MAT")

    # Amplitudes (all in total time, sampled at the loading times).
    amps: list[str] = []

    def amplitude(values: np.ndarray) -> str:
        name = f"A{len(amps) + 1}"
        amps.append(name)
        lines.extend(_amplitude_lines(name, ccx_times, values))
        return name

    # Boundary conditions: last definition of a dof wins.
    owner: dict[tuple[int, int], int] = {}
    for i, d in enumerate(loading.displacements):
        comps = tuple(int(c) for c in d.components)
        if any(c not in (0, 1, 2) for c in comps):
            raise CalculixError(f"write_static_deck: displacement components must be 0, 1, 2, got {comps}")
        for n in mesh.node_set(d.node_set).tolist():
            for c in comps:
                owner[(n, c)] = i
    step_cards: list[str] = []
    for i, d in enumerate(loading.displacements):
        nodes = mesh.node_set(d.node_set)
        amp_vals = np.array([float(d.amplitude(t)) for t in times])
        moving = d.value != 0.0 and np.any(amp_vals != 0.0)
        head = f"*BOUNDARY, AMPLITUDE={amplitude(amp_vals)}" if moving else "*BOUNDARY"
        body = []
        for c in sorted(set(int(c) for c in d.components)):
            mine = np.array([owner[(n, c)] == i for n in nodes.tolist()], dtype=bool)
            value = f", {_g(d.value)}" if moving else ""
            if mine.all():
                body.append(f"{d.node_set}, {c + 1}, {c + 1}{value}")
            else:
                body += [f"{n + 1}, {c + 1}, {c + 1}{value}" for n in nodes[mine].tolist()]
        if body:
            step_cards += [head] + body

    # Distributed loads.
    for name, amp in loading.pressures.items():
        faces = mesh.surface_set(name)
        a = amplitude(np.array([float(amp(t)) for t in times]))
        step_cards.append(f"*DLOAD, AMPLITUDE={a}")
        step_cards += [f"{e + 1}, P{f + 1}, 1." for e, f in faces.tolist()]
    if loading.tractions:
        raise CalculixError(f"write_static_deck: tractions {sorted(loading.tractions)} are not written (ccx 2.20 has "
                            "no uniform surface traction card without a user subroutine); use nodal forces")
    for name, vec in loading.forces.items():  # *CLOAD on a node set: the value at each node, as ours
        mesh.node_set(name)
        for c, comp in enumerate(vec.components):
            values = np.array([float(comp(t)) for t in times])
            if np.any(values != 0.0):
                step_cards += [f"*CLOAD, AMPLITUDE={amplitude(values)}", f"{name}, {c + 1}, 1."]
    if loading.centrifugal is not None:
        c = loading.centrifugal
        a = amplitude(np.array([float(c.omega(t)) ** 2 for t in times]))
        d = np.asarray(c.axis_direction, float)
        if not np.linalg.norm(d) > 0:
            raise CalculixError("write_static_deck: centrifugal axis_direction must be non-zero")
        d = d / np.linalg.norm(d)
        pt = np.asarray(c.axis_point, float)
        step_cards += [f"*DLOAD, AMPLITUDE={a}",
                       "Eall, CENTRIF, 1., " + ", ".join(_g(x) for x in [*pt, *d])]
    if loading.gravity is not None:
        g = np.asarray(loading.gravity, float)
        gn = float(np.linalg.norm(g))
        if gn > 0:
            a = amplitude(np.ones(len(times)))
            step_cards += [f"*DLOAD, AMPLITUDE={a}",
                           "Eall, GRAV, " + ", ".join(_g(x) for x in [gn, *(g / gn)])]

    # Output requests.
    outputs = tuple(o.upper() for o in outputs)
    unknown = [o for o in outputs if o not in ("U", "RF", "S", "E", "PEEQ", "ENER")]
    if unknown:
        raise CalculixError(
            f"write_static_deck: outputs {unknown} not supported (use U, RF, S, E, PEEQ, ENER)"
        )
    node_out = [o for o in outputs if o in ("U", "RF")]
    el_out = [o for o in outputs if o in ("S", "E", "PEEQ", "ENER") and (nonlinear or o != "PEEQ")]
    out_cards = []
    if node_out:
        out_cards += ["*NODE PRINT, NSET=Nall", ", ".join(node_out), "*NODE FILE", ", ".join(node_out)]
    if el_out:
        out_cards += ["*EL PRINT, ELSET=Eall", ", ".join(el_out), "*EL FILE", ", ".join(el_out)]

    if thermal:
        lines.append("*INITIAL CONDITIONS, TYPE=TEMPERATURE")
        lines += [f"{n + 1}, {_g(v)}" for n, v in enumerate(temps[0])]
    for k in range(1, len(times)):
        dt = float(times[k] - times[k - 1])
        lines.append("*STEP, INC=%d" % max(100, 2 * n_inc) + (", NLGEOM" if nlgeom else ""))
        lines += ["*STATIC, DIRECT", f"{_g(dt / n_inc)}, {_g(dt)}"]
        if nonlinear and field_tolerances is not None:
            r_n, c_n = field_tolerances
            lines += ["*CONTROLS, PARAMETERS=FIELD", f"{_g(r_n)}, {_g(c_n)}"]
        if k == 1:
            lines += step_cards
        if thermal:
            lines.append("*TEMPERATURE")
            lines += [f"{n + 1}, {_g(v)}" for n, v in enumerate(temps[k])]
        lines += out_cards
        lines.append("*END STEP")

    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        write_mesh_inp(f, mesh)
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return ccx_times[1:]


# -- assembled matrices (*FREQUENCY, SOLVER=MATRIXSTORAGE) ----------------------------------------------
#
# Facts (ccx 2.20, checked against our assembly of the same mesh to 1e-14):
#
# * a deck whose last step is ``*FREQUENCY, SOLVER=MATRIXSTORAGE`` writes ``<job>.sti`` (stiffness),
#   ``<job>.mas`` (mass) and ``<job>.dof`` and stops without an eigenvalue solve;
# * ``.sti``/``.mas``: one ``row col value`` line per stored entry, 1-based, upper triangle only
#   (``row <= col``, column after column), explicit zeros of the pattern included;
# * ``.dof``: one ``node.direction`` line per matrix row (``2.3``: node id 2, z); the dofs fixed by
#   ``*BOUNDARY`` (zero or not) are not in the matrices, nor are dofs of nodes without elements;
# * the material is evaluated at the ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` values (a ``*TEMPERATURE``
#   card inside the ``*FREQUENCY`` step does not change the matrices); ccx refuses the step without a
#   ``*DENSITY`` ("no density was assigned").
def _read_triplets(path: Path, n: int) -> "sp.csr_matrix":
    import scipy.sparse as sp

    try:
        text = path.read_text()
    except OSError as exc:
        raise CalculixError(
            f"cannot read {str(path)!r} ({exc}); ccx writes it when the deck's last step is "
            "'*FREQUENCY, SOLVER=MATRIXSTORAGE' (see write_matrix_deck)"
        ) from None
    lines = text.splitlines()
    try:
        vals = np.array(text.split(), dtype=float)
        if vals.size != 3 * len([ln for ln in lines if ln.strip()]):
            raise ValueError
    except ValueError:
        for number, ln in enumerate(lines, start=1):
            parts = ln.split()
            if ln.strip() and (len(parts) != 3 or not all(_is_number(p) for p in parts)):
                raise CalculixError(f"{path}:{number}: expected 'row col value', got {ln[:60]!r}") from None
        raise CalculixError(f"{path}: not a ccx matrix file") from None
    vals = vals.reshape(-1, 3)
    rows, cols = vals[:, 0].astype(np.int64) - 1, vals[:, 1].astype(np.int64) - 1
    bad = np.flatnonzero((rows < 0) | (cols < 0) | (rows >= n) | (cols >= n))
    if bad.size:
        raise CalculixError(
            f"{path}:{bad[0] + 1}: index ({rows[bad[0]] + 1}, {cols[bad[0]] + 1}) outside the {n} dofs of the .dof "
            "file: the files come from different runs or are truncated"
        )
    lower = np.flatnonzero(rows > cols)
    if lower.size:
        raise CalculixError(
            f"{path}:{lower[0] + 1}: entry ({rows[lower[0]] + 1}, {cols[lower[0]] + 1}) below the diagonal: ccx "
            "stores the upper triangle only; this is not a ccx 2.20 MATRIXSTORAGE file"
        )
    upper = sp.coo_matrix((vals[:, 2], (rows, cols)), shape=(n, n)).tocsr()
    upper.sum_duplicates()
    full = (upper + upper.T - sp.diags(upper.diagonal())).tocsr()
    full.sort_indices()
    return full


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_matrix_storage(jobdir: str | os.PathLike, jobname: str):
    """Read the matrices ccx exported with ``*FREQUENCY, SOLVER=MATRIXSTORAGE``.

    Returns ``(K, M, dofs)``: ``K`` and ``M`` full symmetric :class:`scipy.sparse.csr_matrix` (ccx stores
    the upper triangle; ``M`` is None when there is no ``.mas`` file) and ``dofs`` ``(n, 2)`` int64, the
    ccx node id and direction (1, 2, 3 = x, y, z) of each row. Dofs fixed by ``*BOUNDARY`` are absent
    (not rows of the matrices); :func:`matrix_dofs_to_ours` maps the rows onto our numbering ``3 node +
    c`` and :func:`expand_matrix` embeds the matrices into it.
    """
    jobdir = Path(jobdir)
    dof_path = jobdir / f"{jobname}.dof"
    try:
        lines = dof_path.read_text().splitlines()
    except OSError as exc:
        raise CalculixError(
            f"cannot read {str(dof_path)!r} ({exc}); ccx writes it when the deck's last step is "
            "'*FREQUENCY, SOLVER=MATRIXSTORAGE' (see write_matrix_deck)"
        ) from None
    dofs = []
    for number, ln in enumerate(lines, start=1):
        if not ln.strip():
            continue
        node, dot, direction = ln.strip().partition(".")
        if not (dot and node.isdigit() and direction.isdigit() and direction in ("1", "2", "3")):
            raise CalculixError(f"{dof_path}:{number}: expected 'node.direction' (direction 1-3), got {ln[:40]!r}")
        dofs.append((int(node), int(direction)))
    if not dofs:
        raise CalculixError(f"{dof_path}: no dofs: the model has no free degree of freedom, or the run failed")
    dofs = np.array(dofs, dtype=np.int64)
    n = len(dofs)
    K = _read_triplets(jobdir / f"{jobname}.sti", n)
    mas = jobdir / f"{jobname}.mas"
    M = _read_triplets(mas, n) if mas.exists() else None
    return K, M, dofs


def matrix_dofs_to_ours(dofs: np.ndarray, ids: "InpIds | None" = None) -> np.ndarray:
    """Our global dof indices ``3 node + c`` of ccx matrix rows ``dofs`` ``(n, 2)`` (node id, direction).

    ``ids``: the file ids of the mesh (:func:`read_inp`); None means the decks we write (node ``i`` has
    id ``i + 1``).
    """
    dofs = np.asarray(dofs, dtype=np.int64)
    nodes = dofs[:, 0] - 1 if ids is None else ids.node_index(dofs[:, 0])
    return 3 * nodes + dofs[:, 1] - 1


def expand_matrix(A, our_dofs: np.ndarray, n_dofs: int):
    """``A`` (rows/columns = ``our_dofs``) embedded in our numbering: ``(n_dofs, n_dofs)`` CSR, zero rows
    and columns at the dofs ccx removed (fixed by ``*BOUNDARY``)."""
    import scipy.sparse as sp

    coo = sp.coo_matrix(A)
    our_dofs = np.asarray(our_dofs, dtype=np.int64)
    return sp.csr_matrix((coo.data, (our_dofs[coo.row], our_dofs[coo.col])), shape=(n_dofs, n_dofs))


def write_matrix_deck(
    path: str | os.PathLike,
    mesh: Mesh,
    law,
    *,
    fixed: dict[str, tuple[int, ...]] | None = None,
    temperature: np.ndarray | None = None,
    density: float | None = None,
) -> None:
    """A ccx deck that only exports the assembled stiffness and mass matrices (read them with
    :func:`read_matrix_storage`).

    ``law``: :class:`~structrom.rom.materials.LinearElastic` (or the elastic part of a J2 law) on every element,
    written with ``*ELASTIC`` (temperature tables kept); ``fixed``: node set -> components (0, 1, 2) fixed
    with ``*BOUNDARY`` (these dofs are removed from the matrices); ``temperature``: ``(n_nodes,)`` nodal
    temperature written as ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` (the one ccx evaluates ``E(T)``
    at); ``density`` overrides the law's (ccx needs one: 1.0 when the law has none, so ``M`` is then the
    unit-density mass matrix). The only step is ``*FREQUENCY, SOLVER=MATRIXSTORAGE``.
    """
    from ..materials import J2Plasticity, LinearElastic

    elastic = law.elastic if isinstance(law, J2Plasticity) else law
    if not isinstance(elastic, LinearElastic):
        raise CalculixError(f"write_matrix_deck: law {type(law).__name__} is not supported; use LinearElastic")
    rho = float(density if density is not None else (elastic.density if elastic.density > 0 else 1.0))
    lines = ["*MATERIAL, NAME=MAT", "*ELASTIC"] + _table_lines([elastic.young, elastic.poisson])
    lines += ["*DENSITY", _g(rho), "*SOLID SECTION, ELSET=Eall, MATERIAL=MAT"]
    for name, comps in (fixed or {}).items():
        mesh.node_set(name)
        lines.append("*BOUNDARY")
        lines += [f"{name}, {c + 1}, {c + 1}" for c in sorted(set(int(c) for c in comps))]
    if temperature is not None:
        temperature = np.asarray(temperature, dtype=float)
        if temperature.shape != (mesh.n_nodes,) or not np.all(np.isfinite(temperature)):
            raise CalculixError(f"write_matrix_deck: temperature must be ({mesh.n_nodes},) finite values, "
                                f"got shape {temperature.shape}")
        lines.append("*INITIAL CONDITIONS, TYPE=TEMPERATURE")
        lines += [f"{n + 1}, {v}" for n, v in zip(range(mesh.n_nodes), _number_strings(temperature).tolist())]
    lines += ["*STEP", "*FREQUENCY, SOLVER=MATRIXSTORAGE", "*END STEP"]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        write_mesh_inp(f, mesh)
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
