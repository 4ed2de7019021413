"""Nonintrusive ROM of a CalculiX model: ccx snapshots -> offline stage -> online predictions -> VTU.

    .venv/bin/python examples/calculix_rom.py            # ~22k dofs, 8 training + 4 test loadings
    .venv/bin/python examples/calculix_rom.py --small    # a few thousand dofs, 4 + 2 (about a minute)

The model (``examples/calculix/model.toml``): a 10 x 2 x 2 mm bar clamped at x = 0, J2 plasticity with linear
hardening and temperature-dependent E and yield stress, under a pressure on its top face ``zmax`` and a
Gaussian hot spot near the clamp. A loading is a pair (hot-spot intensity I [K], peak pressure P [MPa]):
both ramp up together in 8 increments to t = 1, then are removed in 2 (10 increments).

1. every loading is solved by CalculiX (``structrom.rom.hifi_protocol.CalculixSolver``: deck written from the mesh,
   the declared law and the loading, ``ccx`` run in a temporary directory, displacements and the
   integration-point equivalent plastic strain parsed from the .dat file into a snapshot file);
   results are cached in ``out/calculix_rom[_small]/`` and reused while the case is unchanged;
2. the offline stage (``structrom.rom.offline.pipeline.run_offline``) reads only the training snapshot files:
   ccx's displacements, the mesh and the declared law (stresses and p are replayed, not read);
3. the reduced model solves the unseen loadings; its displacements and its Gappy reconstruction of the
   equivalent plastic strain at all integration points are compared with ccx's own (.dat PEEQ), as
   relative space-time 2-norms, and its solve time with ccx's wall time;
4. the last test loading is written as VTU for ParaView (ROM and ccx displacements, element-mean p).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from structrom.rom.adapters.calculix import write_mesh_inp  # noqa: E402
from structrom.rom.fem.io import write_mesh  # noqa: E402
from structrom.rom.fem.structured import box  # noqa: E402
from structrom.rom.hifi.config import load_config  # noqa: E402
from structrom.rom.hifi_protocol import CalculixSolver, case_config, same_case  # noqa: E402
from structrom.rom.offline.config import OfflineConfig  # noqa: E402

TIMES = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.5, 2.0]
CENTER = (2.0, 1.0, 2.0)
# (intensity, pressure): training = corners and edge midpoints of [300, 450] x [3.5, 5.5], tests inside.
TRAINING = [(300.0, 3.5), (450.0, 3.5), (300.0, 5.5), (450.0, 5.5),
            (375.0, 3.5), (375.0, 5.5), (300.0, 4.5), (450.0, 4.5)]
TESTS = [(340.0, 4.0), (410.0, 5.0), (360.0, 4.8), (430.0, 3.9)]
SMALL_TRAINING = TRAINING[:4]
SMALL_TESTS = [(380.0, 4.4), (420.0, 5.1)]


def loading(intensity: float, pressure: float) -> dict:
    """One loading of the family (the plain-data form of structrom.rom.loading_dict.loading_from_dict)."""
    return {"times": TIMES,
            "temperature": {"type": "hot_spot", "center": list(CENTER), "radius": 2.0, "intensity": intensity,
                            "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]},
            "pressure": {"zmax": [[0.0, 0.0], [1.0, pressure], [2.0, 0.0]]}}


def offline_config(out: Path) -> OfflineConfig:
    return OfflineConfig.model_validate({
        "snapshots": {"files": [str(out / "train" / "case_*.h5")]},
        "pod": {"tolerance": 1e-5, "method": "gram"},
        "dual": {"quantities": ["cumulated_plastic_strain", "stress"], "tolerance": 1e-4},
        "ecm": {"tolerance": 1e-5},
        "output": {"file": str(out / "model.h5")},
        "base_dir": str(out)})


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b)) if np.linalg.norm(b) > 0 else float(np.linalg.norm(a))


def run_cases(solver: CalculixSolver, cases, directory: Path, prefix: str, log) -> list[tuple[Path, float]]:
    """ccx snapshots of ``cases``, reusing cached files of the same case; returns (path, ccx seconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (intensity, pressure) in enumerate(cases):
        path = directory / f"{prefix}_{i}.h5"
        cfg = case_config(solver.base, loading(intensity, pressure), path)
        if same_case(path, cfg):
            with h5py.File(path, "r") as f:
                import json

                seconds = float(json.loads(f.attrs["metadata"])["solver"]["wall_seconds"])
            log(f"  {path.name}: cached (ccx {seconds:.1f} s)")
        else:
            run = solver.solve(loading(intensity, pressure), path)
            seconds = run.seconds
            log(f"  {path.name}: I={intensity:g} P={pressure:g}: ccx {seconds:.1f} s, Newton "
                f"{run.info['newton_iterations']}")
        out.append((path, seconds))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="few-thousand-dof mesh, 4 training + 2 test loadings")
    parser.add_argument("--threads", type=int, default=1, help="ccx threads (OMP_NUM_THREADS)")
    args = parser.parse_args()
    from mpi4py import MPI

    from structrom.rom.offline.pipeline import run_offline
    from structrom.rom.online import ReducedModel

    out = ROOT / "out" / ("calculix_rom_small" if args.small else "calculix_rom")
    out.mkdir(parents=True, exist_ok=True)
    base = load_config(HERE / "calculix" / "model.toml")
    mesh_path = out / "bar.inp"
    base.mesh.file = str(mesh_path)
    if not mesh_path.exists():
        divisions, element = ((12, 2, 2), "C3D10") if args.small else ((30, 5, 5), "C3D10")
        write_mesh_inp(mesh_path, box((10.0, 2.0, 2.0), divisions, element))
    training, tests = (SMALL_TRAINING, SMALL_TESTS) if args.small else (TRAINING, TESTS)
    # Default ccx Newton tolerances: ~1e-4 accuracy, well below the ROM's, for fewer iterations.
    solver = CalculixSolver(base, threads=args.threads, field_tolerances=None)
    print(f"mesh {mesh_path}: {solver.mesh.n_dofs} dofs, {solver.mesh.n_elements} {solver.mesh.blocks[0].element}; "
          f"{len(TIMES) - 1} increments per loading")

    t0 = time.perf_counter()
    print(f"1. CalculiX: {len(training)} training loadings")
    run_cases(solver, training, out / "train", "case", print)
    print(f"   CalculiX: {len(tests)} test loadings")
    refs = run_cases(solver, tests, out / "test", "test", print)
    print(f"   ({time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    print("2. offline stage on the ccx snapshots (displacements + mesh + declared law)")
    model_path = run_offline(offline_config(out), comm=MPI.COMM_SELF, log=lambda msg: print("   " + msg.splitlines()[0], flush=True))
    model = ReducedModel.load(model_path)
    print(f"   {model.n_modes} modes, {model.n_reduced_points} reduced points ({time.perf_counter() - t0:.1f} s)")

    print("3. reduced model vs CalculiX on the unseen loadings (relative space-time 2-norms)")
    header = ("| I [K] | P [MPa] | max p (ccx) | displacement error | PEEQ error (Gappy, all points) | "
              "ccx [s] | ROM [s] | speedup |")
    rows = [header, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    worst_u = worst_p = 0.0
    speedups = []
    for (intensity, pressure), (path, ccx_seconds) in zip(tests, refs):
        t1 = time.perf_counter()
        result = model.solve(loading(intensity, pressure))
        rom_seconds = time.perf_counter() - t1
        with h5py.File(path, "r") as f:
            u_ref = f["fields/displacement"][()]
            p_ref = f["fields/cumulated_plastic_strain"][()]
        du = rel(result.displacement(increment=None), u_ref)
        dp = rel(result.dual_field("cumulated_plastic_strain", None), p_ref)
        worst_u, worst_p = max(worst_u, du), max(worst_p, dp)
        speedups.append(ccx_seconds / rom_seconds)
        rows.append(f"| {intensity:g} | {pressure:g} | {p_ref.max():.4f} | {du:.2e} | {dp:.2e} | {ccx_seconds:.1f} | "
                    f"{rom_seconds:.3f} | {ccx_seconds / rom_seconds:.0f} |")
    print("\n".join(rows))
    print(f"   worst: displacement {worst_u:.2e} (target 2e-2), PEEQ {worst_p:.2e} (target 5e-2); speedup "
          f"{min(speedups):.0f}-{max(speedups):.0f}x (online solve vs ccx wall time, one thread each)")

    # 4. VTU of the last test loading at its peak (t = 1) for ParaView.
    k = TIMES.index(1.0) - 1
    with h5py.File(refs[-1][0], "r") as f:
        u_ref = f["fields/displacement"][k]
        p_ref = f["fields/cumulated_plastic_strain"][k]
        el = f["integration_points/element"][()]
        w = f["integration_points/weights"][()]
    p_rom = result.dual_field("cumulated_plastic_strain", k)
    vol = np.bincount(el, weights=w)
    vtu = write_mesh(out / "test_last_peak.vtu", solver.mesh,
                     point_data={"u_rom": result.displacement(increment=k), "u_ccx": u_ref},
                     cell_data={"p_rom": np.bincount(el, weights=w * p_rom) / vol,
                                "p_ccx": np.bincount(el, weights=w * p_ref) / vol})
    print(f"4. wrote {vtu} (open in ParaView: u_rom, u_ccx, element-mean p_rom, p_ccx)")
    ok = worst_u <= 0.02 and worst_p <= 0.05
    print("PASS" if ok else "FAIL: tolerances exceeded")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
