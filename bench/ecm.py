"""The empirical cubature's selection loop alone, on an integrand dumped from an offline run: time, CPU time,
points and counters, side by side with another checkout of the code.

    python bench/ecm.py dump RUN/offline.toml OUT.npz
    python bench/ecm.py run OUT.npz [--ranks 1 2] [--baseline-code DIR] [--repeat 2] [--ecm KEY=VALUE ...] [--removals]

``dump`` runs the offline stage of ``RUN/offline.toml`` on one rank up to its first ECM call and saves that call's
factored integrand (the modes' strains ``E`` ``(n_points, 6, N)`` and the stress snapshots ``S`` ``(n_points, 6,
n_s)``), FE weights, global point numbers, tolerance and selection keywords, then stops (no model file is written).
``run`` runs :func:`structrom.rom.reduced_quadrature.empirical_cubature` on it under ``mpirun -n P`` for each rank
count (the points split evenly, in their order), ``--repeat`` times alternately with the code of ``--baseline-code``
(a directory holding a ``structrom`` package, first on ``PYTHONPATH``), and prints one Markdown row per run: wall
time, rank 0's CPU time (hypervisor steal excluded: the figure to compare on a shared VM), points, selections,
removed points, score products, residual, and whether the points equal the first run's. ``--ecm``: selection
keywords (Python literals) over the dumped ones. ``--removals``: also how old the removed points are (blocks between
a point's append and its removal), from hooks on the QR of the selected columns.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offline import env as code_env  # noqa: E402  (bench/offline.py: mpirun's environment for a code checkout)


class _Dumped(Exception):
    pass


def dump(config: Path, out: Path) -> None:
    """Run the offline stage of ``config`` on one rank up to its first ECM call; save the integrand to ``out``."""
    from mpi4py import MPI

    import structrom.rom.offline.cubature as cubature
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    def save(comm, G, w, gidx, tolerance, **ecm):
        if not hasattr(G, "E"):
            raise SystemExit("bench/ecm.py dump: the run's integrand is not factored ([ecm] integrand = \"factored\")")
        tmp = out.with_name(out.name + ".part.npz")
        keywords = {k: v for k, v in ecm.items() if isinstance(v, (bool, int, float, str, type(None)))}  # (not log)
        np.savez(tmp, E=G.E, S=np.ascontiguousarray(G.S), w=w, gidx=gidx, tol=tolerance, ecm=repr(keywords))
        os.replace(tmp, out)
        print(f"dumped {out}: E {G.E.shape}, S {G.S.shape}, tolerance {tolerance:.6g}, {keywords}")
        raise _Dumped

    cubature.empirical_cubature = save
    try:
        run_offline(load_offline_config(config), MPI.COMM_SELF)
    except _Dumped:
        return
    raise SystemExit(f"bench/ecm.py dump: {config} ran no empirical cubature")


def worker(path: Path, ecm: dict, removals: bool) -> None:
    """One run under mpirun: prints ``RESULT {json}`` on rank 0."""
    from mpi4py import MPI

    import structrom.rom.reduced_quadrature as rq
    try:  # (the module of the selection loop; in older codes, reduced_quadrature itself)
        from structrom.rom import ecm_loop
    except ImportError:
        ecm_loop = rq
    from structrom.rom.column_qr import ColumnQR
    from structrom.rom.integrand import FactoredIntegrand

    comm = MPI.COMM_WORLD
    d = np.load(path, mmap_mode="r")
    n, P, p = d["E"].shape[0], comm.size, comm.rank
    lo, hi = n * p // P, n * (p + 1) // P
    ages: list[int] = []
    if removals:  # shadow of the QR's column order: which point each column is, and the block that appended it
        state = {"pool": None, "block": 0}
        shadow: list[tuple[int, int]] = []
        columns, append, delete = ecm_loop._columns, ColumnQR.append_projected, ColumnQR.delete_many

        def hooked_columns(comm_, G_, gpts, points, c, order=None, initial=True):
            state["pool"] = np.array(points)
            return columns(comm_, G_, gpts, points, c, order, initial)

        def hooked_append(self, *args, **kw):  # (older codes take the projected columns too: the list is `chosen`)
            ok = append(self, *args, **kw)
            chosen = next(a for a in args if isinstance(a, list))
            state["block"] += 1
            shadow.extend((int(state["pool"][j]), state["block"]) for j, o in zip(chosen, ok) if o)
            return ok

        def hooked_delete(self, cols):
            for j in sorted({int(c) for c in cols}, reverse=True):
                ages.append(state["block"] - shadow.pop(j)[1])
            return delete(self, cols)

        ecm_loop._columns, ColumnQR.append_projected, ColumnQR.delete_many = hooked_columns, hooked_append, hooked_delete
    saved = re.sub(r"'\w+': <[^>]*>,?\s*", "", str(d["ecm"]))  # (dumps of older codes kept the log function)
    kw = {"selection": "block", **ast.literal_eval(saved), **ecm}
    G = FactoredIntegrand(np.ascontiguousarray(d["E"][lo:hi]), np.ascontiguousarray(d["S"][lo:hi]))
    comm.Barrier()
    t, c = time.perf_counter(), time.process_time()
    q = rq.empirical_cubature(comm, G, d["w"][lo:hi], d["gidx"][lo:hi], tolerance=float(d["tol"]), **kw)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if p == 0:
        e = q.extra
        row = {"wall": wall, "cpu": cpu, "points": q.points.tolist(), "selections": e["n_selections"],
               "removed": e["n_dropped"], "products": f"{e['n_scorings']} + {e['n_short_scorings']}",
               "residual": q.residual}
        if removals:
            row["removal_age_quartiles"] = np.percentile(ages, [25, 50, 75]).tolist() if ages else []
            row["removed_in_their_block"] = int(sum(a == 0 for a in ages))
        print("RESULT " + json.dumps(row), flush=True)


def run(path: Path, ranks: list[int], baseline: Path | None, repeat: int, ecm: list[str], removals: bool) -> None:
    codes = [("baseline", baseline)] if baseline else []
    codes.append(("this", None))
    first = None
    head = ("| code | ranks | wall [s] | CPU rank 0 [s] | points | selections | removed | score products | residual | "
            "same points |" + (" removal age quartiles [blocks] | removed in their block |" if removals else ""))
    print(head)
    print("| " + " | ".join(["---"] * (head.count("|") - 1)) + " |")
    for P in ranks:
        for _ in range(repeat):
            for label, code in codes:
                cmd = ["mpirun", "-n", str(P), "--bind-to", "none", sys.executable, __file__, "_worker", str(path),
                       *(["--removals"] if removals else []), "--ecm", *ecm]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=code_env(code))
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode or not lines:
                    raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
                r = json.loads(lines[-1][7:])
                first = r["points"] if first is None else first
                cells = [label, P, f"{r['wall']:.1f}", f"{r['cpu']:.1f}", len(r["points"]), r["selections"],
                         r["removed"], r["products"], f"{r['residual']:.3e}", "yes" if r["points"] == first else "no"]
                if removals:
                    cells += [" / ".join(f"{a:.0f}" for a in r["removal_age_quartiles"]), r["removed_in_their_block"]]
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="save the first ECM integrand of an offline run")
    d.add_argument("config", type=Path)
    d.add_argument("out", type=Path)
    r = sub.add_parser("run", help="run the ECM on a dump, side by side")
    r.add_argument("dump", type=Path)
    r.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    r.add_argument("--baseline-code", type=Path, default=None)
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--ecm", nargs="*", default=[], metavar="KEY=VALUE")
    r.add_argument("--removals", action="store_true")
    w = sub.add_parser("_worker")
    w.add_argument("dump", type=Path)
    w.add_argument("--ecm", nargs="*", default=[])
    w.add_argument("--removals", action="store_true")
    args = ap.parse_args(argv)
    if args.command == "dump":
        dump(args.config, args.out)
    elif args.command == "run":
        run(args.dump, args.ranks, args.baseline_code, args.repeat, args.ecm, args.removals)
    else:
        worker(args.dump, {k: ast.literal_eval(v) for k, v in (a.split("=", 1) for a in args.ecm)}, args.removals)


if __name__ == "__main__":
    main()
