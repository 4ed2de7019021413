"""Small training sets for offline tests: a clamped bar under a hot spot and a pressure, J2 plasticity."""
from __future__ import annotations

from pathlib import Path


from structrom.rom.adapters.calculix import write_mesh_inp
from structrom.rom.fem.structured import box

HIFI = """
[units]
length = "mm"
force = "N"
stress = "MPa"
mass = "t"

[mesh]
file = "bar.inp"

[[material]]
law = {{ type = "j2_plasticity", elastic = {{ young = {{ temperatures = [20.0, 500.0], values = [200000.0, 150000.0] }}, poisson = 0.3, expansion = 1.2e-5, reference_temperature = 20.0, density = 7.8e-9 }}, hardening = {{ type = "linear", yield_stress = {{ temperatures = [20.0, 500.0], values = [300.0, 150.0] }}, modulus = 2000.0 }} }}

[[boundary]]
node_set = "xmin"
components = ["x", "y", "z"]

[loading]
times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
temperature = {{ type = "hot_spot", center = [{cx}, 1.0, 2.0], radius = 2.0, intensity = {intensity}, reference = 20.0, amplitude = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]] }}
pressure = [{{ surface = "zmax", amplitude = [[0.0, 0.0], [1.0, {pressure}], [2.0, 0.0]] }}]

[solver]
newton_rtol = 1e-10
linear = {{ ksp_type = "preonly", pc_type = "lu", petsc_options = {{ pc_factor_mat_solver_type = "mumps" }} }}

[output]
file = "{out}"
"""

OFFLINE = """
[snapshots]
files = ["train/case_*.h5"]

[pod]
tolerance = {pod_tol}
method = "tsqr"

[dual]
quantities = ["cumulated_plastic_strain", "stress"]
tolerance = 1e-4

[ecm]
tolerance = {ecm_tol}

[indicator]
tolerance = 0.05

[output]
file = "{out}"
"""

TRAINING = [(3.0, 350.0, 6.0), (5.0, 400.0, 8.0), (7.0, 300.0, 4.0), (4.0, 450.0, 5.0)]


def write_mesh(directory: Path, divisions=(10, 2, 2), element="C3D20R") -> None:
    write_mesh_inp(directory / "bar.inp", box((10.0, 2.0, 2.0), divisions, element=element))


def hifi_config(directory: Path, name: str, cx: float, intensity: float, pressure: float) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(HIFI.format(cx=cx, intensity=intensity, pressure=pressure, out=f"train/{name}.h5"))
    return path


def run_training(directory: Path, cases=TRAINING) -> list[Path]:
    """HF snapshots of the training cases, in-process (one rank)."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi

    out = []
    for i, (cx, intensity, pressure) in enumerate(cases):
        cfg = load_config(hifi_config(directory, f"case_{i}", cx, intensity, pressure))
        out.append(run_hifi(cfg, log=lambda *a: None))
    return out


def offline_config(directory: Path, out="model.h5", pod_tol=1e-5, ecm_tol=1e-5) -> Path:
    path = directory / "offline.toml"
    path.write_text(OFFLINE.format(out=out, pod_tol=pod_tol, ecm_tol=ecm_tol))
    return path


#: Loadings outside the 2-case training set of :func:`enrichment_setup`: (hot-spot x, intensity, pressure).
#: Under its model (indicator tolerance 1e-3), NEW[0] is trusted (indicator ~4e-4) and NEW[1] is not (~4e-3).
NEW = [(7.0, 300.0, 4.0), (4.0, 450.0, 5.0)]
ENRICH_TOLERANCE = 1e-3


def query_loading(cx: float, intensity: float, pressure: float, name: str) -> dict:
    """The loadings-file (``loading_from_dict``) form of a case of :data:`HIFI`, with its name."""
    return {"name": name, "times": [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
            "temperature": {"type": "hot_spot", "center": [cx, 1.0, 2.0], "radius": 2.0, "intensity": intensity,
                            "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]},
            "pressure": {"zmax": [[0.0, 0.0], [1.0, pressure], [2.0, 0.0]]}}


def enrichment_setup(directory: Path, model: str = "model.h5") -> Path:
    """A model of the first two training cases (offline stage in-process, one rank) whose indicator
    flags :data:`NEW` [1]; writes ``loadings.json`` with both :data:`NEW` loadings. Returns the model path."""
    import json

    from mpi4py import MPI

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    write_mesh(directory)
    run_training(directory, cases=TRAINING[:2])
    cfg = offline_config(directory, out=model, pod_tol=1e-5, ecm_tol=1e-5)
    # The enrichment mechanics are tested on the Gappy indicator: an enriched version drops a leave-one-out
    # calibration (rom/offline/update.py), and two training cases are too few to calibrate one.
    cfg.write_text(cfg.read_text().replace("tolerance = 0.05", f"tolerance = {ENRICH_TOLERANCE}\ncalibrate = false"))
    out = run_offline(load_offline_config(cfg), MPI.COMM_SELF, log=lambda *a: None)
    (directory / "loadings.json").write_text(json.dumps([query_loading(*p, f"new_{i}") for i, p in enumerate(NEW)]))
    return out
