"""EIM of matrix powers (structrom.eim.matrix_functions): exactness on polynomial (affine) cases, convergence
of log-determinants and inverse actions with the number of terms, and the same selection on 1 and 2 ranks."""
import numpy as np
import pytest

from structrom.eim.errors import EIMError
from structrom.eim.matrix_functions import (AffineFamily, NeumannScaling, inverse_action, log_determinant,
                                            matrix_power, monomial_exponents, sparse_logdet)
from structrom.eim.synthetic import diffusion_1d

from eim_matrix_functions import inclusion_family, training_grid
from mpi_helpers import run_program


def three_term_1d(n: int = 24) -> AffineFamily:
    """``-(k u')'`` on [0, 1] with k = 10^mu0 on [0, 1/3), 10^mu1 on [1/3, 2/3), 10^mu2 on [2/3, 1]."""
    parts = [lambda x, a=a: ((x >= a / 3) & (x < (a + 1) / 3 + (a == 2))).astype(float) for a in range(3)]
    return AffineFamily([diffusion_1d(n, f) for f in parts], lambda mu: 10.0 ** np.asarray(mu, float))


def params(k: int, seed: int, half: float = 0.3) -> list:
    return list(np.random.default_rng(seed).uniform(-half, half, size=(k, 3)))


def dense_M(fam: AffineFamily, sc: NeumannScaling, mu_ref, mu) -> np.ndarray:
    A0 = fam.matrix(mu_ref).toarray()
    return np.eye(fam.n) - sc.c * np.linalg.solve(A0, fam.matrix(mu).toarray())


def test_monomial_exponents_count_and_degrees():
    X = monomial_exponents(3, 4, 1)
    assert X.shape == (34, 3)  # C(7, 3) - 1
    assert sorted(X.sum(axis=1).tolist()) == X.sum(axis=1).tolist()
    assert len({tuple(r) for r in X}) == len(X)
    assert monomial_exponents(2, 0).tolist() == [[0, 0]]


def test_sparse_logdet_matches_dense():
    A = three_term_1d(30).matrix([0.1, -0.2, 0.25])
    sign, ref = np.linalg.slogdet(A.toarray())
    assert sign > 0 and abs(sparse_logdet(A) - ref) <= 1e-12 * abs(ref)


def test_power_is_exact_once_every_monomial_is_selected():
    """M(mu)^2 is a quadratic form in the Q = 3 deviations: 6 monomials, so 6 EIM terms reproduce it."""
    fam, mu_ref = three_term_1d(), np.zeros(3)
    train = params(40, 0)
    ps = matrix_power(fam, train, mu_ref=mu_ref, power=2)
    assert ps.n_terms == 6 and ps.separation.greedy.stop_reason in ("round-off", "exhausted", "exact")
    sc = ps.entries.scaling
    for mu in params(5, 7):
        ref = np.linalg.matrix_power(dense_M(fam, sc, mu_ref, mu), 2)
        got = ps.apply(mu, np.eye(fam.n))
        assert np.abs(got - ref).max() <= 1e-11 * np.abs(ref).max()
        # fewer terms are not exact
        assert np.abs(ps.apply(mu, np.eye(fam.n), 3) - ref).max() > 1e-6 * np.abs(ref).max()


def test_series_inverse_reproduces_the_truncated_neumann_series():
    """Degree <= 3 in 3 deviations: 20 monomials; with all of them the separated Neumann sum is exact."""
    fam, mu_ref = three_term_1d(), np.zeros(3)
    b = np.sin(np.arange(fam.n) + 1.0)
    inv = inverse_action(fam, b, params(60, 1), mu_ref=mu_ref, max_degree=3, mode="series")
    assert inv.n_terms == 20
    sc = inv.entries.scaling
    A0 = fam.matrix(mu_ref).toarray()
    for mu in params(5, 8):
        M = dense_M(fam, sc, mu_ref, mu)
        y = np.linalg.solve(A0, b)
        ref = sc.c * sum(np.linalg.matrix_power(M, k) @ y for k in range(4))
        assert np.linalg.norm(inv.solve(mu) - ref) <= 1e-10 * np.linalg.norm(ref)
        # and the truncated series approaches the inverse like rho^(K+1)
        exact = np.linalg.solve(fam.matrix(mu).toarray(), b)
        assert np.linalg.norm(ref - exact) <= 2 * sc.rho ** 4 / (1 - sc.rho) * np.linalg.norm(exact) * \
            np.sqrt(np.linalg.cond(A0))


