"""Empirical Cubature Method (structrom.rom.reduced_quadrature): exact polynomial rules, Caratheodory bounds,
FE internal forces, row compression, determinism, errors, and independence of the MPI rank count."""
import numpy as np
import numpy.polynomial.legendre as leg
import pytest
from mpi4py import MPI

from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.structured import box
from structrom.rom.materials import J2Plasticity, LinearElastic, LinearHardening
from structrom.rom.reduced_quadrature import (ECMError, compress_rows, empirical_cubature, integrand_rows,
                                    reproducible_row_sums)

SELF = MPI.COMM_SELF


def monomials(x, degree, with_constant=True):
    """Rows ``x^a y^b z^c`` (total degree <= ``degree``) at points ``x`` ``(n, 3)`` and their exponents."""
    exps = [(a, b, c) for a in range(degree + 1) for b in range(degree + 1 - a) for c in range(degree + 1 - a - b)]
    if not with_constant:
        exps = exps[1:]
    return np.array([x[:, 0] ** a * x[:, 1] ** b * x[:, 2] ** c for a, b, c in exps]), exps


def composite_gauss_1d(n_intervals, n_gauss):
    xg, wg = leg.leggauss(n_gauss)
    x = ((np.arange(n_intervals)[:, None] + (xg + 1) / 2) / n_intervals).ravel()
    return x, np.tile(wg / 2 / n_intervals, n_intervals)


def fields(x, params):
    """Smooth displacement fields at the nodes ``x`` ``(n_nodes, 3)``: ``(3 n_nodes, len(params))``."""
    cols = []
    for k, a in enumerate(params):
        u = np.stack([np.sin(a * x[:, 0]) * (1 + 0.1 * k * x[:, 1]),
                      0.3 * np.cos(a * x[:, 1] + 0.2 * k) * x[:, 0] ** 2,
                      0.1 * (1 + x[:, 2]) ** (1 + 0.1 * k) * np.sin(x[:, 0] + 0.05 * k)], axis=1)
        cols.append(u.ravel())
    return np.array(cols).T


def fe_problem(element, divisions, n_modes, load_params):
    """Modes (orthonormal), stresses (elastic / J2 alternately) at the points of a box mesh."""
    mesh = box((2.0, 1.0, 0.8), divisions, element)
    disc = Discretization(mesh)
    psi, _ = np.linalg.qr(fields(mesh.points, 0.4 + 0.3 * np.arange(n_modes)))
    loads = 1e-3 * fields(mesh.points, load_params)
    elastic = LinearElastic(200e3, 0.3)
    plastic = J2Plasticity(elastic, LinearHardening(250.0, 1000.0))
    n = disc.n_points
    stress = []
    for s in range(loads.shape[1]):
        law, amp = (elastic, 1.0) if s % 2 == 0 else (plastic, 5.0)
        eps = amp * disc.strain(loads[:, s])
        stress.append(law.integrate(np.zeros_like(eps), eps, np.zeros(n), np.zeros(n), 0.0,
                                    law.initial_state(n)).stress)
    eps_modes = np.stack([disc.strain(psi[:, i]) for i in range(n_modes)], axis=2)
    return disc, psi, eps_modes, np.stack(stress, axis=2)


@pytest.fixture(scope="module")
def fe_small():
    return fe_problem("C3D10", (6, 4, 3), 6, 0.55 + 0.2 * np.arange(10))  # 432 tets, 1728 points


# -- exact rules ---------------------------------------------------------------------------------------


def roundoff_tolerance(G: np.ndarray, floor: float = 1e-12) -> float:
    """The smallest relative ECM tolerance these integrands support: the weights come from least squares
    on normalized columns of ``G``, whose relative residual is reachable down to about ``eps cond``
    (Higham, Accuracy and Stability of Numerical Algorithms, ch. 20); 10 x that, at least ``floor``."""
    Gn = G / np.linalg.norm(G, axis=0)
    return max(floor, 10 * np.finfo(float).eps * np.linalg.cond(Gn))


