"""Enrichment against a full offline rebuild with the same snapshots, on 1 and 2 ranks.

    python bench/enrich.py [--divisions 40 4 4] [--training 12] [--ranks 1 2] [--out out/bench_enrich] [--no-doc]

Problem: a clamped bar (C3D20R box, ``--divisions``), J2 plasticity with temperature-dependent
properties, a pressure on its top face and a hot spot, both applied then removed; the training
loadings vary the hot spot's position and intensity and the pressure peak (``--training`` of them, HF
solves cached in ``--out``). The model is built from them (``structrom offline``); a loading with the
hot spot at the free end is flagged by its indicator. For every rank count P:

* ``mpirun -n P structrom enrich model.h5 --loadings new.json``: online screening, one HF solve, the
  incremental update, the new version published;
* ``mpirun -n P structrom offline`` on the training snapshots plus the enrichment's HF snapshot (what
  enrichment replaces).

Both run as processes; the table gives their wall times, the enrichment's own split (from its JSON
result), and the speedup of the enrichment without its HF solve (the HF solve is the same in both
paths) over the offline stage, as whole processes and in-process (the enrichment's own timers against
the offline stage's recorded stages: interpreter, MPI and PETSc start-up excluded). With ``--calibration on``
(the offline default) the models carry the leave-one-out calibration of the indicator: the rebuild redoes
it (one fold per training case, each with its own cubature), enrichment refits it from the stored samples
and the new loading's samples under the model before (:mod:`structrom.rom.offline.recalibrate`). Written
to stdout and the "Enrichment" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

from docs_section import write_section  # noqa: E402  (bench/ is the script's directory)
from offline_fixtures import HIFI  # noqa: E402  (the bar's HF configuration, shared with the offline tests)

OFFLINE = """
[snapshots]
files = {files}

[pod]
tolerance = {pod_tol}
method = "gram"

[dual]
quantities = ["cumulated_plastic_strain", "stress"]
tolerance = 1e-4

[ecm]
tolerance = {ecm_tol}

[indicator]
tolerance = {tol}
calibrate = {calibrate}

