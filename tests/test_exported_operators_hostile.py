"""Hostile exported operators: damaged, truncated, foreign or inconsistent files are refused with an ExportError
naming the file, the line or entry and what to do; valid files read as before (rows distributed, any rank count).

Tiny files written here; the Ansys cases damage ansys-mapdl-reader's example ``.full`` file (skipped without the
reader); one test runs on 2 MPI ranks (an error found by one rank reaches every rank).
"""
from __future__ import annotations

import io
import json
import re
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from mpi_helpers import ROOT, mpirun
from structrom.rom.offline import ansys_full as af
from structrom.rom.offline import exported_operators as eo
from structrom.rom.offline import triplet_files
from structrom.rom.offline.exported_operators import (ExportError, matrix_market_size, read_calculix_rows, read_dofs,
                                                      read_matrix_market_rows, read_vector, row_range)

H_SYM = "%%MatrixMarket matrix coordinate real symmetric\n"
H_GEN = "%%MatrixMarket matrix coordinate real general\n"
SPD2 = "1 1 2.0\n2 1 -1.0\n2 2 2.0\n"  # lower triangle of [[2, -1], [-1, 2]]
K4 = np.array([[4.0, -1, 0, 0.5], [-1, 4, -1, 0], [0, -1, 4, -1], [0.5, 0, -1, 4]])


def _write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode("latin-1"))
    return path


def _blocks(read, n: int, P: int) -> sp.csr_matrix:
    return sp.vstack([read(*row_range(n, r, P)) for r in range(P)]).tocsr()


def _sti(K: np.ndarray) -> str:
    i, j = np.nonzero(np.triu(K))
    return "".join(f"{a + 1} {b + 1} {K[a, b]: .13e}\n" for a, b in zip(i, j))


# ------------------------------------------------------------------------------------------------- valid inputs
def test_valid_files_read_as_before(tmp_path):
    """Symmetric and general Matrix Market, ccx storage, vectors: same matrix on 1, 2, 3 ranks; chunk boundaries
    (tiny chunks) change nothing."""
    import scipy.io

    rng = np.random.default_rng(0)
    n = 30
    B = sp.random(n, n, density=0.2, random_state=1)
    K = (B + B.T + 10 * sp.eye(n)).tocsr()
    scipy.io.mmwrite(str(tmp_path / "s.mtx"), sp.tril(K), symmetry="symmetric")
    scipy.io.mmwrite(str(tmp_path / "g.mtx"), K, symmetry="general")
    _write(tmp_path / "job.sti", _sti(K.toarray()))
    _write(tmp_path / "job.dof", "".join(f"{1 + k // 3}.{1 + k % 3}\n" for k in range(n)))
    assert read_dofs(tmp_path / "job.dof").tolist()[:4] == [[1, 1], [1, 2], [1, 3], [2, 1]]
    for name in ("s.mtx", "g.mtx"):
        assert matrix_market_size(tmp_path / name) == n
        K_file = scipy.io.mmread(str(tmp_path / name)).tocsr()  # (the values as written)
        for P in (1, 2, 3):
            A = _blocks(lambda lo, hi: read_matrix_market_rows(tmp_path / name, n, lo, hi), n, P)
            assert abs(A - K_file).max() == 0.0 and abs(A - K).max() < 1e-14, (name, P)
    C = _blocks(lambda lo, hi: read_calculix_rows(tmp_path / "job", n, lo, hi), n, 2)
    assert abs(C - K).max() <= 1e-12 * abs(K).max() and (C != C.T).nnz == 0  # (14 digits in the file)
    b = rng.standard_normal(n)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "b_col.npy", b[:, None].astype(np.float32))
    scipy.io.mmwrite(str(tmp_path / "b.mtx"), b[:, None])
    _write(tmp_path / "bc.mtx", "%%MatrixMarket matrix coordinate real general\n% c\n\n4 1 2\n1 1 1.5\n\n4 1 -2\n")
    _write(tmp_path / "br.mtx", "%%matrixmarket matrix coordinate integer general\n1 4 1\n1 3 7\n")
    assert np.array_equal(read_vector(tmp_path / "b.npy", n), b)
    assert np.array_equal(read_vector(tmp_path / "b_col.npy", n), b.astype(np.float32).astype(float))
    assert np.array_equal(read_vector(tmp_path / "b.mtx", n), scipy.io.mmread(str(tmp_path / "b.mtx"))[:, 0])
    assert read_vector(tmp_path / "bc.mtx", 4).tolist() == [1.5, 0, 0, -2]
    assert read_vector(tmp_path / "br.mtx", 4).tolist() == [0, 0, 7, 0]