@pytest.mark.parametrize("removal", ["nonpositive", "lawson_hanson"])
@pytest.mark.parametrize("degree", [3, 7, 11])
def test_1d_polynomials_caratheodory(degree, removal):
    x, w = composite_gauss_1d(50, 3)
    G = np.array([x ** k for k in range(degree + 1)])
    # monomials up to x^11 on [0, 1] have cond ~1e8: 1e-12 is out of reach there (round-off ~2e-9 on
    # some BLAS kernels), so the tolerance follows the conditioning (1e-12 for degree 3, ~3e-7 for 11)
    tol = roundoff_tolerance(G)
    q = empirical_cubature(SELF, G, w, np.arange(len(x)), tolerance=tol, removal=removal)
    exact = 1.0 / (np.arange(degree + 1) + 1.0)
    assert q.n_points <= degree + 1  # Caratheodory: at most n_rows points
    assert np.all(q.weights > 0) and len(set(q.points.tolist())) == q.n_points
    # ||G w - b|| <= tol ||b||, so each integral's relative error is at most tol ||b|| / |b_k|
    bound = tol * np.linalg.norm(exact) / exact.min()
    assert np.max(np.abs(G[:, q.points] @ q.weights - exact) / exact) < max(bound, 1e-10)
    assert abs(q.weights.sum() - 1.0) <= max(tol, 1e-12)  # the constant row
    assert q.converged and q.residual <= tol and len(q.history) >= q.n_points


@pytest.mark.parametrize("with_constant", [True, False])
def test_3d_monomials_on_hex_gauss_points(with_constant):
    mesh = box((2.0, 1.0, 0.8), (4, 3, 2), "C3D8")  # 2x2x2 Gauss: exact for these monomials
    disc = Discretization(mesh)
    x, w = disc.point_coordinates, disc.point_weights
    G, exps = monomials(x, 3, with_constant)
    exact = np.array([2.0 ** (a + 1) / (a + 1) * 1.0 / (b + 1) * 0.8 ** (c + 1) / (c + 1) for a, b, c in exps])
    assert np.allclose(G @ w, exact, rtol=1e-13)
    q = empirical_cubature(SELF, G, w, np.arange(len(w)), tolerance=1e-12, include_constant=True)
    assert q.n_points <= len(G) + (0 if with_constant else 1) < len(w) / 5
    assert np.all(q.weights > 0)
    assert np.max(np.abs(G[:, q.points] @ q.weights - exact) / np.abs(exact)) < 1e-10
    assert abs(q.weights.sum() - 1.6) < 1e-10 * 1.6 and q.volume_error < 1e-10
    # without the constant row the volume is not enforced (unless a row is the constant)
    q0 = empirical_cubature(SELF, G, w, np.arange(len(w)), tolerance=1e-12, include_constant=False)
    assert q0.n_points <= len(G) and q0.residual <= 1e-12
    if with_constant:
        assert q0.volume_error < 1e-10


@pytest.mark.parametrize("removal", ["nonpositive", "lawson_hanson"])
@pytest.mark.parametrize("rank", [1, 3, 8])
def test_low_rank_integrands_need_at_most_rank_points(rank, removal):
    rng = np.random.default_rng(rank)
    G = rng.standard_normal((40, rank)) @ rng.standard_normal((rank, 1500))
    w = rng.random(1500)
    for include_constant, bound in ((True, rank + 1), (False, rank)):
        q = empirical_cubature(SELF, G, w, 1000 + np.arange(1500), tolerance=1e-12,
                               include_constant=include_constant, removal=removal)
        assert q.n_points <= bound and np.all(q.weights >= 0)
        assert np.all(q.points >= 1000)  # global numbers, not local indices
        local = q.points - 1000
        err = np.linalg.norm(G[:, local] @ q.weights - G @ w) / np.linalg.norm(G @ w)
        assert err <= 1e-12 and err == pytest.approx(q.residual, abs=1e-14)
        if include_constant:
            assert abs(q.weights.sum() - w.sum()) <= 1e-12 * w.sum()


