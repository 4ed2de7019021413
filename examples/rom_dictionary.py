"""Dictionary of local reduced models (ROM-net) against one global model, on a hot spot moving over the plate.

The plate of examples/rom_plate.py (clamped left face, traction on the right face, elastoplastic, two holes
and two notches) heated by a hot spot whose centre moves over the whole length (x = 10..90 mm): the
plastic zone jumps from the clamp to the holes and the notches, a regime change a single reduced basis
covers only with many modes. From the SAME HF snapshots:

* ``global``: `structrom offline` on all training loadings (POD / ECM / Gappy at the given tolerances);
* ``global-N``: the same with its POD capped at ``N`` modes (``--caps`` and the largest local model's number of
  modes): the global model's cost / accuracy curve;
* ``dictionary``: `structrom dictionary` (Grassmann k-medoids clusters, one local model
  per cluster by the same pipeline, logistic-regression classifier), solved with the misclassification
  fallback.

    python examples/rom_dictionary.py   # 8,142 dofs, 18 + 8 HF solves (~8 min on 2 free cores)
    python examples/rom_dictionary.py --clusters 4 --out out/rom_dictionary4

Prints and writes out/rom_dictionary/results.md: per test loading the space-time relative L2 error of the
displacement, the online CPU time of each model (best of --repeats), the local model used; the classifier's accuracy on the unseen
loadings (against the Grassmann-nearest medoid of the HF solution, and against the local model of least
error); the a priori efficiency criterion. docs/rom_accuracy.md holds the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from geometries import plate_with_holes  # noqa: E402
from rom_plate import mpi_env, run_hifi  # noqa: E402

OFFLINE = """
[snapshots]
files = {files}

[pod]
tolerance = {pod_tol}
{max_modes}

[dual]
quantities = ["cumulated_plastic_strain", "stress"]
tolerance = {pod_tol}

[ecm]
tolerance = {ecm_tol}

[indicator]
quantity = "cumulated_plastic_strain"
tolerance = {ind_tol}
calibrate = false  # the documented runs use the Gappy indicator

