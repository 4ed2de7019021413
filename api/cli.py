"""The ``structrom`` command.

    structrom hifi config.toml [-ksp_type preonly -pc_type lu ...]    HF solve (under mpirun for parallel)
    structrom offline config.toml                                      reduced model (under mpirun); kind =
                                                                       "separated" in the TOML: EIM-separated model;
                                                                       kind = "dictionary": as `structrom dictionary`
    structrom dictionary config.toml                                   dictionary of local reduced models and their
                                                                       classifier (ROM-net; under mpirun)
    structrom enrich MODEL --loadings FILE [--solver inhouse|calculix] [--config base.toml]
                                                                       HF solves where the model is not trusted,
                                                                       a new model version (under mpirun)
    structrom serve --models DIR [--config server.toml] [--port 8000]  REST service (no MPI, no PETSc)
    structrom report MODEL [--validation HF.h5 ...] --out DIR          plots (PNG, SVG) and validation table
    structrom import calculix BASE.inp --runs DIR --out DIR [--parameters params.csv]   training cases
    structrom import ansys RUN1.rst RUN2.rst ... --out DIR [--material law.toml] [--fixed NAME:XYZ]
    structrom predict MODEL --deck NEW.inp --out DIR [--extrapolate]   a deck answered by the model (.frd, VTU)

``--quiet`` (before or after the command) turns progress bars off; they are also off when stderr is
not a terminal.

Arguments after the configuration file that start with ``-`` are PETSc options. Known errors (bad
configuration, mesh, loading, material, solver failure) print one line per problem and exit with code 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

#: Seconds a failing rank waits for the other ranks to fail too (an error every rank raised, e.g. a bad
#: configuration: one message, exit code 2) before it stops them all (an error of this rank alone: the others
#: would wait forever in their next collective).
ALONE_AFTER_SECONDS = 10.0

#: A duplicate of MPI_COMM_WORLD for the failure handshake only (no message of the computation can match it),
#: made by the MPI commands once MPI is initialized.
_failure_comm = None


def _watch_failures(comm) -> None:
    """Called by every rank of an MPI command once MPI is up (collective): failures can then be told apart
    into shared ones and one rank's own (:func:`_failed_alone`)."""
    global _failure_comm
    if _failure_comm is None and comm.Get_size() > 1:
        _failure_comm = comm.Dup()


def _failed_alone() -> bool:
    """True when this rank failed and some other rank did not reach the failure handshake within
    :data:`ALONE_AFTER_SECONDS` (it is computing, or blocked in a collective that will never complete)."""
    if _failure_comm is None:
        return False
    request = _failure_comm.Ibarrier()
    deadline = time.monotonic() + ALONE_AFTER_SECONDS
    while not request.Test():
        if time.monotonic() > deadline:
            return True
        time.sleep(0.02)
    return False


def _hifi(args: argparse.Namespace, petsc_args: list[str]) -> int:
    from structrom.mpi.petsc import initialize

    initialize(petsc_args)
    from mpi4py import MPI

    _watch_failures(MPI.COMM_WORLD)
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi

    cfg = load_config(args.config)
    run_hifi(cfg, MPI.COMM_WORLD, inputs=[Path(args.config)])
    return 0


def _offline(args: argparse.Namespace, petsc_args: list[str]) -> int:
    from mpi4py import MPI

    _watch_failures(MPI.COMM_WORLD)
    from structrom.rom.offline.config import load_offline_config

    cfg = load_offline_config(args.config)
    if cfg.path(cfg.output.file).resolve() == Path(args.config).resolve():  # (same answer on every rank)
        from structrom.rom.config import ConfigError

        raise ConfigError(f"{args.config}: output.file is this configuration file and would overwrite it: choose "
                          "another output file")
    if cfg.kind == "dictionary":
        return _dictionary(args, petsc_args)
    if cfg.kind == "separated":
        from structrom.rom.offline.separated import run_separated_offline

        run_separated_offline(cfg, MPI.COMM_WORLD)
        return 0
    from structrom.rom.offline.pipeline import run_offline

    run_offline(cfg, MPI.COMM_WORLD)
    return 0


def _dictionary(args: argparse.Namespace, rest: list[str]) -> int:
    """The dictionary offline stage (clustering, local models, classifier); errors on one line, exit code 2."""
    from mpi4py import MPI

    from structrom.rom.offline.dictionary import main as dictionary_main

    _watch_failures(MPI.COMM_WORLD)
    if rest:
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    return dictionary_main([args.config])


def _enrich(args: argparse.Namespace, rest: list[str]) -> int:
    if rest:
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    import json

    from mpi4py import MPI

    from structrom.rom.offline.enrich import enrich, hifi_base_config, make_solver, read_loadings

    comm = MPI.COMM_WORLD
    _watch_failures(comm)
    loadings = read_loadings(args.loadings)
    solver = make_solver(args.solver, hifi_base_config(args.model, args.config), comm)
    res = enrich(args.model, loadings, solver, comm)
    if comm.Get_rank() == 0:
        from structrom.rom.model_file import load

        print(res.table(load(args.model).indicator_tolerance))
        print(f"enrich: {args.model} is version {res.version}; " + ", ".join(
            f"{k} {v:.2f} s" for k, v in res.seconds.items()))
        if args.json:
            print("ENRICH " + json.dumps(res.to_json()))
    return 0


