"""EIM benchmark: greedy time of the nonintrusive matrix separation against the number of candidate
entries (the union sparsity pattern) and the number of MPI ranks.

Usage (from the repository root)::

    .venv/bin/python bench/eim.py                       # ~20k, ~80k, ~320k entries on 1 and 2 ranks (< 2 min)
    .venv/bin/python bench/eim.py --grids 64 128 --ranks 1 2 3 --params 64 --terms 30 --norm l2
    .venv/bin/python bench/eim.py --quick               # smoke run
    .venv/bin/python bench/eim.py --vs-pymor --params 256 --terms 40   # serial greedy/DEIM/Q-DEIM vs pyMOR

Problem: :func:`structrom.eim.synthetic.nonaffine_2d` (5-point diffusion, ``k = 1 / (1 + mu r^2)``) on an
``m x m`` grid (about ``5 m^2`` entries) for ``--params`` training values of ``mu`` in [0, 20]. Each
case runs ``mpirun -n P`` on this script with ``--child``; every rank builds its contiguous row block
of every training matrix and :func:`structrom.eim.separation.separate_matrices` runs on ``COMM_WORLD``. Printed:
a Markdown table with the union-pattern set-up time, the greedy time (max over ranks), the time per
greedy step, the number of terms, the final relative error, and whether the selection equals the
1-rank one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the package: drop its own directory from the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> None:
    import numpy as np
    from mpi4py import MPI

    from structrom.eim.greedy import eim_greedy
    from structrom.eim.separation import pattern_samples, to_csr
    from structrom.eim.synthetic import nonaffine_2d

    comm = MPI.COMM_WORLD
    m = args.grid
    n = m * m
    ranges = np.linspace(0, n, comm.size + 1).astype(int)
    lo, hi = ranges[comm.rank], ranges[comm.rank + 1]
    train = np.linspace(0.0, 20.0, args.params)
    blocks = [to_csr(nonaffine_2d(m, mu)[lo:hi])[0] for mu in train]
    comm.Barrier()
    t0 = time.perf_counter()
    pattern, S = pattern_samples(blocks, lo, (n, n))
    t_setup = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    comm.Barrier()
    t0 = time.perf_counter()
    res = eim_greedy(S, comm=comm, ids=pattern.keys, norm=args.norm, max_terms=args.terms)
    t_greedy = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    entries = comm.allreduce(len(pattern.keys))
    if comm.rank == 0:
        print("RESULT " + json.dumps({
            "entries": entries, "dofs": n, "ranks": comm.size, "setup": t_setup, "greedy": t_greedy,
            "terms": res.n_terms, "error": float(res.errors[-1] / res.errors[0]),
            "points": res.point_ids.tolist(), "params": res.param_indices.tolist()}))


def run_case(grid: int, ranks: int, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", sys.executable, __file__, "--child",
           "--grid", str(grid), "--params", str(args.params), "--terms", str(args.terms), "--norm", args.norm]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")


def vs_pymor(args: argparse.Namespace) -> None:
    """Serial EIM greedy (max and l2 norms), DEIM and Q-DEIM beside pyMOR's ``ei_greedy``, ``deim`` and
    ``qdeim`` on the same data: temperature snapshots of a moving hot spot,
    ``T(x; c) = exp(-|x - c|^2 / w^2)`` (``w = 0.15``) at ``--points`` random points of the unit square
    for ``--params`` centres ``c`` on a grid of [0.2, 0.8]^2 (slow singular value decay, no exact ties),
    and their first ``--terms`` left singular vectors. Times are CPU seconds of this process
    (``time.process_time``, best of ``--repeat``; BLAS on one thread), robust to other load on the machine."""
    import logging

    import numpy as np
    logging.disable(logging.CRITICAL)
    from pymor.algorithms.ei import deim as pymor_deim
    from pymor.algorithms.ei import ei_greedy
    from pymor.algorithms.ei import qdeim as pymor_qdeim
    from pymor.core.logger import set_log_levels
    from pymor.vectorarrays.numpy import NumpyVectorSpace

    from structrom.eim.deim import deim, qdeim
    from structrom.eim.greedy import eim_greedy
    set_log_levels({"pymor": "ERROR"})

    x = np.random.default_rng(0).random((args.points, 2))
    side = int(np.ceil(np.sqrt(args.params)))
    g = np.linspace(0.2, 0.8, side)
    centres = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)[:args.params]
    S = np.exp(-(((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)) / 0.15 ** 2)
    U = np.linalg.svd(S, full_matrices=False)[0][:, :args.terms]
    space = NumpyVectorSpace(S.shape[0])

    def best(fn):
        times, out = [], None
        for _ in range(args.repeat):
            t0 = time.process_time()
            out = fn()
            times.append(time.process_time() - t0)
        return out, min(times)

    rows = []
    for norm, pymor_norm in (("max", "sup"), ("l2", None)):
        ours, t_ours = best(lambda: eim_greedy(S, norm=norm, max_terms=args.terms))
        theirs, t_theirs = best(lambda: ei_greedy(space.from_numpy(S), error_norm=pymor_norm,
                                                  max_interpolation_dofs=args.terms, copy=True))
        rows.append((f"EIM greedy ({norm})", t_ours, t_theirs, ours.point_ids.tolist() == list(theirs[0])))
    for name, fn, pfn in (("DEIM", deim, pymor_deim), ("Q-DEIM", qdeim, pymor_qdeim)):
        ours, t_ours = best(lambda: fn(U))
        theirs, t_theirs = best(lambda: pfn(space.from_numpy(U), pod=False))
        rows.append((name, t_ours, t_theirs, ours.point_ids.tolist() == list(theirs[0])))
    import pymor
    print(f"Serial EIM algorithms, structrom vs pyMOR {pymor.__version__}: hot-spot samples {S.shape[0]} points x "
          f"{S.shape[1]} parameters, {args.terms} terms / modes; CPU s, best of {args.repeat}\n")
    print("| algorithm | structrom (s) | pyMOR (s) | pyMOR / structrom | same selection |")
    print("|---|---:|---:|---:|:---:|")
    for name, a, b, same in rows:
        print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f} | {'yes' if same else 'NO'} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--grid", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--grids", type=int, nargs="+", default=[64, 128, 256],
                    help="grid sizes m (about 5 m^2 candidate entries)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--params", type=int, default=48, help="training parameters")
    ap.add_argument("--terms", type=int, default=20, help="max_terms of the greedy")
    ap.add_argument("--norm", default="max", choices=["max", "l2"])
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--quick", action="store_true", help="one small grid on 1 and 2 ranks")
    ap.add_argument("--vs-pymor", action="store_true", help="serial greedy, DEIM, Q-DEIM beside pyMOR's "
                    "(pip install -c .venv/constraints.txt pymor; --points, --params, --terms)")
    ap.add_argument("--points", type=int, default=100_000, help="--vs-pymor: sample points")
    ap.add_argument("--repeat", type=int, default=3, help="--vs-pymor: best of this many runs")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    if args.vs_pymor:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            if os.environ.get(var) != "1":  # BLAS threads must be fixed before numpy loads
                os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, OPENBLAS_NUM_THREADS="1",
                                                                          OMP_NUM_THREADS="1"))
        vs_pymor(args)
        return
    grids = [48] if args.quick else args.grids
    print(f"EIM matrix separation greedy: {args.params} training parameters, max {args.terms} terms, "
          f"norm {args.norm}, {os.cpu_count()} cores\n")
    print("| entries | dofs | ranks | set-up (s) | greedy (s) | per step (ms) | terms | rel. error | same as 1 rank |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for grid in grids:
        first = None
        for ranks in args.ranks:
            r = run_case(grid, ranks, args)
            first = first or r
            same = r["points"] == first["points"] and r["params"] == first["params"]
            print(f"| {r['entries']} | {r['dofs']} | {r['ranks']} | {r['setup']:.3f} | {r['greedy']:.3f} | "
                  f"{1e3 * r['greedy'] / max(r['terms'], 1):.1f} | {r['terms']} | {r['error']:.1e} | "
                  f"{'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
