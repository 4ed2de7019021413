"""Validation of the calibrated error indicator on unseen loadings of three families.

    python examples/indicator_validation.py [--out out/indicator_validation] [--tolerance 0.05] [--margin 1.2]
                                            [--families creep]   # a subset: only the models it needs are built
                                            [--sampled 40] [--seed 0]  # sampled loadings added to creep and cyclic

A clamped bar (10 x 2 x 2 mm, C3D20R, 963 dofs) under a pressure on its top face and a hot spot, in-house HF
solver on one rank (runs cached in --out). Two reduced models, each built by the offline stage on one
process with its leave-one-out indicator calibration (:mod:`structrom.rom.offline.calibration`):

* ``j2``: temperature-dependent J2 plasticity, training: 3 x 3 grid of (pressure peak, hot-spot intensity)
  with two load/unload cycles; tested on
  - family ``cyclic``: 3 to 5 load/unload/reload cycles, peaks varying from cycle to cycle, inside the box;
  - family ``outside``: peaks beyond the training box and the hot spot moved along the bar;
* ``norton``: temperature-dependent Norton creep, training: 3 x 3 grid of (pressure, intensity), holds of
  2, 4 and 6 s (a Latin square); tested on family ``creep``: holds of 1 to 8 s, inside and beyond the box.

Besides their named loadings, ``creep`` and ``cyclic`` get ``--sampled`` loadings each (default 40, so
49 and 46 in all), a scrambled Latin hypercube (:class:`scipy.stats.qmc.LatinHypercube`, ``--seed``) over
the family's parameters: for ``creep`` the hold's pressure (2.2-4.6 MPa), hot-spot intensity (280-490 degC),
hold (0.5-10 s) and number of ramp / hold / unload cycles (1-3); for ``cyclic`` the number of cycles (3-5),
intensity and each cycle's peak inside the training box.

For every test loading: the true relative errors (:func:`structrom.rom.offline.calibration.true_errors`:
per increment, against the largest HF value of the answer, maximum over the history) of displacement,
Gappy-reconstructed stress and cumulated plastic strain; the calibrated indicator (largest bound over
the three quantities, maximum over the history) and the trust flag (indicator <= tolerance). The table,
the false trusts / false alarms counts, Spearman(indicator, largest true error) per family with its 90 %
bootstrap interval (loadings resampled in pairs, :func:`scipy.stats.bootstrap`, percentile method) and the
ratios indicator / largest true error (median, minimum) are printed and written to ``<out>/results.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import h5py  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import bootstrap, qmc, spearmanr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

J2_LAW = ('{ type = "j2_plasticity", elastic = { young = { temperatures = [20.0, 500.0], values = [200000.0, 150000.0] }, '
          'poisson = 0.3, expansion = 1.2e-5, reference_temperature = 20.0, density = 7.8e-9 }, hardening = { type = '
          '"linear", yield_stress = { temperatures = [20.0, 500.0], values = [300.0, 150.0] }, modulus = 2000.0 } }')
NORTON_LAW = ('{ type = "norton_viscoplasticity", elastic = { young = { temperatures = [20.0, 500.0], values = '
              '[200000.0, 150000.0] }, poisson = 0.3, expansion = 1.2e-5, reference_temperature = 20.0, density = '
              '7.8e-9 }, hardening = { type = "linear", yield_stress = 100.0, modulus = 1000.0 }, K = { temperatures '
              '= [20.0, 500.0], values = [1000.0, 600.0] }, n = 4.0 }')

HIFI = """
[units]
length = "mm"
force = "N"
stress = "MPa"
mass = "t"

[mesh]
file = "bar.inp"

[[material]]
law = {law}

[[boundary]]
node_set = "xmin"
components = ["x", "y", "z"]

[loading]
times = {times}
temperature = {{ type = "hot_spot", center = [{cx}, 1.0, 2.0], radius = 2.0, intensity = {intensity}, reference = 20.0, amplitude = {temp_amp} }}
pressure = [{{ surface = "zmax", amplitude = {press_amp} }}]

[solver]
newton_rtol = 1e-10
linear = {{ ksp_type = "preonly", pc_type = "lu", petsc_options = {{ pc_factor_mat_solver_type = "mumps" }} }}

