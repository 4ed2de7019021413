"""Nonintrusive matrix separation, reduced solve and the stabilized residual estimator."""
import time

import numpy as np
import pytest
import scipy.io
import scipy.sparse.linalg as spla

from structrom.eim.errors import EIMError, EIMWarning
from structrom.eim.estimator import ResidualEstimator, residual_vectors, theta
from structrom.eim.reduced_solve import ReducedSystem
from structrom.eim.separation import AssembledEntries, EntryEvaluator, separate_matrices, separate_vectors
from structrom.eim.synthetic import Diffusion2DEntries, affine_1d, diffusion_1d, nonaffine_2d

N_1D = 200


def affine_training():
    return np.array([[a, b] for a in np.linspace(0.0, 4.0, 6) for b in np.linspace(0.0, 4.0, 6)])


def test_affine_family_is_recovered_exactly_with_as_many_terms_as_components():
    train = affine_training()
    sep = separate_matrices([affine_1d(N_1D, mu) for mu in train], train)
    assert sep.n_terms == 3 and sep.greedy.stop_reason == "round-off"
    assert np.array_equal(sep.parameters, train[sep.param_indices])
    ev = AssembledEntries(lambda mu: affine_1d(N_1D, mu))
    assert isinstance(ev, EntryEvaluator)
    worst = 0.0
    for mu in np.random.default_rng(0).uniform(-1.0, 6.0, size=(10, 2)):  # also outside the training box
        A = affine_1d(N_1D, mu)
        approx = sep.approximate(mu, ev)
        worst = max(worst, spla.norm(A - approx) / spla.norm(A))
    print(f"\naffine family: d = {sep.n_terms}, worst relative matrix error {worst:.2e}")
    assert worst <= 1e-12
    # The selected entries are in the pattern and F is their values at the selected parameters.
    for l, (i, j) in enumerate(zip(sep.entry_rows, sep.entry_cols)):
        for k, J in enumerate(sep.param_indices):
            assert sep.interpolation_matrix[l, k] == affine_1d(N_1D, train[J])[i, j]


def test_nonaffine_diffusion_decay_table_and_online_time():
    m = 48
    n = m * m
    train = np.linspace(0.0, 20.0, 61)
    mats = [nonaffine_2d(m, mu) for mu in train]
    sep = separate_matrices(mats, train, max_terms=24)
    ev = Diffusion2DEntries(m)
    b = np.ones(n)
    snaps = np.array([spla.spsolve(A.tocsc(), b) for A in mats[::3]]).T
    V = np.linalg.svd(snaps, full_matrices=False)[0][:, :12]
    test = np.linspace(0.31, 19.7, 6)
    full = {mu: nonaffine_2d(m, mu) for mu in test}
    ref = {mu: spla.spsolve(full[mu].tocsc(), b) for mu in test}
    rows = []
    for d in (1, 2, 4, 6, 8, 10, 12, 14, 16, sep.n_terms):
        sd = sep.truncated(d)
        system = ReducedSystem.build(sd, V, b)
        m_err = u_err = 0.0
        for mu in test:
            beta = sd.coefficients_for(mu, ev)
            m_err = max(m_err, spla.norm(full[mu] - sd.assemble(beta)) / spla.norm(full[mu]))
            u_err = max(u_err, np.linalg.norm(ref[mu] - V @ system.solve(beta)) / np.linalg.norm(ref[mu]))
        rows.append((d, m_err, u_err))
    system = ReducedSystem.build(sep, V, b)
    t0 = time.perf_counter()
    reps = 50
    for _ in range(reps):
        system.solve_mu(7.7, ev)
    t_online = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    spla.spsolve(nonaffine_2d(m, 7.7).tocsc(), b)
    t_full = time.perf_counter() - t0
    print(f"\nnon-affine 2-D diffusion k = 1/(1 + mu r^2), {n} dofs, N = 12, greedy errors "
          f"{sep.greedy.errors[-1] / sep.greedy.errors[0]:.1e} (relative, training)")
    print("| d | matrix error | reduced-solution error |")
    for d, me, ue in rows:
        print(f"| {d} | {me:.2e} | {ue:.2e} |")
    print(f"online (d = {sep.n_terms} entries + reduced solve) {t_online * 1e6:.0f} us; "
          f"full assembly + sparse solve {t_full * 1e3:.1f} ms")
    assert rows[-1][1] <= 1e-7 and rows[-1][2] <= 1e-6
    assert rows[0][1] > 1e3 * rows[-1][1]
    assert t_online < t_full


