"""Reading operators exported by a black-box code, each rank keeping only its block of rows.

Rows are distributed in contiguous blocks (:func:`row_range`: rank ``r`` of ``P`` owns rows
``[n r / P, n (r + 1) / P)``). Triplet files are parsed in chunks of lines and only the owned rows are kept
(:mod:`structrom.rom.offline.triplet_files`),
so no rank ever holds a whole matrix:

* CalculiX matrix storage (``*FREQUENCY, SOLVER=MATRIXSTORAGE``, see :mod:`structrom.rom.adapters.calculix`):
  ``job.sti`` 1-based ``row col value`` of the upper triangle (expanded symmetrically here), ``job.dof`` one
  ``node.direction`` per row;
* Matrix Market coordinate files (``general``, or ``symmetric``: one triangle, the lower as the format says
  or the upper as some writers do, never both), real, 1-based;
* Ansys ``.full`` files through ansys-mapdl-reader, run in a process of its own
  (:func:`structrom.rom.adapters.reader_process.run_isolated`: it crashes natively on damaged files; the reader
  loads a whole matrix: each rank reads it and keeps its rows, so a rank does hold one whole matrix transiently);
* load vectors: Matrix Market (array or coordinate) or ``.npy``, ``(n,)`` in the matrices' row order.

The files are checked strictly, since a damaged export read silently would give a wrong model: every triplet line
has exactly three numbers, indices are integers within the size, no entry appears twice, values are finite, the
declared number of entries is the number found, a matrix stored in full (``general``) is symmetric, and every row
has a positive diagonal entry (a stiffness restricted to its free dofs is positive definite). Each check runs on
the rows a rank owns (with, for ``general`` storage, the transposed entries of its columns): the callers gather
the errors collectively.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from structrom.rom.adapters.magnitudes import ABSURD, beyond
from structrom.rom.offline.triplet_files import (_INTEGER, ExportError, _chunks, _finite, _indices,  # noqa: F401
                                                 _parse_chunk, _read_triplet_rows, _show, check_diagonal,
                                                 first_repeat, reading)

#: Header lines longer than this are not Matrix Market.
_HEADER_LINE = 1 << 16


def row_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` rows owned by ``rank`` of ``size``."""
    return n * rank // size, n * (rank + 1) // size


# --------------------------------------------------------------------------------------------------- dof files
def read_dofs(path: str | Path) -> np.ndarray:
    """``(n, 2)`` int64 (node id >= 1, direction 1-3) of a CalculiX ``.dof`` file (ASCII, one ``node.direction``
    per row, each dof once)."""
    path = Path(path)
    redo = "; ccx writes it with '*FREQUENCY, SOLVER=MATRIXSTORAGE'"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read {str(path)!r} ({exc.strerror or exc}){redo}") from None
    raw = np.frombuffer(data, dtype=np.uint8)
    foreign = np.flatnonzero((raw > 0x7e) | ((raw < 0x20) & ~np.isin(raw, list(b"\t\r\n"))))
    if foreign.size:
        at = int(foreign[0])
        line = data.count(b"\n", 0, at) + 1
        raise ExportError(f"{path}:{line}: byte 0x{raw[at]:02x} is not ASCII text: the file "
                          f"is damaged or not a ccx .dof file (another encoding?){redo}")
    tokens = data.split()
    if not tokens:
        raise ExportError(f"{path}: no dofs (the model has no free degree of freedom, or the run failed)")
    parts = np.char.partition(np.array(tokens), b".")
    digits = np.char.str_len(parts[:, 0])
    ok = ((parts[:, 1] == b".") & np.char.isdigit(parts[:, 0]) & (digits >= 1) & (digits <= 18)
          & np.isin(parts[:, 2], [b"1", b"2", b"3"]))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ExportError(f"{path}: entry {i + 1}: expected 'node.direction' (node number of at most 18 digits, "
                          f"direction 1-3), got {_show(tokens[i], 40)}: the file is damaged{redo}")
    dofs = np.column_stack([parts[:, 0].astype(np.int64), parts[:, 2].astype(np.int64)])
    zero = np.flatnonzero(dofs[:, 0] == 0)
    if zero.size:
        raise ExportError(f"{path}: entry {zero[0] + 1}: node 0 ({_show(tokens[zero[0]], 40)}) does not exist: the "
                          f"file is damaged{redo}")
    repeat = first_repeat(dofs[:, 0] * 4 + dofs[:, 1], np.arange(len(dofs)))
    if repeat is not None:
        i, first = repeat
        raise ExportError(f"{path}: entry {i + 1} ({_show(tokens[i], 40)}) repeats entry {first + 1}: each dof "
                          f"appears once; the file is damaged or two files were joined{redo}")
    return dofs