def test_limit_modes_converge_with_the_number_of_terms():
    fam = inclusion_family(15)  # 225 dofs
    train, mu_ref = training_grid(12), np.zeros(2)
    tests = list(np.random.default_rng(3).uniform(-0.3, 0.3, size=(8, 2)))
    b = np.ones(fam.n)
    ld = log_determinant(fam, train, mu_ref=mu_ref, max_degree=20, max_terms=40)
    inv = inverse_action(fam, b, train, mu_ref=mu_ref, max_degree=20, max_terms=40)
    ref_ld = [sparse_logdet(fam.matrix(mu)) for mu in tests]
    ref_x = [np.linalg.solve(fam.matrix(mu).toarray(), b) for mu in tests]

    def errors(d):
        e_ld = max(abs(ld(mu, d) - r) / abs(r) for mu, r in zip(tests, ref_ld))
        e_x = max(np.linalg.norm(inv.solve(mu, d) - x) / np.linalg.norm(x) for mu, x in zip(tests, ref_x))
        return e_ld, e_x

    e5, e15, e40 = errors(5), errors(15), errors(40)
    for i in range(2):  # geometric convergence (rho = 0.6): two orders of magnitude from 5 to 40 terms
        assert e40[i] < e15[i] < e5[i] and e40[i] < 1e-2 * e5[i]
    assert e40[0] < 1e-5 and e40[1] < 1e-4
    # at a training parameter that was selected the value is interpolated exactly (F beta = e^alpha there)
    j = int(ld.separation.param_indices[0])
    assert abs(ld(train[j]) - sparse_logdet(fam.matrix(train[j]))) <= 1e-9 * abs(ld(train[j]))


def test_series_logdet_matches_the_truncated_log_series_within_hutchinson_noise():
    fam, mu_ref = three_term_1d(20), np.zeros(3)
    K, p = 6, 400
    ld = log_determinant(fam, params(50, 2), mu_ref=mu_ref, max_degree=K, mode="series", probes=p, seed=4,
                         max_terms=5)
    sc = ld.entries.scaling
    Z = np.random.default_rng(4).choice([-1.0, 1.0], size=(fam.n, p))
    for j, mu in enumerate(ld.selected):
        M = dense_M(fam, sc, mu_ref, mu)
        L = -sum(np.linalg.matrix_power(M, k) / k for k in range(1, K + 1))
        per_probe = np.einsum("ij,ij->j", Z, L @ Z)  # the estimator's samples
        assert abs(ld.values[j] - per_probe.mean()) <= 1e-10 * abs(per_probe).max()
        assert abs(per_probe.mean() - np.trace(L)) <= 5 * per_probe.std() / np.sqrt(p)


def test_bad_input_is_named():
    fam = three_term_1d(10)
    with pytest.raises(EIMError, match="finite and positive"):
        AffineFamily(fam.terms, lambda mu: np.array([1.0, -1.0, 1.0])).coefficients(0)
    with pytest.raises(EIMError, match="mode"):
        log_determinant(fam, params(5, 0), mu_ref=np.zeros(3), max_degree=2, mode="taylor")
    with pytest.raises(EIMError, match="b must be"):
        inverse_action(fam, np.ones(3), params(5, 0), mu_ref=np.zeros(3), max_degree=2)


@pytest.mark.mpi
def test_same_selection_on_1_and_2_ranks():
    from eim_matrix_functions import run

    serial = run(m=21, n_tests=4, max_degree=12, max_terms=25, log=lambda *a: None)
    for p in (1, 2):
        got = run_program(p, "eim_matrix_functions_ranks.py", timeout=240)
        for key in ("logdet_points", "logdet_params", "inverse_points"):
            assert got[key] == serial[key], (p, key)
        assert np.allclose(np.array(got["rows"]), np.array(serial["rows"]), rtol=1e-8, atol=1e-15)
