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
* Ansys ``.full`` files: :mod:`structrom.rom.offline.ansys_full` (through ansys-mapdl-reader, which loads a whole
  matrix: each rank reads it and keeps its rows, so a rank does hold one whole matrix transiently);
* load vectors: Matrix Market (array or coordinate) or ``.npy``, ``(n,)`` in the matrices' row order.

The files are checked strictly, since a damaged export read silently would give a wrong model: every triplet line
has exactly three numbers, indices are integers within the size, no entry appears twice, values are finite, the
declared number of entries is the number found, a matrix stored in full (``general``) is symmetric, and every row
has a positive diagonal entry (a stiffness restricted to its free dofs is positive definite). Each check runs on
the rows a rank owns (with, for ``general`` storage, the transposed entries of its columns): the callers gather
the errors collectively.
"""
from __future__ import annotations

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
