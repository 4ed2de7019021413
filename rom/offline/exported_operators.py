"""Reading operators exported by a black-box code, each rank keeping only its block of rows.

Rows are distributed in contiguous blocks (:func:`row_range`: rank ``r`` of ``P`` owns rows
``[n r / P, n (r + 1) / P)``). Triplet files are parsed in chunks of lines and only the owned rows are kept,
so no rank ever holds a whole matrix:

* CalculiX matrix storage (``*FREQUENCY, SOLVER=MATRIXSTORAGE``, see :mod:`structrom.rom.adapters.calculix`):
  ``job.sti`` 1-based ``row col value`` of the upper triangle (expanded symmetrically here), ``job.dof`` one
  ``node.direction`` per row;
* Matrix Market coordinate files (``general`` or ``symmetric``, real), 1-based;
* Ansys ``.full`` files through ansys-mapdl-reader (the reader loads a whole matrix: each rank reads it and
  keeps its rows, so a rank does hold one whole matrix transiently);
* load vectors: Matrix Market (array or coordinate) or ``.npy``, ``(n,)`` in the matrices' row order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from structrom.mpi.errors import StructromError

CHUNK_BYTES = 1 << 24


class ExportError(StructromError, ValueError):
    """An exported operator file is missing, malformed or inconsistent; the message names file and line."""


def row_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` rows owned by ``rank`` of ``size``."""
    return n * rank // size, n * (rank + 1) // size


def read_dofs(path: str | Path) -> np.ndarray:
    """``(n, 2)`` int64 (node id, direction 1-3) of a CalculiX ``.dof`` file."""
    path = Path(path)
    try:
        tokens = path.read_text().split()
    except OSError as exc:
        raise ExportError(f"cannot read {str(path)!r} ({exc}); ccx writes it with '*FREQUENCY, "
                          "SOLVER=MATRIXSTORAGE'") from None
    if not tokens:
        raise ExportError(f"{path}: no dofs (the model has no free degree of freedom, or the run failed)")
    parts = np.char.partition(np.array(tokens), ".")
    ok = (parts[:, 1] == ".") & np.char.isdigit(parts[:, 0]) & np.isin(parts[:, 2], ["1", "2", "3"])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ExportError(f"{path}: entry {i + 1}: expected 'node.direction' (direction 1-3), got {tokens[i][:40]!r}")
    return np.column_stack([parts[:, 0].astype(np.int64), parts[:, 2].astype(np.int64)])


def _parse_chunk(lines: list[bytes], path: Path, first_line: int) -> np.ndarray:
    text = b" ".join(lines)
    vals = np.fromstring(text, dtype=float, sep=" ") if text.strip() else np.zeros(0)
    if vals.size != 3 * len(lines):  # blank lines, or a parse error (fromstring stops at the first bad token)
        lines = [ln for ln in lines if ln.strip()]
        text = b" ".join(lines)
        vals = np.fromstring(text, dtype=float, sep=" ") if lines else np.zeros(0)
    if vals.size != 3 * len(lines):
        for k, ln in enumerate(lines):
            parts = ln.split()
            if parts and len(parts) != 3:
                raise ExportError(f"{path}:{first_line + k}: expected 'row col value', got {ln[:60]!r}")
            try:
                [float(p) for p in parts]
            except ValueError:
                raise ExportError(f"{path}:{first_line + k}: expected 'row col value', got {ln[:60]!r}") from None
        raise ExportError(f"{path}: unreadable triplets near line {first_line}")
    return vals.reshape(-1, 3)


