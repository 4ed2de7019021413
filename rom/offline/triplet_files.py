"""Triplet files of exported operators (``row col value`` per line, 1-based), read in chunks of whole lines with
only the owned rows kept, and strictly checked: exactly three numbers per line, integer indices within the size,
no entry twice, finite values, symmetry of ``general`` storage (against the transposed entries of the owned
columns), a positive diagonal in every row. Used by :mod:`structrom.rom.offline.exported_operators` (CalculiX
``.sti``, Matrix Market coordinate files); errors are :class:`ExportError` naming the file and the line.
"""
from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from structrom.mpi.errors import StructromError
from structrom.rom.adapters.magnitudes import ABSURD, beyond

CHUNK_BYTES = 1 << 24
#: Relative tolerance of the symmetry of ``general`` matrices (times the largest entry).
SYMMETRY_RTOL = 1e-10

_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
#: Fortran's double-precision exponent letter (``1.5D+03``, written by Fortran exporters) as numpy reads it.
_FORTRAN_EXPONENT = bytes.maketrans(b"Dd", b"Ee")
_INTEGER = re.compile(rb"[+-]?\d+")


class ExportError(StructromError, ValueError):
    """An exported operator file is missing, malformed or inconsistent; the message names file and line."""


def _open(path: Path, what: str, hint: str = ""):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ExportError(f"cannot read the {what} {str(path)!r} ({exc.strerror or exc}): check the path in the "
                          f"configuration{hint}") from None


@contextmanager
def reading(path: Path, what: str, hint: str = ""):
    """``path`` open in binary mode (:func:`_open`); an OSError while reading it becomes :class:`ExportError`."""
    f = _open(path, what, hint)
    try:
        with f:
            yield f
    except OSError as exc:
        raise ExportError(f"cannot read {str(path)!r} ({exc.strerror or exc})") from None


def first_repeat(key: np.ndarray, at: np.ndarray) -> tuple[int, int] | None:
    """``(i, j)``: the entry ``i`` of ``key`` ``(k,)`` that repeats an earlier one ``j`` (by ``at`` ``(k,)``, the
    entries' lines), the earliest such ``i`` by ``at``; None when every key is distinct."""
    order = np.lexsort((at, key))
    same = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    if not same.size:
        return None
    k = int(np.argmin(at[order[1:][same]]))
    return int(order[1:][same[k]]), int(order[:-1][same[k]])


def _show(text: bytes, width: int = 60) -> str:
    """``text`` quoted for a message."""
    return repr(text[:width].decode("ascii", "replace"))


def _line_of(buf: bytes, k: int) -> bytes:
    """Line ``k`` (0-based) of ``buf`` (for messages only)."""
    lines = buf.split(b"\n")
    return lines[k].rstrip(b"\r") if k < len(lines) else b""


# ----------------------------------------------------------------------------------------------- triplet parsing
def _chunks(path: Path, f, first_line: int):
    """``(buffer, number of its first line)`` of whole lines of ``f``, about :data:`CHUNK_BYTES` each."""
    carry, line = b"", first_line
    while True:
        block = f.read(CHUNK_BYTES)
        if not block:
            if carry:
                yield carry, line
            return
        buf = carry + block
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            if len(buf) > CHUNK_BYTES:
                raise ExportError(f"{path}:{line}: a line of more than {CHUNK_BYTES} bytes: not a text file of "
                                  "numbers (damaged, or not an export)")
            carry = buf
            continue
        yield buf[:cut], line
        line += buf.count(b"\n", 0, cut)
        carry = buf[cut:]


