"""Tractions (vector, per face set) and concentrated forces (per node of a node set) in the loading family:
the HF solver against the analytic bar, traction = consistent nodal forces, bad input named."""
from __future__ import annotations

import numpy as np
import pytest

from structrom.mpi.linear_solver import LinearSolverOptions
from structrom.rom.fem.mesh import MeshError
from structrom.rom.fem.structured import box
from structrom.rom.hifi.solver import HifiSolver, NewtonSettings
from structrom.rom.loading import ImposedDisplacement, Loading, LoadingError, VectorAmplitude
from structrom.rom.loading_dict import loading_from_dict
from structrom.rom.materials import LinearElastic

DIRECT = LinearSolverOptions(ksp_type="preonly", pc_type="lu", petsc_options={"pc_factor_mat_solver_type": "mumps"})
E, NU = 200000.0, 0.3
SYMMETRY = (ImposedDisplacement("xmin", (0,)), ImposedDisplacement("ymin", (1,)), ImposedDisplacement("zmin", (2,)))
CLAMP = (ImposedDisplacement("xmin", (0, 1, 2)),)


def _solve(mesh, loading):
    s = HifiSolver(mesh, [(None, LinearElastic(E, NU))], loading, newton=NewtonSettings(rtol=1e-12),
                   linear=DIRECT, log=lambda *a: None)
    out = []
    s.run(lambda solver, res: out.append(solver.u.reshape(-1, 3).copy()))
    return s, np.array(out)


def test_vector_amplitude_forms():
    const = VectorAmplitude.from_config([1.0, -2.0, 3.0])
    assert np.array_equal(const(7.0), [1.0, -2.0, 3.0])
    table = VectorAmplitude.from_config([[0.0, 0.0, 0.0, 0.0], [2.0, 4.0, -2.0, 1.0]])
    assert np.allclose(table(1.0), [2.0, -1.0, 0.5]) and np.allclose(table(5.0), [4.0, -2.0, 1.0])
    assert VectorAmplitude.from_config(table.to_config()).to_config() == table.to_config()


def test_uniform_traction_on_a_bar_is_analytic():
    """Bar 2 x 1 x 1 on symmetry planes, traction (t, 0, 0) on x = 2 ramped in two increments: uniform
    uniaxial stress, ``u_x = t x / E``, ``u_y = -nu t y / E`` exactly (trilinear elements)."""
    mesh = box((2.0, 1.0, 1.0), (4, 2, 2), "C3D8")
    t = 150.0
    loading = loading_from_dict({"times": [0.0, 0.5, 1.0], "traction": {"xmax": [[0.0, 0, 0, 0], [1.0, t, 0, 0]]}})
    loading = Loading(times=loading.times, tractions=loading.tractions, displacements=SYMMETRY)
    s, u = _solve(mesh, loading)
    x = mesh.points
    for k, a in enumerate([0.5, 1.0]):
        exact = np.column_stack([a * t * x[:, 0] / E, -NU * a * t * x[:, 1] / E, -NU * a * t * x[:, 2] / E])
        assert np.abs(u[k] - exact).max() <= 1e-10 * np.abs(exact).max()
    assert np.allclose(s.stress[:, 0], t, rtol=1e-10) and np.abs(s.stress[:, 1:]).max() <= 1e-8 * t


@pytest.mark.parametrize("vector", [[0.0, 0.0, -40.0], [25.0, 10.0, -30.0]])
def test_tip_traction_equals_its_consistent_nodal_forces(vector):
    """Cantilever 4 x 1 x 1 with one element across its tip face (C3D8): a uniform traction t on the face is
    the force t A / 4 at each of its four nodes (bilinear face), in any direction; the tip deflection under
    a transverse load is the Euler-Bernoulli + shear one to the discretization error (12 x 1 x 1 elements
    are too stiff in bending, so only the sign and order of magnitude are checked)."""
    mesh = box((4.0, 1.0, 1.0), (12, 1, 1), "C3D8")
    times = [0.0, 1.0]
    _, u_t = _solve(mesh, Loading(times=np.array(times), displacements=CLAMP,
                                  tractions={"xmax": VectorAmplitude.from_config(vector)}))
    _, u_f = _solve(mesh, Loading(times=np.array(times), displacements=CLAMP,
                                  forces={"xmax": VectorAmplitude.from_config(np.array(vector) / 4.0)}))
    assert len(mesh.node_set("xmax")) == 4
    assert np.abs(u_t - u_f).max() <= 1e-10 * np.abs(u_f).max()
    if vector[0] == 0.0:
        beam = vector[2] * 4.0 ** 3 / (3 * E * (1.0 / 12.0))  # P L^3 / (3 E I), P = t A
        tip = u_t[-1][mesh.node_set("xmax"), 2].mean()
        assert 0.5 < tip / beam < 1.0  # stiffer than the beam (locking), same sign and order