[output]
file = "{out}"
"""
#: The loading enrichment adds: the hot spot near the free end (x in [0, 10], training x in [2, 6]).
NEW = (8.5, 420.0, 5.0)


def env() -> dict:
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
                OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def training_cases(n: int) -> list[tuple[float, float, float]]:
    """``n`` (hot-spot x, intensity, pressure peak) on a Halton-like deterministic spread of the box."""
    from scipy.stats import qmc

    u = qmc.Halton(3, seed=0).random(n)
    return [(2.0 + 4.0 * a, 300.0 + 150.0 * b, 4.0 + 4.0 * c) for a, b, c in u]


def cli(ranks: int, *args: str, cwd: Path) -> tuple[float, str, float]:
    """Run ``mpirun -n ranks structrom args``: ``(wall seconds, stdout, CPU seconds of all its processes)``."""
    import resource

    def children_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run(["mpirun", "-n", str(ranks), "--bind-to", "none", sys.executable, "-m", "structrom.api.cli",
                           *args], env=env(), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"structrom {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0, proc.stdout, children_cpu() - c0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--divisions", type=int, nargs=3, default=[40, 4, 4])
    parser.add_argument("--training", type=int, default=12)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--indicator-tol", type=float, default=1e-3,
                        help="trust tolerance of the uncalibrated (Gappy) models")
    parser.add_argument("--calibrated-tol", type=float, default=0.05,
                        help="trust tolerance of the calibrated models (bounds of relative errors)")
    parser.add_argument("--calibration", choices=("off", "on", "both"), default="both",
                        help="models with the Gappy indicator (off), the leave-one-out calibration (on: the "
                             "offline default; the rebuild recalibrates, enrichment refits), or both")
    parser.add_argument("--pod-tol", type=float, default=1e-4)
    parser.add_argument("--ecm-tol", type=float, default=1e-4)
    parser.add_argument("--out", default=str(ROOT / "out" / "bench_enrich"))
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    (out / "train").mkdir(parents=True, exist_ok=True)
    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.fem.structured import box

    mesh = box((10.0, 2.0, 2.0), tuple(args.divisions), element="C3D20R")
    write_mesh_inp(out / "bar.inp", mesh)
    n_dofs = 3 * len(mesh.points)
    cases = training_cases(args.training)
    t0 = time.perf_counter()
    for i, (cx, it, p) in enumerate(cases):  # HF training snapshots (cached)
        if not (out / "train" / f"case_{i}.h5").exists():
            cfg = out / f"case_{i}.toml"
            cfg.write_text(HIFI.format(cx=cx, intensity=it, pressure=p, out=f"train/case_{i}.h5"))
            cli(1, "hifi", str(cfg), cwd=out)
    print(f"bench/enrich: {n_dofs} dofs, {len(cases)} training HF solves ready ({time.perf_counter() - t0:.0f} s)")
    new = {"name": "hot_end", "times": [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
           "temperature": {"type": "hot_spot", "center": [NEW[0], 1.0, 2.0], "radius": 2.0, "intensity": NEW[1],
                           "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]},
           "pressure": {"zmax": [[0.0, 0.0], [1.0, NEW[2]], [2.0, 0.0]]}}
    (out / "new.json").write_text(json.dumps([new]))
    train_files = [str(out / "train" / f"case_{i}.h5") for i in range(len(cases))]
    rows = []
    variants = {"off": [False], "on": [True], "both": [False, True]}[args.calibration]
    for calibrated, P in [(c, P) for c in variants for P in args.ranks]:
        d = out / (f"P{P}" + ("_calibrated" if calibrated else ""))
        tol = args.calibrated_tol if calibrated else args.indicator_tol
        fmt = dict(tol=tol, pod_tol=args.pod_tol, ecm_tol=args.ecm_tol, calibrate=str(calibrated).lower())
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / "offline.toml").write_text(OFFLINE.format(files=json.dumps(train_files), out="model.h5", **fmt))
        cli(P, "offline", "offline.toml", cwd=d)
        t_enrich, stdout, cpu_enrich = cli(P, "enrich", "model.h5", "--loadings", str(out / "new.json"), "--json", cwd=d)
        res = json.loads(next(ln for ln in stdout.splitlines() if ln.startswith("ENRICH "))[len("ENRICH "):])
        if res["enriched"] != ["hot_end"]:
            raise RuntimeError(f"the new loading was not flagged (indicator {res['screened'][0]['indicator']:.3e} "
                               f"<= {tol}): lower the tolerance")
        snap = str(d / "enrichment" / "model.v2" / "hot_end.h5")
        (d / "rebuild.toml").write_text(OFFLINE.format(files=json.dumps(train_files + [snap]), out="rebuilt.h5",
                                                       **fmt))
        t_rebuild, out_rebuild, cpu_rebuild = cli(P, "offline", "rebuild.toml", cwd=d)
        import h5py

        with h5py.File(d / "rebuilt.h5", "r") as f:
            stages = json.loads(f.attrs["provenance"])["stages"]
        # the offline stage's own total (calibration and writing included); the recorded stages (which stop
        # before the calibration) when the log does not say
        done = re.search(r"offline: done in ([0-9.]+) s", out_rebuild)
        in_rebuild = float(done.group(1)) if done else sum(s["seconds"] for s in stages)
        in_enrich = res["seconds"]["total"] - res["seconds"]["HF solves"]
        from structrom.rom.online import ReducedModel

        enriched_calibrated = ReducedModel.load(d / "model.h5").data.calibration is not None
        if calibrated and not enriched_calibrated:
            raise RuntimeError("the enriched model lost its calibration")
        rebuilt = ReducedModel.load(d / "rebuilt.h5")
        ind_rebuilt = float(rebuilt.solve({k: v for k, v in new.items() if k != "name"},
                                          extrapolate=True).indicator.max())
        hf = res["seconds"]["HF solves"]
        rows.append({"ranks": P, "calibrated": calibrated, "tolerance": tol, "enrich_wall": t_enrich, "hf": hf, "update": res["seconds"]["model update"],
                     "enrich_no_hf": t_enrich - hf, "rebuild_wall": t_rebuild, "speedup": t_rebuild / (t_enrich - hf),
                     "before": res["screened"][0]["indicator"], "after": res["after"]["hot_end"],
                     "rebuilt": ind_rebuilt, "in_enrich": in_enrich, "in_rebuild": in_rebuild,
                     "in_speedup": in_rebuild / in_enrich,
                     # CPU of whole processes (all ranks); the collective HF solve counted as P x rank 0's
                     "cpu_enrich_no_hf": cpu_enrich - P * res["cpu_seconds"]["HF solves"], "cpu_rebuild": cpu_rebuild,
                     "cpu_speedup": cpu_rebuild / (cpu_enrich - P * res["cpu_seconds"]["HF solves"]), "modes": res["stats"]["modes"], "points": res["stats"]["points"],
                     "seconds": res["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    lines = [f"Bar {args.divisions[0]} x {args.divisions[1]} x {args.divisions[2]} C3D20R ({n_dofs} dofs), J2, "
             f"{len(cases)} training loadings x 6 increments; POD and ECM tolerances {args.pod_tol:g}, {args.ecm_tol:g}; "
             "one flagged loading (hot spot at the free end) added. "
             "Wall times of whole `mpirun -n P structrom ...` processes (start-up included).", "",
             "| ranks | indicator | tolerance | indicator before | after enrich | after rebuild | modes | reduced points | enrich [s] | "
             "of which HF solve [s] | enrich w/o HF [s] | of which model update [s] | offline rebuild [s] | "
             "speedup (rebuild / enrich w/o HF) | in-process: enrich w/o HF [s] | offline stage [s] | speedup | "
             "CPU: enrich w/o HF [s] | CPU: rebuild [s] | CPU speedup |",
             "| ---: | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['ranks']} | {'calibrated' if r['calibrated'] else 'Gappy'} | {r['tolerance']:g} | "
                     f"{r['before']:.2e} | {r['after']:.2e} | {r['rebuilt']:.2e} | "
                     f"{r['modes'][0]} -> {r['modes'][1]} | {r['points'][0]} -> {r['points'][1]} | "
                     f"{r['enrich_wall']:.2f} | {r['hf']:.2f} | {r['enrich_no_hf']:.2f} | {r['update']:.2f} | "
                     f"{r['rebuild_wall']:.2f} | {r['speedup']:.1f} | {r['in_enrich']:.2f} | {r['in_rebuild']:.2f} | "
                     f"{r['in_speedup']:.1f} | {r['cpu_enrich_no_hf']:.2f} | {r['cpu_rebuild']:.2f} | "
                     f"{r['cpu_speedup']:.1f} |")
    table = "\n".join(lines)
    print(table)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    if not args.no_doc:
        write_section("Enrichment", "## Enrichment\n\n```sh\n" + " ".join(
            ["python bench/enrich.py"] + [a for a in sys.argv[1:] if a != "--no-doc"]) + "\n```\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
