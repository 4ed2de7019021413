"""EIM of matrix powers: online log-determinants and inverse actions of a parametrized diffusion matrix.

``A(mu) = A_bg + 10^mu_1 A_1 + 10^mu_2 A_2``: the 5-point finite-difference matrix of ``-div(k grad u)`` on the
unit square (homogeneous Dirichlet, ``m x m`` interior nodes) with conductivity 1 in the background and
``10^mu_1``, ``10^mu_2`` in two square inclusions; ``mu`` in ``[-0.3, 0.3]^2`` (conductivity ratios 0.5..2).
Offline (:mod:`structrom.eim.matrix_functions`): 400 training parameters (20 x 20 grid), the EIM of the
monomials of the Neumann deviations up to degree ``K``, exact sparse LU values at the selected parameters
(``mode="limit"``); online: ``d`` monomials, a ``d x d`` solve, a combination of ``d`` stored values.
Test: ``--tests`` random parameters (seed 1) against SuperLU (``log |diag U|`` and a sparse solve).

    python examples/eim_matrix_functions.py                  # 10,201 dofs, 25 test parameters
    mpirun -n 2 python examples/eim_matrix_functions.py      # same selection, solves dealt to the ranks
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from structrom.eim.matrix_functions import (AffineFamily, inverse_action, log_determinant, sparse_logdet,  # noqa: E402
                                            splu_spd)
from structrom.eim.synthetic import diffusion_2d  # noqa: E402

INCLUSIONS = ((0.2, 0.45, 0.2, 0.45), (0.55, 0.8, 0.5, 0.85))  # (x0, x1, y0, y1)


def inclusion_family(m: int) -> AffineFamily:
    """The 3-term family of the module docstring on ``m x m`` nodes (``n = m^2`` dofs)."""
    def box(x0, x1, y0, y1):
        return lambda x, y: ((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).astype(float)

    inside = [box(*b) for b in INCLUSIONS]
    background = diffusion_2d(m, lambda x, y: 1.0 - sum(f(x, y) for f in inside))
    terms = [background] + [diffusion_2d(m, f) for f in inside]
    return AffineFamily(terms, lambda mu: np.array([1.0, 10.0 ** mu[0], 10.0 ** mu[1]]))


def training_grid(n: int = 20, half_width: float = 0.3) -> list[np.ndarray]:
    g = np.linspace(-half_width, half_width, n)
    return [np.array([a, b]) for a in g for b in g]


def run(m: int = 101, n_tests: int = 25, max_degree: int = 30, max_terms: int = 60, comm=None,
        log=print) -> dict:
    rank = 0 if comm is None else comm.Get_rank()
    say = log if rank == 0 else (lambda *a: None)
    family = inclusion_family(m)
    n = family.n
    train = training_grid()
    mu_ref = np.zeros(2)
    tests = list(np.random.default_rng(1).uniform(-0.3, 0.3, size=(n_tests, 2)))
    b = np.ones(n) / (m + 1) ** 2
    t0 = time.perf_counter()
    ld = log_determinant(family, train, mu_ref=mu_ref, max_degree=max_degree, max_terms=max_terms, comm=comm)
    t_ld = time.perf_counter() - t0
    t0 = time.perf_counter()
    inv = inverse_action(family, b, train, mu_ref=mu_ref, max_degree=max_degree, max_terms=max_terms, comm=comm)
    t_inv = time.perf_counter() - t0
    sc = ld.entries.scaling
    say(f"n = {n} dofs, Q = 3 terms, {len(train)} training parameters, degree <= {max_degree} "
        f"({len(ld.entries.exponents)} monomials); spectral bounds [{sc.lower:.3f}, {sc.upper:.3f}], "
        f"c = {sc.c:.4f}, rho = {sc.rho:.3f}; offline log det {t_ld:.1f} s ({ld.n_terms} terms), "
        f"inverse {t_inv:.1f} s ({inv.n_terms} terms)")
    # references: SuperLU of every test matrix
    ref_ld, ref_x, t_ref_ld, t_ref_x = [], [], [], []
    for mu in tests:
        A = family.matrix(mu)
        t0 = time.perf_counter()
        ref_ld.append(sparse_logdet(A))
        t_ref_ld.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref_x.append(splu_spd(A).solve(b))
        t_ref_x.append(time.perf_counter() - t0)
    terms = sorted({d for d in (1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60) if d <= min(ld.n_terms, inv.n_terms)}
                   | {min(ld.n_terms, inv.n_terms)})
    rows = []
    for d in terms:
        e_ld = max(abs(ld(mu, d) - r) / abs(r) for mu, r in zip(tests, ref_ld))
        e_x = max(np.linalg.norm(inv.solve(mu, d) - x) / np.linalg.norm(x) for mu, x in zip(tests, ref_x))
        rows.append((d, e_ld, e_x))

    def online_time(fn) -> float:
        fn(tests[0])
        t0 = time.perf_counter()
        for _ in range(20):
            for mu in tests:
                fn(mu)
        return (time.perf_counter() - t0) / (20 * len(tests))

    t_on_ld = online_time(ld)
    t_on_x = online_time(inv.solve)
    t_coef = online_time(inv.coefficients)
    out = {"n": n, "rows": rows, "rho": sc.rho, "terms": (ld.n_terms, inv.n_terms),
           "online": {"logdet": t_on_ld, "inverse": t_on_x, "coefficients": t_coef},
           "reference": {"logdet": float(np.mean(t_ref_ld)), "inverse": float(np.mean(t_ref_x))},
           "offline": {"logdet": t_ld, "inverse": t_inv},
           "logdet_points": ld.separation.entry_rows.tolist(), "logdet_params": ld.separation.param_indices.tolist(),
           "inverse_points": inv.separation.entry_rows.tolist()}
    say(f"| d | max rel. error log det | max rel. error A^-1 b |\n| ---: | ---: | ---: |")
    for d, a, x in rows:
        say(f"| {d} | {a:.2e} | {x:.2e} |")
    say(f"online (all terms, mean of {len(tests)} x 20): log det {1e6 * t_on_ld:.0f} us, "
        f"A^-1 b {1e6 * t_on_x:.0f} us (coefficients alone {1e6 * t_coef:.0f} us); SuperLU reference: "
        f"log det {1e3 * out['reference']['logdet']:.1f} ms, solve {1e3 * out['reference']['inverse']:.1f} ms")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--m", type=int, default=101, help="interior nodes per side (n = m^2 dofs)")
    parser.add_argument("--tests", type=int, default=25)
    parser.add_argument("--degree", type=int, default=30, help="largest monomial degree K")
    parser.add_argument("--max-terms", type=int, default=60)
    args = parser.parse_args()
    comm = None
    if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    run(args.m, args.tests, args.degree, args.max_terms, comm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
