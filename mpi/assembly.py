"""Assembly of per-rank contributions into PETSc objects, and the reverse gathers.

Debian's petsc4py 3.18 has no COO assembly API, so matrices are built as follows: every rank holds COO
triplets (global row, global column, value) for the entries its elements produce; triplets are sent to
the rank owning the row (``MPI.Alltoallv``); each owner sums duplicates into scipy CSR arrays of its rows
and PETSc creates the MPIAIJ matrix from them, preallocated exactly. The communication pattern and the
CSR structure depend only on (rows, cols), so they are computed once by :class:`MatrixAssembler` and
only the values travel at later assemblies (one Newton iteration = one ``assemble`` call).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from structrom.mpi.petsc import PETSc


def _alltoallv(comm: MPI.Comm, send: np.ndarray, send_counts: np.ndarray, recv_counts: np.ndarray) -> np.ndarray:
    """Exchange a 1-D array grouped by destination rank; returns what this rank receives."""
    dtype = MPI.INT64_T if send.dtype == np.int64 else MPI.DOUBLE
    recv = np.empty(int(recv_counts.sum()), dtype=send.dtype)
    sdisp = np.concatenate([[0], np.cumsum(send_counts)[:-1]])
    rdisp = np.concatenate([[0], np.cumsum(recv_counts)[:-1]])
    comm.Alltoallv([send, (send_counts, sdisp), dtype], [recv, (recv_counts, rdisp), dtype])
    return recv


class MatrixAssembler:
    """Assembles COO contributions with a fixed (rows, cols) pattern into PETSc MPIAIJ matrices.

    ``rows``, ``cols``: ``(nnz_local,)`` global indices in PETSc numbering (this rank's contributions,
    duplicates allowed, rows possibly owned by other ranks); ``ranges``: ``(P + 1,)`` ownership
    ranges of rows (and columns) in that numbering; ``block_size``: PETSc block size (3 for 3D solids).
    """

    def __init__(self, comm: MPI.Comm, rows: np.ndarray, cols: np.ndarray, ranges: np.ndarray,
                 block_size: int = 1) -> None:
        self.comm = comm
        self.ranges = np.asarray(ranges, dtype=np.int64)
        self.block_size = block_size
        rank = comm.Get_rank()
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        self.n_owned = int(self.ranges[rank + 1] - self.ranges[rank])
        self.n_global = int(self.ranges[-1])
        if comm.Get_size() == 1:
            # Everything is owned here: no reordering, no exchange (saves two copies of the triplets).
            self._order = None
            self._send_counts = self._recv_counts = np.array([len(rows)], dtype=np.int64)
            r, c = rows, cols  # ranges[0] == 0
        else:
            dest = np.searchsorted(self.ranges, rows, side="right") - 1
            self._order = np.argsort(dest, kind="stable")
            self._send_counts = np.bincount(dest, minlength=comm.Get_size()).astype(np.int64)
            del dest
            self._recv_counts = np.empty_like(self._send_counts)
            comm.Alltoall(self._send_counts, self._recv_counts)
            r = _alltoallv(comm, rows[self._order], self._send_counts, self._recv_counts)
            r -= self.ranges[rank]
            c = _alltoallv(comm, cols[self._order], self._send_counts, self._recv_counts)
        # CSR structure of the owned rows (scipy sums duplicates and sorts the column indices).
        pattern = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(self.n_owned, self.n_global))
        pattern.sum_duplicates()
        # rows without their diagonal entry (dofs of nodes no element touches): a structural zero there, so that
        # Dirichlet elimination (zeroRowsColumns) can put its scale on the diagonal
        lost = np.flatnonzero(pattern.diagonal(k=int(self.ranges[rank])) == 0)
        if len(lost):
            pattern = pattern + sp.csr_matrix((np.ones(len(lost)), (lost, lost + self.ranges[rank])),
                                              shape=pattern.shape)
        pattern.sort_indices()
        self.indptr = pattern.indptr.astype(PETSc.IntType)
        self.indices = pattern.indices.astype(PETSc.IntType)
        # slot[k]: CSR position where received entry k is summed. Looked up by scipy's per-row binary
        # search (csr_sample_values on the canonical pattern holding its own positions), which is
        # cache-friendly, unlike a global searchsorted of row * n_global + col keys.
        pattern.data = np.arange(pattern.nnz, dtype=np.float64)  # exact: nnz < 2**53
        self._slot = np.asarray(pattern[r, c]).ravel().astype(np.intp) if len(r) else np.zeros(0, np.intp)

    def _owned_csr_values(self, values: np.ndarray) -> np.ndarray:
        """``(nnz_owned,)`` summed values of the owned rows' CSR entries from this rank's contributions."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        if self._order is None:
            v = values
        else:
            v = _alltoallv(self.comm, values[self._order], self._send_counts, self._recv_counts)
        return np.bincount(self._slot, weights=v, minlength=len(self.indices))

    def assemble(self, values: np.ndarray, into: PETSc.Mat | None = None) -> PETSc.Mat:
        """The assembled ``PETSc.Mat`` of ``(nnz_local,)`` values matching the pattern: a new matrix, or
        ``into`` (a matrix this assembler made) with every value overwritten and its pattern kept, so that
        a solver can keep its matrix, and preconditioners their set-up data, across assemblies."""
        data = self._owned_csr_values(values)
        if into is not None:
            into.setValuesCSR(self.indptr, self.indices, data, addv=False)
            into.assemble()
            return into
        size = (self.n_owned, self.n_global)
        mat = PETSc.Mat().createAIJ(size=(size, size), bsize=self.block_size,
                                    csr=(self.indptr, self.indices, data), comm=self.comm)
        # Dirichlet elimination (zeroRowsColumns) must keep the pattern for later overwrites.
        mat.setOption(PETSc.Mat.Option.KEEP_NONZERO_PATTERN, True)
        mat.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
        mat.assemble()
        return mat