def _parse_chunk(buf: bytes, path: Path, first_line: int, width: int = 3,
                 what: str = "'row col value'") -> tuple[np.ndarray, np.ndarray]:
    """Numbers ``(k, width)`` of the non-blank lines of ``buf`` (each exactly ``width`` numbers) and the file's
    line number ``(k,)`` of each row; ``first_line`` is the number of the first line of ``buf``."""
    data = np.frombuffer(buf, dtype=np.uint8)
    control = np.flatnonzero(data < 0x20)  # line feeds, tabs, carriage returns and forbidden bytes
    byte = data[control]
    newlines = control[byte == 10]
    cr = control[byte == 13]
    bad = np.concatenate([control[(byte != 10) & (byte != 13) & (byte != 9)], np.flatnonzero(data > 0x7e),
                          cr[(cr + 1 < data.size) & (data[np.minimum(cr + 1, data.size - 1)] != 10)]])
    if bad.size:
        at = int(bad.min())
        line = first_line + int(np.searchsorted(newlines, at))
        raise ExportError(f"{path}:{line}: byte 0x{data[at]:02x} is not allowed in a text file of numbers (control "
                          "character, lone carriage return or non-ASCII): the file is damaged or in another "
                          "encoding; export it again")
    token = data > 0x20
    start = token.copy()
    start[1:] &= ~token[:-1]
    bounds = np.concatenate([[0], newlines + 1] + ([[data.size]] if data.size and data[-1] != 10 else []))
    counts = np.diff(np.searchsorted(np.flatnonzero(start), bounds))  # tokens per line
    wrong = np.flatnonzero((counts != 0) & (counts != width))
    if wrong.size:
        k = int(wrong[0])
        raise ExportError(f"{path}:{first_line + k}: expected {what} ({width} number{'s' * (width > 1)} per line), "
                          f"got {counts[k]} fields: {_show(_line_of(buf, k))}; the file is damaged or truncated")
    rows = np.flatnonzero(counts == width)
    if not rows.size:
        return np.zeros((0, width)), np.zeros(0, dtype=np.int64)
    with warnings.catch_warnings():
        # numpy stops at the first unreadable token with only a DeprecationWarning: make it an error
        warnings.simplefilter("error", DeprecationWarning)
        try:
            vals = np.fromstring(buf.translate(_FORTRAN_EXPONENT) if b"d" in buf or b"D" in buf else buf, dtype=float,
                                 sep=" ")
        except (DeprecationWarning, ValueError):
            vals = None
    if vals is None or vals.size != width * rows.size:
        _diagnose(buf, path, first_line, what)
    return vals.reshape(-1, width), first_line + rows


def _diagnose(buf: bytes, path: Path, first_line: int, what: str) -> None:
    """Raise naming the first token of ``buf`` that is not a number."""
    lines = buf.split(b"\n")
    for k, ln in enumerate(lines):
        for tok in ln.split():
            if not _NUMBER.fullmatch(tok):
                raise ExportError(f"{path}:{first_line + k}: {_show(tok, 40)} is not a number (expected {what}, in "
                                  f"the line {_show(ln.rstrip())}): the file is damaged; export it again")
    raise ExportError(f"{path}:{first_line}-{first_line + len(lines) - 1}: unreadable numbers (expected {what})")


def _indices(t: np.ndarray, cols: tuple[int, ...], bounds: tuple[int, ...], at: np.ndarray, buf: bytes,
             first_line: int, path: Path) -> list[np.ndarray]:
    """0-based int64 indices of columns ``cols`` of ``t``, checked integral in ``1..bound`` before converting."""
    out = []
    for c, bound in zip(cols, bounds):
        x = t[:, c]
        ok = np.isfinite(x) & (x >= 1) & (x <= bound) & (np.floor(x) == x)
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            tok = _line_of(buf, int(at[k]) - first_line).split()[c]
            why = ("indices start at 1 (a 0-based export, as C or Python writes? add 1 to every row and column index)"
                   if x[k] == 0 else "the file is damaged, truncated or from another run")
            raise ExportError(f"{path}:{at[k]}: {'row' if c == 0 else 'column'} index {_show(tok, 40)} is not an "
                              f"integer in 1..{bound}: {why}")
        out.append(x.astype(np.int64) - 1)
    return out


