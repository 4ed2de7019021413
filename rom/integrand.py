"""The empirical cubature's integrand ``G`` ``(n_rows, n_local)`` at this rank's points, behind the few operations
the ECM (:func:`structrom.rom.reduced_quadrature.empirical_cubature`) needs: column norms, the FE integrals
``G w_FE``, score products ``G^T r`` and exact columns at given points.

Two forms. :class:`AssembledIntegrand` holds the matrix (any integrand, e.g. row-compressed). :class:`FactoredIntegrand`
holds the factors of the Galerkin internal-force integrand, row ``i n_s + s`` at point ``k``::

    G[(i, s), k] = eps(psi_i)(x_k) : sigma_s(x_k) = sum_c E[k, c, i] S[k, c, s]        (c: 6 Voigt components)

with ``E`` ``(n_local, 6, N)`` the modes' strains (engineering shears) and ``S`` ``(n_local, 6, n_s)`` the stress
snapshots (tensor shears, :mod:`structrom.rom.voigt`), and never forms ``G`` whole: a score product is one GEMM
``T = S R^T`` (``R`` = ``r`` as ``(N, n_s)``) per block of points plus ``score_k = sum_{c,i} E[k,c,i] T[k,c,i]``
(``12 N n_s`` flops per point, compute bound, against ``N n_s`` doubles read for the assembled matrix), and a column
is rebuilt from the point's factors (bitwise the assembled matrix's column). Its memory is that of the factors,
which the offline stage holds anyway: no ``N n_s x n_local`` matrix, no row compression (no ``R x R`` Gram).
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from structrom.mpi.collectives import allreduce, reproducible_weighted_row_sums
from structrom.rom.ecm_parts import ECMError, _all_finite

#: Integrand (or score-product temporary) entries formed at a time: 32 MiB of doubles.
BLOCK_ENTRIES = 4 * 2**20


def integrand_rows(eps_modes_local: np.ndarray, stress_local: np.ndarray) -> np.ndarray:
    """Integrand matrix of the Galerkin internal forces at a rank's points.

    ``eps_modes_local``: ``(n_local, 6, N)`` strains of the modes (Voigt, ENGINEERING shears);
    ``stress_local``: ``(n_local, 6, n_s)`` stress snapshots (Voigt, TENSOR shears), so that the Voigt
    dot product is the double contraction ``eps : sigma`` (:mod:`structrom.rom.voigt`).
    Returns ``G_local`` ``(N n_s, n_local)`` with row ``i n_s + s`` = ``eps(psi_i) : sigma_s``.
    """
    E, S = _factors(eps_modes_local, stress_local)
    n_local, _, n_modes = E.shape
    n_s = S.shape[2]
    # G[i, s, k] = sum_c E[k, c, i] S[k, c, s], vectorized over (s, k) for each (i, c): twice as fast as the
    # einsum (whose small per-point products do not vectorize), with the same sum order over c
    Et, St = np.ascontiguousarray(E.transpose(2, 1, 0)), np.ascontiguousarray(S.transpose(1, 2, 0))
    out = np.empty((n_modes, n_s, n_local))
    tmp = np.empty((n_s, n_local))
    for i in range(n_modes):
        np.multiply(St[0], Et[i, 0], out=out[i])
        for c in range(1, 6):
            out[i] += np.multiply(St[c], Et[i, c], out=tmp)
    return out.reshape(n_modes * n_s, n_local)


def _factors(eps_modes_local, stress_local) -> tuple[np.ndarray, np.ndarray]:
    E = np.asarray(eps_modes_local, dtype=float)
    S = np.asarray(stress_local, dtype=float)
    if E.ndim != 3 or E.shape[1] != 6:
        raise ECMError(f"eps_modes_local must have shape (n_local, 6, N_modes), got {E.shape}")
    if S.ndim != 3 or S.shape[1] != 6 or S.shape[0] != E.shape[0]:
        raise ECMError(f"stress_local must have shape ({E.shape[0]}, 6, n_snapshots) like eps_modes_local, "
                       f"got {S.shape}")
    return E, S


def _point_major(S: np.ndarray) -> np.ndarray:
    """``S`` ``(n, 6, n_s)`` as is when ``S.reshape(-1, n_s)`` is a view with unit-stride rows (what the GEMMs read),
    else a C-contiguous copy."""
    item = S.itemsize
    if S.strides[2] == item and S.strides[0] == 6 * S.strides[1] and S.strides[1] >= S.shape[2] * item:
        return S
    return np.ascontiguousarray(S)


class AssembledIntegrand:
    """``G`` ``(n_rows, n_local)`` held as a matrix (read only: never copied, except the float32 screening copy
    of :meth:`prepare_screening`)."""

    def __init__(self, G_local: np.ndarray) -> None:
        G = np.asarray(G_local, dtype=float)
        if G.ndim != 2:
            raise ECMError(f"G_local must be 2-D (n_rows, n_local_points), got shape {G.shape}")
        self.G = G
        self.G32: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.G.shape

    def non_finite(self) -> str | None:
        """None when every entry is finite, else what is not (for the error message)."""
        if _all_finite(self.G):
            return None
        n_nan, n_inf = int(np.count_nonzero(np.isnan(self.G))), int(np.count_nonzero(np.isinf(self.G)))
        return " and ".join(f"{k} at {v} entries" for k, v in (("NaN", n_nan), ("Inf", n_inf)) if v)

    def norms_and_max(self) -> tuple[np.ndarray, float]:
        """``(||G_k||^2 (n_local,), max_k ||G_k||)``."""
        norms = np.einsum("ij,ij->j", self.G, self.G)
        return norms, float(np.sqrt(norms.max())) if norms.size else 0.0

    def weighted_sums(self, comm: MPI.Comm, w: np.ndarray) -> np.ndarray:
        """``G w`` summed over ranks ``(n_rows,)``, independent of the distribution (pre-rounded sums)."""
        return reproducible_weighted_row_sums(comm, self.G, w)

    def prepare_screening(self, screening: str) -> str:
        """Score products in ``screening`` precision from now on ("float32": a half-size copy of ``G``); returns
        the precision used."""
        self.G32 = self.G.astype(np.float32) if screening == "float32" else None
        return screening

    def scores(self, r: np.ndarray, points: np.ndarray | None = None, exact: bool = False) -> np.ndarray:
        """``G^T r`` ``(n_local,)``, or ``(len(points),)`` at this rank's ``points`` only (in the screening
        precision; ``exact``: in double precision whatever the screening)."""
        G = self.G32 if self.G32 is not None and not exact else self.G
        if points is not None and 8 * len(points) > G.shape[1]:  # (many points: in place, no copy of their columns)
            return self.scores(r, None, exact)[points]
        G = G if points is None else G[:, points]
        return (G.T @ np.asarray(r, G.dtype)).astype(float)

    def columns(self, local: np.ndarray) -> np.ndarray:
        """``G[:, local]`` ``(n_rows, m)``, exact."""
        return self.G[:, local]

    def subset(self, local: np.ndarray) -> "AssembledIntegrand":
        """The integrand at this rank's points ``local`` only (a contiguous copy: repeated products over the same
        few points read it in place instead of gathering their columns every time)."""
        return AssembledIntegrand(np.ascontiguousarray(self.G[:, local]))

    def arrays(self) -> dict[str, np.ndarray]:
        """This integrand's own arrays (per point along axis 1), for the memory accounting."""
        return {"integrand": self.G.T, **({"integrand, float32": self.G32.T} if self.G32 is not None else {})}


