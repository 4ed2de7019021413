"""Reduced model of a cyclic part driven by an imposed displacement (combined isotropic + Armstrong-Frederick
kinematic hardening): HF training, offline stage with a lifting of the prescribed displacement, online
predictions at unseen amplitudes and load ratios.

The part: a C3D8 bar 100 x 20 x 10 mm clamped on its face x = 0; its face x = 100 is moved along z
(cantilever bending) by ``u_z(t) = amplitude * a(t)`` with ``a`` cycling between 1 and the load ratio R
(five cycles, four increments per half cycle). Family: amplitude [mm] and R. Each answer is compared with
the HF solve of the same loading: displacement, cumulated plastic strain p and back stress X (space-time
relative L2, reconstructed fields), reaction force on the moved face (relative max-norm over time), strain
range per cycle and mean stress of the last cycle at the most loaded point, online time and speedup.

    python examples/rom_imposed_displacement.py            # 21,801 dofs; HF runs cached in out/rom_imposed/

Results are printed and written to out/rom_imposed/results.md; docs/rom_accuracy.md holds a run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from rom_plate import CHILDREN, mpi_env  # noqa: E402

HIFI = """
[units]
length = "mm"
force = "N"
stress = "MPa"
mass = "t"

[mesh]
file = "bar.inp"

[[material]]
[material.law]
type = "j2_plasticity"
elastic = {{ young = 200000.0, poisson = 0.3 }}
hardening = {{ type = "linear", yield_stress = 250.0, modulus = 2000.0 }}
kinematic = {{ type = "armstrong_frederick", modulus = 40000.0, recall = 250.0 }}

[[boundary]]
node_set = "xmin"
components = ["x", "y", "z"]

[[boundary]]
node_set = "xmax"
components = ["z"]
value = {amplitude}
amplitude = {history}

[loading]
times = {times}

[solver]
newton_rtol = 1e-8
linear = {{ ksp_type = "preonly", pc_type = "lu", petsc_options = {{ pc_factor_mat_solver_type = "mumps" }} }}

[output]
file = "{out}"
integration_point_fields = {fields}
"""

OFFLINE = """
[snapshots]
files = {files}
[pod]
tolerance = {pod_tol}
[dual]
quantities = ["cumulated_plastic_strain", "stress", "back_stress"]
tolerance = {dual_tol}
[ecm]
tolerance = {ecm_tol}
[output]
file = "model.h5"
"""

CYCLES = 5
PER_HALF = 4  # increments per half cycle
#: (amplitude [mm], load ratio R): a 3 x 2 grid of the family [1.6, 2.4] x [-1, 0] and its centre
TRAINING = [(a, r) for a in (1.6, 2.0, 2.4) for r in (-1.0, 0.0)] + [(2.0, -0.5)]
TEST = [(1.8, -0.7), (2.25, -0.25)]


def history(ratio: float) -> list[list[float]]:
    """Unit history of the imposed displacement: 0, then 1 at t = 1, 3, ... and R at t = 2, 4, ..."""
    return [[0.0, 0.0]] + [[float(t), 1.0 if t % 2 else ratio] for t in range(1, 2 * CYCLES + 1)]


TIMES = np.linspace(0.0, 2.0 * CYCLES, 2 * CYCLES * PER_HALF + 1).round(10).tolist()


def write_mesh(work: Path, divisions: tuple[int, int, int]) -> int:
    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.fem.structured import box

    mesh = box((100.0, 20.0, 10.0), divisions, element="C3D8")
    if not (work / "bar.inp").exists():
        write_mesh_inp(work / "bar.inp", mesh)
    return mesh.n_dofs


def run_hifi(work: Path, name: str, params: tuple[float, float]) -> float:
    """One HF solve on one rank (cached); returns its wall time."""
    out, stamp = work / "hf" / f"{name}.h5", work / "hf" / f"{name}.json"
    if out.exists() and stamp.exists():
        cached = json.loads(stamp.read_text())
        if [float(v) for v in cached["params"]] != [float(v) for v in params]:
            raise RuntimeError(f"{out} was computed for {cached['params']}, not {params}: use another --out")
        return cached["seconds"]
    amplitude, ratio = params
    cfg = work / f"{name}.toml"
    # integration-point fields (for the comparison of p and back stress) of the test solves only: the offline
    # stage replays the laws on the training displacements
    cfg.write_text(HIFI.format(amplitude=amplitude, history=history(ratio), times=TIMES, out=f"hf/{name}.h5",
                               fields=str(name.startswith("test")).lower()))
    t0 = time.perf_counter()
    proc = CHILDREN.run(["nice", sys.executable, "-m", "structrom.api.cli", "hifi", str(cfg)], env=mpi_env(),
                        cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"HF run {name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    stamp.write_text(json.dumps({"seconds": seconds, "params": list(params)}))
    return seconds


def run_all_hifi(work: Path, workers: int) -> dict[str, float]:
    (work / "hf").mkdir(parents=True, exist_ok=True)
    jobs = [(f"train_{i}", p) for i, p in enumerate(TRAINING)] + [(f"test_{i}", p) for i, p in enumerate(TEST)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        def one(job):
            s = run_hifi(work, *job)
            print(f"  HF {job[0]:<8s} amplitude, R = {job[1]}: {s:7.1f} s", flush=True)
            return s
        return dict(zip([j[0] for j in jobs], pool.map(one, jobs)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out/rom_imposed")
    parser.add_argument("--divisions", type=int, nargs=3, default=(42, 12, 12))
    parser.add_argument("--workers", type=int, default=2, help="HF solves at a time (one rank each)")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the offline stage")
    parser.add_argument("--hifi-only", action="store_true")
    parser.add_argument("--pod-tol", type=float, default=1e-5)
    parser.add_argument("--dual-tol", type=float, default=1e-5)
    parser.add_argument("--ecm-tol", type=float, default=1e-5)
    args = parser.parse_args()
    work = (ROOT / args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    n_dofs = write_mesh(work, tuple(args.divisions))
    print(f"mesh: {n_dofs} dofs; {len(TRAINING)} training + {len(TEST)} test HF solves, {len(TIMES) - 1} increments")
    hf_seconds = run_all_hifi(work, args.workers)
    if args.hifi_only:
        return 0
    from rom_imposed_evaluate import evaluate

    return evaluate(work, args, hf_seconds, n_dofs)


if __name__ == "__main__":
    CHILDREN.install()
    sys.exit(main())
