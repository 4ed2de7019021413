"""Separated (EIM) model of a thermo-elastic plate from stiffness matrices exported by CalculiX.

Plate ``100 x 40 x 10`` mm, structured C3D10 box (``36 x 14 x 4`` cells, 6 tetrahedra each: 57,159 dofs, 56,376
free), clamped on ``x = 0``, 1 MPa pressure on ``z = 10`` (applied as the consistent nodal forces, ccx
``*CLOAD``). Young's modulus depends on temperature (table on 30 C steps of ``200 - 100 ((T - 20) / 780)^1.5`` GPa),
nu = 0.3, no thermal expansion. Temperature: a Gaussian hot spot ``T = 20 + I exp(-|x - c|^2 / (2 * 20^2))``,
``c = (x_c, 20, 5)``, parameters ``mu = (intensity I, x_center x_c)`` in ``[300, 700] C x [30, 70] mm``.
C3D10 because ccx evaluates ``E(T)`` at C3D10 integration points from the nodal temperatures with the shape
functions, as :class:`structrom.rom.eim_entries.StiffnessEntries` does (C3D8: ccx takes the element mean).

Stages (each cached in ``--workdir``):

1. ``export``: for every training mu (``4 x 6`` grid) and 4 validation mu a ccx deck with the temperature as
   ``*INITIAL CONDITIONS`` and a ``*FREQUENCY, SOLVER=MATRIXSTORAGE`` step
   (:func:`~structrom.rom.adapters.calculix.write_matrix_deck`); ccx writes ``job.sti`` / ``job.dof`` (the ``.mas``
   is deleted); the load vector in ccx's row order (``load.mtx``); for every held-out mu (5, random) a ccx
   ``*STATIC`` run (``*CLOAD`` of the same load, ``*NODE PRINT U``);
2. ``offline``: ``mpirun -n P structrom offline separated.toml`` for ``P`` in ``--ranks`` (model files
   ``model_P<P>.h5``) and the comparison of the models (selected entries, reduced matrices);
3. ``evaluate``: the model's answers at the held-out mu against ccx's static solutions (relative displacement
   error in the energy norm of the estimator and in the Euclidean norm, error estimate / true error), the online
   time per query and ccx's time;
4. ``rest``: the same through the REST service: ``structrom serve`` on 127.0.0.1, the model published with the
   Python client (``PUT /v1/models/plate``: screened and validated), the held-out mu queried with
   ``client.solve("plate", parameters={...})``; the answer's reduced coordinates times the basis against ccx,
   its error estimate against the true error, the round-trip time per query against ccx's time.

    python examples/separated_thermoelastic.py                 # all stages, 57k dofs (offline ~25 min per rank count)
    python examples/separated_thermoelastic.py --quick         # 4,125 dofs (3,960 free), a few minutes
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import scipy.io  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from structrom.rom.adapters import calculix as ccx  # noqa: E402
from structrom.rom.fem.kernel import Discretization  # noqa: E402
from structrom.rom.fem.structured import box  # noqa: E402
from structrom.rom.loading import HotSpotTemperature  # noqa: E402
from structrom.rom.materials.elastic import LinearElastic  # noqa: E402
from structrom.rom.materials.tables import Table  # noqa: E402

LENGTHS = (100.0, 40.0, 10.0)
FULL_DIVISIONS = (36, 14, 4)  # 57,159 dofs
QUICK_DIVISIONS = (12, 5, 2)  # 4,125 dofs
_T = np.linspace(20.0, 800.0, 27)
E_TABLE = (_T, 200e3 - 100e3 * ((_T - 20.0) / 780.0) ** 1.5)  # MPa
PARAMETERS = {"intensity": (300.0, 700.0), "x_center": (30.0, 70.0)}
RADIUS = 20.0
PRESSURE = 1.0  # MPa on zmax
TEMPERATURE_TEMPLATE = {"type": "hot_spot", "center": ["x_center", LENGTHS[1] / 2, LENGTHS[2] / 2],
                        "radius": RADIUS, "intensity": "intensity", "reference": 20.0}


def law() -> LinearElastic:
    return LinearElastic(young=Table(*E_TABLE, name="young"), poisson=0.3)


def hot_spot(mu) -> HotSpotTemperature:
    return HotSpotTemperature(center=(float(mu[1]), LENGTHS[1] / 2, LENGTHS[2] / 2), radius=RADIUS,
                              intensity=float(mu[0]), reference=20.0)


def training_grid(n_intensity: int = 4, n_x: int = 6) -> np.ndarray:
    I, X = np.meshgrid(np.linspace(*PARAMETERS["intensity"], n_intensity), np.linspace(*PARAMETERS["x_center"], n_x),
                       indexing="ij")
    return np.column_stack([I.ravel(), X.ravel()])


def test_parameters(n: int = 5, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo = np.array([r[0] for r in PARAMETERS.values()])
    hi = np.array([r[1] for r in PARAMETERS.values()])
    return lo + (hi - lo) * rng.uniform(0.05, 0.95, size=(n, 2))


def make_problem(divisions):
    """``(mesh, nodal pressure forces (n_dofs,) in our numbering)``."""
    mesh = box(LENGTHS, divisions, "C3D10")
    f = Discretization(mesh).pressure_force(mesh.surface_set("zmax"), PRESSURE)
    return mesh, f


def _static_deck(path: Path, mesh, T: np.ndarray, f: np.ndarray) -> None:
    """The matrix-export deck of the same model with its step replaced by a linear ``*STATIC`` step under
    the nodal forces ``f`` (our numbering; free dofs only get loads, the clamp removes the others)."""
    ccx.write_matrix_deck(path, mesh, law(), fixed={"xmin": (0, 1, 2)}, temperature=T)
    text = path.read_text()
    export = "*STEP\n*FREQUENCY, SOLVER=MATRIXSTORAGE\n*END STEP\n"
    nz = np.flatnonzero(f)
    cload = [f"{i // 3 + 1}, {i % 3 + 1}, {f[i]:.13e}" for i in nz]
    step = ["*STEP", "*STATIC", "*CLOAD", *cload, "*NODE PRINT, NSET=Nall", "U", "*END STEP"]
    path.write_text(text.replace(export, "\n".join(step) + "\n"))


def validation_parameters(n: int = 4, seed: int = 11) -> np.ndarray:
    return test_parameters(n, seed)


def export(workdir: Path, divisions, train: np.ndarray, tests: np.ndarray, log=print,
           valid: np.ndarray | None = None) -> dict:
    """Stage 1 (cached): ccx matrix exports at ``train`` and ``valid`` (validation exports, not used for the
    model), the load vector, ccx static runs at ``tests``."""
    mesh, f = make_problem(divisions)
    fixed = np.zeros(mesh.n_dofs, bool)
    fixed[(3 * mesh.node_set("xmin")[:, None] + np.arange(3)).ravel()] = True
    f = np.where(fixed, 0.0, f)
    log(f"mesh: {mesh.n_elements} C3D10, {mesh.n_dofs} dofs ({int(fixed.sum())} clamped)")
    ccx_seconds = {}
    exports = [("train", j, mu) for j, mu in enumerate(train)]
    exports += [("valid", j, mu) for j, mu in enumerate(valid if valid is not None else [])]
    for k, (kind, j, mu) in enumerate(exports):
        d = workdir / kind / f"mu{j:02d}"
        if (d / "job.sti").exists() and (d / "job.dof").exists():
            continue
        d.mkdir(parents=True, exist_ok=True)
        ccx.write_matrix_deck(d / "job.inp", mesh, law(), fixed={"xmin": (0, 1, 2)},
                              temperature=hot_spot(mu)(1.0, mesh.points))
        run = ccx.run_ccx(d, "job", require=("sti", "dof"))
        (d / "job.mas").unlink(missing_ok=True)
        log(f"  export {k + 1}/{len(exports)} ({kind}) mu = {np.round(mu, 2).tolist()}: ccx {run.seconds:.1f} s")
    dofs = _read_dofs(workdir / "train" / "mu00" / "job.dof")
    ours = ccx.matrix_dofs_to_ours(dofs)
    load = workdir / "train" / "load.mtx"
    if not load.exists():
        scipy.io.mmwrite(str(load), f[ours].reshape(-1, 1), precision=17)
    for j, mu in enumerate(tests):
        d = workdir / "test" / f"mu{j:02d}"
        if (d / "u.npy").exists():
            ccx_seconds[j] = json.loads((d / "ccx.json").read_text())["seconds"]
            continue
        d.mkdir(parents=True, exist_ok=True)
        _static_deck(d / "job.inp", mesh, hot_spot(mu)(1.0, mesh.points), f)
        run = ccx.run_ccx(d, "job", require=("dat",))
        blocks = ccx.read_dat(run.dat)
        U = blocks[max(blocks)]["U"]
        u = np.zeros((mesh.n_nodes, 3))
        u[U.ids - 1] = U.values
        np.save(d / "u.npy", u)
        (d / "ccx.json").write_text(json.dumps({"seconds": run.seconds, "mu": mu.tolist()}))
        ccx_seconds[j] = run.seconds
        log(f"  static {j + 1}/{len(tests)} mu = {np.round(mu, 2).tolist()}: ccx {run.seconds:.1f} s")
    return {"mesh": mesh, "dofs": dofs, "ours": ours, "ccx_seconds": ccx_seconds}


def retime_ccx(workdir: Path, n_tests: int, log=print) -> dict:
    """Rerun the held-out ccx static solves (same decks) to time ccx under the current machine load."""
    seconds = {}
    for j in range(n_tests):
        d = workdir / "test" / f"mu{j:02d}"
        run = ccx.run_ccx(d, "job", require=("dat",))
        info = json.loads((d / "ccx.json").read_text())
        info["seconds"] = seconds[j] = run.seconds
        (d / "ccx.json").write_text(json.dumps(info))
        log(f"  ccx static {j + 1}/{n_tests}: {run.seconds:.1f} s")
    return seconds


def _read_dofs(path: Path) -> np.ndarray:
    lines = [ln.strip().partition(".") for ln in path.read_text().split()]
    return np.array([(int(a), int(c)) for a, _, c in lines], dtype=np.int64)


def write_config(workdir: Path, divisions, train: np.ndarray, output: str, *, pod_tolerance: float,
                 max_terms: int, entries: str = "fe_kernel", valid: np.ndarray | None = None) -> Path:
    """The ``structrom offline`` configuration of the separated model (``separated.toml``)."""
    from structrom.rom.config import write_toml

    mesh, _ = make_problem(divisions)
    deck = workdir / "mesh.inp"
    if not deck.exists():
        ccx.write_mesh_inp(deck, mesh)
    separated = {"format": "calculix", "parameter_names": list(PARAMETERS),
                 "parameter_ranges": [list(r) for r in PARAMETERS.values()], "rhs": "train/load.mtx",
                 "training": [{"mu": [float(v) for v in mu], "matrix": f"train/mu{j:02d}/job"}
                              for j, mu in enumerate(train)]}
    if valid is not None and len(valid):
        separated["validation"] = [{"mu": [float(v) for v in mu], "matrix": f"valid/mu{j:02d}/job"}
                                   for j, mu in enumerate(valid)]
    separated.update(eim={"max_terms": int(max_terms)}, basis={"tolerance": float(pod_tolerance)},
                     estimator={"reference": 0, "tolerance": 1e-3},
                     online={"entries": entries, "mesh": "mesh.inp",  # (the FE kernel's keywords: its own only)
                             **({"material": law().to_config(), "temperature": TEMPERATURE_TEMPLATE}
                                if entries == "fe_kernel" else {})})
    return write_toml(workdir / "separated.toml", {"kind": "separated", "separated": separated,
                                                   "output": {"file": output}})


def offline(workdir: Path, ranks: list[int], log=print) -> dict[int, float]:
    """Stage 2: ``mpirun -n P structrom offline`` per rank count (cached model files); wall seconds."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMPI_MCA_mpi_yield_when_idle="1")
    exe = Path(sys.executable).with_name("structrom")
    seconds = {}
    cfg = (workdir / "separated.toml").read_text()
    for P in ranks:
        out = workdir / f"model_P{P}.h5"
        if out.exists():
            continue
        toml = workdir / f"separated_P{P}.toml"
        toml.write_text(cfg.replace('file = "model.h5"', f'file = "model_P{P}.h5"'))
        t = time.perf_counter()
        proc = subprocess.run(["mpirun", "-n", str(P), "--oversubscribe", "--bind-to", "none", str(exe), "offline",
                               str(toml)], env=env, capture_output=True, text=True)
        seconds[P] = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"offline on {P} ranks failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        (workdir / f"offline_P{P}.log").write_text(proc.stdout)
        log(f"offline on {P} rank(s): {seconds[P]:.1f} s")
    return seconds


