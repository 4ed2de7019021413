"""Run the offline stage on the current number of ranks; print the lifting's unit fields and, from rank 0,
the online solve of a loading (displacement of the last increment, reactions, calibrated error bounds) and the
leave-one-out calibration's held-out errors."""
import json
import sys

import h5py
from mpi4py import MPI

from structrom.rom.offline.config import load_offline_config
from structrom.rom.offline.pipeline import run_offline

cfg = load_offline_config(sys.argv[1])
cfg.output.file = sys.argv[2]
out = run_offline(cfg, MPI.COMM_WORLD, log=lambda *a: None)
if MPI.COMM_WORLD.rank == 0:
    from structrom.rom.online import ReducedModel

    model = ReducedModel.load(out)
    res = model.solve(json.loads(sys.argv[3]))
    with h5py.File(out, "r") as f:
        print("RESULT " + json.dumps({"lifting": f["lifting/full"][()].tolist(),
                                      "u": res.displacement().tolist(),
                                      "reactions": {k: v.tolist() for k, v in res.reactions.items()},
                                      "bounds": {k: v.tolist() for k, v in res.error_bounds.items()},
                                      "held_out": [c["samples"]["errors"] for c in model.data.calibration.cases]}))