[output]
file = "{out}"
"""

OFFLINE = """
[snapshots]
files = {files}

[pod]
tolerance = 1e-4
method = "gram"

[dual]
quantities = ["cumulated_plastic_strain", "stress"]
tolerance = 1e-4

[ecm]
tolerance = 1e-4

[indicator]
tolerance = {tol}
validation_points = 200
margin = {margin}

[output]
file = "{out}"
"""


def cycles(peaks: list[float], per_half: int = 2) -> tuple[list[float], list, list]:
    """Load/unload cycles with the given pressure peaks (1 s up, 1 s down each); the hot spot follows."""
    times = np.linspace(0.0, 2.0 * len(peaks), 2 * per_half * len(peaks) + 1).round(6).tolist()
    press = [[0.0, 0.0]] + [pt for k, p in enumerate(peaks) for pt in ([2 * k + 1.0, p], [2 * k + 2.0, 0.0])]
    temp = [[0.0, 0.0]] + [pt for k, _ in enumerate(peaks) for pt in ([2 * k + 1.0, 1.0], [2 * k + 2.0, 0.0])]
    return times, press, temp


def hold(peak: float, hold_s: float, n_cycles: int = 1) -> tuple[list[float], list, list]:
    """``n_cycles`` times: ramp to the peak in 1 s, hold ``hold_s`` s, unload in 1 s (hot spot held likewise);
    increments of 0.5 s (at least 2 per hold)."""
    period = 2.0 + hold_s
    n_hold = max(2, int(round(hold_s / 0.5)))
    one = np.concatenate([np.linspace(0, 1, 3)[1:], np.linspace(1, 1 + hold_s, n_hold + 1)[1:],
                          np.linspace(1 + hold_s, period, 3)[1:]])
    times = np.concatenate([[0.0]] + [k * period + one for k in range(n_cycles)]).round(6).tolist()
    corners = [pt for k in range(n_cycles) for pt in ((k * period + 1, 1.0), (k * period + 1 + hold_s, 1.0),
                                                      ((k + 1) * period, 0.0))]
    press = [[0.0, 0.0]] + [[round(t, 6), peak * a] for t, a in corners]
    temp = [[0.0, 0.0]] + [[round(t, 6), a] for t, a in corners]
    return times, press, temp


J2_TRAIN = [(p, i) for p in (4.0, 5.5, 7.0) for i in (300.0, 375.0, 450.0)]
# (pressure, intensity, hold [s]): a 3 x 3 grid in (pressure, intensity), holds of 2, 4, 6 s as a Latin square
NORTON_TRAIN = [(p, i, (2.0, 4.0, 6.0)[(a + b) % 3]) for a, p in enumerate((2.5, 3.25, 4.0))
                for b, i in enumerate((300.0, 375.0, 450.0))]
CX = 5.0
# family -> (model, [(name, history builder args, hot-spot x, intensity)])
TESTS = {
    "cyclic": ("j2", [("cyc_3a", ("cyc", [5.0, 5.0, 5.0]), CX, 350.0),
                      ("cyc_4a", ("cyc", [6.0, 4.5, 6.5, 6.0]), CX, 400.0),
                      ("cyc_5a", ("cyc", [6.5, 6.5, 6.5, 6.5, 6.5]), CX, 420.0),
                      ("cyc_3b", ("cyc", [4.5, 6.8, 5.0]), CX, 320.0),
                      ("cyc_5b", ("cyc", [5.0, 6.0, 4.0, 6.0, 5.0]), CX, 380.0),
                      ("cyc_4b", ("cyc", [6.8, 6.8, 5.0, 6.8]), CX, 440.0)]),
    "creep": ("norton", [("hold_1", ("hold", 3.0, 1.0), CX, 350.0),
                         ("hold_2", ("hold", 3.6, 2.0), CX, 420.0),
                         ("hold_4", ("hold", 2.8, 4.0), CX, 330.0),
                         ("hold_6", ("hold", 3.5, 6.0), CX, 400.0),
                         ("hold_8", ("hold", 3.9, 8.0), CX, 440.0),
                         ("hold_5hot", ("hold", 4.4, 5.0), CX, 480.0),
                         ("hold_3low", ("hold", 2.6, 3.0), CX, 310.0),
                         ("hold_7", ("hold", 3.0, 7.0), CX, 300.0),
                         ("hold_3high", ("hold", 4.2, 3.0), CX, 460.0)]),
    "outside": ("j2", [("press_3", ("cyc", [3.0, 3.0]), CX, 375.0),
                       ("hot_460", ("cyc", [5.5, 5.5]), CX, 460.0),
                       ("spot_5.05", ("cyc", [5.5, 5.5]), 5.05, 375.0),
                       ("spot_5.25", ("cyc", [5.5, 5.5]), 5.25, 375.0),
                       ("spot_5.5", ("cyc", [5.5, 5.5]), 5.5, 375.0),
                       ("spot_6", ("cyc", [5.5, 5.5]), 6.0, 375.0),
                       ("spot_7", ("cyc", [5.5, 5.5]), 7.0, 375.0),
                       ("press_7.3", ("cyc", [7.3, 7.3]), CX, 375.0),
                       ("press_8", ("cyc", [8.0, 8.0]), CX, 375.0),
                       ("press_9.5", ("cyc", [9.5, 9.5]), CX, 400.0),
                       ("hot_480", ("cyc", [6.0, 6.0]), CX, 480.0),
                       # below the box (less plastic flow than any training loading) and a small move of the spot
                       ("press_3.6", ("cyc", [3.6, 3.6]), CX, 375.0),
                       ("press_2", ("cyc", [2.0, 2.0]), CX, 375.0),
                       ("hot_270", ("cyc", [5.5, 5.5]), CX, 270.0),
                       ("corner_low", ("cyc", [3.5, 3.5]), CX, 280.0),
                       ("spot_4.98", ("cyc", [5.5, 5.5]), 4.98, 375.0)]),
}


def sampled(family: str, n: int, seed: int = 0) -> list[tuple]:
    """``n`` test loadings of ``family`` (``creep`` or ``cyclic``) spread by a scrambled Latin hypercube
    (fixed ``seed``) over the family's parameters (module docstring), as ``TESTS`` entries."""
    if n <= 0:
        return []
    if family == "creep":
        u = qmc.LatinHypercube(d=4, seed=seed).random(n)
        return [(f"lhs_{k:02d}", ("hold", round(2.2 + 2.4 * a, 2), round(0.5 + 9.5 * c, 1), 1 + int(3 * d)), CX,
                 round(280.0 + 210.0 * b)) for k, (a, b, c, d) in enumerate(u)]
    u = qmc.LatinHypercube(d=7, seed=seed).random(n)  # cycles, intensity, up to 5 peaks
    return [(f"lhs_{k:02d}", ("cyc", [round(4.0 + 3.0 * x, 2) for x in r[2:2 + 3 + int(3 * r[0])]]), CX,
             round(300.0 + 150.0 * r[1])) for k, r in enumerate(u)]


