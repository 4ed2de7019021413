"""Offline stage: time and peak memory of each stage against dofs and ranks; POD against pyMOR's.

    python bench/offline.py out/rom_plate_small out/rom_plate [--ranks 1 2] [--append-docs]

Each argument is a directory made by ``examples/rom_plate.py`` (``train/*.h5`` HF snapshots and
``offline.toml``). For every directory and rank count the offline stage runs under ``mpirun -n P`` and
the per-stage figures recorded in the model's provenance are tabulated. Then the displacement POD of
the same snapshot matrix (mass product) is timed serially with ``structrom.rom.pod.pod`` and with pyMOR's
``pod`` (method of snapshots, same number of modes) when pyMOR is installed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs_section import write_section  # noqa: E402  (bench/ is the script's directory)

import h5py  # noqa: E402
import numpy as np  # noqa: E402


def env() -> dict:
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def run_offline(directory: Path, ranks: int) -> dict:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        cfg = Path(tmp) / "offline.toml"
        text = (directory / "offline.toml").read_text().replace('files = ["train/*.h5"]',
                                                                f'files = ["{directory.resolve()}/train/*.h5"]')
        cfg.write_text(text.replace('file = "model.h5"', 'file = "bench_model.h5"'))
        t0 = time.perf_counter()
        subprocess.run(["mpirun", "-n", str(ranks), "--bind-to", "none", sys.executable, "-m", "structrom.api.cli", "offline",
                        str(cfg)], env=env(), cwd=ROOT, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        with h5py.File(Path(tmp) / "bench_model.h5", "r") as f:
            prov = json.loads(f.attrs["provenance"])
            n_dofs = f["modes/full"].shape[0]
    return {"dofs": n_dofs, "ranks": ranks, "wall": wall, "stages": prov["stages"], "modes": prov["pod"]["modes"],
            "points": prov["ecm"]["points"]}


def pod_comparison(directory: Path) -> str:
    from mpi4py import MPI

    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.hifi.output import read_mesh_group
    from structrom.rom.pod import pod

    files = sorted((directory / "train").glob("*.h5"))
    with h5py.File(files[0], "r") as f:
        mesh = read_mesh_group(f["mesh"])
    S = np.concatenate([h5py.File(p, "r")["fields/displacement"][()].reshape(-1, mesh.n_dofs) for p in files]).T
    M = Discretization(mesh).mass_matrix(1.0).tocsr()
    t = time.perf_counter()
    ours = pod(MPI.COMM_SELF, S, weight_local=M, tolerance=1e-4, method="gram")
    t_ours = time.perf_counter() - t
    n = ours.modes_local.shape[1]
    line = f"POD of {S.shape[1]} snapshots x {mesh.n_dofs} dofs, mass product, {n} modes: structrom.rom.pod {t_ours:.3f} s"
    try:
        from pymor.algorithms.pod import pod as pymor_pod
        from pymor.operators.numpy import NumpyMatrixOperator
        from pymor.vectorarrays.numpy import NumpyVectorSpace
    except ImportError:
        return line + " (pyMOR not installed: `pip install pymor` for the comparison)"
    product = NumpyMatrixOperator(M)
    A = NumpyVectorSpace.from_numpy(S)  # pyMOR >= 2025: columns are the vectors
    t = time.perf_counter()
    _, svals = pymor_pod(A, product=product, modes=n, rtol=0.0)
    t_pymor = time.perf_counter() - t
    diff = float(np.max(np.abs(svals[:n] - ours.singular_values[:n]) / ours.singular_values[:n]))
    return line + (f"; pyMOR pod {t_pymor:.3f} s (ratio pyMOR/ours {t_pymor / t_ours:.2f}); singular values "
                   f"agree to {diff:.1e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--append-docs", action="store_true")
    args = parser.parse_args()
    results = [run_offline(d, p) for d in args.directories for p in args.ranks]
    names = [s["stage"] for s in results[0]["stages"]]
    lines = ["| dofs | ranks | modes | ECM points | " + " | ".join(f"{n} [s]" for n in names) +
             " | wall [s] | peak RSS per rank [GiB] |",
             "| ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: | ---: |"]
    for r in results:
        times = {s["stage"]: s["seconds"] for s in r["stages"]}
        peak = max(s["peak_rss_gib"] for s in r["stages"])
        lines.append(f"| {r['dofs']} | {r['ranks']} | {r['modes']} | {r['points']} | " +
                     " | ".join(f"{times.get(n, float('nan')):.2f}" for n in names) + f" | {r['wall']:.1f} | {peak:.2f} |")
    lines += ["", pod_comparison(args.directories[-1])]
    text = "\n".join(lines)
    print(text)
    if args.append_docs:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        cmd = "python bench/offline.py " + " ".join(str(d) for d in args.directories)
        write_section("Offline stage", f"## Offline stage\n\n`{cmd} --append-docs` ({time.strftime('%Y-%m-%d')}, "
                      f"commit {commit}, 2 cores)\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
