"""Nonintrusive separation of parameter-dependent sparse matrices (Casenave, Ern, Lelievre,
"A nonintrusive method to approximate linear systems with nonlinear parameter dependence",
arXiv 1307.4330).

Offline: a black-box code exports ``A(mu_j)`` for training parameters ``mu_1..mu_m`` (scipy sparse,
PETSc ``Mat``, dense arrays or Matrix Market files). Their entries on the union of their sparsity
patterns are the samples ``f(x, y)`` of the EIM with ``x`` = an entry ``(i, j)`` (global id
``i * n_cols + j``, so ties go to the lexicographically smallest entry) and ``y`` = the training
parameter. The greedy selects ``d`` parameters ``mu_{J_k}`` and ``d`` entries ``(i_k, j_k)``;
with ``F[l, k] = A(mu_{J_k})[i_l, j_l]`` (symmetric EIM, 1508.05330),

    A(mu) ~ sum_k beta_k(mu) A(mu_{J_k}),       F beta(mu) = (A(mu)[i_l, j_l])_{l=1..d}

so the online stage needs only the ``d`` entries of ``A(mu)``: :class:`EntryEvaluator` is the callback
interface (the FE kernel implements it by integrating only the elements that touch the selected dofs);
:class:`AssembledEntries` is a generic (non-efficient) implementation from "a function that assembles
``A(mu)``", for testing. Right-hand sides ``b(mu)`` are separated the same way
(:func:`separate_vectors`; their entries are ``(i, 0)``).

Distributed: every rank passes its block of rows (``row_offset`` = global index of its first row, or a
PETSc MPIAIJ matrix whose ownership range is used); the selection is rank-count independent.
"""
from __future__ import annotations


import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import scipy.io
import scipy.sparse as sp

from structrom.mpi import collectives as _dist
from .errors import EIMError, raise_collectively
from .greedy import EIMResult, eim_greedy
from .symmetric import SymmetricInterpolant

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI



def _is_petsc_mat(obj) -> bool:
    """Whether ``obj`` is a PETSc ``Mat``; never imports PETSc (a caller holding a Mat has imported it)."""
    petsc = sys.modules.get("petsc4py.PETSc")
    return petsc is not None and isinstance(obj, petsc.Mat)


@runtime_checkable
class EntryEvaluator(Protocol):
    """Online callback: the entries ``A(mu)[rows[l], cols[l]]``, ``(d,)`` floats, without assembling ``A``.

    ``mu``: one parameter value (any array-like the black box understands); ``rows``, ``cols``:
    ``(d,)`` int64 global indices (for vectors ``cols`` is all zeros). Must return the same values on
    every rank (it is called collectively when distributed).
    """

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray: ...


class AssembledEntries:
    """:class:`EntryEvaluator` from ``assemble(mu)`` returning the full ``A(mu)``: scipy sparse, dense
    ``(n, n)`` / ``(n,)`` array, or a PETSc ``Mat`` (sequential or MPIAIJ: each rank reads the entries
    of its rows and they are summed over ``mat.comm``). Cost O(assembly): for tests and references."""

    def __init__(self, assemble: Callable[[object], object]) -> None:
        self.assemble = assemble
        self.calls = 0

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        self.calls += 1
        A = self.assemble(mu)
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if _is_petsc_mat(A):
            start, end = A.getOwnershipRange()
            out = np.zeros(len(rows))
            for l, (i, j) in enumerate(zip(rows.tolist(), cols.tolist())):
                if start <= i < end:
                    out[l] = A.getValue(i, j)
            if A.comm.getSize() > 1:
                out = _dist.allreduce(A.comm.tompi4py(), out)
            return out
        if sp.issparse(A):
            return np.asarray(sp.csr_matrix(A)[rows, cols]).ravel().astype(float)
        A = np.asarray(A, dtype=float)
        return A[rows] if A.ndim == 1 else A[rows, cols]