def test_lawson_hanson_step_removes_only_the_first_weights_to_reach_zero():
    from structrom.rom.ecm_parts import leaving

    # from w = (1, 1, 0) toward x = (2, -1, 0.5): the second weight reaches zero halfway; the others stay positive
    w = np.array([1.0, 1.0, 0.0])
    drop = leaving("lawson_hanson", w, np.array([2.0, -1.0, 0.5]))
    assert drop.tolist() == [False, True, False] and np.allclose(w, [1.5, 0.0, 0.25])
    # the first weight reaches zero at t = 1/3, before the second (t = 1/2): only it leaves
    w = np.array([1.0, 2.0, 1.0])
    drop = leaving("lawson_hanson", w, np.array([-2.0, -2.0, 4.0]))
    assert drop.tolist() == [True, False, False] and np.allclose(w, [0.0, 2.0 / 3.0, 2.0])
    # a new point (weight 0) of non-positive least-squares weight leaves at once (step 0), nothing else moves
    w = np.array([1.0, 1.0, 0.0])
    drop = leaving("lawson_hanson", w, np.array([-1.0, 3.0, -1.0]))
    assert drop.tolist() == [False, False, True] and np.allclose(w, [1.0, 1.0, 0.0])
    # Hernandez et al.: every non-positive weight leaves
    assert leaving("nonpositive", np.array([1.0, 2.0, 1.0]), np.array([-2.0, -2.0, 4.0])).tolist() == \
        [True, True, False]


def test_max_points_stops_early_and_reports_not_converged():
    x, w = composite_gauss_1d(40, 2)
    G = np.array([np.cos(k * np.pi * x) for k in range(12)])
    q = empirical_cubature(SELF, G, w, np.arange(len(x)), tolerance=1e-10, max_points=4)
    assert q.n_points == 4 and not q.converged and q.residual > 1e-10
    assert q.residual == pytest.approx(q.history[-1])
    full = empirical_cubature(SELF, G, w, np.arange(len(x)), tolerance=1e-10)
    assert full.converged and full.residual <= 1e-10 and full.n_points <= 13


# -- FE internal forces --------------------------------------------------------------------------------


def test_fe_internal_forces_reduced_vs_full(fe_small):
    disc, psi, eps_modes, stress = fe_small
    G = integrand_rows(eps_modes, stress)
    n_modes, n_s = psi.shape[1], stress.shape[2]
    assert G.shape == (n_modes * n_s, disc.n_points)
    # integrand rows: row i n_s + s = eps(psi_i) : sigma_s (explicit loop); G w_FE = psi^T f_int
    i, s = 2, 3
    assert np.allclose(G[i * n_s + s], np.sum(eps_modes[:, :, i] * stress[:, :, s], axis=1), rtol=1e-14, atol=0)
    full = np.array([psi.T @ disc.internal_force(stress[:, :, s]) for s in range(n_s)]).T  # (N, n_s)
    assert np.allclose((G @ disc.point_weights).reshape(n_modes, n_s), full, rtol=1e-12,
                       atol=1e-12 * np.abs(full).max())

    q = empirical_cubature(SELF, G, disc.point_weights, np.arange(disc.n_points), tolerance=1e-6)
    assert q.converged and q.residual <= 1e-6
    assert q.n_points <= G.shape[0] + 1 and q.n_points < disc.n_points / 20
    assert np.all(q.weights > 0) and q.volume_error <= 1e-6
    # independent check: sum_k w_k B_k^T sigma_k through the FE kernel (stresses scaled by w / w_FE)
    ratio = q.local_weights(np.arange(disc.n_points)) / disc.point_weights
    assert np.count_nonzero(ratio) == q.n_points
    reduced = np.array([psi.T @ disc.internal_force(stress[:, :, s] * ratio[:, None]) for s in range(n_s)]).T
    err = np.linalg.norm(reduced - full) / np.linalg.norm(full)
    assert err <= 1e-6 * (1 + 1e-6) and err == pytest.approx(q.residual, rel=1e-6)


