"""HF solver benchmark: wall time and peak memory against degrees of freedom and MPI ranks.

Usage (from the repository root)::

    .venv/bin/python bench/hifi.py                 # ~10k, ~100k, ~1M dofs on 1 and 2 ranks
    .venv/bin/python bench/hifi.py --quick         # smoke run (~5k dofs, a few seconds)
    .venv/bin/python bench/hifi.py --sizes 10000 100000 --ranks 1 2 --timeout 1800 --max-mem-gib 20
    .venv/bin/python bench/hifi.py --compare-settings --sizes 91000 --ranks 1   # old vs new linear settings

Problem: a gmsh plate with a hole (100 x 40 x 5 mm, hole r = 8 mm at the centre; quadratic
tetrahedra C3D10, :func:`examples.geometries.plate_with_holes` sized by
:func:`examples.geometries.size_for_dofs`), clamped on ``left``, x displacement imposed on ``right``,
plus a Gaussian hot spot next to the hole; J2 plasticity with linear hardening (steel-like, mm/N/MPa).
Two increments: t = 1 is elastic, t = 2 yields around the hole (checked and reported as ``plastic``).
Each mesh is generated once and cached in ``out/bench/plate_<target>.msh`` (+ ``.json``).

For every (dofs, ranks) the parent runs this script with ``--child`` under ``mpirun -n P`` (with a
wall-clock timeout and a watchdog on the summed RSS of the process tree); the child reads the mesh
on rank 0 (:func:`structrom.rom.hifi.run.load_mesh`), broadcasts it, builds :class:`structrom.rom.hifi.solver.HifiSolver`
(default linear solver: CG + GAMG) and prints one ``RESULT {json}`` line from rank 0. The parent
prints a Markdown table and writes it into ``docs/benchmarks.md`` (section "HF solver").

Timers inside the increments (``assemble``, ``ksp``, ``element matrices``, ``constitutive``) wrap the
solver's own objects' methods at run time; no solver code is duplicated here.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## HF solver"

# Geometry and loading (model units mm, N, MPa, t).
PLATE = dict(length=100.0, width=40.0, thickness=5.0, holes=((50.0, 20.0, 8.0),))
U_MAX = 0.06  # mm imposed on the right face at t = 2 (nominal strain 6e-4; yields around the hole only)
AMPLITUDE = [[0.0, 0.0], [1.0, 0.3], [2.0, 1.0]]
LAW = {"type": "j2_plasticity",
       "elastic": {"young": 200000.0, "poisson": 0.3, "expansion": 1.2e-5, "reference_temperature": 20.0,
                   "density": 7.85e-9},
       "hardening": {"type": "linear", "yield_stress": 250.0, "modulus": 2000.0}}
HOT_SPOT = dict(center=(50.0, 30.0, 2.5), radius=4.0, intensity=60.0, reference=20.0)


# --------------------------------------------------------------------------------------------- child
def child(args: argparse.Namespace) -> None:
    import resource

    import numpy as np
    from mpi4py import MPI

    sys.path.insert(0, str(ROOT))
    from structrom.rom.hifi.run import load_mesh
    from structrom.rom.hifi.solver import HifiSolver
    from structrom.rom.loading import Amplitude, HotSpotTemperature, ImposedDisplacement, Loading
    from structrom.rom.materials import law_from_config

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    def rss_gib(op):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return comm.allreduce(kib, op=op) / 2**20

    comm.Barrier()
    t0 = time.perf_counter()
    mesh = load_mesh(Path(args.mesh)) if rank == 0 else None
    t_read = time.perf_counter() - t0
    mesh = comm.bcast(mesh, root=0)
    comm.Barrier()
    t_read_bcast = time.perf_counter() - t0
    rss_after_read = rss_gib(MPI.MAX)

    amp = Amplitude.from_config(AMPLITUDE)
    loading = Loading(
        times=np.array([0.0, 1.0, 2.0]),
        temperature=HotSpotTemperature(amplitude=amp, **HOT_SPOT),
        displacements=(ImposedDisplacement("left", (0, 1, 2), 0.0),
                       ImposedDisplacement("right", (0,), U_MAX, amp)),
    )
    law = law_from_config(LAW)

    comm.Barrier()
    t1 = time.perf_counter()
    from structrom.mpi.linear_solver import LinearSolverOptions
    # "old": exact linear solves to rtol 1e-10 with a preconditioner built at every Newton iteration
    linear = (LinearSolverOptions(reuse_preconditioner=False, eisenstat_walker=False) if args.settings == "old"
              else LinearSolverOptions())
    solver = HifiSolver(mesh, [(None, law)], loading, linear=linear, log=lambda *a, **k: None)
    comm.Barrier()
    t_setup_wall = time.perf_counter() - t1
    rss_after_setup = rss_gib(MPI.MAX)

    # Phase timers: wrap the solver's own bound methods (rank-local wall time, reported as max over ranks).
    timers: dict[str, float] = {"constitutive": 0.0, "element_matrices": 0.0, "assemble": 0.0, "ksp": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            s = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[name] += time.perf_counter() - s
        return wrapper

    solver._integrate = timed("constitutive", solver._integrate)
    solver.disc.stiffness_values = timed("element_matrices", solver.disc.stiffness_values)
    solver.assembler.assemble = timed("assemble", solver.assembler.assemble)
    solver.linear.solve = timed("ksp", solver.linear.solve)
    ksp_all = {"calls": 0, "its": 0}  # every KSP solve, including those of failed (cut back) attempts
    ksp_solve = solver.linear.solve

    def counted(*a, **k):
        out = ksp_solve(*a, **k)
        ksp_all["calls"] += 1
        ksp_all["its"] += int(out[1])
        return out

    solver.linear.solve = counted

    increments = []
    plastic = []

    def on_increment(s, res):
        p = s.point_fields()["cumulated_plastic_strain"]
        plastic.append(comm.allreduce(float(p.max()) if len(p) else 0.0, op=MPI.MAX))

    comm.Barrier()
    t2, c2 = time.perf_counter(), time.process_time()
    results = solver.run(on_increment)
    cpu_solve = comm.allreduce(time.process_time() - c2, op=MPI.MAX)  # robust to other load on the machine
    comm.Barrier()
    t_solve = time.perf_counter() - t2
    for r, pmax in zip(results, plastic):
        increments.append({"time": r.time, "seconds": round(r.seconds, 3), "newton": r.newton_iterations,
                           "ksp": list(r.linear_iterations), "cutbacks": r.cutbacks,
                           "max_plastic_strain": pmax})
    phase = {k: round(comm.allreduce(v, op=MPI.MAX), 3) for k, v in timers.items()}
    n_el = comm.allreduce(len(solver.disc.elements))
    out = {
        "dofs": int(mesh.n_dofs), "elements": int(n_el), "ranks": size,
        "mesh_read_s": round(t_read, 3), "mesh_read_bcast_s": round(t_read_bcast, 3),
        "setup_s": round(comm.allreduce(solver.setup_seconds, op=MPI.MAX), 3),
        "setup_wall_s": round(t_setup_wall, 3),
        "increments": increments,
        "newton_its": sum(i["newton"] for i in increments),
        "ksp_its": sum(sum(i["ksp"]) for i in increments),
        "solve_s": round(t_solve, 3), "solve_cpu_s": round(cpu_solve, 3),
        "phases_s": phase, "ksp_calls_all": ksp_all["calls"], "ksp_its_all": ksp_all["its"],
        "rss_after_read_max_gib": round(rss_after_read, 3),
        "rss_after_setup_max_gib": round(rss_after_setup, 3),
        "peak_rss_total_gib": round(rss_gib(MPI.SUM), 3),
        "peak_rss_max_gib": round(rss_gib(MPI.MAX), 3),
    }
    out["settings"] = args.settings
    if rank == 0:
        if args.save_u:
            np.save(args.save_u, solver.u)
        print("RESULT " + json.dumps(out), flush=True)


# -------------------------------------------------------------------------------------------- parent
def ensure_mesh(target: int, log) -> tuple[Path, dict]:
    """Generate (once) a C3D10 plate mesh of about ``target`` dofs; returns its path and metadata."""
    OUT.mkdir(parents=True, exist_ok=True)
    path, meta_path = OUT / f"plate_{target}.msh", OUT / f"plate_{target}.json"
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    sys.path.insert(0, str(ROOT))
    from examples.geometries import plate_with_holes, size_for_dofs

    t0 = time.perf_counter()
    h = size_for_dofs(plate_with_holes, target, order=2, **PLATE)
    mesh = plate_with_holes(mesh_size=h, order=2, path=path, **PLATE)
    if abs(mesh.n_dofs / target - 1) > 0.25:  # extrapolated size off: rescale once (dofs ~ h^-3)
        h *= (mesh.n_dofs / target) ** (1 / 3)
        mesh = plate_with_holes(mesh_size=h, order=2, path=path, **PLATE)
    meta = {"target": target, "mesh_size": h, "dofs": mesh.n_dofs, "elements": mesh.n_elements,
            "generate_s": round(time.perf_counter() - t0, 1)}
    meta_path.write_text(json.dumps(meta))
    log(f"mesh {path.name}: {meta}")
    return path, meta


def _tree_rss_bytes(pid: int) -> int:
    """Summed VmRSS of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                txt = f.read()
        except OSError:
            continue
        pp = re.search(r"^PPid:\s+(\d+)", txt, re.M)
        m = re.search(r"^VmRSS:\s+(\d+) kB", txt, re.M)
        if pp:
            children.setdefault(int(pp.group(1)), []).append(int(d))
        rss[int(d)] = int(m.group(1)) * 1024 if m else 0
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def run_case(mesh_path: Path, ranks: int, timeout: float, max_mem_gib: float, log, settings: str = "new",
             save_u: Path | None = None) -> dict:
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = ["mpirun", "-n", str(ranks), "--bind-to", "none", sys.executable, str(Path(__file__).resolve()),
           "--child", "--mesh", str(mesh_path), "--settings", settings]
    if save_u is not None:
        cmd += ["--save-u", str(save_u)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT, start_new_session=True)
    state = {"peak": 0, "killed": None}

    def watchdog():
        while proc.poll() is None:
            rss = _tree_rss_bytes(proc.pid)
            state["peak"] = max(state["peak"], rss)
            if rss > max_mem_gib * 2**30:
                state["killed"] = f"memory {rss / 2**30:.1f} GiB > --max-mem-gib {max_mem_gib}"
                os.killpg(proc.pid, signal.SIGKILL)
                return
            if time.perf_counter() - t0 > timeout:
                state["killed"] = f"timeout {timeout:.0f} s"
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(0.5)

    th = threading.Thread(target=watchdog, daemon=True)
    th.start()
    stdout, stderr = proc.communicate()
    th.join()
    wall = time.perf_counter() - t0
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
            res["wall_s"] = round(wall, 1)
            res["watchdog_peak_gib"] = round(state["peak"] / 2**30, 2)
            return res
    reason = state["killed"] or f"exit code {proc.returncode}"
    tail = (stderr or stdout).strip().splitlines()[-5:]
    log(f"  FAILED ({reason}) after {wall:.0f} s: " + " | ".join(tail))
    return {"ranks": ranks, "failed": reason, "wall_s": round(wall, 1),
            "watchdog_peak_gib": round(state["peak"] / 2**30, 2)}