def test_force_on_a_node_set_sums_over_ranks_once(tmp_path):
    """Each node of the set gets the force once (the total reaction equals n_nodes x force)."""
    mesh = box((2.0, 1.0, 1.0), (4, 2, 2), "C3D8")
    loading = Loading(times=np.array([0.0, 1.0]), displacements=CLAMP,
                      forces={"xmax": VectorAmplitude.from_config([3.0, -1.0, 2.0])})
    s = HifiSolver(mesh, [(None, LinearElastic(E, NU))], loading, linear=DIRECT, log=lambda *a: None)
    total = s.external_force(1.0).reshape(-1, 3).sum(0)
    assert np.allclose(total, len(mesh.node_set("xmax")) * np.array([3.0, -1.0, 2.0]), rtol=1e-13)


@pytest.mark.parametrize("d, match", [
    ({"times": [0, 1], "traction": {"top": [1.0, 2.0]}}, r"loading.traction.top: give a vector \[x, y, z\]"),
    ({"times": [0, 1], "force": {"tip": [[0, 1, 2], [1, 2, 3]]}}, r"loading.force.tip: give a vector"),
    ({"times": [0, 1], "force": {"tip": [[1, 0, 0, 0], [0, 1, 1, 1]]}}, r"loading.force.tip\[x\]: times must be "
                                                                        r"strictly increasing"),
    ({"times": [0, 1], "traction": {"top": [0.0, float("nan"), 1.0]}},
     r"loading.traction.top\[1\]: value must be finite"),
    ({"times": [0, 1], "traction": [1, 2, 3]}, r"loading.traction must map set names to vectors"),
])
def test_bad_vector_loads_are_named(d, match):
    with pytest.raises(LoadingError, match=match):
        loading_from_dict(d)


def test_unknown_sets_are_named():
    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), "C3D8")
    unit = VectorAmplitude.from_config([1.0, 0, 0])
    for kw, match in (({"forces": {"tip": unit}}, r"node set 'tip' is not in the mesh"),
                      ({"tractions": {"flange": unit}}, r"'flange'")):
        loading = Loading(times=np.array([0.0, 1.0]), displacements=CLAMP, **kw)
        with pytest.raises(MeshError, match=match):
            HifiSolver(mesh, [(None, LinearElastic(E, NU))], loading, linear=DIRECT, log=lambda *a: None)


# -- the reduced model of a family of tractions and forces ------------------------------------------------
HIFI = """
[mesh]
file = "bar.inp"

[[material]]
law = {{ type = "j2_plasticity", elastic = {{ young = 200000.0, poisson = 0.3 }}, hardening = {{ type = "linear", yield_stress = 300.0, modulus = 2000.0 }} }}

[[boundary]]
node_set = "xmin"
components = ["x", "y", "z"]

[loading]
times = [0.0, 0.25, 0.5, 0.75, 1.0]
traction = [{{ surface = "xmax", vector = [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, {ty}, {tz}]] }}]
force = [{{ node_set = "tip", vector = [[0.0, 0.0, 0.0, 0.0], [1.0, {fx}, 0.0, 0.0]] }}]

[solver]
newton_rtol = 1e-10
linear = {{ ksp_type = "preonly", pc_type = "lu", petsc_options = {{ pc_factor_mat_solver_type = "mumps" }} }}

[output]
file = "train/case_{i}.h5"
"""
OFFLINE = """
[snapshots]
files = ["train/case_*.h5"]
[pod]
tolerance = 1e-8
[dual]
quantities = ["cumulated_plastic_strain", "stress"]
tolerance = 1e-8
[ecm]
tolerance = 1e-7
[output]
file = "model.h5"
"""


