"""Update a calibrated model with new HF snapshots on the current number of ranks (no publication); print
the new calibration, reduced points and validation points."""
import json
import sys

from mpi4py import MPI

from structrom.rom import model_file
from structrom.rom.offline.snapshots import read_training_case
from structrom.rom.offline.update import update_model

comm = MPI.COMM_WORLD
model, snaps = sys.argv[1], sys.argv[2:]
mesh = model_file.load(model, mesh=True).mesh
upd = update_model(model, [read_training_case(s, mesh) for s in snaps], comm)
if comm.rank == 0:
    cal, val = upd.data.calibration, upd.data.validation
    print("RESULT " + json.dumps({"factors": cal.factors.tolist(), "cases": cal.cases, "statement": cal.statement,
                                  "points": upd.data.point.tolist(), "weights": upd.data.weights.tolist(),
                                  "validation": val.point.tolist(), "validation_weights": val.weights.tolist()}))