def _finite(v: np.ndarray, at: np.ndarray, buf: bytes, first_line: int, path: Path, column: int,
            integral: bool = False) -> None:
    """Raise naming the first non-finite value of ``v`` ``(k,)`` (column ``column`` of the lines ``at``), and with
    ``integral`` (a Matrix Market ``integer`` field) the first that is not an integer."""
    checks = [(beyond(v), f"is not a finite number of magnitude <= {ABSURD:g}: the export diverged or "
               "the file is damaged")]
    if integral:  # (checked after finiteness: NaN has raised by then)
        checks.append((np.floor(v) != v, "is not an integer, but the header declares the field 'integer': declare "
                       "it 'real' (or 'double') or export the values again"))
    for bad, why in checks:
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            tok = _line_of(buf, int(at[k]) - first_line).split()[column]
            raise ExportError(f"{path}:{at[k]}: value {_show(tok, 40)} {why}")


class _Entries:
    """Entries kept by a rank: ``(row, col, value, file line)`` arrays appended chunk by chunk."""

    def __init__(self):
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, keep: np.ndarray, i: np.ndarray, j: np.ndarray, v: np.ndarray, at: np.ndarray) -> None:
        if keep.any():
            self.parts.append((i[keep], j[keep], v[keep], at[keep]))

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
        return tuple(np.concatenate(p) for p in zip(*self.parts))


