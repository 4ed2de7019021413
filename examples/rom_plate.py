"""Reduced model of an elastoplastic plate with holes: HF training, offline stage, online predictions.

The loading family: the plate (clamped on its left face) is pulled by a traction on its right face and
heated by a hot spot next to its left hole; the load is applied then removed (one cycle). Parameters:
traction peak [MPa] and hot-spot intensity [degC]; test loadings far outside the family also move the hot
spot (x position [mm]).

    python examples/rom_plate.py --mesh-size 1.7 --increments 8   # 117,723 dofs; HF runs cached in out/rom_plate/
    python examples/rom_plate.py --mesh-size 3.4 --increments 16 --greedy 2 --out out/small16g
        # 35k dofs, finer steps, two training loadings added where the error indicator is largest
    python examples/rom_plate.py --mesh-size 1.7 --increments 16 --greedy 2 --out out/big16
        # the same at 117,723 dofs: the run of docs/rom_accuracy.md (25 HF solves, ~1 h; 3 offline stages, ~21 min)

Steps: gmsh mesh -> HF snapshots (`structrom hifi`, two loadings at a time on one rank each) for the
training and test loadings -> `mpirun -n P structrom offline` -> `ReducedModel.solve` for every test
loading -> a table of errors (space-time relative L2 of displacement, Gappy-reconstructed p), error
indicator (max over increments) and trust flag, Spearman rank correlation of indicator and errors over the
test loadings, online time and speedup. The table is printed and written to out/rom_plate/results.md;
docs/rom_accuracy.md holds the figures of the 117k-dof run.

Interrupts: the HF solves and the offline stage run in their own process sessions, so a first Ctrl-C
(or `kill` of this script) stops starting new ones and lets the running ones finish (their results are
cached); a second one stops them. examples/demo.py reuses these functions.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # online solves are small: one BLAS thread
os.environ.setdefault("OMP_NUM_THREADS", "1")
import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from geometries import plate_with_holes  # noqa: E402

HIFI = """
[units]
length = "mm"
force = "N"
stress = "MPa"
mass = "t"
temperature = "degC"

[mesh]
file = "plate.msh"

[[material]]
[material.law]
type = "j2_plasticity"
[material.law.elastic]
young = {{ temperatures = [20.0, 300.0, 600.0], values = [210000.0, 190000.0, 160000.0] }}
poisson = 0.3
expansion = {{ temperatures = [20.0, 600.0], values = [1.2e-5, 1.4e-5] }}
reference_temperature = 20.0
density = 7.85e-9
[material.law.hardening]
type = "linear"
yield_stress = {{ temperatures = [20.0, 300.0, 600.0], values = [350.0, 300.0, 200.0] }}
modulus = {{ temperatures = [20.0, 600.0], values = [3000.0, 1500.0] }}

[[boundary]]
node_set = "left"
components = ["x", "y", "z"]

[loading]
times = {times}
temperature = {{ type = "hot_spot", center = [{x}, 20.0, 2.5], radius = 10.0, intensity = {intensity}, reference = 20.0, amplitude = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]] }}
pressure = [{{ surface = "right", amplitude = [[0.0, 0.0], [1.0, {traction}], [2.0, 0.0]] }}]

[solver]
newton_rtol = 1e-8
linear = {{ ksp_type = "{ksp}", pc_type = "{pc}", rtol = 1e-9, petsc_options = {{ {petsc} }} }}

[output]
file = "{out}"
"""

OFFLINE = """
[snapshots]
files = {files}

[pod]
tolerance = {pod_tol}
method = "{pod_method}"

[dual]
quantities = ["cumulated_plastic_strain", "stress"]
tolerance = {dual_tol}

[ecm]
tolerance = {ecm_tol}

[indicator]
quantity = "{indicator}"
tolerance = {ind_tol}
calibrate = {calibrate}