def _serve(args: argparse.Namespace, rest: list[str]) -> int:
    if rest:
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    import logging

    import uvicorn

    from structrom.api.config import ConfigError, load_config
    from structrom.api.server import create_app, uvicorn_options

    overrides = {"host": args.host, "port": args.port, "models_dir": args.models, "keys_file": args.keys_file,
                 "max_request_bytes": args.max_request_bytes, "max_model_bytes": args.max_model_bytes,
                 "cache_models": args.cache_models, "cache_bytes": args.cache_bytes, "workers": args.workers,
                 "read_requires_key": True if args.read_requires_key else None}
    try:
        cfg = load_config(args.config, overrides)
        app = create_app(cfg)
    except ConfigError as exc:
        print(f"structrom: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=args.log_level,
                access_log=args.log_level in ("debug", "info"), **uvicorn_options(cfg))
    return 0


# -- report ------------------------------------------------------------------------------------------------------
def _add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="plots of a reduced model (PNG, SVG), against HF runs with --validation")
    p.add_argument("model", help="reduced model file (.h5, from `structrom offline`)")
    p.add_argument("--validation", nargs="+", default=[], metavar="HF.h5",
                   help="HF snapshot files of validation loadings on the model's mesh (`structrom hifi` output): "
                        "adds indicator against true error, response curves and a table")
    p.add_argument("--out", required=True, help="output directory (created)")


def _report(args: argparse.Namespace, rest: list[str]) -> int:
    if rest:
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    from pathlib import Path

    from structrom.rom.model_file import ModelFileError
    from structrom.rom.offline.snapshots import SnapshotError

    missing = [f for f in [args.model, *args.validation] if not Path(f).is_file()]
    if missing:
        print(f"structrom: error: file not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        from structrom.rom.report import table, write_report

        written, cases = write_report(args.model, args.out, args.validation)
    except (ModelFileError, SnapshotError) as exc:
        print(f"structrom: error: {exc}", file=sys.stderr)
        return 2
    if cases:
        print(table(cases))
    for path in written:
        print(f"report: wrote {path}")
    return 0


# -- structrom import <format> ... (third-party decks and results -> training cases) ----------------------
def _import(args: argparse.Namespace, rest: list[str]) -> int:
    if rest:
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    from structrom.rom.adapters.calculix import CalculixError
    from structrom.rom.adapters.calculix_import import import_calculix

    units = None
    if args.units:
        try:
            units = dict(item.split("=", 1) for item in args.units.split(","))
        except ValueError:
            print(f"structrom: error: --units {args.units!r}: expected 'length=mm,force=N,stress=MPa,mass=t'",
                  file=sys.stderr)
            return 2
    if args.format == "ansys":
        return _import_ansys(args, units)
    if len(args.inputs) != 1 or not args.runs:
        print("structrom: error: import calculix takes one base deck and --runs DIR", file=sys.stderr)
        return 2
    try:
        result = import_calculix(args.inputs[0], args.runs, args.out, parameters=args.parameters, units=units,
                                 log=print)
    except (CalculixError, ValueError) as exc:  # ValueError: pydantic's (e.g. --units), materials, loadings
        for line in str(exc).splitlines():
            print(f"structrom: error: {line}", file=sys.stderr)
        return 2
    ranges = ", ".join(f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in result.family["ranges"].items()) or "none"
    print(f"imported {len(result.snapshots)} runs into {result.out}: mesh {result.mesh_file.name}, snapshots "
          f"train/*.h5, family.json (parameters: {ranges}; temperature envelope "
          f"{result.family['temperature_envelope']['min']:g}..{result.family['temperature_envelope']['max']:g})")
    for item in result.family["ignored"]:
        print(f"  ignored: *{item['keyword']}, {item['where']}: {item['why']}")
    print(f"next: structrom offline {result.offline_config}")
    return 0


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
    files = [*args.inputs, *(args.cdb or [])]

    def crashed() -> AnsysError:
        return AnsysError(f"ansys-mapdl-reader stopped abnormally (a native crash) reading {', '.join(files)}: the file "
                          "of the last 'reading' line above is damaged or is not an Ansys result/archive; check that "
                          "Ansys opens it, or write it again")

    try:
        from structrom.rom.adapters.ansys import _reader
        from structrom.rom.adapters.ansys_import import import_ansys
        from structrom.rom.adapters.reader_process import run_isolated

        _reader()  # (a broken install named here, before the reader's process starts)
        # (the reader in a process of its own: a native crash on a damaged file becomes this error)
        family = run_isolated(import_ansys, args.inputs, args.out, material=material, fixed=fixed, units=units,
                              cdb=args.cdb, log=_print_flushed, crashed=crashed)
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
                                      "cases")
    p.add_argument("format", choices=["calculix", "ansys"], help="the solver the decks and results come from")
    p.add_argument("inputs", nargs="+", help="calculix: the base deck (.inp: mesh, sets, materials, boundary "
                                             "conditions); ansys: one static .rst per training loading")
    p.add_argument("--runs", help="calculix: directory of runs: <name>.inp with <name>.frd and/or <name>.dat")
    p.add_argument("--material", help="ansys: TOML law table (default: the isotropic elastic material of the .rst)")
    p.add_argument("--fixed", action="append", metavar="NAME:XYZ",
                   help="ansys: a node component and its fixed directions (default: the .rst's D records)")
    p.add_argument("--cdb", action="append", metavar="RUN.cdb",
                   help="ansys: the run's archive (CDWRITE) whose SFE/SFEBLOCK pressures the run carries; one per "
                        ".rst in the same order, or one for all runs")
    p.add_argument("--parameters", help="CSV 'run,<parameter>,...' (default: detected from the runs' decks)")
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
    p.add_argument("--out", required=True, help="output directory: <deck>.frd, <deck>_<k>.vtu, <deck>.pvd")
    p.add_argument("--extrapolate", action="store_true",
                   help="answer a deck outside the training family anyway (warnings name what is outside)")