def _case(angle_deg: float, magnitude: float, fx: float) -> dict:
    a = np.radians(angle_deg)
    return {"ty": magnitude * np.cos(a), "tz": magnitude * np.sin(a), "fx": fx}


TRAINING = [_case(angle, magnitude, fx) for angle, magnitude, fx in
            [(0.0, 16.0, 0.0), (20.0, 14.0, 20.0), (45.0, 16.0, 10.0), (70.0, 14.0, 0.0), (90.0, 16.0, 20.0),
             (0.0, 14.0, 20.0), (45.0, 14.0, 0.0), (90.0, 14.0, 10.0)]]


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    d = tmp_path_factory.mktemp("vector_loads")
    mesh = box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R")
    corner = np.flatnonzero(np.all(np.isclose(mesh.points, [10.0, 2.0, 2.0]), axis=1))
    mesh.node_sets["tip"] = corner
    write_mesh_inp(d / "bar.inp", mesh)
    for i, c in enumerate(TRAINING):
        (d / f"case_{i}.toml").write_text(HIFI.format(i=i, **c))
        run_hifi(load_config(d / f"case_{i}.toml"), log=lambda *a: None)
    (d / "offline.toml").write_text(OFFLINE)
    run_offline(load_offline_config(d / "offline.toml"), log=lambda *a: None)
    return d, mesh


