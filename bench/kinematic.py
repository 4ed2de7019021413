"""Online cost of one law evaluation at the reduced points with kinematic hardening: fast paths vs generic.

    python bench/kinematic.py [--points 300] [--modes 12] [--append-docs]

One evaluation = the return at every reduced point (stress, state, tangent) plus the reduced tangent
``K = sum_k w_k B_k^T C_k B_k``, with random integrators (the cost does not depend on the mesh) and a strain
that makes about half the points yield from a state with plastic history and back stress. Compared: the
generic reduced system driving the law (``(n_rp, 6, 6)`` tangents) and the fast paths
(:class:`~structrom.rom.online.radial_return.RadialReturnSystem` for isotropic hardening,
:class:`~structrom.rom.online.radial_return.KinematicReturnSystem` with a back stress). Medians of repeated
evaluations, one BLAS thread.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from docs_section import write_section  # noqa: E402  (bench/ is the script's directory)
from structrom.rom.materials import law_from_config  # noqa: E402
from structrom.rom.online.newton import ReducedSystem, Region, State  # noqa: E402
from structrom.rom.online.radial_return import KinematicReturnSystem, RadialReturnSystem  # noqa: E402

ELASTIC = {"young": 200e3, "poisson": 0.3}
LAWS = {
    "isotropic (linear)": {"hardening": {"type": "linear", "yield_stress": 300.0, "modulus": 2000.0}},
    "Prager + linear": {"hardening": {"type": "linear", "yield_stress": 300.0, "modulus": 2000.0},
                        "kinematic": {"type": "prager", "modulus": 20000.0}},
    "Armstrong-Frederick + Voce": {"hardening": {"type": "voce", "yield_stress": 300.0, "saturation": 80.0,
                                                 "rate": 12.0},
                                   "kinematic": {"type": "armstrong_frederick", "modulus": 40000.0,
                                                 "recall": 250.0}},
}


def _time(system, old, strain, temperature, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        _, tangent, _ = system.integrate(old, strain, temperature, 1.0, {})
        system.stiffness(tangent)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), len(getattr(tangent, "plastic", []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--modes", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--append-docs", action="store_true")
    args = parser.parse_args()
    n, N = args.points, args.modes
    rows = []
    for name, extra in LAWS.items():
        rng = np.random.default_rng(0)
        B = rng.normal(size=(n, 6, N))
        w = rng.uniform(0.5, 1.5, n)
        law = law_from_config({"type": "j2_plasticity", "elastic": ELASTIC, **extra})
        regions = [Region(law, np.arange(n))]
        fast_type = KinematicReturnSystem if law.kinematic is not None else RadialReturnSystem
        generic, fast = ReducedSystem(B, w, regions), fast_type(B, w, regions)
        st = law.initial_state(n)
        st[:, 6] = rng.uniform(0.0, 1e-3, n)
        if law.kinematic is not None:
            x = rng.normal(scale=10.0, size=(n, 6))
            st[:, 7:13] = x - x[:, :3].mean(1, keepdims=True) * np.array([1, 1, 1, 0, 0, 0])
        temperature = np.full(n, 20.0)
        old = State(0.0, np.zeros(N), np.zeros((n, 6)), np.zeros((n, 6)), temperature, [st])
        strain = generic.strain(rng.normal(scale=3e-4, size=N))
        t_generic, _ = _time(generic, old, strain, temperature, args.repeats)
        t_fast, n_plastic = _time(fast, old, strain, temperature, args.repeats)
        rows.append((name, n_plastic, t_generic, t_fast))
    lines = ["| law | plastic / reduced points | generic [ms] | fast path [ms] | ratio |",
             "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | {p} / {n} | {1e3 * g:.3f} | {1e3 * f:.3f} | {g / f:.1f} |" for name, p, g, f in rows]
    lines.append("")
    lines.append(f"One law evaluation (return at {n} reduced points + reduced tangent, {N} modes); medians of "
                 f"{args.repeats} evaluations.")
    text = "\n".join(lines)
    print(text)
    if args.append_docs:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        write_section("Online stage: kinematic hardening",
                      f"## Online stage: kinematic hardening\n\n`python bench/kinematic.py --append-docs` "
                      f"({time.strftime('%Y-%m-%d')}, commit {commit}, 2 cores shared, one BLAS thread)\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