def main(argv: list[str] | None = None) -> int:
    # One BLAS thread per process: MPI ranks and the server's solve threads already use the cores, and a
    # multithreaded OpenBLAS on small reduced systems is slower by orders of magnitude under load.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    parser = argparse.ArgumentParser(prog="structrom", description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars (one log line per stage remains); also accepted after the command")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hifi", help="run the high-fidelity solver on a TOML configuration")
    p.add_argument("config", help="TOML configuration file")
    p = sub.add_parser("offline", help="build a reduced model from HF snapshots (offline stage)")
    p.add_argument("config", help="TOML configuration file")
    p = sub.add_parser("dictionary", help="build a dictionary of local reduced models chosen by a classifier "
                                          "(ROM-net; the offline configuration plus a [dictionary] table)")
    p.add_argument("config", help="TOML configuration file")
    p = sub.add_parser("enrich", help="HF solves of the loadings a model does not trust, then a new model version")
    p.add_argument("model", help="reduced model file (<id>.h5); the old version is kept in versions/")
    p.add_argument("--loadings", required=True, help="JSON list of loadings or TOML [[loading]] tables")
    p.add_argument("--solver", choices=["inhouse", "calculix"], default="inhouse", help="HF solver")
    p.add_argument("--config", help="HF configuration of the model's problem (default: the one stored in the "
                                    "model's training snapshots)")
    p.add_argument("--json", action="store_true", help="also print the result as one JSON line 'ENRICH {...}'")
    p = sub.add_parser("serve", help="run the REST service (models registry and online queries)")
    p.add_argument("--config", help="server TOML configuration (api/config.py); flags override it")
    p.add_argument("--models", help="models directory (model files <id>.h5 and index.sqlite)")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--keys-file", help="file of API keys, one per line (writes need a key)")
    p.add_argument("--read-requires-key", action="store_true", help="reads need an API key too")
    p.add_argument("--max-request-bytes", type=int, help="largest JSON / upload body (413 above)")
    p.add_argument("--max-model-bytes", type=int, help="largest model upload (413 above)")
    p.add_argument("--cache-models", type=int, help="models kept loaded in memory (LRU count bound)")
    p.add_argument("--cache-bytes", type=int, help="bytes of loaded models kept in memory (LRU size bound)")
    p.add_argument("--workers", type=int, help="solver processes")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _add_report_parser(sub)
    _add_import_parser(sub)
    _add_predict_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet = "--quiet" in argv  # anywhere: before or after the command (PETSc has no such option)
    args, rest = parser.parse_known_args([a for a in argv if a != "--quiet"])
    if quiet:
        from structrom.rom.progress import QUIET_ENV

        os.environ[QUIET_ENV] = "1"
    try:
        commands = {"hifi": _hifi, "offline": _offline, "dictionary": _dictionary, "enrich": _enrich, "serve": _serve,
                    "report": _report, "import": _import, "predict": _predict}
        return commands[args.command](args, rest)
    except Exception as exc:
        from structrom.rom.errors import KNOWN_ERRORS

        known = isinstance(exc, KNOWN_ERRORS)
        if _failure_comm is not None and _failed_alone():
            # this rank's error alone: its message, then every rank stopped (MPI_Abort), not a hang
            rank = _failure_comm.Get_rank()
            if not known:
                import traceback

                traceback.print_exc()
            lines = str(exc).splitlines() or [type(exc).__name__]
            for line in lines if known else [f"{type(exc).__name__}: {lines[0]} (the traceback above)"]:
                print(f"structrom: error: rank {rank}: {line}", file=sys.stderr)
            print(f"structrom: error: rank {rank} failed alone: stopping all {_failure_comm.Get_size()} ranks",
                  file=sys.stderr, flush=True)
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(2 if known else 1)
        if not known:
            raise
        rank = sys.modules["mpi4py.MPI"].COMM_WORLD.Get_rank() if "mpi4py.MPI" in sys.modules else 0
        if rank == 0:
            for line in str(exc).splitlines():
                print(f"structrom: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