def test_tiny_chunks_keep_real_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(triplet_files, "CHUNK_BYTES", 16)
    ok = _write(tmp_path / "ok.mtx", H_SYM + "2 2 3\n" + "\n\n1 1 2.0\n\n2 1 -1.0\n\n\n2 2 2.0\n")
    assert read_matrix_market_rows(ok, 2, 0, 2).toarray().tolist() == [[2, -1], [-1, 2]]
    bad = _write(tmp_path / "bad.mtx", H_SYM + "2 2 3\n" + "\n" * 30 + "1 1 2.0\n\n2 1 -1.0 7\n2 2 2.0\n")
    with pytest.raises(ExportError, match=r"bad\.mtx:35: expected 'row col value'.*got 4"):
        read_matrix_market_rows(bad, 2, 0, 2)


# ---------------------------------------------------------------------------------------------- Ansys .full files
@pytest.fixture(scope="module")
def ansys_example():
    reader = pytest.importorskip("ansys.mapdl.reader")
    path = reader.examples.fullfile
    dof_ref, k, _ = reader.read_binary(path).load_km(sort=True, as_sparse=True)
    return path, np.asarray(dof_ref), k.tocoo()


def test_ansys_native_crash_becomes_an_export_error(ansys_example, tmp_path):
    """The reader segfaults on this truncation: the crash is confined to its process."""
    path, _, _ = ansys_example
    bad = _write(tmp_path / "cut.full", open(path, "rb").read()[:600000])
    with pytest.raises(ExportError, match=r"cut\.full: the file has 600000 bytes, its header declares \d+: it is "
                       "truncated"):
        af.ansys_full_dofs(bad)


def _full_header(data: bytes, key: int, value: int) -> bytes:
    """``data`` (a ``.full`` file) with the integer ``key`` (0-based) of its full header (its second record) set."""
    b = bytearray(data)
    words = int(np.frombuffer(data[:4], "<i4")[0])
    at = 4 + 4 + 4 * words + 4 + 8 + 4 * key  # after the standard header record, then the record's length and flags
    b[at:at + 4] = np.int32(value).tobytes()
    return bytes(b)


def test_ansys_full_header_variants(ansys_example, tmp_path):
    """A lumped mass (LUMPM,ON: the reader refused the whole file) reads the stiffness; an unsymmetric one, one
    without stiffness, an empty file and a result or text file named .full are refused by name (they were 'damaged
    or not an Ansys .full file', or an UnboundLocalError)."""
    import ansys.mapdl.reader as reader

    path, dof_ref, k = ansys_example
    data = open(path, "rb").read()
    n = len(af.ansys_full_dofs(path))  # (the free dofs)
    lumped = _write(tmp_path / "lumped.full", _full_header(data, 10, 1))
    assert np.array_equal(af.ansys_full_dofs(lumped), af.ansys_full_dofs(path))
    assert abs(af.read_ansys_full_rows(lumped, n, 0, n) - af.read_ansys_full_rows(path, n, 0, n)).max() == 0
    cases = [(_full_header(data, 13, 1), r"unsym\.full: the stiffness is stored unsymmetric .*needs a symmetric"),
             (_full_header(_full_header(data, 8, 0), 9, 0), r"nok\.full: the file holds no stiffness matrix"),
             (b"", r"empty\.full: the file is empty \(0 bytes\)"),
             (open(reader.examples.rstfile, "rb").read(), r"rst\.full: a result file \(\.rst/\.rth\) was given where "
              "an Ansys .full file"),
             (open(reader.examples.hexarchivefile, "rb").read(), r"cdb\.full: not an Ansys binary file")]
    for (content, message), name in zip(cases, ["unsym", "nok", "empty", "rst", "cdb"]):
        with pytest.raises(ExportError, match=message):
            af.ansys_full_dofs(_write(tmp_path / f"{name}.full", content))


def test_ansys_non_finite_entries_and_other_numbering(ansys_example, tmp_path):
    path, dof_ref, k = ansys_example
    data = bytearray(open(path, "rb").read())
    at = data.find(np.float64(k.data[100]).tobytes())
    data[at:at + 8] = np.float64(np.nan).tobytes()
    nan = _write(tmp_path / "nan.full", bytes(data))
    with pytest.raises(ExportError, match=r"nan\.full: stiffness entry .*node .* is nan"):
        af.read_ansys_full_rows(nan, len(dof_ref), 0, len(dof_ref))
    data[at:at + 8] = np.float64(1e308).tobytes()  # finite, but its square overflows: no stiffness is that large
    huge = _write(tmp_path / "huge.full", bytes(data))
    with pytest.raises(ExportError, match=r"huge\.full: stiffness entry .*node .* is 1e\+308 \(above 1e\+30"):
        af.read_ansys_full_rows(huge, len(dof_ref), 0, len(dof_ref))
    other = af.ansys_full_dofs(path).copy()
    other[5, 0] += 1000
    with pytest.raises(ExportError, match="dofs differ from those of the first training export"):
        af.read_ansys_full_rows(path, len(other), 0, 10, dofs=other)


