"""The ``structrom`` command.

    structrom hifi config.toml [-ksp_type preonly -pc_type lu ...]    HF solve (under mpirun for parallel)
    structrom offline config.toml                                      reduced model (under mpirun)
    structrom serve --models DIR [--config server.toml] [--port 8000]  REST service (no MPI, no PETSc)

Arguments after the configuration file that start with ``-`` are PETSc options. Known errors (bad
configuration, mesh, loading, material, solver failure) print one line per problem and exit with code 2.
"""
from __future__ import annotations

import argparse
import os
import sys


def _hifi(args: argparse.Namespace, petsc_args: list[str]) -> int:
    import petsc4py

    petsc4py.init([sys.argv[0], *petsc_args])
    from mpi4py import MPI

    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi

    cfg = load_config(args.config)
    run_hifi(cfg, MPI.COMM_WORLD)
    return 0


def _offline(args: argparse.Namespace, petsc_args: list[str]) -> int:
    from mpi4py import MPI

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    run_offline(load_offline_config(args.config), MPI.COMM_WORLD)
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


def main(argv: list[str] | None = None) -> int:
    # One BLAS thread per process: MPI ranks and the server's solve threads already use the cores, and a
    # multithreaded OpenBLAS on small reduced systems is slower by orders of magnitude under load.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    parser = argparse.ArgumentParser(prog="structrom", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hifi", help="run the high-fidelity solver on a TOML configuration")
    p.add_argument("config", help="TOML configuration file")
    p = sub.add_parser("offline", help="build a reduced model from HF snapshots (offline stage)")
    p.add_argument("config", help="TOML configuration file")
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
    args, rest = parser.parse_known_args(argv)
    try:
        return {"hifi": _hifi, "offline": _offline, "serve": _serve}[args.command](args, rest)
    except Exception as exc:
        # Imported only now: structrom.rom.errors imports the HF solver, and PETSc must first be initialized by
        # `hifi` with the command line's options (and the server never loads PETSc or MPI).
        from structrom.rom.errors import KNOWN_ERRORS

        if not isinstance(exc, KNOWN_ERRORS):
            raise
        rank = 0
        try:
            from mpi4py import MPI

            rank = MPI.COMM_WORLD.Get_rank()
        except ImportError:
            pass
        if rank == 0:
            for line in str(exc).splitlines():
                print(f"structrom: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