def compare_models(paths: list[Path]) -> dict:
    """Largest differences between model files built on different rank counts (selection, reduced data)."""
    import h5py

    ref = h5py.File(paths[0], "r")
    out = {"entries_identical": True, "parameters_identical": True, "A_red": 0.0, "b_red": 0.0, "modes": 0}
    for p in paths[1:]:
        with h5py.File(p, "r") as f:
            for key in ("separation/matrix/entry_rows", "separation/matrix/entry_cols"):
                out["entries_identical"] &= bool(np.array_equal(ref[key][()], f[key][()]))
            out["parameters_identical"] &= bool(np.array_equal(ref["separation/matrix/param_indices"][()],
                                                               f["separation/matrix/param_indices"][()]))
            for key in ("A_red", "b_red"):
                a, b = ref[f"reduced/{key}"][()], f[f"reduced/{key}"][()]
                if a.shape != b.shape:
                    out[key] = float("inf")
                else:
                    out[key] = max(out[key], float(np.abs(a - b).max() / np.abs(a).max()))
    out["modes"] = int(ref["reduced/A_red"].shape[1])
    out["terms"] = int(ref["reduced/A_red"].shape[0])
    ref.close()
    return out


def evaluate(workdir: Path, model_path: Path, tests: np.ndarray, ccx_seconds: dict, reps: int = 20, log=print) -> dict:
    """Stage 3: held-out queries against ccx's static solutions."""
    from structrom.rom.online import load_model

    t = time.perf_counter()
    model = load_model(model_path)
    t_load = time.perf_counter() - t
    from structrom.rom.offline.exported_operators import read_calculix_rows

    # the estimator's norm: X = A(mu_ref), the exported stiffness at the model's reference training parameter
    X = read_calculix_rows(workdir / "train" / f"mu{model.data.reference:02d}" / "job", len(model.dof_map), 0,
                           len(model.dof_map))
    rows = []
    for j, mu in enumerate(tests):
        u_ccx = np.load(workdir / "test" / f"mu{j:02d}" / "u.npy").ravel()[model.dof_map]
        res = model.solve(dict(zip(model.parameter_names, mu)))
        u = res.vector()
        e = u_ccx - u
        err_X = float(np.sqrt(e @ (X @ e)) / np.sqrt(u_ccx @ (X @ u_ccx)))
        err_2 = float(np.linalg.norm(e) / np.linalg.norm(u_ccx))
        true_abs = float(np.sqrt(e @ (X @ e)))
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            model.solve(dict(zip(model.parameter_names, mu)))
            times.append(time.perf_counter() - t)
        online = float(np.median(times))
        rows.append({"mu": [float(v) for v in mu], "err_X": err_X, "err_2": err_2,
                     "estimate": res.error_estimate, "effectivity": res.error_estimate / true_abs,
                     "indicator": res.indicator, "trusted": res.trusted, "online_s": online,
                     "ccx_s": ccx_seconds[j], "speedup": ccx_seconds[j] / online})
    return {"rows": rows, "load_s": t_load}