# --------------------------------------------------------------------------------------------------- Ansys .full
#: What a ``.full`` file is, for messages.
_FULL = "an Ansys .full file (the assembled matrices of a solve, kept with WRFULL or in the run's directory)"


def _stiffness_file(path: str):
    """In the reader's process: ansys-mapdl-reader's ``FullFile`` of ``path`` set to read the stiffness only (the
    reader refuses a whole file with a lumped mass, ``LUMPM,ON``, whose stiffness is the one we need)."""
    from ansys.mapdl.reader.full import FullFile

    class StiffnessOnly(FullFile):
        def __init__(self, filename):
            try:
                super().__init__(filename)
            except NotImplementedError:  # (lumped mass or unsymmetric: told apart by the caller from the header)
                if getattr(self, "_header", None) is None:
                    raise
            self._header["ntermMl"] = self._header["ntermMh"] = 0  # the mass is not read

    return StiffnessOnly(path)


def _load_full(path: str):
    """In the reader's process: ``((dof_ref (n, 2), rows, cols, values, shape, const (n_c, 2)), None)`` of the
    stiffness of an
    Ansys ``.full`` file, ``(None, (True, message))`` for a file refused by its header (empty, foreign, truncated,
    unsymmetric, without stiffness) or ``(None, (False, the reader's error))``."""
    import warnings

    try:
        from ansys.mapdl.reader.common import two_ints_to_long
        from structrom.rom.adapters.ansys import AnsysError, check_binary_kind

        try:
            check_binary_kind(path, 4, _FULL)
        except AnsysError as exc:
            return None, (True, str(exc))
        full = _stiffness_file(path)
        h = full._header
        end, size = 4 * two_ints_to_long(h["ptrENDl"], h["ptrENDh"]), os.path.getsize(path)
        if end > size:
            return None, (True, f"{path}: the file has {size} bytes, its header declares {end}: it is truncated (an "
                                "unfinished copy or run); copy it again")
        if h["keyuns"]:
            return None, (True, f"{path}: the stiffness is stored unsymmetric (header key keyuns; NROPT,UNSYM, "
                                "unsymmetric contact or elements): the separated model needs a symmetric stiffness; "
                                "solve with symmetric matrices and write the .full again")
        if two_ints_to_long(h["ntermKl"], h["ntermKh"]) == 0:
            return None, (True, f"{path}: the file holds no stiffness matrix (0 stiffness terms in its header): "
                                "write the .full of a solve that assembles the stiffness")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ("Missing mass matrix": not read on purpose)
            dof_ref, k, _ = full.load_km(sort=True, as_sparse=True)
        k = sp.coo_matrix(k)
        const = np.asarray(full.const, dtype=np.int64).reshape(-1, 2)  # (node, dof 0-2) of the constrained dofs
        return (np.asarray(dof_ref, dtype=np.int64), k.row.astype(np.int64), k.col.astype(np.int64),
                np.asarray(k.data, dtype=float), tuple(int(s) for s in k.shape), const), None
    except Exception as exc:  # the reader raises assorted errors on foreign or truncated files
        return None, (False, f"{type(exc).__name__}: {str(exc)[:200]}")


