"""The ``structrom import`` and ``structrom predict`` commands: third-party decks and results (CalculiX, Ansys) into
training cases, and a CalculiX deck answered by a reduced model (:mod:`structrom.api.cli` dispatches to them)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


# -- structrom import <format> ... (third-party decks and results -> training cases) ----------------------
def _import(args: argparse.Namespace, rest: list[str], watch=lambda comm: None) -> int:
    """``watch(comm)``: called by every rank once MPI is up, when the runs are solved here (the failure
    handshake of :mod:`structrom.api.cli`, which runs as ``__main__``)."""
    hf = args.format == "calculix" and (args.solve == "hf" or args.solve is None and _decks_only(args.runs))  # runs solved here
    if rest and not (hf and rest[0].startswith("-") and not rest[0].startswith("--")):
        hint = " (PETSc options are taken when the runs are solved: --solve hf)" if args.format == "calculix" else ""
        print(f"structrom: error: unknown arguments {rest}{hint}", file=sys.stderr)
        return 2
    from structrom.rom.adapters.calculix import CalculixError
    from structrom.rom.adapters.calculix_import import import_calculix
    from structrom.rom.config import ConfigError
    from structrom.rom.hifi.config import load_solver_table

    units = None
    if args.units:
        try:
            units = dict(item.split("=", 1) for item in args.units.split(","))
        except ValueError:
            print(f"structrom: error: --units {args.units!r}: expected 'length=mm,force=N,stress=MPa,mass=t'",
                  file=sys.stderr)
            return 2
    other = "ansys" if args.format == "calculix" else "calculix"
    given = [f"--{name.replace('_', '-')}" for name in _OPTIONS_OF[other] if getattr(args, name)]
    if given:  # (an option the format does not read is refused, never dropped)
        print(f"structrom: error: import {args.format} reads no {', '.join(given)} (an option of import {other}); "
              "leave it out", file=sys.stderr)
        return 2
    if args.format == "ansys":
        return _import_ansys(args, units)
    if len(args.inputs) != 1 or not args.runs:
        print("structrom: error: import calculix takes one base deck and --runs DIR", file=sys.stderr)
        return 2
    if args.solve == "ccx" and _mpi_size() > 1:  # (every rank would run every deck and write the same files)
        if _mpi_rank() == 0:
            print("structrom: error: --solve ccx runs ccx once per deck in one process (ccx's threads: "
                  "OMP_NUM_THREADS or CCX_NPROC_EQUATION_SOLVER): run the import without mpirun", file=sys.stderr)
        return 2
    if args.ccx_timeout is not None and not args.ccx_timeout > 0:
        print(f"structrom: error: --ccx-timeout {args.ccx_timeout:g}: expected seconds > 0", file=sys.stderr)
        return 2
    if args.ccx_timeout is not None and args.solve != "ccx":
        print("structrom: error: --ccx-timeout bounds the ccx runs of --solve ccx: leave it out, or give --solve ccx",
              file=sys.stderr)
        return 2
    comm = None
    if hf:  # HF solves: on the ranks of mpirun, with the PETSc options given
        from structrom.mpi.petsc import initialize

        initialize(rest)
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        watch(comm)
    rank0 = comm is None or comm.Get_rank() == 0
    try:
        if args.solver and not hf:
            raise CalculixError(f"--solver {args.solver}: the HF solver's [solver] table, and " +
                                ("ccx reads its controls from the decks" if args.solve == "ccx" else
                                 "the runs' results are read, nothing is solved") + ": leave it out, or give --solve hf")
        solver = load_solver_table(args.solver).model_dump() if args.solver else None
        result = import_calculix(args.inputs[0], args.runs, args.out, parameters=args.parameters, units=units,
                                 log=_print_flushed if rank0 else (lambda *a: None), solve=args.solve, solver=solver,
                                 comm=comm, ccx_timeout=args.ccx_timeout)
    except (CalculixError, ConfigError, ValueError) as exc:  # ValueError: pydantic's (--units), materials, loadings
        for line in str(exc).splitlines() if rank0 else []:
            print(f"structrom: error: {line}", file=sys.stderr)
        return 2
    if result is None:  # (a rank other than 0 of mpirun: rank 0 reports)
        return 0
    ranges = ", ".join(f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in result.family["ranges"].items()) or "none"
    print(f"imported {len(result.snapshots)} runs into {result.out}: mesh {result.mesh_file.name}, snapshots "
          f"train/*.h5, family.json (parameters: {ranges}; temperature envelope "
          f"{result.family['temperature_envelope']['min']:g}..{result.family['temperature_envelope']['max']:g})")
    for item in result.family["ignored"]:
        print(f"  ignored: *{item['keyword']}, {item['where']}: {item['why']}")
    print(f"next: structrom offline {result.offline_config}")
    return 0


#: The options of ``structrom import`` that one format reads (refused for the other).
_OPTIONS_OF = {"calculix": ("runs", "parameters", "solve", "solver", "ccx_timeout"), "ansys": ("material", "fixed", "cdb")}


def _decks_only(runs: str | None) -> bool:
    """Whether the runs directory holds run decks and no results at all (they are solved by the HF solver)."""
    from structrom.rom.adapters.calculix import CalculixError
    from structrom.rom.adapters.calculix_import_runs import find_runs

    try:
        return runs is not None and not any(results for _, _, results in find_runs(runs))
    except CalculixError:  # (reported by the import)
        return False


def _mpi_size() -> int:
    """The ranks of the ``mpirun`` this process is one of (Open MPI's, MPICH's or Slurm's variables; 1 alone)."""
    import os

    return max(int(os.environ.get(k, "1") or 1) for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"))


def _mpi_rank() -> int:
    import os

    return max(int(os.environ.get(k, "0") or 0) for k in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"))


def _print_flushed(line: str) -> None:
    print(line, flush=True)


def _import_ansys(args: argparse.Namespace, units: dict | None) -> int:
    import tomllib

    from structrom.rom.adapters.ansys import AnsysError

    try:
        material = tomllib.loads(Path(args.material).read_text()) if args.material else None
        if material is not None and "law" in material:
            material = material["law"]
        fixed = dict(item.split(":", 1) for item in args.fixed) if args.fixed else None
    except (OSError, ValueError) as exc:
        print(f"structrom: error: {exc} (--fixed NAME:XYZ, --material law.toml)", file=sys.stderr)
        return 2
    try:
        from structrom.rom.adapters.ansys_import import import_ansys

        # (every call into ansys-mapdl-reader runs in a process of its own: a native crash on a damaged record is
        # an AnsysError naming the file and the record)
        family = import_ansys(args.inputs, args.out, material=material, fixed=fixed, units=units, cdb=args.cdb,
                              log=_print_flushed)
    except (AnsysError, ImportError, ValueError) as exc:
        for line in str(exc).splitlines():
            print(f"structrom: error: {line}", file=sys.stderr)
        return 2
    ranges = ", ".join(f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in family["ranges"].items()) or "none"
    print(f"imported {len(family['runs'])} result files into {args.out}: parameters {ranges}; fixed "
          f"{family['fixed']}; forces {family['forces']}; pressures {family['pressures']}")
    print(f"next: structrom offline {Path(args.out) / 'offline.toml'}")
    return 0


def _add_import_parser(sub) -> None:
    p = sub.add_parser("import", help="turn third-party runs (CalculiX decks and results, Ansys .rst) into training "
                                      "cases",
                       description="turn third-party runs into training cases (OUT/train/*.h5, OUT/offline.toml). "
                                   "calculix: each run's ccx results (.frd/.dat) are read; runs given as decks only "
                                   "(no run of --runs has results, or --solve hf) are solved by the in-house HF "
                                   "solver, under `mpirun -n P` on all P ranks, with the PETSc options that follow the "
                                   "arguments (as for `structrom hifi`); with --solve ccx every run deck is run "
                                   "through CalculiX's ccx in OUT/ccx/<run>/ and its results imported; a family "
                                   "mixing runs with and without results is refused naming them",
                       epilog="examples: structrom import calculix runs/r00.inp --runs runs --out fam; "
                              "mpirun -n 4 structrom import calculix base.inp --runs decks --out fam --solve hf "
                              "-ksp_type preonly -pc_type lu -pc_factor_mat_solver_type mumps; "
                              "OMP_NUM_THREADS=4 structrom import calculix base.inp --runs decks --out fam --solve ccx")
    p.add_argument("format", choices=["calculix", "ansys"], help="the solver the decks and results come from")
    p.add_argument("inputs", nargs="+", help="calculix: the base deck (.inp: mesh, sets, materials, boundary "
                                             "conditions); ansys: one static .rst per training loading")
    p.add_argument("--runs", help="calculix: directory of runs: <name>.inp (with a *STEP) and <name>.frd and/or "
                                  "<name>.dat beside it; runs given as decks only (no run has results) are solved by "
                                  "the in-house HF solver, as with --solve hf (--solve ccx: run through ccx)")
    p.add_argument("--solve", choices=["hf", "ccx"],
                   help="calculix: solve every run deck, whether or not results are beside it (they are then not "
                        "read). hf: the in-house HF solver (`structrom hifi`); each solve uses all ranks of `mpirun -n "
                        "P structrom import ...`; PETSc options may follow, as for `structrom hifi` (e.g. -ksp_type "
                        "preonly -pc_type lu); every deck is checked before the first solve. ccx: CalculiX's ccx "
                        "(on PATH; e.g. apt-get install calculix-ccx) runs each deck as a flat deck in "
                        "OUT/ccx/<run>/ (nothing is written beside the decks) with the output requests the import "
                        "reads (*NODE FILE U, *EL PRINT S, E, PEEQ) in place of the deck's own, on "
                        "CCX_NPROC_EQUATION_SOLVER (else OMP_NUM_THREADS, else 1) threads; not under mpirun")
    p.add_argument("--ccx-timeout", type=float, metavar="SECONDS",
                   help="calculix, with --solve ccx: stop a ccx run after SECONDS and refuse the import naming the "
                        "run (default: no limit)")
    p.add_argument("--solver", metavar="SOLVER.toml",
                   help="calculix, with --solve hf (or decks only): a TOML file of the HF configuration's [solver] "
                        "table (newton_rtol, newton_max_iterations, max_cutbacks, [solver.linear] ...; see "
                        "`structrom hifi`'s configuration) for every solve (default: the HF solver's settings)")
    p.add_argument("--material", help="ansys: TOML law table (default: the isotropic elastic material of the .rst)")
    p.add_argument("--fixed", action="append", metavar="NAME:XYZ",
                   help="ansys: a node component and its fixed directions, e.g. CLAMP:XYZ; repeat the flag for "
                        "several (default: the .rst's D records)")
    p.add_argument("--cdb", action="append", metavar="RUN.cdb",
                   help="ansys: the run's archive (CDWRITE) whose SFE/SFEBLOCK pressures the run carries; one per "
                        ".rst in the same order (repeat the flag), or one for all runs")
    p.add_argument("--parameters", help="calculix: CSV 'run,<parameter>,...' (default: detected from the runs' decks)")
    p.add_argument("--out", required=True, help="output directory (mesh.inp, train/*.h5, offline.toml, family.json)")
    p.add_argument("--units", help="units of the decks, e.g. 'length=mm,force=N,stress=MPa,mass=t' (default SI)")


# -- structrom predict MODEL --deck NEW.inp --out DIR ------------------------------------------------------
def _predict(args: argparse.Namespace, rest: list[str]) -> int:
    if rest:
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    from structrom.rom.adapters.calculix import CalculixError
    from structrom.rom.adapters.calculix_predict import predict_deck
    from structrom.rom.loading import LoadingError

    try:
        result, loading, files = predict_deck(args.model, args.deck, args.out, extrapolate=args.extrapolate)
    except (CalculixError, LoadingError) as exc:
        for line in str(exc).splitlines():
            print(f"structrom: error: {line}", file=sys.stderr)
        return 2
    import numpy as np

    trusted = bool(result.trusted.all())
    print(f"{args.deck}: {result.n_increments} increments to t = {loading.times[-1]:g}; indicator max "
          f"{float(np.nanmax(result.indicator)):.3g} ({'trusted' if trusted else 'NOT trusted'} at every increment)")
    for w in result.warnings:
        print(f"  warning: {w}")
    for f in files:
        if f.suffix in (".frd", ".pvd"):
            print(f"wrote {f}")
    print(f"wrote {len(files) - 2} VTU files ({files[1].name} ...)")
    if result.reactions:  # prescribed displacements: the reaction resultants a test rig measures
        from structrom.rom.atomic import atomic_write_text

        keys = sorted(result.reactions)
        path = Path(args.out) / f"{files[0].stem}_reactions.csv"
        rows = np.column_stack([result.times] + [result.reactions[k] for k in keys])
        atomic_write_text(path, "time," + ",".join(keys) + "\n" +
                          "".join(",".join(f"{v:.9g}" for v in row) + "\n" for row in rows))
        print(f"wrote {path} (reaction resultants on the prescribed sets)")
    return 0


def _add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="answer a CalculiX deck of a model's family with the reduced model "
                                       "(.frd and VTU output)")
    p.add_argument("model", help="reduced model file (.h5, from `structrom offline`)")
    p.add_argument("--deck", required=True, help="CalculiX deck (.inp) of the model's mesh, sets and loads")
    p.add_argument("--out", required=True,
                   help="output directory: <deck>.frd, <deck>_0000.vtu ... (one per increment), <deck>.pvd")
    p.add_argument("--extrapolate", action="store_true",
                   help="answer a deck outside the training family anyway (warnings name what is outside)")