def test_compressed_rows_meet_the_tolerance_on_the_full_integrands():
    disc, psi, eps_modes, stress = fe_problem("C3D8", (8, 5, 4), 8, 0.55 + 0.1 * np.arange(16))
    G = integrand_rows(eps_modes, stress)  # 128 rows
    w, pts = disc.point_weights, np.arange(disc.n_points)
    tol = 1e-5
    rc = compress_rows(SELF, G, tol / 10)
    assert rc.rank < len(rc.eigenvalues) < G.shape[0]  # truncates more than round-off
    assert np.allclose(rc.basis.T @ rc.basis, np.eye(rc.rank), atol=1e-13)
    trunc = np.linalg.norm(G - rc.basis @ (rc.basis.T @ G)) / np.linalg.norm(G)
    assert trunc == pytest.approx(rc.energy_error, rel=1e-3) and trunc <= tol / 10  # Gram: ~eps lambda_1 abs.
    # chunked input (a list, and a one-shot generator): same compressed integrands U_r U_r^T G (the
    # trailing singular vectors themselves are sensitive to round-off, the projection is not)
    PG = rc.basis @ rc.compressed_local
    rc2 = compress_rows(SELF, [G[:, :500], G[:, 500:1100], G[:, 1100:]], tol / 10)
    assert rc2.rank == rc.rank and rc2.compressed_local.shape == (rc.rank, disc.n_points)
    assert np.linalg.norm(rc2.basis @ rc2.compressed_local - PG) <= 1e-8 * np.linalg.norm(G)
    assert np.allclose(rc2.basis[:, :5], rc.basis[:, :5], atol=1e-10)  # leading vectors, fixed signs
    rc3 = compress_rows(SELF, (G[:, j:j + 700] for j in range(0, G.shape[1], 700)), tol / 10)
    assert rc3.compressed_local is None
    assert np.linalg.norm(rc3.basis @ rc3.project(G) - PG) <= 1e-8 * np.linalg.norm(G)
    # ECM at 0.9 tol on the r compressed rows, measured on the 128 uncompressed ones
    q = empirical_cubature(SELF, rc.compressed_local, w, pts, tolerance=0.9 * tol)
    err = np.linalg.norm(G @ (q.local_weights(pts) - w)) / np.linalg.norm(G @ w)
    assert q.residual <= 0.9 * tol and err <= tol
    assert q.n_points <= rc.rank + 1


def test_streamed_compression_selects_the_points_of_the_dense_gram():
    """Blocks of points from a factory (the offline stage's path: the uncompressed G never exists whole,
    C accumulated by syrk) give the ECM the points and weights of the former dense path (C = G G^T,
    symmetrized, eigh, U^T G): same points, weights to 1e-6; the weighted sums are bitwise those of the
    scaled copy."""
    import scipy.linalg as sla

    from structrom.mpi.collectives import reproducible_row_sums, reproducible_weighted_row_sums

    disc, psi, eps_modes, stress = fe_problem("C3D8", (8, 5, 4), 8, 0.55 + 0.1 * np.arange(16))
    G = integrand_rows(eps_modes, stress)
    w, pts = disc.point_weights, np.arange(disc.n_points)
    tol = 1e-5
    # the former implementation, inline
    C = G @ G.T
    lam, V = sla.eigh(0.5 * (C + C.T))
    lam, V = lam[::-1], V[:, ::-1]
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])
    r = int(np.flatnonzero(tails <= (tol / 10) ** 2 * np.trace(C))[0])
    old = empirical_cubature(SELF, V[:, :r].T @ G, w, pts, tolerance=0.9 * tol)

    def blocks():
        for a in range(0, disc.n_points, 97):
            yield integrand_rows(eps_modes[a:a + 97], stress[a:a + 97])
    rc = compress_rows(SELF, blocks, tol / 10)
    assert rc.rank == r and rc.compressed_local.shape == (r, disc.n_points)
    new = empirical_cubature(SELF, rc.compressed_local, w, pts, tolerance=0.9 * tol)
    assert np.array_equal(new.points, old.points)
    # compressed rows: the trailing singular vectors near the cut amplify the Gram's rounding by
    # lambda_1 / gap (compress_rows' docstring), so the weights agree to the level seen across rank counts
    assert np.allclose(new.weights, old.weights, rtol=1e-6, atol=0)
    assert abs(new.residual - old.residual) <= 1e-6 * old.residual
    assert np.array_equal(reproducible_weighted_row_sums(SELF, G, w, block_bytes=8 * G.shape[1] * 5),
                          reproducible_row_sums(SELF, G * w))