def _ansys_full(path: Path) -> tuple[np.ndarray, sp.coo_matrix, np.ndarray]:
    """``(dof_ref (n, 2), stiffness (n, n) coo, constrained (n,) bool)`` of an Ansys ``.full`` file, read in a process
    of its own: all the dofs of the file's numbering (node, dof 0-2, sorted by node) and which of them the solve
    constrained (kept by Ansys as empty rows and columns)."""
    try:
        found = importlib.util.find_spec("ansys.mapdl.reader") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ExportError(f"{path}: reading Ansys .full files needs ansys-mapdl-reader (pip install "
                          "ansys-mapdl-reader)")
    if not path.is_file():
        raise ExportError(f"cannot read the Ansys .full file {str(path)!r} (not a file): check the path in the "
                          "configuration")
    from structrom.rom.adapters.reader_process import run_isolated

    def crashed() -> ExportError:
        return ExportError(f"ansys-mapdl-reader stopped abnormally (a native crash) reading {str(path)!r}: the file "
                           "is damaged, truncated or not an Ansys .full file; write it again")

    try:
        data, error = run_isolated(_load_full, str(path), crashed=crashed)
    except ExportError:
        raise
    except Exception as exc:  # the reader's process could not run
        raise ExportError(f"cannot read the Ansys .full file {str(path)!r} ({type(exc).__name__}: {exc})") from None
    if error is not None:
        known, text = error
        if known:
            raise ExportError(text)
        raise ExportError(f"cannot read the Ansys .full file {str(path)!r} ({text}): the file is damaged or not an "
                          "Ansys .full file")
    dof_ref, i, j, v, shape, const = data
    n = shape[0]
    if shape != (n, n) or dof_ref.shape != (n, 2):
        raise ExportError(f"{path}: inconsistent .full file (stiffness {shape}, {dof_ref.shape[0]} dofs): the file "
                          "is damaged")
    bad = np.flatnonzero(beyond(v))  # (NaN, inf, and finite magnitudes no stiffness has)
    if bad.size:
        k = int(bad[0])
        raise ExportError(f"{path}: stiffness entry ({i[k] + 1}, {j[k] + 1}) (node {dof_ref[i[k], 0]} dof "
                          f"{dof_ref[i[k], 1] + 1}, node {dof_ref[j[k], 0]} dof {dof_ref[j[k], 1] + 1}) is {v[k]:.6g}"
                          f"{'' if np.isnan(v[k]) or np.isinf(v[k]) else f' (above {ABSURD:g} in magnitude)'}: the "
                          "solution diverged or the file is damaged")
    constrained = np.zeros(n, dtype=bool)
    if len(const):  # (node, dof) pairs -> rows of dof_ref
        key = dof_ref[:, 0] * 3 + dof_ref[:, 1]
        order = np.argsort(key)
        pos = np.clip(np.searchsorted(key[order], const[:, 0] * 3 + const[:, 1]), 0, max(n - 1, 0))
        found = key[order][pos] == const[:, 0] * 3 + const[:, 1]
        constrained[order[pos[found]]] = True
    touching = np.flatnonzero((constrained[i] | constrained[j]) & (v != 0.0))
    if touching.size:
        k = int(touching[0])
        raise ExportError(f"{path}: stiffness entry ({i[k] + 1}, {j[k] + 1}) (node {dof_ref[i[k], 0]} dof "
                          f"{dof_ref[i[k], 1] + 1}, node {dof_ref[j[k], 0]} dof {dof_ref[j[k], 1] + 1}) couples a dof "
                          "the file lists as constrained: Ansys keeps constrained dofs as empty rows; the file is "
                          "damaged")
    return dof_ref, sp.coo_matrix((v, (i, j)), shape=shape), constrained


def _ansys_dofs(path: Path, dof_ref: np.ndarray) -> np.ndarray:
    if dof_ref.size and (dof_ref[:, 1].min() < 0 or dof_ref[:, 1].max() > 2):
        raise ExportError(f"{path}: only UX, UY, UZ dofs are supported (found dof indices "
                          f"{sorted(set(dof_ref[:, 1].tolist()))})")
    return np.column_stack([dof_ref[:, 0], dof_ref[:, 1] + 1])


