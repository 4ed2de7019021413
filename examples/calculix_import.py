"""A reduced model from a user's own CalculiX decks and results: ``structrom import calculix`` end to end.

    .venv/bin/python examples/calculix_import.py           # 10 training + 5 unseen loadings, C3D20R bar
    .venv/bin/python examples/calculix_import.py --small   # 4 + 2 loadings on a coarser mesh (for the tests)
    .venv/bin/python examples/calculix_import.py --creep [--element C3D8]   # Norton creep decks (*CREEP, *VISCO)
    .venv/bin/python examples/calculix_import.py --cload   # + a lateral *CLOAD tip force F (sign varies): (I, P, F)
    .venv/bin/python examples/calculix_import.py --imposed [--small]  # cyclic imposed end deflection (D, R, I)

1. decks are written as a user would: the mesh in an ``*INCLUDE`` file (a structured 10 x 2 x 2 mm bar,
   C3D20R), a material with tabulated E(T) and yield curves at two temperatures (``*ELASTIC``,
   ``*PLASTIC``, ``*EXPANSION``), a clamp (``*BOUNDARY``), a pressure on the top face given per element
   face (``*DLOAD``, ``P2``), a Gaussian hot spot near the clamp given as nodal ``*TEMPERATURE`` values,
   and two steps: loading in 8 increments, then unloading in 2 with an ``*AMPLITUDE``. A loading is a
   pair (hot-spot intensity I [K], pressure P [MPa]);
2. ``ccx`` runs every deck (``.frd`` results; ``*EL PRINT`` also writes ccx's integration-point stress and
   equivalent plastic strain to the ``.dat`` as the reference);
3. one command imports the training runs: ``structrom import calculix base.inp --runs train --out model``
   (no hand-written material or loading configuration), then ``structrom offline model/offline.toml``;
4. the reduced model answers the unseen decks (``calculix_predict.loading_from_deck``: the deck's loads on the
   model's surfaces); displacement, stress and PEEQ at the integration points are compared with ccx's
   results of the same decks, imported as references (relative space-time 2-norms).

``--imposed``: the cyclic J2 decks of :mod:`calculix_decks` (a nonzero ``*BOUNDARY, AMPLITUDE=`` on the free
end: two and a half deflection cycles in six steps, isotropic tabulated ``*PLASTIC``); the model lifts the
prescribed end (``PRESCRIBED_1_Z``) and its reaction resultant is compared with ccx's ``RF`` total too.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from calculix_decks import (IMPOSED_TESTS, IMPOSED_TRAINING, MATERIAL, hot_spot,  # noqa: E402
                            write_imposed_deck)
from structrom.rom.adapters.calculix import read_dat, run_ccx, write_mesh_inp  # noqa: E402
from structrom.rom.fem.structured import box  # noqa: E402

TRAINING = [(300.0, 3.5), (450.0, 3.5), (300.0, 5.5), (450.0, 5.5), (375.0, 3.5), (375.0, 5.5),
            (300.0, 4.5), (450.0, 4.5), (375.0, 4.5), (340.0, 5.0)]
TESTS = [(340.0, 4.0), (410.0, 5.0), (360.0, 4.8), (430.0, 3.9), (320.0, 5.3)]
SMALL_TRAINING = [(300.0, 3.5), (450.0, 3.5), (300.0, 5.5), (450.0, 5.5)]
SMALL_TESTS = [(380.0, 4.4), (420.0, 5.1)]
# (I [K], P [MPa], F [N]): F = total lateral force (y) on the free end, given per node by *CLOAD on XMAX;
# training: the 8 corners, the 6 face centres and the centre of the box; unseen: interior points
CLOAD_TRAINING = [(i, p, f) for i in (300.0, 450.0) for p in (3.5, 5.5) for f in (-12.0, 12.0)] + [
    (300.0, 4.5, 0.0), (450.0, 4.5, 0.0), (375.0, 3.5, 0.0), (375.0, 5.5, 0.0), (375.0, 4.5, -12.0),
    (375.0, 4.5, 12.0), (375.0, 4.5, 0.0)]
CLOAD_TESTS = [(340.0, 4.0, 6.0), (410.0, 5.0, -8.0), (360.0, 4.8, 10.0), (430.0, 3.9, -3.0), (320.0, 5.3, -10.0)]

MATERIAL_CREEP = """*MATERIAL, NAME=STEEL
*ELASTIC
200000., 0.3, 20.
150000., 0.3, 500.
*EXPANSION, ZERO=20.
1.2E-5
*CREEP
1.E-20, 5., 0., 20.
3.E-19, 5., 0., 500.
*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL
"""


def write_creep_deck(path: Path, mesh, intensity: float, pressure: float) -> None:
    """A Norton creep deck: load and hot spot in a *STATIC step (no creep in ccx), then 100 s of creep
    (*VISCO, 25 increments)."""
    hot = hot_spot(mesh, intensity)
    faces = mesh.surface_sets["zmax"]
    out = ["*NODE FILE", "U, NT", "*EL PRINT, ELSET=EALL", "S, E, PEEQ"]
    lines = ["*HEADING", f"Creeping bar with a hot spot I={intensity:g} K and a pressure P={pressure:g} MPa",
             "*INCLUDE, INPUT=mesh.inp", MATERIAL_CREEP.rstrip(),
             "*INITIAL CONDITIONS, TYPE=TEMPERATURE", "NALL, 20.", "*BOUNDARY", "XMIN, 1, 3",
             "*STEP, INC=1000", "*STATIC, DIRECT", "0.5, 1.",
             "*DLOAD"] + [f"{e + 1}, P{f + 1}, {pressure!r}" for e, f in faces.tolist()]
    lines += ["*TEMPERATURE"] + [f"{i + 1}, {t:.6f}" for i, t in enumerate(hot)] + out + ["*END STEP"]
    lines += ["*STEP, INC=1000", "*VISCO, DIRECT, CETOL=1.E-3", "4., 100."] + out + ["*END STEP"]
    path.write_text("\n".join(lines) + "\n")


def write_deck(path: Path, mesh, intensity: float, pressure: float, force: float | None = None) -> None:
    """A user-style deck: mesh by *INCLUDE, material, clamp, *DLOAD per face, hot spot as *TEMPERATURE;
    with ``force``: a lateral *CLOAD on the free end's node set (``force`` N in all, the same at each node),
    unloaded with the pressure."""
    hot = hot_spot(mesh, intensity)
    faces = mesh.surface_sets["zmax"]
    lines = ["*HEADING", f"Bar with a hot spot I={intensity:g} K and a pressure P={pressure:g} MPa",
             "*INCLUDE, INPUT=mesh.inp", MATERIAL.rstrip(),
             "*INITIAL CONDITIONS, TYPE=TEMPERATURE", "NALL, 20.",
             "*BOUNDARY", "XMIN, 1, 3",
             "*AMPLITUDE, NAME=UNLOAD", "0., 1., 1., 0.",
             "** step 1: pressure and hot spot ramped up in 8 increments",
             "*STEP, INC=1000", "*STATIC, DIRECT", "0.125, 1.",
             "*DLOAD"] + [f"{e + 1}, P{f + 1}, {pressure!r}" for e, f in faces.tolist()]
    per_node = None if force is None else force / len(mesh.node_sets["xmax"])
    if per_node is not None:
        lines += ["*CLOAD", f"XMAX, 2, {per_node!r}"]
    lines += ["*TEMPERATURE"] + [f"{i + 1}, {t:.6f}" for i, t in enumerate(hot)]
    lines += ["*NODE FILE", "U, NT", "*EL FILE", "S, E, PEEQ", "*EL PRINT, ELSET=EALL", "S, E, PEEQ", "*END STEP",
              "** step 2: unloading in 2 increments",
              "*STEP, INC=1000", "*STATIC, DIRECT", "0.5, 1.",
              "*DLOAD, AMPLITUDE=UNLOAD"] + [f"{e + 1}, P{f + 1}, {pressure!r}" for e, f in faces.tolist()]
    if per_node is not None:
        lines += ["*CLOAD, AMPLITUDE=UNLOAD", f"XMAX, 2, {per_node!r}"]
    lines += ["*TEMPERATURE", "NALL, 20.", "*NODE FILE", "U, NT", "*EL FILE", "S, E, PEEQ",
              "*EL PRINT, ELSET=EALL", "S, E, PEEQ", "*END STEP"]
    path.write_text("\n".join(lines) + "\n")


def run_decks(directory: Path, mesh, cases, prefix: str, writer=write_deck) -> float:
    """Write and run the decks of ``cases`` (reusing results of unchanged decks); returns ccx seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    write_mesh_inp(directory / "mesh.inp", mesh, all_nset="NALL", all_elset="EALL")
    seconds = 0.0
    for i, case in enumerate(cases):
        name = f"{prefix}{i:02d}"
        deck = directory / f"{name}.inp"
        old = deck.read_text() if deck.exists() else None
        writer(deck, mesh, *case)
        if old == deck.read_text() and (directory / f"{name}.frd").exists():
            continue
        run = run_ccx(directory, name, timeout=600, require=("frd", "dat"))
        seconds += run.seconds
        (directory / f"{name}.seconds").write_text(f"{run.seconds!r}\n")
        print(f"   {name}: {' '.join(f'{v:g}' for v in case)}: ccx {run.seconds:.1f} s", flush=True)
    return seconds


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="coarser mesh, 4 training + 2 unseen loadings")
    parser.add_argument("--creep", action="store_true", help="Norton creep decks (*CREEP, *VISCO) instead of J2")
    parser.add_argument("--cload", action="store_true", help="add a lateral *CLOAD tip force F (12 x 3 x 3 bar, "
                        "15 training + 5 unseen loadings in (I, P, F))")
    parser.add_argument("--imposed", action="store_true", help="cyclic imposed end deflection decks (D, R, I): "
                        "15 training + 5 unseen loadings (--small: 5 + 2)")
    parser.add_argument("--element", default="C3D20R", choices=["C3D20R", "C3D8", "C3D10"], help="element type")
    parser.add_argument("--out", default=None, help="output directory (default out/calculix_import[_creep][_small])")
    args = parser.parse_args()
    name = "calculix_import" + ("_creep" if args.creep else "") + ("_cload" if args.cload else "") + ("_imposed" if args.imposed else "") + ("" if args.element == "C3D20R" else "_" + args.element)
    out = Path(args.out) if args.out else ROOT / "out" / (name + ("_small" if args.small else ""))
    divisions = (8, 2, 2) if args.small else (20, 4, 4)
    if args.element == "C3D8":
        divisions = tuple(2 * d for d in divisions)
    mesh = box((10.0, 2.0, 2.0), divisions, args.element)
    training, tests = (SMALL_TRAINING, SMALL_TESTS) if args.small else (TRAINING, TESTS)
    if args.cload:
        if args.creep or args.small:
            parser.error("--cload is the J2 family on its own mesh: without --creep and --small")
        mesh = box((10.0, 2.0, 2.0), (12, 3, 3), args.element)
        training, tests = CLOAD_TRAINING, CLOAD_TESTS
    if args.imposed:
        if args.creep or args.cload:
            parser.error("--imposed is its own J2 family: without --creep and --cload")
        mesh = box((10.0, 2.0, 2.0), (8, 2, 2) if args.small else (12, 3, 3), args.element)
        training, tests = IMPOSED_TRAINING, IMPOSED_TESTS
        if args.small:
            training, tests = [IMPOSED_TRAINING[k] for k in (0, 3, 5, 6, 14)], IMPOSED_TESTS[:2]
    print(f"1-2. {len(training)} training and {len(tests)} unseen {'creep ' if args.creep else ''}decks "
          f"({mesh.n_dofs} dofs, {mesh.n_elements} {args.element}), run by ccx")
    t0 = time.perf_counter()
    writer = write_creep_deck if args.creep else write_imposed_deck if args.imposed else write_deck
    run_decks(out / "train", mesh, training, "train", writer)
    run_decks(out / "test", mesh, tests, "test", writer)
    print(f"     ({time.perf_counter() - t0:.1f} s)")
    cli = [sys.executable, "-m", "structrom.api.cli"]
    base = out / "train" / "train00.inp"
    for cmd in ([*cli, "import", "calculix", str(base), "--runs", str(out / "train"), "--out", str(out / "model"),
                 "--units", "length=mm,force=N,stress=MPa,mass=t"],
                [*cli, "import", "calculix", str(base), "--runs", str(out / "test"), "--out", str(out / "reference"),
                 "--units", "length=mm,force=N,stress=MPa,mass=t"],
                [*cli, "offline", str(out / "model" / "offline.toml")]):
        print("3. " + " ".join(Path(c).name if i < 3 else c for i, c in enumerate(cmd)), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"   ({time.perf_counter() - t0:.1f} s)")

    import h5py

    from structrom.rom.adapters.calculix_predict import loading_from_deck
    from structrom.rom.offline.snapshots import read_training_case
    from structrom.rom.online import ReducedModel

    model = ReducedModel.load(out / "model" / "model.h5")
    print(f"4. reduced model: {model.n_modes} modes, {model.n_reduced_points} reduced points; unseen loadings:")
    cols = "| D [mm] | R | I [K] |" if args.imposed else "| I [K] | P [MPa] |" + (" F [N] |" if args.cload else "")
    cols += " max PEEQ (ccx) | displacement | stress | PEEQ |" + (" reaction | online [s] | ccx [s] |" if args.imposed else "")
    rows = [cols, "|" + " ---: |" * (cols.count("|") - 1)]
    worst = np.zeros(4)
    for i, case in enumerate(tests):
        path = out / "reference" / "train" / f"test{i:02d}.h5"
        with h5py.File(path, "r") as f:
            u_ref = f["fields/displacement"][()]
            s_ref = f["fields/stress"][()]
            p_ref = f["fields/cumulated_plastic_strain"][()]
        # the model answers the unseen deck itself (its loads on the model's surfaces, no ccx run needed)
        loading = loading_from_deck(out / "model", out / "test" / f"test{i:02d}.inp")
        assert np.allclose(loading.times, read_training_case(path, model_mesh(out)).loading.times)
        t0 = time.perf_counter()
        result = model.solve(loading)
        online = time.perf_counter() - t0
        errs = np.array([rel(result.displacement(increment=None), u_ref),
                         rel(result.dual_field("stress", None), s_ref),
                         rel(result.dual_field("cumulated_plastic_strain", None), p_ref)])
        row = "| " + " | ".join(f"{v:g}" for v in case) + f" | {p_ref.max():.4f} | {errs[0]:.2e} | {errs[1]:.2e} | {errs[2]:.2e} |"
        if args.imposed:  # the reaction resultant on the imposed end against ccx's RF total (*NODE PRINT, TOTALS=ONLY)
            dat = read_dat(out / "test" / f"test{i:02d}.dat")
            r_ccx = np.array([dat[t]["RF_TOTAL"].values[0, 2] for t in sorted(dat)])
            errs = np.append(errs, rel(result.reactions["PRESCRIBED_1_Z.z"], r_ccx))
            ccx_s = float((out / "test" / f"test{i:02d}.seconds").read_text())
            row += f" {errs[3]:.2e} | {online:.2f} | {ccx_s:.1f} |"
        worst[:len(errs)] = np.maximum(worst[:len(errs)], errs)
        rows.append(row)
    print("\n".join(rows))
    ok = worst[0] <= 0.01 and worst[1] <= 0.03 and worst[2] <= 0.03
    print(f"   worst: displacement {worst[0]:.2e} (target 1e-2), stress {worst[1]:.2e} (3e-2), PEEQ {worst[2]:.2e} "
          f"(3e-2){f', reaction {worst[3]:.2e}' if args.imposed else ''}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def model_mesh(out: Path):
    from structrom.rom.adapters.calculix import read_inp

    return read_inp(out / "model" / "mesh.inp")[0]


if __name__ == "__main__":
    sys.exit(main())
