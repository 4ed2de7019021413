"""End-to-end demo of the product on an embedded default (a few minutes on 2 cores).

    bash run.sh demo                        # from a fresh machine (installs what is missing first)
    python examples/demo.py [--mesh-size 5] [--increments 8] [--out out/demo] [--models out/models]

1. mesh the elastoplastic plate of examples/rom_plate.py (coarse: ~13k dofs) with gmsh;
2. HF training runs (`structrom hifi`, two one-rank solves at a time) for 9 loadings of the family
   (a 3 x 3 grid of traction peak x hot-spot intensity), one HF run of an unseen loading (the reference answer)
   and one of a loading far outside the family (for the report);
3. `mpirun -n 2 structrom offline` -> the reduced model with its calibrated error indicator (leave-one-out
   over the training loadings: trusted answers have relative errors below 10 % on that evidence), its plots
   (POD decay, reduced points);
4. the model published as <models>/plate.h5 (what the README's REST section serves);
5. `structrom serve` on 127.0.0.1 (a free port); the unseen loading queried over REST with the Python
   client (the equivalent curl is printed); its fields downloaded as VTU and XDMF for ParaView;
6. the REST answer compared with the HF run: a table of errors, indicator, trust flag and speedup;
7. `structrom report`'s plots (indicator against true error, response curves ROM vs HF); the server
   is stopped (also on errors and Ctrl-C).

HF runs are cached in --out (a second run reuses them). A first Ctrl-C lets running HF solves and the
offline stage finish, a second one stops them (examples/rom_plate.py's ChildProcesses).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import rom_plate as rp  # noqa: E402
from geometries import plate_with_holes  # noqa: E402

#: Training loadings (traction peak [MPa], hot-spot x [mm], intensity [degC]): the 3 x 3 grid of the family's box
#: (corners and centre first); the unseen loading lies inside it, on none of them.
TRAINING = [(-150.0, rp.X_SPOT, 200.0), (-150.0, rp.X_SPOT, 450.0), (-250.0, rp.X_SPOT, 200.0),
            (-250.0, rp.X_SPOT, 450.0), (-200.0, rp.X_SPOT, 325.0), (-150.0, rp.X_SPOT, 325.0),
            (-250.0, rp.X_SPOT, 325.0), (-200.0, rp.X_SPOT, 200.0), (-200.0, rp.X_SPOT, 450.0)]
#: The model's error indicator: leave-one-out calibrated bounds of the relative errors of displacement, stress and
#: cumulated plastic strain (docs/rom_accuracy.md); an answer is trusted while every bound is below this.
OFFLINE = rp.OfflineSettings(indicator_tol=0.1, calibrate=True)
INDICATOR_KINDS = {"calibrated_error_bound": "calibrated bound of the relative errors of u, stress, p",
                   "gappy_residual": "Gappy residual of p, no bound"}
UNSEEN = (-185.0, rp.X_SPOT, 290.0)
#: Validation only (report): outside the family (the hot spot moved from x = 40 to 60 mm), where
#: the indicator should say "do not trust".
FAR = (-200.0, 60.0, 325.0)
MODEL_ID = "plate"


def say(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


def loading_json(params: tuple, times: list[float]) -> dict:
    """The REST form of a loading of the family (the same as rom_plate.HIFI's TOML)."""
    traction, x, intensity = params
    return {"times": times,
            "temperature": {"type": "hot_spot", "center": [x, 20.0, 2.5], "radius": 10.0, "intensity": intensity,
                            "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]},
            "pressure": {"right": [[0.0, 0.0], [1.0, traction], [2.0, 0.0]]}}


def publish(model: Path, models_dir: Path) -> Path:
    """Copy the model file into the models folder atomically (the server picks it up at start)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    dest = models_dir / f"{MODEL_ID}.h5"
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(model, partial)
    os.replace(partial, dest)
    return dest


class Server:
    """``structrom serve`` on 127.0.0.1 (free port) as a child process in its own session; stopped on exit."""

    def __init__(self, models_dir: Path, log_path: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.models_dir, self.log_path = models_dir, log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        import httpx

        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "structrom.api.cli", "serve", "--models", str(self.models_dir),
                                      "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                                     cwd=ROOT, env=rp.mpi_env(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"structrom serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"structrom serve not ready after 60 s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __exit__(self, *exc) -> None:
        self.stop()
        say(f"server stopped (its log: {self.log_path})")


def relative(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - ref) / max(float(np.linalg.norm(ref)), 1e-300))


def query_and_compare(server: Server, params: tuple, times: list[float], hf_file: Path, hf_seconds: float,
                      out: Path) -> dict:
    """The unseen loading over REST (QoIs, then fields), compared with its HF run; writes ParaView files."""
    from structrom.api.client import Client
    from structrom.rom.voigt import von_mises

    loading = loading_json(params, times)
    body = {"loading": loading, "node_sets": ["right"]}
    say("the equivalent curl:\n  curl -s -X POST " + f"{server.url}/v1/models/{MODEL_ID}/solve "
        "-H 'Content-Type: application/json' \\\n       -d " + shlex.quote(json.dumps(body, separators=(",", ":"))))
    fields_dir = out / "rom_fields"
    fields_dir.mkdir(exist_ok=True)
    with Client(server.url) as client:
        client.solve(MODEL_ID, loading, node_sets=["right"])  # warm-up: the server loads the model once
        t0 = time.perf_counter()
        answer = client.solve(MODEL_ID, loading, node_sets=["right"])
        round_trip = time.perf_counter() - t0
        (out / "rest_answer.json").write_text(json.dumps(answer, indent=1))
        peak = int(np.argmax(np.interp(times[1:], [0.0, 1.0, 2.0], [0.0, 1.0, 0.0])))  # increment at t = 1
        h5 = client.fields(MODEL_ID, loading, fields_dir / "plate_rom_fields.h5", format="hdf5")
        vtu = client.fields(MODEL_ID, loading, fields_dir / "plate_rom_peak.vtu", format="vtu", increment=peak)
        xdmf_zip = client.fields(MODEL_ID, loading, fields_dir / "plate_rom_peak_xdmf.zip", format="xdmf",
                                 increment=peak)
    with zipfile.ZipFile(xdmf_zip) as z:
        z.extractall(fields_dir)
        xdmf = [fields_dir / n for n in z.namelist() if n.endswith(".xdmf")]
    xdmf_zip.unlink()
    with h5py.File(hf_file, "r") as f:
        u = f["fields/displacement"][()]
        p = f["fields/cumulated_plastic_strain"][()]
        vm = von_mises(f["fields/stress"][()]).max(axis=1)
    with h5py.File(h5, "r") as f:
        u_rom = f["displacement"][()]
        p_rom = f["dual/cumulated_plastic_strain"][()]
    solve_s = answer["timings_ms"]["solve"] / 1e3
    return {
        "answer": answer, "round_trip": round_trip, "solve_s": solve_s, "hf_s": hf_seconds,
        "error_u": relative(u_rom, u), "error_p": relative(p_rom, p),
        "error_vm_peak": abs(answer["max_von_mises"][peak] - vm[peak]) / vm[peak],
        "error_pmax_end": abs(answer["max_cumulated_plastic_strain"][-1] - p[-1].max()) / max(p[-1].max(), 1e-300),
        "hf_vm": vm, "hf_pmax": p.max(axis=1), "peak": peak,
        "paraview": [vtu, *xdmf],
    }


def print_table(c: dict, params: tuple) -> str:
    a = c["answer"]
    ind, tol = max(v for v in a["indicator"] if v is not None), a["indicator_tolerance"]
    rows = [("displacement, all nodes and increments (relative L2)", f"{c['error_u']:.2e}"),
            ("cumulated plastic strain p, all points and increments (relative L2)", f"{c['error_p']:.2e}"),
            (f"max von Mises at peak load ({a['max_von_mises'][c['peak']]:.1f} MPa ROM vs "
             f"{c['hf_vm'][c['peak']]:.1f} MPa HF)", f"{c['error_vm_peak']:.2e}"),
            (f"max p at the end ({a['max_cumulated_plastic_strain'][-1]:.3e} ROM vs {c['hf_pmax'][-1]:.3e} HF)",
             f"{c['error_pmax_end']:.2e}"),
            (f"error indicator ({INDICATOR_KINDS.get(a.get('indicator_kind'), a['indicator_quantity'])}, max over "
             f"increments; tolerance {tol:.0e})", f"{ind:.2e}"),
            ("trusted (indicator <= tolerance at every increment)", "yes" if a["trusted_all"] else "NO"),
            ("HF solve, 1 rank [s]", f"{c['hf_s']:.1f}"),
            ("reduced solve on the server [ms]", f"{1e3 * c['solve_s']:.1f}"),
            ("REST round trip from the Python client [ms]", f"{1e3 * c['round_trip']:.1f}"),
            ("speedup (HF solve / reduced solve)", f"{c['hf_s'] / c['solve_s']:,.0f}")]
    w = max(len(r[0]) for r in rows)
    lines = [f"Unseen loading: traction peak {params[0]} MPa, hot spot at x = {params[1]} mm, intensity "
             f"{params[2]} degC (inside the training box, not a training loading)", "",
             f"| {'quantity'.ljust(w)} | value |", f"| {'-' * w} | ---: |"]
    lines += [f"| {name.ljust(w)} | {value} |" for name, value in rows]
    text = "\n".join(lines)
    print("\n" + text + "\n", flush=True)
    return text


def main() -> int:
    from structrom.api.client import ApiError

    rp.CHILDREN.install()
    try:
        return _main()
    except KeyboardInterrupt:
        print("demo: interrupted (finished HF runs are cached and reused by the next run)", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as exc:
        print(f"demo: error: {' '.join(map(str, exc.cmd[:8]))} ... exited with {exc.returncode} (its output is above)",
              file=sys.stderr)
        return 1
    except (ApiError, RuntimeError, OSError) as exc:  # HF failure, server start, REST error: one clear line
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mesh-size", type=float, default=5.0, help="gmsh element size [mm] (5: ~13k dofs)")
    parser.add_argument("--increments", type=int, default=8, help="time increments per loading (2 s cycle)")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks of the offline stage")
    parser.add_argument("--out", default=str(ROOT / "out" / "demo"), help="work and output folder")
    parser.add_argument("--models", default=str(ROOT / "out" / "models"), help="models folder served by the REST demo")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    if shutil.which("mpirun") is None:
        print("demo: mpirun not found: run `bash run.sh demo` to install Open MPI", file=sys.stderr)
        return 1
    if args.quiet:
        os.environ["STRUCTROM_QUIET"] = "1"
    out, models_dir = Path(args.out).resolve(), Path(args.models).resolve()
    out.mkdir(parents=True, exist_ok=True)
    times = np.linspace(0.0, 2.0, args.increments + 1).round(6).tolist()
    t_start = time.perf_counter()

    say("[1/7] meshing the plate with holes (gmsh)")
    mesh_path = out / "plate.msh"
    stamp = out / "plate.msh.json"
    wanted = {"mesh_size": args.mesh_size, **rp.PLATE}
    if not (mesh_path.exists() and stamp.exists() and json.loads(stamp.read_text()) == json.loads(json.dumps(wanted))):
        for sub in ("train", "test"):  # cached HF runs belong to the old mesh
            shutil.rmtree(out / sub, ignore_errors=True)
        plate_with_holes(mesh_size=args.mesh_size, path=mesh_path, curvature_points=10, **rp.PLATE)
        stamp.write_text(json.dumps(wanted))
    from structrom.rom.fem.io import read_mesh

    mesh = read_mesh(mesh_path)
    say(f"      {mesh.n_dofs} dofs, {mesh.n_elements} C3D10 elements -> {mesh_path}")

    say(f"[2/7] HF runs: {len(TRAINING)} training loadings, 1 unseen, 1 far outside the family; "
        f"{args.increments} increments, two one-rank solves at a time")
    jobs = [("train", f"train_{i}", p) for i, p in enumerate(TRAINING)] + [("test", "unseen", UNSEEN),
                                                                           ("test", "far", FAR)]
    t0 = time.perf_counter()
    hf_seconds = rp.run_hifi_jobs(jobs, out, times, "mumps", log=say)
    say(f"      HF runs ready in {time.perf_counter() - t0:.0f} s (cached in {out}/train, {out}/test)")

    say(f"[3/7] offline stage: mpirun -n {args.ranks} structrom offline {out / 'offline.toml'}")
    offline_s = rp.run_offline(out, [f"train/train_{i}.h5" for i in range(len(TRAINING))], args.ranks,
                               OFFLINE, quiet=args.quiet)
    say(f"      model {out / 'model.h5'} in {offline_s:.0f} s; its plots in {out / 'model_plots'}")

    say("[4/7] publishing the model")
    published = publish(out / "model.h5", models_dir)
    say(f"      {published} (served as model id {MODEL_ID!r})")

    say("[5/7] structrom serve on 127.0.0.1, the unseen loading queried with structrom.api.client.Client")
    with Server(models_dir, out / "server.log") as server:
        say(f"      serving {server.url} (model card: {server.url}/v1/models/{MODEL_ID}, "
            f"page: {server.url}/v1/models/{MODEL_ID}/page)")
        cmp = query_and_compare(server, UNSEEN, times, out / "test" / "unseen.h5", hf_seconds["unseen"], out)
        say("[6/7] the REST answer against the HF run of the same loading")
        text = print_table(cmp, UNSEEN)
    (out / "comparison.md").write_text(text + "\n")

    say("[7/7] report: structrom report " + " ".join([str(published.relative_to(ROOT) if published.is_relative_to(ROOT)
                                                          else published), "--validation", "<HF runs>", "--out",
                                                         str(out / "report")]))
    from structrom.rom.report import table, write_report

    hf_files = [out / "test" / "unseen.h5", out / "test" / "far.h5"] + \
        [out / "train" / f"train_{i}.h5" for i in range(len(TRAINING))]
    written, cases = write_report(published, out / "report", hf_files, hf_seconds)
    print(table(cases), flush=True)

    print(f"\ndemo: done in {time.perf_counter() - t_start:.0f} s. Outputs:")
    outputs = [
        ("reduced model (served by the REST section of the README)", published),
        ("comparison table (above)", out / "comparison.md"),
        ("REST answer (JSON)", out / "rest_answer.json"),
        *[("ROM fields for ParaView", p) for p in cmp["paraview"]],
        ("ROM fields, every increment (HDF5)", out / "rom_fields" / "plate_rom_fields.h5"),
        ("HF run of the unseen loading for ParaView", out / "test" / "unseen.xdmf"),
        *[("plot", p) for p in written if p.suffix == ".png"],
        ("model plots of the offline stage", out / "model_plots"),
        ("validation table", out / "report" / "validation.md"),
        ("server log", out / "server.log"),
    ]
    for what, path in outputs:
        print(f"  {what:<58s} {path}" + ("" if Path(path).exists() else "  (missing)"))
    print(f"\nNext: structrom serve --models {models_dir} --port 8000   (then the README's curl), "
          f"or open http://127.0.0.1:8000/v1/models/{MODEL_ID}/page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