def test_ansys_constrained_dofs_are_left_out(ansys_example, tmp_path):
    """The reader's example keeps the 63 constrained dofs of nodes 1-21 as empty rows: every real .full has them, and
    they were refused ('export without the constrained dofs', which Ansys cannot do). The separated model's rows
    are the free dofs (zero displacement at the constrained ones, as the solve imposed): every row has its positive
    diagonal on 1 and 2 ranks; a load vector is taken on every dof of the file (the constrained entries are
    reactions, not used) or on the free dofs."""
    import ansys.mapdl.reader as reader

    path, dof_ref, k = ansys_example
    const = reader.read_binary(path).const
    n_file = len(dof_ref)
    dofs = af.ansys_full_dofs(path)
    n = len(dofs)
    assert n == n_file - len(const) == 900
    assert not {(int(a), int(b) + 1) for a, b in const} & {(int(a), int(b)) for a, b in dofs}
    for P in (1, 2):
        for r in range(P):
            lo, hi = eo.row_range(n, r, P)
            af.check_ansys_free_dofs(path, af.read_ansys_full_rows(path, n, lo, hi, dofs=dofs), lo, dofs)
    free, size = af.ansys_full_free_rows(path)
    assert size == n_file and np.array_equal(dof_ref[free, 0], dofs[:, 0])
    every = np.arange(1.0, n_file + 1.0)
    np.save(tmp_path / "every.npy", every)
    np.save(tmp_path / "free.npy", every[free])
    assert np.array_equal(af.read_ansys_load_vector(tmp_path / "every.npy", free, n_file), every[free])
    assert np.array_equal(af.read_ansys_load_vector(tmp_path / "free.npy", free, n_file), every[free])
    np.save(tmp_path / "short.npy", every[:10])
    with pytest.raises(ExportError, match=rf"short\.npy.*{n_file}"):
        af.read_ansys_load_vector(tmp_path / "short.npy", free, n_file)


# --------------------------------------------------------------------------------------------------- load vectors
@pytest.mark.timeout(20)
def test_vector_without_size_line_is_refused_at_once(tmp_path):
    """(scipy's reader loops forever on it)"""
    for text in ("%%MatrixMarket matrix array real general\n", "%%MatrixMarket matrix array real general\n% c\n\n"):
        with pytest.raises(ExportError, match=r"v\.mtx: no size line"):
            read_vector(_write(tmp_path / "v.mtx", text), 4)


@pytest.mark.parametrize("text, message", [
    ("array real general\n4 1\n1\n2\n3\n", "3 values, the size line declares 4"),
    ("array real general\n4 1\n1\n2\n3\n4\n5\n", ":7: more values than the 4"),
    ("array real general\n4 1\n1 2\n3 4\n", ":3: expected one value per line"),
    ("array real general\n4\n1\n2\n3\n4\n", ":2: the size line of an array is 'rows columns'"),
    ("array real general\n2 2\n1\n2\n3\n4\n", ":2: the load vector is 2 x 2, expected 4 x 1"),
    ("array real general\n100000000000 1\n1\n", "100000000000 x 1, expected 4 x 1"),
    ("array real symmetric\n4 1\n1\n2\n3\n4\n", "symmetry 'symmetric'"),
    ("array complex general\n4 1\n1 0\n2 0\n3 0\n4 0\n", "field 'complex' is not supported"),
    ("array real general\n4 1\n1\nnan\n3\n4\n", ":4: value 'nan' is not a finite number"),
    ("array real general\n4 1\n1\n2\n3\n4.5x\n", ":6: '4.5x' is not a number"),
    ("coordinate real general\n4 1 3\n1 1 1\n1 1 1\n4 1 4\n", ":4: repeats the entry of line 3"),
    ("coordinate real general\n4 1 2\n1 1 1\n", "declares 2 entries, the file has 1"),
    ("coordinate real general\n4 1\n1 1 1\n", "'rows columns entries' \\(3 numbers\\)"),
    ("coordinate real general\n4 1 1\n1 2 1\n", ":3: column index '2' is not an integer in 1..1"),
    ("coordinate real general\n4 1 1\n1.5 1 1\n", ":3: row index '1.5' is not an integer in 1..4"),
    ("coordinate real general\n4 1 1\n1 1\n", ":3: expected 'row col value'.*got 2"),
    ("coordinate pattern general\n4 1 1\n1 1\n", "field 'pattern'"),
    ("array integer general\n4 1\n1\n2\n2.5\n4\n", ":5: value '2.5' is not an integer, but the header declares"),
    ("coordinate integer general\n4 1 1\n2 1 7e-1\n", ":3: value '7e-1' is not an integer"),
    ("vector real general\n4 1\n1\n2\n3\n4\n", ":1: not a Matrix Market file"),
])
def test_matrix_market_vectors_are_checked(tmp_path, text, message):
    path = _write(tmp_path / "b.mtx", "%%MatrixMarket matrix " + text if not text.startswith("vector") else
                  "%%MatrixMarket " + text)
    with pytest.raises(ExportError, match=r"b\.mtx.*" + message):
        read_vector(path, 4)


