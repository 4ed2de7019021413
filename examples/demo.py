"""End-to-end demo: mesh a plate with holes (gmsh), solve it with the HF solver on 2 MPI ranks, write
HDF5 snapshots and an XDMF file for ParaView, and print a summary.

    bash run.sh demo                  # from a fresh machine (installs what is missing first)
    python examples/demo.py [--mesh-size 2.5] [--ranks 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from geometries import plate_with_holes  # noqa: E402

from structrom.rom.voigt import von_mises  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh-size", type=float, default=3.0, help="gmsh element size [mm]")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks for the HF solve")
    args = parser.parse_args()
    out = ROOT / "out" / "demo"
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    mesh = plate_with_holes(100.0, 40.0, 5.0, holes=[(30.0, 20.0, 6.0), (70.0, 20.0, 6.0)], notch_depth=4.0,
                            mesh_size=args.mesh_size, order=2, path=out / "plate.msh")
    print(f"demo: meshed the plate with gmsh: {mesh.n_nodes} nodes, {mesh.n_dofs} dofs, "
          f"{mesh.n_elements} C3D10 elements ({time.perf_counter() - t0:.1f} s)")

    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = ["mpirun", "-n", str(args.ranks), "--bind-to", "none", sys.executable, "-m", "structrom.api.cli", "hifi",
           str(HERE / "plate.toml")]
    if shutil.which("mpirun") is None:
        print("demo: mpirun not found: run `bash run.sh demo` to install Open MPI", file=sys.stderr)
        return 1
    print("demo: " + " ".join(cmd[:3] + ["structrom", "hifi", "examples/plate.toml"]))
    proc = subprocess.run(cmd, env=env, cwd=ROOT)
    if proc.returncode != 0:
        return proc.returncode

    with h5py.File(out / "plate.h5", "r") as f:
        t = f["increments/time"][()]
        u = f["fields/displacement"][()]
        p = f["fields/cumulated_plastic_strain"][()]
        vm = von_mises(f["fields/stress"][()])
        temp = f["fields/temperature"][()]
    print("\n  time   max |u| [mm]   max T [degC]   max von Mises [MPa]   max p")
    for k in range(len(t)):
        print(f"  {t[k]:4.2f}   {np.linalg.norm(u[k], axis=1).max():12.4e}   {temp[k].max():12.1f}   "
              f"{vm[k].max():19.1f}   {p[k].max():.3e}")
    print(f"\ndemo: snapshots {out / 'plate.h5'} (layout: docs/hdf5_layout.md)")
    print(f"demo: open {out / 'plate.xdmf'} in ParaView (displacement, temperature, element-averaged "
          "stress, von_mises, cumulated_plastic_strain per increment)")
    print(f"demo: done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
