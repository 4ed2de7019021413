"""Greedy training on the plate example against fixed grids: HF solves needed for the same accuracy.

    python examples/rom_plate_greedy.py --mesh-size 8 --out out/plate_greedy

The plate and loading family of ``examples/rom_plate.py`` (traction peak in [-250, -150] MPa, hot-spot
intensity in [200, 450] degC, one load/unload cycle) on a coarse mesh. Candidates: the 5 x 5 grid of the
box. Fixed grids: n x n (``--grids``, nested in the candidates) with a full offline stage each. Greedy:
the model of the box centre alone, then ``[greedy]`` in the offline configuration (each round: online
screening of the candidates, one HF solve of the worst, enrichment), until every candidate is within the
indicator tolerance or ``--budget``. For every model: HF solves used, the largest indicator over the
candidates, and the true errors (space-time relative L2 of u and of the Gappy-reconstructed p) over
test loadings inside the box that no model trained on. Written to stdout and ``<out>/results.md``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import rom_plate as RP  # noqa: E402  (the plate's HF template, cached HF runs, environment)
from geometries import plate_with_holes  # noqa: E402

TRACTION, INTENSITY = (-250.0, -150.0), (200.0, 450.0)

GREEDY = """
[greedy]
hifi = "base.toml"
solver = "inhouse"
budget = {budget}
sampling = "grid"
points = {points}
[greedy.parameters]
traction = [{t0}, {t1}]
intensity = [{i0}, {i1}]
[greedy.loading]
times = {times}
temperature = {{ type = "hot_spot", center = [{x}, 20.0, 2.5], radius = 10.0, intensity = "$intensity", reference = 20.0, gradient = [0.0, 0.0, 0.0], amplitude = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]] }}
pressure = {{ right = [[0.0, 0.0], [1.0, "$traction"], [2.0, 0.0]] }}
"""


def grid(n: int) -> list[tuple[float, float, float]]:
    return [(float(tr), RP.X_SPOT, float(it)) for tr in np.linspace(*TRACTION, n) for it in np.linspace(*INTENSITY, n)]


def hf_name(p) -> str:
    return f"tr{-p[0]:g}_it{p[2]:g}".replace(".", "p")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh-size", type=float, default=8.0)
    parser.add_argument("--curvature-points", type=int, default=8)
    parser.add_argument("--increments", type=int, default=8)
    parser.add_argument("--grids", type=int, nargs="+", default=[2, 3, 5])
    parser.add_argument("--candidates", type=int, default=5, help="candidates: n x n grid of the box")
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--indicator-tol", type=float, default=2e-3)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--out", default=str(RP.ROOT / "out" / "plate_greedy"))
    args = parser.parse_args()
    out = Path(args.out).resolve()
    (out / "hf").mkdir(parents=True, exist_ok=True)
    times = np.linspace(0.0, 2.0, args.increments + 1).round(6).tolist()
    if not (out / "plate.msh").exists():
        plate_with_holes(length=100.0, width=40.0, thickness=5.0, holes=[(30.0, 20.0, 6.0), (70.0, 20.0, 6.0)],
                         notch_depth=4.0, order=2, mesh_size=args.mesh_size, curvature_points=args.curvature_points,
                         path=out / "plate.msh")
    from structrom.rom.fem.io import read_mesh

    mesh = read_mesh(out / "plate.msh")
    print(f"plate_greedy: mesh {mesh.n_dofs} dofs, {mesh.n_elements} C3D10 elements", flush=True)
    centre = ((TRACTION[0] + TRACTION[1]) / 2, RP.X_SPOT, (INTENSITY[0] + INTENSITY[1]) / 2)
    fixed = {n: grid(n) for n in args.grids}
    need = {hf_name(p): p for ps in fixed.values() for p in ps} | {hf_name(p): p for p in RP.TEST} | \
        {hf_name(centre): centre}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        hf_seconds = dict(zip(need, pool.map(lambda kv: RP.run_hifi(out / "hf", kv[0], kv[1], times, "mumps"),
                                             need.items())))
    print(f"plate_greedy: {len(need)} HF solves ready ({time.perf_counter() - t0:.0f} s this run)", flush=True)

    def offline(name: str, files: list[str], greedy: str = "") -> tuple[Path, float]:
        d = out / name
        d.mkdir(exist_ok=True)
        (d / "offline.toml").write_text(RP.OFFLINE.format(
            files=json.dumps([str(out / "hf" / f"{f}.h5") for f in files]), pod_tol=1e-4, ecm_tol=1e-4,
            dual_tol=1e-4, indicator="cumulated_plastic_strain", ind_tol=args.indicator_tol, calibrate="false",
            pod_method="gram")
            + greedy)
        t = time.perf_counter()
        proc = subprocess.run(["mpirun", "-n", str(args.ranks), "--bind-to", "none", sys.executable, "-m",
                               "structrom.api.cli", "offline", str(d / "offline.toml")], env=RP.mpi_env(),
                              cwd=RP.ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"offline {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        (d / "offline.log").write_text(proc.stdout)
        return d / "model.h5", time.perf_counter() - t

    from structrom.rom.hifi.config import load_config
    from structrom.rom.online import ReducedModel

    def loading_of(p):
        return load_config(out / f"{hf_name(p)}.toml").build_loading()

    cand = grid(args.candidates)
    cand_loadings = [loading_of(p) if hf_name(p) in need else None for p in cand]

    def evaluate(path: Path) -> dict:
        import dataclasses

        import h5py

        from structrom.rom.loading_dict import loading_from_dict

        model = ReducedModel.load(path)
        worst = 0.0
        for p, ld in zip(cand, cand_loadings):
            if ld is None:  # a candidate without a cached HF run: its loading from the family
                ld = loading_from_dict({"times": times, "temperature": {
                    "type": "hot_spot", "center": [p[1], 20.0, 2.5], "radius": 10.0, "intensity": p[2],
                    "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]},
                    "pressure": {"right": [[0.0, 0.0], [1.0, p[0]], [2.0, 0.0]]}})
            else:
                ld = dataclasses.replace(ld, displacements=())
            worst = max(worst, float(model.solve(ld, extrapolate=True).indicator.max()))
        eu, ep = [], []
        for p in RP.TEST:
            res = model.solve(dataclasses.replace(loading_of(p), displacements=()), extrapolate=True)
            with h5py.File(out / "hf" / f"{hf_name(p)}.h5", "r") as f:
                u, pp = f["fields/displacement"][()], f["fields/cumulated_plastic_strain"][()]
            pr = np.stack([res.dual_field("cumulated_plastic_strain", k) for k in range(len(res.times))])
            eu.append(float(np.linalg.norm(res.displacement(increment=None) - u) / np.linalg.norm(u)))
            ep.append(float(np.linalg.norm(pr - pp) / max(np.linalg.norm(pp), 1e-300)))
        return {"max_indicator": worst, "max_u_error": max(eu), "max_p_error": max(ep), "modes": model.n_modes,
                "points": model.n_reduced_points}

    rows = []
    for n, ps in fixed.items():
        path, secs = offline(f"grid{n}", [hf_name(p) for p in ps])
        rows.append(dict(training=f"fixed {n} x {n} grid", hf_solves=len(ps), seconds=secs, **evaluate(path)))
        print(json.dumps(rows[-1]), flush=True)
    base = out / "greedy" / "base.toml"
    base.parent.mkdir(exist_ok=True)
    base.write_text((out / f"{hf_name(centre)}.toml").read_text().replace(
        'file = "plate.msh"', f'file = "{out / "plate.msh"}"'))
    path, secs = offline("greedy", [hf_name(centre)], GREEDY.format(
        budget=args.budget, points=args.candidates, t0=TRACTION[0], t1=TRACTION[1], i0=INTENSITY[0], i1=INTENSITY[1],
        times=json.dumps(times), x=RP.X_SPOT))
    from structrom.rom.model_file import load

    picks = [a for v in load(path).versions[1:] for a in v["loadings_added"]]
    rows.append(dict(training=f"greedy from the centre ({len(picks)} picks)", hf_solves=1 + len(picks), seconds=secs,
                     **evaluate(path)))
    print(json.dumps(rows[-1]), flush=True)
    lines = [f"Plate {mesh.n_dofs} dofs ({mesh.n_elements} C3D10), {args.increments} increments; candidates: the "
             f"{args.candidates} x {args.candidates} grid of the box; indicator tolerance {args.indicator_tol:g}; "
             f"errors over the {len(RP.TEST)} test loadings of rom_plate.py (inside the box, in no training set).", "",
             "| training | HF solves | max indicator over candidates | max u error (tests) | max p error (tests) | "
             "modes | reduced points | offline [s] |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['training']} | {r['hf_solves']} | {r['max_indicator']:.2e} | {r['max_u_error']:.2e} | "
                     f"{r['max_p_error']:.2e} | {r['modes']} | {r['points']} | {r['seconds']:.0f} |")
    lines += ["", "Greedy picks (traction, intensity; indicator that chose them): " + ", ".join(
        f"({a['loading']['pressure']['right'][1][1]:g}, {a['loading']['temperature']['intensity']:g}; "
        f"{a['indicator']:.2e})" for a in picks)]
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