def test_file_petsc_and_union_pattern_inputs(tmp_path):
    from structrom.mpi.petsc import PETSc

    train = affine_training()[::4]
    mats = [affine_1d(30, mu) for mu in train]
    ref = separate_matrices(mats, train)
    paths = []
    for j, A in enumerate(mats):
        paths.append(tmp_path / f"A{j}.mtx")
        scipy.io.mmwrite(str(paths[-1]), A, precision=17)
    from_files = separate_matrices(paths, train)
    petsc = [PETSc.Mat().createAIJ(size=A.shape, csr=(A.indptr, A.indices, A.data), comm=PETSc.COMM_SELF)
             for A in mats]
    for P in petsc:
        P.assemble()
    from_petsc = separate_matrices(petsc, train)
    for other in (from_files, from_petsc):
        assert np.array_equal(other.entry_rows, ref.entry_rows) and np.array_equal(other.entry_cols, ref.entry_cols)
        assert np.array_equal(other.param_indices, ref.param_indices)
        assert np.array_equal(other.greedy.errors, ref.greedy.errors)
    ev = AssembledEntries(lambda mu: petsc[1])
    assert np.allclose(ev.entries(None, ref.entry_rows, ref.entry_cols),
                       np.asarray(mats[1][ref.entry_rows, ref.entry_cols]).ravel())
    # Different patterns: the union is used (absent entries are 0)...
    varied = [A.tolil() for A in mats]
    varied[0][0, 5] = 1.0
    varied[2][7, 1] = -2.0
    sep = separate_matrices([A.tocsr() for A in varied], train)
    assert sep.n_terms >= 3
    # ...unless identical patterns are required.
    with pytest.raises(EIMError, match="sparsity patterns differ"):
        separate_matrices([A.tocsr() for A in varied], train, same_pattern=True)


def test_bad_matrix_inputs():
    train = affine_training()[:3]
    mats = [affine_1d(20, mu) for mu in train]
    with pytest.raises(EIMError, match=r"different shapes: matrix 0 is \(20, 20\), matrix 2 is \(21, 21\)"):
        separate_matrices(mats[:2] + [affine_1d(21, train[2])], train)
    bad_params = train.copy()
    bad_params[1, 0] = np.nan
    with pytest.raises(EIMError, match="parameter values contain NaN/inf \\(training parameter 1"):
        separate_matrices(mats, bad_params)
    broken = mats[2].copy()
    broken.data[4] = np.nan
    with pytest.raises(EIMError, match="non-finite"):
        separate_matrices(mats[:2] + [broken], train)
    with pytest.raises(EIMError, match="cannot read Matrix Market"):
        separate_matrices(["/nonexistent/A.mtx"])
    with pytest.raises(EIMError, match="no training matrices"):
        separate_matrices([])
    with pytest.warns(EIMWarning, match="below the round-off level"):
        separate_matrices(mats, train, rtol=1e-17)