[output]
file = "{out}"
"""

DICTIONARY = """
[dictionary]
clusters = {clusters}
subspace_dim = {subspace_dim}
sensors = 32
overlap = {overlap}
"""

# (traction peak [MPa], hot-spot x [mm], intensity [degC]): the hot spot visits the whole plate
TRAINING = [(tr, x, it) for x in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
            for tr, it in ((-150.0, 450.0), (-250.0, 250.0))]
TEST = [(-200.0, x, 350.0) for x in (15.0, 35.0, 55.0, 75.0)] + \
       [(-175.0, 25.0, 400.0), (-225.0, 45.0, 300.0), (-175.0, 65.0, 400.0), (-225.0, 85.0, 300.0)]


def true_clusters(mesh, medoid_files: list[Path], test_files: list[Path], dim: int) -> np.ndarray:
    """Cluster of each test HF solution: the medoid of least Grassmann distance (serial)."""
    from mpi4py import MPI

    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.offline.clustering import case_subspaces, grassmann_distances

    mass = Discretization(mesh).mass_matrix(1.0).tocsr()
    rows = np.arange(mesh.n_dofs)

    def snaps(files):
        out = []
        for f in files:
            with h5py.File(f, "r") as h:
                u = h["fields/displacement"][()]
            out.append(u.reshape(len(u), -1).T)
        return out

    comm = MPI.COMM_SELF
    med = case_subspaces(comm, snaps(medoid_files), mass, rows, dim)
    tst = case_subspaces(comm, snaps(test_files), mass, rows, dim)
    return np.argmin(grassmann_distances(comm, tst, med, mass), axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh-size", type=float, default=6.0)
    parser.add_argument("--curvature-points", type=int, default=6)
    parser.add_argument("--increments", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--subspace-dim", type=int, default=3)
    parser.add_argument("--overlap", type=float, default=0.2, help="overlap of the local models' training sets")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the offline stages")
    parser.add_argument("--pod-tol", type=float, default=1e-3)
    parser.add_argument("--ecm-tol", type=float, default=1e-3)
    parser.add_argument("--indicator-tol", type=float, default=2e-2,
                        help="trust threshold (the global model's indicator is 0.7-1.2e-2 on the test loadings)")
    parser.add_argument("--caps", default="8,11,14",
                        help="also global models capped at these numbers of modes (and at the largest local model's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed online solves per loading (best kept)")
    parser.add_argument("--out", default=str(ROOT / "out" / "rom_dictionary"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    for sub in ("train", "test"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    times = np.linspace(0.0, 2.0, args.increments + 1).round(6).tolist()
    mesh_path = out / "plate.msh"
    if not mesh_path.exists():
        plate_with_holes(length=100.0, width=40.0, thickness=5.0, holes=[(30.0, 20.0, 6.0), (70.0, 20.0, 6.0)],
                         notch_depth=4.0, order=2, mesh_size=args.mesh_size, curvature_points=args.curvature_points,
                         path=mesh_path)
    from structrom.rom.fem.io import read_mesh

    mesh = read_mesh(mesh_path)
    print(f"rom_dictionary: mesh {mesh.n_dofs} dofs, {mesh.n_elements} C3D10 elements", flush=True)
    jobs = [("train", f"train_{i}", p) for i, p in enumerate(TRAINING)] + \
           [("test", f"test_{i}", p) for i, p in enumerate(TEST)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        hf_seconds = dict(zip([j[1] for j in jobs], pool.map(
            lambda j: run_hifi(out / j[0], j[1], j[2], times, "mumps"), jobs)))
    print(f"rom_dictionary: {len(jobs)} HF solves ready ({time.perf_counter() - t0:.0f} s this run)", flush=True)

    files = json.dumps([f"train/train_{i}.h5" for i in range(len(TRAINING))])

    def offline(name: str, module: list[str], max_modes: int | None = None, extra: str = "") -> float:
        """One offline stage under mpirun (skipped when its model file exists); returns its wall time."""
        cfg = out / f"{name}.toml"
        cfg.write_text(OFFLINE.format(files=files, pod_tol=args.pod_tol, ecm_tol=args.ecm_tol,
                                      ind_tol=args.indicator_tol, out=f"{name}.h5",
                                      max_modes=f"max_modes = {max_modes}" if max_modes else "") + extra)
        stamp = out / f"{name}.seconds"
        if (out / f"{name}.h5").exists() and stamp.exists():
            return float(stamp.read_text())
        t = time.perf_counter()
        with open(out / f"{name}.log", "w") as log:
            subprocess.run(["mpirun", "-n", str(args.ranks), "--bind-to", "none", sys.executable, "-m", *module,
                            str(cfg)], env=mpi_env(), cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
        stamp.write_text(str(time.perf_counter() - t))
        return float(stamp.read_text())

    # the global model and the dictionary from the same snapshots, built side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        glob = pool.submit(offline, "global", ["structrom.api.cli", "offline"])
        dic = pool.submit(offline, "dictionary", ["structrom.rom.offline.dictionary"],
                          extra=DICTIONARY.format(clusters=args.clusters, subspace_dim=args.subspace_dim,
                                                 overlap=args.overlap))
        offline_s = {"global": glob.result(), "dictionary": dic.result()}
    from structrom.rom.hifi.config import load_config
    from structrom.rom.online import OnlineSolverError, ReducedModel
    from structrom.rom.online.dictionary import DictionaryModel

    dictionary = DictionaryModel.load(out / "dictionary.h5")
    local_max = max(m.n_modes for m in dictionary.models)
    caps = sorted({int(c) for c in args.caps.split(",") if c} | {local_max})
    with ThreadPoolExecutor(max_workers=2) as pool:  # global models capped at N modes: the cost / accuracy curve
        done = {n: pool.submit(offline, f"global-{n}", ["structrom.api.cli", "offline"], max_modes=n) for n in caps}
        offline_s.update({f"global-{n}": f.result() for n, f in done.items()})
    models = {"global": ReducedModel.load(out / "global.h5")}
    models.update({f"global-{n}": ReducedModel.load(out / f"global-{n}.h5") for n in caps})
    models["dictionary"] = dictionary
    small = f"global-{local_max}"
    medoids = dictionary.provenance["medoids"]
    truth = true_clusters(mesh, [out / "train" / f"train_{i}.h5" for i in medoids],
                          [out / "test" / f"test_{i}.h5" for i in range(len(TEST))], args.subspace_dim)

    rows = []
    for i, params in enumerate(TEST):
        loading = load_config(out / f"test_{i}.toml").build_loading()
        with h5py.File(out / "test" / f"test_{i}.h5", "r") as f:
            u = f["fields/displacement"][()]
        row = {"name": f"test_{i}", "params": params, "hf_s": hf_seconds[f"test_{i}"],
               "true_cluster": dictionary.names[int(truth[i])]}
        for label, model in models.items():
            try:
                model.solve(loading, extrapolate=True)  # warm-up
                best = np.inf
                for _ in range(args.repeats):  # CPU time of this process: the cores are shared
                    t = time.process_time()
                    res = model.solve(loading, extrapolate=True)
                    best = min(best, time.process_time() - t)
                err = float(np.linalg.norm(res.displacement(increment=None) - u) / np.linalg.norm(u))
                row[label] = {"error_u": err, "online_s": best, "indicator": float(res.indicator.max()),
                              "trusted": bool(res.trusted.all()), "newton": int(res.newton_iterations.sum())}
            except OnlineSolverError as exc:
                row[label] = {"error_u": np.inf, "online_s": np.nan, "indicator": np.inf, "trusted": False,
                              "failed": str(exc)}
                continue
            if label == "dictionary":
                row[label].update(local_model=res.local_model, fallback=res.fallback,
                                  first_choice=res.attempts[0]["model"], attempts=len(res.attempts))
        # the local model of least error (oracle), for the classifier's accuracy
        errs = []
        for m in dictionary.models:
            try:
                r = m.solve(loading, extrapolate=True)
                errs.append(float(np.linalg.norm(r.displacement(increment=None) - u) / np.linalg.norm(u)))
            except OnlineSolverError:
                errs.append(np.inf)
        row["oracle_cluster"] = dictionary.names[int(np.argmin(errs))]
        row["local_errors"] = errs
        rows.append(row)
        print(f"rom_dictionary: {row['name']} {params}: " + ", ".join(
            f"{k} {row[k]['error_u']:.2e} ({1e3 * row[k]['online_s']:.0f} ms)" for k in models), flush=True)

    prov = dictionary.provenance
    crit = prov["efficiency"]
    acc_truth = np.mean([r["dictionary"].get("first_choice") == r["true_cluster"] for r in rows])
    acc_oracle = np.mean([r["dictionary"].get("first_choice") == r["oracle_cluster"] for r in rows])
    sizes = {k: (m.n_modes, m.n_reduced_points) for k, m in models.items() if k != "dictionary"}
    lines = [f"Mesh: {mesh.n_dofs} dofs ({mesh.n_elements} C3D10); {len(TRAINING)} training loadings x {args.increments} "
             f"increments (hot spot x = 10..90 mm); POD / dual tolerance {args.pod_tol:g}, ECM {args.ecm_tol:g}, "
             f"indicator tolerance {args.indicator_tol:g}; overlap {args.overlap:g}; online: CPU time, best of {args.repeats}; offline on {args.ranks} ranks: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in offline_s.items()), "",
             "Models: " + ", ".join(f"{k} {n} modes / {p} points" for k, (n, p) in sizes.items()) + "; dictionary "
             + ", ".join(f"{n} {m.n_modes} modes / {m.n_reduced_points} points ({len(prov['members'][j])} loadings)"
                         for j, (n, m) in enumerate(zip(dictionary.names, dictionary.models))), "",
             f"A priori criterion at tolerance {crit['tolerance']:g}: global POD {crit['global_modes']} modes, local "
             f"{crit['local_modes']} (ratio {crit['ratio']:.2f}: {'dictionary' if crit['beneficial'] else 'global'} "
             f"predicted better); global projection error at {max(crit['local_modes'])} modes "
             f"{crit['global_error_at_local_size']:.1e}", "",
             f"| loading | traction, x, intensity | global u error | global [ms] | {small} u error | "
             f"{small} [ms] | dictionary u error | dictionary [ms] | local model (first choice) | HF [s] |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in rows:
        d = r["dictionary"]
        lines.append(f"| {r['name']} | {r['params']} | {r['global']['error_u']:.2e} | {1e3 * r['global']['online_s']:.0f} | "
                     f"{r[small]['error_u']:.2e} | {1e3 * r[small]['online_s']:.0f} | "
                     f"{d['error_u']:.2e} | {1e3 * d['online_s']:.0f} | {d.get('local_model')} ({d.get('first_choice')}) | "
                     f"{r['hf_s']:.1f} |")

    def stat(label: str) -> str:
        e = np.array([r[label]["error_u"] for r in rows])
        t = np.array([r[label]["online_s"] for r in rows])
        m = models[label]
        size = f"{m.n_modes} / {m.n_reduced_points}" if label != "dictionary" else " / ".join(
            f"{x.n_modes}-{x.n_reduced_points}" for x in m.models)
        return f"| {label} | {size} | {np.mean(e):.2e} | {np.max(e):.2e} | {1e3 * np.nanmean(t):.0f} | {1e3 * np.nanmax(t):.0f} |"

    lines += ["", "| model | modes / points | mean u error | max u error | mean online [ms] | max online [ms] |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [stat(k) for k in models]
    lines += ["", f"Classifier on the {len(rows)} unseen loadings: first choice = Grassmann-nearest medoid "
                  f"{acc_truth:.2f}, = local model of least error {acc_oracle:.2f}; leave-one-out on the training "
                  f"loadings {prov['classifier']['leave_one_out_accuracy']}; fallbacks used: "
                  f"{sum(bool(r['dictionary'].get('fallback')) for r in rows)}"]
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"rows": rows, "offline_s": offline_s, "criterion": crit,
                                                  "accuracy": {"nearest_medoid": acc_truth, "least_error": acc_oracle}},
                                                 indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
