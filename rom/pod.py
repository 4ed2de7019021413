"""Distributed POD of displacement snapshots in a weighted (mass / L2) inner product.

Offline stage of the ROM (Casenave et al., arXiv 1812.07228, distributed POD): the snapshot matrix is
never gathered; every rank holds the rows (dofs) touched by ITS elements and only small
``n_snapshots``-sized objects travel.

Data distribution (per rank):

* ``snapshots_local`` ``(n_local_rows, n_snapshots)``: snapshot values at the rank's rows. Rows may be
  shared between ranks (interface dofs appear on every rank whose elements touch them) and must then
  hold the same values there.
* the inner product is ``<u, v> = sum_ranks u_local^T W_local v_local`` with either

  - ``weight_local``: a symmetric PSD ``(n_local_rows, n_local_rows)`` matrix (scipy sparse or dense),
    typically the element-assembled consistent mass of the rank's elements restricted to its rows
    (no double counting of interface dofs because the mass is assembled element by element);
  - ``weight_local``: a 1-D ``(n_local_rows,)`` array of non-negative weights (a lumped / diagonal
    mass, also element-assembled);
  - ``weight_local=None`` and ``owned``: ``(n_local_rows,)`` bool mask; the Euclidean product over
    owned rows (every global row must be owned by exactly one rank). On a single rank ``owned`` may
    be omitted (all rows owned).

Methods (all return the same :class:`PODResult`):

* ``"gram"``: correlation ``C = sum_ranks S^T W S`` (Allreduce, ``n_s x n_s``), ``scipy.linalg.eigh``,
  modes ``S V Sigma^-1``. Cheapest; accurate for singular values down to ~``sqrt(eps)`` of the
  largest (the Gram matrix squares the condition number).
* ``"tsqr"``: tall-skinny QR of ``F^T S`` where ``W = F F^T`` (rank-local factor: sparse LDL^T without
  pivoting after a reverse Cuthill-McKee ordering, dense ``eigh`` fallback, trivial for a diagonal
  weight); the ``n_s x n_s`` R factors are Allgathered and QR-ed again identically on every rank; the
  SVD of the final R gives singular values accurate down to ~``eps`` relative.
* ``"randomized"``: randomized range finder (seeded Gaussian test matrix, identical on all ranks,
  oversampling, power iterations) in the weighted product, for many snapshots and few wanted modes.
* :class:`IncrementalPOD`: streaming (Brand-style) incremental SVD in the weighted product.

Truncation criterion (exact): with eigenvalues ``lambda_1 >= lambda_2 >= ...`` of the correlation
matrix (``lambda_i = sigma_i^2``), the number of modes is the smallest ``N`` such that::

    sum_{i > N} lambda_i <= tolerance^2 * sum_i lambda_i

i.e. the relative projection error of the snapshot set in the energy (Frobenius, weighted) sense
``sqrt(sum_j ||s_j - P s_j||^2 / sum_j ||s_j||^2) <= tolerance``; then ``N = min(N, max_modes)``.

Sign convention (deterministic, independent of the number of ranks when ``global_rows`` is given):
each mode is multiplied by +-1 so that its entry of largest magnitude is positive; entries within a
relative ``1e-8`` of the largest magnitude count as ties and the lowest global row among them decides.
Without ``global_rows`` the rows are numbered rank after rank (deterministic for a fixed rank count
only). Modes of (numerically) repeated singular values are not unique; nothing can make them so.

Every retained mode set is re-orthonormalized by one weighted Cholesky-QR pass (``Phi R^-1`` with
``R^T R = Phi^T W Phi``), which removes the loss of orthogonality of ``S V Sigma^-1`` for small
singular values without changing the spanned spaces of the leading modes.

Modules: :mod:`structrom.rom.pod_truncation` (:class:`PODResult`, :class:`PODError`, the truncation rule),
:mod:`structrom.rom.pod_product` (the distributed weighted product, the checks of the snapshots),
:mod:`structrom.rom.pod_modes` (re-orthonormalization, signs), :mod:`structrom.rom.pod_batch` (:func:`pod`:
Gram, TSQR, randomized), :mod:`structrom.rom.pod_incremental` (:class:`IncrementalPOD`, :func:`update_pod`).
Every name is importable from here.
"""
from __future__ import annotations

from structrom.rom.pod_batch import METHODS, _pod_gram, _pod_randomized, _pod_tsqr, pod  # noqa: F401 (re-exported)
from structrom.rom.pod_incremental import IncrementalPOD, update_pod  # noqa: F401 (re-exported)
from structrom.rom.pod_modes import (  # noqa: F401 (re-exported)
    SIGN_TIE_RTOL, _finish, _fix_signs, _orthonormal_basis, _reorthonormalize)
from structrom.rom.pod_product import (  # noqa: F401 (re-exported)
    BLOCK_BYTES, DENSE_FACTOR_LIMIT, _half_factor, _Product, _raise_collectively, _validate_snapshots)
from structrom.rom.pod_truncation import (  # noqa: F401 (re-exported)
    EPS, PODError, PODResult, _check_tolerance, _outside, _truncation)
