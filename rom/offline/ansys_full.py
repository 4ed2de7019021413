"""Ansys ``.full`` exports of a separated model (:mod:`structrom.rom.offline.separated`): the stiffness of each
exported solve, read by ansys-mapdl-reader in a process of its own (it crashes natively on damaged files), on the
free dofs of the file (the constrained ones, kept by Ansys as empty rows and columns, left out), and load vectors on
that numbering."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from structrom.rom.adapters.magnitudes import ABSURD, beyond
from structrom.rom.offline.triplet_files import ExportError, check_diagonal

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


def ansys_full_numbering(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """``(dofs (n, 2), free (n,), n_file)`` of an Ansys ``.full`` file, read once: the free dofs (node number,
    direction 1-3; ansys-mapdl-reader's ``dof_ref``, sorted by node, without the dofs the file lists as constrained:
    Ansys keeps them as empty rows and columns; their displacement is zero, as the solve that wrote the file imposed),
    the rows of the separated model; where they sit among all ``n_file`` dofs of the file (the order of a load vector
    exported with every dof)."""
    path = Path(path)
    dof_ref, _, constrained = _ansys_full(path)
    return _ansys_dofs(path, dof_ref[~constrained]), np.flatnonzero(~constrained), len(dof_ref)


def ansys_full_dofs(path: str | Path) -> np.ndarray:
    """``(n, 2)`` the free dofs of an Ansys ``.full`` file (:func:`ansys_full_numbering`)."""
    return ansys_full_numbering(path)[0]


def ansys_full_free_rows(path: str | Path) -> tuple[np.ndarray, int]:
    """``(free (n,), n_file)`` of an Ansys ``.full`` file (:func:`ansys_full_numbering`)."""
    return ansys_full_numbering(path)[1:]


def read_ansys_load_vector(path: str | Path, free: np.ndarray, n_file: int) -> np.ndarray:
    """A load vector ``(len(free),)`` on the free dofs of an Ansys ``.full`` numbering (:func:`ansys_full_free_rows`):
    the file holds either every dof of the ``.full`` (``n_file`` values, those at constrained dofs, reactions, not
    used) or the free dofs only."""
    from .exported_operators import read_vector

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