def history(spec) -> tuple[list[float], list, list]:
    return cycles(spec[1]) if spec[0] == "cyc" else hold(*spec[1:])


def spearman_interval(x: np.ndarray, y: np.ndarray, n_resamples: int) -> tuple[float, tuple[float, float]]:
    """Spearman rank correlation of ``x`` and ``y`` ``(n,)`` and its 90 % bootstrap interval (pairs resampled,
    percentile method, fixed seed); ``nan`` bounds with fewer than 4 pairs."""
    rho = float(spearmanr(x, y)[0])
    if len(x) < 4:
        return rho, (float("nan"), float("nan"))
    ci = bootstrap((x, y), lambda a, b: spearmanr(a, b)[0], paired=True, vectorized=False, n_resamples=n_resamples,
                   confidence_level=0.9, method="percentile", random_state=np.random.default_rng(0)).confidence_interval
    return rho, (float(ci.low), float(ci.high))


def hf_config(work: Path, sub: str, name: str, law: str, spec, cx: float, intensity: float) -> Path:
    times, press, temp = history(spec)
    path = work / f"{sub}_{name}.toml"
    path.write_text(HIFI.format(law=law, times=times, cx=cx, intensity=intensity, temp_amp=json.dumps(temp),
                                press_amp=json.dumps(press), out=f"{sub}/{name}.h5"))
    return path


