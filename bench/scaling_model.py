"""Scaling model of the offline stage: per stage, time and memory per rank against dofs, points, snapshots,
modes and ranks, fitted on measured runs; predictions for larger cases.

    python bench/scaling_model.py results1.json [results2.json ...] [--predict 5000000 --ranks 16 32 64]

The inputs are the ``--json`` rows of ``bench/offline.py`` (code ``this`` only). Model (``n_d`` dofs, ``n_p``
integration points, ``n_s`` snapshots, ``N`` modes, ``R = N n_s`` integrand rows, ``r`` compressed rows,
``S`` ECM selections, ``m`` dual modes in all, ``P`` ranks; every coefficient non-negative, fitted by NNLS):

* memory per rank [GiB] = ``c0`` (interpreter, libraries) ``+ b n_d`` (replicated: mesh, partition and
  global-length vectors; not fitted, two mesh sizes cannot separate it from ``c0``: ``b`` = 100 bytes per dof
  counted from the arrays, ``--replicated-bytes-per-dof``) ``+ c2 max_stage(D / P + Q)``, the largest of what a stage holds at once, distributed ``D`` and replicated ``Q``, in bytes:
  displacement POD ``D = 8 n_d (n_s + N)`` (snapshots, modes); dual POD ``D = 8 n_p (7 n_s + 6 N + 2 (6 m_s)
  + m_p)`` (stress and plastic-strain snapshots, mode strains, the stress basis and its re-orthonormalized
  copy); Gram eigendecomposition ``D = 8 n_p (7 n_s + 6 N + 6 m_s + m_p)``, ``Q = 16 R^2`` (or the randomized
  range ``8 R (r + 256)`` above ``max_gram_rows``); compressed integrand filled while the stress snapshots are
  alive ``D = 8 n_p (7 n_s + 6 N + r + 6 m_s + m_p)``, ``Q = 8 R r`` (the compression basis);
  With the factored integrand (``integrand = "factored"``, the default: no integrand matrix, no compression) the
  cubature holds ``D = 8 n_p (10 n_s + 6 N + 6 m_s + m_p) + 32 R k`` (the stress snapshots and their float32
  copy, the QR of the ``k`` selected columns split over the ranks);
* times [s]: read + partition ``a n_d``; displacement POD ``a n_d n_s^2 / P``; replay ``a n_p n_s / P``;
  dual POD ``a n_p n_s^2 / P``; cubature, assembled: ``a n_p R^2 / P + b S r n_p / P`` (Gram, selections),
  factored: ``a K R n_p / P + b S R k / P + c R n_p / P + d S k^2`` (``K`` full score products, one GEMM of
  ``12 R`` flops per point each; the QR's appends, projections and deletions on each rank's rows of ``Q``; the
  integrals and column norms; the work on the ``k x k`` factor ``R``, the same on every rank: rotations of the
  deletions, triangular solves), ``R`` the rows of the rotated integrand (modes x rotated stresses) when the stress
  snapshots are rotated; the other stages ``a n_p / P``. The shortlist's products (``2048`` points each) are not
  modelled.
  The cubature's time is fitted on the runs of the integrand form predicted (factored).

Times measured on a shared machine are upper bounds; the memory model is the one to size a job with.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

GIB = 2.0 ** 30
MAX_GRAM_ROWS = 8192


def features(r: dict) -> dict:
    n_d, n_p, n_s, N = r["dofs"], r["integration_points"], r["snapshots"], r["modes"]
    rc = r["compressed_rows"] or r["rows"]
    # the factored integrand's rows are those of the rotated stress snapshots (modes x rotated stresses) when they
    # are rotated: its products and QR work on them
    R = rc if r.get("integrand", "assembled") == "factored" else r["rows"]
    m_s = r["dual_modes"].get("stress", 0)
    m_p = sum(r["dual_modes"].values()) - m_s
    P = r["ranks"]
    S = r["selections"] or 0
    k = r.get("points") or 0
    factored = r.get("integrand", "assembled") == "factored"
    stages = [(n_d * (n_s + N), 0.0), (n_p * (7 * n_s + 6 * N + 12 * m_s + m_p), 0.0)]
    if factored:
        stages.append((n_p * (10 * n_s + 6 * N + 6 * m_s + m_p) + 4 * R * k, 0.0))
    else:
        gram = 16.0 * R * R if R <= MAX_GRAM_ROWS else 8.0 * R * (rc + 256)
        stages += [(n_p * (7 * n_s + 6 * N + 6 * m_s + m_p), gram / 8),
                   (n_p * (7 * n_s + 6 * N + rc + 6 * m_s + m_p), R * rc)]
    peak = max(8.0 * (d / P + q) for d, q in stages) / GIB
    return {"n_d": n_d, "n_p": n_p, "n_s": n_s, "N": N, "R": R, "r": rc, "m": m_s + m_p, "P": P, "S": S,
            "K": r.get("scorings") or 0, "k": k, "factored": factored, "peak": peak}


STAGES = {
    "read + partition": lambda f: [f["n_d"]],
    "displacement POD": lambda f: [f["n_d"] * f["n_s"] ** 2 / f["P"]],
    "replay of the laws": lambda f: [f["n_p"] * f["n_s"] / f["P"]],
    "dual POD": lambda f: [f["n_p"] * f["n_s"] ** 2 / f["P"]],
    "empirical cubature": lambda f: [f["K"] * f["R"] * f["n_p"] / f["P"], f["S"] * f["R"] * f["k"] / f["P"],
                                     f["R"] * f["n_p"] / f["P"], f["S"] * f["k"] ** 2],
    "validation points": lambda f: [f["n_p"] / f["P"]],
    "reduced operators": lambda f: [f["n_p"] / f["P"]],
}


def memory_terms(f: dict) -> list[float]:
    return [1.0, f["peak"]]


REPLICATED_BYTES_PER_DOF = 100.0


def fit(rows: list[dict], cores: int | None = None) -> dict:
    """NNLS coefficients of the memory model (every row) and of each stage's time (the rows that ran at most
    ``cores`` ranks: more ranks than cores time-share them, which the model's ``1 / P`` terms do not describe)."""
    feats = [features(r) for r in rows]
    peak = [max(s["peak_rss_gib_per_rank"]) for r in rows for s in [r["stages"][-1]]]
    A = np.array([memory_terms(f) for f in feats])
    y = np.array(peak) - np.array([REPLICATED_BYTES_PER_DOF * f["n_d"] / GIB for f in feats])
    scale = np.maximum(np.abs(A).max(axis=0), 1e-30)
    coef, _ = nnls(A / scale, y)
    model = {"memory": (coef / scale).tolist(), "stages": {}}
    model["memory_fit"] = [(float(p), float(q) + REPLICATED_BYTES_PER_DOF * f["n_d"] / GIB)
                           for p, q, f in zip(peak, A @ (coef / scale), feats)]
    for name, terms in STAGES.items():
        X, y = [], []
        for r, f in zip(rows, feats):
            t = {s["stage"]: s["seconds"] for s in r["stages"]}
            if name == "empirical cubature" and not f["factored"]:
                continue  # (the model of the factored integrand, the default)
            if cores is not None and f["P"] > cores:
                continue
            if name in t:
                X.append(terms(f))
                y.append(t[name])
        if not X:
            continue
        X = np.array(X, dtype=float)
        sc = np.maximum(np.abs(X).max(axis=0), 1e-30)
        c, _ = nnls(X / sc, np.array(y))
        model["stages"][name] = (c / sc).tolist()
    return model