def table(rows: list[dict]) -> str:
    head = ("| dofs | ranks | mesh read s | setup s | solve s | inc 1 / inc 2 s | Newton its | KSP its "
            "| assemble s | KSP s | peak RSS total GiB | per rank max GiB |")
    lines = [head, "|" + "|".join(["---"] * 12) + "|"]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r.get('dofs', '?'):,} | {r['ranks']} | - | - | - | - | - | - | - | - "
                         f"| > {r['watchdog_peak_gib']} (watchdog) | - |  FAILED: {r['failed']}")
            continue
        inc = " / ".join(f"{i['seconds']:.1f}" for i in r["increments"])
        its = "+".join(str(i["newton"]) for i in r["increments"])
        ph = r["phases_s"]
        lines.append(
            f"| {r['dofs']:,} | {r['ranks']} | {r['mesh_read_bcast_s']:.1f} | {r['setup_s']:.1f} | {r['solve_s']:.1f} "
            f"| {inc} | {its} | {r['ksp_its']} | {ph['element_matrices'] + ph['assemble']:.1f} | {ph['ksp']:.1f} "
            f"| {r['peak_rss_total_gib']:.2f} | {r['peak_rss_max_gib']:.2f} |")
    return "\n".join(lines)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def write_doc(body: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"{SECTION}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else \
        text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text.rstrip("\n") + "\n")


SETTINGS_SECTION = "## HF solver: inexact Newton and preconditioner reuse"


def compare_settings(args: argparse.Namespace) -> None:
    """Each size and rank count with the old linear settings (exact solves to rtol 1e-10, preconditioner
    rebuilt at every Newton iteration) and the new defaults (Eisenstat-Walker tolerances, an increment's
    preconditioner reused, GAMG interpolation reused, one matrix per solver), side by side in one run."""
    import numpy as np

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    targets = args.sizes or [91_000]
    lines = ["| dofs | ranks | settings | solve s | solve CPU s | Newton its | KSP its | KSP s | assemble s | speed-up "
             "(CPU) | rel. u difference |", "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for target in targets:
        mesh_path, meta = ensure_mesh(target, log)
        for ranks in args.ranks:
            res, u = {}, {}
            for settings in ("old", "new"):
                path = OUT / f"u_{target}_{ranks}_{settings}.npy"
                log(f"{meta['dofs']} dofs, {ranks} ranks, {settings} settings ...")
                res[settings] = run_case(mesh_path, ranks, args.timeout, args.max_mem_gib, log, settings, path)
                u[settings] = np.load(path) if path.exists() and "failed" not in res[settings] else None
            diff = (float(np.linalg.norm(u["new"] - u["old"]) / np.linalg.norm(u["old"]))
                    if u["old"] is not None and u["new"] is not None else float("nan"))
            for settings in ("old", "new"):
                r = res[settings]
                if "failed" in r:
                    lines.append(f"| {meta['dofs']:,} | {ranks} | {settings} | FAILED: {r['failed']} ||||||||")
                    continue
                ph = r["phases_s"]
                its = "+".join(str(i["newton"]) for i in r["increments"])
                speed, delta = "1", "-"
                if settings == "new":
                    speed = (f"{res['old']['solve_s'] / r['solve_s']:.2f} ({res['old']['solve_cpu_s'] / r['solve_cpu_s']:.2f})"
                             if "failed" not in res["old"] else "-")
                    delta = f"{diff:.1e}"
                lines.append(f"| {r['dofs']:,} | {ranks} | {settings} | {r['solve_s']:.1f} | {r['solve_cpu_s']:.1f} "
                             f"| {its} | {r['ksp_its']} "
                             f"| {ph['ksp']:.1f} | {ph['element_matrices'] + ph['assemble']:.1f} | {speed} | {delta} |")
            print("\n".join(lines[-2:]), flush=True)
    tab = "\n".join(lines)
    print(tab)
    if args.no_doc:
        return
    body = f"""Command: `.venv/bin/python bench/hifi.py {' '.join(sys.argv[1:])}`

Date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; commit `{git_commit()}`; {os.cpu_count()} cores, OpenBLAS 1 thread
per rank. Problem as in "HF solver" (C3D10 plate, J2, 2 increments, Newton rtol 1e-8, CG + GAMG). *old*: exact
linear solves to rtol 1e-10, preconditioner rebuilt at every Newton iteration; *new* (defaults): linear
tolerance from Eisenstat-Walker forcing terms (at most 1e-2, never below what Newton needs), the preconditioner
of an increment's first iteration reused for its later iterations, GAMG interpolation reused at rebuilds, one
PETSc matrix per solver with values overwritten. *solve CPU s*: process CPU time (max over ranks), robust to
other jobs on the machine; the speed-up is given by wall time and (CPU time). *rel. u difference*: ||u_new - u_old|| / ||u_old|| at the end
(both converged to the Newton tolerance).

{tab}
"""
    global SECTION
    SECTION = SETTINGS_SECTION
    write_doc(body)
    log(f"wrote {DOC}")


def parent(args: argparse.Namespace) -> None:
    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    sizes = args.sizes or ([5_000] if args.quick else [10_000, 100_000, 1_000_000])
    rows = []
    for target in sizes:
        if target > args.max_dofs:
            log(f"skip {target} dofs: above --max-dofs {args.max_dofs}")
            rows.append({"dofs": target, "ranks": "-", "failed": f"skipped (> --max-dofs {args.max_dofs})",
                         "watchdog_peak_gib": 0})
            continue
        mesh_path, meta = ensure_mesh(target, log)
        for p in args.ranks:
            log(f"run {meta['dofs']} dofs on {p} rank(s) ...")
            res = run_case(mesh_path, p, args.timeout, args.max_mem_gib, log)
            res.setdefault("dofs", meta["dofs"])
            rows.append(res)
            if "failed" not in res:
                log(f"  {json.dumps(res)}")
    tab = table(rows)
    print(tab)
    raw = OUT / ("results_quick.json" if args.quick else "results.json")
    raw.write_text(json.dumps(rows, indent=1))
    if args.no_doc or args.quick:  # a smoke run never replaces the measured figures of the doc
        if args.quick and not args.no_doc:
            log(f"--quick: docs/benchmarks.md left as it is (results in {raw})")
        return
    cmd = ".venv/bin/python bench/hifi.py " + " ".join(sys.argv[1:])  # (run from the repository root)
    body = f"""Command: `{cmd.strip()}`

Date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; commit `{git_commit()}`; machine: {os.cpu_count()} cores,
{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.machine()}, Open MPI
(`mpirun --bind-to none`), OMP/OpenBLAS 1 thread per rank. The machine was shared with other engineers'
jobs (tests, and in some runs heavier work), so timings are noisy: check the load notes below, if any.

Problem: plate with a hole (C3D10, gmsh), clamped left face, x displacement on the right face and a
thermal hot spot, J2 plasticity with linear hardening; 2 increments (t = 1 elastic, t = 2 plastic),
default linear solver CG + GAMG (rtol 1e-10), Newton rtol 1e-8. Columns: *mesh read s* rank 0 reads
the `.msh` and broadcasts it; *setup s* `HifiSolver.setup_seconds` (partition, integration-point data,
assembly pattern, loads), max over ranks; *solve s* both increments; *Newton its* per increment;
*KSP its* total; *assemble s* element matrices + COO exchange + PETSc matrix creation; *KSP s*
`KSP.solve` including GAMG set-up; *peak RSS* `ru_maxrss` summed (total) and max over ranks.
Raw per-case JSON (per-increment KSP iterations, plastic check, phase timers): `{raw.relative_to(ROOT)}`.

{tab}
"""
    if args.notes and Path(args.notes).exists():
        body += "\n" + Path(args.notes).read_text().strip() + "\n"
    write_doc(body)
    log(f"wrote {DOC}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: ~5k dofs on 1 and 2 ranks")
    ap.add_argument("--sizes", type=int, nargs="+", help="target dofs (default 10k 100k 1M)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--max-dofs", type=int, default=1_500_000, help="skip larger targets")
    ap.add_argument("--timeout", type=float, default=3600.0, help="wall-clock limit per run (s)")
    ap.add_argument("--max-mem-gib", type=float, default=20.0, help="kill a run above this summed RSS")
    ap.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--notes", help="Markdown file appended under the table in docs/benchmarks.md")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mesh", help=argparse.SUPPRESS)
    ap.add_argument("--settings", choices=["new", "old"], default="new", help=argparse.SUPPRESS)
    ap.add_argument("--save-u", help=argparse.SUPPRESS)
    ap.add_argument("--compare-settings", action="store_true",
                    help="old vs new linear-solver settings side by side (default size 91k dofs)")
    args = ap.parse_args()
    if args.child:
        child(args)
    elif args.compare_settings:
        compare_settings(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
