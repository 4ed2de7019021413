"""Test fixtures for the online stage: reduced model files built WITHOUT hyper-reduction.

:func:`build_exact_model` runs a few small HF solves in-process (one rank, MUMPS), takes every
converged increment's displacement as a snapshot, computes a tight mass-weighted POD and writes a
valid :mod:`structrom.rom.model_file` whose reduced points are ALL integration points with their FE weights
(or, with ``n_reduced_points``, evenly spaced points with rescaled weights, for timing tests only). With all
points the only approximation left is the Galerkin projection onto the POD space, so the online
solver can be tested independently of the offline pipeline.

The problem family: a cantilever box ``[0, L] x [0, 1] x [0, 1]`` clamped on ``xmin`` (all three
components), J2 plasticity with linear hardening and thermal expansion, loaded by a pressure on
``zmax`` ramped linearly to ``peak`` over ``[0, 1]`` and a Gaussian hot spot near the clamped root
ramped the same way. Parameters of a loading: ``(pressure, intensity)``.

Building imports PETSc (HF solver); the online path under test must not.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LAW = {
    "type": "j2_plasticity",
    "elastic": {"young": 1000.0, "poisson": 0.3, "expansion": 1e-3, "reference_temperature": 0.0,
                "density": 1.0},
    "hardening": {"type": "linear", "yield_stress": 1.0, "modulus": 100.0},
}
LENGTH = 4.0
CENTER = (0.4, 0.5, 1.0)
RADIUS = 0.5
TIMES = [0.0, 0.25, 0.5, 0.75, 1.0]
#: Training parameters (pressure peak, hot-spot intensity): a 3 x 3 grid.
TRAINING = [(P, I) for P in (0.03, 0.04, 0.05) for I in (0.0, 0.25, 0.5)]
SURFACE = "zmax"
CLAMP = "xmin"


def loading_dict(pressure: float, intensity: float, *, center=CENTER, radius=RADIUS, times=None,
                 surface: str = SURFACE) -> dict:
    """The query (``loading_from_dict``) form of one loading of the family."""
    return {
        "times": list(TIMES if times is None else times),
        "pressure": {surface: [[0.0, 0.0], [1.0, pressure]]},
        "temperature": {"type": "hot_spot", "center": list(center), "radius": radius, "intensity": intensity,
                        "amplitude": [[0.0, 0.0], [1.0, 1.0]]},
    }


def hf_loading(d: dict):
    """The HF loading of a query: the query plus the clamp."""
    import dataclasses

    from structrom.rom.loading import ImposedDisplacement
    from structrom.rom.loading_dict import loading_from_dict

    return dataclasses.replace(loading_from_dict(d), displacements=(ImposedDisplacement(CLAMP, (0, 1, 2), 0.0),))


def make_mesh(divisions=(8, 2, 2), element: str = "C3D8"):
    from structrom.rom.fem.structured import box

    return box((LENGTH, 1.0, 1.0), divisions, element=element)


@dataclass
class HFRun:
    """Every converged increment of one HF solve."""

    displacement: np.ndarray  # (n_inc, n_dofs)
    cumulated_plastic_strain: np.ndarray  # (n_inc, n_points)
    stress: np.ndarray  # (n_inc, n_points, 6)
    seconds: float


def hf_solve(mesh, d: dict) -> HFRun:
    """Solve a query dict with the HF solver on one rank (tight Newton tolerance, direct solver)."""
    from mpi4py import MPI

    from structrom.mpi.linear_solver import LinearSolverOptions
    from structrom.rom.hifi.solver import HifiSolver, NewtonSettings
    from structrom.rom.materials import law_from_config

    direct = LinearSolverOptions(ksp_type="preonly", pc_type="lu",
                                 petsc_options={"pc_factor_mat_solver_type": "mumps"})
    t0 = time.perf_counter()
    solver = HifiSolver(mesh, [(None, law_from_config(LAW))], hf_loading(d), newton=NewtonSettings(rtol=1e-11),
                        linear=direct, comm=MPI.COMM_SELF, log=lambda *a, **k: None)
    u, p, s = [], [], []

    def record(sol, res):
        f = sol.point_fields()
        u.append(sol.u.copy())
        p.append(f["cumulated_plastic_strain"].copy())
        s.append(f["stress"].copy())

    solver.run(record)
    return HFRun(np.array(u), np.array(p), np.array(s), time.perf_counter() - t0)


@dataclass
class ExactModel:
    """What :func:`build_exact_model` built, with the HF data it came from."""

    path: Path
    mesh: object
    training: list[dict]
    runs: list[HFRun]
    n_modes: int
    n_points: int
    n_reduced_points: int
    seconds: dict = field(default_factory=dict)


def _pod_modes(S: np.ndarray, weight, tolerance: float, max_modes: int | None):
    from mpi4py import MPI

    from structrom.rom.pod import pod

    res = pod(MPI.COMM_SELF, S, weight_local=weight, tolerance=tolerance, max_modes=max_modes, method="tsqr")
    return res.modes_local, res.singular_values


def build_exact_model(tmp_path, *, divisions=(12, 3, 3), element: str = "C3D8", training=TRAINING,
                      pod_tolerance: float = 1e-12, max_modes: int | None = None, n_reduced_points: int | None = None,
                      dual_tolerance: float = 1e-12, stress_dual: bool = True,
                      indicator_tolerance: float = 1e-2, name: str = "exact.h5",
                      runs: list[HFRun] | None = None) -> ExactModel:
    """Build a valid reduced model file from HF runs of the ``training`` (pressure, intensity) pairs.

    * snapshots: displacements of all increments of all runs; POD (``structrom.rom.pod.pod``, TSQR, COMM_SELF) in
      the mass product ``Discretization.mass_matrix(1.0)`` at ``pod_tolerance`` (``max_modes`` caps N);
    * reduced points: ALL integration points with their FE weights (no hyper-reduction), or, with
      ``n_reduced_points``, that many evenly spaced points with weights rescaled to the volume (for
      timing tests only: no accuracy intended);
    * integrator ``(strain_operator @ modes)`` as ``(n_points, 6, N)`` at the reduced points;
      temperature interpolation: ``interpolation_operator`` rows of the reduced points, columns of the
      nodes they need; pressure load ``modes^T pressure_force(zmax, 1)``;
    * dual bases (L2 point-weighted POD of the HF point fields): ``cumulated_plastic_strain`` (the
      indicator quantity) and, if ``stress_dual``, ``stress``; the reduced basis is the full basis at
      the reduced points;
    * ``loading_schema``: the training ranges; ``dirichlet``: the clamp.

    ``runs``: HF runs of ``training`` already computed on this mesh (skips the HF solves).
    """
    import scipy.sparse as sp

    from structrom.rom import model_file
    from structrom.rom.fem.kernel import Discretization

    t0 = time.perf_counter()
    mesh = make_mesh(divisions, element)
    training_dicts = [loading_dict(P, I) for P, I in training]
    if runs is None:
        runs = [hf_solve(mesh, d) for d in training_dicts]
    t_hf = time.perf_counter() - t0
    disc = Discretization(mesh)
    S = np.concatenate([r.displacement for r in runs]).T  # (n_dofs, n_snap)
    modes, sv = _pod_modes(S, disc.mass_matrix(1.0), pod_tolerance, max_modes)
    N = modes.shape[1]

    n_points = disc.n_points
    if n_reduced_points is None:
        points = np.arange(n_points)
        weights = disc.point_weights.copy()
    else:
        points = np.unique(np.linspace(0, n_points - 1, n_reduced_points).round().astype(np.int64))
        weights = disc.point_weights[points] * (disc.volume / disc.point_weights[points].sum())
    B = (disc.strain_operator() @ modes).reshape(n_points, 6, N)
    interp_full = disc.temperature_operator()[points]
    tnodes = np.unique(interp_full.indices)
    interp = sp.csr_matrix(interp_full[:, tnodes])

    w = disc.point_weights
    full_duals, duals = {}, {}
    fields = {"cumulated_plastic_strain": (np.concatenate([r.cumulated_plastic_strain for r in runs]).T, 1)}
    if stress_dual:
        fields["stress"] = (np.concatenate([r.stress.reshape(len(r.stress), -1) for r in runs]).T, 6)
    for qname, (Sq, c) in fields.items():
        basis, qsv = _pod_modes(Sq, np.repeat(w, c), dual_tolerance, None)
        rows = (c * points[:, None] + np.arange(c)).ravel()
        full_duals[qname] = basis
        duals[qname] = model_file.DualBasis(c, basis[rows], qsv)

    P = np.array([t[0] for t in training])
    I = np.array([t[1] for t in training])
    schema = {
        "temperature": {"type": "hot_spot",
                        "ranges": {"intensity": [float(I.min()), float(I.max())],
                                   "center": [[c, c] for c in CENTER], "radius": [RADIUS, RADIUS]}},
        "pressure": {SURFACE: {"range": [float(P.min()), float(P.max())]}},
        "times": {"end_range": [TIMES[-1], TIMES[-1]]},
    }
    data = model_file.ReducedModelData(
        units={}, materials=[LAW], loading_schema=schema,
        dirichlet=[{"node_set": CLAMP, "components": [0, 1, 2]}],
        provenance={"builder": "tests/rom_fixtures.build_exact_model", "training": training,
                    "pod_tolerance": pod_tolerance, "n_reduced_points": len(points)},
        singular_values=sv, element=disc.point_elements[points], point=points, weights=weights,
        coordinates=disc.point_coordinates[points], material=np.zeros(len(points), np.int64),
        integrator=np.ascontiguousarray(B[points]), temperature_nodes=tnodes,
        temperature_coordinates=mesh.points[tnodes], temperature_interpolation=interp,
        pressure={SURFACE: modes.T @ disc.pressure_force(mesh.surface_set(SURFACE), 1.0)},
        duals=duals, indicator_quantity="cumulated_plastic_strain", indicator_tolerance=indicator_tolerance,
    )
    path = model_file.write(Path(tmp_path) / name, data, mesh, modes, full_duals)
    return ExactModel(path, mesh, training_dicts, runs, N, n_points, len(points),
                      {"hf": t_hf, "total": time.perf_counter() - t0})
