"""Physics-informed clustering of training loadings and the a priori efficiency criterion of a dictionary of
local reduced bases (Daniel, Casenave, Akkari, Ryckelynck: "Model order reduction assisted by deep neural
networks (ROM-net)" and "Physics-informed cluster analysis and a priori efficiency criterion for the
construction of local reduced-order bases").

* Each training loading ``i`` is summarized by the subspace ``V_i`` spanned by the first ``r`` POD modes of
  its own displacement snapshots (mass-orthonormal, :func:`structrom.rom.pod.pod`, rows spread over ranks).
* Dissimilarity: the geodesic Grassmann distance ``d(V_i, V_j) = sqrt(sum_k theta_k^2)`` with the principal
  angles ``cos theta_k = sigma_k(V_i^T M V_j)`` (Bjorck and Golub); subspaces of different dimension add
  ``pi / 2`` per missing direction.
* Clusters: k-medoids (PAM, build + swap) on the precomputed distance matrix (scikit-learn-extra).
* A priori criterion: at the POD tolerance ``eps`` of the local models, the global basis needs ``N_g(eps)``
  modes and cluster ``c`` needs ``N_c(eps)``; the online cost of a reduced model grows with its number of
  modes (and its ECM points, of the order of the modes times the snapshots' integrand rank), so the dictionary
  is predicted to beat the global model when ``max_c N_c(eps) < N_g(eps)``; at equal size ``N = max_c N_c``
  the projection errors ``e_g(N)`` (global) and ``max_c e_c(N)`` say how much accuracy it buys.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from structrom.rom.pod import pod


def case_subspaces(comm, snapshots: list[np.ndarray], mass_local, rows: np.ndarray, dim: int) -> list[np.ndarray]:
    """``[V_i]``: this rank's rows ``(n_local, r_i <= dim)`` of the first ``dim`` mass-orthonormal POD modes of
    each case's snapshots ``(n_local, n_inc_i)``. Collective."""
    out = []
    for S in snapshots:
        res = pod(comm, S, weight_local=mass_local, tolerance=1e-12, max_modes=dim, method="gram", global_rows=rows)
        out.append(res.modes_local)
    return out


def grassmann_distances(comm, bases_a: list[np.ndarray], bases_b: list[np.ndarray] | None, mass_local) -> np.ndarray:
    """``(len(a), len(b))`` geodesic Grassmann distances between the mass-orthonormal subspaces (``b = a`` when
    None). ``V_i^T M V_j`` is summed over ranks (each element's mass is on one rank only). Collective."""
    sym = bases_b is None
    bases_b = bases_a if sym else bases_b
    A = np.concatenate(bases_a, axis=1)
    B = np.concatenate(bases_b, axis=1)
    G = A.T @ (mass_local @ B)
    G = G if comm is None or comm.Get_size() == 1 else comm.allreduce(G)
    ia = np.concatenate([[0], np.cumsum([b.shape[1] for b in bases_a])])
    ib = np.concatenate([[0], np.cumsum([b.shape[1] for b in bases_b])])
    D = np.zeros((len(bases_a), len(bases_b)))
    for i in range(len(bases_a)):
        for j in range(len(bases_b)):
            block = G[ia[i]:ia[i + 1], ib[j]:ib[j + 1]]
            s = np.linalg.svd(block, compute_uv=False) if block.size else np.zeros(0)
            theta = np.arccos(np.clip(s, 0.0, 1.0))
            missing = abs(block.shape[0] - block.shape[1])
            D[i, j] = np.sqrt(np.sum(theta ** 2) + missing * (np.pi / 2) ** 2)
    if sym:
        D = 0.5 * (D + D.T)
        np.fill_diagonal(D, 0.0)
    return D