def to_csr(matrix, *, name: str = "matrix") -> tuple[sp.csr_matrix, int, tuple[int, int]]:
    """``(local rows CSR, row_offset, global shape)`` of one exported matrix.

    Accepts scipy sparse, dense 2-D arrays, PETSc ``Mat`` (its local rows) and Matrix Market file paths.
    Duplicates are summed and column indices sorted (canonical CSR).
    """
    if isinstance(matrix, (str, os.PathLike)):
        try:
            matrix = scipy.io.mmread(os.fspath(matrix))
        except (OSError, ValueError) as exc:
            raise EIMError(f"{name}: cannot read Matrix Market file {os.fspath(matrix)!r}: {exc}") from exc
    if _is_petsc_mat(matrix):
        start, end = matrix.getOwnershipRange()
        n_rows, n_cols = matrix.getSize()
        indptr, indices, data = matrix.getValuesCSR()
        A = sp.csr_matrix((data, indices, indptr), shape=(end - start, n_cols))
        offset, shape = start, (n_rows, n_cols)
    elif sp.issparse(matrix):
        A = sp.csr_matrix(matrix, dtype=np.float64)
        offset, shape = 0, A.shape
    else:
        arr = np.asarray(matrix, dtype=np.float64)
        if arr.ndim != 2:
            raise EIMError(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
        A = sp.csr_matrix(arr)
        offset, shape = 0, A.shape
    A = A.copy()
    A.sum_duplicates()
    A.sort_indices()
    return A, int(offset), (int(shape[0]), int(shape[1]))


@dataclass
class UnionPattern:
    """Union of the sparsity patterns of the local row blocks: ``keys`` ``(nnz_local,)`` sorted global
    entry ids ``row * n_cols + col``; ``shape`` global."""

    keys: np.ndarray
    shape: tuple[int, int]

    @property
    def rows(self) -> np.ndarray:
        return self.keys // self.shape[1]

    @property
    def cols(self) -> np.ndarray:
        return self.keys % self.shape[1]


def _entry_keys(A: sp.csr_matrix, offset: int, n_cols: int) -> np.ndarray:
    r = np.repeat(np.arange(A.shape[0], dtype=np.int64), np.diff(A.indptr))
    return (r + offset) * n_cols + A.indices.astype(np.int64)


def pattern_samples(blocks: Sequence[sp.csr_matrix], offset: int, shape: tuple[int, int],
                    same_pattern: bool = False) -> tuple[UnionPattern, np.ndarray]:
    """``(union pattern, samples (nnz_union_local, m))``: each matrix's values on the union (0 where absent)."""
    keys = [_entry_keys(A, offset, shape[1]) for A in blocks]
    union = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    if same_pattern:
        for j, k in enumerate(keys):
            if len(k) != len(union):
                raise EIMError(f"matrix {j} has {len(k)} stored entries on this rank, the union has {len(union)}: "
                               "sparsity patterns differ (use same_pattern=False to work on the union)")
    S = np.zeros((len(union), len(blocks)))
    for j, (A, k) in enumerate(zip(blocks, keys)):
        S[np.searchsorted(union, k), j] = A.data
    return UnionPattern(union, shape), S


@dataclass
class Separation:
    """Result of :func:`separate_matrices` / :func:`separate_vectors` (replicated except ``basis``).

    ``param_indices`` ``(d,)`` selected training parameters (``parameters`` ``(d, ...)`` their values
    when given); ``entry_rows``, ``entry_cols`` ``(d,)`` selected global entries (cols 0 for vectors);
    ``interpolation_matrix`` ``F`` ``(d, d)``, ``F[l, k] = A(mu_{J_k})[i_l, j_l]``; ``basis``: the ``d``
    selected training matrices (CSR, this rank's rows) or vectors ``(n_local, d)``; ``row_offset``,
    ``shape``: the global layout; ``greedy``: the full :class:`EIMResult` (errors, Lebesgue constants,
    conditions per step).
    """

    param_indices: np.ndarray
    parameters: np.ndarray | None
    entry_rows: np.ndarray
    entry_cols: np.ndarray
    interpolation_matrix: np.ndarray
    basis: list | np.ndarray
    row_offset: int
    shape: tuple[int, int]
    greedy: EIMResult
    kind: str

    def __post_init__(self) -> None:
        self._interp = SymmetricInterpolant(self.interpolation_matrix, self.greedy.point_ids, self.param_indices)

    @property
    def n_terms(self) -> int:
        return len(self.param_indices)

    def truncated(self, d: int) -> "Separation":
        """The separation with the first ``d`` terms of the greedy (nested selections)."""
        if not 1 <= d <= self.n_terms:
            raise EIMError(f"d must be in 1..{self.n_terms}, got {d}")
        g = self.greedy
        sub = EIMResult(point_ids=g.point_ids[:d], param_indices=g.param_indices[:d], errors=g.errors[:d + 1],
                        pivots=g.pivots[:d], lebesgue=g.lebesgue[:d], cond_B=g.cond_B[:d], cond_F=g.cond_F[:d],
                        B=g.B[:d, :d], F=g.F[:d, :d], point_rows=g.point_rows[:d],
                        basis_local=g.basis_local[:, :d], lagrange_local=g.lagrange_local[:, :d],
                        columns_local=g.columns_local[:, :d], ids_local=g.ids_local, norm=g.norm,
                        stop_reason="truncated", threshold=g.threshold)
        basis = self.basis[:d] if self.kind == "matrix" else self.basis[:, :d]
        return Separation(self.param_indices[:d], None if self.parameters is None else self.parameters[:d],
                          self.entry_rows[:d], self.entry_cols[:d], self.interpolation_matrix[:d, :d], basis,
                          self.row_offset, self.shape, sub, self.kind)

    def coefficients(self, entry_values: np.ndarray) -> np.ndarray:
        """``beta = F^-1 a`` from the ``(d,)`` entry values ``a = A(mu)[i_l, j_l]``; O(d^2)."""
        return self._interp.coefficients(entry_values)

    def coefficients_for(self, mu, evaluator: EntryEvaluator) -> np.ndarray:
        """``beta(mu)`` via the callback (only the ``d`` selected entries are requested)."""
        vals = np.asarray(evaluator.entries(mu, self.entry_rows, self.entry_cols), dtype=float).ravel()
        if vals.shape != (self.n_terms,):
            raise EIMError(f"the entry evaluator returned shape {vals.shape}, expected ({self.n_terms},)")
        return self.coefficients(vals)

    def assemble(self, beta: np.ndarray):
        """``sum_k beta_k A(mu_{J_k})``: CSR (local rows) for matrices, ``(n_local,)`` for vectors."""
        beta = np.asarray(beta, dtype=float)
        if self.kind == "vector":
            return self.basis @ beta
        out = self.basis[0] * beta[0]
        for b, A in zip(beta[1:], self.basis[1:]):
            out = out + A * b
        return out.tocsr()

    def approximate(self, mu, evaluator: EntryEvaluator):
        return self.assemble(self.coefficients_for(mu, evaluator))


def _offset(comm, row_offset: int | None, n_local_rows: int, petsc_offset: int | None) -> int:
    """Global index of this rank's first row: given, from PETSc, or rank after rank."""
    if row_offset is not None:
        return int(row_offset)
    if petsc_offset is not None:
        return int(petsc_offset)
    return 0 if _dist.size(comm) == 1 else int(comm.exscan(n_local_rows) or 0)


def separate_matrices(matrices: Sequence, parameters=None, *, comm: MPI.Comm | None = None,
                      row_offset: int | None = None, n_cols: int | None = None, same_pattern: bool = False,
                      norm: str = "max", weights=None, tol: float = 0.0, rtol: float | None = None,
                      max_terms: int | None = None) -> Separation:
    """Separate ``A(mu)`` from the exported training matrices ``A(mu_1), ..., A(mu_m)``.

    ``matrices``: ``m`` matrices (scipy sparse / dense / PETSc Mat / Matrix Market path), all of the
    same global shape; distributed: this rank's row block of each (``row_offset`` its first global
    row; PETSc matrices carry it; default rank after rank). ``parameters``: ``(m, ...)`` training
    parameter values (checked for NaN, returned for the selected ones). ``same_pattern=True`` requires
    identical patterns (else the union is used, absent entries are 0). ``norm``, ``weights``,
    ``tol``, ``rtol``, ``max_terms``: see :func:`structrom.eim.greedy.eim_greedy` (weights per union entry).
    ``n_cols``: global column count when blocks are given as local row blocks of a rectangular
    shape (default: the block's column count). Collective over ``comm``.
    """
    msg = None
    if len(matrices) == 0:
        msg = "no training matrices given"
    raise_collectively(comm, msg)
    blocks, offsets, shapes = [], [], []
    msg = None
    try:
        for j, M in enumerate(matrices):
            A, off, shape = to_csr(M, name=f"matrix {j}")
            blocks.append(A)
            offsets.append(off)
            shapes.append(shape)
    except EIMError as exc:
        msg = str(exc)
    raise_collectively(comm, msg)
    local_shapes = [A.shape for A in blocks]
    if len(set(local_shapes)) != 1 or len(set(offsets)) != 1:
        first = next(j for j, s in enumerate(local_shapes) if s != local_shapes[0] or offsets[j] != offsets[0])
        msg = (f"training matrices have different shapes: matrix 0 is {shapes[0]}, matrix {first} is "
               f"{shapes[first]} (local blocks {local_shapes[0]} vs {local_shapes[first]}); all A(mu_j) must "
               "be exported with the same numbering")
    raise_collectively(comm, msg)
    is_petsc = _is_petsc_mat(matrices[0])
    offset = _offset(comm, row_offset, blocks[0].shape[0], offsets[0] if is_petsc else None)
    nc = int(n_cols if n_cols is not None else blocks[0].shape[1])
    n_rows = _dist.total_rows(comm, blocks[0].shape[0])
    pattern, S = pattern_samples(blocks, offset, (n_rows, nc), same_pattern)
    res = eim_greedy(S, comm=comm, ids=pattern.keys, norm=norm, weights=weights, tol=tol, rtol=rtol,
                     max_terms=max_terms, parameters=parameters)
    J = res.param_indices
    params = None if parameters is None else np.asarray(parameters)[J]
    return Separation(param_indices=J, parameters=params, entry_rows=res.point_ids // nc,
                      entry_cols=res.point_ids % nc, interpolation_matrix=res.F,
                      basis=[blocks[j] for j in J], row_offset=offset, shape=(n_rows, nc), greedy=res,
                      kind="matrix")


def separate_vectors(vectors, parameters=None, *, comm: MPI.Comm | None = None, row_offset: int | None = None,
                     norm: str = "max", weights=None, tol: float = 0.0, rtol: float | None = None,
                     max_terms: int | None = None) -> Separation:
    """Separate ``b(mu)`` from ``vectors`` ``(n_local, m)`` (column ``j`` = ``b(mu_j)`` at this rank's rows).

    The selected "entries" are rows ``i_l`` (``entry_cols`` all 0); ``basis`` is ``(n_local, d)``.
    """
    V, ids = None, None
    msg = None
    try:
        V = np.asarray(vectors, dtype=np.float64)
        if V.ndim != 2:
            msg = f"vectors must be 2-D (n_local, n_training), got shape {V.shape}"
    except (TypeError, ValueError) as exc:
        msg = f"vectors cannot be converted to a float array: {exc}"
    raise_collectively(comm, msg)
    offset = _offset(comm, row_offset, V.shape[0], None)
    ids = offset + np.arange(V.shape[0], dtype=np.int64)
    res = eim_greedy(V, comm=comm, ids=ids, norm=norm, weights=weights, tol=tol, rtol=rtol,
                     max_terms=max_terms, parameters=parameters)
    J = res.param_indices
    params = None if parameters is None else np.asarray(parameters)[J]
    n = _dist.total_rows(comm, V.shape[0])
    return Separation(param_indices=J, parameters=params, entry_rows=res.point_ids.copy(),
                      entry_cols=np.zeros(res.n_terms, dtype=np.int64), interpolation_matrix=res.F,
                      basis=V[:, J].copy(), row_offset=offset, shape=(n, 1), greedy=res, kind="vector")