def test_reduced_model_reproduces_hf_for_unseen_traction_direction_and_force(family, tmp_path):
    """Tip traction of direction 30 degrees in the y-z plane (magnitude 15) and a corner force (15), unseen in
    training (8 cases: directions 0, 20, 45, 70, 90 degrees, magnitudes 14 / 16, forces 0 / 10 / 20): the
    reduced model's displacements = HF within 1 % (space-time relative 2-norm; measured 8.5e-4). The
    cumulated plastic strain (yielding starts in the last increments, its pattern turns with the load
    direction) is the harder quantity: measured 9.5 % with these 8 cases, 3.0 % with 20 (every 10 degrees),
    so its bound here (15 %) only guards against regressions; 1 % needs a denser training family."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.online import ReducedModel
    import h5py

    d, mesh = family
    c = _case(30.0, 15.0, 15.0)
    (d / "unseen.toml").write_text(HIFI.format(i="unseen", **c).replace("train/case_unseen.h5", "unseen.h5"))
    run_hifi(load_config(d / "unseen.toml"), log=lambda *a: None)
    model = ReducedModel.load(d / "model.h5")
    assert set(model.data.traction) == {"xmax"} and set(model.data.force) == {"tip"}
    r = model.solve({"times": [0.0, 0.25, 0.5, 0.75, 1.0],
                     "traction": {"xmax": [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, c["ty"], c["tz"]]]},
                     "force": {"tip": [[0.0, 0.0, 0.0, 0.0], [1.0, c["fx"], 0.0, 0.0]]}})
    with h5py.File(d / "unseen.h5") as f:
        u_hf, p_hf = f["fields/displacement"][()], f["fields/cumulated_plastic_strain"][()]
    u, p = r.displacement(increment=None), r.dual_field("cumulated_plastic_strain", None)
    err_u = np.linalg.norm(u - u_hf) / np.linalg.norm(u_hf)
    err_p = np.linalg.norm(p - p_hf) / np.linalg.norm(p_hf)
    print(f"unseen traction direction and force: u {err_u:.2e}, p {err_p:.2e}, max p {p_hf.max():.3g}")
    assert p_hf.max() > 1e-3  # plastic
    assert err_u <= 1e-2 and err_p <= 0.15


def test_reduced_model_names_missing_sets_and_out_of_range_loads(family):
    from structrom.rom.online import ReducedModel

    d, _ = family
    model = ReducedModel.load(d / "model.h5")
    base = {"times": [0.0, 1.0]}
    with pytest.raises(LoadingError, match=r"loading.traction: this model has no reduced traction for set\(s\) "
                                           r"\['zmax'\]"):
        model.solve({**base, "traction": {"zmax": [0.0, 0.0, 1.0]}})
    with pytest.raises(LoadingError, match=r"loading.force: this model has no reduced force for set\(s\) \['xmax'\]"):
        model.solve({**base, "force": {"xmax": [1.0, 0.0, 0.0]}})
    with pytest.raises(LoadingError, match=r"loading.traction.xmax \(peak per component\) = \[0, 40, 0\] is outside "
                                           r"the training range"):
        model.solve({**base, "traction": {"xmax": [[0.0, 0, 0, 0], [1.0, 0.0, 40.0, 0.0]]}})
    with pytest.raises(LoadingError, match=r"loading.force.tip \(peak per component\) = \[-50, 0, 0\] is outside"):
        model.solve({**base, "force": {"tip": [[0.0, 0, 0, 0], [1.0, -50.0, 0.0, 0.0]]}})


@pytest.mark.mpi
def test_reduced_tractions_and_forces_for_1_2_3_ranks(family):
    """The reduced loads of the model built on 1, 2 and 3 ranks are ``Phi^T f`` of that model's modes, with f
    the serial load (each node of a force set counted once, every traction face once), to 1e-12. (The modes
    themselves agree across rank counts to ~1e-7 here: the POD tolerance 1e-8 keeps modes of singular values
    near rounding.)"""
    from mpi_helpers import run_program
    from structrom.rom.fem.kernel import Discretization

    d, mesh = family
    disc = Discretization(mesh, np.arange(mesh.n_elements))
    unit = {"traction/xmax": np.stack([disc.traction_force(mesh.surface_set("xmax"), e) for e in np.eye(3)], axis=1),
            "force/tip": np.zeros((mesh.n_dofs, 3))}
    for c in range(3):
        unit["force/tip"][3 * mesh.node_set("tip") + c, c] = 1.0
    for n in (1, 2, 3):
        res = run_program(n, "offline_vector_loads.py", str(d / "offline.toml"), str(d / f"model_r{n}.h5"))
        modes = np.array(res["modes"])
        assert set(res["loads"]) == set(unit)
        for key, f in unit.items():
            expected = modes.T @ f
            assert np.allclose(res["loads"][key], expected, rtol=0, atol=1e-12 * np.abs(expected).max()), (n, key)


def test_rest_answer_of_tractions_and_forces(family):
    """``loading.traction`` / ``loading.force`` through the REST service (a real server): the answer is the
    in-process one (same solver, JSON floats exact to rounding); a malformed vector is a 422 naming it."""
    import shutil

    import api_fixtures as af

    from structrom.api.client import ApiError, Client
    from structrom.rom.online import ReducedModel

    d, _ = family
    models = d / "models"
    models.mkdir(exist_ok=True)
    shutil.copy(d / "model.h5", models / "vec.h5")
    c = _case(30.0, 15.0, 15.0)
    loading = {"times": [0.0, 0.25, 0.5, 0.75, 1.0],
               "traction": {"xmax": [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, c["ty"], c["tz"]]]},
               "force": {"tip": [c["fx"], 0.0, 0.0]}}
    local = ReducedModel.load(d / "model.h5").solve(loading)
    with af.ServerProcess(models) as srv, Client(srv.url) as client:
        out = client.solve("vec", loading, node_sets=["tip"])
        np.testing.assert_allclose(np.array(out["displacement"]["tip"]["mean"]),
                                   local.displacement(nodes="tip", increment=None).mean(axis=1), rtol=1e-10)
        assert np.abs(out["displacement"]["tip"]["mean"]).max() > 0
        with pytest.raises(ApiError) as e:
            client.solve("vec", {**loading, "force": {"tip": [1.0, 2.0]}})
        assert e.value.status == 422 and "force" in (e.value.field or "")
        with pytest.raises(ApiError) as e:
            client.solve("vec", {**loading, "traction": {"zmax": [1.0, 0.0, 0.0]}})
        assert e.value.status == 422 and "zmax" in e.value.message
