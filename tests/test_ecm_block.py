"""The ECM's block selection rule (several points per score product) against the one-point greedy rule:
exact polynomial rules on Gauss grids, the tolerance with positive weights on FE integrands, the count of score
products and points, determinism, and the new keywords' errors. Rank-count independence: tests/mpi_programs/
ecm_ranks.py (both rules, under mpirun -n 1, 2, 3)."""
import numpy as np
import numpy.polynomial.legendre as leg
import pytest
import scipy.linalg as sla
from mpi4py import MPI

from structrom.rom.reduced_quadrature import ECMError, empirical_cubature, integrand_rows
from test_reduced_quadrature import fe_problem, roundoff_tolerance

SELF = MPI.COMM_SELF


def gauss_grid_2d(n_cells: int, n_gauss: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss points of a ``n_cells x n_cells`` grid of [0, 1]^2: ``(x (n, 2), w (n,))``."""
    xg, wg = leg.leggauss(n_gauss)
    x1 = ((np.arange(n_cells)[:, None] + (xg + 1) / 2) / n_cells).ravel()
    w1 = np.tile(wg / 2 / n_cells, n_cells)
    X, Y = np.meshgrid(x1, x1, indexing="ij")
    return np.stack([X.ravel(), Y.ravel()], axis=1), np.outer(w1, w1).ravel()


@pytest.mark.parametrize("selection", ["block", "greedy"])
@pytest.mark.parametrize("degree", [4, 8])
def test_2d_polynomials_integrated_exactly_up_to_the_tolerance(selection, degree):
    # 3-point Gauss on each cell integrates x^a y^b (a, b <= 5) exactly; the reduced rule must reproduce the
    # integrals 1 / ((a + 1)(b + 1)) to the tolerance, with positive weights and at most n_rows + 1 points
    x, w = gauss_grid_2d(12, 3)
    exps = [(a, b) for a in range(degree + 1) for b in range(degree + 1 - a)]
    G = np.array([x[:, 0] ** a * x[:, 1] ** b for a, b in exps])
    exact = np.array([1.0 / ((a + 1) * (b + 1)) for a, b in exps])
    tol = roundoff_tolerance(G)
    if degree <= 5:
        assert np.allclose(G @ w, exact, rtol=1e-13)
    q = empirical_cubature(SELF, G, w, np.arange(len(w)), tolerance=tol, selection=selection, block_size=8)
    assert q.converged and q.residual <= tol and np.all(q.weights > 0)
    assert q.n_points <= len(G) + 1 < len(w) / 10
    b = G @ w  # the FE integrals (the rule's target); exact up to round-off for degree <= 5
    err = np.linalg.norm(G[:, q.points] @ q.weights - b) / np.linalg.norm(b)
    # the ECM's residual is the measured one up to the round-off of the two evaluations (~1e-2 tol here)
    assert err <= tol * (1 + 1e-6) and err == pytest.approx(q.residual, rel=1e-6, abs=1e-2 * tol)
    assert abs(q.weights.sum() - 1.0) <= tol  # the constant row: the area
    assert q.extra["selection"] == selection and q.extra["n_scorings"] <= q.extra["n_selections"]


@pytest.fixture(scope="module")
def fe_integrand():
    disc, psi, eps_modes, stress = fe_problem("C3D10", (8, 5, 4), 8, 0.55 + 0.1 * np.arange(16))
    return disc, integrand_rows(eps_modes, stress)


def measured_error(G: np.ndarray, q, w_fe: np.ndarray, gp: np.ndarray) -> float:
    """``||G (w - w_FE)|| / ||G w_FE||`` of the rule ``q`` on the full integrand, independently of the ECM's
    bookkeeping."""
    return float(np.linalg.norm(G @ (q.local_weights(gp) - w_fe)) / np.linalg.norm(G @ w_fe))


def test_block_rule_meets_the_tolerance_with_positive_weights_and_fewer_products(fe_integrand):
    disc, G = fe_integrand
    n = disc.n_points
    gp = np.arange(n)
    runs = {sel: empirical_cubature(SELF, G, disc.point_weights, gp, tolerance=1e-6, selection=sel)
            for sel in ("greedy", "block")}
    for sel, q in runs.items():
        err = measured_error(G, q, disc.point_weights, gp)
        assert q.converged and err <= 1e-6 * (1 + 1e-8) and q.volume_error <= 1e-6, sel
        assert np.all(q.weights > 0) and len(set(q.points.tolist())) == q.n_points, sel
        assert q.n_points <= G.shape[0] + 1, sel  # Caratheodory
    g, bl = runs["greedy"], runs["block"]
    assert g.extra["n_scorings"] == g.extra["n_selections"]  # one product per selection
    # the block rule: several selections per product, and about as many points as the greedy rule
    assert bl.extra["n_scorings"] * 2 <= g.extra["n_scorings"]
    assert bl.n_points <= 1.15 * g.n_points


def test_block_rule_is_deterministic_and_independent_of_the_column_order(fe_integrand):
    disc, G = fe_integrand
    gp = 7 * np.arange(disc.n_points) + 3  # global numbers, not local indices
    q = empirical_cubature(SELF, G, disc.point_weights, gp, tolerance=1e-5, selection="block")
    perm = np.random.default_rng(1).permutation(disc.n_points)
    qp = empirical_cubature(SELF, G[:, perm], disc.point_weights[perm], gp[perm], tolerance=1e-5, selection="block")
    assert np.array_equal(q.points, qp.points)
    assert np.allclose(q.weights, qp.weights, rtol=1e-9, atol=0)


def test_single_precision_screening_keeps_the_guarantee(fe_integrand):
    # the float32 products only rank the candidates; the candidates near the pool's cut are rescored in double
    # precision, so the pool, and then the points and weights, are those of the float64 products
    disc, G = fe_integrand
    gp = np.arange(disc.n_points)
    runs = {p: empirical_cubature(SELF, G, disc.point_weights, gp, tolerance=1e-6, selection="block", screening=p)
            for p in ("float32", "float64")}
    for p, q in runs.items():
        err = measured_error(G, q, disc.point_weights, gp)
        assert q.converged and err <= 1e-6 * (1 + 1e-8) and np.all(q.weights > 0) and q.extra["screening"] == p
    assert np.array_equal(runs["float32"].points, runs["float64"].points)
    assert np.allclose(runs["float32"].weights, runs["float64"].weights, rtol=1e-10, atol=0)


def test_block_of_one_is_the_greedy_rule(fe_integrand):
    disc, G = fe_integrand
    gp = np.arange(disc.n_points)
    g = empirical_cubature(SELF, G, disc.point_weights, gp, tolerance=1e-5, selection="greedy")
    b1 = empirical_cubature(SELF, G, disc.point_weights, gp, tolerance=1e-5, selection="block", block_size=1)
    assert np.array_equal(g.points, b1.points) and np.array_equal(g.weights, b1.weights)


def test_block_keywords_are_checked():
    G = np.ones((2, 5))
    w = np.ones(5)
    with pytest.raises(ECMError, match="selection"):
        empirical_cubature(SELF, G, w, np.arange(5), selection="fast")
    with pytest.raises(ECMError, match="block_size"):
        empirical_cubature(SELF, G, w, np.arange(5), selection="block", block_size=0)
    with pytest.raises(ECMError, match="block_correlation"):
        empirical_cubature(SELF, G, w, np.arange(5), block_correlation=1.5)
    with pytest.raises(ECMError, match="screening"):
        empirical_cubature(SELF, G, w, np.arange(5), screening="float16")
    with pytest.raises(ECMError, match="block_choice must be one of"):
        empirical_cubature(SELF, G, w, np.arange(5), block_choice="best")


def test_block_choice_by_decrease_and_by_correlation_both_keep_the_guarantee(fe_integrand):
    """Both ways of picking a block's next point meet the tolerance with positive weights, with about as many points
    (within 10 %: 82 and 79 here) and selections (188 and 211). The gain of picking by residual decrease shows on
    large point sets (docs/benchmarks.md); this problem checks the guarantee and that both choices run."""
    disc, G = fe_integrand
    gp = np.arange(disc.n_points)
    runs = {c: empirical_cubature(SELF, G, disc.point_weights, gp, tolerance=1e-6, selection="block", block_choice=c)
            for c in ("decrease", "correlation")}
    for c, q in runs.items():
        err = measured_error(G, q, disc.point_weights, gp)
        assert q.converged and err <= 1e-6 * (1 + 1e-8) and np.all(q.weights > 0) and q.extra["block_choice"] == c
    dec, cor = runs["decrease"], runs["correlation"]
    assert dec.n_points <= 1.1 * cor.n_points and dec.extra["n_selections"] <= 1.1 * cor.extra["n_selections"]


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_selected_columns_qr_split_over_ranks_agrees_with_one_rank(n):
    """The ECM's QR with its rows split over the ranks: orthonormal factors that reproduce the columns, and the
    one-rank factors and least-squares solution, to round-off (1e-13: a 120-column well-conditioned set), after
    appends and deletions on both paths (rows held in place, and gathered when a rank holds fewer rows than the
    trailing columns)."""
    from mpi_helpers import run_program

    res = run_program(n, "column_qr_ranks.py", timeout=120)
    for per_rank in res["runs"]:
        for rows, r in per_rank.items():
            assert r["k"] == 114 and r["rows_per_rank"] < int(rows), (n, rows)
            assert r["orthogonality"] <= 1e-13 and r["reconstruction"] <= 1e-13, (n, rows, r)
            assert r["solution_difference"] <= 1e-13 and r["R_difference"] <= 1e-13, (n, rows, r)
            assert r["combination"] <= 1e-13, (n, rows, r)
            # appended by blocks from one projection (the block rule): the same factors; the repeated column is
            # refused as dependent
            blk = r["blocks"]
            assert blk["k"] == 114 and blk["dependent"] == [120], (n, rows, blk)
            assert blk["R_difference"] <= 1e-13 and blk["solution_difference"] <= 1e-13, (n, rows, blk)
            assert blk["gram"] <= 1e-13, (n, rows, blk)


def test_factored_integrand_is_the_assembled_matrix():
    """The factored integrand (modes' strains and stresses, no matrix) against the matrix of integrand_rows on FE
    data (C3D10 box, 6 modes, 10 elastic / J2 stresses): the same columns bit for bit, column norms, integrals
    and score products to round-off (1e-13 relative: sums of 6 N n_s products), float32 screening to single
    precision (1e-5 of the largest score), and the same ECM rule with exact products."""
    from structrom.rom.integrand import AssembledIntegrand, FactoredIntegrand

    disc, _, eps_modes, stress = fe_problem("C3D10", (6, 4, 3), 6, 0.55 + 0.2 * np.arange(10))
    G = integrand_rows(eps_modes, stress)
    f, a = FactoredIntegrand(eps_modes, stress), AssembledIntegrand(G)
    w = disc.point_weights
    assert f.shape == a.shape == G.shape
    loc = np.array([0, 7, disc.n_points - 1])
    assert np.array_equal(f.columns(loc), G[:, loc])
    (nf, mf), (na, ma) = f.norms_and_max(), a.norms_and_max()  # from 6 x 6 Gram matrices: round-off
    assert np.allclose(nf, na, rtol=1e-13, atol=0) and mf == pytest.approx(ma, rel=1e-13)
    b = a.weighted_sums(SELF, w)
    assert np.allclose(f.weighted_sums(SELF, w), b, rtol=0, atol=1e-13 * np.abs(b).max())
    r = np.random.default_rng(0).standard_normal(G.shape[0])
    s = G.T @ r
    assert np.allclose(f.scores(r), s, rtol=0, atol=1e-13 * np.abs(s).max())
    f.prepare_screening("float32")
    assert np.allclose(f.scores(r), s, rtol=0, atol=1e-5 * np.abs(s).max())
    qf = empirical_cubature(SELF, FactoredIntegrand(eps_modes, stress), w, np.arange(disc.n_points), tolerance=1e-6,
                            selection="block", screening="float64")
    qa = empirical_cubature(SELF, G, w, np.arange(disc.n_points), tolerance=1e-6, selection="block",
                            screening="float64")
    assert np.array_equal(qf.points, qa.points) and np.allclose(qf.weights, qa.weights, rtol=1e-10)
    with pytest.raises(ECMError, match="stress_local must have shape"):
        FactoredIntegrand(eps_modes, stress[:-1])
    bad = stress.copy()
    bad[3, 0, 1] = np.nan
    with pytest.raises(ECMError, match="stress snapshots has NaN"):
        empirical_cubature(SELF, FactoredIntegrand(eps_modes, bad), w, np.arange(disc.n_points), tolerance=1e-6)


def test_block_choice_in_the_pool_coordinates_is_the_explicit_least_squares():
    """The block rule's choice in the pool's coordinates (InBlock, from the pool's projection): after each point, the
    pool's scores V^T r, ||r|| and its constant row are those of the explicit least-squares residual on the selected
    columns plus the block's (random well-conditioned columns: 1e-12 of ||b||); a pool column already in the span is
    refused as dependent."""
    from structrom.rom.column_qr import ColumnQR
    from structrom.rom.ecm_block import InBlock

    rng = np.random.default_rng(7)
    n, k, p = 200, 30, 12
    A = rng.standard_normal((n, k))
    A /= np.linalg.norm(A, axis=0)
    V = rng.standard_normal((n, p))
    V[:, 5] = A[:, 3] - 0.5 * A[:, 8]  # in the span of the selected columns
    V /= np.linalg.norm(V, axis=0)
    b = rng.standard_normal(n)
    qr = ColumnQR(n)
    for j in range(k):
        qr.append(A[:, j])
    r = b - A @ np.linalg.lstsq(A, b, rcond=None)[0]
    H, M = qr.project(V)
    inb = InBlock(M, V.T @ r, r, qr.projected_row(V, H, n - 1), dependent=1e-12)
    chosen = []
    for j in (4, 0, 5, 9, 2):
        ok = inb.take(j)
        assert ok == (j != 5)
        chosen += [j] if ok else []
        B = np.column_stack([A, V[:, chosen]])
        r_j = b - B @ np.linalg.lstsq(B, b, rcond=None)[0]
        scale = np.linalg.norm(b)
        assert np.abs(inb.z - V.T @ r_j).max() <= 1e-12 * scale
        # the residual decrease of each candidate joining next, against the explicit least squares with it; none
        # for the taken columns and the dependent one (their projected part is round-off)
        free = np.ones(p, bool)
        free[chosen + [5]] = False
        d = inb.decreases(np.ones(p, bool))
        assert np.all(np.isneginf(d[~free]))
        for c in np.flatnonzero(free):
            Bc = np.column_stack([B, V[:, c]])
            r_c = b - Bc @ np.linalg.lstsq(Bc, b, rcond=None)[0]
            drop = np.sqrt(np.linalg.norm(r_j) ** 2 - np.linalg.norm(r_c) ** 2)
            assert abs(abs(d[c]) - drop) <= 1e-10 * scale, c
        assert abs(inb.norm - np.linalg.norm(r_j)) <= 1e-12 * scale
        assert abs(inb.rows_norm - np.linalg.norm(r_j[:-1])) <= 1e-12 * scale
    assert qr.append_projected(V, H, chosen) == [True] * len(chosen)
    assert np.allclose(qr.combination(qr.solve(b)), b - r_j, atol=1e-12 * np.linalg.norm(b))


def test_shortlist_keeps_the_guarantee_and_its_off_setting_is_the_block_rule(fe_integrand):
    """Scoring only a shortlist between full products: the tolerance is still met with positive weights, with fewer
    full products; full_scores_every=1 (a full product every block) gives the block rule's points."""
    disc, G = fe_integrand
    w, g = disc.point_weights, np.arange(disc.n_points)
    ref = empirical_cubature(SELF, G, w, g, tolerance=1e-5, selection="block")
    same = empirical_cubature(SELF, G, w, g, tolerance=1e-5, selection="block", shortlist=200, full_scores_every=1)
    assert same.points.tolist() == ref.points.tolist() and same.extra["n_short_scorings"] == 0
    q = empirical_cubature(SELF, G, w, g, tolerance=1e-5, selection="block", shortlist=200, full_scores_every=4)
    err = np.linalg.norm(G @ (q.local_weights(g) - w)) / np.linalg.norm(G @ w)
    assert q.converged and err <= 1e-5 * (1 + 1e-8) and np.all(q.weights > 0)
    assert q.extra["n_short_scorings"] > 0 and q.extra["n_scorings"] < ref.extra["n_scorings"]
    for bad in ({"shortlist": -1}, {"full_scores_every": 0}, {"shortlist": 1.5}):
        with pytest.raises(ECMError, match=next(iter(bad))):
            empirical_cubature(SELF, G, w, g, selection="block", **bad)


def test_condition_estimate_of_the_selected_columns():
    # the power-method estimate of cond(A) from R is a lower bound within a few percent of the SVD's (well-separated
    # extreme singular values: 8 steps converge)
    from structrom.rom.column_qr import ColumnQR
    rng = np.random.default_rng(3)
    A = rng.standard_normal((300, 40)) @ np.diag(np.logspace(0, -4, 40)) @ np.linalg.qr(rng.standard_normal((40, 40)))[0]
    A /= np.linalg.norm(A, axis=0)
    qr = ColumnQR(300)
    assert qr.condition() == 1.0
    for j in range(40):
        assert qr.append(A[:, j])
    exact = np.linalg.cond(A)
    assert 0.9 * exact <= qr.condition() <= exact * (1 + 1e-8)


@pytest.mark.parametrize("drops", [[3, 4, 5, 10, 11], [0, 1, 2, 118, 119], list(range(0, 120, 7))])
def test_deleting_many_columns_leaves_the_qr_of_the_kept_ones(drops):
    # removals from the last to the first, the rows above each compacted once: Q R is the kept columns (to
    # round-off of unit columns), R upper triangular, Q orthonormal, and appends continue from there
    from structrom.rom.column_qr import ColumnQR
    rng = np.random.default_rng(1)
    n, k = 400, 120
    A = rng.standard_normal((n, k + 3))
    A /= np.linalg.norm(A, axis=0)
    qr = ColumnQR(n, capacity=16)
    for j in range(k):
        assert qr.append(A[:, j])
    qr.delete_many(drops)
    for j in range(k, k + 3):
        assert qr.append(A[:, j])
    kept = np.concatenate([np.setdiff1d(np.arange(k), drops), np.arange(k, k + 3)])
    m = qr.k
    assert m == len(kept)
    Q, R = qr.Q[:, :m], qr.R[:m, :m]
    assert np.abs(np.tril(R, -1)).max() == 0.0
    assert np.abs(Q @ R - A[:, kept]).max() <= 1e-14
    assert np.abs(Q.T @ Q - np.eye(m)).max() <= 1e-13
    assert np.array_equal(qr.A[:, :m], A[:, kept])


def test_triangular_solves_read_the_leading_block_of_a_padded_buffer():
    # BLAS dtrsv on R[:k, :k] of a larger Fortran buffer (leading dimension > k, other entries not zero) gives LAPACK's
    # solution on a copy of the block: a well-conditioned R (diagonally dominant), so both agree to 1e-13
    from structrom.rom.strided_blas import solve_upper

    rng = np.random.default_rng(11)
    k, cap = 37, 64
    R = np.asfortranarray(rng.standard_normal((cap + 8, cap)))
    R[:k, :k] = np.triu(rng.standard_normal((k, k))) + 8 * np.eye(k)
    rhs = rng.standard_normal(k)
    for trans in (False, True):
        x = solve_upper(R, k, rhs, trans=trans)
        ref = sla.solve_triangular(R[:k, :k].copy(), rhs, trans="T" if trans else "N")
        assert np.abs(x - ref).max() <= 1e-13 * np.abs(ref).max()
    assert solve_upper(R, 0, np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="Fortran-ordered float64"):
        solve_upper(np.ascontiguousarray(R), k, rhs)


def test_least_squares_returns_the_residual_of_its_solution():
    # after appends and removals, the weights are the least-squares solution (cond(A) ~ 1e3: to 1e-10) and the residual
    # returned with them is b - A x itself, orthogonal to the columns, to round-off (1e-13 of ||b||)
    from structrom.rom.column_qr import ColumnQR

    rng = np.random.default_rng(5)
    n, k = 400, 60
    A = rng.standard_normal((n, k)) @ np.diag(np.logspace(0, -3, k))
    A /= np.linalg.norm(A, axis=0)
    b = rng.standard_normal(n)
    qr = ColumnQR(n)
    for j in range(k):
        assert qr.append(A[:, j])
    qr.delete_many([3, 17, 18, 40])
    kept = np.delete(A, [3, 17, 18, 40], axis=1)
    x, r = qr.least_squares(b)
    ref = np.linalg.lstsq(kept, b, rcond=None)[0]
    scale = np.linalg.norm(b)
    assert np.abs(x - ref).max() <= 1e-10 * np.abs(ref).max()
    assert np.abs(r - (b - kept @ x)).max() <= 1e-13 * scale
    assert np.abs(kept.T @ r).max() <= 1e-13 * scale
    assert np.array_equal(qr.solve(b), x)
