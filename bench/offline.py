"""Offline stage: time and peak memory of each stage against dofs and ranks; POD against pyMOR's.

    python bench/offline.py out/rom_plate_small out/rom_plate [--ranks 1 2 3] [--baseline-code DIR]
                            [--ecm-rules greedy block] [--ecm KEY=VALUE ...] [--test-errors]
                            [--json results.json] [--append-docs]

Each argument is a directory made by ``examples/rom_plate.py`` (``train/*.h5`` HF snapshots and
``offline.toml``). For every directory and rank count the offline stage runs under ``mpirun -n P`` and
the per-stage figures recorded in the model's provenance are tabulated: stage times, the ECM's share of
the offline wall time, the peak RSS of every rank, and the bytes per rank of the distributed arrays the
stages record (snapshots, modes, stress snapshots, dual bases, integrand). ``--baseline-code DIR``: the
same runs with another checkout of the code first on ``PYTHONPATH`` (a directory holding a ``structrom``
package, e.g. symlinks to an older commit's ``mpi eim rom api``), side by side. ``--json``: the rows, for
``bench/scaling_model.py``. Then the displacement POD of the same snapshot matrix (mass product) is timed
serially with ``structrom.rom.pod.pod`` and with pyMOR's ``pod`` when pyMOR is installed.

``--ecm-rules greedy block``: the same runs once per ECM selection rule (``[ecm] selection``; ``all``: every integration
point, no hyper-reduction, whose test errors are the projection's alone), side by side, with
a second table: the ECM loop's own time (``ecm.seconds``), the cubature stage's share of the offline wall time,
score products (full ones, and those on a shortlist: ``[ecm] shortlist``), selections, points, the quadrature
residual. ``--ecm KEY=VALUE``: more ``[ecm]`` settings for
every run (e.g. ``max_rows=100000``: no row compression). ``--test-errors``: each model solves the test loadings
``test/*.h5`` (their configurations ``<name>.toml`` in the directory, as ``examples/rom_plate.py`` writes them) and
the relative space-time L2 errors of the displacement, the reconstructed stress and cumulated plastic strain
against the HF fields are tabulated (mean and max over the loadings).
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


def env(code: Path | None = None) -> dict:
    """mpirun's environment, with the ``structrom`` package of the checkout ``code`` first on the path. ``code``
    must hold ``structrom/rom`` ...: a repository's root (``git archive`` as it is) holds ``rom/`` and would
    leave the installed code in use, the comparison then being of this code with itself."""
    if code is not None and not (Path(code) / "structrom" / "rom").is_dir():
        raise SystemExit(f"{code}: holds no structrom package (structrom/rom/...), so the installed code would run "
                         f"in its place; make one with: mkdir -p {code}/structrom && git archive COMMIT mpi eim rom "
                         f"api | tar -x -C {code}/structrom")
    path = [str(code)] if code is not None else []
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                OMPI_MCA_mpi_yield_when_idle="1", STRUCTROM_QUIET="1",
                PYTHONPATH=os.pathsep.join(path + [str(ROOT), os.environ.get("PYTHONPATH", "")]))


def loading_errors(model_path: Path, directory: Path) -> dict:
    """Mean and max over the test loadings of the relative space-time L2 errors of u, stress and p."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.online import ReducedModel

    model = ReducedModel.load(model_path)
    errs: dict[str, list[float]] = {"u": [], "stress": [], "p": []}
    for h5 in sorted((directory / "test").glob("*.h5")):
        res = model.solve(load_config(directory / f"{h5.stem}.toml").build_loading(), extrapolate=True)
        with h5py.File(h5, "r") as f:
            ref = {"u": f["fields/displacement"][()], "stress": f["fields/stress"][()],
                   "p": f["fields/cumulated_plastic_strain"][()]}
        rom = {"u": res.displacement(increment=None), "stress": res.dual_field("stress", None),
               "p": res.dual_field("cumulated_plastic_strain", None)}
        for k in errs:
            errs[k].append(float(np.linalg.norm(rom[k] - ref[k]) / max(np.linalg.norm(ref[k]), 1e-300)))
    return {k: {"mean": float(np.mean(v)), "max": float(np.max(v)), "n": len(v), "each": v} for k, v in errs.items()
            if v}


def ecm_settings(text: str, settings: dict) -> str:
    """The configuration ``text`` with ``settings`` (TOML values) in its ``[ecm]`` table, replacing the table's own
    lines for the same keys (a key given twice is not TOML). Keys the run's rule does not read (the settings given
    for every run, or the file's own ``tolerance`` in a ``selection = "all"`` run) are left out: the offline stage
    refuses them (structrom.rom.offline.unread_keywords)."""
    import tomllib

    from structrom.rom.offline.config import ECMConfig
    from structrom.rom.config import unread_keywords
    from structrom.rom.offline.unread_keywords import READ_WHEN

    def edited(skip) -> list[str]:
        lines, table = [], None
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                table = stripped
            key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
            if table == "[ecm]" and (key in settings or key in skip):
                continue
            lines.append(line)
            if stripped == "[ecm]":
                lines += [f"{k} = {v}" for k, v in settings.items() if k not in skip]
        return lines

    table = tomllib.loads("\n".join(edited(set()))).get("ecm", {})
    return "\n".join(edited(set(unread_keywords(ECMConfig.model_validate(table), READ_WHEN["ecm"])))) + "\n"