def predict(model: dict, f: dict) -> tuple[float, dict]:
    mem = float(np.dot(model["memory"], memory_terms(f))) + REPLICATED_BYTES_PER_DOF * f["n_d"] / GIB
    times = {name: float(np.dot(c, STAGES[name](f))) for name, c in model["stages"].items()}
    return mem, times


def main() -> int:
    global REPLICATED_BYTES_PER_DOF
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--predict", type=int, nargs="*", default=[1_000_000, 5_000_000], help="dofs to predict")
    parser.add_argument("--ranks", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--snapshots", type=int, default=240)
    parser.add_argument("--modes", type=int, default=22)
    parser.add_argument("--rotated", type=float, default=0.81,
                        help="rotated stresses / snapshots (117k plate: 194 / 240)")
    parser.add_argument("--points", type=float, default=0.40,
                        help="ECM points / rotated integrand rows (117k plate: 1703 / 4268)")
    parser.add_argument("--selections", type=float, default=1.8,
                        help="ECM selections / ECM points (block rule; 117k plate: 3094 / 1703)")
    parser.add_argument("--scorings", type=float, default=0.023,
                        help="full score products / ECM selections (block rule with the shortlist; 117k plate: 71 / 3094)")
    parser.add_argument("--stress-modes", type=int, default=159)
    parser.add_argument("--p-modes", type=int, default=117)
    parser.add_argument("--replicated-bytes-per-dof", type=float, default=100.0)
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="cores of the machine the runs were measured on: runs with more ranks are left out of "
                             "the time fit (their ranks time-share the cores), kept in the memory fit")
    parser.add_argument("--points-per-dof", type=float, default=0.785, help="C3D10 plate: 92,352 / 117,723")
    args = parser.parse_args()
    REPLICATED_BYTES_PER_DOF = args.replicated_bytes_per_dof
    rows = [r for p in args.results for r in json.loads(p.read_text()) if r.get("code", "this") == "this"]
    model = fit(rows, args.cores)
    timed = [r for r in rows if args.cores is None or r["ranks"] <= args.cores]
    out = ["Fitted on " + ", ".join(f"{r['dofs']} dofs x {r['ranks']} ranks" for r in rows) + " (times: "
           + ", ".join(f"{r['dofs']} x {r['ranks']}" for r in timed) + ").", "",
           "memory per rank [GiB] = " + " + ".join(f"{c:.3g} {t}" for c, t in
                                                  zip(model["memory"], ["", "max_stage(D/P + Q)"]))
           + f" + {REPLICATED_BYTES_PER_DOF:.0f} B x n_d",
           "measured / modelled peak per rank [GiB]: " +
           ", ".join(f"{a:.2f} / {b:.2f}" for a, b in model["memory_fit"]), ""]
    fitted = []
    for r in timed:  # the cubature against its model on the runs it was fitted on
        t = {s["stage"]: s["seconds"] for s in r["stages"]}
        if "empirical cubature" in t and "empirical cubature" in model["stages"]:
            fitted.append(f"{t['empirical cubature']:.1f} / {predict(model, features(r))[1]['empirical cubature']:.1f}")
    if fitted:
        c = model["stages"]["empirical cubature"]
        out += ["empirical cubature [s] = " + " + ".join(f"{a:.3g} {t}" for a, t in zip(c, ["K R n_p / P", "S R k / P",
                                                                                           "R n_p / P", "S k^2"])),
                "measured / modelled cubature [s]: " + ", ".join(fitted), ""]
    names = list(model["stages"])
    out += ["| dofs | ranks | snapshots | integrand | " + " | ".join(f"{n} [s]" for n in names) +
            " | total [s] | ECM share | memory per rank [GiB] |",
            "| ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: | ---: | ---: |"]
    for n_d in args.predict:
        for P in args.ranks:
            R = args.modes * args.snapshots
            k = int(args.points * args.rotated * R)
            S = int(args.selections * k)
            r = {"dofs": n_d, "integration_points": int(args.points_per_dof * n_d), "snapshots": args.snapshots,
                 "modes": args.modes, "rows": R, "compressed_rows": int(args.rotated * R), "integrand": "factored",
                 "points": k,
                 "dual_modes": {"stress": args.stress_modes, "cumulated_plastic_strain": args.p_modes},
                 "ranks": P, "selections": S, "scorings": int(args.scorings * S)}
            mem, times = predict(model, features(r))
            total = sum(times.values())
            out.append(f"| {n_d} | {P} | {args.snapshots} | {int(args.rotated * R)} (factored, rotated), {k} points | " +
                       " | ".join(f"{times[n]:.0f}" for n in names) +
                       f" | {total:.0f} | {times.get('empirical cubature', 0) / total:.0%} | {mem:.1f} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
