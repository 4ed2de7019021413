"""EIM separation of a temperature-dependent elastic stiffness.

Plate ``100 x 40 x 10`` mm (structured C3D8 box), clamped on its ``x = 0`` face, 1 MPa pressure on its top
face. Young's modulus depends on temperature through a table (200 GPa at 20 C down to 100 GPa at 800 C,
nonlinear), nu = 0.3, no thermal expansion (the right-hand side is then independent of mu). The
temperature is a Gaussian hot spot ``T = 20 + I exp(-|x - c|^2 / (2 r^2))``, ``c = (x_c, 20, 5)``, ``r = 15``
mm, with the parameter ``mu = (I, x_c)``: ``A(mu) = K(E(T(mu)))`` depends on mu non-affinely.

Offline: ``A(mu_j)`` assembled by the full kernel on a training grid, :func:`structrom.eim.separate_matrices`, POD
basis of the full solutions at the training mu, :class:`eim.ReducedSystem`. Test: random mu inside the
box; for every number of terms d, the max over test mu of the relative Frobenius matrix error and of the
relative reduced-solution error; and the online time (d entries by :class:`structrom.rom.eim_entries.StiffnessEntries`
+ coefficients + reduced solve) against a full assembly + sparse direct solve (PETSc MUMPS Cholesky, else
scipy's SuperLU) at the same mu.

    python examples/eim_thermoelastic.py            # 56,133 dofs
    python examples/eim_thermoelastic.py --quick    # 3,300 dofs
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from structrom.eim import ReducedSystem, separate_matrices  # noqa: E402
from structrom.rom.eim_entries import StiffnessEntries  # noqa: E402
from structrom.rom.fem.kernel import Discretization  # noqa: E402
from structrom.rom.fem.structured import box  # noqa: E402
from structrom.rom.loading import HotSpotTemperature  # noqa: E402
from structrom.rom.materials.elastic import LinearElastic  # noqa: E402
from structrom.rom.materials.tables import Table  # noqa: E402

try:
    from structrom.mpi.petsc import PETSc
except ImportError:  # pragma: no cover
    PETSc = None

LENGTHS = (100.0, 40.0, 10.0)
FULL_DIVISIONS = (80, 32, 6)  # 56,133 dofs
QUICK_DIVISIONS = (24, 10, 3)  # 3,300 dofs
_T = np.linspace(20.0, 800.0, 27)
#: E(T) [MPa]: 200 GPa at 20 C, 100 GPa at 800 C, concave (a table on 30 C steps of a smooth curve)
E_TABLE = (_T, 200e3 - 100e3 * ((_T - 20.0) / 780.0) ** 1.5)
INTENSITY = (200.0, 780.0)  # C above the 20 C reference
XPOS = (15.0, 85.0)  # mm
RADIUS = 15.0
PRESSURE = 1.0  # MPa on zmax


def hot_spot(mu) -> HotSpotTemperature:
    return HotSpotTemperature(center=(float(mu[1]), LENGTHS[1] / 2, LENGTHS[2] / 2), radius=RADIUS,
                              intensity=float(mu[0]), reference=20.0)


def make_problem(divisions=FULL_DIVISIONS, element: str = "C3D8"):
    """``(mesh, evaluator (StiffnessEntries), rhs (n,), fixed dofs)``."""
    mesh = box(LENGTHS, divisions, element)
    law = LinearElastic(young=Table(*E_TABLE, name="young"), poisson=0.3)
    fixed = (3 * mesh.node_set("xmin")[:, None] + np.arange(3)).ravel()
    evaluator = StiffnessEntries(mesh, law, hot_spot, fixed)
    f = Discretization(mesh).pressure_force(mesh.surface_set("zmax"), PRESSURE)
    f[fixed] = 0.0
    return mesh, evaluator, f, fixed


def training_grid(n_intensity: int, n_x: int) -> np.ndarray:
    I, X = np.meshgrid(np.linspace(*INTENSITY, n_intensity), np.linspace(*XPOS, n_x), indexing="ij")
    return np.column_stack([I.ravel(), X.ravel()])


def test_parameters(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(*INTENSITY, n), rng.uniform(*XPOS, n)])


class DirectSolver:
    """Sparse direct solve of one SPD system: PETSc MUMPS Cholesky when available, else SuperLU."""

    def __init__(self, use_petsc: bool = True) -> None:
        self.use_petsc = use_petsc and PETSc is not None and PETSc.Sys.hasExternalPackage("mumps")
        self.name = "PETSc MUMPS Cholesky" if self.use_petsc else "scipy SuperLU"

    def __call__(self, A, b: np.ndarray) -> np.ndarray:
        if not self.use_petsc:
            return spla.spsolve(A.tocsc(), b)
        it = PETSc.IntType
        M = PETSc.Mat().createAIJ(size=A.shape, csr=(A.indptr.astype(it), A.indices.astype(it), A.data),
                                  comm=PETSc.COMM_SELF)
        M.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        M.setOption(PETSc.Mat.Option.SPD, True)
        ksp = PETSc.KSP().create(comm=PETSc.COMM_SELF)
        ksp.setType("preonly")
        pc = ksp.getPC()
        pc.setType("cholesky")
        pc.setFactorSolverType("mumps")
        ksp.setOperators(M)
        bv = M.createVecLeft()
        bv.array[:] = b
        x = M.createVecRight()
        ksp.solve(bv, x)
        out = x.array.copy()
        for o in (ksp, M, bv, x):
            o.destroy()
        return out


def pod(U: np.ndarray, rtol: float, max_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Left singular vectors with ``sigma_k / sigma_1 > rtol`` (at most ``max_modes``), and all sigmas."""
    Q, s, _ = np.linalg.svd(U, full_matrices=False)
    N = int(min(max_modes, np.sum(s > rtol * s[0])))
    return Q[:, :N], s