def run_hf(cfg_path: Path) -> float:
    """One HF solve (cached by its configuration text); returns its wall time."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi

    cfg = load_config(cfg_path)
    out = cfg.path(cfg.output.file)
    stamp = out.with_suffix(".json")
    text = cfg_path.read_text()
    if out.exists() and stamp.exists() and json.loads(stamp.read_text())["config"] == text:
        return json.loads(stamp.read_text())["seconds"]
    t0 = time.perf_counter()
    run_hifi(cfg, log=lambda *a, **k: None)
    seconds = time.perf_counter() - t0
    stamp.write_text(json.dumps({"config": text, "seconds": seconds}))
    return seconds


def build_model(work: Path, kind: str, law: str, train: list, spec, tol: float, margin: float) -> Path:
    from mpi4py import MPI

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    files = []
    for i, (p, intensity, *rest) in enumerate(train):
        s = (spec[0], [p] * len(spec[1])) if spec[0] == "cyc" else (spec[0], p, rest[0] if rest else spec[2])
        run_hf(hf_config(work, f"train_{kind}", f"case_{i}", law, s, CX, intensity))
        files.append(f"train_{kind}/case_{i}.h5")
    cfg = work / f"offline_{kind}.toml"
    cfg.write_text(OFFLINE.format(files=json.dumps(files), tol=tol, margin=margin, out=f"model_{kind}.h5"))
    return run_offline(load_offline_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "indicator_validation"))
    parser.add_argument("--tolerance", type=float, default=0.05, help="trust threshold on the relative errors")
    parser.add_argument("--margin", type=float, default=1.2, help="safety factor of the calibration")
    parser.add_argument("--families", nargs="+", choices=list(TESTS), default=list(TESTS),
                        help="test families to run (default: all); e.g. --families creep builds the norton model only")
    parser.add_argument("--sampled", type=int, default=40,
                        help="Latin-hypercube loadings added to the creep and cyclic families (0: named ones only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled loadings' Latin hypercube")
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples of the Spearman interval")
    args = parser.parse_args()
    if args.sampled < 0 or args.bootstrap < 100:
        parser.error("--sampled must be >= 0 and --bootstrap >= 100")
    families = {f: (TESTS[f][0], TESTS[f][1] + (sampled(f, args.sampled, args.seed) if f in ("creep", "cyclic")
                                                      else []))
                for f in TESTS if f in args.families}
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.fem.structured import box
    from structrom.rom.hifi.config import load_config
    from structrom.rom.offline.calibration import true_errors
    from structrom.rom.online import ReducedModel

    mesh = box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R")
    write_mesh_inp(work / "bar.inp", mesh)
    laws = {"j2": J2_LAW, "norton": NORTON_LAW}
    t0 = time.perf_counter()
    builds = {"j2": lambda: build_model(work, "j2", J2_LAW, J2_TRAIN, ("cyc", [0.0, 0.0]), args.tolerance, args.margin),
              "norton": lambda: build_model(work, "norton", NORTON_LAW, NORTON_TRAIN, ("hold", 0.0, 3.0),
                                            args.tolerance, args.margin)}
    models = {kind: builds[kind]() for kind in builds if any(k == kind for k, _ in families.values())}
    t_build = time.perf_counter() - t0
    from structrom.rom import model_file
    from structrom.rom.offline.replay import MaterialRegions, replay

    rows, t_hf = [], 0.0
    for family, (kind, tests) in families.items():
        model = ReducedModel.load(models[kind], keep_full=True)
        cal = model.data.calibration
        # the model's own discretization: HF fields are replayed on it, as the offline stage does
        mesh = model_file.load(models[kind], mesh=True).mesh
        disc = Discretization(mesh)
        mass = disc.mass_matrix(1.0).tocsr()
        regions = MaterialRegions.build(mesh, disc, [(None, model.laws[0])])
        for name, spec, cx, intensity in tests:
            cfg_path = hf_config(work, f"test_{kind}", name, laws[kind], spec, cx, intensity)
            t_hf += run_hf(cfg_path)
            loading = load_config(cfg_path).build_loading()
            res = model.solve(loading, extrapolate=True)
            with h5py.File(work / f"test_{kind}" / f"{name}.h5", "r") as f:
                u = f["fields/displacement"][()]
            rep = replay(disc, regions, loading, u, mesh.points)
            err = true_errors(res, u, rep.stress, rep.cumulated_plastic_strain, mass, disc.point_weights,
                              cal.references)
            e = {k: float(v.max()) for k, v in err.items()}
            b = {k: float(v.max()) for k, v in res.error_bounds.items()}
            comp = {k: float(v.max()) for k, v in res.indicator_components.items()}
            rows.append({"family": family, "loading": name, "n_inc": res.n_increments, "errors": e, "bounds": b,
                         "indicator": float(res.indicator.max()), "trusted": bool(res.trusted.all()),
                         "true_max": max(e.values()), "components": comp,
                         "online_ms": 1e3 * res.timings["total"], "out_of_family": bool(res.warnings)})
    tol = args.tolerance
    lines = [f"Tolerance {tol:g} on the relative errors (u, stress, p); calibration margin {args.margin:g}; "
             f"models built in {t_build:.0f} s (HF training runs included); test HF runs {t_hf:.0f} s.", "",
             "| family | loading | incs | u error / bound | stress error / bound | p error / bound | indicator | trusted | ok |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    summary = []
    for r in rows:
        e = r["errors"]
        within = r["true_max"] <= tol
        ok = "yes" if r["trusted"] == within else ("FALSE TRUST" if r["trusted"] else "false alarm")
        r["ok"] = ok
        b = r["bounds"]
        lines.append(f"| {r['family']} | {r['loading']} | {r['n_inc']} | {e['displacement']:.2e} / {b['displacement']:.1e} | "
                     f"{e['stress']:.2e} / {b['stress']:.1e} | "
                     f"{e['cumulated_plastic_strain']:.2e} / {b['cumulated_plastic_strain']:.1e} | {r['indicator']:.2e} | "
                     f"{'yes' if r['trusted'] else 'no'} | {ok} |")
    lines.append("")
    lines.append("| family | loadings | within tolerance | false trusts | false alarms | Spearman(indicator, max error) "
                 "[90 % bootstrap] | indicator / max error: median, min | per-quantity bounds below the true "
                 "error (u, stress, p) |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for family in families:
        fr = [r for r in rows if r["family"] == family]
        within = [r for r in fr if r["true_max"] <= tol]
        ft = sum(1 for r in fr if r["trusted"] and r["true_max"] > tol)
        fa = sum(1 for r in within if not r["trusted"])
        ind, err = np.array([r["indicator"] for r in fr]), np.array([r["true_max"] for r in fr])
        rho, (lo, hi) = spearman_interval(ind, err, args.bootstrap)
        ratio = ind[err > 0] / err[err > 0]
        med, low = (float(np.median(ratio)), float(ratio.min())) if len(ratio) else (float("nan"),) * 2
        under = [sum(1 for r in fr if r["bounds"][q] < r["errors"][q]) for q in
                 ("displacement", "stress", "cumulated_plastic_strain")]
        summary.append({"family": family, "n": len(fr), "within": len(within), "false_trusts": ft,
                        "false_alarms": fa, "spearman": rho, "spearman_90": [lo, hi], "ratio_median": med,
                        "ratio_min": low, "bounds_below_error": under})
        lines.append(f"| {family} | {len(fr)} | {len(within)} | {ft} | {fa} | {rho:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{med:.2f}, {low:.2f} | " + ", ".join(map(str, under)) + " |")
    for kind, path in models.items():
        cal = ReducedModel.load(path).data.calibration
        lines.append("")
        n_in = sum(bool(c.get("in_sample")) for c in cal.cases)
        lines.append(f"Model `{kind}` calibration (leave-one-out over {len(cal.cases) - n_in} training cases, and "
                     f"the model's own answers to {n_in}), factors (constant, " + ", ".join(cal.components) + "):")
        for q, f in zip(cal.quantities, cal.factors):
            lines.append(f"- {q}: " + ", ".join(f"{v:.3g}" for v in f))
    text = "\n".join(lines)
    print(text)
    (work / "results.md").write_text(text + "\n")
    (work / "results.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
