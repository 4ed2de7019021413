"""Row compression of a distributed integrand: the leading left singular vectors of ``G`` from the Allreduced
Gram matrix ``G G^T`` (:func:`compress_rows`; above ``max_gram_rows`` rows, :mod:`structrom.rom.row_sketch`).
The ECM (:mod:`structrom.rom.reduced_quadrature`) may then run on ``U_r^T G``; see :func:`compress_rows` for the
error bound.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.rom.ecm_parts import EPS, ECMError, _all_finite, _raise_collectively


@dataclass
class RowCompression:
    """Orthonormal basis of the row space of ``G`` (see :func:`compress_rows`).

    ``basis``: ``(n_rows, r)`` ``U_r`` (orthonormal columns, each with its largest-magnitude entry
    positive); ``singular_values``: ``(r,)`` retained singular values of ``G``, descending;
    ``eigenvalues``: ``(m,)`` the eigenvalues of ``sum_ranks G G^T`` above round-off (``m`` = numerical
    rank, ``r <= m``); ``energy_error``: ``sqrt(discarded / total)`` with ``total = trace(sum G G^T)``
    (relative Frobenius error of ``U_r U_r^T G``, round-off eigenvalues counted as discarded);
    ``compressed_local``: ``(r, n_local)`` ``U_r^T G_local`` when the input was an array or a sequence
    of chunks (concatenated along the points), None for a one-shot iterator (then use :meth:`project`).
    """

    basis: np.ndarray
    singular_values: np.ndarray
    eigenvalues: np.ndarray
    energy_error: float
    compressed_local: np.ndarray | None = None
    #: "gram" (:func:`compress_rows`) or "randomized" (:func:`structrom.rom.row_sketch.sketch_rows`, whose
    #: range had ``range_rank`` columns before the truncation)
    method: str = "gram"
    range_rank: int | None = None

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def project(self, G_local: np.ndarray) -> np.ndarray:
        """``U_r^T G_local``: ``(n_rows, n) -> (r, n)``."""
        G = np.asarray(G_local, dtype=float)
        if G.ndim != 2 or G.shape[0] != self.basis.shape[0]:
            raise ECMError(f"G_local must have shape ({self.basis.shape[0]}, n_points), got {G.shape}")
        return self.basis.T @ G


def compress_rows(comm: MPI.Comm | None,
                  G_chunks: Iterable[np.ndarray] | np.ndarray | Callable[[], Iterable[np.ndarray]],
                  tolerance: float) -> RowCompression:
    """Orthonormal basis ``U_r`` of the row space of the distributed ``G`` and ``U_r^T G_local``.

    ``G_chunks``: this rank's ``(n_rows, n_local)`` array, or an iterable of ``(n_rows, n_j)`` chunks of
    its columns (points), e.g. produced element block by element block, or a function returning a fresh
    such iterable (then the chunks are made twice, once for ``C`` and once for ``U_r^T G``, which is
    written block by block into one ``(r, n_local)`` array: the uncompressed ``G`` never exists whole);
    ``tolerance`` in (0, 1).
    ``C = sum_ranks sum_chunks G_j G_j^T`` ``(n_rows, n_rows)`` (upper triangle, BLAS ``syrk``) is
    Allreduced and ``eigh``-ed on every rank (two ``n_rows^2`` arrays per rank, whatever the rank count); ``r`` is the smallest number with ``sum_{i>r} lambda_i <= tolerance^2 sum_i lambda_i``
    (relative Frobenius energy of the discarded part). The Gram matrix squares the condition number:
    eigenvalues below ``~ n_rows eps lambda_1`` are round-off, so tolerances below ``~1e-7`` are not
    resolved. Returns a :class:`RowCompression` (``compressed_local = U_r^T G_local`` ``(r, n_local)``
    unless the chunks came from a one-shot iterator).

    Why the ECM on ``Gt = U_r^T G`` still controls the quadrature error of ``G``: for any weights
    ``w`` and ``d = w - w_FE``, the orthogonal splitting ``G = P G + (I - P) G`` (``P = U_r U_r^T``) gives
    exactly ``||G d||^2 = ||Gt d||^2 + ||(I - P) G d||^2``. The first term is what the ECM makes small
    (``<= tol_ecm ||U_r^T b|| <= tol_ecm ||b||``). The second is the truncation: ``||(I - P) G d|| <=
    sum_k |d_k| ||(I - P) G_k|| <= ||d||_1 max_k ||(I - P) G_k||``, and every column's discarded part is
    bounded by the discarded energy, ``||(I - P) G_k|| <= ||(I - P) G||_F <= tolerance ||G||_F``. With
    non-negative weights and the constant row, ``||d||_1 <= sum w + sum w_FE ~ 2 V``. So the error on
    ``G`` is the ECM's plus a truncation term proportional to ``tolerance`` (the Frobenius bound is
    pessimistic: the discarded part is spread over all points, while only the few selected points and
    the FE average matter). Measured on FE internal-force integrands, the error on ``G`` is about
    ``sqrt(ecm^2 + energy_error^2)``: compressing at ``tol / 10`` and running the ECM at ``0.9 tol``
    meets ``tol`` on ``G``; measure it (``||G (w - w_FE)||``, one Allreduce) when it matters.
    Across rank counts, ``C`` differs by the round-off of the Allreduce; trailing basis vectors near
    the cut amplify it by ``lambda_1 / gap``, so the ECM on compressed rows reproduces points but its
    weights only to ~1e-9 (uncompressed: bit for bit).
    Also ``U_r^T`` is injective on the row space kept, so no integrand combination with significant
    energy is lost; signs or rotations of ``U_r`` do not change the ECM's choices (its scores
    ``G_k^T P r`` depend on the subspace only).
    """
    comm = MPI.COMM_SELF if comm is None else comm
    if not (isinstance(tolerance, (int, float, np.floating)) and 0.0 < float(tolerance) < 1.0):
        raise ECMError(f"tolerance must be in (0, 1) (relative energy of the discarded rows), got {tolerance!r}")
    factory = G_chunks if callable(G_chunks) else None
    keep_chunks = factory is not None or isinstance(G_chunks, np.ndarray) or isinstance(G_chunks, Sequence)
    chunks = factory() if factory is not None else [G_chunks] if isinstance(G_chunks, np.ndarray) else G_chunks
    C = None
    n_rows = None
    n_cols = 0
    message = None
    for j, chunk in enumerate(chunks):
        A = np.asarray(chunk, dtype=float)
        if A.ndim != 2:
            message = f"G_chunks[{j}] must be 2-D (n_rows, n_points), got shape {A.shape}"
            break
        if n_rows is None:
            n_rows = A.shape[0]
            C = np.zeros((n_rows, n_rows), order="F")
        if A.shape[0] != n_rows:
            message = f"G_chunks[{j}] has {A.shape[0]} rows, earlier chunks had {n_rows}"
            break
        if not _all_finite(A):
            message = f"G_chunks[{j}] contains NaN or Inf at {int(np.count_nonzero(~np.isfinite(A)))} entries"
            break
        n_cols += A.shape[1]
        if A.shape[1]:  # C += A A^T, upper triangle (A.T is Fortran-ordered: no copy)
            C = sla.blas.dsyrk(1.0, np.asarray(A.T, order="F"), beta=1.0, c=C, trans=1, lower=0, overwrite_c=1)
    _raise_collectively(comm, message)
    rows = comm.allgather(n_rows)
    known = {r for r in rows if r is not None}
    if len(known) != 1:
        raise ECMError(f"G_chunks must have the same number of rows on every rank (got {rows}; a rank "
                       "without points may pass an empty (n_rows, 0) array)" if known else
                       "G_chunks is empty on every rank")
    n_rows = known.pop()
    if C is None:
        C = np.zeros((n_rows, n_rows), order="F")
    if comm.Get_size() > 1:
        comm.Allreduce(MPI.IN_PLACE, C, op=MPI.SUM)
    total = float(np.trace(C))
    lam, V = sla.eigh(C, lower=False, overwrite_a=True, check_finite=False)
    del C
    lam, V = lam[::-1], V[:, ::-1]
    if not len(lam) or lam[0] <= 0:
        raise ECMError("G is zero on every rank: nothing to compress")
    lam = np.maximum(lam, 0.0)
    n_above = int(np.count_nonzero(lam > EPS * lam[0] * max(n_rows, 1)))  # the rest is round-off
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # all of them, round-off ones included
    ok = np.flatnonzero(tails[: n_above + 1] <= tolerance ** 2 * total)
    r = max(1, int(ok[0]) if ok.size else n_above)
    U = np.ascontiguousarray(V[:, :r])
    del V
    big = np.argmax(np.abs(U), axis=0)  # deterministic signs (the rows are global)
    U *= np.where(U[big, np.arange(r)] < 0, -1.0, 1.0)
    compressed = None
    if keep_chunks:
        compressed = np.empty((r, n_cols))
        j = 0
        for c in (factory() if factory is not None else chunks):
            c = np.asarray(c, dtype=float)
            np.matmul(U.T, c, out=compressed[:, j:j + c.shape[1]])
            j += c.shape[1]
    outside = total - float(tails[0])  # trace vs sum of the eigenvalues: zero up to round-off
    discarded = float(tails[r]) + (outside if outside > 64 * EPS * total else 0.0)
    return RowCompression(U, np.sqrt(lam[:r]), lam[:n_above], float(np.sqrt(discarded / total)), compressed)
