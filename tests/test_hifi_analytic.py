"""HF solver against textbook solutions: cantilever beam, thick-walled cylinder (Lame, elastic-plastic)."""
from __future__ import annotations

import numpy as np

from structrom.rom.fem.structured import box, cylinder_sector
from structrom.rom.hifi.solver import HifiSolver, NewtonSettings
from structrom.rom.loading import Amplitude, ImposedDisplacement, Loading
from structrom.rom.materials import law_from_config
from structrom.mpi.linear_solver import LinearSolverOptions

DIRECT = LinearSolverOptions(ksp_type="preonly", pc_type="lu",
                             petsc_options={"pc_factor_mat_solver_type": "mumps"})


def elastic(young=1000.0, poisson=0.3):
    return law_from_config({"type": "linear_elastic", "young": young, "poisson": poisson, "expansion": 0.0})


def cantilever_tip(element: str, nx: int, nyz: int) -> float:
    """Clamped at x=0, unit pressure on the top face z=h: mean vertical tip deflection."""
    L, b, h = 10.0, 1.0, 1.0
    mesh = box((L, b, h), (nx, nyz, nyz), element=element)
    loading = Loading(times=np.array([0.0, 1.0]), pressures={"zmax": Amplitude.from_config(1.0)},
                      displacements=(ImposedDisplacement("xmin", (0, 1, 2), 0.0),))
    solver = HifiSolver(mesh, [(None, elastic(poisson=0.0))], loading, linear=DIRECT, log=lambda *a: None)
    solver.run()
    return float(-solver.u.reshape(-1, 3)[mesh.node_set("xmax"), 2].mean())


def test_cantilever_converges_to_beam_theory():
    # Timoshenko beam under q = p b per unit length: q L^4 / (8 E I) + q L^2 / (2 kappa G A).
    E, nu, L, b, h, q = 1000.0, 0.0, 10.0, 1.0, 1.0, 1.0
    inertia, area, shear = b * h**3 / 12, b * h, E / (2 * (1 + nu))
    reference = q * L**4 / (8 * E * inertia) + q * L**2 / (2 * (5 / 6) * shear * area)
    hex8 = [abs(cantilever_tip("C3D8", nx, nyz) - reference) / reference for nx, nyz in [(10, 1), (20, 2), (40, 4)]]
    hex20 = [abs(cantilever_tip("C3D20", nx, nyz) - reference) / reference for nx, nyz in [(4, 1), (8, 2), (16, 2)]]
    assert hex8[0] > hex8[1] > hex8[2] and hex20[0] > hex20[1] > hex20[2], (hex8, hex20)
    # hex8 locks in bending but converges at second order: halving h divides the error by about 4.
    assert 3.0 < hex8[1] / hex8[2] < 5.0, hex8
    assert hex8[-1] < 0.04 and hex20[-1] < 0.005, (hex8, hex20)


def cylinder_problem(law, pressures, element="C3D20R", divisions=(24, 2, 1)):
    a, b = 1.0, 2.0
    mesh = cylinder_sector(a, b, 0.1, 90.0, divisions, element=element)
    times = np.arange(len(pressures) + 1, dtype=float)
    loading = Loading(
        times=times,
        pressures={"inner": Amplitude.from_config(np.column_stack([times, [0.0, *pressures]]).tolist())},
        displacements=(ImposedDisplacement("theta0", (1,), 0.0), ImposedDisplacement("theta1", (0,), 0.0),
                       ImposedDisplacement("zmin", (2,), 0.0), ImposedDisplacement("zmax", (2,), 0.0)),
    )
    return mesh, HifiSolver(mesh, [(None, law)], loading, newton=NewtonSettings(rtol=1e-9), linear=DIRECT,
                            log=lambda *a: None)


def test_thick_cylinder_lame_plane_strain():
    E, nu, p, a, b = 1000.0, 0.3, 1.0, 1.0, 2.0
    mesh, solver = cylinder_problem(elastic(E, nu), [p], divisions=(8, 4, 1))
    solver.run()
    u = solver.u.reshape(-1, 3)
    r = np.hypot(mesh.points[:, 0], mesh.points[:, 1])
    ur = (u[:, 0] * mesh.points[:, 0] + u[:, 1] * mesh.points[:, 1]) / r
    exact = (1 + nu) / E * p * a**2 / (b**2 - a**2) * ((1 - 2 * nu) * r + b**2 / r)
    assert np.max(np.abs(ur - exact)) / np.max(exact) < 1e-3
    # Hoop stress at the integration points against Lame.
    x = solver.disc.point_coordinates
    rq = np.hypot(x[:, 0], x[:, 1])
    c, s = x[:, 0] / rq, x[:, 1] / rq
    sig = solver.stress
    hoop = s * s * sig[:, 0] + c * c * sig[:, 1] - 2 * s * c * sig[:, 3]
    hoop_exact = p * a**2 / (b**2 - a**2) * (1 + b**2 / rq**2)
    assert np.max(np.abs(hoop - hoop_exact)) / np.max(hoop_exact) < 5e-3


def test_thick_cylinder_elastic_perfectly_plastic_radius():
    """Plastic radius c against pressure, Hill's plane-strain solution (von Mises, incompressible):
    p = k (2 ln(c/a) + 1 - c^2/b^2), k = sigma_y / sqrt(3). Near-incompressible elasticity (nu = 0.49)
    makes the solution exact for von Mises."""
    E, nu, sy, a, b = 1000.0, 0.49, 1.0, 1.0, 2.0
    k = sy / np.sqrt(3.0)
    law = law_from_config({"type": "j2_plasticity",
                           "elastic": {"young": E, "poisson": nu, "expansion": 0.0},
                           "hardening": {"type": "linear", "yield_stress": sy, "modulus": 0.0}})
    radii = np.array([1.2, 1.4, 1.6])
    pressures = k * (2 * np.log(radii / a) + 1 - radii**2 / b**2)
    mesh, solver = cylinder_problem(law, list(pressures), divisions=(40, 2, 1))
    measured = []

    def plastic_radius(s, res):
        x = s.disc.point_coordinates
        rq = np.hypot(x[:, 0], x[:, 1])
        p = s.point_fields()["cumulated_plastic_strain"]
        measured.append(0.5 * (rq[p > 1e-12].max() + rq[p <= 1e-12].min()))

    solver.run(plastic_radius)
    assert np.allclose(measured, radii, rtol=0.02), (measured, radii.tolist())
