"""Distributed assembly and solve give the serial answer for 1, 2 and 3 ranks."""
import numpy as np
import pytest

from mpi_helpers import run_program

pytestmark = pytest.mark.mpi


def test_assembly_matches_serial_for_any_rank_count():
    results = {n: run_program(n, "assembly_solve.py") for n in (1, 2, 3)}
    for n, res in results.items():
        assert res["error"] < 1e-10, (n, res["error"])
    x1 = np.array(results[1]["x"])
    for n in (2, 3):
        assert np.linalg.norm(np.array(results[n]["x"]) - x1) <= 1e-10 * np.linalg.norm(x1)


def test_recursive_bisection_balances_odd_part_counts():
    from structrom.mpi.partition import recursive_bisection

    pts = np.random.default_rng(0).random((1000, 3))
    for p in (1, 2, 3, 5, 7):
        part = recursive_bisection(pts, p)
        counts = np.bincount(part, minlength=p)
        assert counts.sum() == 1000 and counts.max() - counts.min() <= 1
        assert np.array_equal(part, recursive_bisection(pts, p))  # deterministic


def test_a_kept_preconditioner_that_fails_is_rebuilt_once():
    """A preconditioner kept from the previous values of the matrix (Newton's reuse) that makes the Krylov solver
    fail is rebuilt from the current values and the solve redone: an exact factorization of the new values solves
    a diagonal system with a spread spectrum in one CG iteration, the stale one (of the identity) cannot in 10."""
    from mpi4py import MPI

    from structrom.mpi.linear_solver import LinearSolver, LinearSolverError, LinearSolverOptions
    from structrom.mpi.petsc import PETSc

    n = 100
    mat = PETSc.Mat().createAIJ([n, n], nnz=1, comm=MPI.COMM_SELF)
    for i in range(n):
        mat.setValue(i, i, 1.0)
    mat.assemble()
    opts = LinearSolverOptions(ksp_type="cg", pc_type="lu", rtol=1e-10, max_it=10, eisenstat_walker=False)
    solver = LinearSolver(MPI.COMM_SELF, opts, prefix="kept_pc_test_")
    rhs = np.ones(n)
    x, its = solver.solve(mat, rhs)
    assert np.allclose(x, rhs) and its <= 1 and solver.n_rebuilt == 0
    d = 1.0 + np.arange(n) ** 2  # new values, same pattern: condition number 1e4
    for i in range(n):
        mat.setValue(i, i, d[i])
    mat.assemble()
    x, its = solver.solve(mat, rhs, reuse=True)
    assert solver.n_rebuilt == 1 and np.allclose(x, rhs / d, rtol=1e-8)
    assert its >= 10  # the failed attempt's iterations are counted
    # without reuse, a solver that cannot converge still reports it (no retry to hide it)
    stuck = LinearSolver(MPI.COMM_SELF, LinearSolverOptions(ksp_type="cg", pc_type="none", max_it=10,
                                                             eisenstat_walker=False), prefix="kept_pc_none_")
    with pytest.raises(LinearSolverError, match="DIVERGED_MAX_IT"):
        stuck.solve(mat, rhs)
    assert stuck.n_rebuilt == 0