[output]
file = "model.h5"
"""

# (traction peak [MPa] (negative: pulls), hot-spot x [mm], intensity [degC]). The training family keeps the
# hot spot at x = 40 mm (next to the left hole) and varies the traction peak in [-250, -150] MPa and the
# intensity in [200, 450] degC: a 3 x 3 grid and the 4 centres of its cells.
X_SPOT = 40.0
TRAINING = [(tr, X_SPOT, it) for tr in (-150.0, -200.0, -250.0) for it in (200.0, 325.0, 450.0)] + \
           [(tr, X_SPOT, it) for tr in (-175.0, -225.0) for it in (262.5, 387.5)]
# --dense-training: the grid refined in traction (5 x 3 nodes), appended so that cached runs keep their names
DENSE = [(tr, X_SPOT, it) for tr in (-175.0, -225.0) for it in (200.0, 325.0, 450.0)]
# --greedy: candidates for training loadings chosen by the error indicator: the centres of the 4 x 4 cells
# of the training box (none is a training or test loading)
CANDIDATES = [(tr, X_SPOT, it) for tr in (-237.5, -212.5, -187.5, -162.5) for it in (231.25, 293.75, 356.25, 418.75)]
# inside the training box, not in the training set
TEST = [(-190.0, X_SPOT, 350.0), (-230.0, X_SPOT, 300.0), (-165.0, X_SPOT, 420.0), (-215.0, X_SPOT, 240.0)]
# outside it, at graded distances (traction, intensity, and the hot spot moved away from the family's x)
FAR = [(-270.0, X_SPOT, 325.0), (-200.0, X_SPOT, 500.0), (-120.0, X_SPOT, 250.0), (-300.0, X_SPOT, 550.0),
       (-200.0, 46.0, 325.0), (-200.0, 60.0, 325.0)]

# --small: 4 training loadings (the box's corners at tractions -150 and -200 MPa) and 1 test loading inside them,
# for meshes of a million dofs on one machine (CG + GAMG handles these tractions; docs/benchmarks.md)
SMALL_TRAINING = [(tr, X_SPOT, it) for tr in (-150.0, -200.0) for it in (200.0, 450.0)]
SMALL_TEST = [(-190.0, X_SPOT, 350.0)]


#: The plate of the loading family (examples/geometries.py), mesh size aside.
PLATE = dict(length=100.0, width=40.0, thickness=5.0, holes=[(30.0, 20.0, 6.0), (70.0, 20.0, 6.0)],
             notch_depth=4.0, order=2)


class ChildProcesses:
    """Child processes (HF solves, offline stage) that a first interrupt lets finish.

    Children start in their own session: a terminal's Ctrl-C (SIGINT to the foreground process group) or
    a ``kill`` (SIGTERM) reaches this script only. With children running, the first interrupt stops new
    children from starting and waits for the running ones; the second terminates them (SIGTERM to their
    process groups, which ``mpirun`` forwards to its ranks). :meth:`run` then raises
    ``KeyboardInterrupt``. With no child running, an interrupt raises ``KeyboardInterrupt`` at once."""

    def __init__(self) -> None:
        self.running: set[subprocess.Popen] = set()
        self.starting = 0  # Popen calls under way (the child may exist before Popen returns)
        self.interrupts = 0
        self._lock = threading.RLock()  # re-entrant: the signal handler may run while the main thread holds it

    def install(self) -> None:
        """Handle SIGINT and SIGTERM (main thread only)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.interrupts += 1
        with self._lock:
            busy = len(self.running) + self.starting
        if not busy:
            raise KeyboardInterrupt
        if self.interrupts == 1:
            print(f"\ninterrupted: waiting for {busy} running child process(es) to finish (HF results are kept and "
                  "reused by the next run); interrupt again to stop them now", file=sys.stderr, flush=True)
            return
        self.terminate()  # run() raises KeyboardInterrupt once its child has ended

    def terminate(self) -> None:
        with self._lock:
            procs = list(self.running)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        """Like ``subprocess.run`` (``capture_output``, ``text``, ``env``, ``cwd``, ``check``), in a new session."""
        check = kw.pop("check", False)
        if kw.pop("capture_output", False):
            kw["stdout"] = kw["stderr"] = subprocess.PIPE
        with self._lock:
            if self.interrupts:
                raise KeyboardInterrupt("interrupted: no new child process started")
            self.starting += 1
        proc = None
        try:
            proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        finally:
            with self._lock:
                self.starting -= 1
                if proc is not None:
                    self.running.add(proc)
        if self.interrupts > 1:  # interrupted twice while it started
            self.terminate()
        try:
            out, err = proc.communicate()
        finally:
            with self._lock:
                self.running.discard(proc)
        if self.interrupts > 1:
            raise KeyboardInterrupt
        done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        if check:
            done.check_returncode()
        return done


