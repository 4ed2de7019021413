"""Kinematic hardening through the whole chain: HF snapshots store the back stress, the offline stage builds
its Gappy basis (dual quantity ``back_stress``), the online model solves with the kinematic fast path and
reconstructs the back stress of a cyclic bending history (load, reverse, reload)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from structrom.rom.adapters.calculix import write_mesh_inp
from structrom.rom.fem.structured import box

HIFI = """
[mesh]
file = "bar.inp"

[[material]]
law = {{ type = "j2_plasticity", elastic = {{ young = 200000.0, poisson = 0.3 }}, hardening = {{ type = "linear", yield_stress = 300.0, modulus = 1000.0 }}, kinematic = {{ type = "armstrong_frederick", modulus = 30000.0, recall = 200.0 }} }}

[[boundary]]
node_set = "xmin"
components = ["x", "y", "z"]

[loading]
times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
pressure = [{{ surface = "zmax", amplitude = [[0.0, 0.0], [1.0, {p}], [2.0, {m}], [3.0, {r}]] }}]

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
tolerance = 1e-6
[dual]
quantities = ["cumulated_plastic_strain", "stress", "back_stress"]
tolerance = 1e-6
[ecm]
tolerance = 1e-6
[output]
file = "model.h5"
"""

PRESSURES = [6.0, 7.0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    d = tmp_path_factory.mktemp("kinematic_rom")
    write_mesh_inp(d / "bar.inp", box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R"))
    for i, p in enumerate(PRESSURES):
        (d / f"case_{i}.toml").write_text(HIFI.format(i=i, p=p, m=-p, r=0.5 * p))
        run_hifi(load_config(d / f"case_{i}.toml"), log=lambda *a: None)
    (d / "offline.toml").write_text(OFFLINE)
    run_offline(load_offline_config(d / "offline.toml"), log=lambda *a: None)
    return d


def test_snapshots_store_the_back_stress(chain):
    with h5py.File(chain / "train/case_1.h5") as f:
        x = f["fields/back_stress"][()]  # (n_inc, n_points, 6)
        p = f["fields/cumulated_plastic_strain"][()]
    assert x.shape[0] == 6 and x.shape[2] == 6
    assert np.abs(x[:, :, :3].sum(-1)).max() <= 1e-10 * np.abs(x).max()  # deviatoric
    assert np.all(p[-1] >= p[1]) and p[-1].max() > 2 * p[1].max()  # reversed yielding adds plastic strain
    # the back stress of the most strained point changes sign with the load
    k = np.argmax(np.abs(x[1, :, 0]))
    assert np.sign(x[1, k, 0]) != np.sign(x[3, k, 0])


def test_online_back_stress_reproduces_hf(chain):
    from structrom.rom.online import ReducedModel
    from structrom.rom.online.radial_return import KinematicReturnSystem

    model = ReducedModel.load(chain / "model.h5")
    assert isinstance(model.system, KinematicReturnSystem)
    p = PRESSURES[0]
    r = model.solve({"times": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                     "pressure": {"zmax": [[0.0, 0.0], [1.0, p], [2.0, -p], [3.0, 0.5 * p]]}})
    with h5py.File(chain / "train/case_0.h5") as f:
        x_hf = f["fields/back_stress"][()]
        u_hf = f["fields/displacement"][()]
    x = r.dual_field("back_stress", None)
    u = r.displacement(increment=None)
    err_x = np.linalg.norm(x - x_hf) / np.linalg.norm(x_hf)
    err_u = np.linalg.norm(u - u_hf) / np.linalg.norm(u_hf)
    p_max = r.dual_field("cumulated_plastic_strain").max()
    print(f"online vs HF (training loading): u {err_u:.2e}, back stress {err_x:.2e}, max p {p_max:.3g}")
    assert err_u <= 1e-4 and err_x <= 1e-3, (err_u, err_x)