def ansys_full_dofs(path: str | Path) -> np.ndarray:
    """``(n, 2)`` (node number, direction 1-3) of the free dofs of an Ansys ``.full`` file, the rows of the separated
    model (ansys-mapdl-reader's ``dof_ref``, sorted by node, without the dofs the file lists as constrained: Ansys
    keeps them as empty rows and columns; their displacement is zero, as the solve that wrote the file imposed)."""
    path = Path(path)
    dof_ref, _, constrained = _ansys_full(path)
    return _ansys_dofs(path, dof_ref[~constrained])


def ansys_full_free_rows(path: str | Path) -> tuple[np.ndarray, int]:
    """``(free (n,) rows of the file's numbering, n_file)``: where the free dofs of :func:`ansys_full_dofs` sit among
    all ``n_file`` dofs of the ``.full`` file (the order of a load vector exported with every dof)."""
    dof_ref, _, constrained = _ansys_full(Path(path))
    return np.flatnonzero(~constrained), len(dof_ref)


def read_ansys_load_vector(path: str | Path, free: np.ndarray, n_file: int) -> np.ndarray:
    """A load vector ``(len(free),)`` on the free dofs of an Ansys ``.full`` numbering (:func:`ansys_full_free_rows`):
    the file holds either every dof of the ``.full`` (``n_file`` values, those at constrained dofs, reactions, not
    used) or the free dofs only."""
    try:
        return read_vector(path, n_file)[free]
    except ExportError as every_dof:
        if len(free) == n_file:
            raise
        try:
            return read_vector(path, len(free))
        except ExportError:
            raise every_dof from None