CHILDREN = ChildProcesses()


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of ``a`` and ``b`` (ties averaged); None below 3 pairs or for a constant
    sequence, where it is undefined (``--small`` has 1 test loading: it printed nan and numpy warnings)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _rho(value: float | None) -> str:
    return "n/a (needs 3 test loadings of different values)" if value is None else f"{value:.2f}"


def mpi_env() -> dict:
    """Environment of the children: Open MPI as root and oversubscribed, one BLAS thread, ranks that yield
    their core while waiting in collectives (busy polling on a shared 2-core machine made the demo's ECM
    4 x slower: 46.7 s against 11.9 s at load average 14)."""
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1",
                OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def run_hifi(work: Path, name: str, params, times: list[float], solver: str) -> float:
    """One HF solve on one rank (cached); returns its wall time."""
    out = work / f"{name}.h5"
    stamp = work / f"{name}.json"
    if out.exists() and stamp.exists():
        cached = json.loads(stamp.read_text())
        if [float(v) for v in cached["params"]] != [float(v) for v in params]:
            raise RuntimeError(f"{out} was computed for {cached['params']}, not {params}: use another --out")
        return cached["seconds"]
    traction, x, intensity = params
    ksp, pc, petsc = ("preonly", "lu", 'pc_factor_mat_solver_type = "mumps"') if solver == "mumps" else \
        ("cg", "gamg", 'pc_gamg_threshold = "0.02"')
    cfg = work.parent / f"{name}.toml"
    cfg.write_text(HIFI.format(times=times, x=x, intensity=intensity, traction=traction, ksp=ksp, pc=pc,
                               petsc=petsc, out=f"{work.name}/{name}.h5"))
    t0 = time.perf_counter()
    proc = CHILDREN.run([sys.executable, "-m", "structrom.api.cli", "hifi", str(cfg)], env=mpi_env(), cwd=ROOT,
                        capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"HF run {name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    stamp.write_text(json.dumps({"seconds": seconds, "params": params}))
    return seconds


def run_hifi_jobs(jobs: list[tuple[str, str, tuple]], out: Path, times: list[float], solver: str,
                  workers: int = 2, log=print) -> dict[str, float]:
    """HF solves of ``jobs`` ``(subfolder, name, params)`` under ``out``, ``workers`` one-rank solves at a
    time (cached); returns wall times by name. One log line per finished solve."""
    from structrom.rom.progress import bar

    for sub in {j[0] for j in jobs}:
        (out / sub).mkdir(parents=True, exist_ok=True)
    with bar(len(jobs), "HF solves", "run") as progress, ThreadPoolExecutor(max_workers=workers) as pool:
        def one(job):
            cached = (out / job[0] / f"{job[1]}.json").exists() and (out / job[0] / f"{job[1]}.h5").exists()
            seconds = run_hifi(out / job[0], job[1], job[2], times, solver)
            log(f"  HF {job[1]:<12s} traction, x, intensity = {job[2]}: {seconds:6.1f} s" + (" (cached)" if cached else ""))
            progress.update(1)
            return seconds

        return dict(zip([j[1] for j in jobs], pool.map(one, jobs)))


@dataclass
class OfflineSettings:
    pod_tol: float = 1e-4
    ecm_tol: float = 1e-4
    dual_tol: float | None = None  # default: pod_tol
    indicator: str = "cumulated_plastic_strain"
    indicator_tol: float = 2e-3
    #: Leave-one-out calibrated error bounds (then indicator_tol bounds relative errors, e.g. 0.05); the runs
    #: of docs/rom_accuracy.md made with this script use the uncalibrated Gappy indicator (False).
    calibrate: bool = False


def run_offline(out: Path, files: list[str], ranks: int, settings: OfflineSettings, quiet: bool = False) -> float:
    """Write ``out/offline.toml`` for the snapshot ``files`` (relative to ``out``) and run
    ``mpirun -n ranks structrom offline`` on it (writes ``out/model.h5``); returns its wall time."""
    (out / "offline.toml").write_text(OFFLINE.format(
        files=json.dumps(files), pod_tol=settings.pod_tol, ecm_tol=settings.ecm_tol,
        dual_tol=settings.dual_tol or settings.pod_tol, indicator=settings.indicator,
        ind_tol=settings.indicator_tol, calibrate=str(settings.calibrate).lower(), pod_method="gram"))
    from structrom.rom.progress import PROGRESS_ENV
    from structrom.rom.progress import quiet as no_bars

    env = mpi_env()
    if not (quiet or no_bars()):  # the ranks' stderr is a pipe to mpirun, which writes to our terminal
        env[PROGRESS_ENV] = "1"
    t0 = time.perf_counter()
    CHILDREN.run(["mpirun", "-n", str(ranks), "--bind-to", "none", sys.executable, "-m", "structrom.api.cli",
                  "offline", str(out / "offline.toml"), *(["--quiet"] if quiet else [])],
                 env=env, cwd=ROOT, check=True)
    return time.perf_counter() - t0


def main() -> int:
    CHILDREN.install()
    try:
        return _main()
    except KeyboardInterrupt:
        print("rom_plate: interrupted (finished HF runs are cached in --out and reused)", file=sys.stderr)
        return 130


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh-size", type=float, default=1.7, help="gmsh element size [mm] (1.7: ~110k dofs)")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the offline stage")
    parser.add_argument("--increments", type=int, default=8, help="time increments per loading (2 s cycle)")
    parser.add_argument("--solver", choices=("mumps", "gamg"), default="mumps", help="HF linear solver")
    parser.add_argument("--pod-tol", type=float, default=1e-4)
    parser.add_argument("--ecm-tol", type=float, default=1e-4)
    parser.add_argument("--dual-tol", type=float, default=None, help="Gappy basis tolerance (default: --pod-tol)")
    parser.add_argument("--indicator", choices=("cumulated_plastic_strain", "stress"), default="cumulated_plastic_strain")
    parser.add_argument("--indicator-tol", type=float, default=2e-3,
                        help="trust threshold of the indicator (2e-3: u error ~1%% on the 35k-dof study)")
    parser.add_argument("--calibrate", action="store_true",
                        help="calibrated error bounds (leave-one-out); --indicator-tol is then a relative error, e.g. 0.05")
    parser.add_argument("--dense-training", action="store_true",
                        help="add the 6 loadings of the grid refined in traction (19 training loadings)")
    parser.add_argument("--greedy", type=int, default=0,
                        help="add this many training loadings, one at a time, each the candidate of largest error "
                             "indicator under the current model (one HF solve and one offline stage each)")
    parser.add_argument("--hf-workers", type=int, default=2,
                        help="one-rank HF solves at a time (1 for meshes whose solve needs half the memory)")
    parser.add_argument("--no-far", action="store_true",
                        help="test on the 4 loadings inside the training box only (not the 6 FAR ones: 6 HF solves less)")
    parser.add_argument("--small", action="store_true",
                        help="4 training loadings and 1 test loading (SMALL_TRAINING, SMALL_TEST): for large meshes")
    parser.add_argument("--out", default=str(ROOT / "out" / "rom_plate"))
    args = parser.parse_args()
    out = Path(args.out)
    for sub in ("train", "test"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    times = np.linspace(0.0, 2.0, args.increments + 1).round(6).tolist()

    mesh_path = out / "plate.msh"
    if not mesh_path.exists():
        plate_with_holes(mesh_size=args.mesh_size, path=mesh_path, **PLATE)
    from structrom.rom.fem.io import read_mesh

    mesh = read_mesh(mesh_path)
    print(f"rom_plate: mesh {mesh.n_dofs} dofs, {mesh.n_elements} C3D10 elements")

    training = SMALL_TRAINING if args.small else TRAINING + (DENSE if args.dense_training else [])
    tests, far = (SMALL_TEST, []) if args.small else (TEST, [] if args.no_far else FAR)
    jobs = [("train", f"train_{i}", p) for i, p in enumerate(training)] + \
           [("test", f"test_{i}", p) for i, p in enumerate(tests)] + [("test", f"far_{i}", p) for i, p in enumerate(far)]
    t0 = time.perf_counter()
    hf_seconds = run_hifi_jobs(jobs, out, times, args.solver, workers=args.hf_workers)  # one-rank HF solves
    print(f"rom_plate: {len(jobs)} HF solves ready ({time.perf_counter() - t0:.0f} s this run)")
    settings = OfflineSettings(args.pod_tol, args.ecm_tol, args.dual_tol, args.indicator, args.indicator_tol,
                               args.calibrate)

    def offline(files: list[str]) -> float:
        return run_offline(out, files, args.ranks, settings)

    from structrom.rom.hifi.config import load_config
    from structrom.rom.online import OnlineSolverError, ReducedModel

    files = [f"train/train_{i}.h5" for i in range(len(training))]
    offline_s = offline(files)
    model = ReducedModel.load(out / "model.h5")
    candidates, greedy = list(CANDIDATES), []
    (out / "greedy").mkdir(exist_ok=True)
    for k in range(args.greedy):  # indicator-driven enrichment, reproducible (cached HF runs are reused)
        from structrom.rom.progress import bar

        worst = []
        progress = bar(len(candidates), f"greedy round {k + 1}/{args.greedy}: indicator of the candidates", "loading")
        for c in candidates:
            progress.update(1)
            run_cfg = out / "candidate.toml"
            run_cfg.write_text(HIFI.format(times=times, x=c[1], intensity=c[2], traction=c[0], ksp="preonly",
                                           pc="lu", petsc="", out="candidate.h5"))
            try:
                worst.append(float(model.solve(load_config(run_cfg).build_loading(), extrapolate=True).indicator.max()))
            except OnlineSolverError:  # the reduced model cannot follow this loading: the first to enrich
                worst.append(np.inf)
        progress.close()
        c = candidates.pop(int(np.argmax(worst)))
        print(f"rom_plate: greedy {k + 1}/{args.greedy}: indicator {max(worst):.2e} at {c}: HF solve, new model",
              flush=True)
        name = f"candidate_{CANDIDATES.index(c)}"  # cached by candidate, so runs may be computed ahead
        hf_seconds[name] = run_hifi(out / "greedy", name, c, times, args.solver)
        greedy.append(("greedy", name, c))
        files.append(f"greedy/{name}.h5")
        offline_s = offline(files)
        model = ReducedModel.load(out / "model.h5")
    n_train = len(training)
    training = training + [g[2] for g in greedy]
    jobs = jobs[:n_train] + greedy + jobs[n_train:]
    rows = []
    for kind, name, params in jobs:
        cfg = load_config(out / f"{name}.toml")
        loading = cfg.build_loading()
        model.solve(loading, extrapolate=True)  # warm-up (caches, first-call overheads)
        t = time.perf_counter()
        res = model.solve(loading, extrapolate=True)
        online = time.perf_counter() - t
        with h5py.File(out / kind / f"{name}.h5", "r") as f:
            u = f["fields/displacement"][()]
            p = f["fields/cumulated_plastic_strain"][()]
        ur = res.displacement(increment=None)
        pr = np.stack([res.dual_field("cumulated_plastic_strain", k) for k in range(len(res.times))])
        err_u = float(np.linalg.norm(ur - u) / np.linalg.norm(u))
        err_p = float(np.linalg.norm(pr - p) / max(np.linalg.norm(p), 1e-300))
        rows.append({"name": name, "params": params, "error_u": err_u, "error_p": err_p,
                     "indicator": float(res.indicator.max()), "online_s": online, "hf_s": hf_seconds[name],
                     "speedup": hf_seconds[name] / online, "newton": int(res.newton_iterations.sum()),
                     "trusted": bool(res.trusted.all())})
    with h5py.File(out / "model.h5", "r") as f:
        prov = json.loads(f.attrs["provenance"])
    test_rows = [r for r in rows if not r["name"].startswith(("train", "candidate"))]
    rho = spearman(np.array([r["indicator"] for r in test_rows]), np.array([r["error_u"] for r in test_rows]))
    rho_p = spearman(np.array([r["indicator"] for r in test_rows]), np.array([r["error_p"] for r in test_rows]))
    lines = [f"Mesh: {mesh.n_dofs} dofs ({mesh.n_elements} C3D10); {len(training)} training loadings x "
             f"{args.increments} increments; POD {prov['pod']['modes']} modes; ECM {prov['ecm']['points']} points "
             f"(+{prov['ecm']['dual_points']} dual); offline {offline_s:.0f} s on {args.ranks} ranks; "
             f"indicator: {args.indicator} Gappy residual", "",
             "| loading | traction, x, intensity | u error | p error | indicator | trusted | HF [s] | online [ms] | speedup |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['params']} | {r['error_u']:.2e} | {r['error_p']:.2e} | "
                     f"{r['indicator']:.2e} | {'yes' if r['trusted'] else 'no'} | {r['hf_s']:.1f} | {1e3 * r['online_s']:.1f} | {r['speedup']:.0f} |")
    lines += ["", f"Spearman(indicator, u error) over the {len(test_rows)} test loadings: {_rho(rho)}; "
                  f"Spearman(indicator, p error): {_rho(rho_p)}"]
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({"rows": rows, "spearman": rho, "spearman_p": rho_p}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