def k_medoids(D: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PAM k-medoids on a precomputed distance matrix ``(n, n)``: ``(medoids (k,), labels (n,))``, clusters
    numbered in increasing medoid index (deterministic: build initialization, no random state)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scikit-learn-extra 0.3 imports distutils' LooseVersion
        try:
            from sklearn_extra.cluster import KMedoids
        except ImportError as exc:
            raise ImportError(f"the dictionary's clustering needs scikit-learn-extra ({exc}): "
                              "pip install 'structrom[offline]'") from None

    n = len(D)
    if not 1 <= k <= n:
        raise ValueError(f"dictionary.clusters = {k}: need 1 <= clusters <= number of training loadings ({n})")
    km = KMedoids(n_clusters=k, metric="precomputed", method="pam", init="build", max_iter=300).fit(D)
    medoids = np.sort(np.asarray(km.medoid_indices_, dtype=np.int64))
    labels = np.argmin(D[:, medoids], axis=1)
    return medoids, labels


def overlapping_members(D: np.ndarray, medoids: np.ndarray, labels: np.ndarray, overlap: float) -> list[np.ndarray]:
    """Training loadings of each local model: its cluster plus, with ``overlap > 0``, every loading ``i`` with
    ``d(i, medoid_c) <= (1 + overlap) d(i, own medoid)`` (overlapping clusters, as for local reduced bases in
    Amsallem, Zahr, Farhat 2012: the local models also see the loadings near their cluster's boundary)."""
    own = D[np.arange(len(D)), medoids[labels]]
    return [np.flatnonzero((labels == c) | (D[:, m] <= (1.0 + overlap) * own)) for c, m in enumerate(medoids)]


def modes_for(eigenvalues: np.ndarray, tolerance: float) -> int:
    """Smallest ``N`` with ``sum_{i > N} lambda_i <= tolerance^2 sum_i lambda_i`` (the POD truncation)."""
    lam = np.sort(np.asarray(eigenvalues, dtype=float))[::-1]
    total = lam.sum()
    if total <= 0:
        return 0
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # tails[N] = sum_{i >= N} lambda_i
    return int(np.flatnonzero(tails <= tolerance ** 2 * total)[0])


def projection_error(eigenvalues: np.ndarray, n_modes: int) -> float:
    """Relative projection error of the snapshots on their first ``n_modes`` POD modes."""
    lam = np.sort(np.asarray(eigenvalues, dtype=float))[::-1]
    total = lam.sum()
    return float(np.sqrt(lam[n_modes:].sum() / total)) if total > 0 else 0.0


@dataclass
class EfficiencyCriterion:
    """The a priori criterion (module docstring): ``global_modes`` ``N_g``, ``local_modes`` ``[N_c]``,
    ``global_error_at_local_size`` ``e_g(max N_c)``, ``local_errors`` ``[e_c(N_c)]``."""

    tolerance: float
    global_modes: int
    local_modes: list[int]
    global_error_at_local_size: float
    local_errors: list[float]

    @property
    def ratio(self) -> float:
        """``N_g / max_c N_c``: above 1 the local models are smaller at the same projection error."""
        return self.global_modes / max(max(self.local_modes), 1)

    @property
    def beneficial(self) -> bool:
        return max(self.local_modes) < self.global_modes

    def as_dict(self) -> dict:
        return {"tolerance": self.tolerance, "global_modes": self.global_modes, "local_modes": self.local_modes,
                "global_error_at_local_size": self.global_error_at_local_size, "local_errors": self.local_errors,
                "ratio": self.ratio, "beneficial": self.beneficial}


def efficiency_criterion(comm, snapshots: list[np.ndarray], members: list[np.ndarray], mass_local,
                         rows: np.ndarray, tolerance: float) -> EfficiencyCriterion:
    """POD spectra of all snapshots and of each local model's training snapshots (``members[c]``: indices of
    its cases; snapshots ``(n_local, n_inc_i)`` per case), then the criterion at ``tolerance``. Collective."""
    def spectrum(parts: list[np.ndarray]) -> np.ndarray:
        S = np.concatenate(parts, axis=1)
        return pod(comm, S, weight_local=mass_local, tolerance=tolerance, method="gram", global_rows=rows).eigenvalues

    lam_g = spectrum(snapshots)
    lam_c = [spectrum([snapshots[i] for i in idx]) for idx in members]
    n_g = modes_for(lam_g, tolerance)
    n_c = [modes_for(lam, tolerance) for lam in lam_c]
    return EfficiencyCriterion(tolerance, n_g, n_c, projection_error(lam_g, max(n_c)),
                               [projection_error(lam, n) for lam, n in zip(lam_c, n_c)])