def test_randomized_row_compression_meets_the_tolerance_without_a_rows_squared_array():
    """Above max_gram_rows the rows are compressed by the randomized range finder (row_sketch): its rank is
    at most the range found, its reported energy error is the measured one and within the tolerance, and the
    ECM on it meets the tolerance on the full integrands, as with the Gram compression."""
    from structrom.rom.offline.cubature import integrand_matrix

    disc, psi, eps_modes, stress = fe_problem("C3D8", (8, 5, 4), 8, 0.55 + 0.1 * np.arange(16))
    G = integrand_rows(eps_modes, stress)  # 128 rows
    w, pts = disc.point_weights, np.arange(disc.n_points)
    tol = 1e-5
    Gc, n_rows, rc = integrand_matrix(SELF, eps_modes, stress, 10, tol / 10, pts, max_gram_rows=64)
    gram = compress_rows(SELF, G, tol / 10)
    assert rc.method == "randomized" and n_rows == 128 and rc.rank <= rc.range_rank < 128
    assert rc.rank <= gram.rank + 8  # near the optimal (Gram) rank
    assert np.allclose(rc.basis.T @ rc.basis, np.eye(rc.rank), atol=1e-12)
    assert np.allclose(rc.basis @ Gc, rc.basis @ (rc.basis.T @ G), atol=1e-10 * np.abs(G).max())
    trunc = np.linalg.norm(G - rc.basis @ Gc) / np.linalg.norm(G)
    assert trunc <= tol / 10 and trunc == pytest.approx(rc.energy_error, rel=1e-2, abs=1e-9)
    q = empirical_cubature(SELF, Gc, w, pts, tolerance=0.9 * tol)
    err = np.linalg.norm(G @ (q.local_weights(pts) - w)) / np.linalg.norm(G @ w)
    assert q.residual <= 0.9 * tol and err <= tol


def test_ecm_reports_progress_with_an_estimate_of_the_time_left():
    disc, psi, eps_modes, stress = fe_problem("C3D8", (8, 5, 4), 8, 0.55 + 0.1 * np.arange(16))
    G = integrand_rows(eps_modes, stress)
    lines = []
    import structrom.rom.reduced_quadrature as rq

    q = rq.empirical_cubature(SELF, G, disc.point_weights, np.arange(disc.n_points), tolerance=1e-6,
                              log=lines.append)
    assert q.extra["n_selections"] >= 100 and lines
    assert all(line.startswith("ECM: ") and "points, residual" in line and "ETA" in line for line in lines)
    # the estimate from a geometric decrease: 10x per 10 selections, 1 s each, 1e-2 -> 1e-4 is 20 selections
    prog = rq._ECMProgress(False, 1e-4)
    prog.t0 -= 30.0
    assert prog.eta([10.0 ** (-k / 10) for k in range(21)], 30) == pytest.approx(20.0, rel=0.05)


# -- determinism, reproducible sums ---------------------------------------------------------------------


def test_reproducible_row_sums_independent_of_order_and_accurate():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, 3000)) * np.logspace(-8, 8, 3000)  # wide range of magnitudes
    X[2] = 1.0  # and an exactly summable row
    s = reproducible_row_sums(SELF, X)
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(3000)
        assert np.array_equal(reproducible_row_sums(SELF, X[:, perm]), s)  # bit for bit
    exact = np.array([float(sum(map(__import__("fractions").Fraction, row))) for row in X])
    assert np.all(np.abs(s - exact) <= 2 * np.finfo(float).eps * np.abs(exact))
    assert s[2] == 3000.0


def test_same_rule_for_any_column_order_and_symmetric_ties():
    # symmetric 1D rule: mirrored points tie exactly; the lowest global number must win, whatever
    # the order of the columns
    x, w = composite_gauss_1d(20, 2)
    x = 2 * x - 1
    G = np.array([x ** k for k in range(0, 9, 2)])  # even monomials: x and -x are indistinguishable
    gp = np.arange(len(x))
    q = empirical_cubature(SELF, G, w, gp, tolerance=1e-12)
    perm = np.random.default_rng(0).permutation(len(x))
    qp = empirical_cubature(SELF, G[:, perm], w[perm], gp[perm], tolerance=1e-12)
    assert np.array_equal(q.points, qp.points) and np.allclose(q.weights, qp.weights, rtol=1e-12, atol=0)
    mirror = len(x) - 1 - q.points  # x[mirror] == -x[point]
    assert np.all(q.points < mirror)  # ties went to the lower number


# -- errors ---------------------------------------------------------------------------------------------