def _read_triplet_rows(path: Path, f, n: int, lo: int, hi: int, storage: str, first_line: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` of a 1-based triplet file; ``storage``: ``upper`` (ccx), ``lower`` (MM symmetric)
    or ``general``. Symmetric storage is expanded."""
    rows, cols, vals = [], [], []
    line = first_line
    while True:
        lines = f.readlines(CHUNK_BYTES)
        if not lines:
            break
        t = _parse_chunk(lines, path, line)
        i = t[:, 0].astype(np.int64) - 1
        j = t[:, 1].astype(np.int64) - 1
        v = t[:, 2]
        bad = np.flatnonzero((i < 0) | (j < 0) | (i >= n) | (j >= n))
        if bad.size:
            raise ExportError(f"{path}: entry ({i[bad[0]] + 1}, {j[bad[0]] + 1}) near line {line} is outside the "
                              f"{n} rows: the files come from different runs or are truncated")
        wrong = np.flatnonzero(i > j) if storage == "upper" else np.flatnonzero(i < j) if storage == "lower" else []
        if len(wrong):
            raise ExportError(f"{path}: entry ({i[wrong[0]] + 1}, {j[wrong[0]] + 1}) near line {line} is in the "
                              f"wrong triangle for {storage} triangular storage")
        if not np.all(np.isfinite(v)):
            raise ExportError(f"{path}: non-finite value near line {line}")
        _keep_owned(i, j, v, lo, hi, storage != "general", rows, cols, vals)
        line += len(lines)
    return _owned_csr(rows, cols, vals, n, lo, hi)


def _keep_owned(i, j, v, lo: int, hi: int, symmetric: bool, rows: list, cols: list, vals: list) -> None:
    """Append the entries of rows ``[lo, hi)`` (and, for triangular storage, the mirrored ones)."""
    own = (i >= lo) & (i < hi)
    rows.append(i[own]), cols.append(j[own]), vals.append(v[own])
    if symmetric:
        mirror = (j >= lo) & (j < hi) & (i != j)
        rows.append(j[mirror]), cols.append(i[mirror]), vals.append(v[mirror])


def _owned_csr(rows: list, cols: list, vals: list, n: int, lo: int, hi: int) -> sp.csr_matrix:
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    A = sp.csr_matrix((np.concatenate(vals) if vals else np.zeros(0), (r - lo, np.concatenate(cols) if cols else r)),
                      shape=(hi - lo, n))
    A.sum_duplicates()
    A.sort_indices()
    return A


def _ansys_full(path: Path):
    try:
        from ansys.mapdl.reader import read_binary
    except ImportError:
        raise ExportError(f"{path}: reading Ansys .full files needs ansys-mapdl-reader (pip install "
                          "ansys-mapdl-reader)") from None
    try:
        dof_ref, k, _ = read_binary(str(path)).load_km(sort=True, as_sparse=True)
    except Exception as exc:  # the reader raises assorted errors on foreign or truncated files
        raise ExportError(f"cannot read the Ansys .full file {str(path)!r} ({type(exc).__name__}: {exc})") from None
    return np.asarray(dof_ref, dtype=np.int64), sp.coo_matrix(k)


def ansys_full_dofs(path: str | Path) -> np.ndarray:
    """``(n, 2)`` (node number, direction 1-3) of the rows of an Ansys ``.full`` file (ansys-mapdl-reader's
    ``dof_ref``, sorted by node)."""
    dof_ref, _ = _ansys_full(Path(path))
    if dof_ref.size and (dof_ref[:, 1].min() < 0 or dof_ref[:, 1].max() > 2):
        raise ExportError(f"{path}: only UX, UY, UZ dofs are supported (found dof indices "
                          f"{sorted(set(dof_ref[:, 1].tolist()))})")
    return np.column_stack([dof_ref[:, 0], dof_ref[:, 1] + 1])


def read_ansys_full_rows(path: str | Path, n: int, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` of the stiffness in an Ansys ``.full`` file (ansys-mapdl-reader loads the whole upper
    triangle; this rank keeps its rows and the mirrored entries). Rows sorted by node as in
    :func:`ansys_full_dofs`."""
    path = Path(path)
    _, k = _ansys_full(path)
    if k.shape != (n, n):
        raise ExportError(f"{path}: stiffness is {k.shape[0]} x {k.shape[1]}, expected {n} x {n} (the exports "
                          "must share one dof numbering)")
    i, j, v = k.row.astype(np.int64), k.col.astype(np.int64), k.data.astype(float)
    if np.any(i > j):
        i, j = np.minimum(i, j), np.maximum(i, j)  # the reader's triangle: make it the upper one
    rows, cols, vals = [], [], []
    _keep_owned(i, j, v, lo, hi, True, rows, cols, vals)
    return _owned_csr(rows, cols, vals, n, lo, hi)


def read_calculix_rows(job: str | Path, n: int, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` ``(hi - lo, n)`` of the symmetric stiffness in ``<job>.sti``."""
    path = Path(str(job) + ".sti")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ExportError(f"cannot read {str(path)!r} ({exc})") from None
    with f:
        return _read_triplet_rows(path, f, n, lo, hi, "upper", 1)


def _mm_header(path: Path, f) -> tuple[str, str, tuple[int, ...], int]:
    first = f.readline().decode(errors="replace").split()
    if len(first) < 5 or first[0].lower() != "%%matrixmarket":
        raise ExportError(f"{path}:1: not a Matrix Market file (expected '%%MatrixMarket matrix ...')")
    layout, field, symmetry = first[2].lower(), first[3].lower(), first[4].lower()
    if field not in ("real", "integer", "double"):
        raise ExportError(f"{path}:1: field {field!r} is not supported (real)")
    line = 1
    while True:
        pos = f.tell()
        ln = f.readline()
        line += 1
        if not ln:
            raise ExportError(f"{path}: no size line")
        if ln.strip() and not ln.lstrip().startswith(b"%"):
            break
    try:
        size = tuple(int(x) for x in ln.split())
    except ValueError:
        raise ExportError(f"{path}:{line}: expected the size line, got {ln[:60]!r}") from None
    del pos
    return layout, symmetry, size, line + 1


def matrix_market_size(path: str | Path) -> int:
    """Number of rows of a square Matrix Market matrix."""
    path = Path(path)
    with open(path, "rb") as f:
        layout, _, size, _ = _mm_header(path, f)
    if layout != "coordinate" or len(size) != 3 or size[0] != size[1]:
        raise ExportError(f"{path}: expected a square coordinate matrix, got {layout} of size {size[:2]}")
    return size[0]


def read_matrix_market_rows(path: str | Path, n: int, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` of a square real coordinate Matrix Market matrix (general or symmetric)."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ExportError(f"cannot read {str(path)!r} ({exc})") from None
    with f:
        layout, symmetry, size, line = _mm_header(path, f)
        if layout != "coordinate" or size[:2] != (n, n):
            raise ExportError(f"{path}: expected a {n} x {n} coordinate matrix, got {layout} of size {size[:2]}")
        if symmetry not in ("general", "symmetric"):
            raise ExportError(f"{path}: symmetry {symmetry!r} is not supported (general, symmetric)")
        return _read_triplet_rows(path, f, n, lo, hi, "general" if symmetry == "general" else "lower", line)


def read_vector(path: str | Path, n: int) -> np.ndarray:
    """A load vector ``(n,)`` from ``.npy`` or Matrix Market (array or coordinate)."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            v = np.load(path)
        else:
            import scipy.io

            v = scipy.io.mmread(str(path))
            v = v.toarray() if sp.issparse(v) else np.asarray(v)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read the load vector {str(path)!r} ({exc})") from None
    v = np.asarray(v, dtype=float).reshape(-1)
    if v.shape != (n,):
        raise ExportError(f"{path}: load vector has {v.size} values, the matrices have {n} rows")
    if not np.all(np.isfinite(v)):
        raise ExportError(f"{path}: load vector contains non-finite values")
    return v
