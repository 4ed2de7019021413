"""Enrich a model on the current number of ranks (in-house HF solver on all ranks); print a summary."""
import json
import sys

import h5py
from mpi4py import MPI

from structrom.rom.offline.enrich import enrich, hifi_base_config, make_solver, read_loadings

comm = MPI.COMM_WORLD
model = sys.argv[1]
res = enrich(model, read_loadings(sys.argv[2]), make_solver("inhouse", hifi_base_config(model), comm), comm,
             log=lambda *a: None)
if comm.rank == 0:
    with h5py.File(model, "r") as f:
        print("RESULT " + json.dumps({
            "result": res.to_json(), "singular_values": f["modes/singular_values"][()].tolist(),
            "points": f["reduced/point"][()].tolist(), "weights": f["reduced/weights"][()].tolist(),
            "versions": json.loads(f.attrs["versions"]),
            "ecm": json.loads(f.attrs["provenance"])["ecm"]}))