def run_offline(directory: Path, ranks: int, code: Path | None = None, settings: dict | None = None,
                errors: bool = False) -> dict:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        cfg = Path(tmp) / "offline.toml"
        # snapshot files (a glob or a list) relative to the directory, made absolute for the temporary config
        text = (directory / "offline.toml").read_text()
        for sub in ("train/", "greedy/"):  # (examples/rom_plate.py --greedy adds greedy/ files)
            text = text.replace(f'"{sub}', f'"{directory.resolve()}/{sub}')
        if settings:  # more [ecm] settings (the table exists in the configurations examples/rom_plate.py writes)
            text = ecm_settings(text, settings)
        cfg.write_text(text.replace('file = "model.h5"', 'file = "bench_model.h5"'))
        t0 = time.perf_counter()
        proc = subprocess.run(["mpirun", "-n", str(ranks), "--bind-to", "none", sys.executable, "-m",
                               "structrom.api.cli", "offline", str(cfg)], env=env(code), cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"offline stage failed on {ranks} ranks:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        wall = time.perf_counter() - t0
        with h5py.File(Path(tmp) / "bench_model.h5", "r") as f:
            prov = json.loads(f.attrs["provenance"])
            n_dofs = f["modes/full"].shape[0]
            duals = {k: int(f[f"dual/{k}/basis"].shape[1]) for k in f["dual"]}
            n_points = int(f["dual/cumulated_plastic_strain/basis"].shape[0]) if "cumulated_plastic_strain" in duals \
                else None
            points, weights = f["reduced/point"][()], f["reduced/weights"][()]
        errs = loading_errors(Path(tmp) / "bench_model.h5", directory) if errors else None
    n_snap = sum(s["increments"] for s in prov["snapshots"])
    ecm = prov["ecm"]
    label = ", ".join(v.strip('"') if k == "selection" else f"{k}={v}" for k, v in (settings or {}).items())
    return {"code": ("baseline" if code is not None else "this") + (f" ({label})" if label else ""),
            "ecm_seconds": ecm.get("seconds"), "scorings": ecm.get("scorings"), "test_errors": errs,
            "shortlist_scorings": ecm.get("shortlist_scorings", 0),
            "dofs": n_dofs, "ranks": ranks, "wall": wall,
            "stages": prov["stages"], "modes": prov["pod"]["modes"], "points": ecm["points"], "snapshots": n_snap,
            "integration_points": n_points, "dual_modes": duals,
            "rows": ecm.get("integrand_rows", prov["pod"]["modes"] * n_snap),
            "compressed_rows": _compressed_rows(ecm, prov["pod"]["modes"]), "selections": ecm.get("selections"),
            "integrand": ecm.get("integrand", "assembled"),
            "residual": ecm["residual"], "reduced_points": points.tolist(), "reduced_weights": weights.tolist()}


def distributed_bytes(r: dict) -> list[float]:
    """Per rank: the largest total [GiB] of the distributed arrays one stage records (empty for old code)."""
    best = [0.0] * r["ranks"]
    for st in r["stages"]:
        arrays = st.get("arrays") or {}
        tot = [sum(a["bytes_per_rank"][i] for a in arrays.values()) / 2**30 for i in range(r["ranks"])]
        if sum(tot) > sum(best):
            best = tot
    return best


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


def _compressed_rows(ecm: dict, n_modes: int) -> int | None:
    """The integrand rows the ECM ran on when compressed: the row compression's rank, or for rotated stress snapshots
    (``method`` "stress rotation") the modes (and lifting fields) times the stresses kept."""
    rc = ecm.get("row_compression") or {}
    if rc.get("method") == "stress rotation":
        rows = ecm.get("integrand_rows")
        return int(rows // rc["snapshots"] * rc["rank"]) if rows else int(n_modes * rc["rank"])
    return rc.get("rank")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline-code", type=Path, default=None,
                        help="directory with a `structrom` package of the code to compare with (first on PYTHONPATH)")
    parser.add_argument("--json", type=Path, default=None, help="write the result rows here")
    parser.add_argument("--no-pod", action="store_true", help="skip the serial POD comparison")
    parser.add_argument("--ecm-rules", nargs="+", default=None, metavar="RULE[,KEY=VALUE...]",
                        help="run this code once per ECM selection rule (greedy, block), side by side; each with "
                             "its own [ecm] settings after commas, e.g. greedy,max_rows=500 (the old defaults)")
    parser.add_argument("--ecm", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more [ecm] settings (TOML values) for every run, e.g. max_rows=100000")
    parser.add_argument("--test-errors", action="store_true",
                        help="solve the test loadings (test/*.h5) with each model: errors of u, stress and p")
    parser.add_argument("--append-docs", action="store_true")
    args = parser.parse_args()
    extra = dict(kv.split("=", 1) for kv in args.ecm)

    def rule(spec: str) -> dict:
        name, *kv = spec.split(",")
        if name not in ("greedy", "block", "all"):
            parser.error(f"--ecm-rules: unknown rule {name!r} (greedy, block or all)")
        return {**extra, **dict(s.split("=", 1) for s in kv), "selection": f'"{name}"'}

    variants = ([(args.baseline_code, extra)] if args.baseline_code else []) + \
        [(None, rule(spec)) for spec in args.ecm_rules or []] + ([(None, extra)] if not args.ecm_rules else [])
    results = [run_offline(d, p, c, s, args.test_errors) for d in args.directories for p in args.ranks
               for c, s in variants]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    names = list(dict.fromkeys(s["stage"] for r in results for s in r["stages"]))
    lines = ["| code | dofs | ranks | modes | ECM points | rows -> compressed | " +
             " | ".join(f"{n} [s]" for n in names) + " | wall [s] | ECM share | peak RSS per rank [GiB] | "
             "distributed arrays per rank [GiB] |",
             "| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) +
             " | ---: | ---: | ---: | ---: |"]
    for r in results:
        times = {s["stage"]: s["seconds"] for s in r["stages"]}
        per_rank = next((s["peak_rss_gib_per_rank"] for s in reversed(r["stages"]) if "peak_rss_gib_per_rank" in s),
                        None)
        peak = " / ".join(f"{v:.2f}" for v in per_rank) if per_rank else f"{max(s['peak_rss_gib'] for s in r['stages']):.2f} (max)"
        dist = distributed_bytes(r)
        share = times.get("empirical cubature", float("nan")) / r["wall"]
        lines.append(f"| {r['code']} | {r['dofs']} | {r['ranks']} | {r['modes']} | {r['points']} | "
                     f"{r['rows']} -> {r['compressed_rows'] or 'not compressed'} | " +
                     " | ".join(f"{times.get(n, float('nan')):.2f}" for n in names) +
                     f" | {r['wall']:.1f} | {share:.0%} | {peak} | " +
                     (" / ".join(f"{v:.3f}" for v in dist) if any(dist) else "not recorded") + " |")
    if args.ecm_rules or args.test_errors:
        lines += ["", "| code | dofs | ranks | ECM loop [s] | cubature stage [s] | wall [s] | cubature share | "
                      "score products | selections | ECM points | residual | test error u mean / max | "
                      "stress mean / max | p mean / max | u per test loading |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in results:
            stage = {s["stage"]: s["seconds"] for s in r["stages"]}.get("empirical cubature", float("nan"))
            te = r["test_errors"] or {}
            errs = " | ".join(f"{te[k]['mean']:.2e} / {te[k]['max']:.2e}" if k in te else "-"
                              for k in ("u", "stress", "p"))
            loop = f"{r['ecm_seconds']:.2f}" if r["ecm_seconds"] is not None else "-"
            lines.append(f"| {r['code']} | {r['dofs']} | {r['ranks']} | {loop} | {stage:.2f} | {r['wall']:.1f} | "
                         f"{stage / r['wall']:.0%} | {r['scorings'] or r['selections']}"
                         f"{f' + {short} shortlist' if (short := r.get('shortlist_scorings')) else ''} | {r['selections']} | "
                         f"{r['points']} | {r['residual']:.2e} | {errs} | "
                         f"{' / '.join(f'{e:.2e}' for e in te['u'].get('each', [])) if 'u' in te else '-'} |")
    if args.baseline_code:
        nv = len(variants)  # (baseline, this's first variant) for each directory and rank count
        for old, new in zip(results[0::nv], results[1::nv]):
            same = old["reduced_points"] == new["reduced_points"]
            dw = max((abs(a - b) / max(abs(b), 1e-300) for a, b in zip(new["reduced_weights"], old["reduced_weights"])),
                     default=0.0) if same else float("nan")
            lines.append(f"\n{new['dofs']} dofs, {new['ranks']} ranks, {new['code']}: reduced points "
                         f"{'identical' if same else 'DIFFER'} to the baseline's"
                         + (f", weights within {dw:.1e} (relative)" if same else ""))
    if not args.no_pod:
        lines += ["", pod_comparison(args.directories[-1])]
    text = "\n".join(lines)
    print(text)
    if args.append_docs:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        cmd = "python bench/offline.py " + " ".join(str(d) for d in args.directories) + \
            " --ranks " + " ".join(map(str, args.ranks)) + (f" --baseline-code {args.baseline_code}" if args.baseline_code else "") + \
            (" --ecm-rules " + " ".join(args.ecm_rules) if args.ecm_rules else "") + \
            (" --ecm " + " ".join(args.ecm) if args.ecm else "") + (" --test-errors" if args.test_errors else "")
        title = "Offline stage: ECM selection rules" if args.ecm_rules else "Offline stage"
        write_section(title, f"## {title}\n\n`{cmd} --append-docs` ({time.strftime('%Y-%m-%d')}, "
                      f"commit {commit}, 2 cores)\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