def read_ansys_full_rows(path: str | Path, n: int, lo: int, hi: int, dofs: np.ndarray | None = None
                         ) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` ``(hi - lo, n)`` of the stiffness on the free dofs of an Ansys ``.full`` file
    (ansys-mapdl-reader loads the whole upper triangle; this rank keeps its rows and the mirrored entries). Rows
    sorted by node as in :func:`ansys_full_dofs`; ``dofs`` ``(n, 2)`` (those of the first export): the file's must be
    the same (the same mesh and constraints)."""
    path = Path(path)
    dof_ref, k, constrained = _ansys_full(path)
    if dofs is not None and not np.array_equal(_ansys_dofs(path, dof_ref[~constrained]), dofs):
        raise ExportError(f"{path}: the dofs differ from those of the first training export: every export must "
                          "come from the same mesh and constraints")
    n_free = int(np.count_nonzero(~constrained))
    if n_free != n:
        raise ExportError(f"{path}: the stiffness has {n_free} free dofs, expected {n} (the exports must share one "
                          "dof numbering and the same constraints)")
    free_index = np.cumsum(~constrained) - 1  # (file row -> free row)
    keep = ~(constrained[k.row] | constrained[k.col])  # (their entries are zero: checked when read)
    i, j, v = free_index[k.row[keep]], free_index[k.col[keep]], k.data[keep].astype(float)
    if np.any(i > j):
        i, j = np.minimum(i, j), np.maximum(i, j)  # the reader's triangle: make it the upper one
    r = np.concatenate([i, j[i != j]])
    c = np.concatenate([j, i[i != j]])
    vals = np.concatenate([v, v[i != j]])
    own = (r >= lo) & (r < hi)
    A = sp.csr_matrix((vals[own], (r[own] - lo, c[own])), shape=(hi - lo, n))
    A.sum_duplicates()
    A.sort_indices()
    return A


def check_ansys_free_dofs(path: str | Path, A: sp.csr_matrix, lo: int, dofs: np.ndarray) -> None:
    """Every owned row of an Ansys stiffness on the free dofs ``A`` ``(hi - lo, n)`` (rows from ``lo``; ``dofs``
    ``(n, 2)`` node and direction 1-3, :func:`ansys_full_dofs`) has a positive diagonal entry (:class:`ExportError`
    naming the node): an empty row the file does not list as constrained is a dof without stiffness."""
    check_diagonal(path, A, lo, dofs=dofs, cause="a dof without stiffness that the file does not list as constrained "
                   "(a node of no element, or a rigid-body motion left free), or a damaged file; constrain it in the "
                   "model and write the .full again")


# ------------------------------------------------------------------------------------------------------- CalculiX
def read_calculix_rows(job: str | Path, n: int, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` ``(hi - lo, n)`` of the symmetric stiffness in ``<job>.sti``."""
    path = Path(str(job) + ".sti")
    with reading(path, "stiffness", "; ccx writes it with '*FREQUENCY, SOLVER=MATRIXSTORAGE'") as f:
        return _read_triplet_rows(path, f, n, lo, hi, "upper", 1, rows_of=f"{Path(str(job)).name}.dof")


# -------------------------------------------------------------------------------------------------- Matrix Market
#: Fixes named for the Matrix Market fields and symmetries the separated model cannot take.
_FIELD_FIX = {"pattern": "a pattern file has no values (only where the entries are): export the matrix with its "
                         "values (field 'real')",
              "complex": "the separated model takes a real stiffness: export it with field 'real'"}
_SYMMETRY_FIX = "a stiffness is symmetric: export it as 'symmetric' (one triangle) or 'general' (every entry)"


def _not_matrix_market(path: Path, f, first: bytes) -> ExportError:
    """The error for a file whose first line ``first`` is not a Matrix Market header: names a gzip, UTF-16/32 or
    Harwell-Boeing file and its fix (``f``: the file, after its first line)."""
    expected = "'%%MatrixMarket matrix coordinate real <general|symmetric>'"
    if os.fstat(f.fileno()).st_size == 0:
        return ExportError(f"{path}: the file is empty (0 bytes): the export or the copy did not finish; export it "
                           "again")
    if first.startswith(b"\x1f\x8b"):
        return ExportError(f"{path}: the file is gzip-compressed: decompress it (gunzip) and give the plain Matrix "
                           "Market file")
    if b"\x00" in first or first.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ExportError(f"{path}: the file is in UTF-16 or UTF-32 (NUL bytes in its first line): save it as ASCII "
                           "or UTF-8 text (e.g. iconv -f UTF-16 -t UTF-8)")
    lines = [f.readline(_HEADER_LINE) for _ in range(2)]
    words = lines[1].split()
    if words and len(words[0]) == 3 and words[0][:1].upper() in b"RCP" and words[0][1:2].upper() in b"SUHZR" \
            and words[0][2:].upper() in b"AE" and all(w.isdigit() for w in words[1:]):
        return ExportError(f"{path}: a Harwell-Boeing file (matrix type {words[0].decode()} on line 3), not Matrix "
                           "Market: export the matrix in Matrix Market (Ansys: *EXPORT with format MMF), or give an "
                           "Ansys .full file itself with format = 'ansys_full'")
    return ExportError(f"{path}:1: not a Matrix Market file (expected {expected}, got {_show(first)})")


def _mm_header(path: Path, f) -> tuple[str, str, str, tuple[int, ...], int]:
    """``(layout, field, symmetry, size line numbers, number of the first data line)`` of a Matrix Market file open
    in binary mode at its start (a UTF-8 byte order mark before the header is skipped)."""
    first = f.readline(_HEADER_LINE)
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    words = first.split()
    if len(words) != 5 or words[0].lower() != b"%%matrixmarket" or words[1].lower() != b"matrix":
        raise _not_matrix_market(path, f, first)
    layout, field, symmetry = (w.decode("ascii", "replace").lower() for w in words[2:])
    if field not in ("real", "integer", "double"):
        raise ExportError(f"{path}:1: field {field!r} is not supported (real or integer): "
                          f"{_FIELD_FIX.get(field, 'export the matrix with field real')}")
    line = 1
    while True:
        ln = f.readline(_HEADER_LINE)
        line += 1
        if not ln:
            raise ExportError(f"{path}: no size line after the header (the file is truncated)")
        if ln.strip() and not ln.lstrip().startswith(b"%"):
            break
    words = ln.split()
    if not all(_INTEGER.fullmatch(w) for w in words):
        raise ExportError(f"{path}:{line}: expected the size line (integers), got {_show(ln)}")
    return layout, field, symmetry, tuple(int(w) for w in words), line + 1


def _matrix_header(path: Path, f) -> tuple[str, int, int, int, bool]:
    """``(symmetry, n, nnz, first data line, integer field)`` of a square coordinate matrix, its declared size
    checked against the file's size."""
    layout, field, symmetry, size, line = _mm_header(path, f)
    if layout != "coordinate":
        raise ExportError(f"{path}:1: layout {layout!r}: the matrices must be sparse ('coordinate')")
    if symmetry not in ("general", "symmetric"):
        raise ExportError(f"{path}:1: symmetry {symmetry!r} is not supported (general, symmetric): {_SYMMETRY_FIX}")
    if len(size) != 3:
        raise ExportError(f"{path}:{line - 1}: the size line of a coordinate matrix is 'rows columns entries' (3 "
                          f"numbers), got {len(size)}")
    rows, cols, nnz = size
    if rows != cols or rows <= 0 or nnz <= 0:
        raise ExportError(f"{path}:{line - 1}: size {rows} x {cols} with {nnz} entries: expected a square matrix "
                          "with positive sizes")
    file_size = os.fstat(f.fileno()).st_size
    if nnz > file_size // 6:
        raise ExportError(f"{path}:{line - 1}: {nnz} entries cannot fit in a file of {file_size} bytes (each takes at "
                          "least 6): the file is truncated or its size line damaged")
    if rows > nnz:
        raise ExportError(f"{path}:{line - 1}: {rows} rows but only {nnz} entries: a stiffness stores every diagonal "
                          "entry; the size line is damaged")
    return symmetry, rows, nnz, line, field == "integer"