def _owned_csr(path: Path, entries: _Entries, n: int, lo: int, hi: int) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` ``(hi - lo, n)`` of the kept entries; a repeated ``(row, col)`` is an error."""
    r, c, v, at = entries.arrays()
    A = sp.csr_matrix((v, (r - lo, c)), shape=(hi - lo, n))  # (sums repeated entries: counted below)
    if A.nnz != v.size:
        later, first = first_repeat(r * n + c, at)
        raise ExportError(f"{path}:{at[later]}: repeats the entry of line {at[first]} (row {r[later] + 1}, column "
                          f"{c[later] + 1} of the matrix): each entry appears once; the file is damaged or two "
                          "exports were joined")
    A.sort_indices()
    return A


def _check_symmetric(path: Path, A: sp.csr_matrix, T: sp.csr_matrix, lo: int, vmax: float) -> None:
    """``A`` (owned rows) against ``T`` (the transposed entries of the owned columns) within
    ``SYMMETRY_RTOL * vmax``."""
    D = (A - T).tocoo()
    if not D.nnz:
        return
    k = int(np.argmax(np.abs(D.data)))
    tol = SYMMETRY_RTOL * vmax
    if abs(D.data[k]) > tol:
        r, c = int(D.row[k]), int(D.col[k])
        raise ExportError(f"{path}: the matrix is not symmetric: entry ({lo + r + 1}, {c + 1}) = {A[r, c]:.17g} but "
                          f"({c + 1}, {lo + r + 1}) = {T[r, c]:.17g} (difference {abs(D.data[k]):.3g} > "
                          f"{SYMMETRY_RTOL:g} max|A| = {tol:.3g}): the method needs a symmetric stiffness; check that "
                          "the file is the stiffness of the free dofs, written in full precision")


def check_diagonal(path: Path, A: sp.csr_matrix, lo: int, rows_of: str = "", dofs: np.ndarray | None = None,
                   cause: str = "the file is truncated or comes from another run") -> None:
    """Every owned row of ``A`` ``(hi - lo, n)`` (rows from ``lo``) has a positive diagonal entry (a stiffness
    restricted to its free dofs is positive definite). The row is named as dof of ``rows_of`` (a file name) or by its node and
    direction in ``dofs`` ``(n, 2)``; ``cause``: what the message gives as the likely cause."""
    d = A.diagonal(k=lo)
    bad = np.flatnonzero(~(d > 0))
    if bad.size:
        r = lo + int(bad[0]) + 1
        where = (f" (node {int(dofs[r - 1, 0])}, direction {int(dofs[r - 1, 1])})" if dofs is not None else
                 f" (dof {r} of {rows_of})" if rows_of else "")
        raise ExportError(f"{path}: row {r}{where} has no positive diagonal entry ({d[bad[0]]:g}): {cause} (a "
                          "stiffness restricted to its free dofs is positive definite)")


def _check_triangle(path: Path, i: np.ndarray, j: np.ndarray, at: np.ndarray, storage: str,
                    first: tuple[str, int] | None) -> None:
    """Raise naming the first entry ``(i, j)`` (0-based ``(k,)`` arrays, lines ``at``) outside the stored triangle:
    ``storage`` ``upper`` (ccx), ``lower``, or ``either`` with ``first`` (the triangle and line of the file's first
    off-diagonal entry; None before one)."""
    if storage == "general" or storage == "either" and first is None:
        return
    triangle = first[0] if storage == "either" else storage
    wrong = np.flatnonzero(i > j) if triangle == "upper" else np.flatnonzero(i < j)
    if not len(wrong):
        return
    k = wrong[0]
    if storage == "either":
        why = (f"line {first[1]} holds an entry of the {triangle} triangle: a symmetric Matrix Market file stores "
               "one triangle; this one has both (a matrix stored in full: declare it 'general' in the header line)")
    elif storage == "upper":
        why = "ccx stores the upper triangle (row <= col); the file is damaged"
    else:
        why = "a symmetric file stores the lower triangle (row >= col); the file is damaged"
    raise ExportError(f"{path}:{at[k]}: entry ({i[k] + 1}, {j[k] + 1}) is in the wrong triangle: {why}")


def _read_triplet_rows(path: Path, f, n: int, lo: int, hi: int, storage: str, first_line: int,
                       nnz: int | None = None, rows_of: str = "", integral: bool = False) -> sp.csr_matrix:
    """Rows ``[lo, hi)`` ``(hi - lo, n)`` of a 1-based triplet file; ``storage``: ``upper`` (ccx), ``lower``,
    ``either`` (MM symmetric: the triangle of its first off-diagonal entry, the same for the whole file) or
    ``general``. Symmetric storage is expanded; ``general`` storage is checked symmetric (the
    transposed entries of the owned columns are kept for it). ``nnz``: the declared number of entries;
    ``integral``: the values must be integers (a Matrix Market ``integer`` field)."""
    own, transposed = _Entries(), _Entries()
    count, vmax = 0, 0.0
    first: tuple[str, int] | None = None  # (triangle, line) of the first off-diagonal entry, for ``storage="either"``
    for buf, line in _chunks(path, f, first_line):
        t, at = _parse_chunk(buf, path, line)
        if not len(t):
            continue
        i, j = _indices(t, (0, 1), (n, n), at, buf, line, path)
        if storage == "either" and first is None and np.any(i != j):
            k = int(np.flatnonzero(i != j)[0])
            first = ("lower" if i[k] > j[k] else "upper", int(at[k]))
        _check_triangle(path, i, j, at, storage, first)
        v = t[:, 2]
        _finite(v, at, buf, line, path, 2, integral)
        vmax = max(vmax, float(np.abs(v).max()))
        own.add((i >= lo) & (i < hi), i, j, v, at)
        if storage == "general":
            transposed.add((j >= lo) & (j < hi), j, i, v, at)
        else:
            own.add((j >= lo) & (j < hi) & (i != j), j, i, v, at)
        count += len(t)
        if nnz is not None and count > nnz:
            raise ExportError(f"{path}:{at[-1]}: more entries than the {nnz} the size line declares: the file is "
                              "damaged (two exports joined?)")
    if count == 0:
        raise ExportError(f"{path}: no entries: the file is empty or truncated (did the export finish?)")
    if nnz is not None and count != nnz:
        raise ExportError(f"{path}: the size line declares {nnz} entries, the file has {count}: it is truncated or "
                          "damaged; export it again")
    A = _owned_csr(path, own, n, lo, hi)
    if storage == "general":
        _check_symmetric(path, A, _owned_csr(path, transposed, n, lo, hi), lo, vmax)
    check_diagonal(path, A, lo, rows_of)
    return A
