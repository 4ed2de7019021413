"""Distributed EIM of matrix powers: selections and errors of examples/eim_matrix_functions.run on this
communicator (monomial rows spread over the ranks, selected solves dealt to the ranks)."""
import json
import sys
from pathlib import Path

from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from eim_matrix_functions import run  # noqa: E402

out = run(m=21, n_tests=4, max_degree=12, max_terms=25, comm=MPI.COMM_WORLD, log=lambda *a: None)
if MPI.COMM_WORLD.rank == 0:
    print("RESULT " + json.dumps({k: out[k] for k in ("logdet_points", "logdet_params", "inverse_points", "rows")}))
