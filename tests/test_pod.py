"""Distributed POD (structrom.rom.pod): known spectra, truncation, methods agreement, ill-conditioning, MPI ranks."""
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
from mpi4py import MPI

from structrom.rom.pod import IncrementalPOD, PODError, pod

SELF = MPI.COMM_SELF
N_ROWS = 300


@pytest.fixture(scope="module")
def weight():
    """A random sparse SPD weight (stands in for a mass matrix) and its dense Cholesky factor."""
    A = sp.random(N_ROWS, N_ROWS, density=0.02, random_state=1)
    W = (A @ A.T + sp.identity(N_ROWS)).tocsr()
    return W, np.linalg.cholesky(W.toarray())


def synthetic(L, s, n_s, seed=0):
    """``U diag(s) V^T`` with ``U^T W U = I`` (``W = L L^T``) and ``V`` orthonormal."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((L.shape[0], len(s))))
    U = sla.solve_triangular(L.T, Q, lower=False)
    V, _ = np.linalg.qr(rng.standard_normal((n_s, len(s))))
    return U @ np.diag(s) @ V.T, U


def run_all(S, W, tolerance, max_modes=None):
    out = {m: pod(SELF, S, W, tolerance=tolerance, method=m, max_modes=max_modes)
           for m in ("gram", "tsqr", "randomized")}
    inc = IncrementalPOD(SELF, W, tolerance=tolerance, max_modes=max_modes, update_tolerance=tolerance / 100)
    for j in range(0, S.shape[1], 7):
        inc.update(S[:, j:j + 7])
    out["incremental"] = inc.result()
    return out


def test_known_spectrum_all_methods(weight):
    W, L = weight
    s = np.logspace(0, -2, 8)
    S, U = synthetic(L, s, 30)
    results = run_all(S, W, tolerance=1e-8)
    ref = results["gram"]
    for name, r in results.items():
        assert r.n_modes == 8, name
        assert np.max(np.abs(r.singular_values - s)) < 1e-10, name
        G = r.modes_local.T @ (W @ r.modes_local)
        assert np.max(np.abs(G - np.eye(8))) < 1e-12, name
        # same subspace as the generating U (principal angles ~ 0) and as gram's, same signs
        B = sla.cholesky(W.toarray(), lower=True).T  # W = B^T B: Euclidean image of the W-product
        angles = sla.subspace_angles(B @ r.modes_local, B @ U)
        assert np.max(angles) < 1e-8, name
        assert np.max(np.abs(r.singular_values - ref.singular_values)) < 1e-8, name
        assert np.max(np.abs(r.modes_local - ref.modes_local)) < 1e-8 * np.max(np.abs(ref.modes_local)), name


def test_truncation_matches_energy_criterion_and_bounds_projection_error(weight):
    W, L = weight
    s = np.array([1.0, 0.5, 0.2, 0.1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4])
    S, _ = synthetic(L, s, 40, seed=3)
    lam = s ** 2
    for tol in (0.5, 0.1, 0.03, 1e-2, 2e-3, 1e-5):
        tails = np.array([lam[n:].sum() for n in range(len(lam) + 1)])
        expected = int(np.flatnonzero(tails <= tol ** 2 * lam.sum())[0])
        for method in ("gram", "tsqr", "randomized"):
            r = pod(SELF, S, W, tolerance=tol, method=method)
            assert r.n_modes == expected, (tol, method, r.n_modes, expected)
            assert abs(r.relative_energy_error() - np.sqrt(tails[expected] / lam.sum())) < 1e-8
            Phi = r.modes_local
            E = S - Phi @ (Phi.T @ (W @ S))  # W-orthogonal projection of every snapshot
            err2 = np.einsum("ij,ij->j", E, W @ E)
            norm2 = np.einsum("ij,ij->j", S, W @ S)
            assert err2.sum() <= tol ** 2 * norm2.sum() * (1 + 1e-8)
            assert np.sqrt(err2.sum() / norm2.sum()) == pytest.approx(r.relative_energy_error(), rel=1e-6, abs=1e-12)
    capped = pod(SELF, S, W, tolerance=1e-5, max_modes=3)
    assert capped.n_modes == 3 and len(capped.eigenvalues) == 10


def test_tsqr_recovers_small_singular_values_that_gram_loses(weight):
    W, L = weight
    s = np.logspace(0, -10, 20)
    S, _ = synthetic(L, s, 25, seed=5)
    small = s < 1e-8
    errors = {}
    for method in ("gram", "tsqr"):
        r = pod(SELF, S, W, tolerance=1e-12, method=method)
        computed = np.zeros(20)
        k = min(20, len(r.eigenvalues))
        computed[:k] = np.sqrt(r.eigenvalues[:k])
        errors[method] = np.abs(computed - s)[small] / s[small]
    assert np.min(errors["gram"]) > 0.5  # dropped as round-off (or noise of size sqrt(eps))
    assert np.max(errors["tsqr"]) < 1e-4


def test_euclidean_owned_and_lumped_weights():
    rng = np.random.default_rng(2)
    S = rng.standard_normal((50, 6)) @ np.diag([1, 0.5, 0.2, 0.1, 0.05, 0.01])
    sv = np.linalg.svd(S, compute_uv=False)
    for method in ("gram", "tsqr", "randomized"):
        r = pod(SELF, S, tolerance=1e-9, method=method)  # single rank: all rows owned
        assert np.allclose(r.singular_values, sv, rtol=1e-10)
        owned = np.arange(50) < 40  # rows 40.. are owned elsewhere: excluded from the product
        r2 = pod(SELF, S, owned=owned, tolerance=1e-9, method=method)
        assert np.allclose(r2.singular_values, np.linalg.svd(S[:40], compute_uv=False), rtol=1e-10)
        d = rng.random(50) + 0.5
        r3 = pod(SELF, S, d, tolerance=1e-9, method=method)
        assert np.allclose(r3.singular_values, np.linalg.svd(np.sqrt(d)[:, None] * S, compute_uv=False),
                           rtol=1e-10)
        assert np.allclose(r3.modes_local.T @ (d[:, None] * r3.modes_local), np.eye(6), atol=1e-12)


def test_sign_convention_largest_entry_positive(weight):
    W, L = weight
    S, _ = synthetic(L, np.logspace(0, -1, 4), 10, seed=9)
    a = pod(SELF, S, W, tolerance=1e-9)
    b = pod(SELF, -S, W, tolerance=1e-9)
    assert np.array_equal(np.sign(a.modes_local[np.argmax(np.abs(a.modes_local), axis=0), range(4)]), np.ones(4))
    assert np.allclose(a.modes_local, b.modes_local, atol=1e-12)


def test_errors_name_the_field():
    S = np.ones((5, 3))
    with pytest.raises(PODError, match="NaN at 2 entries"):
        T = S.copy()
        T[0, 0] = T[1, 2] = np.nan
        pod(SELF, T)
    with pytest.raises(PODError, match="weight_local has shape"):
        pod(SELF, S, sp.identity(4))
    with pytest.raises(PODError, match="tolerance must be in"):
        pod(SELF, S, tolerance=1.0)
    with pytest.raises(PODError, match="empty"):
        pod(SELF, np.zeros((5, 0)))
    with pytest.raises(PODError, match="owned must be"):
        pod(SELF, S, owned=np.ones(4, bool))
    with pytest.raises(PODError, match="method"):
        pod(SELF, S, method="svd")
    with pytest.raises(PODError, match="no snapshots"):
        IncrementalPOD(SELF).result()
    assert issubclass(PODError, ValueError)


@pytest.mark.mpi
def test_distributed_pod_independent_of_rank_count():
    from mpi_helpers import run_program

    runs = {n: run_program(n, "pod_ranks.py", timeout=120) for n in (1, 2, 3)}
    for n, run in runs.items():
        for method, res in run["results"].items():
            assert not res["any_nan"], (n, method)
            # interface rows equal on all ranks (to rounding: BLAS may block a product differently by row count)
            assert res["shared_mismatch"] <= 1e-13 * np.abs(np.array(res["modes"])).max(), (n, method)
            assert res["orthonormality"] < 1e-10, (n, method)  # orthonormal in the serial full mass
            assert res["energy_error"] <= 1e-3 * (1 + 1e-8), (n, method)
    for method, ref in runs[1]["results"].items():
        s1 = np.array(ref["singular_values"])
        m1 = np.array(ref["modes"])
        for n in (2, 3):
            res = runs[n]["results"][method]
            sn = np.array(res["singular_values"])
            assert len(sn) == len(s1) >= 3, (n, method)
            if method == "gram":  # eigenvalues carry an absolute error ~ eps lambda_1: sigma_i ~ eps (s1/si)^2
                assert np.max(np.abs(sn ** 2 - s1 ** 2)) < 1e-14 * s1[0] ** 2, (n, method)
                assert np.max(np.abs(sn - s1)[s1 > 1e-2 * s1[0]] / s1[s1 > 1e-2 * s1[0]]) < 1e-12
            else:
                assert np.max(np.abs(sn - s1) / s1) < 1e-12, (n, method, np.abs(sn - s1) / s1)
            mn = np.array(res["modes"])
            assert np.max(np.abs(mn - m1)) < 1e-10 * np.max(np.abs(m1)), (n, method, np.max(np.abs(mn - m1)))
    # the methods agree with each other (incremental truncates internally at tolerance / 10)
    g = runs[1]["results"]
    for method in ("tsqr", "randomized"):
        assert np.allclose(g[method]["singular_values"], g["gram"]["singular_values"], rtol=1e-9)


@pytest.mark.mpi
def test_distributed_pod_quadratic_tetrahedra_1_vs_3_ranks():
    from mpi_helpers import run_program

    runs = {n: run_program(n, "pod_ranks.py", "C3D10", timeout=120) for n in (1, 3)}
    for method, ref in runs[1]["results"].items():
        res = runs[3]["results"][method]
        m1, m3 = np.array(ref["modes"]), np.array(res["modes"])
        assert m1.shape == m3.shape and m1.shape[1] >= 3
        assert np.max(np.abs(m3 - m1)) < 1e-10 * np.max(np.abs(m1)), method
        assert res["orthonormality"] < 1e-10 and res["shared_mismatch"] <= 1e-13 * np.max(np.abs(m3))
