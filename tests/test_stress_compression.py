"""The ECM on rotated stress snapshots (structrom.rom.stress_compression) against the integrand matrix."""
import numpy as np
import pytest
from mpi4py import MPI

from structrom.rom.ecm_parts import ECMError
from structrom.rom.integrand import FactoredIntegrand
from structrom.rom.offline.cubature import integrand, reduced_rule
from structrom.rom.reduced_quadrature import empirical_cubature, integrand_rows
from structrom.rom.stress_compression import compress_stress
from test_reduced_quadrature import fe_problem

SELF = MPI.COMM_SELF


@pytest.fixture(scope="module")
def redundant():
    """C3D10 box (1728 points), 6 modes, 30 stress snapshots spanning 10 (elastic / J2) stress fields: mixtures,
    as increments of a few loadings are."""
    disc, _, eps_modes, stress = fe_problem("C3D10", (6, 4, 3), 6, 0.55 + 0.2 * np.arange(10))
    mix = np.random.default_rng(3).standard_normal((10, 30))
    return disc, eps_modes, np.ascontiguousarray(stress @ mix)


def test_rotation_is_exact_and_its_energy_error_is_the_frobenius_error(redundant):
    """``S V`` gives the rows ``(I (x) V^T) G`` (1e-12 of the largest entry); the reported energy error is the
    relative Frobenius norm of the discarded rows of the matrix (1e-8 relative, or the eigenvalues' round-off
    floor sqrt(n_s eps) ~ 1e-7 absolute when nothing but round-off is discarded); rank 10 of 30 snapshots at a
    tolerance above that floor; in place, no new buffer."""
    disc, eps_modes, stress = redundant
    G = integrand_rows(eps_modes, stress)
    for tol in (1e-6, 0.05):
        Gc = compress_stress(SELF, eps_modes, stress, tol)
        V, m = Gc.compression.rotation, Gc.compression.rank
        assert np.allclose(V.T @ V, np.eye(30), atol=1e-12)
        N = eps_modes.shape[2]
        rotated = np.einsum("sj,isk->ijk", V, G.reshape(N, 30, -1))  # (I (x) V^T) G as (N, n_s, n_points)
        full = Gc.full()
        cols = full.columns(np.arange(disc.n_points)).reshape(N, 30, -1)
        assert np.allclose(cols, rotated, rtol=0, atol=1e-12 * np.abs(G).max())
        lead = Gc.columns(np.arange(disc.n_points)).reshape(N, m, -1)
        assert np.array_equal(lead, cols[:, :m])
        err = np.linalg.norm(rotated[:, m:]) / np.linalg.norm(G)
        assert Gc.compression.energy_error == pytest.approx(err, rel=1e-8, abs=np.sqrt(30 * np.finfo(float).eps))
        assert Gc.compression.energy_error <= tol
    assert compress_stress(SELF, eps_modes, stress, 1e-6).compression.rank == 10
    own = stress.copy()
    Gc = compress_stress(SELF, eps_modes, own, 1e-6, overwrite=True)
    assert np.shares_memory(Gc.rotated, own) and np.shares_memory(Gc.S, own)
    assert np.allclose(own, stress @ Gc.compression.rotation, atol=1e-12 * np.abs(stress).max())


def test_the_ecm_on_the_leading_rows_is_the_ecm_on_all_rows(redundant):
    """Nothing discarded but round-off (rank 10 of 30): the same points as the ECM on the matrix (exact products),
    weights to 1e-8, the residual over all rows within the tolerance; the score products on 60 rows, not 180."""
    disc, eps_modes, stress = redundant
    G = integrand_rows(eps_modes, stress)
    w, ids = disc.point_weights, np.arange(disc.n_points)
    Gc, n_rows, summary = integrand(SELF, eps_modes, stress, ids, row_tolerance=1e-6, max_rows=500,
                                    stress_compression=True)
    assert n_rows == G.shape[0] == 180 and Gc.shape[0] == 60 and summary["rank"] == 10
    q = reduced_rule(SELF, Gc, w, ids, tolerance=1e-6, selection="block", screening="float64")
    qa = empirical_cubature(SELF, G, w, ids, tolerance=1e-6, selection="block", screening="float64")
    assert not q.extra["continued"] and q.extra["stress_rank"] == 10
    assert np.array_equal(q.points, qa.points) and np.allclose(q.weights, qa.weights, rtol=1e-8)
    b = G @ w
    assert np.linalg.norm(G[:, q.points] @ q.weights - b) <= 1e-6 * np.linalg.norm(b)


def test_a_rule_missing_the_tolerance_on_all_rows_is_continued_on_them(redundant):
    """A coarse truncation (relative energy 0.3): the rule of the leading rows misses the tolerance on the
    matrix (even at half the tolerance, reduced_rule's target for the leading rows at this energy error);
    reduced_rule continues on all rows and returns a rule that meets it there (checked on the matrix),
    with positive weights, keeping the leading rule's points first."""
    disc, eps_modes, stress = redundant
    G = integrand_rows(eps_modes, stress)
    w, ids, tol = disc.point_weights, np.arange(disc.n_points), 1e-5
    Gc = compress_stress(SELF, eps_modes, stress, 0.3)
    assert Gc.compression.rank < 10
    first = empirical_cubature(SELF, Gc, w, ids, tolerance=tol / 2, selection="block")  # reduced_rule's first run
    b = G @ w
    assert np.linalg.norm(G[:, first.points] @ first.weights - b) > tol * np.linalg.norm(b)
    q = reduced_rule(SELF, Gc, w, ids, tolerance=tol, selection="block")
    assert q.extra["continued"] and q.converged
    keep = q.weights > 0
    assert np.array_equal(q.points[:len(first.points)], first.points)
    assert np.linalg.norm(G[:, q.points[keep]] @ q.weights[keep] - b) <= tol * np.linalg.norm(b)
    assert q.residual <= tol and np.all(q.weights >= 0)


def test_bad_tolerance_and_vanishing_integrand_are_errors(redundant):
    _, eps_modes, stress = redundant
    for bad in (0.0, 1.0, -1e-3, "1e-3"):
        with pytest.raises(ECMError, match="tolerance must be in"):
            compress_stress(SELF, eps_modes, stress, bad)
    with pytest.raises(ECMError, match="vanishes at every point"):
        compress_stress(SELF, eps_modes, np.zeros_like(stress), 1e-5)
    with pytest.raises(ECMError, match="stress_local must have shape"):
        compress_stress(SELF, eps_modes, stress[:-1], 1e-5)


def test_factored_integrand_keeps_a_view_of_leading_columns(redundant):
    """The leading factor is a view (no copy) and its products are those of a contiguous copy (1e-13)."""
    _, eps_modes, stress = redundant
    view = stress[:, :, :7]
    f, g = FactoredIntegrand(eps_modes, view), FactoredIntegrand(eps_modes, np.ascontiguousarray(view))
    assert np.shares_memory(f.S, stress)
    r = np.random.default_rng(1).standard_normal(f.shape[0])
    s = g.scores(r)
    assert np.allclose(f.scores(r), s, rtol=0, atol=1e-13 * np.abs(s).max())
