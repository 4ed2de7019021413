"""Compression of the factored integrand's stress side: the ECM runs on ``m < n_s`` rotated stress snapshots.

The Galerkin internal-force integrand (:class:`structrom.rom.integrand.FactoredIntegrand`) has rows ``(i, s)``,
``G[(i, s), k] = sum_c E[k, c, i] S[k, c, s]``. For an orthogonal ``V`` ``(n_s, n_s)`` the rotated snapshots
``S V`` give the rows ``(I_N (x) V^T) G``: the same column norms, score products and residual norms, so the
ECM (:func:`structrom.rom.reduced_quadrature.empirical_cubature`) selects the same points on either. ``V`` is chosen
so that the rows' energy concentrates in the leading columns: the eigenvectors of

    C = sum_k G_k^T G_k = sum_k S_k^T (E_k E_k^T) S_k          (n_s x n_s; G_k = E_k^T S_k, N x n_s)

(``E_k`` ``(6, N)``, ``S_k`` ``(6, n_s)`` at point ``k``), descending. Then, exactly (Eckart-Young for this
structured row space),

    ||G - (I (x) V_m V_m^T) G||_F^2 = sum_{j > m} lambda_j,

and ``m`` is the least with ``sqrt(sum_{j > m} lambda_j / sum_j lambda_j) <= tolerance`` (the relative energy
error, as in :func:`structrom.rom.row_compression.compress_rows`). The score products cost ``12 N m`` flops per
point instead of ``12 N n_s``, and the QR of the selected columns works on ``N m`` rows.

The discarded rows are kept (``S V`` is stored whole, in the snapshots' own buffer when they may be overwritten:
no memory beyond them), so that the rule found on the leading rows is checked on all rows
(:func:`structrom.rom.offline.cubature.reduced_rule`): the residual over all rows is
``sqrt(||r_leading||^2 + ||r_discarded||^2)``, and the ECM continues on all rows when it is above the tolerance.
``C`` costs one pass over the points (``6 n_s (6 + n_s)`` multiply-adds per point), its eigendecomposition
``O(n_s^3)`` on every rank (``n_s`` snapshots: not the ``(N n_s)^2`` Gram of a general row compression).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.mpi.collectives import allreduce
from structrom.rom.ecm_parts import ECMError, _raise_collectively
from structrom.rom.integrand import BLOCK_ENTRIES, FactoredIntegrand
from structrom.rom.pod_truncation import _truncation


@dataclass
class StressCompression:
    """``rotation``: ``V`` ``(n_s, n_s)`` orthogonal (each column's largest-magnitude entry positive);
    ``eigenvalues``: ``(n_s,)`` of ``C``, descending; ``rank``: the leading columns kept ``m``;
    ``energy_error``: ``sqrt(discarded / total)``; ``tolerance``: the one asked."""

    rotation: np.ndarray
    eigenvalues: np.ndarray
    rank: int
    energy_error: float
    tolerance: float

    @property
    def relative_gap(self) -> float:
        """``(lambda_m - lambda_{m+1}) / lambda_1`` at the truncation (1 when nothing is discarded): the kept
        subspace moves by about ``eps / relative_gap`` under round-off in ``C`` (Davis-Kahan)."""
        lam = self.eigenvalues
        return 1.0 if self.rank >= len(lam) else float((lam[self.rank - 1] - lam[self.rank]) / lam[0])

    def summary(self) -> dict:
        return {"method": "stress rotation", "rank": self.rank, "snapshots": int(self.rotation.shape[0]),
                "energy_error": self.energy_error, "tolerance": self.tolerance, "relative_gap": self.relative_gap}


class CompressedIntegrand(FactoredIntegrand):
    """The factored integrand on the leading ``m`` rotated stress snapshots (its rows ``(i, j)``, ``j < m``: what
    the ECM sees), with the discarded ones kept for the check on all rows (:meth:`discarded`, :meth:`full`).
    ``rotated``: ``S V`` ``(n_local, 6, n_s)``; the leading factor is a view of its first ``m`` columns."""

    def __init__(self, eps_modes_local: np.ndarray, rotated: np.ndarray, compression: StressCompression) -> None:
        m = compression.rank
        super().__init__(eps_modes_local, rotated[:, :, :m])
        self.rotated = rotated
        self.compression = compression

    def discarded(self) -> FactoredIntegrand:
        """The integrand of the discarded rows (``(N (n_s - m), n_local)``; a view of the rotated snapshots)."""
        return FactoredIntegrand(self.E, self.rotated[:, :, self.compression.rank:])

    def full(self) -> FactoredIntegrand:
        """All rows ``(I (x) V^T) G`` (``(N n_s, n_local)``): the ECM on it is the ECM on ``G``."""
        return FactoredIntegrand(self.E, self.rotated)

    def arrays(self) -> dict[str, np.ndarray]:
        out = super().arrays()
        out["integrand factor: stress snapshots"] = self.rotated  # the leading view is part of it
        return out


def compress_stress(comm: MPI.Comm | None, eps_modes_local: np.ndarray, stress_local: np.ndarray, tolerance: float,
                    overwrite: bool = False) -> CompressedIntegrand:
    """The integrand ``eps(psi_i) : sigma_s`` on the leading rotated stress snapshots (module docstring; collective).

    ``eps_modes_local`` ``(n_local, 6, N)`` (engineering shears), ``stress_local`` ``(n_local, 6, n_s)`` (tensor
    shears, :mod:`structrom.rom.voigt`), ``tolerance`` in (0, 1): the relative energy error of the discarded rows.
    ``overwrite``: rotate the snapshots in their own buffer (C-contiguous float64 only; the caller's array then
    holds ``S V``), else into a new one. Raises :class:`ECMError` on every rank for bad input."""
    comm = MPI.COMM_SELF if comm is None else comm
    message = None
    if not (isinstance(tolerance, (int, float, np.floating)) and 0.0 < float(tolerance) < 1.0):
        message = f"the stress compression's tolerance must be in (0, 1), got {tolerance!r}"
    _raise_collectively(comm, message)
    G = FactoredIntegrand(eps_modes_local, stress_local)  # validates the shapes
    E, S = G.E, G.S
    n_local, _, n_s = S.shape
    C = np.zeros((n_s, n_s))
    step = max(1, BLOCK_ENTRIES // max(6 * n_s, 1))
    for a in range(0, n_local, step):
        Ek, Sk = E[a:a + step], S[a:a + step]
        W = np.matmul(Ek, Ek.transpose(0, 2, 1))  # E_k E_k^T (6 x 6 per point)
        C += Sk.reshape(-1, n_s).T @ np.matmul(W, Sk).reshape(-1, n_s)
    C = allreduce(comm, C.ravel()).reshape(n_s, n_s)
    C = 0.5 * (C + C.T)
    lam, V = sla.eigh(C)  # the same input on every rank: the same factors
    lam, V = np.maximum(lam[::-1], 0.0), np.ascontiguousarray(V[:, ::-1])  # (a reversed view: no BLAS for it)
    V *= np.where(V[np.argmax(np.abs(V), axis=0), np.arange(n_s)] < 0, -1.0, 1.0)
    total = float(lam.sum())
    if not total > 0.0:
        raise ECMError("the integrand eps(psi_i) : sigma_s vanishes at every point (zero modes' strains or zero "
                       "stress snapshots): nothing to integrate")
    m = _truncation(lam, total, float(tolerance), None)  # the POD's rule: discarded energy <= tolerance^2 total
    comp = StressCompression(V, lam, m, float(np.sqrt(lam[m:][::-1].sum() / total)), float(tolerance))
    own = overwrite and S is stress_local
    out = S if own else np.empty_like(S)
    for a in range(0, n_local, step):  # S V by blocks of points (in place when own: each block read, then written)
        blk = S[a:a + step].reshape(-1, n_s) @ V
        out[a:a + step] = blk.reshape(-1, 6, n_s)
    return CompressedIntegrand(E, out, comp)