def test_errors_name_the_field():
    rng = np.random.default_rng(1)
    G, w, gp = rng.random((4, 30)), rng.random(30), np.arange(30)
    with pytest.raises(ECMError, match="w_fe_local has 1 negative"):
        w2 = w.copy()
        w2[3] = -1.0
        empirical_cubature(SELF, G, w2, gp)
    with pytest.raises(ECMError, match=r"w_fe_local must have shape \(30,\)"):
        empirical_cubature(SELF, G, w[:29], gp)
    with pytest.raises(ECMError, match=r"global_points_local must have shape \(30,\)"):
        empirical_cubature(SELF, G, w, gp[:5])
    with pytest.raises(ECMError, match="G_local must be 2-D"):
        empirical_cubature(SELF, G[0], w, gp)
    with pytest.raises(ECMError, match="G_local contains NaN at 2 entries"):
        G2 = G.copy()
        G2[0, 0] = G2[1, 5] = np.nan
        empirical_cubature(SELF, G2, w, gp)
    for bad in (0.0, 1.0, -1e-3, 2.0, float("nan"), "1e-3"):
        with pytest.raises(ECMError, match="tolerance must be in"):
            empirical_cubature(SELF, G, w, gp, tolerance=bad)
    with pytest.raises(ECMError, match="max_points"):
        empirical_cubature(SELF, G, w, gp, max_points=0)
    with pytest.raises(ECMError, match="removal must be one of"):
        empirical_cubature(SELF, G, w, gp, removal="lawson")
    with pytest.raises(ECMError, match="repeated point numbers"):
        empirical_cubature(SELF, G, w, np.r_[gp[:-1], 0])
    with pytest.raises(ECMError, match="integers"):
        empirical_cubature(SELF, G, w, gp.astype(float))
    with pytest.raises(ECMError, match="vanish"):
        empirical_cubature(SELF, G - (G @ w)[:, None] / w.sum(), w, gp)  # zero integrals
    # tolerance below round-off: with more rows than points only all 30 points integrate exactly, and their
    # residual is round-off (with 4 rows, 5 points can integrate exactly and the residual may be 0.0, depending
    # on the BLAS kernels of the machine)
    G_tall = np.random.default_rng(2).random((40, 30))
    with pytest.raises(ECMError, match="reachable"):
        empirical_cubature(SELF, G_tall, w, gp, tolerance=1e-17)
    with pytest.raises(ECMError, match="tolerance must be in"):
        compress_rows(SELF, G, 0.0)
    with pytest.raises(ECMError, match="rows"):
        compress_rows(SELF, [G, G[:3]], 1e-3)
    with pytest.raises(ECMError, match="eps_modes_local"):
        integrand_rows(np.zeros((5, 3, 2)), np.zeros((5, 6, 2)))
    with pytest.raises(ECMError, match="stress_local"):
        integrand_rows(np.zeros((5, 6, 2)), np.zeros((4, 6, 2)))
    assert issubclass(ECMError, ValueError)


# -- MPI ---------------------------------------------------------------------------------------------------