def run(divisions=FULL_DIVISIONS, n_intensity: int = 3, n_x: int = 10, n_test: int = 3, max_terms: int = 25,
        pod_rtol: float = 1e-7, max_modes: int = 20, d_values=None, use_petsc: bool = True,
        verbose: bool = True) -> dict:
    log = (lambda *a, **k: print(*a, **k, flush=True)) if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    mesh, ev, f, fixed = make_problem(divisions)
    solver = DirectSolver(use_petsc)
    log(f"mesh: {mesh.n_elements} C3D8, {mesh.n_dofs} dofs ({len(fixed)} fixed); solver: {solver.name}")
    mus = training_grid(n_intensity, n_x)
    mats, snaps = [], []
    t = time.perf_counter()
    for mu in mus:
        A = ev.assemble(mu)
        mats.append(A)
        snaps.append(solver(A, f))
    t_train = time.perf_counter() - t
    log(f"training: {len(mus)} assemblies + solves in {t_train:.1f} s")
    t = time.perf_counter()
    sep = separate_matrices(mats, mus, same_pattern=True, max_terms=max_terms)
    t_sep = time.perf_counter() - t
    log(f"separation: {sep.n_terms} terms in {t_sep:.1f} s (greedy max-norm errors "
        f"{sep.greedy.errors[0]:.3g} -> {sep.greedy.errors[-1]:.3g})")
    del mats
    V, sig = pod(np.column_stack(snaps), pod_rtol, max_modes)
    log(f"POD: N = {V.shape[1]} (sigma_N / sigma_1 = {sig[V.shape[1] - 1] / sig[0]:.2e})")
    t = time.perf_counter()
    red = ReducedSystem.build(sep, V, f)
    t_red = time.perf_counter() - t

    tests = test_parameters(n_test)
    d_max = sep.n_terms
    if d_values is None:
        d_values = sorted({d for d in (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 25, 30) if d <= d_max} | {d_max})
    mat_err = np.zeros((len(d_values), n_test))
    sol_err = np.zeros((len(d_values), n_test))
    proj_err = np.zeros(n_test)
    t_full, t_asm = [], []
    for k, mu in enumerate(tests):
        t = time.perf_counter()
        A = ev.assemble(mu)
        t1 = time.perf_counter()
        u = solver(A, f)
        t_full.append(time.perf_counter() - t)
        t_asm.append(t1 - t)
        nA = np.sqrt(np.sum(A.data ** 2))
        nu_ = np.linalg.norm(u)
        proj_err[k] = np.linalg.norm(u - V @ (V.T @ u)) / nu_
        a = ev.entries(mu, sep.entry_rows, sep.entry_cols)
        for i, d in enumerate(d_values):
            sd = sep.truncated(d)
            beta = sd.coefficients(a[:d])
            Ad = sd.assemble(beta)
            diff = (Ad - A).tocsr()
            mat_err[i, k] = np.sqrt(np.sum(diff.data ** 2)) / nA
            uN = ReducedSystem(red.A_red[:d], red.b_red, sd, None).solve(beta)
            sol_err[i, k] = np.linalg.norm(u - V @ uN) / nu_
    # online timing at d_max: first call builds the element subset (cached), then warm calls
    ev.plans.clear()
    t = time.perf_counter()
    red.solve_mu(tests[0], ev)
    t_first = time.perf_counter() - t
    reps = 20
    t_entries, t_online = [], []
    for mu in tests:
        for _ in range(reps):
            t = time.perf_counter()
            a = ev.entries(mu, sep.entry_rows, sep.entry_cols)
            t1 = time.perf_counter()
            red.solve(sep.coefficients(a))
            t_online.append(time.perf_counter() - t)
            t_entries.append(t1 - t)
    plan = next(iter(ev.plans.values()))
    out = dict(n_dofs=mesh.n_dofs, n_elements=mesh.n_elements, n_train=len(mus), d_max=d_max, N=V.shape[1],
               d_values=list(d_values), mat_err=mat_err.max(1), sol_err=sol_err.max(1), proj_err=proj_err.max(),
               greedy_errors=sep.greedy.errors, t_train=t_train, t_sep=t_sep, t_red=t_red,
               t_full=float(np.median(t_full)), t_asm=float(np.median(t_asm)), t_first=t_first,
               t_entries=float(np.median(t_entries)), t_online=float(np.median(t_online)),
               subset_elements=len(plan.disc.elements), subset_nodes=len(plan.nodes), solver=solver.name,
               total=time.perf_counter() - t0, sep=sep)
    log(f"\ntest: {n_test} mu = {np.round(tests, 1).tolist()}; POD projection error (max) {out['proj_err']:.2e}")
    log("\n| d | max rel. matrix error (Frobenius) | max rel. reduced-solution error |")
    log("| ---: | ---: | ---: |")
    for d, me, se in zip(d_values, out["mat_err"], out["sol_err"]):
        log(f"| {d} | {me:.2e} | {se:.2e} |")
    log(f"\nonline (d = {d_max}, N = {V.shape[1]}): entries {1e3 * out['t_entries']:.2f} ms on "
        f"{out['subset_elements']} of {mesh.n_elements} elements ({out['subset_nodes']} nodes), total "
        f"{1e3 * out['t_online']:.2f} ms (median); first call incl. element-subset setup {1e3 * t_first:.1f} ms")
    log(f"full: assembly {out['t_asm']:.2f} s + {solver.name} = {out['t_full']:.2f} s (median); "
        f"speedup {out['t_full'] / out['t_online']:.0f}x")
    log(f"offline: training {t_train:.1f} s, separation {t_sep:.1f} s, reduced operators {t_red:.2f} s; "
        f"total run {out['total']:.1f} s")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small mesh (3,300 dofs)")
    p.add_argument("--n-intensity", type=int, default=3)
    p.add_argument("--n-x", type=int, default=10)
    p.add_argument("--n-test", type=int, default=3)
    p.add_argument("--max-terms", type=int, default=25)
    p.add_argument("--scipy", action="store_true", help="use scipy SuperLU instead of PETSc MUMPS")
    a = p.parse_args()
    run(QUICK_DIVISIONS if a.quick else FULL_DIVISIONS, a.n_intensity, a.n_x, a.n_test, a.max_terms,
        use_petsc=not a.scipy)


if __name__ == "__main__":
    main()
