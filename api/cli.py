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

from .cli_import import _add_import_parser, _add_predict_parser, _import, _predict

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


def _offline(args: argparse.Namespace, rest: list[str]) -> int:
    if rest:  # the offline stage takes no PETSc options: a misspelt flag must not pass silently
        print(f"structrom: error: unknown arguments {rest}", file=sys.stderr)
        return 2
    from mpi4py import MPI

    _watch_failures(MPI.COMM_WORLD)
    from structrom.rom.offline.config import load_offline_config

    cfg = load_offline_config(args.config)
    if cfg.path(cfg.output.file).resolve() == Path(args.config).resolve():  # (same answer on every rank)
        from structrom.rom.config import ConfigError

        raise ConfigError(f"{args.config}: output.file is this configuration file and would overwrite it: choose "
                          "another output file")
    if cfg.kind == "dictionary":
        return _dictionary(args, rest)
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
        _check_port_free(cfg.host, cfg.port)
        app = create_app(cfg)
    except ConfigError as exc:
        print(f"structrom: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=args.log_level,
                access_log=args.log_level in ("debug", "info"), **uvicorn_options(cfg))
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Refuse, before the solver processes start, an address another process listens on (uvicorn would start the
    service, then stop with an errno): :class:`~structrom.api.config.ConfigError` naming the fix."""
    import socket

    from structrom.api.config import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"host {host!r}: not an address of this machine ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}): another server may be running "
                              "there; choose another port with --port (or port in the configuration)") from None


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
    configs = [f for f in args.validation if Path(f).suffix.lower() == ".toml"]
    if configs:
        print(f"structrom: error: --validation {', '.join(configs)}: a configuration, not an HF run: give the .h5 "
              "snapshot file `structrom hifi` wrote (its output.file)", file=sys.stderr)
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


def main(argv: list[str] | None = None) -> int:
    # One BLAS thread per process: MPI ranks and the server's solve threads already use the cores, and a
    # multithreaded OpenBLAS on small reduced systems is slower by orders of magnitude under load.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    parser = argparse.ArgumentParser(
        prog="structrom", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reduced-order models for nonlinear structural mechanics: HF solves, offline stage, REST "
                    "service, third-party import.",
        epilog="commands:\n" + __doc__.split("\n\n", 1)[1].split("\n\n")[0].replace("``", "`")
               + "\n\n`structrom COMMAND --help` describes a command's options.")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars (one log line per stage remains); also accepted after the command")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hifi", help="run the high-fidelity solver on a TOML configuration",
                       description="run the high-fidelity solver (under mpirun for parallel); arguments after the "
                                   "configuration that start with '-' are PETSc options, e.g. -ksp_type preonly "
                                   "-pc_type lu -pc_factor_mat_solver_type mumps",
                       usage="structrom hifi [-h] config [PETSc options ...]")
    p.add_argument("config", help="TOML configuration file (format: rom/hifi/config.py)")
    p = sub.add_parser("offline", help="build a reduced model from HF snapshots (offline stage)")
    p.add_argument("config", help="TOML configuration file (format: rom/offline/config.py)")
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
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="server log level (default info; debug and info log every request)")
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
                    "report": _report, "import": lambda a, r: _import(a, r, _watch_failures), "predict": _predict}
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
