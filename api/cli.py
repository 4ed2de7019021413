"""The ``structrom`` command.

    structrom hifi config.toml [-ksp_type preonly -pc_type lu ...]    HF solve (under mpirun for parallel)
    structrom offline config.toml                                      reduced model (under mpirun)

Arguments after the configuration file that start with ``-`` are PETSc options. Known errors (bad
configuration, mesh, loading, material, solver failure) print one line per problem and exit with code 2.
"""
from __future__ import annotations

import argparse
import sys


def _hifi(args: argparse.Namespace, petsc_args: list[str]) -> int:
    import petsc4py

    petsc4py.init([sys.argv[0], *petsc_args])
    from mpi4py import MPI

    from rom.hifi.config import load_config
    from rom.hifi.run import run_hifi

    cfg = load_config(args.config)
    run_hifi(cfg, MPI.COMM_WORLD)
    return 0


def _offline(args: argparse.Namespace, petsc_args: list[str]) -> int:
    from mpi4py import MPI

    from rom.offline.config import load_offline_config
    from rom.offline.pipeline import run_offline

    run_offline(load_offline_config(args.config), MPI.COMM_WORLD)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="structrom", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hifi", help="run the high-fidelity solver on a TOML configuration")
    p.add_argument("config", help="TOML configuration file")
    p = sub.add_parser("offline", help="build a reduced model from HF snapshots (offline stage)")
    p.add_argument("config", help="TOML configuration file")
    args, rest = parser.parse_known_args(argv)
    from rom.errors import KNOWN_ERRORS

    try:
        return {"hifi": _hifi, "offline": _offline}[args.command](args, rest)
    except KNOWN_ERRORS as exc:
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