def test_vector_separation_and_reduced_solve_with_separated_rhs():
    x = (np.arange(N_1D) + 1.0) / (N_1D + 1)
    train = np.linspace(0.5, 5.0, 30)
    rhs_family = lambda mu: np.exp(-mu * x) + x * x  # noqa: E731
    rsep = separate_vectors(np.array([rhs_family(mu) for mu in train]).T, train)
    assert rsep.greedy.errors[-1] <= 1e-12 * rsep.greedy.errors[0]
    rev = AssembledEntries(rhs_family)
    mu_new = 2.345
    assert np.allclose(rsep.approximate(mu_new, rev), rhs_family(mu_new), atol=1e-12, rtol=0)
    # Reduced solve with an affine matrix family and the separated rhs equals the Galerkin solve.
    mtrain = affine_training()
    msep = separate_matrices([affine_1d(N_1D, mu) for mu in mtrain], mtrain)
    V = np.linalg.qr(np.random.default_rng(1).standard_normal((N_1D, 6)))[0]
    system = ReducedSystem.build(msep, V, rsep)
    mu = np.array([1.1, 2.2])
    menv = AssembledEntries(lambda p: affine_1d(N_1D, p))
    beta, gamma = system.coefficients(mu, menv, AssembledEntries(lambda p: rhs_family(2.345)))
    u_N = system.solve(beta, gamma)
    A = affine_1d(N_1D, mu)
    galerkin = np.linalg.solve(V.T @ (A @ V), V.T @ rhs_family(2.345))
    assert np.allclose(u_N, galerkin, rtol=1e-10, atol=0)
    with pytest.raises(EIMError, match="pass rhs_entries"):
        system.coefficients(mu, menv)


def test_stabilized_estimator_follows_the_true_residual_where_the_classical_one_stalls():
    """Reduced bases of growing size N for k = 1 + mu x (1-D): ||r||_{X'} / ||b||_{X'} decays to ~1e-13.
    The truth is the exact residual of the computed u_N (long double, iteratively refined X^-1 r)."""
    n = 400
    fam = lambda mu: diffusion_1d(n, lambda x: 1.0 + mu * x)  # noqa: E731
    train = np.linspace(0.0, 20.0, 9)
    sep = separate_matrices([fam(m) for m in train], train)
    assert sep.n_terms == 2
    b = np.ones(n)
    snaps = np.array([spla.spsolve(fam(m).tocsc(), b) for m in np.linspace(0.0, 20.0, 40)]).T
    U = np.linalg.svd(snaps, full_matrices=False)[0]
    X = fam(3.0).tocsc()
    lu = spla.splu(X)
    Xl = X.astype(np.longdouble)
    b_dual = np.sqrt(b @ lu.solve(b))
    ev = AssembledEntries(fam)
    mu = 7.31
    rows = []
    for N in range(2, 19):
        V = U[:, :N]
        system = ReducedSystem.build(sep, V, b)
        est = ResidualEstimator.build(sep.basis, b[:, None], V, norm_matrix=X)
        beta, gamma = system.coefficients(mu, ev)
        th = theta(beta, gamma, system.solve(beta, gamma))
        r = residual_vectors(sep.basis, b[:, None], V).astype(np.longdouble) @ th.astype(np.longdouble)
        y = lu.solve(r.astype(float)).astype(np.longdouble)
        for _ in range(3):
            y = y + lu.solve((r - Xl @ y).astype(float)).astype(np.longdouble)
        true = float(np.sqrt(np.sum(r * y)))
        classical = est.residual_norm(th, "classical")
        stable = est.residual_norm(th, "stabilized")
        rows.append((N, true / b_dual, abs(classical - true) / true, abs(stable - true) / true))
    print("\n| N | ||r||/||b|| (true) | classical rel. error | stabilized rel. error |")
    for N, rel, ce, se in rows:
        print(f"| {N} | {rel:.2e} | {ce:.1e} | {se:.1e} |")
    rel = np.array([r[1] for r in rows])
    ce = np.array([r[2] for r in rows])
    se = np.array([r[3] for r in rows])
    assert rel.min() < 1e-12
    assert np.all(se[rel >= 1e-12] < 1e-3)                # stabilized follows down to 1e-12
    assert np.all(ce[rel < 1e-9] > 0.1)                   # classical has lost all digits below ~1e-8..1e-9
    assert np.all(ce[rel > 1e-4] < 1e-6)                  # ... though it is fine for large residuals
    assert est.error_bound(th, 0.5) == pytest.approx(2 * est.residual_norm(th))