def reduce_to_owners(comm: MPI.Comm, full: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Sum ``(n_global,)`` per-rank contributions over ranks; return this rank's owned slice."""
    counts = np.diff(np.asarray(ranges, dtype=np.int64))
    out = np.empty(int(counts[comm.Get_rank()]), dtype=np.float64)
    comm.Reduce_scatter([np.ascontiguousarray(full, dtype=np.float64), MPI.DOUBLE], [out, MPI.DOUBLE],
                        recvcounts=counts.tolist(), op=MPI.SUM)
    return out


def gather_to_all(comm: MPI.Comm, owned: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Concatenate every rank's owned slice into the full ``(n_global,)`` vector on all ranks."""
    ranges = np.asarray(ranges, dtype=np.int64)
    counts = np.diff(ranges)
    full = np.empty(int(ranges[-1]), dtype=np.float64)
    comm.Allgatherv(np.ascontiguousarray(owned, dtype=np.float64), [full, (counts, ranges[:-1]), MPI.DOUBLE])
    return full


def gather_rows_to_root(comm: MPI.Comm, index: np.ndarray, values: np.ndarray, n_rows: int,
                        root: int = 0) -> np.ndarray | None:
    """Place every rank's ``values[i]`` at row ``index[i]`` of an ``(n_rows, ...)`` array on ``root``.

    Used to write integration-point fields in the global point order. Returns None on other ranks.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    tail = values.shape[1:]
    width = int(np.prod(tail)) if tail else 1
    counts = np.array(comm.gather(len(index), root=root) or [], dtype=np.int64)
    if comm.Get_rank() == root:
        all_index = np.empty(int(counts.sum()), dtype=np.int64)
        all_values = np.empty(int(counts.sum()) * width, dtype=np.float64)
        comm.Gatherv(np.ascontiguousarray(index, dtype=np.int64), [all_index, counts, MPI.INT64_T], root=root)
        comm.Gatherv(values.ravel(), [all_values, counts * width, MPI.DOUBLE], root=root)
        out = np.full((n_rows,) + tail, np.nan)
        out[all_index] = all_values.reshape((len(all_index),) + tail)  # (no -1: tail may be empty-sized)
        return out
    comm.Gatherv(np.ascontiguousarray(index, dtype=np.int64), None, root=root)
    comm.Gatherv(values.ravel(), None, root=root)
    return None


def norm(comm: MPI.Comm, owned: np.ndarray) -> float:
    """Euclidean norm of a vector distributed by owned slices."""
    return float(np.sqrt(comm.allreduce(float(np.dot(owned, owned)), op=MPI.SUM)))
