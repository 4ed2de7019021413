"""Online cost of the reduced model: time per increment, independence of the mesh size, speedup.

    python bench/online.py [--quick]
    python bench/online.py --indicator-cost --modes 30 --points 300 --increments 20   # the indicator's extra cost

Two reduced models with the SAME reduced sizes (modes, reduced points) are built on a mesh and on a
mesh about 10 times larger (tests/rom_fixtures.build_exact_model with evenly spaced reduced points:
for timing only), and the online time per increment is measured (median of repeated solves, one BLAS
thread). The HF time per increment of the same loading on the larger mesh gives the speedup. A table
is printed; with ``--append-docs`` it is written to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

import rom_fixtures as F  # noqa: E402
from docs_section import write_section  # noqa: E402  (bench/ is the script's directory)
from structrom.rom.online import ReducedModel  # noqa: E402


def indicator_cost(args) -> int:
    """Extra online cost of the error indicator: median solve time with ``indicator=False`` (Gappy residual
    only) and ``indicator=True`` (all components), a validation set of ``--validation`` points attached
    (rows of the model's own points with rescaled weights: the same work as distinct points)."""
    import dataclasses

    import scipy.sparse as sp

    from structrom.rom import model_file
    from structrom.rom.online.indicator import ValidationSet

    loading = F.loading_dict(0.05, 0.5, times=np.linspace(0.0, 1.0, args.increments + 1).round(6).tolist())
    with tempfile.TemporaryDirectory() as tmp:
        exact = F.build_exact_model(Path(tmp), divisions=(12, 3, 3), max_modes=args.modes,
                                    n_reduced_points=args.points, pod_tolerance=1e-12)
        data = model_file.load(exact.path)
    n_val = min(args.validation, data.n_reduced_points)
    pick = np.linspace(0, data.n_reduced_points - 1, n_val).round().astype(int)
    duals = {k: d.reduced_basis.reshape(data.n_reduced_points, d.components, -1)[pick].reshape(n_val * d.components, -1)
             for k, d in data.duals.items()}
    val = ValidationSet(point=data.point[pick], integrator=data.integrator[pick],
                        weights=data.weights[pick] * data.weights.sum() / data.weights[pick].sum(),
                        material=data.material[pick], interpolation=sp.csr_matrix(data.temperature_interpolation)[pick],
                        duals=duals)
    model = ReducedModel(dataclasses.replace(data, validation=val))
    model.solve(loading, extrapolate=True)
    times: dict = {False: [], True: []}
    part = []
    for _ in range(args.repeats):
        for flag in (False, True):
            t = time.perf_counter()
            res = model.solve(loading, extrapolate=True, indicator=flag)
            times[flag].append(time.perf_counter() - t)
            if flag:
                part.append(res.timings["indicator"])
    off, on = (float(np.median(times[f])) for f in (False, True))
    inside = float(np.median(part))
    text = "\n".join([
        "| modes | reduced points | validation points | increments | solve without indicator [ms] | "
        "with indicator [ms] | extra [ms] | extra [%] | indicator's own time in the solve [ms] |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {data.n_modes} | {data.n_reduced_points} | {n_val} | {args.increments} | {1e3 * off:.2f} | "
        f"{1e3 * on:.2f} | {1e3 * (on - off):.2f} | {100 * (on - off) / off:.0f} | {1e3 * inside:.2f} |"])
    print(text)
    if args.append_docs:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        write_section("Online error indicator", "## Online error indicator\n\n`python bench/online.py --indicator-cost "
                      f"--modes {args.modes} --points {args.points} --increments {args.increments} --append-docs` "
                      f"({time.strftime('%Y-%m-%d')}, commit {commit}, 2 cores shared with other jobs, one BLAS "
                      "thread; J2 box fixture, which keeps fewer modes than asked when its POD converges; medians of "
                      f"{args.repeats} solves of each kind, interleaved)\n\n{text}\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small meshes, few repeats")
    parser.add_argument("--modes", type=int, default=12)
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--append-docs", action="store_true")
    parser.add_argument("--indicator-cost", action="store_true",
                        help="only the extra cost of the error indicator (median of --repeats solves)")
    parser.add_argument("--validation", type=int, default=200, help="validation points (--indicator-cost)")
    parser.add_argument("--increments", type=int, default=20, help="increments (--indicator-cost)")
    parser.add_argument("--repeats", type=int, default=21, help="repeats (--indicator-cost)")
    args = parser.parse_args()
    if args.indicator_cost:
        return indicator_cost(args)
    meshes = [(8, 2, 2), (17, 4, 4)] if args.quick else [(12, 3, 3), (30, 7, 7)]
    repeats = 3 if args.quick else 15
    rows = []
    loading = F.loading_dict(0.04, 0.25)
    n_inc = len(loading["times"]) - 1
    with tempfile.TemporaryDirectory() as tmp:
        built = []
        for divisions in meshes:
            exact = F.build_exact_model(Path(tmp), divisions=divisions, max_modes=args.modes,
                                        n_reduced_points=args.points, name=f"m{divisions[0]}.h5",
                                        pod_tolerance=1e-10)
            model = ReducedModel.load(exact.path)
            res = model.solve(loading, extrapolate=True)
            built.append((exact, model, res))
        # the models' solves interleaved, so that both see the same machine (its speed drifts over time)
        times: list[list[float]] = [[] for _ in built]
        for _ in range(repeats):
            for j, (_, model, _) in enumerate(built):
                t = time.perf_counter()
                model.solve(loading, extrapolate=True)
                times[j].append(time.perf_counter() - t)
        for (exact, model, res), ts in zip(built, times):
            online = float(np.median(ts)) / n_inc
            t = time.perf_counter()
            F.hf_solve(exact.mesh, loading)
            hf = (time.perf_counter() - t) / n_inc
            n_newton, n_law = int(res.newton_iterations.sum()), int(res.timings["law_calls"])
            rows.append((exact.mesh.n_dofs, model.data.n_modes, model.data.n_reduced_points, online, hf, n_newton,
                         n_law, online * n_inc / n_law))
    lines = ["| dofs | modes | reduced points | Newton its | law evaluations | online per increment [ms] | online per "
             "law evaluation [ms] | HF per increment [ms] | speedup |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {d} | {n} | {p} | {it} | {nl} | {1e3 * o:.2f} | {1e3 * pl:.2f} | {1e3 * h:.1f} | {h / o:.0f} |"
              for d, n, p, o, h, it, nl, pl in rows]
    ratio = rows[-1][7] / rows[0][7]
    lines.append("")
    lines.append(f"Online time per law evaluation (one residual at the reduced points, plus its share of the reduced "
                 f"tangents and solves), mesh x{rows[-1][0] / rows[0][0]:.1f} dofs: ratio {ratio:.2f} (1 = independent "
                 "of the mesh; the number of evaluations depends on the loading's response). The two models' solves "
                 "are interleaved (medians of the same time window).")
    text = "\n".join(lines)
    print(text)
    if args.append_docs:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        write_section("Online stage", f"## Online stage\n\n`python bench/online.py --append-docs` "
                      f"({time.strftime('%Y-%m-%d')}, commit {commit}, 2 cores shared, one BLAS thread; HF with MUMPS "
                      f"on one rank, J2 plasticity, box meshes)\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