def test_npy_vectors_are_checked(tmp_path):
    def npy(name, a):
        f = io.BytesIO()
        np.save(f, a, allow_pickle=True)
        return _write(tmp_path / name, f.getvalue())

    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }"
    huge = _write(tmp_path / "huge.npy", b"\x93NUMPY\x01\x00" + (len(header) + 1).to_bytes(2, "little")
                  + header.encode() + b"\n" + bytes(32))
    cases = {huge: "cannot read the load vector.*huge\\.npy", npy("b.npy", np.ones(4, bool)): "dtype bool",
             npy("c.npy", np.ones(4) + 1j): "dtype complex128", npy("s.npy", np.ones((2, 2))): r"shape \(2, 2\)",
             npy("o.npy", np.array([1, 2, 3, 4], dtype=object)): "cannot read the load vector",
             npy("n.npy", np.array([1.0, np.inf, 0, 0])): "value 2 of the load vector is inf",
             npy("g.npy", np.array([1.0, 0, 0, 1e300])): r"value 4 of the load vector is 1e\+300 \(not finite, or above 1e\+30",
             _write(tmp_path / "t.npy", npy("x.npy", np.ones(4)).read_bytes()[:-8]): "cannot read the load vector",
             _write(tmp_path / "e.npy", b""): "cannot read the load vector",
             _write(tmp_path / "u.npy", b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'shape': (4,"): "cannot read the load vector"}
    f = io.BytesIO()
    np.savez(f, a=np.ones(4))
    cases[_write(tmp_path / "z.npy", f.getvalue())] = "not a single array"
    for path, message in cases.items():
        with pytest.raises(ExportError, match=message):
            read_vector(path, 4)
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(ExportError, match="dir.npy"):
        read_vector(tmp_path / "dir.npy", 4)


# ------------------------------------------------------------------------------------------------------ .dof files
@pytest.mark.parametrize("data, message", [
    ("1.1\n1.2\n".encode("utf-16"), r":1: byte 0xff is not ASCII"),
    (b"1.1\n1.2\n\xe9\n", r":3: byte 0xe9 is not ASCII"),
    ("1.1\n\u0662.1\n".encode(), r":2: byte 0xd9 is not ASCII"),
    (bytes(range(256)), r":1: byte 0x00 is not ASCII"),
    (b"1.1\n1234567890123456789.1\n", r"entry 2: expected 'node.direction'.*'1234567890123456789.1'"),
    (b"1.1\n+2.1\n", r"entry 2: expected 'node.direction'"),
    (b"1.1\n2.4\n", r"entry 2: expected 'node.direction'.*direction 1-3"),
    (b"1.1\n0.2\n", r"entry 2: node 0"),
    (b"1.1\n1.2\n1.3\n01.2\n", r"entry 4 \('01.2'\) repeats entry 2"),
    (b" \n", "no dofs"),
])
def test_dof_files_are_checked(tmp_path, data, message):
    with pytest.raises(ExportError, match=r"job\.dof.*" + message):
        read_dofs(_write(tmp_path / "job.dof", data))


def test_files_that_cannot_be_opened(tmp_path):
    (tmp_path / "d.mtx").mkdir()
    (tmp_path / "d.dof").mkdir()
    (tmp_path / "d.sti").mkdir()
    for call in (lambda: matrix_market_size(tmp_path / "d.mtx"), lambda: read_dofs(tmp_path / "d.dof"),
                 lambda: read_matrix_market_rows(tmp_path / "d.mtx", 2, 0, 2),
                 lambda: read_calculix_rows(tmp_path / "d", 2, 0, 2), lambda: read_vector(tmp_path / "d.mtx", 2),
                 lambda: matrix_market_size(tmp_path / "missing.mtx")):
        with pytest.raises(ExportError, match=r"cannot read .*(Is a directory|No such file)"):
            call()


# ------------------------------------------------------------------------------------------ Matrix Market matrices
@pytest.mark.parametrize("text, message", [
    (H_SYM + "2 2\n" + SPD2, ":2: the size line of a coordinate matrix is 'rows columns entries'"),
    (H_SYM + "2 2 3 7\n" + SPD2, ":2: .*got 4"),
    (H_GEN + "2 3 3\n" + SPD2, ":2: size 2 x 3"),
    (H_SYM + "0 0 0\n", ":2: size 0 x 0"),
    (H_SYM + "-2 -2 3\n" + SPD2, ":2: size -2 x -2"),
    (H_SYM + "2 2 -3\n" + SPD2, "with -3 entries"),
    (H_SYM + "2 2 30\n" + SPD2, ":2: 30 entries cannot fit in a file of"),
    (H_SYM + "1000000000000 1000000000000 3\n" + SPD2, "1000000000000 rows but only 3 entries"),
    (H_SYM + "2.0 2 3\n" + SPD2, ":2: expected the size line"),
    (H_SYM + "2 2 1_0\n" + SPD2, ":2: expected the size line"),
    ("%%MatrixMarket vector coordinate real general\n2 2 3\n" + SPD2, ":1: not a Matrix Market file"),
    ("%%MatrixMarket matrix array real general\n2 2\n2\n-1\n-1\n2\n", "layout 'array'"),
    ("%%MatrixMarket matrix coordinate real hermitian\n2 2 3\n" + SPD2, "symmetry 'hermitian'"),
])
def test_declared_matrix_size_is_checked(tmp_path, text, message):
    path = _write(tmp_path / "A.mtx", text)
    with pytest.raises(ExportError, match=r"A\.mtx.*" + message):
        matrix_market_size(path)
    with pytest.raises(ExportError, match=r"A\.mtx"):
        read_matrix_market_rows(path, 2, 0, 2)


HB_RSA = ("Title of a stiffness                                                    Key     \n"
          "             5             1             1             3             0\n"
          "RSA                        2             2             3             0\n"
          "(16I5)          (16I5)          (5E16.8)                                \n"
          "    1    3    4\n    1    2    2\n  2.00000000E+00 -1.00000000E+00  2.00000000E+00\n")


@pytest.mark.parametrize("content, message", [
    (None, r"m\.mtx: the file is gzip-compressed: decompress it \(gunzip\)"),
    ((H_SYM + "2 2 3\n" + SPD2).encode("utf-16"), r"m\.mtx: the file is in UTF-16 or UTF-32 .*save it as ASCII"),
    (b"", r"m\.mtx: the file is empty \(0 bytes\)"),
    (HB_RSA, r"m\.mtx: a Harwell-Boeing file \(matrix type RSA on line 3\), not Matrix Market: export .* MMF"),
    ("%%MatrixMarket matrix coordinate pattern symmetric\n2 2 3\n1 1\n2 1\n2 2\n",
     r"field 'pattern' .*no values .*export the matrix with its values"),
    ("%%MatrixMarket matrix coordinate complex symmetric\n2 2 3\n1 1 2 0\n2 1 -1 0\n2 2 2 0\n",
     r"field 'complex' .*export it with field 'real'"),
    ("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 -1\n",
     r"symmetry 'skew-symmetric' .*export it as 'symmetric' \(one triangle\) or 'general'"),
])
def test_foreign_matrix_files_are_named_with_their_fix(tmp_path, content, message):
    """Files given as Matrix Market in another form were 'not a Matrix Market file' quoting binary bytes (gzip,
    UTF-16), or named a field without saying what to export instead."""
    import gzip

    data = gzip.compress((H_SYM + "2 2 3\n" + SPD2).encode()) if content is None else content
    path = _write(tmp_path / "m.mtx", data)
    with pytest.raises(ExportError, match=message):
        matrix_market_size(path)


def test_utf8_byte_order_mark_is_skipped(tmp_path):
    """A UTF-8 byte order mark (Windows editors) before the header was 'not a Matrix Market file'."""
    path = _write(tmp_path / "bom.mtx", b"\xef\xbb\xbf" + (H_SYM + "2 2 3\r\n" + SPD2.replace("\n", "\r\n")).encode())
    assert matrix_market_size(path) == 2
    assert np.array_equal(read_matrix_market_rows(path, 2, 0, 2).toarray(), [[2.0, -1.0], [-1.0, 2.0]])


def test_symmetric_file_of_the_upper_triangle_is_read(tmp_path):
    """A symmetric Matrix Market file holding the upper triangle (scipy.io.mmread reads it) was refused as damaged;
    it reads as the lower one, on any row split. A file holding both triangles is refused: declare it 'general'."""
    i, j = np.nonzero(np.triu(K4))
    upper = _write(tmp_path / "upper.mtx", H_SYM + f"4 4 {len(i)}\n" +
                   "".join(f"{a + 1} {b + 1} {K4[a, b]!r}\n" for a, b in zip(i, j)))
    for P in (1, 2, 3):
        assert np.array_equal(_blocks(lambda lo, hi: read_matrix_market_rows(upper, 4, lo, hi), 4, P).toarray(), K4)
    both = _write(tmp_path / "both.mtx", H_SYM + "2 2 4\n1 1 2\n2 1 -1\n1 2 -1\n2 2 2\n")
    with pytest.raises(ExportError, match=r"both\.mtx:5: entry \(1, 2\) is in the wrong triangle: line 4 holds an "
                       r"entry of the lower triangle.*declare it 'general'"):
        read_matrix_market_rows(both, 2, 0, 2)


def test_fortran_exponents_and_zero_based_indices(tmp_path):
    """Values with Fortran's double-precision exponent (1.5D+03, Fortran exporters) were 'not a number'; a 0-based
    file (index 0) now says so and how to fix it (it said 'damaged, truncated or from another run')."""
    fortran = _write(tmp_path / "f.mtx", H_SYM + "2 2 3\n1 1 2.0D+00\n2 1 -1.0d0\n2 2 0.2D1\n")
    assert np.array_equal(read_matrix_market_rows(fortran, 2, 0, 2).toarray(), [[2.0, -1.0], [-1.0, 2.0]])
    vector = _write(tmp_path / "b.mtx", "%%MatrixMarket matrix array real general\n2 1\n1.5D+03\n-2.0D-01\n")
    assert np.array_equal(read_vector(vector, 2), [1500.0, -0.2])
    with pytest.raises(ExportError, match=r"g\.mtx:3: '2\.0Dx' is not a number"):
        read_matrix_market_rows(_write(tmp_path / "g.mtx", H_SYM + "2 2 3\n1 1 2.0Dx\n2 1 -1\n2 2 2\n"), 2, 0, 2)
    zero = _write(tmp_path / "z.mtx", H_SYM + "2 2 3\n0 0 2.0\n1 0 -1.0\n1 1 2.0\n")
    with pytest.raises(ExportError, match=r"z\.mtx:3: row index '0' .*indices start at 1 .*add 1 to every row and "
                       "column index"):
        read_matrix_market_rows(zero, 2, 0, 2)


def test_truncated_matrix_is_refused(tmp_path):
    path = _write(tmp_path / "A.mtx", H_SYM + "% padding so that the declared count fits the file size\n2 2 4\n" + SPD2)
    with pytest.raises(ExportError, match=r"A\.mtx: the size line declares 4 entries, the file has 3"):
        read_matrix_market_rows(path, 2, 0, 2)
    with pytest.raises(ExportError, match="the matrix is 2 x 2, the first training matrix 3 x 3"):
        read_matrix_market_rows(path, 3, 0, 3)


@pytest.mark.parametrize("last", ["2 2 2,5", "2 2 2.5e", "2 2 0x10", "2 2 3.5x", "2 2 1e+", "2 2 1d"])
def test_bad_number_on_the_last_line(tmp_path, last):
    """numpy stops at such a token with only a warning: the value would be read as its valid prefix (1d3, a Fortran
    exponent, is read as 1e3)."""
    path = _write(tmp_path / "A.mtx", H_SYM + "2 2 3\n1 1 2.0\n2 1 -1.0\n" + last)
    with pytest.raises(ExportError, match=rf"A\.mtx:5: '{re.escape(last.split()[-1])}' is not a number"):
        read_matrix_market_rows(path, 2, 0, 2)


@pytest.mark.parametrize("body, message", [
    ("1 1 2.0\n2 1 -1.0\n2 2 2.0 % end\n", ":5: expected 'row col value'.*got 5"),
    ("1 1 2.0 2\n1 2.0\n2 2 2.0\n", ":3: expected 'row col value'.*got 4"),  # tokens that would pair wrongly
    ("1 1\n2.0 2 1 -1.0\n2 2 2.0\n", ":3: .*got 2"),
    ("1 1 2.0\n\n\n\n2 1\n2 2 2.0\n", ":7: .*got 2"),  # (real line numbers after blank lines)
    ("1 1 2.0\n% c\n2 1 -1.0\n2 2 2.0\n", ":4: .*got 2"),
    ("1 1 2.0\n2 1 -1.0\x00\n2 2 2.0\n", ":4: byte 0x00 is not allowed"),
    ("1 1 2.0\n2 1 -1.0\r2 2 2.0\n", ":4: byte 0x0d is not allowed"),
    ("1 1 2.0\n2 1 -1.0\n2 2 2\xe9\n", ":5: byte 0xe9 is not allowed"),
    ("1 1 2.0\n2 1 abc\n2 2 2.0\n", ":4: 'abc' is not a number"),
])
def test_every_line_has_three_numbers(tmp_path, body, message):
    path = _write(tmp_path / "A.mtx", H_SYM + "2 2 3\n" + body)
    with pytest.raises(ExportError, match=r"A\.mtx" + message):
        read_matrix_market_rows(path, 2, 0, 2)


@pytest.mark.parametrize("entry, message", [
    ("2 1.5 -1.0", "column index '1.5' is not an integer in 1..2"),
    ("2.9 1 -1.0", "row index '2.9'"), ("0 1 -1.0", "row index '0'"), ("nan 1 -1.0", "row index 'nan'"),
    ("1e30 1 -1.0", "row index '1e30'"), ("3 1 -1.0", "row index '3'"),
    ("2 1 nan", "value 'nan' is not a finite number"), ("2 1 1e400", "value '1e400' is not a finite number"),
    ("2 1 -1e300", r"value '-1e300' is not a finite number of magnitude <= 1e\+30"),
    # (an upper-triangle entry alone makes a file of the upper triangle: test_symmetric_file_of_the_upper_triangle)
])
def test_indices_values_and_triangle(tmp_path, entry, message):
    path = _write(tmp_path / "A.mtx", H_SYM + "2 2 3\n1 1 2.0\n" + entry + "\n2 2 2.0\n")
    with pytest.raises(ExportError, match=r"A\.mtx:4: " + message):
        read_matrix_market_rows(path, 2, 0, 2)


def test_integer_matrices_hold_integers(tmp_path):
    head = H_SYM.replace(" real ", " integer ")
    assert " integer " in head
    path = _write(tmp_path / "A.mtx", head + "2 2 3\n1 1 2\n2 1 -1\n2 2 3e0\n")
    assert read_matrix_market_rows(path, 2, 0, 2).toarray().tolist() == [[2, -1], [-1, 3]]
    path = _write(tmp_path / "A.mtx", head + "2 2 3\n1 1 2\n2 1 -1\n2 2 2.5\n")
    with pytest.raises(ExportError, match=r"A\.mtx:5: value '2\.5' is not an integer.*declare it 'real'"):
        read_matrix_market_rows(path, 2, 0, 2)


def test_duplicate_entries_are_refused(tmp_path):
    cases = {"g.mtx": H_GEN + "2 2 5\n1 1 2.0\n1 2 -1.0\n2 1 -1.0\n1 1 2.0\n2 2 2.0\n",
             "s.mtx": H_SYM + "2 2 4\n1 1 2.0\n2 1 -1.0\n2 2 2.0\n2 1 -1.0\n"}
    for name, text in cases.items():
        path = _write(tmp_path / name, text)
        # found by the rank owning the row (for symmetric storage, also by the one owning the mirrored row)
        for lo, hi in ((0, 2), (0, 1)) if name == "g.mtx" else ((0, 2), (0, 1), (1, 2)):
            with pytest.raises(ExportError, match=rf"{name}:6: repeats the entry of line "
                                                  rf"{3 if name == 'g.mtx' else 4} \(row"):
                read_matrix_market_rows(path, 2, lo, hi)
    assert read_matrix_market_rows(tmp_path / "g.mtx", 2, 1, 2).toarray().tolist() == [[-1, 2]]
    _write(tmp_path / "job.sti", _sti(K4) + "2 2 4.0\n")
    with pytest.raises(ExportError, match=r"job\.sti:9: repeats the entry of line 4"):
        read_calculix_rows(tmp_path / "job", 4, 0, 4)


def test_general_matrix_must_be_symmetric(tmp_path):
    """Each rank compares its rows with the transposed entries of its columns: no rank holds the matrix."""
    A = K4.copy()
    A[3, 0] = 0.25
    i, j = np.nonzero(A)
    text = H_GEN + f"4 4 {len(i)}\n" + "".join(f"{a + 1} {b + 1} {float(A[a, b])!r}\n" for a, b in zip(i, j))
    path = _write(tmp_path / "A.mtx", text)
    for lo, hi in ((0, 4), (0, 2), (2, 4)):
        with pytest.raises(ExportError, match=r"A\.mtx: the matrix is not symmetric: entry \((1, 4\) = 0.5 but \(4, 1"
                                              r"\) = 0.25|4, 1\) = 0.25 but \(1, 4\) = 0.5).*needs a symmetric"):
            read_matrix_market_rows(path, 4, lo, hi)
    A[3, 0] = 0.5 * (1 + 1e-12)  # rounding: within 1e-10 max|A|
    text = H_GEN + f"4 4 {len(i)}\n" + "".join(f"{a + 1} {b + 1} {float(A[a, b])!r}\n" for a, b in zip(i, j))
    B = _blocks(lambda lo, hi: read_matrix_market_rows(_write(tmp_path / "B.mtx", text), 4, lo, hi), 4, 2)
    assert np.array_equal(B.toarray(), A)


def test_empty_or_truncated_stiffness(tmp_path):
    _write(tmp_path / "job.dof", "1.1\n1.2\n1.3\n2.1\n")
    for text in ("", "\n  \n"):
        _write(tmp_path / "job.sti", text)
        with pytest.raises(ExportError, match=r"job\.sti: no entries: the file is empty or truncated"):
            read_calculix_rows(tmp_path / "job", 4, 0, 4)
    _write(tmp_path / "job.sti", "".join(_sti(K4).splitlines(keepends=True)[:-1]))  # last line (4, 4) lost
    for lo, hi in ((0, 4), (2, 4)):
        with pytest.raises(ExportError, match=r"job\.sti: row 4 \(dof 4 of job\.dof\) has no positive diagonal "
                                              "entry.*truncated or comes from another run"):
            read_calculix_rows(tmp_path / "job", 4, lo, hi)
    assert read_calculix_rows(tmp_path / "job", 4, 0, 2).shape == (2, 4)  # (rows 1-2 are complete)
    _write(tmp_path / "job.sti", _sti(K4))
    with pytest.raises(ExportError, match=r"row 5 \(dof 5 of job\.dof\) has no positive diagonal"):
        read_calculix_rows(tmp_path / "job", 5, 0, 5)  # a .dof with one row too many


# ------------------------------------------------------------------------------------------ the offline stage
def _mm_config(d) -> object:
    import scipy.io

    from structrom.rom.offline.config import load_offline_config

    n = 8
    K = sp.diags([-np.ones(n - 1), 2.5 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    lines = ['kind = "separated"', "[separated]", 'format = "matrix_market"', 'parameter_names = ["a"]',
             'rhs = "b.npy"']
    for j, mu in enumerate((1.0, 2.0, 3.0)):
        scipy.io.mmwrite(str(d / f"A{j}.mtx"), sp.tril(K * (1 + mu)), symmetry="symmetric")
        lines += ["[[separated.training]]", f"mu = [{mu}]", f'matrix = "A{j}.mtx"']
    np.save(d / "b.npy", np.linspace(1, 2, n))
    (d / "mm.toml").write_text("\n".join(lines + ["[output]", 'file = "mm.h5"']) + "\n")
    return load_offline_config(d / "mm.toml")


def test_unexpected_reader_errors_are_reported_collectively(tmp_path, monkeypatch):
    from mpi4py import MPI

    from structrom.rom.offline import separated

    cfg = _mm_config(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("reader bug")

    monkeypatch.setattr(separated, "read_matrix_market_rows", broken)
    with pytest.raises(ExportError, match="reading the training exports: unexpected RuntimeError: reader bug"):
        separated.run_separated_offline(cfg, MPI.COMM_SELF, log=lambda *a: None)


MPI_PROGRAM = """
import json, sys
from pathlib import Path
from mpi4py import MPI
from structrom.mpi import collectives
from structrom.rom.offline import exported_operators as eo, separated
from structrom.rom.offline.config import load_offline_config

comm, d, out = MPI.COMM_WORLD, Path(sys.argv[1]), {}
msg = None
try:  # the asymmetric pair (1, 4) / (4, 1) spans the rows of rank 0 and of the last rank
    eo.read_matrix_market_rows(d / "asym.mtx", 4, *eo.row_range(4, comm.rank, comm.size))
except eo.ExportError as exc:
    msg = str(exc)
try:
    collectives.raise_collectively(comm, msg, eo.ExportError)
except eo.ExportError as exc:
    out["asym"] = str(exc)
if comm.rank == 1:  # a bug on one rank only: the other must not wait for it in a collective
    def broken(*args, **kwargs):
        raise KeyError("reader bug")
    separated.read_matrix_market_rows = broken
try:
    separated.run_separated_offline(load_offline_config(d / "mm.toml"), comm, log=lambda *a: None)
except eo.ExportError as exc:
    out["offline"] = str(exc)
(d / f"result_{comm.rank}.json").write_text(json.dumps({"rank": comm.rank, **out}))  # (stdout lines interleave)
"""


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_errors_of_one_rank_reach_every_rank(tmp_path, ranks):
    _mm_config(tmp_path)
    A = K4.copy()
    A[3, 0] = 0.25
    i, j = np.nonzero(A)
    _write(tmp_path / "asym.mtx", H_GEN + f"4 4 {len(i)}\n" + "".join(f"{a + 1} {b + 1} {float(A[a, b])!r}\n"
                                                                      for a, b in zip(i, j)))
    (tmp_path / "program.py").write_text(MPI_PROGRAM)
    proc = mpirun(ranks, [str(tmp_path / "program.py"), str(tmp_path)], timeout=120, cwd=ROOT)
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("result_*.json"))]
    assert sorted(r["rank"] for r in results) == list(range(ranks)), proc.stdout + proc.stderr
    for r in results:
        assert r["asym"].startswith("rank 0: ") and "not symmetric" in r["asym"], r
        assert r["offline"] == "rank 1: reading the training exports: unexpected KeyError: 'reader bug'", r


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_mesh_deck_without_the_exported_nodes_is_refused_first(tmp_path):
    """entries = 'fe_kernel' with a mesh deck that lacks a node of the .dof numbering was refused only when the model
    was written, after every export was read and solved (hours on a real model): it is now refused first, before
    any matrix is read (here the second export is damaged: that error would come first otherwise)."""
    from structrom.rom.adapters.inp_writer import write_mesh_inp
    from structrom.rom.fem.mesh import CellBlock, Mesh
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.separated import run_separated_offline

    mesh = Mesh(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]), [CellBlock("C3D4", np.array([[0, 1, 2, 3]]))])
    write_mesh_inp(tmp_path / "mesh.inp", mesh)
    for j, sti in enumerate([_sti(K4), "1 1 4.0\n2 1 -1.0\n"]):  # (the second one in the wrong triangle)
        _write(tmp_path / f"job{j}.sti", sti)
        _write(tmp_path / f"job{j}.dof", "1.1\n1.2\n1.3\n9.1\n")  # node 9: not in the deck
    np.save(tmp_path / "b.npy", np.ones(4))
    lines = ['kind = "separated"', "[separated]", 'format = "calculix"', 'parameter_names = ["a"]', 'rhs = "b.npy"']
    for j in range(2):
        lines += ["[[separated.training]]", f"mu = [{j}.0]", f'matrix = "job{j}"']
    lines += ["[separated.online]", 'entries = "fe_kernel"', 'mesh = "mesh.inp"', "material = {type = 'x'}",
              "temperature = {type = 'x'}"]
    (tmp_path / "sep.toml").write_text("\n".join(lines) + "\n")
    cfg = load_offline_config(tmp_path / "sep.toml")
    with pytest.raises(ExportError, match=r"separated\.online\.mesh: the \.dof node ids are not the mesh's \(node ids "
                       r"\[9\] are not in the mesh\): give the deck of the model whose matrices were exported"):
        run_separated_offline(cfg, log=lambda *a: None)