@pytest.mark.mpi
def test_distributed_ecm_independent_of_rank_count():
    from mpi_helpers import run_program

    runs = {n: run_program(n, "ecm_ranks.py", timeout=120) for n in (1, 2, 3)}
    ref = runs[1]
    assert 0 < len(ref["points"]) <= ref["n_rows"] + 1 and len(ref["points"]) < ref["n_points_total"] / 20
    for n, run in runs.items():
        assert run["n_ranks"] == n
        assert run["residual"] <= 1e-6 and run["measured_error"] <= 1e-6 * (1 + 1e-8), n
        assert run["measured_error"] == pytest.approx(run["residual"], rel=1e-6)
        assert run["volume_error"] <= 1e-6
        assert run["points"] == ref["points"], n  # same global points, same order
        w1, wn = np.array(ref["weights"]), np.array(run["weights"])
        assert np.all(wn > 0) and np.max(np.abs(wn - w1)) <= 1e-10 * np.max(w1), n
        # the one-point greedy rule (the default) too; the block rule above needs fewer score products
        g, g1 = run["greedy"], ref["greedy"]
        assert g["points"] == g1["points"] and g["measured_error"] <= 1e-6 * (1 + 1e-8), n
        assert np.max(np.abs(np.array(g["weights"]) - g1["weights"])) <= 1e-10 * np.max(g1["weights"]), n
        assert run["extra"]["n_scorings"] < g["scorings"], n
        c, c1 = run["compressed"], ref["compressed"]
        # compressed rows (truncated basis, 38 of 40): same points; the weights carry the round-off of the
        # Allreduced Gram matrix amplified by the trailing eigen-gap (measured ~1e-9)
        assert c["rank"] == c1["rank"] < ref["n_rows"] and c["points"] == c1["points"], n
        assert c["measured_error"] <= 1e-5, n
        assert np.max(np.abs(np.array(c["weights"]) - c1["weights"])) <= 1e-7 * np.max(c1["weights"]), n
        # randomized range finder (test matrix drawn per global point): same range and points for any rank count
        # the factored integrand (no matrix): the same points for any rank count; with exact score products, the
        # assembled matrix's points, weights to round-off (the two forms' scores differ by ~1e-16 relative)
        # (its FE integrals are summed by a GEMM that depends on the partition at round-off: the weights differ by
        # that, eps times a few, amplified by the condition number of the selected columns, 1.8e5 here)
        f, f1 = run["factored"], ref["factored"]
        assert f["points"] == f1["points"] and f["measured_error"] <= 1e-6 * (1 + 1e-8), n
        assert np.max(np.abs(np.array(f["weights"]) - f1["weights"])) <= \
            100 * f1["condition"] * np.finfo(float).eps * np.max(f1["weights"]), n
        # on rotated stress snapshots (rank 8 of 16 mixtures): the same points, the tolerance met on all rows
        t, t1 = run["rotated"], ref["rotated"]
        assert t["rank"] == t1["rank"] == 8 and t["points"] == t1["points"], n
        assert t["measured_error"] <= 1e-6 * (1 + 1e-8), n
        assert t["residual"] == pytest.approx(t["measured_error"], rel=1e-6), n
        assert np.max(np.abs(np.array(t["weights"]) - t1["weights"])) <= \
            100 * f1["condition"] * np.finfo(float).eps * np.max(t1["weights"]), n
        assert f["float64"]["points"] == f["assembled_float64"]["points"], n
        assert np.max(np.abs(np.array(f["float64"]["weights"]) - f["assembled_float64"]["weights"])) <= \
            100 * f1["condition"] * np.finfo(float).eps * np.max(f["assembled_float64"]["weights"]), n
        # a shortlist scored between full products: the same points for any rank count, the tolerance met
        sl, sl1 = run["shortlist"], ref["shortlist"]
        assert sl["points"] == sl1["points"] and sl["measured_error"] <= 1e-6 * (1 + 1e-8), n
        assert sl["short_scorings"] > 0 and sl["scorings"] < sl["scorings_without"], n
        assert np.max(np.abs(np.array(sl["weights"]) - sl1["weights"])) <= \
            100 * f1["condition"] * np.finfo(float).eps * np.max(sl1["weights"]), n
        # the Lawson-Hanson removal: the same points for any rank count, the tolerance met, positive weights
        lh, lh1 = run["lawson_hanson"], ref["lawson_hanson"]
        assert lh["removal"] == "lawson_hanson" and lh["points"] == lh1["points"], n
        assert lh["measured_error"] <= 1e-6 * (1 + 1e-8) and np.all(np.array(lh["weights"]) > 0), n
        assert np.max(np.abs(np.array(lh["weights"]) - lh1["weights"])) <= \
            100 * f1["condition"] * np.finfo(float).eps * np.max(lh1["weights"]), n
        # the block's points by residual decrease (the default: by correlation): the same points for any rank
        # count, the tolerance met, positive weights
        co, co1 = run["decrease"], ref["decrease"]
        assert co["block_choice"] == "decrease" and co["default_choice"] == "correlation", n
        assert co["points"] == co1["points"] and co["measured_error"] <= 1e-6 * (1 + 1e-8), n
        assert np.all(np.array(co["weights"]) > 0) and np.max(np.abs(np.array(co["weights"]) - co1["weights"])) <= \
            100 * f1["condition"] * np.finfo(float).eps * np.max(co1["weights"]), n
        # no hyper-reduction: exactly the FE rule (points and weights, on any rank count), the integrals exact
        a = run["all"]
        assert a["same_as_fe"] and a["residual"] == 0.0 and a["converged"] and a["selection"] == "all", n
        assert a["measured_error"] == 0.0 and a["volume_error"] == 0.0, n
        s, s1 = run["sketched"], ref["sketched"]
        assert s["rank"] == s1["rank"] <= s["range_rank"] <= ref["n_rows"] and s["points"] == s1["points"], n
        assert s["measured_error"] <= 1e-5, n
        assert np.max(np.abs(np.array(s["weights"]) - s1["weights"])) <= 1e-7 * np.max(s1["weights"]), n