def matrix_market_size(path: str | Path) -> int:
    """Number of rows of a square Matrix Market matrix."""
    path = Path(path)
    with reading(path, "matrix") as f:
        return _matrix_header(path, f)[1]


def read_matrix_market_rows(path: str | Path, n: int, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` ``(hi - lo, n)`` of a square real coordinate Matrix Market matrix (general or
    symmetric)."""
    path = Path(path)
    with reading(path, "matrix") as f:
        symmetry, size, nnz, line, integral = _matrix_header(path, f)
        if size != n:
            raise ExportError(f"{path}: the matrix is {size} x {size}, the first training matrix {n} x {n} (the "
                              "exports must share one dof numbering)")
        return _read_triplet_rows(path, f, n, lo, hi, "general" if symmetry == "general" else "either", line, nnz,
                                  integral=integral)


# ---------------------------------------------------------------------------------------------------- load vectors
def _read_numbers(path: Path, f, first_line: int, width: int, what: str, limit: int,
                  bounds: tuple[int, int] | None = None, integral: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """All the numbers ``(k, width)`` after the header and their lines ``(k,)``, the last column finite (and
    integral with ``integral``) and, with ``bounds``, the first two integers in ``1..bounds``; more than ``limit``
    lines is an error."""
    vals, lines = [np.zeros((0, width))], [np.zeros(0, dtype=np.int64)]
    count = 0
    for buf, line in _chunks(path, f, first_line):
        t, at = _parse_chunk(buf, path, line, width, what)
        _finite(t[:, -1], at, buf, line, path, width - 1, integral)
        if bounds is not None:
            _indices(t, (0, 1), bounds, at, buf, line, path)
        vals.append(t), lines.append(at)
        count += len(t)
        if count > limit:
            raise ExportError(f"{path}:{at[-1]}: more values than the {limit} the size line declares: the file is "
                              "damaged")
    return np.concatenate(vals), np.concatenate(lines)


def _vector_shape(path: Path, line: int, rows: int, cols: int, n: int) -> None:
    if (rows, cols) not in ((n, 1), (1, n)):
        raise ExportError(f"{path}:{line}: the load vector is {rows} x {cols}, expected {n} x 1 (the matrices have "
                          f"{n} rows)")


def _read_mm_vector(path: Path, n: int) -> np.ndarray:
    with reading(path, "load vector") as f:
        layout, field, symmetry, size, line = _mm_header(path, f)
        if symmetry != "general":
            raise ExportError(f"{path}:1: symmetry {symmetry!r}: a load vector is 'general'")
        if layout == "array":
            if len(size) != 2:
                raise ExportError(f"{path}:{line - 1}: the size line of an array is 'rows columns' (2 numbers), got "
                                  f"{len(size)}")
            _vector_shape(path, line - 1, *size, n)
            t, _ = _read_numbers(path, f, line, 1, "one value per line", n, integral=field == "integer")
            if len(t) != n:
                raise ExportError(f"{path}: {len(t)} values, the size line declares {n}: the file is truncated")
            return t[:, 0]
        if layout != "coordinate":
            raise ExportError(f"{path}:1: layout {layout!r}: expected 'array' or 'coordinate'")
        if len(size) != 3:
            raise ExportError(f"{path}:{line - 1}: the size line of a coordinate vector is 'rows columns entries' (3 "
                              f"numbers), got {len(size)}")
        rows, cols, nnz = size
        _vector_shape(path, line - 1, rows, cols, n)
        if not 0 <= nnz <= n:
            raise ExportError(f"{path}:{line - 1}: {nnz} entries for {n} values: the size line is damaged")
        t, at = _read_numbers(path, f, line, 3, "'row col value'", nnz, (rows, cols), field == "integer")
    if len(t) != nnz:
        raise ExportError(f"{path}: the size line declares {nnz} entries, the file has {len(t)}: it is truncated")
    if not len(t):
        return np.zeros(n)
    p = (t[:, 0].astype(np.int64) - 1) * cols + t[:, 1].astype(np.int64) - 1
    repeat = first_repeat(p, at)
    if repeat is not None:
        k, first = repeat
        raise ExportError(f"{path}:{at[k]}: repeats the entry of line {at[first]} (index {p[k] + 1}): each entry "
                          "appears once; the file is damaged")
    v = np.zeros(n)
    v[p] = t[:, 2]
    return v


def _read_npy(path: Path, n: int) -> np.ndarray:
    hint = f"write it with numpy.save of a float array of shape ({n},)"
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(a, np.ndarray):
            getattr(a, "close", lambda: None)()
            raise ExportError(f"{path}: not a single array (an .npz archive?): {hint}")
        if a.dtype.kind not in "fiu":
            raise ExportError(f"{path}: dtype {a.dtype} is not a real number type: {hint}")
        if a.shape not in ((n,), (n, 1), (1, n)):
            raise ExportError(f"{path}: load vector of shape {a.shape}, the matrices have {n} rows: {hint}")
        v = np.array(a, dtype=float).reshape(-1)
        del a
        return v
    except ExportError:
        raise
    except Exception as exc:  # numpy raises assorted errors on damaged headers (SyntaxError, TokenError, ...)
        raise ExportError(f"cannot read the load vector {str(path)!r} ({type(exc).__name__}: {str(exc)[:200]}): "
                          f"{hint}") from None


def read_vector(path: str | Path, n: int) -> np.ndarray:
    """A load vector ``(n,)`` from ``.npy`` (shape ``(n,)``, ``(n, 1)`` or ``(1, n)``, real dtype) or Matrix Market
    (array: one value per line; coordinate: ``row col value``; ``n x 1`` or ``1 x n``, general, real)."""
    path = Path(path)
    try:
        v = _read_npy(path, n) if path.suffix == ".npy" else _read_mm_vector(path, n)
    except OSError as exc:
        raise ExportError(f"cannot read the load vector {str(path)!r} ({exc.strerror or exc})") from None
    bad = np.flatnonzero(beyond(v))
    if bad.size:
        raise ExportError(f"{path}: value {bad[0] + 1} of the load vector is {v[bad[0]]:.6g} (not finite, or above "
                          f"{ABSURD:g} in magnitude): the file is damaged or the export diverged")
    return v