class FactoredIntegrand:
    """The Galerkin internal-force integrand from its factors (module docstring): ``eps_modes`` ``(n_local, 6, N)``,
    ``stress`` ``(n_local, 6, n_s)`` (kept by reference, not copied, when float64 and C-contiguous, or a view of the
    first columns of such an array: :mod:`structrom.rom.stress_compression`)."""

    def __init__(self, eps_modes_local: np.ndarray, stress_local: np.ndarray) -> None:
        E, S = _factors(eps_modes_local, stress_local)
        self.E, self.S = np.ascontiguousarray(E), _point_major(S)
        self.n_modes, self.n_s = E.shape[2], S.shape[2]
        self.E32 = self.S32 = None
        self._sums: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_modes * self.n_s, self.E.shape[0]

    def _point_step(self) -> int:
        return max(1, BLOCK_ENTRIES // max(self.n_modes * self.n_s, 6 * max(self.n_modes, self.n_s), 1))

    def non_finite(self) -> str | None:
        bad = [f"{name} has NaN or Inf at {int(np.count_nonzero(~np.isfinite(a)))} entries"
               for name, a in (("the modes' strains", self.E), ("the stress snapshots", self.S))
               if not _all_finite(a.reshape(-1, a.shape[2]))]
        return "; ".join(bad) or None

    def norms_and_max(self) -> tuple[np.ndarray, float]:
        """``(||G_k||^2 (n_local,), max_k ||G_k||)``, from the points' 6 x 6 Gram
        matrices: ``||G_k||^2 = sum_{i,s} (E_k[:, i] . S_k[:, s])^2 = (E_k E_k^T) : (S_k S_k^T)`` (``36 (N + n_s)``
        flops per point instead of forming the ``N n_s`` entries; equal to the matrix's norms to round-off)."""
        n_local = self.E.shape[0]
        norms = np.empty(n_local)
        step = max(1, BLOCK_ENTRIES // max(36 + 6 * self.n_s, 1))
        for a in range(0, n_local, step):
            Ea, Sa = self.E[a:a + step], self.S[a:a + step]
            norms[a:a + step] = np.einsum("kcd,kcd->k", np.matmul(Ea, Ea.transpose(0, 2, 1)),
                                          np.matmul(Sa, Sa.transpose(0, 2, 1)))
        np.maximum(norms, 0.0, out=norms)
        return norms, float(np.sqrt(norms.max())) if n_local else 0.0

    def weighted_sums(self, comm: MPI.Comm, w: np.ndarray) -> np.ndarray:
        """``G w`` summed over ranks ``(N n_s,)``: ``sum_k w_k E_k^T S_k``, one GEMM ``(E w)^T S`` over the ``6 n_local``
        rows of both factors (by blocks of points) and one Allreduce. Unlike :class:`AssembledIntegrand`'s
        pre-rounded sums it depends on the partition at round-off (about ``eps sqrt(n_points)`` relative), which
        the ECM's tie bands absorb (the same points for any rank count, tests/mpi_programs/ecm_ranks.py); the
        pre-rounded sums would form ``G`` (``N n_s x n_local`` entries) twice. The last result is kept: the ECM
        and the validation weights ask for the same ``w``."""
        w = np.asarray(w, dtype=float)
        cached = self._sums is not None and self._sums[0].shape == w.shape and np.array_equal(self._sums[0], w)
        if comm.allreduce(bool(cached), op=MPI.LAND):  # (every rank alike: a rank may hold no point)
            return self._sums[1].copy()
        nz = np.flatnonzero(w)
        if len(nz) < len(w) // 2:  # a reduced rule: its points only (not cached)
            Ew = self.E[nz] * w[nz, None, None]
            return allreduce(comm, (Ew.reshape(-1, self.n_modes).T @ self.S[nz].reshape(-1, self.n_s)).ravel())
        out = np.zeros((self.n_modes, self.n_s))
        step = max(1, BLOCK_ENTRIES // max(6 * self.n_modes, 1))
        for a in range(0, self.E.shape[0], step):
            Ew = self.E[a:a + step] * w[a:a + step, None, None]
            out += Ew.reshape(-1, self.n_modes).T @ self.S[a:a + step].reshape(-1, self.n_s)
        out = allreduce(comm, out.ravel())
        self._sums = (w.copy(), out)
        return out.copy()

    def prepare_screening(self, screening: str) -> str:
        if screening == "float32":
            self.E32, self.S32 = self.E.astype(np.float32), self.S.astype(np.float32)
        else:
            self.E32 = self.S32 = None
        return screening

    def scores(self, r: np.ndarray, points: np.ndarray | None = None, exact: bool = False) -> np.ndarray:
        """``G^T r`` ``(n_local,)``, or ``(len(points),)`` at this rank's ``points`` only: per block of points,
        ``T = S R^T`` (one GEMM) and ``sum_{c,i} E T`` (in the screening precision; ``exact``: in double
        precision whatever the screening)."""
        E, S = (self.E32, self.S32) if self.S32 is not None and not exact else (self.E, self.S)
        if points is not None and 8 * len(points) > E.shape[0]:  # (many points: in place, no copy of their rows)
            return self.scores(r, None, exact)[points]
        if points is not None:
            E, S = E[points], S[points]
        R = np.asarray(r[:self.n_modes * self.n_s], dtype=S.dtype).reshape(self.n_modes, self.n_s)
        n_local = E.shape[0]
        out = np.empty(n_local)
        step = max(1, 2 * BLOCK_ENTRIES // max(6 * self.n_modes, 1))  # T: 64 MiB (float64); S is read in place
        for a in range(0, n_local, step):
            Sa = S[a:a + step]
            T = (Sa.reshape(-1, self.n_s) @ R.T).reshape(len(Sa), 6, self.n_modes)
            out[a:a + step] = np.einsum("kci,kci->k", E[a:a + step], T)
        return out

    def columns(self, local: np.ndarray) -> np.ndarray:
        """The exact columns ``(N n_s, m)`` at this rank's points ``local``."""
        return integrand_rows(self.E[local], self.S[local])

    def subset(self, local: np.ndarray) -> "FactoredIntegrand":
        """The integrand at this rank's points ``local`` only (contiguous copies of their factors: repeated products
        over the same few points read them in place instead of gathering their rows every time)."""
        return FactoredIntegrand(self.E[local], self.S[local])

    def arrays(self) -> dict[str, np.ndarray]:
        """The factors (the stage's own arrays, not copies; during the ECM, float32 copies besides: half of them)."""
        return {"integrand factor: mode strains": self.E, "integrand factor: stress snapshots": self.S,
                **({"integrand factor: stress snapshots, float32": self.S32} if self.S32 is not None else {})}


Integrand = AssembledIntegrand | FactoredIntegrand


def as_integrand(G_local) -> Integrand:
    """``G_local`` as an integrand: an :data:`Integrand` as is, an array as an :class:`AssembledIntegrand`."""
    return G_local if isinstance(G_local, (AssembledIntegrand, FactoredIntegrand)) else AssembledIntegrand(G_local)