class LocalServer:
    """``structrom serve`` on a free 127.0.0.1 port with an empty models directory and a fresh API key (context
    manager: started, waited for ``/ready``, stopped)."""

    def __init__(self, models_dir: Path) -> None:
        import secrets
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url, self.key, self.models_dir = f"http://127.0.0.1:{self.port}", secrets.token_urlsafe(24), models_dir

    def __enter__(self) -> "LocalServer":
        import httpx

        self.models_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, STRUCTROM_API_KEYS=self.key)
        self.log = open(self.models_dir.parent / "server.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "structrom.api.cli", "serve", "--models", str(self.models_dir),
                                      "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                                      "--workers", "1"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(600):
            if self.proc.poll() is not None:
                raise SystemExit(f"the server stopped: see {self.log.name}")
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit("the server did not become ready in 60 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def evaluate_rest(workdir: Path, model_path: Path, tests: np.ndarray, ccx_seconds: dict, reps: int = 20,
                  log=print) -> dict:
    """Stage 4: the model published to a ``structrom serve`` process and queried through the REST client at the
    held-out mu: the answer's reduced coordinates times the basis against ccx's static solution, the answer's
    error estimate against the true error, the round-trip time per query (client to server and back) against
    ccx's time. The REST coordinates are also compared with the in-process solve."""
    import h5py

    from structrom.api.client import Client
    from structrom.rom.offline.exported_operators import read_calculix_rows
    from structrom.rom.online import load_model

    model = load_model(model_path)
    with h5py.File(model_path, "r") as f:
        V = f["basis/V"][()]
    X = read_calculix_rows(workdir / "train" / f"mu{model.data.reference:02d}" / "job", len(model.dof_map), 0,
                           len(model.dof_map))
    rows = []
    with LocalServer(workdir / "rest" / "models") as server, Client(server.url, api_key=server.key) as client:
        t = time.perf_counter()
        card = client.publish("plate", model_path)
        t_publish = time.perf_counter() - t
        log(f"published 'plate' ({card['kind']}, {card['sizes']['dofs']} rows, d = {card['sizes']['matrix_terms']}, "
            f"N = {card['sizes']['modes']}) in {t_publish:.2f} s (upload, screening, validation)")
        names = [q["name"] for q in card["parameters"]]
        for j, mu in enumerate(tests):
            query = dict(zip(names, (float(v) for v in mu)))
            r = client.solve("plate", parameters=query)
            u = V @ np.asarray(r["coordinates"])
            u_ccx = np.load(workdir / "test" / f"mu{j:02d}" / "u.npy").ravel()[model.dof_map]
            e = u_ccx - u
            true_abs = float(np.sqrt(e @ (X @ e)))
            same = np.array_equal(np.asarray(r["coordinates"]), model.solve(mu).coordinates)
            times, server_ms = [], []
            for _ in range(reps):
                t = time.perf_counter()
                server_ms.append(client.solve("plate", parameters=query)["timings_ms"]["total"])
                times.append(time.perf_counter() - t)
            online = float(np.median(times))
            rows.append({"mu": [float(v) for v in mu], "err_X": true_abs / float(np.sqrt(u_ccx @ (X @ u_ccx))),
                         "err_2": float(np.linalg.norm(e) / np.linalg.norm(u_ccx)), "estimate": r["error_estimate"],
                         "effectivity": r["error_estimate"] / true_abs, "indicator": r["indicator"],
                         "trusted": r["trusted"], "round_trip_s": online, "server_ms": float(np.median(server_ms)),
                         "ccx_s": ccx_seconds[j], "speedup": ccx_seconds[j] / online, "same_as_in_process": same})
    return {"rows": rows, "publish_s": t_publish}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small mesh (seconds)")
    p.add_argument("--workdir", default=None, help="default out/separated_thermoelastic[_quick]")
    p.add_argument("--ranks", default="1,2,3", help="rank counts of the offline runs")
    p.add_argument("--pod-tolerance", type=float, default=1e-5)
    p.add_argument("--max-terms", type=int, default=24)
    p.add_argument("--stage", choices=["all", "export", "offline", "evaluate", "rest"], default="all")
    p.add_argument("--retime-ccx", action="store_true", help="rerun ccx's static solves before evaluating, so "
                   "that ccx and the online queries are timed under the same machine load")
    a = p.parse_args()
    divisions = QUICK_DIVISIONS if a.quick else FULL_DIVISIONS
    workdir = Path(a.workdir or ("out/separated_thermoelastic" + ("_quick" if a.quick else "")))
    workdir.mkdir(parents=True, exist_ok=True)
    train, tests, valid = training_grid(), test_parameters(), validation_parameters()
    ranks = [int(r) for r in a.ranks.split(",")]
    t0 = time.perf_counter()
    data = export(workdir, divisions, train, tests, valid=valid)
    if a.stage == "export":
        return
    write_config(workdir, divisions, train, "model.h5", pod_tolerance=a.pod_tolerance, max_terms=a.max_terms,
                 valid=valid)
    if a.stage in ("all", "offline"):
        offline(workdir, ranks)
        cmp = compare_models([workdir / f"model_P{P}.h5" for P in ranks])
        print(f"rank counts {ranks}: selected entries identical {cmp['entries_identical']}, parameters identical "
              f"{cmp['parameters_identical']}, max rel. difference A_red {cmp['A_red']:.1e}, b_red {cmp['b_red']:.1e} "
              f"(d = {cmp['terms']}, N = {cmp['modes']})")
    if a.stage in ("all", "evaluate"):
        if a.retime_ccx:
            data["ccx_seconds"] = retime_ccx(workdir, len(tests))
        out = evaluate(workdir, workdir / f"model_P{ranks[0]}.h5", tests, data["ccx_seconds"])
        print(f"\nmodel loaded in {out['load_s']:.2f} s")
        print("\n| I [C] | x_c [mm] | error (energy) | error (Euclidean) | indicator | estimate / error | trusted "
              "| online [ms] | ccx [s] | speedup |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
        for r in out["rows"]:
            print(f"| {r['mu'][0]:.1f} | {r['mu'][1]:.1f} | {r['err_X']:.2e} | {r['err_2']:.2e} | {r['indicator']:.2e} "
                  f"| {r['effectivity']:.2f} | {r['trusted']} | {1e3 * r['online_s']:.2f} | {r['ccx_s']:.1f} | "
                  f"{r['speedup']:.0f} |")
    if a.stage in ("all", "rest"):
        if a.retime_ccx and a.stage == "rest":
            data["ccx_seconds"] = retime_ccx(workdir, len(tests))
        out = evaluate_rest(workdir, workdir / f"model_P{ranks[0]}.h5", tests, data["ccx_seconds"])
        print("\nthrough REST (structrom serve on 127.0.0.1, Python client; time = round trip of one query)")
        print("\n| I [C] | x_c [mm] | error (energy) | error (Euclidean) | indicator | estimate / error | trusted "
              "| round trip [ms] | server [ms] | ccx [s] | speedup | = in-process |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
        for r in out["rows"]:
            print(f"| {r['mu'][0]:.1f} | {r['mu'][1]:.1f} | {r['err_X']:.2e} | {r['err_2']:.2e} | {r['indicator']:.2e} "
                  f"| {r['effectivity']:.2f} | {r['trusted']} | {1e3 * r['round_trip_s']:.2f} | {r['server_ms']:.2f} "
                  f"| {r['ccx_s']:.1f} | {r['speedup']:.0f} | {r['same_as_in_process']} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
